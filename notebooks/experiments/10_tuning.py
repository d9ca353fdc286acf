# %% [markdown]
# [← experiment 09 — bug zoo](09_bug_zoo.ipynb) · [begin here](../00_begin_here.ipynb) · [chapter 15 — diagnosing and tuning](../15_diagnosing.ipynb) · **experiment 10 — tuning** · [next: experiment 11 — a small ResNet →](11_resnet.ipynb)
#
# # Experiment 10 — A random search against the hand-tuned recipe
#
# Experiment 07's "all" recipe for the 784–512–512–10 MLP (dropout 0.2, AdamW with $\lambda = 0.05$, $\alpha = 10^{-3}$,
# warm-up + cosine, batches of 128, random shifts of up to 2 pixels) was tuned by hand. Can chapter 15's random
# search, at a cost a learner can afford on a laptop, find a better setting?
#
# **The budget.** A full 20-epoch run of this network costs minutes of CPU, so the search cannot train full runs.
# It trains short **trials** — two epochs on 10,000 training images, scored on the 5,000 validation images — drawn
# log-uniformly over the learning rate, the weight decay and the batch size, and uniformly over the dropout rate,
# with everything else as in the recipe. The best trial's setting is then trained on the **full** training data for
# the recipe's own twenty epochs, with three seeds, and so is the recipe: the whole notebook stays within a quarter of
# an hour of CPU (the runs' CPU time is printed in section 4 and asserted).
#
# **The comparison is paired**: seed $s$ of the tuned setting and seed $s$ of the recipe start from the same
# weights (same architecture widths, same seed) and are scored on the same 10,000 test images, so the per-seed
# difference removes most of the seed-to-seed spread. The verdict is the mean difference with its 95 % interval
# (Student's t over the three seeds). The test set is scored once per run, by the checkpoint with the best
# validation accuracy; the search itself only ever sees validation accuracy.
#
# Runs are stored in `runs/` (git-ignored) and loaded instead of retrained when their settings are unchanged. In the
# test suite's quick mode everything shrinks (a few trials on 2,000 images, final runs on 4,000 images for one
# epoch, validation on 1,000 and test on 2,000), and only "the runs learn" is asserted.

# %%
import os
import time

import numpy as np
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from diydnn._00_conventions import quick_mode, save_figure
from diydnn._10_experiments import check_settings, interval95, mlp, mnist_splits, run_or_load
from diydnn._10a_panels import experiment_controls
from diydnn._14_performance import set_threads
from diydnn._15_diagnosing import best_trial, importance, parallel_coordinates, random_trials, run_search, trial_settings

QUICK = quick_mode()
blas_limit = set_threads()      # BLAS threads for this kernel: DIYDNN_THREADS, default 1 (chapter 14, section 6: why)
cpu_start = time.process_time()

# %% [markdown]
# ## 1. The recipe and the search space

# %%
HIDDEN = [512, 512]
RECIPE = {"architecture": mlp(HIDDEN, dropout=0.2), "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05,
          "schedule": "warmup_cosine", "augment": {"max_shift": 2}, "batch_size": 128, "evals_per_epoch": 1}
SPACE = {   # chapter 15's search space, centred on this recipe: each range holds the recipe's value
    "lr": (2e-4, 5e-3, "log"),
    "weight_decay": (1e-3, 0.3, "log"),
    "dropout": (0.0, 0.5, "uniform"),
    "batch_size": (64, 512, "log_int"),
}
N_TRIALS = 4 if QUICK else 12
TRIAL = {"hidden": HIDDEN, **{k: v for k, v in RECIPE.items() if k != "architecture"},
         "num_epochs": 1 if QUICK else 2, "train_abs_samples": 2000 if QUICK else 10000}
FINAL_EPOCHS = 1 if QUICK else 20
SEEDS = (0, 1, 2)

train, (X_val, y_val), (X_test, y_test) = mnist_splits()
DATA = (train, (X_val[:1000], y_val[:1000]), (X_test[:2000], y_test[:2000])) if QUICK else None   # None: all of it
print(f"{N_TRIALS} trials of {TRIAL['num_epochs']} epochs on {TRIAL['train_abs_samples']} images; final runs: "
      f"{FINAL_EPOCHS} epochs on {4000 if QUICK else len(train[0])} images, seeds {SEEDS}")

# %% [markdown]
# ## 2. The search

# %%
trials = random_trials(N_TRIALS, np.random.default_rng(10), space=SPACE)
search = run_search(TRIAL, trials, "trial", data=DATA, wandb_group=os.environ.get("DIYDNN_WANDB_GROUP"))
for r in search:
    print(f"{r['model_name']}: best validation accuracy {r['best_val_accuracy']:.4f}  "
          + ", ".join(f"{k} {v:.3g}" for k, v in r["params"].items()))
best = best_trial(search)
print(f"best trial {best['model_name']}:", {k: round(v, 5) for k, v in best["params"].items()})
assert best["best_val_accuracy"] > (0.5 if QUICK else 0.95)          # the trials learn

# %% [markdown]
# Every trial is a run folder and a run record (on a fresh clone the records stand in for the folders); the
# parallel-coordinates plot below is drawn from the trials' parameters and results (chapter 15), and the printed
# shares say how much of the spread between trials each parameter alone explains.

# %%
fig, ax = plt.subplots(figsize=(12, 4))
parallel_coordinates(search, ax, space=SPACE)          # each trial: its parameters and its result
ax.set_title(f"{N_TRIALS} trials of the random search (best validation accuracy)")
fig.tight_layout()
save_figure(fig, "exp_10_parallel_coordinates.png")
plt.show()
print("share of the variance explained:", {k: round(v, 2) for k, v in importance(search, space=SPACE).items()})

# %% [markdown]
# ## 3. Try it yourself
#
# The controls start from the tuned setting (seed 0) found above, its learning rate and weight decay rounded to
# three significant digits. *The panel below is live only in a running
# kernel: **Run All first** (until its cell has run, it shows as one line of text). Each Train writes a new run
# folder (`runs/panel_tuned-again`, `runs/panel_tuned-lr0.001`, …), named after what you changed; the runs this
# notebook stores are never replaced.*

# %%
def final_settings(which, seed):
    """The recipe, or the tuned setting, on the full training data for FINAL_EPOCHS epochs."""
    base = {**RECIPE, "num_epochs": FINAL_EPOCHS, "seed": seed}
    if which == "recipe":
        s = {**base, "model_name": f"recipe_seed{seed}"}
    else:
        s = trial_settings({**base, "hidden": HIDDEN}, best["params"], f"tuned_seed{seed}")
        s = {k: v for k, v in s.items() if k != "train_abs_samples"}
    if QUICK:
        s = {**s, "train_abs_samples": 4000}
    return check_settings(s)


tuned = final_settings("tuned", 0)
# the sliders show three significant digits: start them from the tuned values so rounded, so that what a learner
# sees is exactly what a Train uses
DEFAULTS = {**tuned, "model_name": "panel_tuned", "lr": float(f"{tuned['lr']:.3g}"),
            "weight_decay": float(f"{tuned['weight_decay']:.3g}")}
panel = experiment_controls(DEFAULTS)
panel

# %% [markdown]
# ## 4. Tuned against hand-tuned, three seeds each, on the full data

# %%
final = {(which, seed): run_or_load(final_settings(which, seed), data=DATA) for which in ("recipe", "tuned")
         for seed in SEEDS}
panel.set_reference([final[("tuned", seed)] for seed in SEEDS])     # the panel's grey curves and its comparison
for (which, seed), r in final.items():
    print(f"{r['model_name']:13s} test {r['test_accuracy']:.4f}  best val. {r['best_val_accuracy']:.4f}  "
          f"CPU {r.get('cpu_seconds', float('nan')):6.1f} s{'  (stored run)' if r['loaded'] else ''}")
assert not any(r["diverged"] for r in final.values())
assert min(r["test_accuracy"] for r in final.values()) > (0.5 if QUICK else 0.97)      # every final run learns

# %%
acc = {which: np.array([final[which, s]["test_accuracy"] for s in SEEDS]) for which in ("recipe", "tuned")}
diff = acc["tuned"] - acc["recipe"]                    # paired: same seed, same test images
lines = []
for which in ("recipe", "tuned"):
    lo, hi = interval95(acc[which])
    lines.append(f"| {which} | {100 * acc[which].mean():.2f} % | {100 * lo:.2f} – {100 * hi:.2f} % | "
                 + ", ".join(f"{100 * a:.2f}" for a in acc[which]) + " |")
lo, hi = interval95(diff)
lines.append(f"| tuned − recipe (paired) | {100 * diff.mean():+.2f} points | {100 * lo:+.2f} – {100 * hi:+.2f} | "
             + ", ".join(f"{100 * d:+.2f}" for d in diff) + " |")
verdict = ("the tuned setting **beats** the recipe: the whole interval of the paired difference is above zero"
           if lo > 0 else "the tuned setting does **worse** than the recipe: the whole interval is below zero"
           if hi < 0 else "**no difference can be claimed**: the interval of the paired difference holds zero")
display(Markdown(f"Test accuracy after {FINAL_EPOCHS} epoch(s) on the full data ({len(SEEDS)} seeds):\n\n"
                 "| setting | mean | 95 % interval | per seed |\n|---|---|---|---|\n" + "\n".join(lines)
                 + f"\n\n**Verdict**: {verdict}."))
print(f"intervals: 95 % Student-t intervals of the mean over the {len(SEEDS)} seeds")
for which in ("recipe", "tuned"):
    s0 = final[which, 0]["settings"]
    rate = next((e["rate"] for e in s0["architecture"] if e["layer"] == "Dropout"), 0.0)
    print(f"{which:6s}: lr {s0['lr']:.3g}, weight decay {s0['weight_decay']:.3g}, dropout {rate:.3g}, batch size "
          f"{s0['batch_size']}, {final[which, 0]['steps']} steps in {FINAL_EPOCHS} epoch(s)")
trial_cpu = sum(r["cpu_seconds"] for r in search) / 60               # as recorded when each run was trained
final_cpu = sum(r["cpu_seconds"] for r in final.values()) / 60
print(f"CPU time of the runs, as recorded when they were trained: {trial_cpu:.1f} min for the {len(search)} trials, "
      f"{final_cpu:.1f} min for the {len(final)} final runs; this kernel so far (runs stored earlier were loaded): "
      f"{(time.process_time() - cpu_start) / 60:.1f} min")
assert QUICK or trial_cpu + final_cpu < 15                              # the budget of section 1

# %% [markdown]
# ## 5. Reading the result
#
# The verdict above is computed from the interval of the paired differences, never from the means alone: with three
# seeds, a mean difference smaller than the interval's half-width is noise. The printed settings show *what* the
# search changed. Its trials are short (two epochs on a fifth of the data), so they favour settings that learn
# **fast** — a larger rate and smaller batches, hence more and bigger steps per epoch — while the final runs are
# twenty epochs on all the data, where the recipe's cosine schedule has time to anneal and regularisation pays
# more. Whether the trials' preference survives the long budget is exactly what the paired comparison measures; a
# search optimises the budget of its trials, so make the trials look like the runs you will train.
#
# ## Exercises
#
# 1. **A longer trial.** Train the trials for four epochs on 20,000 images instead (twice the cost twice over). Does
#    the best trial's setting change, and does its paired difference against the recipe?
#
# *To go further* (no solution): set `FINAL_EPOCHS = 5` and rerun section 4. At a short budget, which setting wins,
# and by how much? Compare with the verdict at twenty epochs.

# %% [markdown]
# **Solution 1** — try the exercise first; the cell below is collapsed (click to open).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # (sketch, kept cheap: the same four first trials, longer). The ranking of short trials is what a search
#     # relies on; compare the order of the first trials at both lengths.
#     longer = {**TRIAL, "num_epochs": TRIAL["num_epochs"] * 2, "train_abs_samples": TRIAL["train_abs_samples"] * 2}
#     few = trials[:2] if QUICK else trials[:4]
#     longer_runs = run_search(longer, few, "longer_trial", data=DATA)
#     short_order = np.argsort([-r["best_val_accuracy"] for r in search[:len(few)]])
#     long_order = np.argsort([-r["best_val_accuracy"] for r in longer_runs])
#     print("order of the trials, short:", short_order.tolist(), " longer:", long_order.tolist())
#     assert all(r["best_val_accuracy"] > (0.5 if QUICK else 0.9) for r in longer_runs)
