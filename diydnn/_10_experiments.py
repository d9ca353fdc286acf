# %% [markdown]
# # 10 — Running experiments: settings, run folders, results, and controls
#
# The original *diy-dnn* configured its studies with a `RUN_SETTINGS` list: one dict per run with a
# `model_name`, an `architecture`, `num_epochs`, `train_abs_samples` and `clip_grads_norm`, and hard-coded
# everything else. This chapter makes that explicit and reproducible, and gives the experiment notebooks
# (`notebooks/experiments/`) one shared toolkit:
#
# * `check_settings` fills in and validates a run's settings — every knob the original hard-coded
#   (learning rate, batch size, optimiser, initialiser, seed) is now a named setting;
# * `run_experiment` trains one run on MNIST and writes its **run folder**: settings, history, best and
#   last checkpoints, and a result summary;
# * `load_runs` and `results_table` read the folders back, for the evaluation notebook;
# * `experiment_controls` builds the sliders and the *Train* button of the experiment notebooks, with a
#   progress bar and curves that update while the model trains.

# %%
"""Chapter 10: the experiment toolkit: RUN_SETTINGS-style runs, run folders, results, interactive controls."""
import functools
import json
import shutil
import time
from pathlib import Path

import numpy as np

from diydnn._00_conventions import quick_mode, write_atomically
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import get_optimiser
from diydnn._07_model import Sequential
from diydnn._08_mnist import BatchStream, load_mnist, train_val_split
from diydnn._09_training import (CHECKPOINT_BEST, Callback, DivergenceGuard, EvalTask, History, Loop, TrainTask,
                                 load_checkpoint)

# %% tags=["active-ipynb"]
# import tempfile
# import matplotlib.pyplot as plt
# QUICK = quick_mode()
# scratch = Path(tempfile.mkdtemp(prefix="diydnn_ch10_"))

# %% [markdown]
# ## 1. Settings
#
# A run is a plain dict. Anything left out takes the default below; an unknown key is an error (a typo
# such as `"num_epoch"` would otherwise be silently ignored). `train_abs_samples` (the original's name)
# limits training to the first *n* images of the shuffled training split; `None` uses all of it. The last
# four keys (weight decay and which parameters it spares, a learning-rate schedule, data augmentation) and
# Dropout layers in the architecture come from [chapter 11](11_regularisation.ipynb); their defaults change
# nothing.

# %%
SETTINGS_DEFAULTS = {
    "model_name": "run",
    "architecture": [{"layer": "Dense", "units": 50}, {"layer": "ReLU"}, {"layer": "Dense", "units": 10}],
    "num_epochs": 1,
    "train_abs_samples": None,
    "clip_grads_norm": None,
    "lr": 1e-3,
    "batch_size": 128,
    "optimizer": "adam",
    "init": "he",
    "seed": 0,
    "n_val": 5000,
    "evals_per_epoch": 1,
    "stop_on_divergence": True,
    # chapter 11 (regularisation); Dropout layers go into "architecture" (mlp(..., dropout=rate))
    "weight_decay": None,          # None: the optimiser's own; adamw: decoupled; sgd/momentum/adam: L2 in the loss
    "decay_exclude": ["b", "gamma", "beta"],   # parameters weight decay leaves alone (biases, BatchNorm)
    "schedule": None,              # None, "constant", "cosine", "step", "warmup_cosine" or a schedule config dict
    "augment": None,               # None or {"max_shift": pixels, "max_degrees": degrees}: training batches only
}


def check_settings(settings):
    """The settings with defaults filled in; unknown keys or bad values are a ValueError naming them."""
    unknown = sorted(set(settings) - set(SETTINGS_DEFAULTS))
    if unknown:
        raise ValueError(f"run settings: unknown key(s) {unknown}; known: {sorted(SETTINGS_DEFAULTS)}")
    s = {**SETTINGS_DEFAULTS, **settings}
    name = s["model_name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError(f"run settings: model_name must be a folder-safe name (letters, digits, - _ .), got {name!r}")
    for key in ("num_epochs", "batch_size", "seed", "n_val", "evals_per_epoch"):
        if not isinstance(s[key], (int, np.integer)) or isinstance(s[key], bool) or s[key] < (0 if key == "seed" else 1):
            raise ValueError(f"run settings {name!r}: {key} must be a positive integer, got {s[key]!r}")
    n = s["train_abs_samples"]
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"run settings {name!r}: train_abs_samples must be a positive integer or None, got {n!r}")
    if not (isinstance(s["lr"], (int, float)) and s["lr"] > 0):
        raise ValueError(f"run settings {name!r}: lr must be positive, got {s['lr']!r}")
    c = s["clip_grads_norm"]
    if c is not None and not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"run settings {name!r}: clip_grads_norm must be positive or None, got {c!r}")
    if not isinstance(s["architecture"], list) or not s["architecture"]:
        raise ValueError(f"run settings {name!r}: architecture must be a non-empty list of layer dicts")
    _check_regularisation(s)
    return s


def _check_regularisation(s):
    """Chapter 11's settings: dropout rates, weight decay, schedule, augmentation (ValueError naming the key)."""
    from diydnn._11_regularisation import RUN_SCHEDULES, Augment, DecayMask, Dropout, get_schedule  # a later chapter
    name = s["model_name"]
    for i, entry in enumerate(s["architecture"]):
        if isinstance(entry, dict) and entry.get("layer") == "Dropout":
            try:
                Dropout(entry.get("rate", 0.5))
            except ValueError as e:
                raise ValueError(f"run settings {name!r}: architecture entry {i}: {e}") from None
    wd = s["weight_decay"]
    if wd is not None and (isinstance(wd, bool) or not isinstance(wd, (int, float)) or not 0 <= wd < float("inf")):
        raise ValueError(f"run settings {name!r}: weight_decay must be a non-negative number or None, got {wd!r}")
    try:
        DecayMask(s["decay_exclude"])
        if s["schedule"] not in RUN_SCHEDULES:
            get_schedule(s["schedule"])
        if s["augment"] is not None:
            if not isinstance(s["augment"], dict):
                raise ValueError(f"augment must be None or a dict like {{'max_shift': 2}}, got {s['augment']!r}")
            Augment(**s["augment"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"run settings {name!r}: {e}") from None


def mlp(hidden=(50,), batchnorm=False, n_classes=10, dropout=0.0):
    """Architecture dicts of a ReLU MLP: [Dense(h) (+ BatchNorm) + ReLU (+ Dropout)] per hidden width, then
    Dense(n_classes). dropout: the probability of dropping a hidden unit (chapter 11); 0 adds no Dropout layer."""
    layers = []
    for units in hidden:
        layers.append({"layer": "Dense", "units": int(units)})
        if batchnorm:
            layers.append({"layer": "BatchNorm"})
        layers.append({"layer": "ReLU"})
        if dropout:
            layers.append({"layer": "Dropout", "rate": float(dropout)})
    return layers + [{"layer": "Dense", "units": int(n_classes)}]


def describe_mlp(architecture):
    """(hidden widths, uses BatchNorm) of an architecture made by mlp()."""
    dense = [entry["units"] for entry in architecture if entry["layer"] == "Dense"]
    return dense[:-1], any(entry["layer"] == "BatchNorm" for entry in architecture)


def dropout_rate(architecture):
    """The largest Dropout rate in an architecture (0.0 without Dropout): what the slider shows."""
    return max([float(e.get("rate", 0.5)) for e in architecture if e.get("layer") == "Dropout"], default=0.0)


def build_model(settings, n_in=784, rng=None):
    """A Sequential from the settings' architecture; Dense layers without an "init" get settings["init"]."""
    s = check_settings(settings)
    architecture = [dict(entry, init=entry.get("init", s["init"])) if entry.get("layer") == "Dense" else dict(entry)
                    for entry in s["architecture"]]
    return Sequential.from_config(architecture, n_in=n_in, rng=rng)


# %% tags=["active-ipynb"]
# print(check_settings({"model_name": "dense50", "num_epochs": 5}))
# print(mlp([100], batchnorm=True), describe_mlp(mlp([100], batchnorm=True)))
# build_model({"architecture": mlp([50], batchnorm=True)}, rng=np.random.default_rng(0)).summary()
# for bad in ({"num_epoch": 5}, {"lr": -1.0}, {"model_name": "../escape"}):
#     try:
#         check_settings(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad settings accepted")
# assert describe_mlp(mlp([100, 50], batchnorm=True)) == ([100, 50], True)

# %% [markdown]
# ## 2. Data, shared by all runs
#
# Every run uses the same split: the official 60,000 training images minus a validation set of `n_val`
# images (drawn with a fixed seed, so the validation set is the same whatever the run's seed), and the
# official 10,000 test images, used only for the final figure of each run. Loaded once per process.

# %%
SPLIT_SEED = 20240101  # fixed: every run validates on the same images


@functools.lru_cache(maxsize=2)
def mnist_splits(n_val=5000):
    """((X_train, y_train), (X_val, y_val), (X_test, y_test)); cached, so treat the arrays as read-only."""
    (X_train, y_train), (X_test, y_test) = load_mnist()
    train, val = train_val_split(X_train, y_train, n_val=n_val, rng=np.random.default_rng(SPLIT_SEED))
    for a in (*train, *val, X_test, y_test):
        a.setflags(write=False)
    return train, val, (X_test, y_test)


# %% [markdown]
# ## 3. One run, one folder
#
# `run_experiment(settings)` trains on the first `train_abs_samples` images of the training split, evaluates
# on the validation set `evals_per_epoch` times per epoch, keeps the best checkpoint by validation
# accuracy, and at the end evaluates on the test set **the checkpoint chosen by validation accuracy**
# (honest model selection: the test set chooses nothing), and also the final weights. The folder
# `runs/<model_name>/` then holds `settings.json`, `history.json`, `checkpoint_last.npz`,
# `checkpoint_best.npz` and `result.json`. A run that diverges is stopped by the divergence guard (unless
# `stop_on_divergence` is off) and says so in its result.

# %%
def default_runs_dir():
    """runs/ beside the current notebook (runs_quick/ in quick mode, so tests never touch full runs)."""
    return Path.cwd() / ("runs_quick" if quick_mode() else "runs")


def _write_json(path, data):
    write_atomically(path, lambda f: f.write(json.dumps(data, indent=1).encode()))


def _model_arrays(checkpoint_arrays):
    """The model's part of a Loop checkpoint, under the keys of Sequential.state_dict()."""
    return {k[len("model/"):]: v for k, v in checkpoint_arrays.items() if k.startswith("model/")}


def load_model(folder, which=CHECKPOINT_BEST):
    """The model saved in a run folder's checkpoint (best by default), ready to predict."""
    arrays, meta = load_checkpoint(Path(folder) / which)
    model = Sequential.from_config(meta["config"]["model"], n_in=meta["n_in"])
    model.load_state_dict(_model_arrays(arrays))
    return model


def _checkpoint_accuracy(model, path, task):
    """Accuracy of the weights stored in a checkpoint, evaluated in `model`, whose own weights are put back after."""
    own = model.state_dict()
    model.load_state_dict(_model_arrays(load_checkpoint(path)[0]))
    try:
        return task.evaluate(model)["accuracy"]
    finally:
        model.load_state_dict(own)


def _regularise(s, optimizer, stream, n_steps, rng):
    """Chapter 11's settings applied to a run: weight decay and its mask, schedule, augmentation; returns the
    training stream."""
    from diydnn._11_regularisation import Augment, AugmentedStream, DecayMask, schedule_for_run  # a later chapter
    if s["weight_decay"] is not None:
        optimizer.decays = DecayMask(s["decay_exclude"])
        if hasattr(optimizer, "weight_decay"):
            optimizer.weight_decay = float(s["weight_decay"])       # AdamW: decoupled
        else:
            optimizer.l2 = float(s["weight_decay"])                 # SGD, Adam: L2 in the loss
    optimizer.schedule = schedule_for_run(s["schedule"], n_steps, stream.batches_per_epoch)
    if s["augment"] is not None:
        stream = AugmentedStream(stream, Augment(**s["augment"]), rng.spawn(1)[0])
    return stream


def run_experiment(settings, runs_dir=None, data=None, callbacks=(), progress=True, verbose=True,
                   make_model=None, loss=None):
    """Train one run from its settings, write its run folder, and return its result dict.

    The result holds the settings, the history (a History), the test accuracies and timings.
    make_model(settings, rng) builds the model instead of the settings' architecture (for a layer that
    LAYER_TYPES does not know); loss replaces the default SoftmaxCrossEntropy.
    """
    s = check_settings(settings)
    rng = np.random.default_rng(s["seed"])
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = data if data is not None else mnist_splits(s["n_val"])
    if s["train_abs_samples"] is not None:
        X_train, y_train = X_train[:s["train_abs_samples"]], y_train[:s["train_abs_samples"]]
    model = make_model(s, rng) if make_model is not None else build_model(s, n_in=X_train.shape[1], rng=rng)
    loss = loss if loss is not None else SoftmaxCrossEntropy()
    stream = BatchStream(X_train, y_train, batch_size=min(s["batch_size"], len(X_train)), rng=rng, drop_last=False)
    eval_every = max(1, stream.batches_per_epoch // s["evals_per_epoch"])
    n_steps = s["num_epochs"] * stream.batches_per_epoch
    folder = Path(runs_dir if runs_dir is not None else default_runs_dir()) / s["model_name"]
    if folder.exists():
        shutil.rmtree(folder)          # a run folder always describes one complete run
    folder.mkdir(parents=True)
    _write_json(folder / "settings.json", s)
    optimizer = get_optimiser({"name": s["optimizer"], "lr": s["lr"]})
    stream = _regularise(s, optimizer, stream, n_steps, rng)
    task = TrainTask(stream, loss, optimizer, n_steps_per_checkpoint=eval_every, clip_norm=s["clip_grads_norm"])
    guard = [DivergenceGuard()] if s["stop_on_divergence"] else []
    loop = Loop(model, task, eval_tasks=[EvalTask((X_val, y_val), name="val", loss=loss)], output_dir=folder,
                callbacks=guard + list(callbacks), progress=progress, verbose=verbose)
    wall = time.perf_counter()
    history = loop.run(n_steps)
    wall = time.perf_counter() - wall
    test = EvalTask((X_test, y_test), name="test", loss=loss)
    final_finite = all(np.isfinite(p).all() for p in model.params.values())
    test_final = test.evaluate(model)["accuracy"] if final_finite else float("nan")
    has_best = (folder / CHECKPOINT_BEST).exists()
    test_best = _checkpoint_accuracy(model, folder / CHECKPOINT_BEST, test) if has_best else float("nan")
    val_steps, val_acc = history.steps_values("val", "accuracy") if "val" in history.modes() else ([], [])
    result = {
        "model_name": s["model_name"], "steps": loop.step, "epochs": loop.step / stream.batches_per_epoch,
        "train_samples": len(X_train), "params": int(sum(p.size for p in model.params.values())),
        "seconds": wall, "train_seconds": loop.train_seconds,
        "samples_per_second": loop.step * stream.batch_size / max(loop.train_seconds, 1e-9),
        "final_train_loss": history.last("train", "loss"),
        "final_train_accuracy": history.last("train", "accuracy") if "accuracy" in history.metrics("train") else float("nan"),
        "best_val_accuracy": float(np.max(val_acc)) if len(val_acc) else float("nan"),
        "best_step": int(val_steps[int(np.argmax(val_acc))]) if len(val_acc) else None,
        "final_val_accuracy": float(val_acc[-1]) if len(val_acc) else float("nan"),
        "test_accuracy": test_best, "test_accuracy_final": test_final,
        "diverged": loop.diverged, "stop_reason": loop.stop_reason,
    }
    _write_json(folder / "result.json", result)
    return {**result, "settings": s, "history": history, "folder": str(folder), "model": model}


# %% [markdown]
# A small run to see it work: Dense(50) on 5,000 images for 3 epochs (fewer in quick mode).

# %% tags=["active-ipynb"]
# demo = run_experiment({"model_name": "demo", "architecture": mlp([50]), "train_abs_samples": 1000 if QUICK else 5000,
#                        "num_epochs": 2 if QUICK else 3, "batch_size": 64, "lr": 3e-3, "evals_per_epoch": 2},
#                       runs_dir=scratch, progress=False)
# print({k: demo[k] for k in ("steps", "best_val_accuracy", "test_accuracy", "seconds")})
# print(sorted(p.name for p in Path(demo["folder"]).iterdir()))
# assert demo["test_accuracy"] > 0.7 and (Path(demo["folder"]) / "result.json").exists()

# %% [markdown]
# ## 4. Reading runs back
#
# `load_runs(runs_dir)` returns one dict per run folder (settings, result, history), `results_table`
# turns them into rows, and `to_markdown` / `to_csv` write those rows as the summary log the original's
# evaluate script printed.

# %%
RESULT_COLUMNS = ("model_name", "params", "train_samples", "epochs", "best_val_accuracy", "final_val_accuracy",
                  "test_accuracy", "final_train_loss", "seconds", "diverged")


def load_runs(runs_dir=None):
    """One dict per complete run folder under runs_dir (settings + result + history), sorted by name."""
    runs_dir = Path(runs_dir if runs_dir is not None else default_runs_dir())
    runs = []
    for folder in sorted(p for p in runs_dir.glob("*") if (p / "result.json").exists()):
        run = json.loads((folder / "result.json").read_text())
        run["settings"] = json.loads((folder / "settings.json").read_text())
        run["history"] = History.load(folder / "history.json")
        run["folder"] = str(folder)
        runs.append(run)
    return runs


def results_table(runs, columns=RESULT_COLUMNS):
    """Rows (dicts) with the chosen columns, one per run."""
    return [{c: run.get(c) for c in columns} for run in runs]


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def to_markdown(rows):
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows):
    if not rows:
        return ""
    columns = list(rows[0])
    return "\n".join([",".join(columns)] + [",".join(_cell(row[c]) for c in columns) for row in rows]) + "\n"


# %% tags=["active-ipynb"]
# runs = load_runs(scratch)
# print(to_markdown(results_table(runs)))
# assert [r["model_name"] for r in runs] == ["demo"] and runs[0]["test_accuracy"] == demo["test_accuracy"]

# %% [markdown]
# ## 5. Controls: sliders and a Train button
#
# `experiment_controls(defaults, run)` shows the knobs of a run — learning rate (log slider), batch size,
# hidden units, number of training samples, epochs, clip threshold (with an on/off box), BatchNorm on/off,
# initialiser and optimiser — and a *Train* button. Pressing it builds the settings from the controls and
# calls `run(settings, callbacks)`, by default `run_experiment`, with a `LivePlot` callback that redraws the
# loss, accuracy and gradient-norm curves every few steps while it trains. The defaults shown are the ones
# passed in, so untouched controls reproduce the notebook's figures.

# %%
class LivePlot(Callback):
    """Redraw loss, accuracy and gradient norm every `every` steps into an ipywidgets Output."""

    def __init__(self, output, every=20, title=""):
        self.output, self.every, self.title = output, int(every), title

    def _draw(self, loop):
        import matplotlib.pyplot as plt
        from IPython.display import display
        history = loop.history
        fig, axes = plt.subplots(1, 3, figsize=(12, 3))
        steps, loss = history.steps_values("train", "loss")
        axes[0].semilogy(steps, loss, lw=0.8)
        axes[0].set(title="training loss", xlabel="step")
        if "accuracy" in history.metrics("train"):
            axes[1].plot(*history.steps_values("train", "accuracy"), lw=0.8, alpha=0.5, label="train batch")
        for mode in history.modes():
            if mode != "train" and "accuracy" in history.metrics(mode):
                axes[1].plot(*history.steps_values(mode, "accuracy"), "o-", label=mode)
        axes[1].set(title="accuracy", xlabel="step", ylim=(0, 1))
        axes[1].legend(loc="lower right")
        if "grad_norm" in history.metrics("train"):
            axes[2].semilogy(*history.steps_values("train", "grad_norm"), lw=0.8)
        axes[2].set(title="global gradient norm (before clipping)", xlabel="step")
        fig.suptitle(self.title)
        fig.tight_layout()
        with self.output:
            self.output.clear_output(wait=True)
            display(fig)
        plt.close(fig)

    def on_step_end(self, loop, step, logs):
        if step % self.every == 0:
            self._draw(loop)

    def on_train_end(self, loop):
        if loop.history.modes():
            self._draw(loop)


def _schedule_choice(spec):
    """What the schedule dropdown shows for a settings' schedule (a config dict shows as "custom")."""
    return "constant" if spec is None else spec if isinstance(spec, str) else "custom"


def settings_from_controls(defaults, values):
    """Settings from the defaults and the controls' values (a dict named as in experiment_controls)."""
    hidden, _ = describe_mlp(defaults["architecture"])
    s = dict(defaults)
    s["architecture"] = mlp([values["hidden_units"]] * max(1, len(hidden)), batchnorm=values["batchnorm"],
                            dropout=values.get("dropout", dropout_rate(defaults["architecture"])))
    s.update(lr=values["lr"], batch_size=values["batch_size"], train_abs_samples=values["train_abs_samples"],
             num_epochs=values["num_epochs"], init=values["init"], optimizer=values["optimizer"],
             clip_grads_norm=values["clip"] if values["clip_on"] else None)
    if "decay_on" in values:                     # chapter 11's controls (absent in older panels)
        augment = {**(defaults.get("augment") or {}), "max_shift": values["max_shift"]}
        keep = values["schedule"] == _schedule_choice(defaults.get("schedule"))   # unchanged: keep its spec
        s.update(weight_decay=values["weight_decay"] if values["decay_on"] else None,
                 schedule=defaults.get("schedule") if keep else values["schedule"],
                 augment=augment if augment["max_shift"] or augment.get("max_degrees") else None)
    return check_settings(s)


def experiment_controls(defaults, run=None, runs_dir=None):
    """An ipywidgets panel with the run's knobs and a Train button; returns the panel (display it)."""
    import ipywidgets as w
    s = check_settings(defaults)
    hidden, batchnorm = describe_mlp(s["architecture"])
    n_max = 55000
    style, layout = {"description_width": "140px"}, w.Layout(width="480px")
    controls = {
        "lr": w.FloatLogSlider(value=s["lr"], base=10, min=-5, max=1, step=0.25, description="learning rate",
                               readout_format=".1e", style=style, layout=layout),
        "batch_size": w.Dropdown(options=sorted({16, 32, 64, 128, 256, 512, s["batch_size"]}), value=s["batch_size"],
                                 description="batch size", style=style, layout=layout),
        "hidden_units": w.IntSlider(value=hidden[0] if hidden else 50, min=5, max=512, step=5,
                                    description="hidden units", style=style, layout=layout),
        "train_abs_samples": w.Dropdown(options=sorted({100, 1000, 5000, 20000, n_max, s["train_abs_samples"] or n_max}),
                                        value=s["train_abs_samples"] or n_max, description="training samples",
                                        style=style, layout=layout),
        "num_epochs": w.IntSlider(value=s["num_epochs"], min=1, max=max(30, s["num_epochs"]), description="epochs",
                                  style=style, layout=layout),
        "clip_on": w.Checkbox(value=s["clip_grads_norm"] is not None, description="clip-norm"),
        "clip": w.FloatLogSlider(value=s["clip_grads_norm"] or 5.0, base=10, min=-2, max=3, step=0.1,
                                 description="clip threshold c", style=style, layout=layout),
        "batchnorm": w.Checkbox(value=batchnorm, description="BatchNorm"),
        "init": w.Dropdown(options=["he", "glorot", "random"], value=s["init"], description="initialiser",
                           style=style, layout=layout),
        "optimizer": w.Dropdown(options=["sgd", "momentum", "adam", "adamw"], value=s["optimizer"],
                                description="optimiser", style=style, layout=layout),
        # chapter 11: regularisation (the dropout rate applies to every hidden layer)
        "dropout": w.FloatSlider(value=dropout_rate(s["architecture"]), min=0, max=0.8, step=0.05,
                                 description="dropout rate", style=style, layout=layout),
        "decay_on": w.Checkbox(value=s["weight_decay"] is not None, description="weight decay"),
        "weight_decay": w.FloatLogSlider(value=s["weight_decay"] or 1e-2, base=10, min=-6, max=0, step=0.25,
                                         description="weight decay λ", readout_format=".1e", style=style,
                                         layout=layout),
        "schedule": w.Dropdown(options=sorted({"constant", "cosine", "step", "warmup_cosine",
                                               _schedule_choice(s["schedule"])}),
                               value=_schedule_choice(s["schedule"]), description="lr schedule", style=style,
                               layout=layout),
        "max_shift": w.IntSlider(value=(s["augment"] or {}).get("max_shift", 0), min=0, max=4,
                                 description="random shift (px)", style=style, layout=layout),
    }
    button = w.Button(description="Train", button_style="primary", icon="play")
    output = w.Output()
    run = run or (lambda settings, callbacks: run_experiment(settings, runs_dir=runs_dir, callbacks=callbacks))

    def on_click(_):
        button.disabled = True
        try:
            settings = settings_from_controls(s, {k: c.value for k, c in controls.items()})
            output.clear_output()
            result = run(settings, [LivePlot(output, title=settings["model_name"])])
            with output:
                if isinstance(result, dict) and "test_accuracy" in result:
                    print(f"test accuracy {result['test_accuracy']:.4f} (best validation checkpoint); "
                          f"{result['steps']} steps in {result['seconds']:.1f} s")
        except ValueError as e:
            with output:
                print("ValueError:", e)
        finally:
            button.disabled = False

    button.on_click(on_click)
    return w.VBox([w.HTML(f"<b>{s['model_name']}</b>: change the settings and press Train"),
                   *controls.values(), button, output])

# %% tags=["active-ipynb"]
# panel = experiment_controls({"model_name": "panel-demo", "architecture": mlp([50]), "train_abs_samples": 1000},
#                             runs_dir=scratch)
# display(panel)

# %% [markdown]
# Under the test suite the button is not pressed; the same path runs here with the controls' current
# values, so the settings the panel would train are checked:

# %% tags=["active-ipynb"]
# values = {k: c.value for k, c in zip(["lr", "batch_size", "hidden_units", "train_abs_samples", "num_epochs", "clip_on",
#                                         "clip", "batchnorm", "init", "optimizer"], panel.children[1:11])}
# from_panel = settings_from_controls(check_settings({"model_name": "panel-demo", "architecture": mlp([50]),
#                                                      "train_abs_samples": 1000}), values)
# print(from_panel)
# assert from_panel["architecture"] == mlp([50]) and from_panel["train_abs_samples"] == 1000 and from_panel["clip_grads_norm"] is None

# %% [markdown]
# ## Summary
#
# * A run is a settings dict in the original's `RUN_SETTINGS` style, with every hidden knob made explicit
#   and checked (`check_settings`); `mlp(hidden, batchnorm)` writes the usual architectures.
# * `run_experiment` trains it, writes a run folder (settings, history, best/last checkpoints, result), and
#   reports the test accuracy of the checkpoint chosen by validation.
# * `load_runs`, `results_table`, `to_markdown` and `to_csv` read the folders back; `load_model` restores a
#   checkpoint.
# * `experiment_controls` gives every experiment the same sliders and Train button, with live curves.
#
# ## Exercises
#
# 1. Add a "dropout" knob: which chapter would you have to write first?
# 2. Make `run_experiment` resume a run folder instead of starting over (hint: `Loop(..., resume=True)`).
# 3. Plot the validation accuracy of every run in a folder against its training time.
