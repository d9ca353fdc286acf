# %% [markdown]
# [← experiment 08 — CNN](08_cnn.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 09 — bug zoo** · [next: README, results →](../../README.md)
#
# # Experiment 09 — The bug zoo: each of the original's bugs, and the symptoms it leaves
#
# The original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) had seven bugs (section 1 lists each with what the
# original did and what the correct library does; its `feedforward_nn/layers.py` and `tasks.py` show most of them). Here
# each one is a **switch** on the correct library: a small subclass or wrapper defined in this
# notebook — the library's layers are never modified. For each we record its **symptom signature**:
#
# * the training **loss curve** and the global **gradient norm** (same data, same seed, same recipe);
# * **dead units**: the share of hidden ReLU units that output 0 for every validation image;
# * the **gradient check** of chapter 00 on a small float64 probe model (whole model, all parameters);
# * the **batch-independence check**: the loss of *one* sample must give exactly zero gradient to the
#   other rows of the batch, and the same parameter gradients as that sample alone (true for any
#   network without BatchNorm in training mode, whose rows never meet);
# * the **bookkeeping**: how many times the pipeline looked at the test set, and what it reports as test
#   accuracy against what choosing on validation would have reported for the same run.
#
# Then a **diagnose-blind** exercise: a hidden bug is drawn at random, you see only its symptoms, and
# you name it.

# %%
import os
# One BLAS thread, set before NumPy loads: these products are small, and threads only add overhead.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time

import matplotlib.pyplot as plt
import numpy as np

from diydnn._00_conventions import numerical_gradient, quick_mode, rel_error, save_figure
from diydnn._01_dense import Dense
from diydnn._02_activations import ReLU, Softmax
from diydnn._03_cross_entropy import CategoricalCrossEntropy, accuracy
from diydnn._04_initialisers import Initialiser
from diydnn._05_batchnorm import BatchNorm
from diydnn._06_optimisers import SGD
from diydnn._07_model import Sequential
from diydnn._08_mnist import BatchStream
from diydnn._09_training import EvalTask, Loop, TrainTask
from diydnn._10_experiments import mnist_splits
from diydnn._14_performance import set_threads

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)
print("quick mode" if QUICK else "full mode")

# %% [markdown]
# ## 1. The bugs, as switches
#
# Each bug is written the way the original wrote it, in our batch-first layout (rows are samples):
#
# | switch | the original | the correct library |
# |---|---|---|
# | `softmax_batch_jacobian` | one Jacobian $J(\bar y)$ from the batch-mean output, applied to every row | $J(\hat y_i)$ per sample (chapter 02) |
# | `one_over_m_twice` | Dense divides $dW$, $db$ by $m$ again | the $1/m$ lives in the loss only (chapter 01) |
# | `clipped_ce_gradient` | $d\hat Y$ of the cross-entropy clipped to $[-1, 1]$ | no clipping (chapter 03) |
# | `bn_running_stats_in_training` | BatchNorm normalises with its running statistics during training (first batch initialises them), backward as if they were batch statistics | batch statistics in training (chapter 05) |
# | `spectral_clip_per_tensor` | every gradient tensor — $dW$, $db$ and each layer's $dX$ — scaled to spectral norm $\le 5$ | clip-norm by the global norm, parameters only, if at all (chapter 06) |
# | `reseed_every_layer` | each Dense re-seeds the random generator with 42 | one generator, passed in (chapter 00) |
# | `test_leakage` | the checkpoint is chosen on a set holding the test images, and that accuracy reported | choose on validation, touch the test set once (chapter 10) |
#
# The model is the original's: Dense layers, ReLU, a Softmax layer and the cross-entropy **on
# probabilities** (`CategoricalCrossEntropy`) — so that the Softmax backward is used at all (the fused
# `SoftmaxCrossEntropy` skips it).

# %%
CLIP = 5.0   # the original's threshold


class BatchJacobianSoftmax(Softmax):
    """BUG: one Jacobian J(mean_i y_hat_i) for the whole batch."""

    def backward(self, dY):
        Y_hat = self._cached()
        dY = self._check_upstream(dY, Y_hat.shape)
        y_bar = Y_hat.mean(axis=0)
        return dY @ (np.diag(y_bar) - np.outer(y_bar, y_bar))        # symmetric, so no transpose needed


class DoubleMeanDense(Dense):
    """BUG: the loss gradient already carries 1/m; this divides dW and db by m a second time."""

    def backward(self, dY):
        dX = super().backward(dY)
        m = dY.shape[0]
        self.grads = {name: g / m for name, g in self.grads.items()}
        return dX


class ClippedCrossEntropy(CategoricalCrossEntropy):
    """BUG: the gradient -(1/m) Y / Y_hat clipped to [-1, 1]: confidently wrong samples lose their pull."""

    def backward(self):
        return np.clip(super().backward(), -1.0, 1.0)


class RunningStatsBatchNorm(BatchNorm):
    """BUG: in training, normalise with the running statistics (updated first; the first batch sets them),
    and backpropagate with the batch-statistics formula evaluated at the running variance."""

    def forward(self, X, training=False):
        if not training:
            return super().forward(X, training=False)
        X = self._check_input(X)
        mu_b, var_b = X.mean(axis=0), X.var(axis=0)
        rho, s = self.momentum, self.state
        if not getattr(self, "_initialised", False):
            s["running_mean"][...], s["running_var"][...] = mu_b, var_b
            self._initialised = True
        else:
            s["running_mean"][...] = rho * s["running_mean"] + (1 - rho) * mu_b
            s["running_var"][...] = rho * s["running_var"] + (1 - rho) * var_b
        inv_std = 1.0 / np.sqrt(s["running_var"] + self.eps)
        X_hat = (X - s["running_mean"]) * inv_std
        self._cache = (X_hat, inv_std, True)           # the parent's backward then applies the batch formula
        return self.params["gamma"] * X_hat + self.params["beta"]


def spectral_clip(g, c=CLIP):
    """Scale one tensor so that its spectral norm (largest singular value; L2 norm for a vector) is <= c."""
    if g.ndim == 2:   # sqrt of the largest eigenvalue of the smaller Gram matrix: far cheaper than a full SVD
        gram = g.T @ g if g.shape[0] >= g.shape[1] else g @ g.T
        norm = float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)))
    else:
        norm = float(np.linalg.norm(g))
    return g * (c / norm) if norm > c else g


class SpectrallyClippedSequential(Sequential):
    """BUG: clip every parameter gradient AND every activation gradient, tensor by tensor, by its spectral norm."""

    def backward(self, dY):
        for layer in reversed(self.layers):        # the loss gradient itself arrives unclipped, as in the original
            dY = spectral_clip(layer.backward(dY))
            layer.grads = {name: spectral_clip(g) for name, g in layer.grads.items()}
        return dY


class ReseededInitialiser(Initialiser):
    """BUG: every layer draws from a generator seeded with 42 (the original called np.random.seed(42) in each
    Dense; here a fresh seeded generator has the same effect without touching NumPy's global state)."""

    name = "reseeded_he"

    def __call__(self, fan_in, fan_out, rng):
        fresh = np.random.default_rng(42)               # ignores the rng it is given: that is the bug
        return fresh.standard_normal((fan_out, fan_in)).T * np.sqrt(2.0 / fan_in)   # drawn W' (out x in), as it did


BUGS = ["softmax_batch_jacobian", "one_over_m_twice", "clipped_ce_gradient", "bn_running_stats_in_training",
        "spectral_clip_per_tensor", "reseed_every_layer", "test_leakage"]


def build(bug, widths, rng, init="he", dtype=np.float32):
    """(model, loss) for a bug name or "correct"/"correct_bn".

    The model is Dense-[BN]-ReLU ... Dense-Softmax; the loss the cross-entropy on probabilities."""
    if bug not in BUGS + ["correct", "correct_bn"]:
        raise ValueError(f"build: unknown bug {bug!r}; known: {BUGS}")
    dense = DoubleMeanDense if bug == "one_over_m_twice" else Dense
    init = ReseededInitialiser() if bug == "reseed_every_layer" else init
    layers = []
    for units in widths[1:-1]:
        layers.append(dense(units, init=init))
        if bug in ("correct_bn", "bn_running_stats_in_training"):
            layers.append(RunningStatsBatchNorm() if bug == "bn_running_stats_in_training" else BatchNorm())
        layers.append(ReLU())
    layers += [dense(widths[-1], init=init), BatchJacobianSoftmax() if bug == "softmax_batch_jacobian" else Softmax()]
    cls = SpectrallyClippedSequential if bug == "spectral_clip_per_tensor" else Sequential
    loss = ClippedCrossEntropy() if bug == "clipped_ce_gradient" else CategoricalCrossEntropy()
    model = cls(layers, rng=rng)
    model.build(widths[0], rng, dtype=dtype)
    return model, loss


# %% [markdown]
# A check that each switch does what the table says, on numbers small enough to follow: the faulty
# Softmax applies $J(\bar y)$ to every row; the double-mean Dense gives $1/m$ of the true $dW$; the clipped
# loss gradient never leaves $[-1, 1]$; the spectral clip caps the largest singular value at 5; the
# reseeded initialiser gives the same weights whatever generator it is handed.

# %%
rng = np.random.default_rng(9)
Z, G = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
bad = BatchJacobianSoftmax(); P = bad.forward(Z); y_bar = P.mean(0)
assert np.allclose(bad.backward(G), np.stack([(np.diag(y_bar) - np.outer(y_bar, y_bar)) @ g for g in G]))
X, G8 = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
d_ok = Dense(3, n_in=5, rng=np.random.default_rng(1))
d_bad = DoubleMeanDense(3, n_in=5, rng=np.random.default_rng(1))
d_ok.forward(X); d_bad.forward(X); d_ok.backward(G8); d_bad.backward(G8)
assert np.allclose(d_bad.grads["W"], d_ok.grads["W"] / 8)
P_wrong = np.array([[0.01, 0.97, 0.01, 0.01]])                   # confidently wrong about class 0
ce_ok, ce_bad = CategoricalCrossEntropy(), ClippedCrossEntropy()
ce_ok.forward(P_wrong, np.array([0])); ce_bad.forward(P_wrong, np.array([0]))
assert ce_ok.backward()[0, 0] == -100.0 and ce_bad.backward()[0, 0] == -1.0   # -1/(m y_hat) = -100, clipped to -1
for shape in ((6, 4), (4, 6)):
    big = rng.standard_normal(shape) * 10
    assert np.isclose(np.linalg.norm(spectral_clip(big), 2), CLIP)          # NumPy's spectral norm (an SVD) agrees
    assert np.array_equal(spectral_clip(big / 100), big / 100)             # below the threshold: untouched
reseeded = ReseededInitialiser()
assert np.array_equal(reseeded(5, 3, np.random.default_rng(0)), reseeded(5, 3, np.random.default_rng(1)))
print("every switch does what the table says")

# %% [markdown]
# ## 2. The two checks, on a small probe
#
# **Gradient check.** A probe model 10–12–[BN]–ReLU–5–Softmax in float64 on 8 samples, loss $L$ the
# cross-entropy: all parameter gradients from `backward` against central differences of $L$, as one
# vector (relative error), and per tensor the cosine between the two (1 = same direction). Non-trainable
# state (BatchNorm's running statistics) is restored before every forward pass, so that $L$ is a function.
# The probe is built to have **large gradients**: the original's $\mathcal N(0, 1)$ ("random") initialisation
# and inputs of standard deviation 10, so that its predictions are confident and often wrong and its
# weight gradients have norms of about 45–50 — above the threshold 5, the regime in which the original's
# clipping acted (its §4.1 run had a gradient norm of 17). Only there do the clipping bugs act at all. (A bug that only acts on large gradients hides from a check on small ones:
# exercise 2.)
#
# **Batch-independence check.** Take the loss of row 0 alone, backpropagate it through the model run on
# the whole batch (training mode), and measure (a) the largest gradient it gives to rows 1…7 of the
# input, relative to row 0's, and (b) the relative error between the parameter gradients and those of
# row 0 run alone. Both must be 0 (to rounding) for a network whose rows never meet. With BatchNorm in
# training mode rows *do* meet, through the batch statistics, so the check does not apply there.

# %%
PROBE_SCALE = 10.0   # inputs of standard deviation 10: weight gradients of norm about 45-50, above the clip threshold 5


def _with_state_restored(model, f):
    saved = {k: v.copy() for k, v in model.state.items()}
    def g():
        for k, v in model.state.items():
            v[...] = saved[k]
        return f()
    return g


def cosine(a, n):
    """Cosine between two gradient tensors; 1 when both are (numerically) zero, e.g. a bias feeding BatchNorm."""
    na, nn = np.linalg.norm(a), np.linalg.norm(n)
    if na < 1e-8 and nn < 1e-8:
        return 1.0
    return float(a.ravel() @ n.ravel() / max(na * nn, 1e-300))


def gradient_check(bug, seed=0):
    """(relative error over all parameters, smallest per-tensor cosine, norm ratio analytic/numerical)."""
    rng = np.random.default_rng(seed)
    model, loss = build(bug, [10, 12, 5], rng, init="random", dtype=np.float64)
    X, y = PROBE_SCALE * rng.standard_normal((8, 10)), rng.integers(0, 5, size=8)
    f = _with_state_restored(model, lambda: loss(model.forward(X, training=True), y))
    f()
    model.backward(loss.backward())
    analytic = {k: g.copy() for k, g in model.grads.items()}
    numeric = {k: numerical_gradient(f, p) for k, p in model.params.items()}
    a = np.concatenate([analytic[k].ravel() for k in analytic])
    n = np.concatenate([numeric[k].ravel() for k in analytic])
    cosines = [cosine(analytic[k], numeric[k]) for k in analytic]
    return rel_error(a, n), float(min(cosines)), float(np.linalg.norm(a) / np.linalg.norm(n))


def batch_independence(bug, seed=0):
    """(max |dX rows 1..| / |dX row 0|, rel. error of param grads in the batch vs alone); None with BatchNorm."""
    if bug in ("correct_bn", "bn_running_stats_in_training"):
        return None
    rng = np.random.default_rng(seed)
    model, loss = build(bug, [10, 12, 5], rng, init="random", dtype=np.float64)
    X, y = PROBE_SCALE * rng.standard_normal((8, 10)), rng.integers(0, 5, size=8)

    def row0_gradients(Xb):
        P = model.forward(Xb, training=True)
        loss(P[:1], y[:1])                       # the loss of row 0 alone
        dP = np.zeros_like(P); dP[:1] = loss.backward()
        dX = model.backward(dP)
        return dX, np.concatenate([g.ravel() for g in model.grads.values()])

    dX, g_batch = row0_gradients(X)
    _, g_alone = row0_gradients(X[:1])
    return float(np.abs(dX[1:]).max() / np.abs(dX[0]).max()), rel_error(g_batch, g_alone)


CHECKS = {}
for bug in ["correct", "correct_bn"] + BUGS:
    CHECKS[bug] = (gradient_check(bug), batch_independence(bug))
print(f"{'':30}{'grad check':>11}{'min cos':>9}{'|a|/|n|':>9}{'rows leak':>11}{'alone vs batch':>16}")
for bug, ((err, cos, ratio), indep) in CHECKS.items():
    leak, mismatch = indep if indep else (float("nan"), float("nan"))
    print(f"{bug:30}{err:>11.1e}{cos:>9.3f}{ratio:>9.3g}{leak:>11.1e}{mismatch:>16.1e}")

# %%
ok = lambda bug: CHECKS[bug][0][0] < 1e-8                         # the course's one threshold (chapter 00)
assert ok("correct") and ok("correct_bn") and ok("reseed_every_layer") and ok("test_leakage")
for bug in ("softmax_batch_jacobian", "one_over_m_twice", "clipped_ce_gradient", "bn_running_stats_in_training",
            "spectral_clip_per_tensor"):
    assert CHECKS[bug][0][0] > 1e-3, bug                           # the gradient check catches five of seven
assert abs(CHECKS["one_over_m_twice"][0][2] * 8 - 1) < 0.2          # ~1/m of the true size (dX is right, dW is not)
assert CHECKS["spectral_clip_per_tensor"][0][1] > 0.999             # each tensor keeps its direction ...
assert CHECKS["spectral_clip_per_tensor"][0][2] < 0.9               # ... but is shrunk
assert CHECKS["clipped_ce_gradient"][0][1] < 0.999                  # clipping rows changes the direction
for bug in ("correct", "clipped_ce_gradient", "spectral_clip_per_tensor", "reseed_every_layer", "test_leakage"):
    assert max(CHECKS[bug][1]) < 1e-9, bug                          # rows independent
for bug in ("softmax_batch_jacobian", "one_over_m_twice"):
    assert max(CHECKS[bug][1]) > 0.1, bug                           # row 0's gradient depends on its batch mates

# %% [markdown]
# Reading the table:
#
# * The gradient check catches **five of the seven** — everything that changes a derivative. It misses
#   `reseed_every_layer` (a bug of initialisation) and `test_leakage` (a bug of bookkeeping): the
#   gradients are right, so no gradient check can see them.
# * `one_over_m_twice` gives gradients of exactly the right *direction* in $dX$ but $1/m$ of the right size
#   in $dW$ and $db$ (norm ratio ≈ 1/8 on 8 samples), and it fails the batch-independence check: a sample's
#   parameter gradient shrinks with the size of its batch.
# * `softmax_batch_jacobian` passes part (a) — zero upstream gives zero downstream — but fails (b): row 0's
#   gradient depends on the *other* rows, through $\bar y$. The gradient check on a single sample would pass
#   (for $m = 1$, $\bar y = \hat y_1$): the check must use a batch.
# * The two clipping bugs fail only on large gradients. `spectral_clip_per_tensor` keeps every tensor's
#   direction (cosine 1) and shrinks its length — a hidden per-tensor learning-rate cut; `clipped_ce_gradient`
#   bends the direction (cosine < 1): the confidently wrong samples lose their pull.

# %% [markdown]
# ## 3. Training with each bug
#
# One recipe for all, close to the original's: 784–64–10 (with BatchNorm after the hidden Dense for the
# two BatchNorm runs), He initialisation, plain SGD $\alpha = 0.1$, batches of 32, the same data order
# (seed 0). Full mode: 20,000 training images, 3 epochs; quick mode: 4,000 images, 2 epochs. Validation:
# 5,000 held-out training images. Each run records the loss, the gradient norm (as the optimiser sees
# it, after any per-tensor clipping), and — for `test_leakage` — the test accuracy at every evaluation.

# %%
(X_train, y_train), (X_val, y_val), (X_test, y_test) = mnist_splits()
N_TRAIN, EPOCHS = (4000, 2) if QUICK else (20000, 3)
BATCH, LR, SEED = 32, 0.1, 0


def train(bug, seed=SEED):
    """Train one variant; returns a dict with the history, the model and the numbers of its symptom card."""
    rng = np.random.default_rng(seed)
    model, loss = build(bug, [784, 64, 10], rng)
    stream = BatchStream(X_train[:N_TRAIN], y_train[:N_TRAIN], BATCH, rng=np.random.default_rng(SEED))
    steps = EPOCHS * stream.batches_per_epoch
    evals = [EvalTask((X_val, y_val), metrics=("accuracy",), name="val")]
    if bug == "test_leakage":    # it looks at the test set at every evaluation, to choose its checkpoint
        evals.append(EvalTask((X_test, y_test), metrics=("accuracy",), name="test"))
    loop = Loop(model, TrainTask(stream, loss, SGD(lr=LR), n_steps_per_checkpoint=max(steps // 12, 1)),
                eval_tasks=evals, progress=False, verbose=False)
    start = time.perf_counter()
    history = loop.run(steps)
    hidden = model.layers[0].forward(X_val)                        # pre-activations of the hidden layer
    if isinstance(model.layers[1], BatchNorm):
        hidden = model.layers[1].forward(hidden)
    dead = float(np.mean((hidden <= 0).all(axis=0)))               # units that never fire on validation
    val_steps, val_acc = history.steps_values("val", "accuracy")
    honest = accuracy(model.predict(X_test), y_test)               # final weights, test touched once
    if bug == "test_leakage":
        test_steps, test_acc = history.steps_values("test", "accuracy")
        reported = float(test_acc.max())                           # the best test accuracy seen, reported as "test"
        honest = float(test_acc[np.argmax(val_acc)])               # what choosing on validation would have reported
        test_looks = len(test_acc) + 1                             # every evaluation, and the final report
    else:
        reported, test_looks = honest, 1
    return {"history": history, "model": model, "seconds": time.perf_counter() - start,
            "final_val": float(val_acc[-1]), "dead": dead, "reported": reported, "honest": honest,
            "test_looks": test_looks}


RUNS = {bug: train(bug) for bug in ["correct", "correct_bn"] + BUGS}
# the reseeded run once more with another seed: do its initial weights change?
init_a = build("reseed_every_layer", [784, 64, 10], np.random.default_rng(1))[0].layers[0].params["W"]
init_b = build("reseed_every_layer", [784, 64, 10], np.random.default_rng(2))[0].layers[0].params["W"]
init_c = build("correct", [784, 64, 10], np.random.default_rng(1))[0].layers[0].params["W"]
init_d = build("correct", [784, 64, 10], np.random.default_rng(2))[0].layers[0].params["W"]
SEEDS_MATTER = {"reseed_every_layer": not np.array_equal(init_a, init_b), "correct": not np.array_equal(init_c, init_d)}

print(f"{'run':30}{'final val':>10}{'max |g|':>9}{'median |g|':>11}{'dead':>6}{'reported':>10}{'honest':>8}{'test looks':>11}{'s':>6}")
for bug, r in RUNS.items():
    g = r["history"].steps_values("train", "grad_norm")[1]
    print(f"{bug:30}{r['final_val']:>10.4f}{g.max():>9.3g}{np.median(g):>11.3g}{r['dead']:>6.0%}"
          f"{r['reported']:>10.4f}{r['honest']:>8.4f}{r['test_looks']:>11}{r['seconds']:>6.1f}")
print("initial weights change with the seed:", SEEDS_MATTER)

# %%
R = RUNS
assert R["correct"]["final_val"] > (0.85 if QUICK else 0.94)                      # the correct network learns
assert R["correct_bn"]["final_val"] > (0.85 if QUICK else 0.94)
assert R["softmax_batch_jacobian"]["final_val"] < R["correct"]["final_val"] - 0.1 # collapses or crawls
assert R["one_over_m_twice"]["final_val"] < R["correct"]["final_val"] - 0.02      # 32x smaller steps: far behind
assert SEEDS_MATTER == {"reseed_every_layer": False, "correct": True}             # the seed does nothing
assert R["test_leakage"]["reported"] >= R["test_leakage"]["honest"]               # a max over looks, reported as one
assert R["test_leakage"]["test_looks"] > 10 and R["correct"]["test_looks"] == 1
assert R["test_leakage"]["final_val"] == R["correct"]["final_val"]                # the same training run

# %% [markdown]
# ## 4. The symptom signatures, in one figure
#
# Each panel: the bug's training loss (running mean, colour) against the correct run's (grey; for the
# BatchNorm bug, the correct run *with* BatchNorm), and its symptom card: the two checks, the final
# validation accuracy, the largest gradient norm, the dead units, how often the test set was looked at, and
# the reported test accuracy minus the one choosing on validation would have reported.

# %%
def card(bug):
    """The symptoms of one bug, as numbers a learner can read off the notebook (no name inside)."""
    (err, cos, ratio), indep = CHECKS[bug]
    r = RUNS[bug]
    g = r["history"].steps_values("train", "grad_norm")[1]
    leak, mismatch = indep if indep is not None else (None, None)
    return {"gradient check rel. error": err, "smallest per-tensor cosine": cos, "norm ratio analytic/numerical": ratio,
            "batch leak (a)": leak, "alone vs batch (b)": mismatch,
            "has BatchNorm": bug in ("correct_bn", "bn_running_stats_in_training"),
            "final val. accuracy": r["final_val"], "max gradient norm": float(g.max()),
            "median gradient norm": float(np.median(g)),
            "dead hidden units": r["dead"], "looks at the test set": r["test_looks"],
            "reported minus honest test accuracy": r["reported"] - r["honest"],
            "initial weights change with the seed": SEEDS_MATTER.get(bug, True)}


def running_mean(v, w=25):
    w = min(w, len(v))
    return np.convolve(v, np.ones(w) / w, mode="valid"), w


def show_card(c):
    def fmt(v):
        return "n/a" if v is None else (str(v) if isinstance(v, bool) else f"{v:.3g}")
    return "\n".join(f"{k}: {fmt(v)}" for k, v in c.items() if k not in ("has BatchNorm", "median gradient norm"))


fig, axes = plt.subplots(2, 4, figsize=(17, 7.5), sharex=True)
for ax, bug in zip(axes.flat, BUGS + ["correct"]):
    base = "correct_bn" if bug == "bn_running_stats_in_training" else "correct"
    for name, colour in ((base, "0.6"), (bug, "tab:red" if bug != "correct" else "tab:green")):
        steps, loss = RUNS[name]["history"].steps_values("train", "loss")
        smooth, w = running_mean(loss)
        ax.plot(steps[w - 1:], smooth, color=colour, lw=1.5)
    ax.set(yscale="log", title=bug, ylim=(0.05, 50))
    ax.text(0.98, 0.97, show_card(card(bug)), transform=ax.transAxes, ha="right", va="top", fontsize=6.3,
            family="monospace", bbox=dict(fc="white", ec="0.8", alpha=0.85))
for ax in axes[1]:
    ax.set_xlabel("step")
for ax in axes[:, 0]:
    ax.set_ylabel("training loss (running mean)")
fig.suptitle("The bug zoo: each of the original's bugs (red) against the correct library (grey), same data and seed")
fig.tight_layout()
save_figure(fig, "exp_09_bug_zoo.png")
plt.show()

# %% [markdown]
# What the figure says, bug by bug (numbers in the table above):
#
# * **`softmax_batch_jacobian`** — the loudest: the gradient points the wrong way as soon as the outputs
#   differ between samples; within a few dozen steps one confidently wrong sample throws the weights, the
#   network predicts one class (about 10 %), many hidden units die and the gradient becomes exactly 0
#   (median gradient norm 0; experiment 06 follows it to the end).
# * **`one_over_m_twice`** — every parameter step is 32× too small: the loss falls, slowly; the gradient
#   norm is some twenty times below the correct run's. It looks like "the learning rate is too low" — and a
#   32× larger learning rate hides it exactly (exercise 1), the way clip-norm hid the Softmax bug.
# * **`clipped_ce_gradient`** — with He initialisation few samples are confidently wrong, so training is
#   close to correct; the gradient check on a confident probe gives it away.
# * **`bn_running_stats_in_training`** — the backward formula no longer matches the forward pass, and the
#   running statistics lag behind the changing pre-activations; what that does to the gradient norm and to the
#   final accuracy, against the correct BatchNorm run, is printed below the list.
# * **`spectral_clip_per_tensor`** — at this scale the per-batch gradients stay below 5 and nothing is
#   clipped: the curve is the correct one. It is a time bomb for larger gradients (the probe).
# * **`reseed_every_layer`** — nothing in the curves; but the initial weights do not change with the seed, so
#   "three seeds" are one seed, and layers of equal shape start as copies of each other.
# * **`test_leakage`** — identical curves (it *is* the correct run); the difference is in the bookkeeping:
#   the reported number is the best of several looks at the test set (how many: printed below the list),
#   reported as if it were one look. It can only be ≥ the honest one; over many runs and settings chosen this
#   way, the bias grows.

# %%
bn, bn_ok = RUNS["bn_running_stats_in_training"], RUNS["correct_bn"]
g_bn = bn["history"].steps_values("train", "grad_norm")[1]
g_ok = bn_ok["history"].steps_values("train", "grad_norm")[1]
leak = RUNS["test_leakage"]
print(f"bn_running_stats_in_training: gradient norm up to {g_bn.max():.3g} (median {np.median(g_bn):.3g}) against up to "
      f"{g_ok.max():.3g} (median {np.median(g_ok):.3g}) for the correct BatchNorm run; final validation accuracy "
      f"{bn['final_val']:.4f} against {bn_ok['final_val']:.4f} "
      f"({'ahead of' if bn['final_val'] > bn_ok['final_val'] else 'behind'} it)")
print(f"test_leakage: the reported test accuracy is the best of {leak['test_looks']} looks at the test set: "
      f"{leak['reported']:.4f}, against {leak['honest']:.4f} chosen on validation "
      f"({'the same checkpoint, by chance' if leak['reported'] == leak['honest'] else 'higher'})")
assert leak["reported"] >= leak["honest"] and leak["test_looks"] > 1

# %% [markdown]
# ## 5. Diagnose blind
#
# A generator picks one of the seven bugs; below are its symptom card and its curves (against the correct
# library's, in grey) and nothing else: only what a real run and the checks of section 2 show. (The bookkeeping —
# whether the seed changes the initial weights, how often the pipeline looked at the test set — is not on the card:
# you find it by running the pipeline twice with two seeds and by reading its code.) Name the bug, or the few it can
# be, using the table of section 1 and the readings above. Then open the solution. Change `BLIND_SEED` for another
# patient.

# %%
BLIND_SEED = 2024
BOOKKEEPING = ("initial weights change with the seed", "looks at the test set", "reported minus honest test accuracy")
hidden_bug = BUGS[np.random.default_rng(BLIND_SEED).integers(len(BUGS))]
print(show_card({k: v for k, v in card(hidden_bug).items() if k not in BOOKKEEPING}))
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for name, colour, label in (("correct", "0.6", "correct library"), (hidden_bug, "tab:purple", "the patient")):
    h = RUNS[name]["history"]
    steps, loss = h.steps_values("train", "loss")
    smooth, w = running_mean(loss)
    axes[0].plot(steps[w - 1:], smooth, color=colour, label=label)
    steps, g = h.steps_values("train", "grad_norm")
    axes[1].plot(steps[g > 0], g[g > 0], ".", ms=2, color=colour, label=label)
axes[0].set(yscale="log", xlabel="step", ylabel="training loss (running mean)")
axes[1].set(yscale="log", xlabel="step", ylabel="gradient norm (zeros not drawn)")
axes[0].legend()
plt.show()

# %% [markdown] jupyter={"source_hidden": true}
# **Solution.** A decision list from the symptoms alone — the order matters, each step uses what the
# earlier ones ruled out — then the reveal. Three patients show nothing in training: for them the list names the three
# candidates, and the bookkeeping (two seeds, the test looks) decides. The cell checks the list for every bug.

# %% jupyter={"source_hidden": true}
def diagnose(c):
    """The bug, or the set of bugs it can be, from its symptom card alone (what a run and the checks show)."""
    if c["gradient check rel. error"] < 1e-8:
        return {"correct", "reseed_every_layer", "test_leakage"}     # no symptom in training: bookkeeping decides
    return {_diagnose_symptoms(c)}


def diagnose_bookkeeping(bug):
    """Among the silent three: run the pipeline with two seeds, count the looks at the test set."""
    if not SEEDS_MATTER.get(bug, True):
        return "reseed_every_layer"            # the only bug that makes the seed irrelevant
    if RUNS[bug]["test_looks"] > 1:
        return "test_leakage"                  # the test set was used before the one final report
    return "correct"


def _diagnose_symptoms(c):
    if c["has BatchNorm"]:
        return "bn_running_stats_in_training"  # wrong gradient, and rows meet through batch statistics
    if c["alone vs batch (b)"] > 0.1:
        # row 0's gradient depends on its batch: through 1/m (pure size) or through y_bar (direction too)
        return "one_over_m_twice" if c["smallest per-tensor cosine"] > 0.999 else "softmax_batch_jacobian"
    # rows independent, gradient wrong only on large gradients: direction kept (per-tensor scale) or bent
    return "spectral_clip_per_tensor" if c["smallest per-tensor cosine"] > 0.999 else "clipped_ce_gradient"


def name_it(bug):
    candidates = diagnose({k: v for k, v in card(bug).items() if k not in BOOKKEEPING})
    return candidates.pop() if len(candidates) == 1 else diagnose_bookkeeping(bug)


guess = name_it(hidden_bug)
print(f"the hidden bug is {hidden_bug!r}; the decision list says {guess!r}")
assert guess == hidden_bug
assert all(name_it(bug) == bug for bug in BUGS + ["correct"])   # every patient is told apart
assert all(len(diagnose(card(bug))) == 1 for bug in BUGS if bug not in ("reseed_every_layer", "test_leakage"))

# %% [markdown]
# ## Summary
#
# * Five of the original's seven bugs change a derivative, and a float64 gradient check on a *batch*
#   with *large* gradients catches every one of them. A check on a single sample misses two
#   (`softmax_batch_jacobian` and `one_over_m_twice` are exact for $m = 1$); a check on small gradients
#   misses the two clipping bugs. Bugs can also mask each other (exercise 3).
# * The batch-independence check separates the bugs that couple samples (`softmax_batch_jacobian`,
#   `one_over_m_twice`) from those that do not.
# * Two bugs leave the gradients right and the curves clean: re-seeding (the seed stops mattering) and
#   test leakage (the reported number is a maximum). Only bookkeeping checks find those.
#
# ## Exercises
#
# 1. Raise the learning rate of the `one_over_m_twice` run by the batch size (32×). Does the bug
#    disappear from the curve? Why is that worse, not better?
# 2. Run the gradient check of `clipped_ce_gradient` with He initialisation on batches of 1, 8, 64 and 512.
#    When does it pass, and why does the batch size matter?
# 3. Combine two bugs — `one_over_m_twice` and `spectral_clip_per_tensor` — in one probe model and run its
#    gradient check. What do the cosine and the norm ratio say, and why?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# With $\alpha \cdot 32$ the update $\alpha\,dW$ is back to its correct size (the Dense
# gradients are exactly $1/m$ of the true ones), so the curve looks right — but the learning rate now
# depends on the batch size, and the bug is still there for anyone who changes it.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 1.
from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
with hidden_output():
    LR_SAVED = LR
    LR = LR_SAVED * BATCH
    fixed = train("one_over_m_twice")
    LR = LR_SAVED
    print(f"final val. accuracy: correct {R['correct']['final_val']:.4f}, bug {R['one_over_m_twice']['final_val']:.4f}, "
          f"bug with lr x {BATCH}: {fixed['final_val']:.4f}")
    assert abs(fixed["final_val"] - R["correct"]["final_val"]) < 0.02

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# The clip acts on an entry $\frac{1}{m\,\hat y_{i,c_i}}$ only when it exceeds 1, i.e. when the true
# class gets a probability below $1/m$. A batch of 1 is always clipped (any $\hat y < 1$); in larger batches
# fewer samples fall below the shrinking threshold $1/m$ and the error falls — but with He initialisation a
# few samples of 5 classes still do, even at $m = 512$. The check fails exactly when the clip touches a
# sample: on a batch where no sample is that wrong it would pass, and say nothing about the next batch.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 2.
with hidden_output():
    def gradient_check_he(bug, m, seed=0):
        """Gradient check with He initialisation on a batch of m; also how many samples the clip touched."""
        rng = np.random.default_rng(seed)
        model, loss = build(bug, [10, 12, 5], rng, init="he", dtype=np.float64)
        X, y = rng.standard_normal((m, 10)), rng.integers(0, 5, size=m)
        f = lambda: loss(model.forward(X, training=True), y)
        f(); model.backward(loss.backward())
        a = np.concatenate([g.ravel() for g in model.grads.values()])
        n = np.concatenate([numerical_gradient(f, p).ravel() for p in model.params.values()])
        p_true = model.forward(X, training=True)[np.arange(m), y]
        return rel_error(a, n), int(np.sum(p_true < 1.0 / m))


    for m in (1, 8, 64, 512):
        err_he, clipped = gradient_check_he("clipped_ce_gradient", m)
        print(f"batch {m:>3}: {clipped:>3} samples below 1/m, gradient check rel. error {err_he:.1e}")
        assert (clipped == 0) == (err_he < 1e-8)       # it fails exactly when the clip acts

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# The card is almost exactly that of `one_over_m_twice` alone: cosine 1, norm ratio 0.107, just
# below $1/m = 0.125$. Dividing by $m = 8$ shrinks the probe's weight gradients (spectral norms about 44 and 50) to
# 5.5 and 6.2, barely above the threshold 5, so the spectral clip hardly acts: **one bug all but masks the other**.
# Fix the first, run the checks again, and the second appears (its own card: norm ratio 0.11).
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["solution"]
# Solution 3.
with hidden_output():
    class Both(SpectrallyClippedSequential):
        pass


    rng = np.random.default_rng(0)
    both = Both([DoubleMeanDense(12, init="random"), ReLU(), DoubleMeanDense(5, init="random"), Softmax()], rng=rng)
    both.build(10, rng, dtype=np.float64)
    Xp, yp = PROBE_SCALE * rng.standard_normal((8, 10)), rng.integers(0, 5, size=8)
    loss = CategoricalCrossEntropy()
    f = lambda: loss(both.forward(Xp, training=True), yp)
    f(); both.backward(loss.backward())
    a = {k: g.copy() for k, g in both.grads.items()}
    n = {k: numerical_gradient(f, p) for k, p in both.params.items()}
    cos = min(cosine(a[k], n[k]) for k in a)
    ratio = np.sqrt(sum((g ** 2).sum() for g in a.values()) / sum((g ** 2).sum() for g in n.values()))
    print(f"both bugs: smallest cosine {cos:.4f}, norm ratio {ratio:.3f} (1/m = {1 / 8:.3f})")
    assert cos > 0.999 and 0.8 / 8 < ratio <= 1 / 8 + 1e-9            # nearly the 1/m bug's signature alone
    assert CHECKS["spectral_clip_per_tensor"][0][2] < 0.5               # though the clip alone does act on this probe

# %% [markdown]
# ---
# [← experiment 08 — CNN](08_cnn.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 09 — bug zoo** · [next: README, results →](../../README.md)
