# %% [markdown]
# [← 14 — where the time goes](../14_performance.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 01 — clip-norm** · [next: experiment 02 — full data →](02_full_data.ipynb)
#
# # Experiment 01 — Clip-norm on 100 images ([the original](https://github.com/tomjwalker/diy-dnn)'s §4.1)
#
# [The original *diy-dnn*](https://github.com/tomjwalker/diy-dnn) trained a Dense(50) network (784–50–ReLU–10) on 100 training images, saw its
# cost explode, and added **clip-norm** with threshold $c = 5$. Its figure showed the cost per step above
# and the gradient norm per step below, without and with clipping. This notebook redoes that study with
# the correct library, and asks:
#
# 1. Which settings make the cost of this small network explode — and *why*?
# 2. What does clipping at $c = 5$ change, exactly?
# 3. With sane settings, is there anything to clip at all?
#
# Clip-norm here is the one of chapter 06: all parameter gradients form one vector $g$, and
# $g \leftarrow g\cdot\min(1, c/\lVert g\rVert)$ before the optimiser's step. The loop of chapter 09 records
# $\lVert g\rVert$ **before** clipping at every step, globally and per layer.

# %%
import matplotlib.pyplot as plt
import numpy as np

from diydnn._00_conventions import quick_mode, save_figure
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import global_norm
from diydnn._09_training import Callback
from IPython.display import Markdown, display

from diydnn._10_experiments import (build_model, check_settings, default_runs_dir, interval95, mlp, mnist_splits,
                                    run_experiment, to_markdown)
from diydnn._10a_panels import experiment_controls
from diydnn._14_performance import set_threads

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)
print("quick mode" if QUICK else "full mode", "- run folders in", default_runs_dir().name)   # a name, not this machine's path

# %% [markdown]
# ## 1. The runs
#
# Three runs in the original's `RUN_SETTINGS` style. The first 100 images of the training split are the
# whole training set, and each step uses all of them (batch size 100), so a step is an epoch and the
# curves carry no sampling noise: every wiggle is the optimiser's doing.
#
# * `clip_random_sgd` — the setup that explodes: the original's "random" initialiser $\mathcal N(0, 1)$ and
#   plain SGD with a large learning rate, $\alpha = 3$; no clipping.
# * `clip_random_sgd_c5` — the same, with clip-norm at $c = 5$ ([the original](https://github.com/tomjwalker/diy-dnn)'s default).
# * `clip_he_adam` — a sane setup: He initialisation and Adam with $\alpha = 10^{-3}$; no clipping.
#
# All three start from the same seed; the first two from the very same weights. Each is then repeated with two more
# seeds (other initial weights) for the accuracy table: the median of the three and a 95 % interval. The figure and
# the analysis follow seed 0.

# %%
RUN_SETTINGS = [
    {"model_name": "clip_random_sgd", "architecture": mlp([50]), "train_abs_samples": 100, "batch_size": 100,
     "num_epochs": 100, "init": "random", "optimizer": "sgd", "lr": 3.0, "clip_grads_norm": None},
    {"model_name": "clip_random_sgd_c5", "architecture": mlp([50]), "train_abs_samples": 100, "batch_size": 100,
     "num_epochs": 100, "init": "random", "optimizer": "sgd", "lr": 3.0, "clip_grads_norm": 5.0},
    {"model_name": "clip_he_adam", "architecture": mlp([50]), "train_abs_samples": 100, "batch_size": 100,
     "num_epochs": 100, "init": "he", "optimizer": "adam", "lr": 1e-3, "clip_grads_norm": None},
]
DEFAULTS = RUN_SETTINGS[0]
C = RUN_SETTINGS[1]["clip_grads_norm"]
LR = DEFAULTS["lr"]

# %% [markdown]
# ## 2. Why N(0, 1) weights and a large step explode
#
# Before training anything, look at the network the first two runs start from (`build_model` with the
# run's seed gives exactly the run's initial weights), next to its He-initialised twin.
#
# With $W_1 \sim \mathcal N(0,1)$ a hidden pre-activation $z = x^\top w$ has variance $\lVert x\rVert^2$, so its standard
# deviation is about $\sqrt{\mathbb E\lVert x\rVert^2}$. An MNIST image (pixels in $[0, 1]$) has
# $\lVert x\rVert^2 \approx 80$, so $z$ is of order 9. Half of it survives the ReLU, $\mathbb E[h^2] = \mathbb E\lVert x\rVert^2/2$,
# and a logit, a sum over 50 such units with $\mathcal N(0, 1)$ weights, has standard deviation
# $\sqrt{50\,\mathbb E\lVert x\rVert^2/2} \approx 45$. He's initialiser scales both layers by $\sqrt{2/\text{fan-in}}$
# and keeps every one of these numbers of order 1.

# %%
(X_train, y_train), _, _ = mnist_splits()
X, y = X_train[:100], y_train[:100]
sq_norm = float(np.mean(np.sum(X.astype(np.float64) ** 2, axis=1)))
predicted = {"random": (np.sqrt(sq_norm), np.sqrt(50 * sq_norm / 2)),
             "he": (np.sqrt(2 / 784 * sq_norm), np.sqrt(2 / 50 * 50 * (2 / 784 * sq_norm) / 2))}
print(f"mean squared norm of an image: {sq_norm:.1f}")
start = {}
for init in ("random", "he"):
    model = build_model(dict(DEFAULTS, init=init), rng=np.random.default_rng(check_settings(DEFAULTS)["seed"]))
    loss_fn = SoftmaxCrossEntropy()
    Z1 = X @ model.params["dense_0/W"] + model.params["dense_0/b"]
    logits = model.forward(X, training=True)
    loss = loss_fn(logits, y)
    model.backward(loss_fn.backward())
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    dZ2 = P - np.eye(10)[y]                       # per-sample gradient of the loss w.r.t. the logits (times m)
    g = global_norm(model.grads)
    theta = global_norm(model.params)
    start[init] = dict(z1=Z1.std(), logit=logits.std(), loss=loss, saturated=np.mean(P.max(axis=1) > 0.99),
                       dz=np.linalg.norm(dZ2, axis=1).mean(), g=g,
                       g0=global_norm({k: v for k, v in model.grads.items() if k.startswith("dense_0")}),
                       g1=global_norm({k: v for k, v in model.grads.items() if k.startswith("dense_1")}),
                       theta=theta)
    s = start[init]
    print(f"\n{init:>6}: hidden pre-activation std {s['z1']:6.2f} (predicted {predicted[init][0]:5.2f}); "
          f"logit std {s['logit']:6.2f} (predicted {predicted[init][1]:5.2f})")
    print(f"        initial loss {s['loss']:.2f}; images with top softmax probability > 0.99: {s['saturated']:.0%}; "
          f"mean per-sample ||y_hat - y|| {s['dz']:.3f} (at most sqrt 2 = 1.414)")
    print(f"        gradient norm {s['g']:.2f} (dense_0 {s['g0']:.2f}, dense_1 {s['g1']:.2f}); parameter norm {s['theta']:.1f}")
    print(f"        SGD with lr = {LR:g}: first step length lr*||g|| = {LR * g:.1f}; first-order predicted "
          f"loss decrease lr*||g||^2 = {LR * g * g:.1f}")
r, h = start["random"], start["he"]
assert 0.8 < r["z1"] / predicted["random"][0] < 1.25 and 0.7 < r["logit"] / predicted["random"][1] < 1.4
assert r["logit"] > 20 * h["logit"] and r["loss"] > 10 * h["loss"] and r["saturated"] > 0.6 and h["saturated"] == 0
assert r["g"] > 5 * h["g"] and r["dz"] <= np.sqrt(2) and LR * r["g"] ** 2 > r["loss"]

# %% [markdown]
# What the numbers say:
#
# * The predicted scales hold: with N(0, 1) weights the hidden pre-activations and the logits are in the
#   tens (printed above), against order 1 with He.
# * With logits that far apart, the softmax is saturated: for most images one class gets a probability
#   above $0.99$ (none with He), and the cross-entropy is about $\max_k z_k - z_y$: the initial loss is in the tens,
#   where $\ln 10 \approx 2.3$ is what a guess costs.
# * The loss's gradient with respect to the logits is **not** large: per sample it is $\hat y - y$, of length
#   at most $\sqrt2$. The weight gradients are large because that vector is multiplied by large things:
#   $dW_2 = h^\top d Z_2 / m$ scales with the hidden activations (order 9 instead of order 1), and
#   $dW_1$ with $W_2$ (entries of order 1 instead of $\sqrt{2/50} = 0.2$). Hence a global gradient
#   norm around ten times He's.
# * **The step is too long.** A gradient step of length $\alpha\lVert g\rVert$ lowers the loss by about $\alpha\lVert g\rVert^2$ only
#   while the loss is close to linear along the step. With $\alpha = 3$ that first-order prediction is larger than
#   the loss itself — impossible for a loss that cannot go below 0. The step leaves the region where the
#   gradient means anything. This is the learning rate's doing ($\alpha\lVert g\rVert^2 > L$ holds for He's start
#   too); the N(0, 1) start makes it worse by the square of a tenfold gradient.
#
# ## 3. Sliders
#
# The controls start at the exploding run's settings. Change the initialiser, the optimiser, the learning
# rate or the clip threshold and press *Train* to watch the cost and the gradient norm live.
#
# *The panel below is live only in a running kernel: **Run All first** (until its cell has run, it shows as one
# line of text). Each Train writes a new run folder, named after what you changed; the runs this notebook
# stores are never replaced.*

# %%
panel = experiment_controls(DEFAULTS)
panel


# %% [markdown]
# ## 4. Training the three runs
#
# The same function the *Train* button calls, `run_experiment`, with a small callback that also records the
# **length of each update**, $\lVert\theta_t - \theta_{t-1}\rVert$, to check what clipping promises: for plain SGD the
# update is $-\alpha\, g\min(1, c/\lVert g\rVert)$, so its length is $\alpha\min(\lVert g\rVert, c) \le \alpha c$.
# (In quick mode, the test suite's, each run has 30 steps instead of 100, and there are two seeds.) **Test accuracy**
# is, here as everywhere in the course, the accuracy on the 10,000 test images of the checkpoint with the best
# validation accuracy; the accuracy of the weights after the last step is labelled **last weights**. These runs take
# seconds, so this notebook trains them on every Run All and keeps no run records (the longer experiments, from 02
# on, commit theirs: chapter 10).

# %%
class StepLength(Callback):
    """Record the length of every update, ||theta_t - theta_(t-1)||, in float64."""

    def on_train_begin(self, loop):
        self.lengths = []
        self.previous = {k: v.astype(np.float64) for k, v in loop.model.params.items()}

    def on_step_end(self, loop, step, logs):
        now = {k: v.astype(np.float64) for k, v in loop.model.params.items()}
        self.lengths.append(np.sqrt(sum(np.sum((now[k] - self.previous[k]) ** 2) for k in now)))
        self.previous = now


NUM_STEPS = 30 if QUICK else 100
SEEDS = (0, 1) if QUICK else (0, 1, 2)
runs = {}
for settings in RUN_SETTINGS:
    for seed in SEEDS:
        recorder = StepLength()
        name = settings["model_name"] + ("" if seed == 0 else f"_seed{seed}")
        # overwrite=True: these are this notebook's own runs (a few seconds each), so running it again replaces them
        result = run_experiment(dict(settings, model_name=name, seed=seed, num_epochs=NUM_STEPS), callbacks=[recorder],
                                progress=False, verbose=False, overwrite=True)
        result["step_lengths"] = np.array(recorder.lengths)
        runs[settings["model_name"], seed] = result
results = {s["model_name"]: runs[s["model_name"], 0] for s in RUN_SETTINGS}        # seed 0: figure and analysis
panel.set_reference([runs[DEFAULTS["model_name"], seed] for seed in SEEDS])       # the panel's grey curves, interval


def over_seeds(name, key):
    return np.array([runs[name, seed][key] for seed in SEEDS], dtype=np.float64)


accuracy_rows = []
for name in results:
    lo, hi = interval95(over_seeds(name, "test_accuracy"))
    accuracy_rows.append({"run": name, "test accuracy (median)": f"{np.median(over_seeds(name, 'test_accuracy')):.2%}",
                          "95 % interval": f"{lo:.2%} – {hi:.2%}",
                          "seeds": ", ".join(f"{a:.2%}" for a in over_seeds(name, "test_accuracy")),
                          "last weights (median)": f"{np.median(over_seeds(name, 'test_accuracy_final')):.2%}",
                          "final train loss (median)": f"{np.median(over_seeds(name, 'final_train_loss')):.3g}",
                          "diverged": int(over_seeds(name, "diverged").sum())})
display(Markdown(to_markdown(accuracy_rows)))

# %% [markdown]
# Over three seeds (the full run's table above): the unclipped run reaches 22.4 % test accuracy (median), the clipped
# one 43.0 % and He + Adam 68.2 % — on 100 training images every run overfits, so all three are far below what the
# full training set gives (experiment 02). The intervals of the first two overlap (11.2–39.4 % and 26.0–61.7 %):
# with three seeds, the gain from clipping is **not shown by the intervals**, although every clipped seed beat every
# unclipped one. He + Adam's interval (66.3–69.4 %) lies above both.

# %% [markdown]
# ## 5. [The original](https://github.com/tomjwalker/diy-dnn)'s figure: cost above, gradient norm below

# %%
COLORS = {"clip_random_sgd": "tab:red", "clip_random_sgd_c5": "tab:blue", "clip_he_adam": "0.45"}
LABELS = {"clip_random_sgd": f"N(0,1), SGD lr={LR:g}, no clip", "clip_random_sgd_c5": f"N(0,1), SGD lr={LR:g}, clip c={C:g}",
          "clip_he_adam": "He, Adam lr=1e-3, no clip"}
fig, (ax_cost, ax_norm) = plt.subplots(2, 1, figsize=(10, 7.5), sharex=True)
for name, result in results.items():
    history = result["history"]
    ax_cost.semilogy(*history.steps_values("train", "loss"), color=COLORS[name], lw=1.6, label=LABELS[name])
    ax_norm.semilogy(*history.steps_values("train", "grad_norm"), color=COLORS[name], lw=1.8,
                     label=f"{LABELS[name]}: global")
    for layer, style in (("dense_0", "--"), ("dense_1", ":")):
        ax_norm.semilogy(*history.steps_values("train", f"grad_norm/{layer}"), color=COLORS[name], ls=style, lw=1.1,
                         label=f"{layer}" if name == "clip_random_sgd" else None)
ax_cost.axhline(np.log(10), color="k", lw=0.8, ls="-.", label="ln 10 (a uniform guess)")
ax_norm.axhline(C, color="k", lw=0.8, ls="-.", label=f"clip threshold c = {C:g}")
ax_cost.set(ylabel="training cost (cross-entropy)", title="Cost per step (100 images, full batch)")
ax_norm.set(xlabel="step (= epoch)", ylabel="gradient norm before clipping",
            title="Gradient norm per step: global (solid), dense_0 (dashed), dense_1 (dotted)")
ax_cost.legend(fontsize=8)
ax_norm.legend(fontsize=7, ncol=2, loc="upper right")
for ax in (ax_cost, ax_norm):
    ax.grid(alpha=0.3, which="both")
fig.tight_layout()
save_figure(fig, "exp_01_clip_norm.png")
plt.show()


# %% [markdown]
# ## 6. What the figure shows, in numbers
#
# First the explosion and what clipping does to it: the peak cost and the step at which it happens, the
# largest gradient norm, the longest update, and how the runs end.

# %%
def summary(name):
    result = results[name]
    history = result["history"]
    _, loss = history.steps_values("train", "loss")
    _, g = history.steps_values("train", "grad_norm")
    return dict(peak=loss.max(), peak_step=int(loss.argmax()) + 1, g_max=g.max(),
                g_max0=history.steps_values("train", "grad_norm/dense_0")[1].max(),
                g_max1=history.steps_values("train", "grad_norm/dense_1")[1].max(),
                step_max=result["step_lengths"].max(), final=loss[-1], g_final=g[-1],
                clipped=int(np.sum(g > C)), test=result["test_accuracy"], g=g, lengths=result["step_lengths"])


numbers = {name: summary(name) for name in results}
for name, s in numbers.items():
    print(f"{name:>19}: peak cost {s['peak']:8.1f} at step {s['peak_step']:2d}; max ||g|| {s['g_max']:6.1f} "
          f"(dense_0 {s['g_max0']:6.1f}, dense_1 {s['g_max1']:6.1f}); longest update {s['step_max']:6.2f}; "
          f"steps with ||g|| > c: {s['clipped']:3d}/{len(s['g'])}")
    print(f"{'':>19}  final cost {s['final']:.4f}, final ||g|| {s['g_final']:.2e}, test accuracy (seed 0) {s['test']:.3f}")
free, clip = numbers["clip_random_sgd"], numbers["clip_random_sgd_c5"]
initial_loss = start["random"]["loss"]
print(f"\nthe unclipped peak is {free['peak'] / initial_loss:.1f} x the initial cost, the clipped one "
      f"{clip['peak'] / initial_loss:.1f} x; the unclipped max gradient norm is {free['g_max'] / clip['g_max']:.1f} x "
      f"the clipped run's")
assert free["peak"] > 10 * initial_loss and clip["peak"] < 2 * initial_loss
assert free["g_max"] > 2 * clip["g_max"] and clip["g_max"] > start["random"]["g"] and free["step_max"] > 5 * LR * C
assert clip["final"] < free["final"] / 3
assert np.median(over_seeds("clip_random_sgd_c5", "test_accuracy")) > np.median(over_seeds("clip_random_sgd", "test_accuracy"))

# %% [markdown]
# **The bound on the step holds, exactly.** Clipping does not stop the gradient from growing — the clipped
# run's gradient norm (measured *before* clipping) still climbs above $c$ — but each update of plain SGD is then
# $\alpha\min(\lVert g\rVert, c)$ long, at most $\alpha c = 15$. Without clipping it is $\alpha\lVert g\rVert$. Checked
# step by step against the recorded norms:

# %%
for name, bound in (("clip_random_sgd", np.inf), ("clip_random_sgd_c5", C)):
    s = numbers[name]
    expected = LR * np.minimum(s["g"], bound)
    error = np.max(np.abs(s["lengths"] - expected) / np.maximum(expected, 1e-2))
    print(f"{name:>19}: longest update {s['lengths'].max():7.2f}; largest relative deviation from "
          f"lr*min(||g||, c): {error:.1e}")
    assert error < 1e-3
assert clip["lengths"].max() <= LR * C * (1 + 1e-4) < free["lengths"].max()


# %% [markdown]
# **Where the unclipped run ends: a dead network.** Its cost falls after the peak, but stalls near $\ln 10$
# (the figure), while the clipped run's cost ends several times lower. The long steps pushed the hidden units'
# pre-activations below zero for every training image; a ReLU unit in that state passes no gradient, so it
# never comes back. What is left is a network whose output hardly depends on its input, and its cost stays
# near that of the best **constant** prediction (the label frequencies), whose cost is the entropy of the labels.

# %%
def dead_fraction(model):
    """Share of hidden units whose pre-activation is <= 0 for every one of the 100 training images."""
    Z1 = X @ model.params["dense_0/W"] + model.params["dense_0/b"]
    return float(np.mean(np.all(Z1 <= 0, axis=0)))


frequencies = np.bincount(y, minlength=10) / len(y)
label_entropy = float(-np.sum(frequencies[frequencies > 0] * np.log(frequencies[frequencies > 0])))
dead = {name: dead_fraction(result["model"]) for name, result in results.items()}
for name in results:
    print(f"{name:>19}: dead hidden units {dead[name]:.0%}; final cost {numbers[name]['final']:.3f}")
print(f"cost of the best constant prediction (entropy of the 100 labels): {label_entropy:.3f}; ln 10 = {np.log(10):.3f}")
assert dead["clip_random_sgd"] >= 0.7 and dead["clip_random_sgd"] > dead["clip_random_sgd_c5"] + 0.3
assert free["final"] > 0.6 * label_entropy


# %% [markdown]
# **The divergence guard stays silent.** All runs kept `stop_on_divergence` on, and none was stopped
# (`diverged` is False in the table above). Chapter 09's guard compares the running mean of the cost with its
# value after 10 warm-up steps; here the explosion happens *inside* the warm-up, so the reference itself is
# inflated, and afterwards the cost only falls — to the cost of a dead network, not to NaN. Recomputing the
# guard's running mean from the recorded costs:

# %%
def guard_trace(losses, smoothing=0.9, warmup=10):
    mean, trace = None, []
    for loss in losses:
        mean = loss if mean is None else smoothing * mean + (1 - smoothing) * loss
        trace.append(mean)
    return trace[warmup - 1], max(trace[warmup:])


reference, later = guard_trace(results["clip_random_sgd"]["history"].steps_values("train", "loss")[1])
print(f"guard reference after warm-up {reference:.1f}; largest running mean afterwards {later:.1f} "
      f"(the guard stops above {10 * reference:.0f})")
assert not any(result["diverged"] for result in results.values()) and later < 10 * reference

# %% [markdown]
# So a silent guard is not proof of a healthy run: the figure and the dead units are.
#
# ## 7. With sane settings there is nothing to clip
#
# The third run (He initialisation, Adam, $\alpha = 10^{-3}$) on the same 100 images:

# %%
sane = numbers["clip_he_adam"]
print(f"clip_he_adam: max ||g|| {sane['g_max']:.2f} (c = {C:g}); steps with ||g|| > c: {sane['clipped']}; "
      f"longest update {sane['step_max']:.3f}; final cost {sane['final']:.4f}; test accuracy (seed 0) {sane['test']:.3f}")
assert sane["g_max"] < C / 2 and sane["clipped"] == 0
sane_loss = results["clip_he_adam"]["history"].steps_values("train", "loss")[1]
print(f"largest increase of its cost from one step to the next: {np.diff(sane_loss).max():+.2e}")
assert sane["final"] < start["he"]["loss"] / 3 and np.all(np.diff(sane_loss) < 1e-3)
assert np.median(over_seeds("clip_he_adam", "test_accuracy")) > np.median(over_seeds("clip_random_sgd_c5", "test_accuracy"))

# %% [markdown]
# Its gradient norm never comes near $c = 5$, so clip-norm at $c = 5$ would not have changed a single bit of this
# run (chapter 06: a gradient under the threshold is left untouched), and its cost falls steadily with it.
# Clip-norm is a **guard rail**: it bounds the length of a step when something has gone wrong. It did not fix
# the first run — it made the damage smaller (fewer dead units, lower final cost, in the numbers above) — and
# it cannot fix a wrong gradient. The original's real problem was a wrong gradient: its softmax backward applied
# one Jacobian to the whole batch (experiment 06 shows it), and clipping only hid the symptom.
#
# (With 100 training images every run overfits: the test accuracies above are far below what the full training
# set gives; experiment 02 trains on all of it.)
#
# ## Summary
#
# * With the original's $\mathcal N(0,1)$ initialiser, an MNIST Dense(50) network starts with logits in the tens,
#   a saturated softmax, an initial cost in the tens and a gradient norm about ten times He's — predicted from
#   $\lVert x\rVert^2$ and measured.
# * Plain SGD with $\alpha = 3$ then takes steps far longer than the region where the gradient is a good guide
#   ($\alpha\lVert g\rVert^2 > L$): the cost explodes to many times its start within a few steps, the gradient norm
#   grows with it, and the run ends as a dead network at about the cost of a constant prediction. The
#   divergence guard does not notice.
# * Clip-norm at $c = 5$ bounds every update to $\alpha c$ (checked step by step), keeps the peak cost and the damage
#   much smaller (a peak under twice the initial cost instead of about twenty times), and leaves far fewer
#   dead units and a final cost several times lower (test accuracy 43.0 % against 22.4 %, medians of 3 seeds; the
#   intervals overlap). It does not make N(0, 1) + SGD with $\alpha = 3$ a good setup.
# * With He initialisation and Adam the gradient norm stays well below 5: there is nothing to clip. Clipping is a
#   guard rail, not a fix.

# %% [markdown]
# ## Exercises
#
# 1. With N(0, 1) weights and plain SGD without clipping, which learning rates of $\{0.01, 0.1, 1, 3\}$ make the
#    cost of these 100 images explode (rise above its initial value at some step)? Relate the answer to
#    $\alpha\lVert g\rVert^2 > L$ of section 2.

# %% [markdown]
# **Solution 1** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # A small trainer without run folder or validation (the 100 images, full batch, as in section 4).
#     from diydnn._06_optimisers import get_optimiser
#     from diydnn._08_mnist import BatchStream
#     from diydnn._09_training import Loop, TrainTask
#
#
#     def train_100(init, optimizer, lr, clip=None, n_steps=NUM_STEPS, seed=0):
#         """Train the Dense(50) network on the 100 images for n_steps full-batch steps; return (model, history)."""
#         s = check_settings(dict(DEFAULTS, init=init, optimizer=optimizer, lr=lr, clip_grads_norm=clip, seed=seed))
#         rng = np.random.default_rng(s["seed"])
#         model = build_model(s, rng=rng)
#         task = TrainTask(BatchStream(X, y, batch_size=100, rng=rng), SoftmaxCrossEntropy(),
#                          get_optimiser({"name": optimizer, "lr": lr}), n_steps_per_checkpoint=n_steps, clip_norm=clip)
#         return model, Loop(model, task, progress=False, verbose=False).run(n_steps)
#
#
#     explodes = {}
#     for lr in (0.01, 0.1, 1.0, 3.0):
#         _, history = train_100("random", "sgd", lr)
#         _, loss = history.steps_values("train", "loss")
#         explodes[lr] = loss.max() > loss[0]
#         print(f"lr = {lr:5g}: first-order decrease lr*||g||^2 = {lr * start['random']['g'] ** 2:8.1f} against the "
#               f"cost {start['random']['loss']:.1f}; peak cost {loss.max():8.1f} ({loss.max() / loss[0]:.1f} x the first)"
#               f"{'  EXPLODES' if explodes[lr] else ''}")
#     # the two large rates explode, the small ones do not. The first-order rule is a warning sign, not a threshold:
#     # lr = 0.1 already has lr*||g||^2 close to the cost and still does not rise (the gradient shrinks at once)
#     assert explodes[3.0] and explodes[1.0] and not explodes[0.1] and not explodes[0.01]

# %% [markdown]
# 2. Clip at $c = 1$ instead of 5 (N(0, 1), SGD, $\alpha = 3$). What bound holds for each update now, and what
#    happens to the peak cost?

# %% [markdown]
# **Solution 2** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # Every update is at most lr * c = 3 long (clipping acts on a quarter of the steps); the peak cost is no
#     # higher than with c = 5 — here the cost never rises above its start at all.
#     model_c1, history_c1 = train_100("random", "sgd", LR, clip=1.0)
#     _, loss_c1 = history_c1.steps_values("train", "loss")
#     _, g_c1 = history_c1.steps_values("train", "grad_norm")
#     print(f"c = 1: peak cost {loss_c1.max():.1f} (c = 5: {clip['peak']:.1f}); steps with ||g|| > c: {np.sum(g_c1 > 1)} of "
#           f"{len(g_c1)}; final cost {loss_c1[-1]:.3f}")
#     assert loss_c1.max() <= clip["peak"] * 1.01 and np.sum(g_c1 > 1) > 0

# %% [markdown]
# 3. Section 7 claims that clip-norm at $c = 5$ would not change a single bit of the He + Adam run. Check it.

# %% [markdown]
# **Solution 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # Same seed, with and without clipping: every gradient norm stays below c, so clipping multiplies by
#     # min(1, c/||g||) = 1 and the weights after the last step are bit-for-bit equal.
#     plain, _ = train_100("he", "adam", 1e-3)
#     clipped_he, history_he = train_100("he", "adam", 1e-3, clip=C)
#     print(f"largest gradient norm {history_he.steps_values('train', 'grad_norm')[1].max():.2f} < c = {C:g}")
#     assert all(np.array_equal(plain.params[k], clipped_he.params[k]) for k in plain.params)

# %% [markdown]
# ---
# [← 14 — where the time goes](../14_performance.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 01 — clip-norm** · [next: experiment 02 — full data →](02_full_data.ipynb)
