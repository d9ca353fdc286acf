# %% [markdown]
# [← experiment 04 — architectures](04_architectures.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 05 — evaluation** · [next: experiment 06 — the original's bug →](06_original_bug.ipynb)
#
# # Experiment 05 — Evaluation: the summary log, sample inferences, the confusion matrix
#
# [The original *diy-dnn*](https://github.com/tomjwalker/diy-dnn) closed its study with an evaluate script: a summary log of its runs and a grid of
# sample predictions. Its "evaluation" set, though, was 4,000 *training* images plus the 10,000 test images
# (an unshuffled 80/20 split of all 70,000), so its numbers mixed seen and unseen digits. Here:
#
# * every run folder the experiment notebooks wrote (`clip_*`, `full_*`, `bn_*`, `arch_*`, `bug_*`, and those of
#   experiments 07–08 if they ran) is read back and summarised in one table, saved as CSV and Markdown; the runs of
#   one recipe with different seeds (`…_seed1`, `…_seed2`) are then grouped: median and 95 % interval;
# * the run with the best **validation** accuracy is chosen — the validation set (5,000 images held out of
#   the training set) chooses, the official **test** set only reports;
# * its checkpoint is loaded and evaluated on the 10,000 test images: a grid of right and wrong answers, a
#   confusion matrix, and the accuracy per class.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from diydnn._00_conventions import media_dir, quick_mode, save_figure, write_atomically
from diydnn._02_activations import Softmax
from diydnn._09_training import EvalTask
from diydnn._08_mnist import load_mnist
from diydnn._10_experiments import (default_runs_dir, describe_mlp, interval95, load_model, load_runs, mlp,
                                    mnist_splits, run_experiment, to_csv, to_markdown)
from diydnn._14_performance import set_threads

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)
RUNS_DIR = default_runs_dir()
print("quick mode" if QUICK else "full mode", "- reading run folders in", RUNS_DIR.name)   # a name, not this machine's path

# %% [markdown]
# ## 1. The runs
#
# `load_runs` returns every complete run folder (one with a `result.json`) that this machine has trained. If there is
# none — this notebook run on its own, or on a fresh clone, where the other experiments' runs are committed only as run
# records (chapter 10) — it trains one small default run first, so that there is always something to evaluate. The settings of that run, in the original's `RUN_SETTINGS` style:

# %%
RUN_SETTINGS = [{"model_name": "eval_default", "architecture": mlp([50]), "num_epochs": 1,
                 "train_abs_samples": 5000 if QUICK else None, "evals_per_epoch": 2}]
DEFAULTS = RUN_SETTINGS[0]

runs = load_runs(RUNS_DIR)
if not runs:
    print("no run folders yet: training the default run")
    run_experiment(DEFAULTS, runs_dir=RUNS_DIR, progress=False, verbose=False)
    runs = load_runs(RUNS_DIR)
print(f"{len(runs)} runs:", ", ".join(run["model_name"] for run in runs))
assert runs


# %% [markdown]
# ## 2. The summary log
#
# One row per run. The training loss and accuracy of a single batch are noisy, so the "train" columns are
# means over 50 steps: the last 50 (*final*) and the best 50-step window (*best*). The validation columns come
# from the evaluations during training. *test_acc* is the test accuracy of the checkpoint chosen by validation
# accuracy, *test_acc_last* that of the final weights; a run that diverged has no trustworthy final weights.
# *seconds* is the wall time of the whole run on a machine shared with other jobs: compare it with care.

# %%
def window_means(values, window=50):
    """Means over a sliding window of at most `window` values, ignoring NaN (a diverged last step)."""
    values = np.asarray(values, dtype=np.float64)
    window = max(1, min(window, len(values)))
    return np.array([np.nanmean(values[i:i + window]) if np.isfinite(values[i:i + window]).any() else np.nan
                     for i in range(len(values) - window + 1)])


def model_description(architecture):
    """'784-50-10' plus '+BN' and any layer outside Dense/ReLU/BatchNorm (e.g. a faulty Softmax)."""
    hidden, batchnorm = describe_mlp(architecture)
    units = [entry["units"] for entry in architecture if entry["layer"] == "Dense"]
    text = "-".join(str(u) for u in [784] + units)
    extra = [entry["layer"] for entry in architecture if entry["layer"] not in ("Dense", "ReLU", "BatchNorm")]
    return text + ("+BN" if batchnorm else "") + "".join("+" + name for name in extra)


def summary_row(run):
    s, h = run["settings"], run["history"]
    loss = window_means(h.steps_values("train", "loss")[1])
    acc = window_means(h.steps_values("train", "accuracy")[1]) if "accuracy" in h.metrics("train") else [np.nan]
    has_val = "val" in h.modes()
    val_loss = h.steps_values("val", "loss")[1] if has_val else [np.nan]
    val_acc = h.steps_values("val", "accuracy")[1] if has_val else [np.nan]
    return {
        "run": run["model_name"], "model": model_description(s["architecture"]), "init": s["init"],
        "optimizer": s["optimizer"], "lr": f"{s['lr']:g}", "batch": s["batch_size"],
        "clip": "" if s["clip_grads_norm"] is None else f"{s['clip_grads_norm']:g}",
        "train_samples": run["train_samples"], "steps": run["steps"], "epochs": f"{run['epochs']:.3g}",
        "train_loss_final": float(loss[-1]), "train_loss_best": float(np.nanmin(loss)) if np.isfinite(loss).any() else np.nan,
        "train_acc_final": float(acc[-1]), "train_acc_best": float(np.nanmax(acc)) if np.isfinite(acc).any() else np.nan,
        "val_loss_final": float(val_loss[-1]), "val_acc_final": float(val_acc[-1]), "val_acc_best": float(np.nanmax(val_acc)),
        "test_acc": run["test_accuracy"], "test_acc_last": run["test_accuracy_final"],
        "seconds": f"{run['seconds']:.1f}", "diverged": run["diverged"],
    }


rows = [summary_row(run) for run in runs]
display(Markdown(to_markdown(rows)))


# %% [markdown]
# The table is written to `media/exp_05_summary.csv` and `media/exp_05_summary.md` (in full mode only, and
# atomically: a temporary file renamed into place). A check that each row agrees with its run's `result.json`:

# %%
def write_media(filename, text):
    """Write text to media/<filename> atomically; skipped in quick mode, like save_figure."""
    if QUICK:
        return None
    path = media_dir() / filename
    write_atomically(path, lambda f: f.write(text.encode()))
    return path


for name, text in (("exp_05_summary.csv", to_csv(rows)), ("exp_05_summary.md", to_markdown(rows))):
    print(f"media/{name}" if write_media(name, text) else f"{name}: not written in quick mode")   # no machine paths
for row, run in zip(rows, runs):
    assert row["val_acc_best"] == run["best_val_accuracy"] or not np.isfinite(run["best_val_accuracy"])
    assert row["test_acc"] == run["test_accuracy"] or not np.isfinite(run["test_accuracy"])

# %% [markdown]
# **The runs of one recipe, grouped.** The experiments train each recipe with three seeds, named `…_seed1`,
# `…_seed2` (the seed-0 run of experiment 01 keeps its plain name). Grouped by that name, each recipe gets the
# median test accuracy (the checkpoint chosen by validation) and, with two to six seeds, the 95 % Student-t
# interval of chapter 10 (cut at 0 and 100 %: with a wild spread, such as experiment 02's unstable recipe, the t
# interval reaches past 100 %); *last weights* is the median test accuracy of the final weights. A recipe with one
# run has no interval.

# %%
import re


def recipe_of(name):
    return re.sub(r"_seed\d+$", "", name)


groups = {}
for run in runs:
    groups.setdefault(recipe_of(run["model_name"]), []).append(run)
recipe_rows = []
for recipe, members in groups.items():
    acc = np.array([r["test_accuracy"] for r in members], dtype=np.float64)
    last = np.array([r["test_accuracy_final"] for r in members], dtype=np.float64)
    ok = 2 <= len(acc) <= 6 and np.isfinite(acc).all()
    lo, hi = interval95(acc) if ok else (np.nan, np.nan)
    lo, hi = max(lo, 0.0), min(hi, 1.0)           # an accuracy lies in [0, 1]: a wider t interval is cut there
    recipe_rows.append({"recipe": recipe, "seeds": len(acc), "test accuracy (median)": float(np.median(acc)),
                        "95 % low": lo, "95 % high": hi, "last weights (median)": float(np.nanmedian(last))
                        if np.isfinite(last).any() else np.nan})
shown = [{k: (f"{v:.2%}" if isinstance(v, float) and np.isfinite(v) else ("—" if isinstance(v, float) else v))
          for k, v in row.items()} for row in recipe_rows]
display(Markdown(to_markdown(shown)))
for name, text in (("exp_05_recipes.csv", to_csv(recipe_rows)), ("exp_05_recipes.md", to_markdown(shown))):
    print(f"media/{name}" if write_media(name, text) else f"{name}: not written in quick mode")
assert sum(row["seeds"] for row in recipe_rows) == len(runs)        # every run in exactly one recipe

# %% [markdown]
# Test accuracy of every run at a glance (the checkpoint chosen by validation), sorted:

# %%
order = sorted(range(len(rows)), key=lambda i: np.nan_to_num(rows[i]["test_acc"], nan=-1.0))
fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.2))
test_acc = [np.nan_to_num(rows[i]["test_acc"], nan=0.0) for i in order]
ax.barh(range(len(order)), test_acc, color=["tab:red" if a < 0.5 else "tab:blue" for a in test_acc])
ax.set_yticks(range(len(order)), [f"{rows[i]['run']}  ({rows[i]['model']}, {rows[i]['train_samples']} images)"
                                  for i in order], fontsize=8)
for y, a in enumerate(test_acc):
    ax.text(min(a, 1.0) + 0.005, y, f"{a:.2%}", va="center", fontsize=7)
ax.set(xlim=(0, 1.1), xlabel="test accuracy (checkpoint chosen by validation)", title="All runs on the MNIST test set")
ax.axvline(0.1, color="k", lw=0.8, ls=":")
save_figure(fig, "exp_05_runs.png")
plt.show()

# %% [markdown]
# ## 3. The best run
#
# The run with the highest validation accuracy whose checkpoint `load_model` can rebuild (a run of notebook 06
# ends in a deliberately faulty Softmax layer that is not part of the library; it is never the best anyway).

# %%
candidates = sorted((run for run in runs if np.isfinite(run["best_val_accuracy"])),
                    key=lambda run: run["best_val_accuracy"], reverse=True)
best, model = None, None
for run in candidates:
    try:
        model = load_model(run["folder"])
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"skipping {run['model_name']}: {str(e)[:100]}")
        continue
    best = run
    break
assert best is not None, "no run folder holds a checkpoint that load_model can rebuild"
assert best["best_val_accuracy"] > 0.5          # whichever runs exist, the best of them has learned
print(f"best run: {best['model_name']} ({model_description(best['settings']['architecture'])}), "
      f"best validation accuracy {best['best_val_accuracy']:.4f} at step {best['best_step']}, "
      f"test accuracy {best['test_accuracy']:.4f}")
model.summary()

# %% [markdown]
# Its predictions on the 10,000 official test images. A model that ends in a Softmax layer already gives
# probabilities; one that ends in a Dense layer gives logits (it was trained with the fused softmax
# cross-entropy), which a softmax turns into probabilities. The accuracy recomputed from them must equal the one
# the library's `EvalTask` measures, and the one the run folder recorded. (In the test suite's quick mode,
# notebook 04 tests its runs on a slice of the test set, so there the recorded number is only printed.)

# %%
_, _, (X_test, y_test) = mnist_splits(best["settings"]["n_val"])
outputs = model.predict(X_test).astype(np.float64)
P = outputs if isinstance(model.layers[-1], Softmax) else Softmax().forward(outputs)
y_pred = P.argmax(axis=1)
confidence = P.max(axis=1)
test_accuracy = float(np.mean(y_pred == y_test))
evaluated = EvalTask((X_test, y_test), metrics=("accuracy",)).evaluate(model)["accuracy"]
print(f"test accuracy recomputed from the predictions: {test_accuracy:.4f} "
      f"({int(np.sum(y_pred != y_test))} of {len(y_test)} images wrong); EvalTask: {evaluated:.4f}; "
      f"recorded in the run folder: {best['test_accuracy']:.4f}")
assert np.allclose(P.sum(axis=1), 1.0) and np.isclose(test_accuracy, evaluated, atol=1e-12)
if not QUICK:
    assert np.isclose(test_accuracy, best["test_accuracy"], atol=1e-12)

# %% [markdown]
# ## 4. Sample inferences
#
# Top two rows: test images it gets right, drawn at random. Bottom two rows: its **most confident mistakes** —
# the wrong answers with the highest predicted probability. Each title reads *true → predicted (probability
# of the prediction)*.

# %%
rng = np.random.default_rng(5)
right = rng.choice(np.flatnonzero(y_pred == y_test), size=16, replace=False)
wrong_all = np.flatnonzero(y_pred != y_test)
wrong = wrong_all[np.argsort(-confidence[wrong_all])][:16]
fig, axes = plt.subplots(4, 8, figsize=(12, 7))
for ax, i in zip(axes.ravel(), np.concatenate([right, wrong])):
    ax.imshow(X_test[i].reshape(28, 28), cmap="gray_r")
    ok = y_pred[i] == y_test[i]
    ax.set_title(f"{y_test[i]} → {y_pred[i]} ({confidence[i]:.2f})", fontsize=9, color="tab:green" if ok else "tab:red")
    ax.axis("off")
for ax in axes.ravel()[len(right) + len(wrong):]:
    ax.axis("off")
fig.suptitle(f"{best['model_name']} on the MNIST test set: right (top), most confident mistakes (bottom)")
fig.tight_layout()
save_figure(fig, "exp_05_inferences.png")
plt.show()
print(f"mean probability of the prediction: right answers {confidence[y_pred == y_test].mean():.3f}, "
      f"wrong answers {confidence[wrong_all].mean():.3f}")

# %% [markdown]
# ## 5. The confusion matrix and the accuracy per class
#
# $C_{ij}$ counts the test images of class $i$ predicted as class $j$. Its rows sum to the number of test images
# of each class, its diagonal holds the right answers, so $\mathrm{trace}(C)/\sum_{ij} C_{ij}$ is the accuracy,
# and the accuracy of class $i$ (its *recall*) is $C_{ii}/\sum_j C_{ij}$. Computed with one `bincount` of the
# pairs $10\,i + j$:

# %%
n_classes = 10
C = np.bincount(n_classes * y_test + y_pred, minlength=n_classes ** 2).reshape(n_classes, n_classes)
per_class = np.diag(C) / C.sum(axis=1)
print("confusion matrix (rows: true class, columns: predicted class)")
print(C)
print("accuracy per class:", "  ".join(f"{k}: {a:.3f}" for k, a in enumerate(per_class)))
off = C - np.diag(np.diag(C))
pairs = np.dstack(np.unravel_index(np.argsort(-off, axis=None)[:5], off.shape))[0]
print("most frequent confusions:", ", ".join(f"{i}→{j} ({off[i, j]})" for i, j in pairs))
assert np.array_equal(C.sum(axis=1), np.bincount(y_test, minlength=n_classes))      # rows: class counts
assert np.isclose(np.trace(C) / C.sum(), evaluated, atol=1e-12)                     # trace: the test accuracy
assert np.isclose(per_class @ C.sum(axis=1) / C.sum(), test_accuracy)                 # class accuracies, weighted

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.15, 1]})
shown = np.where(C > 0, C, np.nan)                                          # empty cells stay white
im = axes[0].imshow(shown, cmap="Blues", norm=plt.matplotlib.colors.LogNorm(vmin=1, vmax=C.max()))
for i in range(n_classes):
    for j in range(n_classes):
        if C[i, j]:
            axes[0].text(j, i, C[i, j], ha="center", va="center", fontsize=7,
                         color="white" if C[i, j] > 0.3 * C.max() else "black")
axes[0].set(xticks=range(10), yticks=range(10), xlabel="predicted class", ylabel="true class",
            title="confusion matrix (test set, log colour scale)")
fig.colorbar(im, ax=axes[0], fraction=0.046)
axes[1].bar(range(10), per_class, color="tab:blue")
for k, a in enumerate(per_class):
    axes[1].text(k, a + 0.002, f"{a:.3f}", ha="center", fontsize=8)
lower = max(0.0, per_class.min() - 0.05)
axes[1].axhline(test_accuracy, color="k", ls="--", lw=1, label=f"overall {test_accuracy:.2%}")
axes[1].set(xticks=range(10), xlabel="class", ylabel="accuracy (recall)", ylim=(lower, 1.005),
            title="accuracy per class")
axes[1].legend(loc="lower right")
fig.suptitle(f"{best['model_name']}: {model_description(best['settings']['architecture'])}")
fig.tight_layout()
save_figure(fig, "exp_05_confusion.png")
plt.show()

# %% [markdown]
# ## Summary
#
# * One table holds every run of the experiment notebooks, its best and final training and validation metrics,
#   and the test accuracy of the checkpoint that validation chose (section 2; saved to `media/exp_05_summary.*`).
#   A second table groups the seeds of each recipe: median test accuracy, 95 % interval and the last weights' median
#   (`media/exp_05_recipes.*`).
# * The best run by validation accuracy is named in section 3, and its test accuracy, recomputed here from its
#   predictions, equals the one its run folder recorded; the confusion matrix gives the same number again as its
#   trace, and its rows sum to the test set's class counts.
# * The per-class accuracies and the most frequent confusions (section 5) show where the remaining errors sit,
#   and the grid of section 4 shows the mistakes the model is most sure of, with their probabilities.
#
# ## Exercises
#
# 1. Choose the best run by *test* accuracy instead of validation accuracy. Why does that make the reported
#    number optimistic?

# %% [markdown]
# **Solution 1** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # The maximum of several noisy numbers is biased upwards: choosing by the test set picks the run that
#     # was luckiest on these 10,000 images, so its test accuracy overstates how it would do on new images. The seeds
#     # of one recipe show the size of that luck: the best of three seeds against their median.
#     by_test = max((r for r in runs if np.isfinite(r["test_accuracy"])), key=lambda r: r["test_accuracy"])
#     print(f"chosen by test accuracy: {by_test['model_name']} {by_test['test_accuracy']:.2%}; chosen by validation: "
#           f"{best['model_name']} {best['test_accuracy']:.2%}")
#     assert by_test["test_accuracy"] >= best["test_accuracy"]          # by construction: the test set was used to choose
#     luck = [max(r["test_accuracy"] for r in g) - float(np.median([r["test_accuracy"] for r in g]))
#             for g in groups.values() if len(g) >= 3 and all(np.isfinite(r["test_accuracy"]) for r in g)]
#     if luck:
#         print(f"best seed minus median seed, over {len(luck)} recipes: median {100 * np.median(luck):.2f} points, "
#               f"largest {100 * max(luck):.2f} points")
#         assert min(luck) >= 0

# %% [markdown]
# 2. Add precision per class, $C_{jj}/\sum_i C_{ij}$, to the bar chart. Which class is predicted too often?

# %% [markdown]
# **Solution 2** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # Precision divides the diagonal by the COLUMN sums (how often a class was predicted); a class predicted
#     # too often collects other classes' images and has the lowest precision and more predictions than images.
#     precision = np.diag(C) / np.maximum(C.sum(axis=0), 1)
#     fig, ax = plt.subplots(figsize=(7, 3))
#     ax.bar(np.arange(10) - 0.2, per_class, width=0.4, label="recall (accuracy per class)")
#     ax.bar(np.arange(10) + 0.2, precision, width=0.4, label="precision")
#     ax.set(xticks=range(10), xlabel="class", ylim=(max(0.0, min(per_class.min(), precision.min()) - 0.05), 1.005))
#     ax.legend(loc="lower right", fontsize=8)
#     over = int(np.argmin(precision))
#     print(f"lowest precision: class {over} ({precision[over]:.3f}), predicted {C[:, over].sum()} times for "
#           f"{C[over].sum()} images of it")
#     # precision weighted by the predictions made is the accuracy again: both count the diagonal
#     assert np.isclose(precision @ C.sum(axis=0) / C.sum(), test_accuracy)

# %% [markdown]
# 3. Re-create the original's evaluation set (the last 14,000 of the 70,000 images, unshuffled) and compare
#    the best model's accuracy on it with its accuracy on the test set alone.

# %% [markdown]
# **Solution 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # The last 14,000 of the 70,000 are the last 4,000 training images plus the 10,000 test images. Most
#     # of those 4,000 are in our training split, so the model has seen them: the mix flatters it.
#     (X_all_train, y_all_train), _ = load_mnist()
#     X_tail, y_tail = X_all_train[-4000:], y_all_train[-4000:]
#     acc_tail = float(np.mean(model.predict(X_tail).argmax(axis=1) == y_tail))
#     acc_mix = (4000 * acc_tail + len(y_test) * test_accuracy) / (4000 + len(y_test))
#     X_mix = np.concatenate([X_tail, X_test])
#     y_mix = np.concatenate([y_tail, y_test])
#     assert np.isclose(np.mean(model.predict(X_mix).argmax(axis=1) == y_mix), acc_mix)
#     # which of the 4,000 did the best run train on? the first train_abs_samples images of the training split
#     (X_split, _), _, _ = mnist_splits(best["settings"]["n_val"])
#     n_used = best["train_samples"]
#     seen_rows = {row.tobytes() for row in X_split[:n_used]}
#     seen = np.array([row.tobytes() in seen_rows for row in X_tail])
#     print(f"the original's evaluation set: {acc_mix:.2%}; the test set alone: {test_accuracy:.2%}; its 4,000 training "
#           f"images: {acc_tail:.2%}, of which the run trained on {seen.mean():.0%}")
#     if seen.mean() > 0.5:          # a run trained on the full split (not the quick runs of the tests)
#         assert acc_tail > test_accuracy and acc_mix > test_accuracy

# %% [markdown]
# ---
# [← experiment 04 — architectures](04_architectures.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 05 — evaluation** · [next: experiment 06 — the original's bug →](06_original_bug.ipynb)
