# %% [markdown]
# [← 10 — experiments toolkit](10_experiments.ipynb) · [begin here](00_begin_here.ipynb) · **10a — panels** · [next: 11 — regularisation →](11_regularisation.ipynb)
#
# # 10a — Panels: sliders a learner can play with
#
# Every experiment notebook shows a **panel**: the knobs of its recipe as sliders and menus, a *Train* button, and
# curves that update while the model trains. A panel is there to answer one question fast: *what happens if I change
# this?* So it keeps five promises, each built and checked in this chapter:
#
# 1. **What you see is what trains.** Every control starts at exactly the notebook's value, the values shown are the
#    values trained (a slider's number is a label, not a text box that could disagree), and the line under the
#    button lists what changed.
# 2. **Train in the background, with Stop.** *Train* starts the run on a thread of its own and returns at once:
#    the notebook stays usable (another cell runs), the curves keep updating, and *Stop* ends the run at the next
#    step. A stopped run keeps its folder, marked "stopped by the learner", with a valid best checkpoint. One Train
#    per panel at a time; a second press says so, and a press that must wait for the kernel (cells still running)
#    says so at once.
# 3. **Set against the reference.** The notebook's own run (same recipe, same seed) is drawn in grey behind the new
#    curves, and the result line says whether the new test accuracy lies inside, above or below the reference
#    recipe's three-seed interval — "within seed noise" is a valid and important answer.
# 4. **The cost before pressing.** Under the button: how long this Train should take on this machine, from the
#    reference run's time scaled by the settings' FLOPs; and a **preview** box that trains on a tenth of the data
#    for one epoch, to see a direction in seconds.
# 5. **Train never replaces a stored run**: each press writes a new run folder named after what changed.
#
# The panel is built from chapter 10's toolkit (`run_experiment`, `check_settings`, `free_run_name`) and chapter 14's
# `matmul_flops`. How a panel draws and trains safely from a second thread is in the section **Engineering** at the
# end; the ideas are complete without it.

# %%
"""Chapter 10a: the experiment panels: controls, background training with Stop, the reference, the cost."""
import functools
import html
import threading
import time
from pathlib import Path

import numpy as np

from diydnn._09_training import Callback
from diydnn._10_experiments import (POOLINGS, SETTINGS_DEFAULTS, build_model, check_settings, cnn,
                                    default_runs_dir, describe_cnn, describe_mlp, describe_resnet, dropout_rate,
                                    free_run_name, interval95, mlp, resnet, run_experiment)

# %% tags=["active-ipynb"]
# import json
# import tempfile
# from diydnn._00_conventions import quick_mode
# QUICK = quick_mode()
# scratch = Path(tempfile.mkdtemp(prefix="diydnn_ch10a_"))
#
# # The Engineering section at the end defines LivePlot, which the panel draws with, the Train toggle and the panel's widget class; take them from the finished module
# # now (`import diydnn` ran that section already), so that the examples can run before we get there.
# from diydnn._10a_panels import WAITING_HTML, LivePlot, _build_panel_class, _shown_path, _train_button

# %% [markdown]
# ## 1. What changed: names for settings
#
# A Train writes a run folder named after the notebook's run and what was changed (`clip_random_sgd-lr0.3-ep1`),
# with `-2`, `-3`, … when that name is taken (chapter 10's `free_run_name`). `changed_settings` lists the
# differences; the line under the button shows them.

# %%
def _label(value):
    """Short folder-safe text for a setting's value: 0.001, 3e-05, 128, none."""
    return "none" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)).replace("+", "")


_NAME_TAGS = (("lr", "lr"), ("batch_size", "bs"), ("train_abs_samples", "n"), ("num_epochs", "ep"),
              ("clip_grads_norm", "clip"), ("init", ""), ("optimizer", ""), ("weight_decay", "wd"), ("seed", "seed"))


def changed_settings(defaults, settings):
    """[(key, default value, new value)] for every setting that differs (the run name aside)."""
    d, s = check_settings(defaults), check_settings(settings)
    return [(k, d[k], s[k]) for k in SETTINGS_DEFAULTS if k != "model_name" and s[k] != d[k]]


def _name_label(value):
    """A value for a run name: positional digits, no minus sign (free_run_name reads a trailing -N as a counter)."""
    if isinstance(value, float):
        return np.format_float_positional(value, trim="-")
    return _label(value)


def _architecture_tag(architecture):
    """h50x50bn for an MLP, f16k5maxbn for a CNN (first block's filters, kernel size, pooling), w32b2x2-plain-flatten-bnafter
    for a ResNet (chapter 16: width, blocks per stage, and what differs from a residual net with a GAP head and BN before)."""
    res = describe_resnet(architecture)
    if res is not None:
        return (f"w{res['width']}b" + "x".join(map(str, res["blocks"])) + ("" if res["residual"] else "-plain")
                + ("" if res["head"] == "gap" else f"-{res['head']}") + ("" if res["bn"] == "before" else f"-bn{res['bn']}"))
    knobs = describe_cnn(architecture)
    rate = dropout_rate(architecture)
    if knobs is not None:
        return (f"f{knobs['filters'][0]}k{knobs['kernel_size']}{knobs['pooling']}" + ("bn" if knobs["batchnorm"] else "")
                + (f"do{_name_label(rate)}" if rate else ""))
    hidden, batchnorm = describe_mlp(architecture)
    return "h" + "x".join(map(str, hidden)) + ("bn" if batchnorm else "") + (f"do{_name_label(rate)}" if rate else "")


def panel_run_name(defaults, settings):
    """The defaults' model_name plus what changed, e.g. clip_random_sgd-lr0.3-ep1 (or <name>-again)."""
    d, s = check_settings(defaults), check_settings(settings)
    parts = [tag + _name_label(s[key]) for key, tag in _NAME_TAGS if s[key] != d[key]]
    if s["architecture"] != d["architecture"]:
        parts.append(_architecture_tag(s["architecture"]))
    if s.get("schedule") != d.get("schedule"):
        parts.append(_schedule_choice(s["schedule"]))
    if s.get("augment") != d.get("augment"):
        parts.append(f"shift{(s['augment'] or {}).get('max_shift', 0)}")
    return "-".join([d["model_name"], *parts]) if parts else f"{d['model_name']}-again"

# %% [markdown]
# ## 2. Controls that hold exactly the notebook's values
#
# **Every control starts at exactly the notebook's value.** A continuous log slider snaps its value to its grid as
# soon as a browser shows it (`FloatLogSlider(step=0.25)` turns $\alpha = 3$ into $10^{0.5} = 3.162$). So the numeric
# knobs are `SelectionSlider`s over a list of round values **plus the default itself**: the browser only ever sends an
# index, and the value is the exact Python number. A slider's own number box would accept typing (type 1 into the
# clip box and it shows 1 while the slider keeps 5), so the sliders have no number box (`readout=False`): a label
# beside each shows the value the panel holds, set from Python.

# %%
def _options(values, default, fmt=_label):
    """(label, value) pairs of the sorted values with the default among them, for a selection widget."""
    values = sorted(set(values) | {default})
    return [(fmt(v), v) for v in values]


ALL_SAMPLES = "all"     # the "training samples" control's value for train_abs_samples=None


def control_values(defaults):
    """The values of untouched controls for these defaults (named as in experiment_controls)."""
    s = check_settings(defaults)
    hidden, batchnorm = describe_mlp(s["architecture"])
    values = {"lr": s["lr"], "batch_size": s["batch_size"], "hidden_units": hidden[0] if hidden else 50,
              "train_abs_samples": ALL_SAMPLES if s["train_abs_samples"] is None else s["train_abs_samples"],
              "num_epochs": s["num_epochs"], "clip_on": s["clip_grads_norm"] is not None,
              "clip": s["clip_grads_norm"] if s["clip_grads_norm"] is not None else 5.0, "batchnorm": batchnorm,
              "init": s["init"], "optimizer": s["optimizer"], "seed": s["seed"]}
    values.update(dropout=dropout_rate(s["architecture"]), decay_on=s["weight_decay"] is not None,
                  weight_decay=s["weight_decay"] if s["weight_decay"] is not None else 1e-2,
                  schedule=_schedule_choice(s["schedule"]), max_shift=(s["augment"] or {}).get("max_shift", 0))
    knobs = describe_cnn(s["architecture"])
    if knobs is not None:
        del values["hidden_units"]
        values.update(filters=knobs["filters"][0], kernel_size=knobs["kernel_size"], pooling=knobs["pooling"],
                      batchnorm=knobs["batchnorm"])
    res = describe_resnet(s["architecture"])
    if res is not None:            # a ResNet (chapter 16): its own knobs instead of hidden units (its panel has no
        del values["hidden_units"]     # BatchNorm box and no dropout: the "bn" menu places BatchNorm)
        values.update(width=res["width"], blocks=res["blocks"][0], residual=res["residual"], head=res["head"],
                      bn=res["bn"])
    return values


def _schedule_choice(spec):
    """What the schedule dropdown shows for a settings' schedule (a config dict shows as "custom")."""
    return "constant" if spec is None else spec if isinstance(spec, str) else "custom"

# %%
def settings_from_controls(defaults, values):
    """Settings from the defaults and the controls' values (a dict named as in experiment_controls).

    Untouched controls give back exactly the defaults: the architecture is rebuilt only when one of its knobs
    was changed (an MLP: every hidden layer `hidden_units` wide, its dropout rate; a CNN: the first block's
    `filters`, doubled in each further block, `kernel_size`, `pooling`), and an unchanged schedule keeps its spec.
    """
    d = check_settings(defaults)
    untouched = control_values(d)
    s = dict(d)
    knobs, res = describe_cnn(d["architecture"]), describe_resnet(d["architecture"])
    shape = (("width", "blocks", "residual", "head", "bn") if res is not None else
             ("filters", "kernel_size", "pooling", "batchnorm", "dropout") if knobs is not None else
             ("hidden_units", "batchnorm", "dropout"))
    if any(k in values and values[k] != untouched[k] for k in shape):
        if res is not None:                      # every stage gets `blocks` blocks; the number of stages is kept
            s["architecture"] = resnet(values["width"], [values["blocks"]] * len(res["blocks"]), values["residual"],
                                       values["head"], values["bn"])
        elif knobs is not None:
            s["architecture"] = cnn([values["filters"] * 2 ** i for i in range(len(knobs["filters"]))],
                                    values["kernel_size"], values["pooling"], knobs["dense"], batchnorm=values["batchnorm"],
                                    dropout=values.get("dropout", untouched["dropout"]))
        else:
            hidden, _ = describe_mlp(d["architecture"])
            s["architecture"] = mlp([values["hidden_units"]] * max(1, len(hidden)), batchnorm=values["batchnorm"],
                                    dropout=values.get("dropout", untouched["dropout"]))
    samples = values["train_abs_samples"]
    s.update(lr=values["lr"], batch_size=values["batch_size"], num_epochs=values["num_epochs"],
             train_abs_samples=None if samples == ALL_SAMPLES else samples, init=values["init"],
             optimizer=values["optimizer"], clip_grads_norm=values["clip"] if values["clip_on"] else None,
             seed=values.get("seed", d["seed"]))
    if "decay_on" in values:                     # chapter 11's controls (absent in older panels)
        augment = {**(d.get("augment") or {}), "max_shift": values["max_shift"]}
        keep = values["schedule"] == untouched["schedule"]      # unchanged: keep its spec (a dict shows as "custom")
        s.update(weight_decay=values["weight_decay"] if values["decay_on"] else None,
                 schedule=d.get("schedule") if keep else values["schedule"],
                 augment=augment if augment["max_shift"] or augment.get("max_degrees") else None)
    return check_settings(s)

# %%
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
CLIP_CHOICES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
HIDDEN_CHOICES = (5, 10, 25, 50, 100, 128, 200, 256, 512, 1024)
FILTER_CHOICES = (4, 8, 16, 24, 32, 48, 64)
DROPOUT_CHOICES = (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
DECAY_CHOICES = (1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
SAMPLE_CHOICES = (100, 1000, 5000, 20000)
SEED_CHOICES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)


# %%
def _make_controls(s, untouched):
    """The panel's controls, name -> widget, each starting at exactly the settings' value (sliders: no typed box)."""
    import ipywidgets as w
    n_all = 60000 - s["n_val"]
    style, layout = {"description_width": "140px"}, w.Layout(width="480px")
    slider = dict(style=style, layout=layout, continuous_update=False, readout=False)
    menu = dict(style=style, layout=layout)
    pick = lambda name, choices, text: w.SelectionSlider(      # noqa: E731
        options=_options(choices, untouched[name]), value=untouched[name], description=text, **slider)
    controls = {
        "lr": w.SelectionSlider(options=_options(LR_CHOICES, s["lr"]), value=s["lr"], description="learning rate",
                                **slider),
        "batch_size": w.Dropdown(options=_options((16, 32, 64, 128, 256, 512), s["batch_size"]),
                                 value=s["batch_size"], description="batch size", **menu),
        "hidden_units": w.SelectionSlider(options=_options(HIDDEN_CHOICES, untouched.get("hidden_units", 50)),
                                          value=untouched.get("hidden_units", 50), description="hidden units", **slider),
        "train_abs_samples": w.Dropdown(
            options=[(f"{n:,}", n) for n in sorted(set(SAMPLE_CHOICES) | ({s["train_abs_samples"]} - {None}))]
            + [(f"all ({n_all:,})", ALL_SAMPLES)], value=untouched["train_abs_samples"], description="training samples",
            **menu),
        "num_epochs": w.IntSlider(value=s["num_epochs"], min=1, max=max(30, s["num_epochs"]), description="epochs",
                                  **slider),
        "clip_on": w.Checkbox(value=untouched["clip_on"], description="clip-norm"),
        "clip": pick("clip", CLIP_CHOICES, "clip threshold c"),
        "batchnorm": w.Checkbox(value=untouched["batchnorm"], description="BatchNorm"),
        "init": w.Dropdown(options=sorted({"he", "glorot", "random", s["init"]}), value=s["init"],
                           description="initialiser", **menu),
        "optimizer": w.Dropdown(options=sorted({"sgd", "momentum", "adam", "adamw", s["optimizer"]}),
                                value=s["optimizer"], description="optimiser", **menu),
        "dropout": pick("dropout", DROPOUT_CHOICES, "dropout rate"),       # chapter 11: regularisation
        "decay_on": w.Checkbox(value=untouched["decay_on"], description="weight decay"),
        "weight_decay": pick("weight_decay", DECAY_CHOICES, "weight decay λ"),
        "schedule": w.Dropdown(options=sorted({"constant", "cosine", "step", "warmup_cosine",
                                               _schedule_choice(s["schedule"])}),
                               value=_schedule_choice(s["schedule"]), description="lr schedule", **menu),
        # the range always includes the notebook's value (an IntSlider would silently clip a shift of 6 to its max)
        "max_shift": w.IntSlider(value=untouched["max_shift"], min=0, max=max(4, untouched["max_shift"]),
                                 description="random shift (px)", **slider),
        "seed": w.Dropdown(options=_options(SEED_CHOICES, s["seed"]), value=s["seed"], description="seed", **menu),
    }
    knobs = describe_cnn(s["architecture"])
    if knobs is not None:          # a CNN (chapters 12-13): filters, kernel size and pooling instead of hidden units
        del controls["hidden_units"]
        controls = {"filters": pick("filters", FILTER_CHOICES, "filters (block 1; x2 per block)"),
                    "kernel_size": w.Dropdown(options=sorted({3, 5, knobs["kernel_size"]}), value=knobs["kernel_size"],
                                              description="kernel size", **menu),
                    "pooling": w.Dropdown(options=list(POOLINGS), value=knobs["pooling"], description="pooling",
                                          **menu), **controls}
    if describe_resnet(s["architecture"]) is not None:
        controls = _resnet_controls(controls, untouched, pick, menu)
    return controls


# %%
def _resnet_controls(controls, untouched, pick, menu):
    """A ResNet's panel (chapter 16): width, blocks per stage, shortcuts, head and BatchNorm placement instead of
    hidden units, the BatchNorm box and dropout."""
    import ipywidgets as w
    controls = {k: c for k, c in controls.items() if k not in ("hidden_units", "batchnorm", "dropout")}
    return {"width": pick("width", FILTER_CHOICES, "width (stage 1)"),
            "blocks": w.Dropdown(options=sorted({1, 2, 3, untouched["blocks"]}), value=untouched["blocks"],
                                 description="blocks per stage", **menu),
            "residual": w.Checkbox(value=untouched["residual"], description="residual connections"),
            "head": w.Dropdown(options=[("global average pool", "gap"), ("flatten + dense", "flatten")],
                               value=untouched["head"], description="head", **menu),
            "bn": w.Dropdown(options=[("before the ReLU", "before"), ("after the ReLU", "after"), ("none", "none")],
                             value=untouched["bn"], description="BatchNorm", **menu), **controls}


# %%
def _with_readout(control):
    """A slider and a label beside it that shows its value (set from Python: what the label says is what trains).
    The box answers .description and .value as its slider does, so code that reads a panel's children still works."""
    import ipywidgets as w
    if not isinstance(control, (w.SelectionSlider, w.IntSlider)):
        return control
    label = w.Label(layout=w.Layout(width="90px"))
    label.add_class("diydnn-panel-readout")

    def show(_=None):
        label.value = control.label if isinstance(control, w.SelectionSlider) else str(control.value)
    control.observe(show, names="value")
    show()
    return _slider_box_class()([control, label])


@functools.lru_cache(maxsize=1)
def _slider_box_class():
    import ipywidgets as w

    class SliderWithReadout(w.HBox):
        """HBox([slider, label]) that reads as its slider: .description and .value."""

        @property
        def description(self):
            return self.children[0].description

        @property
        def value(self):
            return self.children[0].value

    return SliderWithReadout

# %% [markdown]
# ## 3. Set against the reference
#
# A change is only interesting against what the notebook's own recipe did. The panel takes the notebook's
# **reference runs** — the recipe of its defaults, one run per seed, as `run_or_load` returns them (from the committed
# run records, so they cost nothing) — and after each Train compares:
#
# * the new test accuracy with the reference run **of the same seed**, in points;
# * with the reference recipe's three-seed 95 % interval (chapter 10's `interval95`): **inside** means the change is <!-- constant: the confidence level of chapter 10's interval95 -->
#   within seed noise — the recipe's own runs scatter that much; **above** or **below** means more than seed noise.
#
# When only the seed changed, the answer is known before training: any difference is seed noise, and the line says
# so. A preview or a stopped run is not comparable with a full run; the line says that instead.

# %%
def compare_with_reference(result, defaults, reference, preview=False):
    """The panel's result line (plain text): the new test accuracy against the reference runs (one per seed)."""
    new = result["test_accuracy"]
    line = f"test accuracy {new:.2%}"
    if result.get("stop_reason"):
        return line + f" — {result['stop_reason']}: a partial run, not comparable with the reference"
    if preview:
        return line + " — preview (a tenth of the data, one epoch): a direction only, not comparable with the reference"
    if not reference:
        return line
    accs = [r["test_accuracy"] for r in reference]
    same_seed = next((r for r in reference if r["settings"]["seed"] == result["settings"]["seed"]), None)
    base = same_seed or next(r for r in reference if r["settings"]["seed"] == check_settings(defaults)["seed"])
    line += (f" vs reference {base['test_accuracy']:.2%} ({base['model_name']}): "
             f"{(new - base['test_accuracy']) * 100:+.2f} points")
    changed = [k for k, _, _ in changed_settings(defaults, result["settings"])]
    if changed == ["seed"]:
        return line + "; only the seed changed: the difference is seed noise"
    if len(accs) < 2:
        return line
    lo, hi = interval95(accs)
    where = "inside" if lo <= new <= hi else "above" if new > hi else "below"
    verdict = "within seed noise" if where == "inside" else f"{where} the reference recipe's seed noise"
    return line + f"; {where} the reference recipe's {len(accs)}-seed interval {lo:.2%}–{hi:.2%}: {verdict}"

# %% [markdown]
# ## 4. The cost before pressing
#
# One training step of a network costs the FLOPs of its matrix products (chapter 14's `matmul_flops`), which grow
# linearly with the batch; a run takes about (samples per epoch) × (epochs) of them. Its evaluations add one forward
# pass per image (chapter 14's `forward_flops`: each product once, where a training step has three): the validation
# set at each evaluation and the test set once (the last weights are the chosen checkpoint when validation chose the
# last step, as it mostly does; otherwise a second pass). For a long run they are a few per cent; for a one-epoch run
# on 5,000 images of a CNN they cost about as much as the training. So the reference run's
# measured time, scaled by the ratio of the two runs' FLOPs, estimates the new run's time on this machine — roughly
# (memory traffic, building the model, writing checkpoints and the machine's load add their share), but enough to
# see whether a Train costs seconds or minutes. The **preview** box trains on a tenth of the training samples for
# one epoch.

# %%
def _run_flops(settings):
    """FLOPs of the matrix products of a whole run, (training, evaluations): one sample's step × samples × epochs,
    and one image's forward pass × the images evaluated (the validation set evals_per_epoch times an epoch, the
    10,000 test images once: twice only when validation chose an earlier step than the last)."""
    from diydnn._14_performance import forward_flops, matmul_flops        # a later chapter
    s = check_settings(settings)
    model = build_model(s, rng=np.random.default_rng(0))
    samples = s["train_abs_samples"] if s["train_abs_samples"] is not None else 60000 - s["n_val"]
    evaluated = s["n_val"] * s["evals_per_epoch"] * s["num_epochs"] + 10000
    return matmul_flops(model, 1) * samples * s["num_epochs"], forward_flops(model, 1) * evaluated


def preview_settings(settings):
    """The settings of a preview: a tenth of the training samples (at least one batch), one epoch."""
    s = check_settings(settings)
    n = s["train_abs_samples"] if s["train_abs_samples"] is not None else 60000 - s["n_val"]
    return check_settings(dict(s, train_abs_samples=max(n // 10, min(n, s["batch_size"])), num_epochs=1))


def estimate_seconds(settings, reference):
    """About how long a run of these settings takes here: the reference run's seconds × the ratio of FLOPs."""
    return reference["seconds"] * sum(_run_flops(settings)) / sum(_run_flops(reference["settings"]))


# %% tags=["active-ipynb"]
# # The evaluations' share of a run's FLOPs: a long MLP run, and a panel's small run of a CNN
# shares = {}
# for what, settings in (("784-100-10, 15 epochs on all images", {"architecture": mlp([100]), "num_epochs": 15}),
#                        ("CNN, 1 epoch on 5,000 images", {"architecture": cnn(), "num_epochs": 1,
#                                                          "train_abs_samples": 5000})):
#     training, evaluations = _run_flops(settings)
#     shares[what] = evaluations / (training + evaluations)
#     print(f"{what}: the evaluations are {shares[what]:.1%} of the run's FLOPs")
# long_mlp, small_cnn = shares.values()
# assert long_mlp < 0.1 and 0.4 < small_cnn < 0.6     # a few per cent; about as much as the training

# %% [markdown]
# ## 5. The panel
#
# `experiment_controls(defaults, run=None, runs_dir=None, reference=None)` puts it together: the controls, *Train*,
# *Stop*, *preview*, the line that says what changed and what it will cost, the curves, and the result line.
# Pressing *Train* builds the settings from the controls and calls `run(settings, callbacks)` — by default
# `run_experiment` into a new folder — on a background thread; `panel.wait()` waits for it (the checks below use it;
# a learner just watches). `panel.set_reference(runs)` gives the panel its reference runs once the notebook has them.

# %%
STOPPED_BY_LEARNER = "stopped by the learner"


def experiment_controls(defaults, run=None, runs_dir=None, reference=None):
    """A panel with the run's knobs, Train, Stop and preview (display it, or end a cell with it).

    run(settings, callbacks) trains one run and returns its result dict; by default run_experiment into runs_dir.
    Each Train trains into a new run folder (panel_run_name + free_run_name), never a stored one, on a thread of
    its own. reference: the notebook's runs of these defaults, one per seed (drawn in grey, compared with)."""
    import ipywidgets as w
    s = check_settings(defaults)
    controls = _make_controls(s, control_values(s))
    heading, changes, status, result_line = w.HTML(), w.HTML(), w.HTML(), w.HTML()
    button, waiting = _train_button(), w.HTML(WAITING_HTML)
    stop = w.Button(description="Stop", icon="stop", disabled=True)
    preview = w.Checkbox(value=False, description="preview (a tenth of the data, one epoch)",
                         layout=w.Layout(width="480px"))
    image = w.Image(format="png", layout=w.Layout(max_width="100%"))
    for widget, role in ((heading, "heading"), (changes, "changes"), (status, "status"), (result_line, "result"),
                         (stop, "stop"), (preview, "preview"), (button, "train"), (waiting, "waiting")):
        widget.add_class(f"diydnn-panel-{role}")      # names for the browser test
    children = [heading, *(_with_readout(c) for c in controls.values()), preview,
                w.HBox([button, stop, waiting]), changes, status, image, result_line]
    panel = _build_panel_class()(children)
    panel.defaults, panel.controls, panel.button, panel.stop_button, panel.preview = s, controls, button, stop, preview
    panel.image, panel.status, panel.changes, panel.result_line, panel.heading = image, status, changes, result_line, heading
    panel.results, panel.plots, panel.reference, panel.last_error = [], [], [], None
    panel._runs_dir = Path(runs_dir) if runs_dir is not None else None
    panel._run = run or (lambda settings, callbacks: run_experiment(settings, runs_dir=runs_dir, callbacks=callbacks,
                                                                    progress=False, verbose=False))
    panel._busy, panel._thread, panel._stop_event = threading.Lock(), None, threading.Event()
    for control in (*controls.values(), preview):
        control.observe(functools.partial(_show_changes, panel), names="value")
    panel.train, panel.stop = functools.partial(_train, panel), functools.partial(_stop, panel)
    panel.wait, panel.set_reference = functools.partial(_wait, panel), functools.partial(_set_reference, panel)
    button.observe(functools.partial(_pressed, panel), names="value")
    stop.on_click(panel.stop)
    _show_heading(panel)
    panel.set_reference(reference or [])
    return panel

# %%
def _target_dir(panel):
    return panel._runs_dir if panel._runs_dir is not None else default_runs_dir()


def _next_settings(panel):
    settings = settings_from_controls(panel.defaults, panel.values())
    if panel.preview.value:
        settings = preview_settings(settings)
    name = panel_run_name(panel.defaults, settings) + ("-preview" if panel.preview.value else "")
    return dict(settings, model_name=free_run_name(name, _target_dir(panel)))


def _reference_run(panel):
    """The reference run drawn behind the curves: the notebook's recipe with the defaults' seed (or the first one)."""
    same = [r for r in panel.reference if r["settings"]["seed"] == panel.defaults["seed"]]
    return (same or panel.reference or [None])[0]


def _cost_text(panel, settings):
    reference = _reference_run(panel)
    if reference is None or not reference.get("seconds"):
        return ""
    try:
        seconds = estimate_seconds(settings, reference)
    except (ValueError, KeyError, TypeError):          # a model that cannot be built: the error line says why
        return ""
    return f"; about {_duration(seconds)} here (the reference run's time × the FLOPs ratio)"


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


# %%
def _show_changes(panel, _=None):
    """The line under the button: the folder Train writes, what differs from the notebook's settings, the cost."""
    try:
        settings = _next_settings(panel)
    except ValueError as e:
        panel.changes.value = f"<span style='color:#b00'>{html.escape(str(e))}</span>"
        return
    diff = changed_settings(panel.defaults, settings)
    what = ("the notebook's settings" if not diff else "changed: " + ", ".join(
        f"{k} {_label(old) if k != 'architecture' else _architecture_tag(old)} → "
        f"{_label(new) if k != 'architecture' else _architecture_tag(new)}" for k, old, new in diff))
    panel.changes.value = (f"Train writes <code>{html.escape(settings['model_name'])}</code> — "
                           f"{html.escape(what + _cost_text(panel, settings), quote=False)}")


def _show_heading(panel, folder=None):
    panel.heading.value = (
        f"<b>Train into <code>{html.escape(_shown_path(folder))}</code></b>" if folder else
        f"<b>Try it</b>: start from <code>{html.escape(panel.defaults['model_name'])}</code>, change the "
        f"settings and press Train. Each Train writes a new run folder; stored runs are never touched.")


def _set_reference(panel, runs):
    """Give the panel the notebook's reference runs (one per seed): grey curves, the comparison, the cost."""
    panel.reference = list(runs)
    reference = _reference_run(panel)
    plot = LivePlot(title="reference: " + reference["model_name"] if reference else "curves appear here after Train",
                    reference=reference["history"] if reference else None)
    panel.image.value = plot.render(None)      # never an empty image (a browser shows that as a broken icon)
    _show_changes(panel)

# %%
def _train(panel, _=None):
    """Start one run from the controls on a thread of its own and return it (None if a Train is running)."""
    if not panel._busy.acquire(blocking=False):
        panel.status.value = ("<b>A Train is already running in this panel</b>: one at a time — press Stop to end "
                              "it, or wait for its result.")
        return None
    try:
        settings = _next_settings(panel)
    except Exception as e:          # noqa: BLE001 - show it where the learner looks
        panel._busy.release()
        panel.result_line.value = f"<span style='color:#b00'>{type(e).__name__}: {html.escape(str(e))}</span>"
        panel.last_error = e
        return None
    folder = _target_dir(panel) / settings["model_name"]
    _show_heading(panel, folder)
    panel.status.value, panel.result_line.value = "", "training… (Stop ends it at the next step)"
    panel.button.disabled, panel.stop_button.disabled = True, False
    panel._stop_event = threading.Event()
    reference = _reference_run(panel)
    plot = LivePlot(panel.image, title=_shown_path(folder), status=panel.status,
                    reference=reference["history"] if reference else None)
    panel.plots.append(plot)
    preview = panel.preview.value
    panel._thread = threading.Thread(target=_train_body, args=(panel, settings, plot, preview), daemon=True,
                                     name=f"diydnn-train-{settings['model_name']}")
    panel._thread.start()
    return panel._thread


def _pressed(panel, change):
    """The kernel has taken a press of Train: lower the toggle (which hides "waiting for the kernel") and train."""
    if change["new"]:
        panel.button.value = False
        panel.train()


def _stop(panel, _=None):
    """Ask the running Train to end at its next step (the folder is kept, marked, with a valid best checkpoint)."""
    panel._stop_event.set()
    if panel._thread is not None and panel._thread.is_alive():
        panel.result_line.value = "stopping at the next step, then evaluating the checkpoint…"


def _wait(panel, timeout=None):
    """Wait until the running Train (if any) has ended; True if none is running."""
    if panel._thread is not None:
        panel._thread.join(timeout)
    return panel._thread is None or not panel._thread.is_alive()

# %%
def _train_body(panel, settings, plot, preview):
    """The Train thread: run, then report in the result line; never raises (the learner reads the line)."""
    try:
        result = panel._run(settings, [StopOnRequest(panel._stop_event), plot])
        panel.results.append(result)
        if isinstance(result, dict) and "test_accuracy" in result:
            compared = compare_with_reference(result, panel.defaults, panel.reference, preview=preview)
            panel.result_line.value = (f"{html.escape(compared)}; {result['steps']} steps in "
                                       f"{result['seconds']:.1f} s; {plot.draws} redraws")
        else:
            panel.result_line.value = "done"
    except TrainCancelled as e:
        panel.result_line.value = html.escape(str(e))
    except Exception as e:          # noqa: BLE001 - show it where the learner looks
        panel.result_line.value = f"<span style='color:#b00'>{type(e).__name__}: {html.escape(str(e))}</span>"
        panel.last_error = e
    finally:
        panel.button.disabled, panel.stop_button.disabled = False, True
        panel._busy.release()
        _show_changes(panel)


class TrainCancelled(Exception):
    """Stop was pressed before the first step: nothing trained, no folder kept."""


class StopOnRequest(Callback):
    """Ends a run at the next step once `event` is set; before the first step, nothing is trained or kept."""

    def __init__(self, event):
        self.event = event

    def on_train_begin(self, loop):
        if self.event.is_set():
            raise TrainCancelled(f"{STOPPED_BY_LEARNER} before the first step: nothing trained, no folder kept")

    def on_step_end(self, loop, step, logs):
        if self.event.is_set() and loop.stop_reason is None:
            loop.stop(f"{STOPPED_BY_LEARNER} at step {step}")

# %% tags=["active-ipynb"]
# from diydnn._10_experiments import mlp, run_experiment
# stored = run_experiment({"model_name": "panel_example", "architecture": mlp([50]), "train_abs_samples": 1000,
#                          "lr": 3.0, "optimizer": "sgd", "clip_grads_norm": 5.0, "evals_per_epoch": 2},
#                         runs_dir=scratch, progress=False, verbose=False)
# panel = experiment_controls(stored["settings"], runs_dir=scratch, reference=[stored])
# panel

# %% [markdown]
# Under the test suite nobody presses the button, so the same paths run here. Untouched, the controls give
# back **exactly** the settings of the stored run — $\alpha = 3$ and $c = 5$ included, which a log slider on a
# grid of $10^{k/4}$ would have turned into 3.162 and 5.012:

# %% tags=["active-ipynb"]
# untouched = settings_from_controls(stored["settings"], panel.values())
# print({k: untouched[k] for k in ("lr", "clip_grads_norm", "train_abs_samples", "num_epochs")})
# assert untouched == stored["settings"] and untouched["lr"] == 3.0 and untouched["clip_grads_norm"] == 5.0
# assert "the notebook's settings" in panel.changes.value and panel.image.value[:4] == b"\x89PNG"

# %% [markdown]
# Move the learning rate one notch down and press Train (here: call the button's handler). `train()` returns at once
# — the run is on its own thread — and a second press while it runs is refused. The run goes to a new folder named
# after the change; the stored run's files are untouched, byte for byte:

# %% tags=["active-ipynb"]
# before = {p.name: p.read_bytes() for p in Path(stored["folder"]).iterdir()}
# options = [value for _, value in panel.controls["lr"].options]
# panel.controls["lr"].value = options[options.index(3.0) - 1]
# print(panel.changes.value)
# thread = panel.train()
# assert thread is not None and panel.train() is None and "already running" in panel.status.value
# assert panel.wait(timeout=120)
# trained = panel.results[-1]
# print(panel.heading.value, "|", panel.result_line.value)
# assert Path(trained["folder"]).name in panel.heading.value and "vs reference" in panel.result_line.value
# assert trained["model_name"] == "panel_example-lr1" and trained["settings"]["lr"] == 1.0
# assert {p.name: p.read_bytes() for p in Path(stored["folder"]).iterdir()} == before
# assert panel.plots[-1].draws >= 1 and not panel.plots[-1].failures and panel.image.value[:4] == b"\x89PNG"

# %% [markdown]
# **Stop.** A long run, stopped soon after it starts: it ends at the next step, keeps its folder — marked in its
# `result.json` — and its best checkpoint is the evaluation made at the stop.

# %% tags=["active-ipynb"]
# panel.controls["num_epochs"].value = 30
# panel.train()
# time.sleep(1.0)
# asked = time.perf_counter()
# panel.stop()
# assert panel.wait(timeout=60)
# stopped = panel.results[-1]
# print(f"stopped after {stopped['steps']} steps; the thread ended {time.perf_counter() - asked:.2f} s after Stop;",
#       panel.result_line.value)
# assert stopped["stop_reason"].startswith("stopped by the learner") and stopped["steps"] < 30 * 16
# assert json.loads((Path(stopped["folder"]) / "result.json").read_text())["stop_reason"] == stopped["stop_reason"]
# assert (Path(stopped["folder"]) / "checkpoint_best.npz").exists()


# %% [markdown]
# ## Engineering: curves from any thread
#
# ### A redraw can never end a run
#
# **Why the live plot used to crash, and what `LivePlot` does instead.** The first version drew each update
# with `pyplot` and `display(fig)` into an `Output` widget, with log-scale axes. A log axis labels its ticks
# with *mathtext* (`$\mathdefault{10^{-1}}$`), and matplotlib parses mathtext with **one shared parser
# object** (pyparsing with a global packrat cache), which is not safe to use from two threads at once; the
# reported errors (`Unknown symbol: \mathdefault`, `Expected end of text, found '$'`) are what two interleaved
# parses produce. A kernel behind JupyterLab ≥ 4.4 does have more than one thread that runs user code: the
# browser sends widget messages to kernel *subshells* (`commsOverSubshells`, on by default with ipykernel ≥ 7),
# each a thread of its own, and now every Train runs on a thread of its own too, so a redraw can happen while the
# main thread runs a cell that draws, or while the inline backend flushes every open `pyplot` figure after a cell.
#
# `LivePlot` removes each part of that:
# 1. it draws with matplotlib's object API (`Figure` + Agg canvas), never through `pyplot`, so no other code
#    (the inline backend, `plt.close("all")`) can see or flush its figure;
# 2. its tick labels are plain text (`LogFormatter`, `use_mathtext` off): it never calls the mathtext parser;
# 3. it renders the PNG itself and puts the bytes into an `Image` widget: the frontend never asks the kernel
#    to render anything;
# 4. one redraw at a time in the process (a lock; a redraw that finds the lock taken is skipped — the next
#    one shows the same curves), at most every `min_seconds`;
# 5. any exception in a redraw is caught and counted and shown under the curves; training goes on and the
#    run ends with its test evaluation.
#
# The reference run's curves are drawn first, in grey, so that the new run's curves lie on top of them.

# %%
class LivePlot(Callback):
    """Curves of loss, accuracy and gradient norm while training, drawn into an ipywidgets Image.

    Redraws every `every` steps but at most every `min_seconds`, and once at the end. A redraw that fails is
    recorded in `failures` (and shown in `status`, an HTML widget, if given); it never stops training.
    reference: a History drawn in grey behind the curves (the notebook's own run).
    """

    _lock = threading.Lock()    # one redraw at a time in this process, whichever thread asks

    def __init__(self, image=None, every=10, title="", min_seconds=0.5, status=None, dpi=72, reference=None):
        self.image, self.every, self.title = image, int(every), title
        self.min_seconds, self.status, self.dpi, self.reference = float(min_seconds), status, dpi, reference
        self.draws, self.failures, self.png = 0, [], None
        self._last = -float("inf")

    @staticmethod
    def _curves(axes, history, **style):
        if history is None:
            return
        if "train" in history.modes():
            axes[0].plot(*history.steps_values("train", "loss"), lw=0.8, **style)
            if "accuracy" in history.metrics("train"):
                axes[1].plot(*history.steps_values("train", "accuracy"), lw=0.8, alpha=0.5,
                             label="train batch" if not style else None, **style)
            if "grad_norm" in history.metrics("train"):
                axes[2].plot(*history.steps_values("train", "grad_norm"), lw=0.8, **style)
        for mode in history.modes():
            if mode != "train" and "accuracy" in history.metrics(mode):
                axes[1].plot(*history.steps_values(mode, "accuracy"), "o-", ms=3,
                             label=mode if not style else f"{mode} (reference)", **style)

    def figure(self, history):
        """The curves as a matplotlib Figure (object API, plain-text tick labels: no pyplot, no mathtext)."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogFormatter, NullFormatter
        fig = Figure(figsize=(12, 3), dpi=self.dpi)
        axes = fig.subplots(1, 3)
        self._curves(axes, self.reference, color="0.75")
        self._curves(axes, history)
        for ax in (axes[0], axes[2]):
            ys = [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines]
            if ys and all(np.all(y > 0) for y in ys):
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(LogFormatter())
                ax.yaxis.set_minor_formatter(NullFormatter())
        axes[0].set(title="training loss", xlabel="step")
        axes[1].set(title="accuracy", xlabel="step", ylim=(0, 1))
        if axes[1].lines:
            axes[1].legend(loc="lower right")
        axes[2].set(title="global gradient norm (before clipping)", xlabel="step")
        fig.suptitle(self.title)
        fig.tight_layout()
        return fig

    def render(self, history):
        """PNG bytes of figure(history)."""
        import io

        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        with matplotlib.rc_context({"axes.formatter.use_mathtext": False, "text.usetex": False}):
            fig = self.figure(history)
            FigureCanvasAgg(fig)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
        return buffer.getvalue()

    def redraw(self, loop, wait=False):
        """Draw now; True if drawn. Never raises: a failure is recorded, training goes on."""
        if not LivePlot._lock.acquire(timeout=10) if wait else not LivePlot._lock.acquire(blocking=False):
            return False
        try:
            self.png = self.render(loop.history)
            if self.image is not None:
                self.image.value = self.png
            self.draws += 1
            return True
        except Exception as e:          # noqa: BLE001 - a picture must never end a run
            self.failures.append(f"{type(e).__name__}: {e}")
            if self.status is not None:
                self.status.value = (f"<i>{len(self.failures)} redraw(s) of the curves failed (training goes on); "
                                     f"last: {html.escape(self.failures[-1][:200])}</i>")
            return False
        finally:
            self._last = time.perf_counter()
            LivePlot._lock.release()

    def on_step_end(self, loop, step, logs):
        if step % self.every == 0 and time.perf_counter() - self._last >= self.min_seconds:
            self.redraw(loop)

    def on_train_end(self, loop):
        if loop.history.modes():
            self.redraw(loop, wait=True)

# %% [markdown]
# The curves never call the mathtext parser (so they cannot collide with another thread's use of it), and a
# redraw that fails anyway is counted, not raised. Both checked by breaking things on purpose:

# %% tags=["active-ipynb"]
# import matplotlib.mathtext
# parse = matplotlib.mathtext.MathTextParser.parse
# matplotlib.mathtext.MathTextParser.parse = lambda *a, **k: (_ for _ in ()).throw(AssertionError("mathtext used"))
# try:
#     png = LivePlot(reference=stored["history"]).render(trained["history"])
# finally:
#     matplotlib.mathtext.MathTextParser.parse = parse
# assert png[:4] == b"\x89PNG"
#
#
# class BrokenPlot(LivePlot):
#     def render(self, history):
#         raise ValueError("Unknown symbol: \\mathdefault (a simulated collision)")
#
#
# broken = BrokenPlot(every=1, min_seconds=0)
# survived = run_experiment({"model_name": "panel-broken", "architecture": mlp([50]), "train_abs_samples": 2000,
#                            "num_epochs": 2, "lr": 3e-3},
#                           runs_dir=scratch, callbacks=[broken], progress=False, verbose=False)
# print(len(broken.failures), "failed redraws; the run still ends with test accuracy", survived["test_accuracy"])
# assert len(broken.failures) == survived["steps"] + 1 and broken.draws == 0 and survived["test_accuracy"] > 0.7

# %% [markdown]
# ### A press the kernel cannot take yet says so at once
#
# A click on a widget button is a message to the kernel. JupyterLab ≥ 4.4 with ipykernel ≥ 7 sends widget messages
# to a kernel *subshell*, a thread of its own, so a press is taken at once even while cells run (the browser test
# checks it: Train pressed while a cell sleeps starts at once). Without subshells — an older JupyterLab or
# ipykernel, another front-end, or the setting "Kernel Comms over subshells" switched off — the kernel reads the
# message only when the running cells are done (a *Run All* that has not reached its end, a long cell): the
# handler, and anything it would show, waits. So the acknowledgement must come from the browser alone. *Train* is
# therefore a `ToggleButton`: the browser draws a pressed toggle at once, by itself (it adds the class
# `mod-active`), and a style rule shown with the panel makes the line "waiting for the kernel" beside it visible
# while the toggle stays down. The kernel lowers the toggle as soon as it takes the press (`_pressed`), so the line
# shows only while the kernel cannot answer: it appears after 0.3 s, so that a free kernel, which answers well <!-- constant: the delay written in WAITING_HTML -->
# within that, shows no flicker (the browser test checks the rule in JupyterLab's page: a toggle held down with no
# answer shows the line after the delay, a lowered one hides it). Here, without a browser, the parts the kernel owns:

# %%
WAITING_HTML = (
    "<style>.jupyter-widgets.diydnn-panel-waiting{display:none}"
    ".diydnn-panel-train.mod-active~.diydnn-panel-waiting{display:flex;animation:diydnn-waiting 0s .3s both}"
    "@keyframes diydnn-waiting{from{visibility:hidden}to{visibility:visible}}</style>"
    "&#9203; <b>waiting for the kernel</b>: cells are still running; this Train starts when they are done")


def _train_button():
    """Train: a toggle that the browser shows pressed at once (see WAITING_HTML); click() presses it from code."""
    import ipywidgets as w

    class TrainButton(w.ToggleButton):
        def click(self):
            """What a press in the browser does: the value goes up; the panel's handler lowers it and trains."""
            self.value = True

    return TrainButton(value=False, description="Train", button_style="primary", icon="play")

# %% tags=["active-ipynb"]
# toggle = panel.button
# assert toggle.value is False and "diydnn-panel-train" in toggle._dom_classes
# waiting = [c for c in panel.children if hasattr(c, "children") and toggle in c.children][0].children[-1]
# assert "diydnn-panel-waiting" in waiting._dom_classes and ".diydnn-panel-train.mod-active~" in waiting.value
# panel.controls["num_epochs"].value = 1
# toggle.click()                      # the browser's press: the value goes up ...
# print("after the press the toggle is", "down" if toggle.value else "up again", "and a Train runs:",
#       panel._thread is not None and panel._thread.is_alive())
# assert toggle.value is False        # ... and the kernel lowered it (which hides the waiting line)
# assert panel.wait(timeout=120) and panel.results[-1]["model_name"].startswith("panel_example-")


# %% [markdown]
# ### The panel object
#
# A panel is an ipywidgets `VBox` with the handles the functions above use. Where no live kernel renders widgets
# (a notebook viewer, a plain `print`), it shows as a line of text that says what to do.

# %%
def _build_panel_class():
    import ipywidgets as w

    class ExperimentPanel(w.VBox):
        """The panel's widgets; shown as text ("Run All first") where no live kernel renders widgets."""

        def __repr__(self):
            return f"[training panel for {self.defaults['model_name']!r}: Run All (a live kernel) to show it]"

        def values(self):
            return {k: c.value for k, c in self.controls.items()}

    return ExperimentPanel


def _shown_path(folder):
    """The run folder relative to the notebook's folder when it is below it (never a machine's absolute path)."""
    folder = Path(folder)
    try:
        return folder.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return folder.name

# %% [markdown]
# ## Summary
#
# * A panel's controls hold exactly the notebook's values; the values shown are the values trained.
# * *Train* runs on a thread of its own; *Stop* ends the run at the next step and keeps a valid, marked folder; one
#   Train per panel at a time.
# * After a Train the panel compares with the notebook's reference runs: same seed, and the three-seed interval.
# * Before a Train it estimates the cost from the reference run's time and the FLOPs; *preview* trains a tenth of the
#   data for one epoch.
#
# ## Exercises
#
# 1. **The cost of width.** By how much does `estimate_seconds` scale the time of a 784–50–10 run when the hidden
#    layer has 100 units? Derive the ratio from chapter 14's FLOPs formula $2m(3\sum_\ell n_{\ell-1}n_\ell - n_0n_1)$
#    and check it.
# 2. **Seed noise.** Press *Train* twice with only the seed changed (here: call `compare_with_reference` on two
#    runs of the stored example with seeds 0 and 1). Why does the panel not set a seed-only change against the
#    interval?
#
# The worked solutions follow, in collapsed cells (click to open); the tests run them, so they stay true.

# %% [markdown]
# **Solutions 1 and 2** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Per sample, the first layer's products cost $2(2 n_0 n_1)$ (no $dX$) and the second's
# $2(3 n_1 n_2)$: $4\cdot784\cdot n_1 + 6\cdot n_1\cdot10 = 3196\,n_1$, linear in $n_1$ — so 100 units cost exactly twice
# 50 units, and the estimate doubles.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     narrow = check_settings({"architecture": mlp([50]), "train_abs_samples": 1000, "num_epochs": 1})
#     wide = dict(narrow, architecture=mlp([100]))
#     ratio = estimate_seconds(wide, {"seconds": 1.0, "settings": narrow})
#     print(f"estimate for 100 hidden units / 50 hidden units: {ratio:.4f}")
#     assert ratio == (4 * 784 * 100 + 6 * 100 * 10) / (4 * 784 * 50 + 6 * 50 * 10) == 2.0

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# The interval describes how the recipe's runs scatter over seeds; a run that differs only in its seed
# *is* one more draw of that scatter, so whatever it scores, the difference is seed noise by construction — comparing it
# with the interval would only test whether three seeds estimated the scatter well.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     seed1 = run_experiment(dict(stored["settings"], model_name="panel_example_seed1", seed=1), runs_dir=scratch,
#                            progress=False, verbose=False)
#     line = compare_with_reference(seed1, stored["settings"], [stored])
#     print(line)
#     assert "only the seed changed: the difference is seed noise" in line

# %% [markdown]
# ---
# [← 10 — experiments toolkit](10_experiments.ipynb) · [begin here](00_begin_here.ipynb) · [next: 11 — regularisation →](11_regularisation.ipynb)
