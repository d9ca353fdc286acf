# %% [markdown]
# [← experiment 03 — BatchNorm](03_batchnorm.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 04 — architectures** · [next: experiment 05 — evaluation →](05_evaluation.ipynb)
#
# # Experiment 04 — Architectures ([the original](https://github.com/tomjwalker/diy-dnn)'s §4.4)
#
# **What [the original](https://github.com/tomjwalker/diy-dnn) did.** Once BatchNorm had made its training "workable", *diy-dnn* scanned four small
# architectures, all ReLU networks with BatchNorm and a 10-way softmax output, trained with plain gradient
# descent ($\alpha = 0.01$, batches of 32, clip-norm 5, $N(0,1)$ weights):
#
# | architecture | accuracy as reported by the original |
# |---|---|
# | Dense 25 + BN | 36 % |
# | Dense 50 + BN | 75 % |
# | Dense 100 + BN | 86 % |
# | Dense 50 + BN, Dense 50 + BN | 83 % |
#
# (Its "evaluation" set also held 4,000 training images, and it put one more BatchNorm before the softmax.)
# Those numbers measure the bugs of its softmax backward, its BatchNorm and its data split more than the
# architectures. Here we train the same four, and two wider networks, **with one sane recipe for all**: He
# initialisation, Adam ($\alpha = 10^{-3}$), batches of 128, the same number of epochs, validation on 5,000
# held-out training images after every epoch, and the official 10,000 test images touched once per run,
# by the checkpoint that validation chose.
#
# **One meaning of "test accuracy"** throughout: the accuracy on the 10,000 official test images of the
# checkpoint with the best *validation* accuracy. The accuracy of the weights after the last epoch is shown
# too, labelled **last weights**. Every architecture is trained with **three seeds** (initial weights and
# batch order differ); the tables give the median of the three and a 95 % interval for the mean (chapter 10's
# `interval95`), so that a difference smaller than the seed-to-seed spread is not mistaken for a result.

# %%
import os
import time

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from diydnn._00_conventions import media_dir, quick_mode, save_figure, write_atomically
from diydnn._10_experiments import (check_settings, describe_mlp, interval95, mlp, mnist_splits, run_or_load, to_csv,
                                    to_markdown)
from diydnn._10a_panels import experiment_controls
from diydnn._14_performance import set_threads

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)
t_notebook = time.perf_counter()

# %% [markdown]
# ## 1. The runs
#
# One dict per architecture, as in the original's `RUN_SETTINGS`; `settings(row, seed)` adds the seed and the
# run's name (`arch_512_512_seed1`, …). Everything not written here takes the toolkit's default: He, Adam with
# $\alpha = 10^{-3}$, batch 128. 7 architectures × 3 seeds × 15 epochs is about 10 minutes of CPU on an idle
# core, so what this notebook shows of every run is committed as a **run record** (`records/`: settings, history,
# result, timing; no weights) and Run All **reads a record whose settings equal these exactly** instead of training
# again (`run_or_load`, chapter 10); to train every run again, run the notebook with `DIYDNN_RETRAIN=1`. In the test suite's
# quick mode there are two seeds, every run trains on 4,000 images for 2 epochs, validates on 1,000 and tests
# on a slice of 2,000 test images, and only "learning happened" is asserted.

# %%
NUM_EPOCHS = 15
RUN_SETTINGS = [
    {"model_name": "arch_dense25_bn", "architecture": mlp([25], batchnorm=True)},
    {"model_name": "arch_dense50_bn", "architecture": mlp([50], batchnorm=True)},
    {"model_name": "arch_dense100_bn", "architecture": mlp([100], batchnorm=True)},
    {"model_name": "arch_dense50_50_bn", "architecture": mlp([50, 50], batchnorm=True)},
    {"model_name": "arch_256_128", "architecture": mlp([256, 128])},
    {"model_name": "arch_512_512", "architecture": mlp([512, 512])},
    {"model_name": "arch_512_512_bn", "architecture": mlp([512, 512], batchnorm=True)},
]
SEEDS = (0, 1) if QUICK else (0, 1, 2)
for s in RUN_SETTINGS:
    s.update(num_epochs=2 if QUICK else NUM_EPOCHS, train_abs_samples=4000 if QUICK else None, evals_per_epoch=1,
             init="he", optimizer="adam", lr=1e-3, batch_size=128)
    check_settings(s)
ROWS = [s["model_name"] for s in RUN_SETTINGS]


def settings(row, seed):
    """The run of architecture `row` with seed `seed`, checked."""
    base = next(s for s in RUN_SETTINGS if s["model_name"] == row)
    return check_settings(dict(base, model_name=f"{row}_seed{seed}", seed=seed))


# as reported by the original README (§4.4), in its order: Dense 25, Dense 50, Dense 100, Dense 50-50
ORIGINAL_REPORTED = {"arch_dense25_bn": 0.36, "arch_dense50_bn": 0.75, "arch_dense100_bn": 0.86,
                     "arch_dense50_50_bn": 0.83}


def label(architecture):
    """784-50-BN-10 style name of an mlp() architecture."""
    hidden, batchnorm = describe_mlp(architecture)
    return "-".join(["784"] + [f"{h}-BN" if batchnorm else str(h) for h in hidden] + ["10"])


train, (X_val, y_val), (X_test, y_test) = mnist_splits()
DATA = (train, (X_val[:1000], y_val[:1000]), (X_test[:2000], y_test[:2000])) if QUICK else None   # None: all of it

for s in RUN_SETTINGS:
    print(f"{s['model_name']:20s} {label(s['architecture']):22s} {s['num_epochs']} epochs, "
          f"train_abs_samples={s['train_abs_samples']}, seeds {SEEDS}")

# %% [markdown]
# ## 2. Try it yourself
#
# The controls start from the strongest run, 784–512–512–10 without BatchNorm. The *hidden units* slider
# sets the width of every hidden layer; try 25 or 50 with BatchNorm to repeat the original's runs.
#
# *The panel below is live only in a running kernel: **Run All first** (until its cell has run, it shows as one
# line of text). Each Train writes a new run folder, named after what you changed; the runs this notebook
# stores are never replaced.*

# %%
DEFAULTS = settings("arch_512_512", 0)
panel = experiment_controls(DEFAULTS)
panel

# %% [markdown]
# The same run with the defaults, without pressing anything (seed 0). **The target: at least 98.0 % test
# accuracy**, for the median of the three seeds (section 4); in quick mode, ≥ 85 % on the slice after 2 epochs <!-- constant: the quick-mode threshold the cell asserts -->
# on 4,000 images.

# %%
default_run = run_or_load(DEFAULTS, data=DATA)
print(f"{label(DEFAULTS['architecture'])}, seed 0: best validation accuracy {default_run['best_val_accuracy']:.4f} "
      f"(epoch {default_run['best_step'] * default_run['epochs'] / default_run['steps']:.0f} of {DEFAULTS['num_epochs']}), "
      f"test accuracy {default_run['test_accuracy']:.4f} (last weights {default_run['test_accuracy_final']:.4f})"
      f"{'; from its run record' if default_run['loaded'] else ''}")
assert default_run["test_accuracy"] >= (0.85 if QUICK else 0.98), default_run["test_accuracy"]

# %% [markdown]
# ## 3. The scan

# %%
print(f"load average of the machine before the scan (1, 5, 15 min): {tuple(round(x, 2) for x in os.getloadavg())}")
results = {("arch_512_512", 0): default_run}
for row in ROWS:
    for seed in SEEDS:
        if (row, seed) not in results:
            results[row, seed] = run_or_load(settings(row, seed), data=DATA)
        r = results[row, seed]
        print(f"{r['model_name']:26s} test {r['test_accuracy']:.4f}  last weights {r['test_accuracy_final']:.4f}  "
              f"({r['train_seconds']:.0f} s of training{', run record' if r['loaded'] else ''})")
assert not any(r["diverged"] for r in results.values())
panel.set_reference([results["arch_512_512", seed] for seed in SEEDS])   # the panel's grey curves and interval
print(f"load average after the scan: {tuple(round(x, 2) for x in os.getloadavg())}")

# %% [markdown]
# ## 4. The results table
#
# One row per architecture. *test accuracy* is the median over the three seeds of the test accuracy (the
# checkpoint chosen by validation), with its 95 % interval and the three values; *last weights* is the median
# test accuracy of the weights after the last epoch instead. *train s* is the median wall-clock time of the
# training steps, measured on a **shared 2-core machine** while other jobs ran, so it is noisy (compare orders
# of magnitude, not percent). The last column is the figure **as reported by the original** for its version of
# the same architecture.

# %%
def seeds_of(row, key="test_accuracy"):
    return np.array([results[row, seed][key] for seed in SEEDS])


stats = {}
for row in ROWS:
    acc = seeds_of(row)
    stats[row] = {"median": float(np.median(acc)), "interval": interval95(acc), "values": acc,
                  "last": float(np.median(seeds_of(row, "test_accuracy_final")))}
rows = []
for row in ROWS:
    first, st = results[row, SEEDS[0]], stats[row]
    reported = ORIGINAL_REPORTED.get(row)
    rows.append({"architecture": label(first["settings"]["architecture"]), "params": f"{first['params']:,}",
                 "test accuracy (median)": f"{st['median']:.2%}",
                 "95 % interval": f"{st['interval'][0]:.2%} – {st['interval'][1]:.2%}",
                 "seeds": ", ".join(f"{a:.2%}" for a in st["values"]),
                 "last weights (median)": f"{st['last']:.2%}",
                 "best epoch (median)": int(np.median([r["best_step"] * r["epochs"] / r["steps"]
                                                       for r in (results[row, s] for s in SEEDS)])),
                 "train s (median)": f"{np.median(seeds_of(row, 'train_seconds')):.0f}",
                 "original reported": "" if reported is None else f"{reported:.0%}"})
table_md = to_markdown(rows)
display(Markdown(table_md))
if not QUICK:            # the committed table describes the full runs; the test suite never overwrites it
    for name, text in (("exp_04_results.md", table_md), ("exp_04_results.csv", to_csv(rows))):
        write_atomically(media_dir() / name, lambda f, text=text: f.write(text.encode()))
    print("wrote", [str(p.relative_to(media_dir().parent)) for p in sorted(media_dir().glob("exp_04_results.*"))])
for row in ROWS:                                     # the interval is centred on the mean of the seeds
    assert np.isclose(np.mean(stats[row]["interval"]), stats[row]["values"].mean())


# %% [markdown]
# **Which differences mean something?** Two architectures whose 95 % intervals overlap are not shown to differ
# by three seeds. The pairs the text below compares:

# %%
def compare(a, b):
    """Print the difference of the medians of rows a and b and whether the intervals separate them."""
    (lo_a, hi_a), (lo_b, hi_b) = stats[a]["interval"], stats[b]["interval"]
    separated = hi_a < lo_b or hi_b < lo_a
    diff = 100 * (stats[b]["median"] - stats[a]["median"])
    print(f"{label(results[b, SEEDS[0]]['settings']['architecture']):24s} - "
          f"{label(results[a, SEEDS[0]]['settings']['architecture']):22s}: {diff:+.2f} points; "
          f"{'intervals separate' if separated else 'less than the intervals: not shown to differ'}")
    return separated


PAIRS = [("arch_dense25_bn", "arch_dense50_bn"), ("arch_dense50_bn", "arch_dense100_bn"),
         ("arch_dense100_bn", "arch_dense50_50_bn"), ("arch_256_128", "arch_512_512"),
         ("arch_512_512", "arch_512_512_bn"), ("arch_dense50_bn", "arch_512_512")]
separated = {pair: compare(*pair) for pair in PAIRS}

# %% [markdown]
# ## 5. Figure: accuracy against size

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
ax = axes[0]
for i, row in enumerate(ROWS):                        # one colour per architecture, as in the right panel
    params, st = results[row, SEEDS[0]]["params"], stats[row]
    ax.scatter([params] * len(SEEDS), st["values"], color=f"C{i}", s=12, alpha=0.5, zorder=3)
    ax.scatter(params, st["median"], color=f"C{i}", s=80 - 8 * i, zorder=3)   # later ones smaller: overlaps stay visible
    if row in ORIGINAL_REPORTED:
        ax.scatter(params, ORIGINAL_REPORTED[row], marker="x", s=50, color=f"C{i}", zorder=3)
        ax.plot([params] * 2, [ORIGINAL_REPORTED[row], st["median"]], color=f"C{i}", ls=":", lw=1)
line98 = ax.axhline(0.98, color="0.4", ls="--", lw=1)
ax.set(xscale="log", xlim=(1e4, 1.5e6), xlabel="trainable parameters (log scale)", ylabel="test accuracy",
       ylim=(0.3, 1.0), title="Test accuracy against network size")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.grid(alpha=0.3, which="both")
ax.legend([plt.Line2D([], [], marker="o", color="k", ls=""), plt.Line2D([], [], marker="x", color="k", ls=""), line98],
          ["ours: median of 3 seeds (small dots: each seed)", "as reported by the original", "98 %"], loc="lower right",
          fontsize=8)
ax = axes[1]
for i, row in enumerate(ROWS):
    r = results[row, SEEDS[0]]
    steps, val_acc = r["history"].steps_values("val", "accuracy")
    ax.plot(steps * r["epochs"] / r["steps"], val_acc, "o-", ms=3, color=f"C{i}", label=label(r["settings"]["architecture"]))
ax.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0.9 if not QUICK else 0.5, 1.0),
       title="Validation accuracy per epoch (seed 0)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8, loc="lower right")
fig.suptitle("MNIST architectures, one recipe (He, Adam 1e-3, batch 128): test accuracy of the checkpoint chosen "
             "by validation, against the original's figures")
fig.tight_layout()
save_figure(fig, "exp_04_architectures.png")
plt.show()

# %% [markdown]
# ## 6. Reading the numbers

# %%
acc = {row: stats[row]["median"] for row in ROWS}
n_test = len((DATA or mnist_splits())[2][1])
best = max(ROWS, key=acc.get)
print(f"best MLP: {label(results[best, 0]['settings']['architecture'])}, median test accuracy {acc[best]:.2%} on "
      f"{'a slice of ' if QUICK else ''}the official test set ({n_test} images)")
for name, reported in ORIGINAL_REPORTED.items():
    print(f"  {label(results[name, 0]['settings']['architecture']):20s} ours {acc[name]:.2%}, as reported by the original "
          f"{reported:.0%}: {100 * (acc[name] - reported):+.1f} points")
one_layer = [acc["arch_dense25_bn"], acc["arch_dense50_bn"], acc["arch_dense100_bn"]]
print("one hidden layer with BatchNorm, 25 -> 50 -> 100 units:", " -> ".join(f"{a:.2%}" for a in one_layer))
deep, wide = results["arch_dense50_50_bn", 0], results["arch_dense100_bn", 0]
print(f"784-50-BN-50-BN-10 ({deep['params']:,} parameters) {acc['arch_dense50_50_bn']:.2%} against "
      f"784-100-BN-10 ({wide['params']:,} parameters) {acc['arch_dense100_bn']:.2%}")
small, big = results["arch_dense50_bn", 0], results["arch_512_512", 0]
print(f"784-512-512-10 has {big['params'] / small['params']:.0f} x the parameters of 784-50-BN-10 and scores "
      f"{100 * (acc['arch_512_512'] - acc['arch_dense50_bn']):+.2f} points; it trains at "
      f"{np.median(seeds_of('arch_512_512', 'train_seconds')) / big['epochs']:.1f} s per epoch of "
      f"{big['train_samples']:,} images")
bn_gain = acc["arch_512_512_bn"] - acc["arch_512_512"]
print(f"BatchNorm in 784-512-512-10: {100 * bn_gain:+.2f} points = {round(bn_gain * n_test):+d} test images (medians)")
checkpoint_gain = {row: stats[row]["median"] - stats[row]["last"] for row in ROWS}
print("test accuracy minus last weights (medians), in points:", {row: round(100 * g, 2) for row, g in checkpoint_gain.items()})
assert acc[best] >= (0.85 if QUICK else 0.98)
assert all(acc[row] > 0.5 for row in ROWS)                      # every architecture learns, in quick mode too
if not QUICK:
    assert one_layer[0] < one_layer[1] <= one_layer[2] and separated["arch_dense50_bn", "arch_512_512"]
    assert all(acc[name] - reported > 0.09 for name, reported in ORIGINAL_REPORTED.items())
    assert abs(acc["arch_dense50_50_bn"] - acc["arch_dense100_bn"]) < 0.005 and deep["params"] < 0.6 * wide["params"]
    assert acc["arch_512_512"] >= 0.98 and acc["arch_512_512_bn"] >= 0.98 and acc["arch_256_128"] >= 0.975
    assert not any(separated[pair] for pair in PAIRS[1:5])         # these neighbours: not shown to differ
    assert acc["arch_512_512"] - acc["arch_dense50_bn"] < 0.015

# %% [markdown]
# In the full run (the numbers above; the quick run of the test suite prints smaller ones), medians of three seeds:
#
# * **Every one of the original's architectures does far better with correct layers**: Dense 25 + BN reaches
#   96.0 % instead of 36 %, Dense 50 + BN 97.1 % instead of 75 %, Dense 100 + BN 97.4 % instead of 86 %, and
#   Dense 50–50 + BN 97.4 % instead of 83 %. The original's four figures spread over 50 points (36 to 86 %); ours
#   over 1.4 points (96.0 to 97.4 %).
# * **Width helps, with diminishing returns**: one hidden layer goes 96.0 → 97.1 → 97.4 % from 25 to 100 units.
#   Two layers of 50 match one layer of 100 (97.36 against 97.40 %) with about half the parameters. But mind the
#   intervals (the comparison cell above): 25 → 50 units (+1.06 points) separates, only just (95.46–96.73 % against
#   96.74–97.42 %); **50 → 100 units (+0.33 points) and 50–50 against 100 (−0.04 points) are less than the
#   intervals: not shown to differ**. The large gaps, such as Dense 50 + BN against 784–512–512–10 (+0.96 points),
#   separate.
# * **The target is met by the two large networks**: 784–512–512–10 reaches 98.03 % (interval 97.71–98.52 %) and
#   784–512–BN–512–BN–10 98.17 % (98.05–98.27 %), inside the classic 98.0–98.4 % range for MLPs without dropout or
#   data augmentation; 784–256–128–10 gets 97.89 % (97.49–98.23 %), just under 98 % — an earlier single seed of it
#   scored 98.0 %, which is what one seed can do. 784–512–512–10 has 17 times the parameters of Dense 50 + BN for
#   one more point.
# * **BatchNorm in 784–512–512–10: +0.14 points** (14 test images) — less than the intervals: not shown to differ
#   (exercise 2). The same holds for 784–256–128–10 against 784–512–512–10 (+0.14 points).
# * **Which checkpoint is scored** moves the numbers by a few tenths: for 784–512–512–10 validation's checkpoint beats
#   the last weights by 0.2 points (median); for the networks with BatchNorm the last weights are as good or up to
#   0.2 points better (the small ones are still improving at epoch 15). Differences of that size between
#   architectures are not worth ranking.
# * Times are **wall-clock seconds on a shared 2-core machine** (the run records keep them; the machine was busy with
#   other jobs while these runs trained): the seconds per epoch of 784–512–512–10 printed above are an upper bound on
#   what it takes on an idle core.

# %%
print(f"notebook ran in {time.perf_counter() - t_notebook:.0f} s")

# %% [markdown]
# ## Summary
#
# * The original's four architectures, trained with one sane recipe (He, Adam $10^{-3}$, batch 128, 15 epochs,
#   checkpoint chosen by validation, three seeds), score 96.0 / 97.1 / 97.4 / 97.4 % (medians) on the official test
#   set, against the 36 / 75 / 86 / 83 % it reported.
# * The best MLP here, 784–512–BN–512–BN–10, reaches 98.17 % and 784–512–512–10 98.03 % (asserted ≥ 98.0 %); their
#   intervals overlap, as do those of most neighbouring architectures in the table (only 25 → 50 units separates).
# * The table is in `media/exp_04_results.md` and `media/exp_04_results.csv`, the figure in
#   `media/exp_04_architectures.png`; run folders are in `runs/arch_*_seed*` beside this notebook.

# %% [markdown]
# ## Exercises
#
# 1. Count the trainable parameters of 784–50–BN–10 and of 784–512–BN–512–BN–10 by hand and check them against the
#    table. (BatchNorm's running mean and variance are state, not parameters.)

# %% [markdown]
# **Solution 1** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # A Dense layer n_in -> n_out has n_in * n_out weights and n_out biases; BatchNorm has gamma and beta,
#     # two per unit.
#     def count(widths, batchnorm):
#         dense = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
#         return dense + (2 * sum(widths[1:-1]) if batchnorm else 0)
#
#
#     for row, widths in (("arch_dense50_bn", [784, 50, 10]), ("arch_512_512_bn", [784, 512, 512, 10])):
#         print(f"{label(results[row, SEEDS[0]]['settings']['architecture'])}: by hand {count(widths, True):,}, "
#               f"table {results[row, SEEDS[0]]['params']:,}")
#         assert count(widths, True) == results[row, SEEDS[0]]["params"]

# %% [markdown]
# 2. Does BatchNorm make 784–512–512–10 better? Answer with the medians, the 95 % intervals and the number of test
#    images the difference amounts to.

# %% [markdown]
# **Solution 2** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # The medians differ by a handful of test images, and the intervals overlap: three seeds do not show a
#     # difference. (One seed could have shown either sign; that is why the tables give three.)
#     lo_a, hi_a = stats["arch_512_512"]["interval"]
#     lo_b, hi_b = stats["arch_512_512_bn"]["interval"]
#     print(f"without BN {acc['arch_512_512']:.2%} ({lo_a:.2%} - {hi_a:.2%}); with BN {acc['arch_512_512_bn']:.2%} "
#           f"({lo_b:.2%} - {hi_b:.2%}); difference {round(bn_gain * n_test):+d} of {n_test} test images")
#     if not QUICK:
#         assert not separated["arch_512_512", "arch_512_512_bn"] and abs(bn_gain) < 0.003

# %% [markdown]
# ---
# [← experiment 03 — BatchNorm](03_batchnorm.ipynb) · [begin here](../00_begin_here.ipynb) · **experiment 04 — architectures** · [next: experiment 05 — evaluation →](05_evaluation.ipynb)
