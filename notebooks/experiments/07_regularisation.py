# %% [markdown]
# [← experiment 06 — the original's bug](06_original_bug.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 07 — regularisation** · [next: experiment 08 — CNN →](08_cnn.ipynb)
#
# # Experiment 07 — Regularisation: each remedy alone and together
#
# [Chapter 11](../11_regularisation.ipynb) derived and built four remedies for overfitting — dropout, weight
# decay, learning-rate schedules and data augmentation — and showed them on a small training set. Here we
# measure them on the **full** MNIST training data (55,000 images; 5,000 held out for validation) with a
# 784–512–512–10 ReLU MLP, He initialisation, batches of 128, 20 epochs:
#
# | recipe | what changes from "none" (Adam, $\alpha = 10^{-3}$, constant) |
# |---|---|
# | none | nothing: the curve that overfits |
# | dropout | `Dropout(0.2)` after each hidden ReLU |
# | decay | AdamW with decoupled decay $\lambda = 0.05$ on the weight matrices (not biases) |
# | cosine | one epoch of linear warm-up, then cosine decay to 0 |
# | shift | every training image shifted by up to ±2 pixels (each axis), new shifts at every batch |
# | all | all four together |
#
# Each recipe runs with **three seeds** (initial weights, batch order, masks and shifts all differ); the
# table gives the **median** test accuracy and a **95 % interval** (Student's t interval for the mean of
# three runs). The test set is scored once per run, by the checkpoint with the best validation accuracy.
#
# **The target**: an MLP with ≥ 98.5 % test accuracy (median of 3 seeds), each run ≤ 120 s on two CPU cores;
# stretch ≥ 98.8 %.
#
# **Run records.** The 18 runs of 20 epochs take a while, so what this notebook shows of each is committed as a small
# run record (`records/<recipe>_seed<seed>.json`: settings, history, result, timing, which test images it gets right;
# no weights), and Run All **reads the records instead of training** (chapter 10, `run_or_load`). To train every run
# again, run the notebook with the environment variable `DIYDNN_RETRAIN=1`. In the test suite's quick mode every run uses
# 4,000 training images for 3 epochs, validates on 1,000 and tests on 2,000, and only "regularised
# training learns" and "dropout is off at inference" are asserted.

# %%
import os

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from diydnn._00_conventions import media_dir, quick_mode, save_figure, write_atomically
from diydnn._10_experiments import (build_model, check_settings, interval95, mlp, mnist_splits, paired_comparison,
                                    run_or_load, to_csv, to_markdown)
from diydnn._10a_panels import experiment_controls
from diydnn._14_performance import set_threads

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)

# %% [markdown]
# ## 1. The recipes

# %%
HIDDEN = [512, 512]
BASE = {"architecture": mlp(HIDDEN), "num_epochs": 20, "lr": 1e-3, "batch_size": 128, "optimizer": "adam",
        "init": "he", "evals_per_epoch": 1}
RECIPES = {
    "all": {"architecture": mlp(HIDDEN, dropout=0.2), "optimizer": "adamw", "weight_decay": 0.05,
            "schedule": "warmup_cosine", "augment": {"max_shift": 2}},
    "none": {},
    "dropout": {"architecture": mlp(HIDDEN, dropout=0.2)},
    "shift": {"augment": {"max_shift": 2}},
    "cosine": {"schedule": "warmup_cosine"},
    "decay": {"optimizer": "adamw", "weight_decay": 0.05},
}
SEEDS = (0, 1, 2)


def settings(recipe, seed):
    s = {**BASE, **RECIPES[recipe], "model_name": f"{recipe}_seed{seed}", "seed": seed}
    if QUICK:
        s.update(num_epochs=3, train_abs_samples=4000)
    return check_settings(s)


train, (X_val, y_val), (X_test, y_test) = mnist_splits()
DATA = (train, (X_val[:1000], y_val[:1000]), (X_test[:2000], y_test[:2000])) if QUICK else None   # None: all of it
for recipe in RECIPES:
    print(f"{recipe:8s}", {k: v for k, v in settings(recipe, 0).items() if k in RECIPES[recipe] and k != "architecture"},
          "dropout" if any(e["layer"] == "Dropout" for e in settings(recipe, 0)["architecture"]) else "")

# %% [markdown]
# ## 2. Try it yourself
#
# The controls start from the "all" recipe (seed 0); the *dropout rate* applies after every hidden layer,
# *weight decay* is decoupled for `adamw` and L2 for the others, *random shift* is the largest shift in pixels.
# *The panel below is live only in a running kernel: **Run All first** (until its cell has run, it shows as one
# line of text). Each Train writes a new run folder (`runs/panel_all-again`, `runs/panel_all-lr0.001`, …),
# named after what you changed; the runs this notebook records are never replaced. A Train runs in the background
# (*Stop* ends it); the "all" run of seed 0 is drawn in grey behind your curves, and the result line says whether
# your run lies inside the three-seed interval of "all" (within seed noise) or outside it.*

# %%
DEFAULTS = {**settings("all", 0), "model_name": "panel_all"}
panel = experiment_controls(DEFAULTS)
panel

# %% [markdown]
# ## 3. The runs
#
# `run_or_load` (chapter 10) reads a run's record when it holds exactly these settings, and trains it otherwise;
# the record keeps the run's CPU time and its wall-clock time. **The machine was shared with other jobs while these
# ran**, so wall time is inflated by waiting for a core; CPU time (of this process) is what the run itself cost.

# %%
def wall_seconds(r):
    """The run's wall-clock seconds: as this notebook once recorded them around the whole run, else the run's own."""
    return r.get("wall_seconds", r["seconds"])


print(f"load average before the runs (1, 5, 15 min): {tuple(round(x, 2) for x in os.getloadavg())}")
results = {}
for recipe in RECIPES:
    for seed in SEEDS:
        r = results[recipe, seed] = run_or_load(settings(recipe, seed), data=DATA)
        print(f"{r['model_name']:14s} test {r['test_accuracy']:.4f}  best val. {r['best_val_accuracy']:.4f}  "
              f"wall {wall_seconds(r):6.1f} s  CPU {r.get('cpu_seconds', float('nan')):6.1f} s"
              f"{'  (run record)' if r['loaded'] else ''}")
assert not any(r["diverged"] for r in results.values())
panel.set_reference([results["all", seed] for seed in SEEDS])     # grey curves and the interval for the panel

# %% [markdown]
# ## 4. Without regularisation the validation loss rises
#
# The left panel is the curve chapter 09 first showed, now on the bigger network and over 20 epochs: the
# validation loss of "none" is lowest after a few epochs and then climbs, while its training loss keeps
# falling. Each remedy changes the shape of that curve; together they keep it low to the end.

# %%
def epochs_and(r, mode, metric):
    steps, values = r["history"].steps_values(mode, metric)
    return steps * r["epochs"] / r["steps"], values


fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
for i, recipe in enumerate(RECIPES):
    r = results[recipe, 0]
    lw = 2.6 if recipe in ("none", "all") else 1.2
    axes[0].plot(*epochs_and(r, "val", "loss"), "o-", ms=3, lw=lw, color=f"C{i}", label=recipe)
    e, loss = epochs_and(r, "train", "loss")          # the steps a run record keeps: about 120, spread over the run
    n_epochs = int(round(r["epochs"]))
    epoch_of = np.clip(np.ceil(e).astype(int), 1, n_epochs)
    axes[1].plot(range(1, n_epochs + 1), [loss[epoch_of == k].mean() for k in range(1, n_epochs + 1)],
                 lw=lw, color=f"C{i}", label=recipe)
    axes[2].plot(*epochs_and(r, "val", "accuracy"), "o-", ms=3, lw=lw, color=f"C{i}", label=recipe)
axes[0].set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="Validation loss (seed 0)")
axes[1].set(xlabel="epoch", ylabel="cross-entropy (mean of each epoch's recorded steps)", yscale="log",
            title="Training loss (seed 0; with dropout/shifts: on perturbed batches)")
axes[2].set(xlabel="epoch", ylabel="accuracy", ylim=(0.5 if QUICK else 0.975, 1.0 if QUICK else 0.993),
            title="Validation accuracy (seed 0)")
for ax in axes:
    ax.grid(alpha=0.3); ax.legend(fontsize=8)
fig.suptitle("784-512-512-10 on MNIST: overfitting without regularisation, and each remedy")
fig.tight_layout()
save_figure(fig, "exp_07_curves.png")
plt.show()

# %%
_, none_val = epochs_and(results["none", 0], "val", "loss")
_, all_val = epochs_and(results["all", 0], "val", "loss")
print(f"'none': validation loss from its minimum {none_val.min():.4f} (epoch {np.argmin(none_val) + 1}) "
      f"to {none_val[-1]:.4f} at the end; 'all': minimum {all_val.min():.4f}, end {all_val[-1]:.4f}")
if not QUICK:
    assert none_val[-1] > 1.25 * none_val.min()           # it rises
    assert all_val[-1] < 1.1 * all_val.min()              # it does not

# %% [markdown]
# ## 5. Test accuracy: median of three seeds, with a 95 % interval
#
# For three runs $a_1, a_2, a_3$ with mean $\bar a$ and sample standard deviation $s$, the 95 % interval for
# the mean is $\bar a \pm t_{0.975,\,2}\, s/\sqrt 3$ with $t_{0.975,\,2} = 4.303$ (Student's t with 2 degrees
# of freedom). Three seeds make a wide interval: it says how far apart recipes must be before the difference
# means anything. Times are medians over the three runs.

# %%
# interval95 (chapter 10): mean +- t(0.975, n-1) s / sqrt(n), the Student-t interval of the mean over the seeds
check = np.random.default_rng(0).normal(0.98, 0.001, size=(20000, 3))   # the interval covers the mean 95 % of the time
covered = np.mean([(lo <= 0.98 <= hi) for lo, hi in map(interval95, check)])
assert abs(covered - 0.95) < 0.01, covered

rows = []
for recipe in RECIPES:
    runs = [results[recipe, seed] for seed in SEEDS]
    acc = [r["test_accuracy"] for r in runs]
    lo, hi = interval95(acc)
    rows.append({"recipe": recipe, "test accuracy (median of 3)": f"{np.median(acc):.2%}",
                 "95 % interval": f"{lo:.2%} – {hi:.2%}", "seeds 0, 1, 2": ", ".join(f"{a:.2%}" for a in acc),
                 "best epoch (median)": int(np.median([r["best_step"] * r["epochs"] / r["steps"] for r in runs])),
                 "wall s (median)": f"{np.median([wall_seconds(r) for r in runs]):.0f}",
                 "CPU s (median)": f"{np.median([r.get('cpu_seconds', np.nan) for r in runs]):.0f}"})
table_md = to_markdown(rows)
display(Markdown(table_md))
if not QUICK:            # the committed table describes the full runs; the test suite never overwrites it
    for name, text in (("exp_07_results.md", table_md), ("exp_07_results.csv", to_csv(rows))):
        write_atomically(media_dir() / name, lambda f, text=text: f.write(text.encode()))

# %% [markdown]
# **Which differences are shown?** Overlapping intervals do not settle it: every recipe was tested on the same 10,000
# images, and seed $s$ of one recipe can be set against seed $s$ of another, image by image (chapter 10,
# `paired_comparison`). Below, each recipe against "none", and "all" against each single remedy: the per-seed
# differences (median and 95 % interval), the test images only one of the two gets right (summed over the seeds),
# McNemar's exact p on those, and the verdict — **shown** only when the interval of the per-seed differences excludes
# zero *and* McNemar's $p < 0.05$, in the same direction.

# %%
def paired_row(a, b):
    c = paired_comparison([results[a, s] for s in SEEDS], [results[b, s] for s in SEEDS])
    verdict = {"A better": f"{a} better", "B better": f"{b} better"}.get(c["verdict"], "not shown")
    return c, {"A − B": f"{a} − {b}", "points (median of seeds)": f"{c['diff_median'] * 100:+.2f}",
               "95 % interval of per-seed differences": f"{c['interval'][0] * 100:+.2f} to {c['interval'][1] * 100:+.2f}",
               "images only A / only B right (3 seeds)": f"{c['n10']} / {c['n01']}", "McNemar p": f"{c['p']:.2g}",
               "verdict": verdict}


PAIRS_07 = [(r, "none") for r in RECIPES if r != "none"] + [("all", r) for r in RECIPES if r not in ("all", "none")]
paired = {}
paired_rows = []
for a, b in PAIRS_07:
    paired[a, b], row = paired_row(a, b)
    paired_rows.append(row)
display(Markdown(to_markdown(paired_rows)))

# %%
fig, ax = plt.subplots(figsize=(8, 3.6))
for i, recipe in enumerate(RECIPES):
    acc = [results[recipe, seed]["test_accuracy"] for seed in SEEDS]
    lo, hi = interval95(acc)
    ax.plot([i] * len(acc), acc, "o", color=f"C{i}", alpha=0.6)
    ax.plot([i - 0.2, i + 0.2], [np.median(acc)] * 2, color=f"C{i}", lw=3)
    ax.plot([i, i], [lo, hi], color=f"C{i}", lw=1)
ax.axhline(0.985, color="0.4", ls="--", lw=1, label="target 98.5 %")
ax.axhline(0.988, color="0.6", ls=":", lw=1, label="stretch 98.8 %")
ax.set_xticks(range(len(RECIPES)), list(RECIPES))
ax.set(ylabel="test accuracy", title="Three seeds per recipe: runs (dots), median (bar), 95 % interval (line)")
ax.grid(alpha=0.3, axis="y"); ax.legend(fontsize=8, loc="lower right")
save_figure(fig, "exp_07_regularisation.png")
plt.show()

# %% [markdown]
# ## 6. The target, and dropout at inference

# %%
median = {recipe: float(np.median([results[recipe, s]["test_accuracy"] for s in SEEDS])) for recipe in RECIPES}
best = max(median, key=median.get)
cpu = [results[best, s].get("cpu_seconds", np.nan) for s in SEEDS]
wall = [wall_seconds(results[best, s]) for s in SEEDS]
print(f"best recipe: {best!r}, median test accuracy {median[best]:.2%}; per run: wall {', '.join(f'{w:.0f}' for w in wall)} s, "
      f"CPU {', '.join(f'{c:.0f}' for c in cpu)} s")
# Dropout at inference: a property of the layer, not of trained weights, so a freshly built model of each recipe
# shows it (no weights needed: the runs' records hold none)
model = build_model(settings(best, 0), rng=np.random.default_rng(0))
X_check = X_test[:2000]
assert np.array_equal(model.predict(X_check), model.predict(X_check))   # dropout is off at inference: deterministic
dropout_model = build_model(settings("dropout", 0), rng=np.random.default_rng(0))
assert any(type(layer).__name__ == "Dropout" for layer in dropout_model.layers)
assert np.array_equal(dropout_model.predict(X_check), dropout_model.predict(X_check))
assert not np.array_equal(dropout_model.forward(X_check, training=True), dropout_model.forward(X_check, training=True))
for recipe in RECIPES:                                          # every recipe learns, in quick mode too
    assert median[recipe] > (0.85 if QUICK else 0.98), (recipe, median[recipe])
if not QUICK:
    assert median["all"] >= 0.985
    assert median["all"] > median["none"]
print(f"target: every run of the best recipe <= 120 s of CPU time: {'met' if all(c <= 120 for c in cpu) else 'NOT met'} "
      f"(printed, not asserted: the time depends on the machine and its load)")

# %% [markdown]
# ## 7. Reading the numbers
#
# The sentences below are written by the cell from the numbers above (the quick run of the test suite writes its own);
# every comparison they make is asserted in the full run.

# %%
none_min_epoch = int(np.argmin(none_val)) + 1
rise = none_val[-1] / none_val.min() - 1
helps = [r for r in RECIPES if r not in ("none", "all") and paired[r, "none"]["verdict"] == "A better"]
unclear = [r for r in RECIPES if r not in ("none", "all") and paired[r, "none"]["verdict"] == "not shown"]
all_beats = [r for r in RECIPES if r not in ("none", "all") and paired["all", r]["verdict"] == "A better"]
all_acc = [results["all", s]["test_accuracy"] for s in SEEDS]
lo_all, hi_all = interval95(all_acc)
cpus = [r.get("cpu_seconds", np.nan) for r in results.values()]
text = [
    f"* **Without regularisation the validation loss rises**: for seed 0 it is lowest after epoch {none_min_epoch} "
    f"({none_val.min():.3f}) and ends {rise:.0%} higher ({none_val[-1]:.3f}), while the training loss keeps falling. "
    f"The median test accuracy of \"none\" is {median['none']:.2%}.",
    f"* **Each remedy alone, paired against \"none\" on the same images**: shown to help: "
    f"{', '.join(f'{r} ({median[r]:.2%})' for r in helps) or 'none of them'}; not shown: "
    f"{', '.join(f'{r} ({median[r]:.2%})' for r in unclear) or 'none'}"
    + (f"; shown to hurt: {', '.join(r for r in RECIPES if r not in ('none', 'all') and paired[r, 'none']['verdict'] == 'B better')}"
       if any(paired[r, "none"]["verdict"] == "B better" for r in RECIPES if r not in ("none", "all")) else "") + ".",
    f"* **Together: {median['all']:.2%}** (seeds {', '.join(f'{a:.2%}' for a in all_acc)}; interval "
    f"{lo_all:.2%}–{hi_all:.2%}), {'beyond' if median['all'] >= 0.988 else 'short of'} the 98.8 % stretch target "
    f"and {'beyond' if median['all'] >= 0.985 else 'short of'} the 98.5 % target; "
    f"\"all\" is shown better than {', '.join(all_beats) or 'no single remedy'}"
    + (f" and not shown better than {', '.join(r for r in RECIPES if r not in ('none', 'all', *all_beats))}"
       if len(all_beats) < len(RECIPES) - 2 else "") + ".",
    f"* **Time**: the runs cost {np.nanmin(cpus):.0f}–{np.nanmax(cpus):.0f} s of CPU time each (one BLAS thread). "
    f"Their wall times are not their cost: the machine was shared with other jobs while they ran.",
]
display(Markdown("\n".join(text)))
if not QUICK:
    assert rise > 0.25 and median["all"] >= 0.985                  # what the first and third sentences say
    assert "all" not in helps and paired["all", "none"]["verdict"] == "A better"

# %% [markdown]
# The remedies work on different things — shifts add data, dropout adds noise to the units, the cosine schedule
# settles the weights at the end, decay keeps them small — and the schedule's low final rate lets the network use the
# regularised, noisier training signal.

# %% [markdown]
# ## Exercises
#
# 1. **Why pair?** For each single remedy, do its 95 % interval and that of "none" overlap? Set that unpaired answer
#    beside the paired verdict of section 5. Where do they disagree, and why can the pairing see a difference that
#    overlapping intervals hide?
# 2. **The generalisation gap.** For each recipe compute the gap between the final training accuracy (of the last
#    batches, with the regularisation on) and the test accuracy. Which recipe closes it most, and can a gap be negative?
# 3. **Dropout's expectation.** Inverted dropout divides the kept units by $1 - p$ in training, so that nothing has to
#    change at inference. Check it on the trained dropout model: average many training-mode outputs of its first
#    `Dropout` layer and compare with its input.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # Unpaired: do the two intervals overlap? Paired: the verdict of section 5.
#     lo_none, hi_none = interval95([results["none", s]["test_accuracy"] for s in SEEDS])
#     for recipe in RECIPES:
#         if recipe == "none":
#             continue
#         lo, hi = interval95([results[recipe, s]["test_accuracy"] for s in SEEDS])
#         overlap = lo <= hi_none and lo_none <= hi
#         print(f"{recipe:8s} intervals {'overlap' if overlap else 'apart'}; paired: {paired[recipe, 'none']['verdict']}")
#         if not overlap and median[recipe] > median["none"]:
#             assert paired[recipe, "none"]["verdict"] != "B better"     # the two never point opposite ways
#     # Both recipes were scored on the same 10,000 images: which images happen to be in the test set (its sampling
#     # noise) is shared, and cancels in a paired difference; most images both get right, and only those where the two
#     # disagree carry information. The unpaired intervals carry the test set's noise twice, so they hide smaller gaps.

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # Train accuracy is measured with dropout and shifts on, so for the regularised recipes it is a noisy,
#     # pessimistic number: the gap can become negative (the network does better on clean test images than on noisy ones).
#     gaps = {recipe: float(np.median([results[recipe, s]["final_train_accuracy"] - results[recipe, s]["test_accuracy"]
#                                      for s in SEEDS])) for recipe in RECIPES}
#     print(", ".join(f"{r}: {g:+.2%}" for r, g in gaps.items()))
#     assert QUICK or min(gaps, key=gaps.get) != "none"      # in the full runs every remedy closes the gap more than none
#     assert QUICK or gaps["all"] < gaps["none"]

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # E[mask / (1 - p)] = 1 for every unit, so the average of many training-mode outputs is the input.
#     drop_layer = next(layer for layer in dropout_model.layers if type(layer).__name__ == "Dropout")
#     layer_input = np.abs(np.random.default_rng(1).standard_normal((4, 50))).astype(np.float32)
#     mean_out = np.mean([drop_layer.forward(layer_input, training=True) for _ in range(4000)], axis=0)
#     rel = np.abs(mean_out - layer_input).max() / layer_input.max()
#     print(f"rate {drop_layer.rate}: largest difference between the mean of 4,000 masks and the input: {rel:.1%} of the input's range")
#     assert rel < 0.05 and np.array_equal(drop_layer.forward(layer_input, training=False), layer_input)

# %% [markdown]
# ---
# [← experiment 06 — the original's bug](06_original_bug.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 07 — regularisation** · [next: experiment 08 — CNN →](08_cnn.ipynb)
