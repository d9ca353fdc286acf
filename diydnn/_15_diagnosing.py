# %% [markdown]
# [← 14 — where the time goes](14_performance.ipynb) · [begin here](00_begin_here.ipynb) · **15 — diagnosing and tuning** · [next: experiment 10 — tuning →](experiments/10_tuning.ipynb)
#
# # 15 — Diagnosing and tuning a run
#
# The course so far makes you good at proving a layer correct (a gradient check to $10^{-7}$), and then hands you
# sliders. This chapter is about the two questions a correct library leaves open: **is this run healthy while it
# runs**, and **which settings should I try**. It builds, on chapter 09's `Loop` callbacks and chapter 10's run
# folders:
#
# 1. **Health signals** as callbacks that read what the layers already keep and write to the `History` (and to
#    W&B): the update-to-weight ratio $\lVert\Delta W\rVert/\lVert W\rVert$ of every layer at every step,
#    activation and gradient statistics as histograms over time, and dead ReLU units; each shown on a healthy
#    run and on sick ones (the original's $\mathcal N(0,1)$ initialisation, a rate too high, a rate too low),
#    and priced in microseconds per step;
# 2. the **learning-rate range test** (Smith, 2015), a rule to read a rate off its curve, and a check of that
#    rule against a grid of full runs, for Adam and for SGD with momentum;
# 3. **random search against grid search** with the same budget (Bergstra & Bengio, 2012), with every trial a
#    run folder, and a parallel-coordinates plot drawn from those folders.
#
# [Experiment 10](experiments/10_tuning.ipynb) then applies the search to the regularised MLP of experiment 07
# on the full data and compares it, seed by seed, with the hand-tuned recipe.

# %%
"""Chapter 15: diagnosing and tuning a run: health signals as callbacks, the learning-rate range test, random search."""
import itertools
import math
import os
from pathlib import Path

import numpy as np

from diydnn._01_dense import as_count
from diydnn._02_activations import ReLU
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import get_optimiser
from diydnn._08_mnist import BatchStream
from diydnn._09_training import Callback, Loop, TrainTask, WandbLogger
from diydnn._10_experiments import check_settings, load_runs, mlp, run_or_load
from diydnn._11_regularisation import Schedule


# %% tags=["active-ipynb"]
# import time
#
# import matplotlib.pyplot as plt
# from IPython.display import Markdown, display
#
# from diydnn._00_conventions import quick_mode, save_figure
# from diydnn._10_experiments import build_model, interval95, mnist_splits, run_experiment
# from diydnn._14_performance import set_threads
#
# QUICK = quick_mode()
# blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14)
# RUNS = Path.cwd() / ("runs_quick" if QUICK else "runs") / "15_diagnosing"     # git-ignored run folders
# train, val, test = mnist_splits()
# N_SUB = 2000 if QUICK else 10000      # the chapter's subset of the training images
# SUBSET = ((train[0][:N_SUB], train[1][:N_SUB]), (val[0][:1000], val[1][:1000]) if QUICK else val, test)
# print("quick mode" if QUICK else "full mode", f"- training subset: {N_SUB} images, validation: {len(SUBSET[1][0])}")

# %% [markdown]
# ## 1. The update-to-weight ratio
#
# A step changes a weight matrix by $\Delta W$. Its size only means something against the size of $W$ itself, so
# the signal is the ratio
#
# $$\rho_t = \frac{\lVert W_t - W_{t-1}\rVert}{\lVert W_{t-1}\rVert}$$
#
# (Frobenius norms), per layer and per step. cs231n's rule of thumb is $\rho \approx 10^{-3}$: much lower and
# the rate is too small, much higher and it is too large. **Where does $10^{-3}$ come from?** After $T$ steps
# the weights have moved, relative to their size, by somewhere between $\rho\sqrt T$ (if the steps point in
# unrelated directions, a random walk) and $\rho T$ (if they all point the same way). A run of a few thousand
# steps should be able to move its weights by a sizeable fraction of themselves, and no single step should:
#
# $$T \approx 10^3\text{–}10^4,\quad \rho\sqrt T \lesssim 1 \lesssim \rho T \;\Longrightarrow\; 10^{-4} \lesssim \rho \lesssim 3\cdot 10^{-2}.$$
#
# The middle of that window, $10^{-3}$, is the rule. For **SGD** the ratio is $\rho = \eta\lVert g\rVert/\lVert W\rVert$,
# which shrinks as the gradients shrink. For **Adam** each element moves by about $\eta$ (its update
# $\eta\,\hat m/\sqrt{\hat v}$ has a magnitude of order one times $\eta$ while the gradient keeps its sign), so for
# an $n_\text{in}\times n_\text{out}$ layer with He weights ($\lVert W\rVert \approx \sqrt{2 n_\text{out}}$)
#
# $$\rho \approx \frac{\eta\sqrt{n_\text{in} n_\text{out}}\; r}{\sqrt{2 n_\text{out}}} = \eta\, r\sqrt{n_\text{in}/2},\qquad r = \text{typical } |\hat m/\sqrt{\hat v}| \le 1,$$
#
# which for $\eta = 10^{-3}$ and $n_\text{in} = 784$ is up to about $2\cdot 10^{-2}$ at the start, falling as $r$
# falls (the gradient's sign becomes noise near a minimum). The same argument for a run of $T$ steps gives the
# window $1/T \lesssim \rho \lesssim 1/\sqrt T$. Section 4 checks the rule on this data: at the best learning rate
# of a grid, what is $\rho$?
#
# `UpdateRatio` measures $\rho$ after the step. A callback only sees the weights *after* a step, so it copies each
# $W$ at the end of the step before the one it measures (into arrays it keeps: no memory allocated per step).
# Everything is recorded under the `History` mode `"health"`, beside `"train"` and the eval tasks.

# %%
def weighted_layers(model):
    """[(name, layer)] of the layers that hold a weight matrix or kernel W, in order."""
    return [(layer.name, layer) for layer in getattr(model, "layers", [model]) if "W" in layer.params]


def record_health(loop, step, values):
    """Health values (name -> float): into the loop's History under the mode "health", and to W&B (as
    "health/<name>") when a WandbLogger of this loop is running."""
    loop.history.append_all("health", step, values)
    for callback in loop.callbacks:
        if isinstance(callback, WandbLogger) and callback.run is not None:
            callback.run.log({f"health/{k}": v for k, v in values.items()}, step=step)


# %%
class UpdateRatio(Callback):
    """Per weighted layer, the size of a step's update against the weights, ||W_t - W_(t-1)|| / ||W_(t-1)||,
    every `every` steps; recorded as History "health"/"update_ratio/<layer>".

    A callback sees the weights only after the step, so it copies W at the end of the step before each step
    it measures (into arrays it keeps, so no memory is allocated per step)."""

    def __init__(self, every=1):
        self.every = as_count(every, "every", "UpdateRatio")
        self._before = {}          # layer name -> copy of W before the step being measured
        self._armed = False

    def _snapshot(self, loop):
        for name, layer in weighted_layers(loop.model):
            W = layer.params["W"]
            if name not in self._before or self._before[name].shape != W.shape:
                self._before[name] = np.empty_like(W)
            np.copyto(self._before[name], W)
        self._armed = True

    def on_train_begin(self, loop):
        self._armed = False
        if (loop.step + 1) % self.every == 0:
            self._snapshot(loop)

    def on_step_end(self, loop, step, logs):
        if self._armed:
            values = {}
            for name, layer in weighted_layers(loop.model):
                W_before = self._before[name]
                dW_norm = np.linalg.norm((layer.params["W"] - W_before).ravel())
                values[f"update_ratio/{name}"] = float(dW_norm / max(np.linalg.norm(W_before.ravel()), 1e-30))
            record_health(loop, step, values)
            self._armed = False
        if (step + 1) % self.every == 0:
            self._snapshot(loop)


# %% [markdown]
# **Check by hand.** For plain SGD, $W_t - W_{t-1} = -\eta\,dW$ exactly (up to float32 rounding), so the recorded
# ratio must be $\eta\lVert dW\rVert/\lVert W_{t-1}\rVert$ with the step's own gradient, which the layer still
# holds after the step:

# %% tags=["active-ipynb"]
# def tiny_model(seed=0):
#     return build_model(check_settings({"architecture": mlp([8])}), n_in=6, rng=np.random.default_rng(seed))
#
#
# X_tiny = np.random.default_rng(1).standard_normal((32, 6)).astype(np.float32)
# y_tiny = (X_tiny[:, 0] > 0).astype(int)
# model = tiny_model()
# task = TrainTask(BatchStream(X_tiny, y_tiny, 32, np.random.default_rng(0)), SoftmaxCrossEntropy(),
#                  get_optimiser({"name": "sgd", "lr": 0.1}))
# loop = Loop(model, task, callbacks=[UpdateRatio()], progress=False, verbose=False)
# W_before = model.layers[0].params["W"].astype(np.float64)
# loop.run(1)
# dW = model.layers[0].grads["W"].astype(np.float64)
# hand = 0.1 * np.linalg.norm(dW) / np.linalg.norm(W_before)
# print(f"recorded {loop.history.last('health', 'update_ratio/dense_0'):.7f}, by hand {hand:.7f}")
# assert np.isclose(loop.history.last("health", "update_ratio/dense_0"), hand, rtol=1e-5)

# %% [markdown]
# ## 2. Activations, gradients and dead units, over training
#
# Chapter 04 drew activation histograms **at initialisation**. Here the same pictures are taken **while
# training**, from what the layers keep anyway: a `Dense` keeps its input $X$ (the activations of the layer before)
# for its backward, a `ReLU` its mask $X > 0$, and after the step every layer still holds its gradient $dW$. So the
# statistics cost no extra forward or backward pass, only a few reductions every `every` steps:
#
# * `ActivationStats`: per layer, mean, standard deviation and **fraction of zeros** of the activations it
#   received (a zero is a ReLU unit that is off for that sample, or a dropped one: no gradient flows through it),
#   the mean and standard deviation of $dW$, and Karpathy's **gradient-to-weight** ratio
#   $\operatorname{std}(dW)/\operatorname{std}(W)$; plus histograms of $\log_{10}|a|$ and $\log_{10}|dW|$, kept
#   per step so they can be drawn **over time** (a magnitude axis: healthy and sick runs differ by decades);
# * `DeadUnits`: the share of each ReLU layer's units that did not fire for **any** sample of the last `every`
#   batches. Such a unit gets no gradient at all, so nothing moves its weights: once dead, it tends to stay dead.

# %%
ACTIVATION_BINS = (-4.0, 6.0, 50)    # log10 |a|: from 1e-4 to 1e6, in 50 bins
GRADIENT_BINS = (-12.0, 2.0, 56)     # log10 |dW|: from 1e-12 to 100, in 56 bins


def log_edges(low, high, n_bins):
    """The n_bins + 1 edges of equal bins of log10|value| from low to high."""
    return np.linspace(low, high, n_bins + 1)


HISTOGRAM_VALUES = 4096     # a histogram of about 50 bins needs no more values than this


def log_histogram(values, edges, max_values=HISTOGRAM_VALUES):
    """(counts over log10|values| in `edges`, fraction of exact zeros): the zeros apart, since log10(0) is -inf.
    Values below the first edge land in the first bin, above the last in the last, so every non-zero counts.
    A large array is read at a fixed stride, at most max_values of its values (the logarithms are the cost)."""
    values = np.asarray(values).ravel()
    values = np.abs(values[::-(-len(values) // max_values)].astype(np.float64))
    nonzero = values[values > 0]
    logs = np.clip(np.log10(nonzero), edges[0], edges[-1])
    counts = np.histogram(logs, bins=edges)[0]
    return counts, 1.0 - len(nonzero) / max(len(values), 1)


# %%
class ActivationStats(Callback):
    """Every `every` steps, per weighted layer after the first: the activations it received in this step's
    forward (what it kept for its backward: no extra forward) and its weight gradient dW.

    History "health": act_mean/<layer>, act_std/<layer>, act_zero/<layer> (fraction of exact zeros: ReLU units
    off, or dropped), grad_mean/<layer>, grad_std/<layer>, grad_to_weight/<layer> = std(dW)/std(W) (first layer
    included). Histograms over log10|value| (bins: self.edges[kind]) are kept in self.histograms[(kind, layer)] = [(step, counts)]."""

    def __init__(self, every=10, activation_bins=ACTIVATION_BINS, gradient_bins=GRADIENT_BINS):
        self.every = as_count(every, "every", "ActivationStats")
        self.edges = {"act": log_edges(*activation_bins), "grad": log_edges(*gradient_bins)}
        self.histograms = {}

    def on_step_end(self, loop, step, logs):
        if step % self.every:
            return
        values = {}
        for i, (name, layer) in enumerate(weighted_layers(loop.model)):
            dW, W = layer.grads["W"], layer.params["W"]
            arrays = {"grad": dW}
            if i > 0 and isinstance(layer._cache, np.ndarray):     # its input: the activations of the layer before
                arrays["act"] = layer._cache
            for kind, a in arrays.items():
                self.histograms.setdefault((kind, name), []).append((step, log_histogram(a, self.edges[kind])[0]))
                values[f"{kind}_mean/{name}"] = float(a.mean(dtype=np.float64))
                values[f"{kind}_std/{name}"] = float(a.std(dtype=np.float64))
                values[f"{kind}_zero/{name}"] = 1.0 - np.count_nonzero(a) / a.size
            values[f"grad_to_weight/{name}"] = values[f"grad_std/{name}"] / max(float(W.std(dtype=np.float64)), 1e-30)
        record_health(loop, step, values)


# %%
class DeadUnits(Callback):
    """The share of each ReLU layer's units that output 0 for every sample of the last `every` training batches:
    History "health"/"dead/<relu layer>". A unit (a column; a channel of an image layer) that never fires gets no
    gradient, so nothing moves its weights: once dead over many batches it tends to stay dead."""

    def __init__(self, every=50):
        self.every = as_count(every, "every", "DeadUnits")
        self._fired = {}        # layer name -> bool per unit: fired at least once since the last record

    def on_step_end(self, loop, step, logs):
        for layer in getattr(loop.model, "layers", ()):
            if isinstance(layer, ReLU) and isinstance(layer._cache, np.ndarray):
                mask = layer._cache                                # X > 0, kept by ReLU.forward for its backward
                fired = mask.any(axis=tuple(range(mask.ndim - 1)))
                seen = self._fired.get(layer.name)
                self._fired[layer.name] = fired if seen is None or seen.shape != fired.shape else seen | fired
        if step % self.every == 0 and self._fired:
            record_health(loop, step, {f"dead/{name}": float(1.0 - fired.mean()) for name, fired in self._fired.items()})
            self._fired = {}


def health_callbacks(every=25, update_every=1, dead_every=50):
    """The three health callbacks with their usual spacing: [UpdateRatio, ActivationStats, DeadUnits]."""
    return [UpdateRatio(update_every), ActivationStats(every), DeadUnits(dead_every)]


# %% [markdown]
# ## 3. A healthy run and three sick ones
#
# The same network (784–256–128–64–10, ReLU) trains for the same number of steps on the chapter's subset,
# four ways:
#
# | run | what is wrong |
# |---|---|
# | healthy | nothing: He initialisation, Adam, $\eta = 10^{-3}$ |
# | original | the original *diy-dnn* recipe: weights drawn from $\mathcal N(0,1)$, plain SGD, clip-norm 5 (which hides the explosion) |
# | lr too high | Adam with $\eta = 3\cdot10^{-2}$ |
# | lr too low | SGD with $\eta = 0.1/128$: what the bug zoo's `one_over_m_twice` switch does to SGD (experiment 09), since dividing every gradient by $m = 128$ again is dividing the rate by 128 |

# %% tags=["active-ipynb"]
# HEALTH_NET = mlp([256, 128, 64])
# SICK = {
#     "healthy": {"optimizer": "adam", "lr": 1e-3},
#     "original": {"optimizer": "sgd", "lr": 0.1, "init": "random", "clip_grads_norm": 5.0},
#     "lr too high": {"optimizer": "adam", "lr": 3e-2},
#     "lr too low": {"optimizer": "sgd", "lr": 0.1 / 128},
# }
# HEALTH_EPOCHS = 1 if QUICK else 2
# DEAD_EVERY = 5 if QUICK else 25      # DeadUnits records every DEAD_EVERY steps
# STATS_EVERY = 5 if QUICK else 10     # ActivationStats every STATS_EVERY steps
#
#
# def health_run(name, changes, seed=0):
#     """One run of the health network with the three health callbacks; returns (result, ActivationStats)."""
#     callbacks = health_callbacks(every=STATS_EVERY, update_every=1, dead_every=DEAD_EVERY)
#     s = check_settings({"architecture": HEALTH_NET, "num_epochs": HEALTH_EPOCHS, "evals_per_epoch": 2, "seed": seed,
#                         "model_name": "health_" + name.replace(" ", "_"), "stop_on_divergence": False, **changes})
#     result = run_experiment(s, runs_dir=RUNS, data=SUBSET, callbacks=callbacks, overwrite=True, progress=False,
#                             verbose=False)
#     return result, callbacks[1]
#
#
# health = {name: health_run(name, changes) for name, changes in SICK.items()}
# for name, (r, _) in health.items():
#     print(f"{name:12s} final training loss {r['final_train_loss']:8.4f}   best validation accuracy "
#           f"{r['best_val_accuracy']:.4f}")

# %% [markdown]
# The **dashboard** below is the same four panels for each run: the training loss, the update ratio per layer
# (the grey band is the window $10^{-4}$–$3\cdot10^{-2}$ of section 1, the line $10^{-3}$), the standard deviation of
# each layer's input activations, and the share of dead units per ReLU layer.

# %% tags=["active-ipynb"]
# def dashboard(history, axes, title=""):
#     """Four panels of a run's health from its History: loss, update ratios, activation std, dead units."""
#     steps, loss = history.steps_values("train", "loss")
#     axes[0].plot(steps, loss, lw=0.8)
#     axes[0].set(yscale="log", title=f"{title}\ntraining loss", xlabel="step")
#     for metric in history.metrics("health"):
#         kind, _, layer = metric.partition("/")
#         panel = {"update_ratio": 1, "act_std": 2, "dead": 3}.get(kind)
#         if panel is not None:
#             axes[panel].plot(*history.steps_values("health", metric), lw=0.9, label=layer)
#     axes[1].axhspan(1e-4, 3e-2, color="0.9"); axes[1].axhline(1e-3, color="0.5", lw=0.8)
#     axes[1].set(yscale="log", title="update / weight  ||ΔW|| / ||W||", xlabel="step")
#     axes[2].set(yscale="log", title="std of each layer's input activations", xlabel="step")
#     axes[3].set(ylim=(-0.03, 1.03), title="dead ReLU units (share)", xlabel="step")
#     for ax in axes[1:]:
#         ax.legend(fontsize=7)
#
#
# fig, axes = plt.subplots(len(health), 4, figsize=(16, 3.2 * len(health)))
# for row, (name, (r, _)) in zip(axes, health.items()):
#     dashboard(r["history"], row, name)
# fig.tight_layout()
# save_figure(fig, "15_health_dashboards.png")
# plt.show()

# %% [markdown]
# The numbers behind the pictures, as medians over the run (the update ratio of the first layer; the largest
# activation spread entering any layer; the dead share of the first ReLU layer at the end):

# %% tags=["active-ipynb"]
# def health_summary(history):
#     """Medians over the run: the first layer's update ratio, the largest activation spread of any layer, and the
#     first ReLU layer's dead share at the end."""
#     ratio = np.median(history.steps_values("health", "update_ratio/dense_0")[1])
#     act_std = max(np.median(history.steps_values("health", m)[1]) for m in history.metrics("health")
#                   if m.startswith("act_std/"))
#     dead = history.last("health", "dead/relu_0")
#     return {"update ratio": ratio, "activation std": act_std, "dead at the end": dead}
#
#
# summaries = {name: health_summary(r["history"]) for name, (r, _) in health.items()}
# print(f"{'run':12s} " + "  ".join(f"{k:>16s}" for k in summaries["healthy"]))
# for name, s in summaries.items():
#     print(f"{name:12s} " + "  ".join(f"{v:16.3g}" for v in s.values()))
# healthy, sick = summaries["healthy"], summaries
# assert 1e-4 < healthy["update ratio"] < 3e-2 and healthy["dead at the end"] < 0.2
# assert sick["lr too low"]["update ratio"] < healthy["update ratio"] / 10            # steps far too small
# assert sick["lr too high"]["update ratio"] > healthy["update ratio"] * 3             # steps far too big
# assert sick["lr too high"]["dead at the end"] > 0.3                                  # ... that kill ReLU units
# assert sick["original"]["activation std"] > 10 * healthy["activation std"]           # N(0,1) weights: huge activations
# assert health["healthy"][0]["best_val_accuracy"] > max(health[n][0]["best_val_accuracy"] for n in SICK if n != "healthy")

# %% [markdown]
# Each sick run has its own signature, and each shows in the first few dozen steps, long before the validation
# accuracy says anything:
#
# * **lr too low**: the update ratio sits decades below the band; activations and dead units look fine; the
#   loss falls slowly and steadily. Nothing is broken, the run is merely wasting its steps.
# * **lr too high**: the update ratio is several times the healthy run's from the first steps (asserted), and ReLU
#   units die in bulk (a big step pushes a unit's bias and weights to where it never fires again, section 2); the
#   loss is noisy.
# * **original** ($\mathcal N(0,1)$ + SGD + clip-norm): the activations entering the deeper layers are enormous
#   (each layer multiplies their spread by about $\sqrt{n_\text{in}/2}$, chapter 04), so the logits are huge, the
#   gradient norm too, and clip-norm shrinks every step to a fixed size that is tiny against weights of that size.
#
# The asserts above check each signature in this run. **Histograms over time** show more than one number per
# layer: each column is one step's histogram of $\log_{10}|a|$ (the zeros, i.e. off units, are left out and counted
# in `act_zero`), darker where more values fall.

# %% tags=["active-ipynb"]
# def histograms_over_time(stats, kind, layer, ax):
#     """A heat map: one column per recorded step, the histogram of log10|values| of one layer."""
#     steps, counts = zip(*stats.histograms[(kind, layer)])
#     image = np.array(counts, dtype=float).T
#     image /= np.maximum(image.sum(axis=0, keepdims=True), 1)
#     bins = stats.edges[kind]
#     ax.imshow(np.log10(image + 1e-4), aspect="auto", origin="lower", cmap="Greys",
#               extent=(steps[0], steps[-1], bins[0], bins[-1]))
#     ax.set(xlabel="step", ylabel=f"log10 |{'a' if kind == 'act' else 'dW'}|")
#
#
# fig, axes = plt.subplots(2, len(health), figsize=(16, 6), sharey="row")
# for j, (name, (_, stats)) in enumerate(health.items()):
#     histograms_over_time(stats, "act", "dense_2", axes[0, j])
#     histograms_over_time(stats, "grad", "dense_0", axes[1, j])
#     axes[0, j].set_title(f"{name}: activations entering dense_2")
#     axes[1, j].set_title(f"{name}: dW of dense_0")
# fig.tight_layout()
# save_figure(fig, "15_histograms_over_time.png")
# plt.show()

# %% [markdown]
# ### What the health signals cost
#
# Chapter 14 priced everything the library does around the arithmetic of a step, on its smallest network
# (784–50–10, batches of 64, SGD), in microseconds. The same here: the CPU time of a step without callbacks,
# with the three health callbacks at their usual spacing (`UpdateRatio` every step, `ActivationStats` every 25
# steps, `DeadUnits` collecting every step and recording every 50), and with all three recording at every step.
# Medians of several repeats, on the same batches from the same weights:

# %% tags=["active-ipynb"]
# def step_microseconds(callbacks_for, n_steps=200 if not QUICK else 50, repeats=7):
#     """Median CPU microseconds per training step of 784-50-10 (batch 64, SGD) with callbacks_for() attached."""
#     X, y = SUBSET[0]
#     times = []
#     for _ in range(repeats):
#         model = build_model(check_settings({"architecture": mlp([50])}), rng=np.random.default_rng(0))
#         task = TrainTask(BatchStream(X, y, 64, np.random.default_rng(0)), SoftmaxCrossEntropy(),
#                          get_optimiser({"name": "sgd", "lr": 0.1}), n_steps_per_checkpoint=10 ** 6)
#         loop = Loop(model, task, callbacks=callbacks_for(), progress=False, verbose=False)
#         loop.run(5)                                       # warm-up: first-call costs out of the timing
#         t0 = time.process_time()
#         loop.run(n_steps)
#         times.append((time.process_time() - t0) / n_steps * 1e6)
#     return float(np.median(times))
#
#
# cost = {"no callbacks": step_microseconds(list),
#         "health, usual spacing": step_microseconds(health_callbacks),
#         "health, every step": step_microseconds(lambda: health_callbacks(every=1, update_every=1, dead_every=1))}
# for what, us in cost.items():
#     print(f"{what:22s} {us:7.1f} µs per step")
# extra = cost["health, usual spacing"] - cost["no callbacks"]
# share = extra / cost["no callbacks"]
# print(f"the health callbacks at their usual spacing add {extra:.1f} µs per step ({100 * share:.0f} % of this step)")
# assert cost["health, every step"] > cost["no callbacks"]
# assert QUICK or extra > 15          # more than chapter 14's cost of the library's own logs (quoted below)

# %% [markdown]
# Chapter 14 measured the library's fixed cost of a step on this network against a hand-written one: about
# 15 µs for what the library logs (the gradient norms, the batch accuracy, the history). <!-- quoted: chapter 14, section 4 -->
# The printed lines above put the health callbacks beside it: on this smallest network they cost more than the
# library's own logging. Their cost is `UpdateRatio`'s copy and two norms of every weight matrix at every step, and
# the statistics of `ActivationStats` (means, standard deviations and logarithms of every activation and gradient
# array, each time it records); both grow with the number of weights, like the step's own matrix products, which
# also grow with the batch. So the share printed above is about the share on any MLP trained with these batches;
# recording everything at every step (the third line) is for debugging one run, not for leaving on.

# %% [markdown]
# ## 4. The learning-rate range test
#
# Smith's test (*Cyclical learning rates for training neural networks*, 2015) trains **one** run for a few hundred
# steps while the rate grows exponentially, from far too small to far too large, and records the loss at each
# step. With the optimiser's rate set to $\eta_\text{min}$ and the factor
#
# $$s(t) = \left(\frac{\eta_\text{max}}{\eta_\text{min}}\right)^{\frac{t-1}{n-1}},\qquad t = 1,\dots,n,$$
#
# (a chapter 11 `Schedule`) every step multiplies the rate by the same amount, so each decade gets the same number
# of steps. The loss first barely moves (the rate is too small to matter), then falls, then turns and explodes; the
# run stops once its running mean exceeds four times its lowest value. The batch losses are noisy, so the curve is
# **smoothed** before it is read, with a centred window (a running mean would lag behind and move the minimum to
# larger rates).
#
# **The rule.** Read the rate at the lowest point of the smoothed curve. fastai's habit is to go one decade lower
# (`divide_by=10`), a safety margin for long runs; we measure both against a grid of complete runs below.

# %%
class ExponentialRamp(Schedule):
    """factor(t) = ratio ** ((t - 1) / (n_steps - 1)): with the optimiser's lr = lr_min and ratio = lr_max / lr_min
    the rate grows by the same factor at every step, from lr_min at step 1 to lr_max at step n_steps."""

    name = "exponential_ramp"

    def __init__(self, ratio, n_steps):
        if not (isinstance(ratio, (int, float, np.number)) and ratio > 1 and math.isfinite(ratio)):
            raise ValueError(f"ExponentialRamp: ratio must be a finite number > 1, got {ratio!r}")
        self.ratio = float(ratio)
        self.n_steps = as_count(n_steps, "n_steps", "ExponentialRamp")
        if self.n_steps < 2:
            raise ValueError(f"ExponentialRamp: n_steps must be at least 2, got {n_steps!r}")

    def __call__(self, t):
        return self.ratio ** ((t - 1) / (self.n_steps - 1))


class StopWhenLossExplodes(Callback):
    """Stop once the running mean of the training loss exceeds `factor` x its lowest value so far."""

    def __init__(self, factor=4.0, smoothing=0.9):
        self.factor, self.smoothing = float(factor), float(smoothing)
        self.mean, self.lowest = None, math.inf

    def on_step_end(self, loop, step, logs):
        loss = logs["loss"]
        self.mean = loss if self.mean is None else self.smoothing * self.mean + (1 - self.smoothing) * loss
        self.lowest = min(self.lowest, self.mean)
        if not math.isfinite(self.mean) or self.mean > self.factor * self.lowest:
            loop.stop(f"range test: the loss exploded at step {step} (lr {logs['lr']:.3g})")


# %%
def lr_range_test(model, X, y, optimizer="adam", lr_min=1e-6, lr_max=10.0, n_steps=300, batch_size=128, rng=None):
    """Smith's learning-rate range test: train `model` (it is changed: pass a fresh one) for up to n_steps
    while the rate grows exponentially from lr_min to lr_max; stop once the loss explodes.

    Returns {"lr": rates, "loss": batch losses, "smoothed": the losses smoothed (centred, see smooth)}."""
    if not 0 < lr_min < lr_max:
        raise ValueError(f"lr_range_test: need 0 < lr_min < lr_max, got lr_min={lr_min!r}, lr_max={lr_max!r}")
    rng = rng if rng is not None else np.random.default_rng(0)
    opt = get_optimiser({"name": optimizer, "lr": lr_min}) if isinstance(optimizer, str) else optimizer
    opt.lr, opt.schedule = lr_min, ExponentialRamp(lr_max / lr_min, n_steps)
    task = TrainTask(BatchStream(X, y, batch_size, rng), SoftmaxCrossEntropy(), opt, n_steps_per_checkpoint=n_steps)
    loop = Loop(model, task, callbacks=[StopWhenLossExplodes()], progress=False, verbose=False)
    history = loop.run(n_steps)
    _, lr = history.steps_values("train", "lr")
    _, loss = history.steps_values("train", "loss")
    return {"lr": lr, "loss": loss, "smoothed": smooth(loss)}


def smooth(values, half_width=10):
    """The mean of each value's window of 2 * half_width + 1 neighbours (fewer at the ends): no lag, unlike
    a running mean, so the minimum stays where it is. Non-finite values (the last, exploded ones) stay out."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    kernel = np.ones(2 * half_width + 1)
    sums = np.convolve(np.where(finite, values, 0.0), kernel, "same")
    counts = np.convolve(finite.astype(float), kernel, "same")
    return np.where(finite, sums / np.maximum(counts, 1), np.nan)


def pick_lr(curve, divide_by=1.0):
    """The range test's pick: the rate at the lowest smoothed loss, divided by `divide_by` (1 here; the habit of
    fastai's lr_find is to go one decade below the minimum, divide_by=10)."""
    i = int(np.nanargmin(curve["smoothed"]))
    return float(curve["lr"][i] / divide_by)


# %% tags=["active-ipynb"]
# MLP = mlp([100])                       # the chapter's MLP: 784-100-10, batches of 128, two epochs on the subset
# RANGE = {"adam": (1e-6, 10.0), "momentum": (1e-6, 10.0)}
# RANGE_SEEDS = (0,) if QUICK else (0, 1, 2, 3, 4)
#
#
# def range_curves(opt):
#     """One range test per seed, each on a fresh model and batch order."""
#     curves = []
#     for seed in RANGE_SEEDS:
#         model = build_model(check_settings({"architecture": MLP}), rng=np.random.default_rng(seed))
#         curves.append(lr_range_test(model, *SUBSET[0], optimizer=opt, lr_min=RANGE[opt][0], lr_max=RANGE[opt][1],
#                                     n_steps=100 if QUICK else 300, rng=np.random.default_rng(seed)))
#     return curves
#
#
# curves = {opt: range_curves(opt) for opt in RANGE}
# picks = {opt: float(np.median([pick_lr(c) for c in cs])) for opt, cs in curves.items()}
# fig, axes = plt.subplots(1, 2, figsize=(13, 4))
# for ax, (opt, cs) in zip(axes, curves.items()):
#     for i, c in enumerate(cs):
#         ax.plot(c["lr"], c["loss"], color=f"C{i}", alpha=0.25, lw=0.7)
#         ax.plot(c["lr"], c["smoothed"], color=f"C{i}", lw=1.6, label=f"seed {RANGE_SEEDS[i]}, smoothed")
#     ax.axvline(picks[opt], color="k", ls="--", lw=1, label=f"pick (median of the minima) {picks[opt]:.3g}")
#     ax.axvline(picks[opt] / 10, color="0.5", ls=":", lw=1, label="one decade lower")
#     ax.set(xscale="log", ylim=(0, 3.5), xlabel="learning rate", ylabel="training loss (batch)", title=f"range test, {opt}")
#     ax.legend(fontsize=8)
# fig.tight_layout()
# save_figure(fig, "15_range_test.png")
# plt.show()
# for opt, cs in curves.items():
#     print(f"{opt:9s} minima of the smoothed curves at {[f'{pick_lr(c):.3g}' for c in cs]} -> pick {picks[opt]:.3g}; "
#           f"{len(cs[0]['lr'])} steps before the loss exploded (seed {RANGE_SEEDS[0]})")

# %% [markdown]
# **Against a grid of full runs.** The same MLP, trained for two epochs on the subset at rates spaced by a factor
# $\sqrt2$, three seeds each; the grid's best rate is the one with the highest mean best validation accuracy. Every
# run also carries `UpdateRatio` (every 10 steps), so the same runs answer section 1's question. Each run is a run
# folder (`runs/15_diagnosing/lrgrid_…`), loaded instead of retrained when its settings are unchanged.

# %% tags=["active-ipynb"]
# GRID_LRS = {"adam": 1e-4 * np.sqrt(2) ** np.arange(0, 17), "momentum": 1e-3 * np.sqrt(2) ** np.arange(0, 21)}
# GRID_SEEDS = (0,) if QUICK else (0, 1, 2)
# if QUICK:
#     GRID_LRS = {opt: lrs[::4] for opt, lrs in GRID_LRS.items()}
#
#
# def grid_run(opt, k, seed):
#     s = check_settings({"architecture": MLP, "num_epochs": 1 if QUICK else 2, "evals_per_epoch": 2, "optimizer": opt,
#                         "lr": float(GRID_LRS[opt][k]), "seed": seed, "model_name": f"lrgrid_{opt}_{k:02d}_s{seed}"})
#     return run_or_load(s, runs_dir=RUNS, data=SUBSET, callbacks=[UpdateRatio(every=10)])
#
#
# grid = {opt: [[grid_run(opt, k, seed) for seed in GRID_SEEDS] for k in range(len(lrs))] for opt, lrs in GRID_LRS.items()}
# grid_acc = {opt: np.array([[r["best_val_accuracy"] for r in runs] for runs in grid[opt]]) for opt in grid}
# best_lr = {opt: float(GRID_LRS[opt][np.argmax(acc.mean(axis=1))]) for opt, acc in grid_acc.items()}
# factor = {opt: max(picks[opt] / best_lr[opt], best_lr[opt] / picks[opt]) for opt in grid}
# factor10 = {opt: max(picks[opt] / 10 / best_lr[opt], best_lr[opt] / (picks[opt] / 10)) for opt in grid}
# for opt in grid:
#     print(f"{opt:9s} range-test pick {picks[opt]:.3g}, best grid rate {best_lr[opt]:.3g} (mean best validation "
#           f"accuracy {grid_acc[opt].mean(axis=1).max():.4f}): within {factor[opt]:.2f}x; "
#           f"one decade lower would be {factor10[opt]:.1f}x off")
# assert grid_acc["adam"].max() > 0.8 and grid_acc["momentum"].max() > 0.8      # learning happened
# met = [opt for opt in grid if factor[opt] <= 2.0]
# missed = {opt: f for opt, f in factor.items() if f > 2.0}
# display(Markdown(f"**Within $2\\times$ of the grid's best**: {', '.join(met) or 'neither'}"
#                  + ("." if not missed else "; **missed** by " + ", ".join(f"{f:.2f}x ({opt})" for opt, f in missed.items())
#                     + ": see below.")))
# if not QUICK:
#     assert all(f <= 2.0 for f in factor.values()), factor            # the pick within 2x of the grid's best, both
#     assert all(f > 2.0 for f in factor10.values()), factor10           # one decade lower: too cautious here

# %% [markdown]
# The printed lines are the test's answer. Where the pick misses $2\times$, look at the grid's accuracy around its
# best: the top of the curve is flat, and neighbouring rates differ by less than the seed-to-seed spread, so "the best
# grid rate" itself is only known to within about a factor of two (the green curves in the figure below show it).
# One decade lower would have been too cautious for runs this short in every case (asserted): a two-epoch budget
# rewards the largest rate that still trains; the decade of margin pays off for long runs and for one-cycle
# schedules that climb to the picked rate. The range test took one short run per seed; the grid took dozens of
# complete runs.
#
# **Is $\rho \approx 10^{-3}$ true here?** The update ratio of the first layer in each grid run (median over the
# run), against the run's accuracy:

# %% tags=["active-ipynb"]
# def median_ratio(run, layer="dense_0"):
#     return float(np.median(run["history"].steps_values("health", f"update_ratio/{layer}")[1]))
#
#
# fig, axes = plt.subplots(1, 2, figsize=(13, 4))
# ratio_at_best = {}
# for ax, opt in zip(axes, grid):
#     ratios = np.array([[median_ratio(r) for r in runs] for runs in grid[opt]]).mean(axis=1)
#     ax.plot(GRID_LRS[opt], ratios, "o-", label="median ||ΔW||/||W||, dense_0")
#     ax.axhline(1e-3, color="0.5", lw=0.8)
#     ax.axvline(best_lr[opt], color="k", ls="--", lw=1, label="best grid rate")
#     ax.set(xscale="log", yscale="log", xlabel="learning rate", title=opt)
#     twin = ax.twinx()
#     twin.plot(GRID_LRS[opt], grid_acc[opt].mean(axis=1), "s-", color="C2", ms=3, label="best val. accuracy")
#     twin.set(ylim=(0.5, 1.0))
#     ax.legend(loc="upper left", fontsize=8); twin.legend(loc="lower right", fontsize=8)
#     ratio_at_best[opt] = float(ratios[np.argmax(grid_acc[opt].mean(axis=1))])
# fig.tight_layout()
# save_figure(fig, "15_update_ratio_vs_lr.png")
# plt.show()
# T = grid["adam"][0][0]["steps"]                   # steps of every grid run
# print(f"each grid run takes T = {T} steps: section 1's window for this run length is 1/T = {1 / T:.2g} "
#       f"to 1/sqrt(T) = {1 / np.sqrt(T):.2g}")
# for opt, rho in ratio_at_best.items():
#     print(f"{opt:9s} at the best grid rate the update ratio of the first layer is {rho:.2g} "
#           f"({rho / 1e-3:.1f} times the rule's 1e-3)")
# if not QUICK:
#     assert all(1 / T < rho < 1 / np.sqrt(T) and rho > 1e-3 for rho in ratio_at_best.values())

# %% [markdown]
# **Not here.** At the best rate the ratio is well above $10^{-3}$, by the printed factors, for both optimisers; but
# it lies inside the window that section 1's argument gives for runs *of this length*, $1/T < \rho < 1/\sqrt T$
# (asserted): a run of a few hundred steps must take larger steps to move its weights as far as a run of many
# thousands, for which $10^{-3}$ was meant. So the rule is a sanity band that scales with the length of the run,
# not a target; the range test reads the rate off the data directly.
#
# ## 5. Random search against grid search
#
# A grid of $k$ values per parameter over $d$ parameters costs $k^d$ runs and tries only $k$ distinct values of
# each. Bergstra & Bengio (*Random search for hyper-parameter optimization*, JMLR 2012) observed that usually
# only one or two parameters matter much: a random search with the **same budget** tries a new value of *every*
# parameter in every trial, so the important one is explored $k^{d-1}$ times more finely. We search four:
#
# | parameter | range | drawn |
# |---|---|---|
# | learning rate (AdamW) | $10^{-4}$ – $3\cdot10^{-2}$ | log-uniform |
# | weight decay (decoupled) | $10^{-5}$ – $10^{-1}$ | log-uniform |
# | dropout after the hidden layer | 0 – 0.5 | uniform |
# | batch size | 32 – 512 | log-uniform, rounded |
#
# The grid takes the centres of two equal cells per axis (on the log scale where the range is), so that no point
# sits on the edge of a range: $2^4$ trials. The random search gets the same number of trials.

# %%
SEARCH_SPACE = {   # name -> (low, high, how to draw)
    "lr": (1e-4, 3e-2, "log"),
    "weight_decay": (1e-5, 1e-1, "log"),
    "dropout": (0.0, 0.5, "uniform"),
    "batch_size": (32, 512, "log_int"),
}


def _draw(low, high, how, u):
    """The value at u in [0, 1] of a range: log-uniform, uniform, or log-uniform rounded to an integer."""
    if how == "uniform":
        return low + u * (high - low)
    value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return int(round(value)) if how == "log_int" else value


def random_trials(n, rng, space=SEARCH_SPACE):
    """n points drawn independently: every parameter from its range, log-uniform where the range says so."""
    return [{name: _draw(*space[name], rng.random()) for name in space} for _ in range(n)]


def grid_trials(per_axis, space=SEARCH_SPACE):
    """Every combination of per_axis values per parameter: the centres of per_axis equal cells of its range
    (on the log scale for log ranges), so no grid point sits on an edge of the range. per_axis ** len(space)
    points; per_axis may be an int or a dict name -> int."""
    counts = per_axis if isinstance(per_axis, dict) else dict.fromkeys(space, per_axis)
    axes = {name: [_draw(*space[name], (i + 0.5) / counts[name]) for i in range(counts[name])] for name in space}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


# %%
def trial_settings(base, params, name):
    """Run settings for one trial: `base` (with "hidden": the widths of an MLP) with the trial's parameters.
    Dropout goes into the architecture (after each hidden ReLU); other parameters are run settings."""
    s = {k: v for k, v in base.items() if k != "hidden"}
    if "dropout" in params:
        s["architecture"] = mlp(base["hidden"], dropout=round(float(params["dropout"]), 4))
    s.update({k: v for k, v in params.items() if k != "dropout"})
    return check_settings({**s, "model_name": name})


def run_search(base, trials, prefix, runs_dir=None, data=None, wandb_group=None, callbacks=()):
    """Train (or load, chapter 10's run_or_load) one run folder per trial, named <prefix>_<number>; returns the
    results in order, each with its "params". wandb_group: also log each trial to W&B in this group."""
    results, group_before = [], os.environ.get("WANDB_RUN_GROUP")
    try:
        for i, params in enumerate(trials):
            settings = trial_settings(base, params, f"{prefix}_{i:02d}")
            extra = list(callbacks)
            if wandb_group is not None:
                os.environ["WANDB_RUN_GROUP"] = wandb_group       # wandb.init reads the group from here
                extra.append(WandbLogger(name=settings["model_name"], config={"search": prefix, **params}))
            result = run_or_load(settings, runs_dir=runs_dir, data=data, callbacks=extra)
            results.append({**result, "params": dict(params)})
    finally:       # later W&B runs of this process are not put in the search's group
        if wandb_group is not None and group_before is None:
            os.environ.pop("WANDB_RUN_GROUP", None)
        elif wandb_group is not None:
            os.environ["WANDB_RUN_GROUP"] = group_before
    return results


def best_trial(results, metric="best_val_accuracy"):
    """The result with the highest `metric` (chosen on validation, never on test)."""
    return max(results, key=lambda r: r[metric])


# %% tags=["active-ipynb"]
# SEARCH_BASE = {"hidden": [100], "optimizer": "adamw", "num_epochs": 1 if QUICK else 2, "evals_per_epoch": 2, "seed": 0}
# N_TRIALS = 2 ** len(SEARCH_SPACE)
# WANDB_GROUP = os.environ.get("DIYDNN_WANDB_GROUP")      # set it to also send every trial to W&B, in that group
# grid_trials_ = grid_trials(2)
# random_trials_ = random_trials(N_TRIALS, np.random.default_rng(2012))
# searches = {name: run_search(SEARCH_BASE, trials, f"search_{name}", runs_dir=RUNS, data=SUBSET,
#                              wandb_group=WANDB_GROUP and f"{WANDB_GROUP}-{name}")
#             for name, trials in (("grid", grid_trials_), ("random", random_trials_))}
# for name, results in searches.items():
#     b = best_trial(results)
#     print(f"{name:6s} {len(results)} trials, distinct learning rates tried: {len({r['params']['lr'] for r in results})}; "
#           f"best validation accuracy {b['best_val_accuracy']:.4f} at "
#           + ", ".join(f"{k} {v:.3g}" for k, v in b["params"].items()))

# %% [markdown]
# **The winner, with seeds.** A best trial is the maximum of many noisy runs, so it flatters itself. Each search's
# best setting is therefore trained again with two more seeds (new weights, batch order and dropout masks), and the
# comparison is made on the mean of the three runs' best validation accuracies, with its 95 % interval (chapter 10's
# `interval95`).

# %% tags=["active-ipynb"]
# def reseeded(results, name, seeds=(1, 2)):
#     """Best validation accuracy of the best trial's setting under seeds 0 (the trial itself), 1, 2."""
#     b = best_trial(results)
#     again = [run_or_load(trial_settings({**SEARCH_BASE, "seed": seed}, b["params"], f"best_search_{name}_s{seed}"),
#                          runs_dir=RUNS, data=SUBSET)["best_val_accuracy"] for seed in seeds]
#     return np.array([b["best_val_accuracy"], *again])
#
#
# winners = {name: reseeded(results, name) for name, results in searches.items()}
# for name, accs in winners.items():
#     low, high = interval95(accs)
#     print(f"{name:6s} best setting over 3 seeds: mean {accs.mean():.4f}, 95 % interval {low:.4f} to {high:.4f}")
# winner = max(winners, key=lambda n: winners[n].mean())
# loser = min(winners, key=lambda n: winners[n].mean())
# separated = interval95(winners[winner])[0] > interval95(winners[loser])[1]
# verdict = (f"**{winner.capitalize()} search won**: its best setting averages "
#            f"{100 * (winners[winner].mean() - winners[loser].mean()):.2f} points of validation accuracy more than "
#            f"{loser} search's over three seeds, and the two intervals "
#            + ("do not overlap." if separated else "overlap, so the difference is within the seed-to-seed noise."))
# display(Markdown(verdict))
# assert min(a.min() for a in winners.values()) > (0.5 if QUICK else 0.9)         # every winner learned
# if not QUICK:
#     assert not separated              # what the verdict above says of this run: no winner beyond the noise

# %% [markdown]
# One search against one grid is one draw: the grid's two learning rates may happen to fall near the best one, or
# not. **How lucky was this grid?** Take section 4's Adam curve (mean best validation accuracy against the rate) as a
# model of the important parameter alone, and compare the best rate a grid of two values can reach — for every
# placement of the grid along the log axis — with the best of sixteen log-uniform random rates (many draws):

# %% tags=["active-ipynb"]
# log_lrs, curve = np.log10(GRID_LRS["adam"]), grid_acc["adam"].mean(axis=1)
# acc_at = lambda lr: np.interp(np.log10(lr), log_lrs, curve)          # accuracy at a rate, from section 4's grid
# low, high = np.log10(SEARCH_SPACE["lr"][0]), np.log10(SEARCH_SPACE["lr"][1])
# offsets = np.linspace(0, 0.5, 101)[:-1]                              # where the first of the two grid values sits
# grid_reach = np.array([max(acc_at(10 ** (low + (u + h) * (high - low))) for h in (0, 0.5)) for u in offsets])
# draws = np.random.default_rng(0).uniform(low, high, (2000, N_TRIALS))
# random_reach = acc_at(10 ** draws).max(axis=1)
# this_grid = max(acc_at(t["lr"]) for t in grid_trials_)
# print(f"best of the curve {curve.max():.4f}; a 2-value grid reaches {grid_reach.mean():.4f} on average over placements "
#       f"(worst {grid_reach.min():.4f}); {N_TRIALS} random rates reach {random_reach.mean():.4f} on average "
#       f"(worst 1 % of draws: {np.quantile(random_reach, 0.01):.4f})")
# print(f"this chapter's grid (cell centres) reaches {this_grid:.4f}: better than or equal to "
#       f"{100 * np.mean(grid_reach <= this_grid + 1e-12):.0f} % of the placements")
# assert random_reach.mean() >= grid_reach.mean()

# %% [markdown]
# **The important parameter.** Each trial's best validation accuracy against each parameter, random trials as
# dots and grid trials as crosses, with the share of the variance across random trials that each parameter alone
# explains (the $R^2$ of a quadratic fit in that parameter, `importance`):

# %%
def _coordinate(name, values, space=SEARCH_SPACE):
    """Where values lie on their axis: log10 for log ranges, as they are otherwise."""
    values = np.asarray(values, dtype=np.float64)
    return values if space[name][2] == "uniform" else np.log10(values)


def importance(results, metric="best_val_accuracy", space=SEARCH_SPACE):
    """Per parameter, the share of the metric's variance across trials that a quadratic in that parameter alone
    explains (R^2 of a least-squares fit): how much the outcome depends on it, the others left to vary."""
    y = np.array([r[metric] for r in results], dtype=np.float64)
    shares = {}
    for name in space:
        x = _coordinate(name, [r["params"][name] for r in results], space)
        if np.ptp(x) == 0:
            shares[name] = 0.0
            continue
        fit = np.polyval(np.polyfit(x, y, 2), x)
        shares[name] = float(1 - np.sum((y - fit) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-30))
    return shares


# %% tags=["active-ipynb"]
# shares = importance(searches["random"])
# fig, axes = plt.subplots(1, len(SEARCH_SPACE), figsize=(16, 3.6), sharey=True)
# for ax, name in zip(axes, SEARCH_SPACE):
#     for search, marker in (("random", "o"), ("grid", "x")):
#         rs = searches[search]
#         ax.scatter([r["params"][name] for r in rs], [r["best_val_accuracy"] for r in rs], marker=marker, label=search)
#     ax.set(xscale="linear" if SEARCH_SPACE[name][2] == "uniform" else "log", xlabel=name,
#            title=f"{name}: R² {shares[name]:.2f}")
# axes[0].set(ylabel="best validation accuracy"); axes[0].legend(fontsize=8)
# fig.tight_layout()
# save_figure(fig, "15_search_marginals.png")
# plt.show()
# print("share of the variance explained, random trials:", {k: round(v, 2) for k, v in shares.items()})
# assert max(shares, key=shares.get) == "lr" or QUICK

# %% [markdown]
# The learning rate explains most of the variance (asserted: it has the largest share), the other three little at
# this budget. That is Bergstra & Bengio's effect on this data: the grid spent its sixteen trials on two learning
# rates, while random search tried sixteen. The cell before shows what that costs on average: over the placements
# of a grid, two rates reach less than sixteen random ones (asserted); a particular grid can still be lucky, and
# the printed share says how lucky this one was — which is why the comparison of the two winners above is
# reported with its intervals and not as a law.
#
# **Parallel coordinates from the run folders.** W&B draws this view from a group of runs (set
# `DIYDNN_WANDB_GROUP`); without W&B the same picture comes from the run folders themselves: `search_runs` reads them
# back with chapter 10's `load_runs`, and each line is one trial, through one axis per parameter and the result,
# coloured by the result (the best trial drawn thicker).

# %%
def search_runs(runs_dir, prefix, space=SEARCH_SPACE):
    """The trials of one search, read back from their run folders (chapter 10's load_runs): each with its
    parameters recovered from its stored settings."""
    runs = [r for r in load_runs(runs_dir) if Path(r["folder"]).name.startswith(prefix + "_")]
    for r in runs:
        s = r["settings"]
        rates = [e["rate"] for e in s["architecture"] if e["layer"] == "Dropout"]
        r["params"] = {name: (rates[0] if rates else 0.0) if name == "dropout" else s[name] for name in space}
    return runs


def parallel_coordinates(runs, ax, metric="best_val_accuracy", space=SEARCH_SPACE, cmap="viridis"):
    """One line per run through one vertical axis per parameter (log axes for log ranges) and the metric,
    coloured by the metric: W&B's parallel-coordinates view, drawn from run folders with matplotlib."""
    import matplotlib.pyplot as plt
    names = list(space) + [metric]
    columns = [_coordinate(n, [r["params"][n] for r in runs], space) for n in space]
    columns.append(np.array([r[metric] for r in runs], dtype=np.float64))
    low = [min(c.min(), _coordinate(n, [space[n][0]], space)[0]) if n in space else c.min() for n, c in zip(names, columns)]
    high = [max(c.max(), _coordinate(n, [space[n][1]], space)[0]) if n in space else c.max() for n, c in zip(names, columns)]
    scaled = np.array([(c - lo) / max(hi - lo, 1e-12) for c, lo, hi in zip(columns, low, high)])
    colours = plt.get_cmap(cmap)((columns[-1] - columns[-1].min()) / max(np.ptp(columns[-1]), 1e-12))
    for j in np.argsort(columns[-1]):            # best runs drawn last, on top
        ax.plot(range(len(names)), scaled[:, j], color=colours[j], lw=2.2 if j == np.argmax(columns[-1]) else 1.0)
    for i, (n, lo, hi) in enumerate(zip(names, low, high)):
        ax.axvline(i, color="0.4", lw=0.8)
        fmt = (lambda v: f"{10 ** v:.2g}") if n in space and space[n][2] != "uniform" else (lambda v: f"{v:.3g}")
        ax.text(i, -0.06, fmt(lo), ha="center", va="top", fontsize=8)
        ax.text(i, 1.04, fmt(hi), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks([])
    ax.set_ylim(-0.15, 1.12)

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(15, 4.2))
# for ax, name in zip(axes, ("grid", "random")):
#     runs = search_runs(RUNS, f"search_{name}")
#     assert len(runs) == N_TRIALS                    # every trial is a complete run folder
#     parallel_coordinates(runs, ax)
#     ax.set_title(f"{name} search: {len(runs)} run folders")
# fig.tight_layout()
# save_figure(fig, "15_parallel_coordinates.png")
# plt.show()

# %% [markdown]
# **Successive halving** (stopping hopeless trials early and giving their budget to the promising ones) is the
# natural next step; it is left as an open question after the exercises.

# %% [markdown]
# ## Summary
#
# * **Health signals are callbacks** that read what the layers keep for their backward (a `Dense`'s input, a
#   `ReLU`'s mask, the gradients after the step) and record into the `History` under `"health"` (and to W&B):
#   `UpdateRatio` ($\lVert\Delta W\rVert/\lVert W\rVert$ per layer and step), `ActivationStats` (mean, std, share of
#   zeros of the activations and of $dW$, and histograms over time), `DeadUnits`. They change nothing: the trained
#   weights are the same bit for bit with and without them (tested), and their cost per step is printed above.
# * **Signatures.** Rate too low: update ratio decades below $10^{-3}$, everything else calm. Rate too high: ratio
#   several times a healthy run's, ReLU units dying in bulk. $\mathcal N(0,1)$ weights: activations decades too large from the first
#   step. All visible in the first few dozen steps.
# * **The $10^{-3}$ rule** comes from wanting weights to move by order one over $10^3$–$10^4$ steps and by little in
#   any one; at the best grid rate here the ratio lies inside that window (printed), not on $10^{-3}$ itself.
# * **The range test** costs one short run; reading the rate at the minimum of its centred-smoothed curve landed
#   within $2\times$ of the best of a grid of complete runs for Adam and SGD with momentum (printed and asserted).
# * **Random search** tries a new value of every parameter in every trial; when one parameter dominates (here the
#   learning rate), it explores that one far better than a grid of the same budget. Compare winners over several
#   seeds, with intervals: the best of many noisy trials flatters itself.
#
# ## Exercises
#
# 1. **Three unknown dashboards.** The cell below trains a different network (784–128–128–10) three ways, each with
#    one of the problems of section 3 (rate too high, rate too low, the original's $\mathcal N(0,1)$ weights), in a
#    hidden order, and draws their dashboards as runs A, B and C. Name each run's problem from the pictures alone,
#    then write `diagnose(history)`, a rule that names it from the health signals, and check it on all three.
# 2. **Pick a rate from a curve.** The second cell below draws the range test of a 784–256–10 MLP with plain SGD (no
#    momentum). Read a rate off the curve; then train the network for two epochs on the subset at your rate, at a
#    tenth of it and at ten times it, and compare.
#
# *An open question to go further*: **successive halving**. With a budget of 16 trial-epochs, train 8 random trials
# for one epoch, keep the best 4 for one more epoch (chapter 09's `Loop` resumes a run folder from its last
# checkpoint), and so on. Does it find a better setting than 16 two-epoch trials?

# %% tags=["active-ipynb"]
# MYSTERY = {"lr too high": {"optimizer": "momentum", "lr": 1.5}, "lr too low": {"optimizer": "adam", "lr": 3e-6},
#            "N(0,1) weights": {"optimizer": "adam", "lr": 1e-3, "init": "random"}}
# order = np.random.default_rng(15).permutation(len(MYSTERY))
# mystery = {}
# for label, i in zip("ABC", order):
#     problem = list(MYSTERY)[i]
#     s = check_settings({"architecture": mlp([128, 128]), "num_epochs": 1, "evals_per_epoch": 2, "seed": 3,
#                         "model_name": f"mystery_{label}", "stop_on_divergence": False, **MYSTERY[problem]})
#     mystery[label] = (problem, run_experiment(s, runs_dir=RUNS, data=SUBSET, callbacks=health_callbacks(STATS_EVERY, dead_every=DEAD_EVERY),
#                                               overwrite=True, progress=False, verbose=False)["history"])
# fig, axes = plt.subplots(3, 4, figsize=(16, 9.6))
# for row, (label, (_, history)) in zip(axes, mystery.items()):
#     dashboard(history, row, f"run {label}")
# fig.tight_layout()
# plt.show()

# %% tags=["active-ipynb"]
# sgd_curve = lr_range_test(build_model(check_settings({"architecture": mlp([256])}), rng=np.random.default_rng(7)),
#                           *SUBSET[0], optimizer="sgd", lr_min=1e-5, lr_max=100.0, n_steps=100 if QUICK else 300,
#                           rng=np.random.default_rng(7))
# fig, ax = plt.subplots(figsize=(7, 3.6))
# ax.plot(sgd_curve["lr"], sgd_curve["loss"], alpha=0.3, lw=0.7)
# ax.plot(sgd_curve["lr"], sgd_curve["smoothed"], lw=1.6)
# ax.set(xscale="log", ylim=(0, 3.5), xlabel="learning rate", ylabel="training loss", title="range test: 784-256-10, SGD")
# plt.show()

# %% [markdown]
# **Solution 1** — try the exercise first; the cell below is collapsed (click to open).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # The update ratio against the band; activations far above order 1 name the initialisation.
#     def diagnose(history):
#         s = health_summary(history)
#         if s["update ratio"] > 3e-2 or s["dead at the end"] > 0.5:
#             return "lr too high"             # big steps kill ReLU units (and a run that blows up has huge activations too)
#         if s["activation std"] > 3:
#             return "N(0,1) weights"          # He weights keep activations of order 1 (chapter 04)
#         if s["update ratio"] < 1e-4:
#             return "lr too low"
#         return "healthy"
#
#
#     for label, (problem, history) in mystery.items():
#         print(f"run {label}: diagnosed {diagnose(history)!r}, was {problem!r};", {k: f"{v:.3g}" for k, v in health_summary(history).items()})
#         assert diagnose(history) == problem
#     assert diagnose(health["healthy"][0]["history"]) == "healthy"

# %% [markdown]
# **Solution 2** — try the exercise first; the cell below is collapsed (click to open).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # The rate at the smoothed minimum, checked against a tenth and ten times of it.
#     lr_pick = pick_lr(sgd_curve)
#     accs = {}
#     for lr in (lr_pick / 10, lr_pick, lr_pick * 10):
#         s = check_settings({"architecture": mlp([256]), "optimizer": "sgd", "lr": float(lr), "num_epochs": 1 if QUICK else 2,
#                             "evals_per_epoch": 2, "seed": 7, "model_name": f"exercise_sgd_{lr:.3g}"})
#         accs[lr] = run_experiment(s, runs_dir=RUNS, data=SUBSET, overwrite=True, progress=False, verbose=False)["best_val_accuracy"]
#         print(f"lr {lr:.3g}: best validation accuracy {accs[lr]:.4f}")
#     assert accs[lr_pick] > accs[lr_pick / 10] and accs[lr_pick] > accs[lr_pick * 10]

# %% [markdown]
# ## Engineering: where the health values go, and what is checked
#
# * `record_health` appends to the `History` under the mode `"health"` (saved with every checkpoint and in the run
#   folder's `history.json`, so `load_runs` gives them back) and, when a `WandbLogger` of the same loop is running,
#   logs them to W&B as `health/<name>` at the same step. The histograms stay in the `ActivationStats` object (they
#   are arrays, not scalars).
# * `run_search` with `wandb_group` adds a `WandbLogger` per trial and sets `WANDB_RUN_GROUP`, which `wandb.init`
#   reads, so that all trials of a search land in one W&B group (W&B's parallel-coordinates panel then compares them).
# * Bad arguments are refused with the name and the value:

# %% tags=["active-ipynb"]
# for bad in (lambda: UpdateRatio(every=0), lambda: ExponentialRamp(0.5, 100), lambda: ExponentialRamp(10, 1),
#             lambda: lr_range_test(tiny_model(), X_tiny, y_tiny, lr_min=1.0, lr_max=0.1)):
#     try:
#         bad()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("accepted a bad argument")
