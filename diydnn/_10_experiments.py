# %% [markdown]
# [← 09 — training](09_training.ipynb) · [begin here](00_begin_here.ipynb) · **10 — experiments toolkit** · [next: 10a — panels →](10a_panels.ipynb)
#
# # 10 — Running experiments: settings, run folders, results, and controls
#
# The original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) configured its studies with a `RUN_SETTINGS` list: one dict per run with a
# `model_name`, an `architecture`, `num_epochs`, `train_abs_samples` and `clip_grads_norm`, and hard-coded
# everything else. This chapter makes that explicit and reproducible, and gives the experiment notebooks
# (`notebooks/experiments/`) one shared toolkit:
#
# * `check_settings` fills in and validates a run's settings — every knob the original hard-coded
#   (learning rate, batch size, optimiser, initialiser, seed) is now a named setting;
# * `run_experiment` trains one run on MNIST and writes its **run folder**: settings, history, best and
#   last checkpoints, and a result summary;
# * `load_runs` and `results_table` read the folders back, for the evaluation notebook;
# * `run_or_load` reads a run from its committed **run record** instead of training it again, and
#   `paired_comparison` compares two recipes on the same test images;
# * the sliders and the *Train* button of the experiment notebooks are [chapter 10a](10a_panels.ipynb).
#
# The idea of a run fits in a dozen lines (section 3): settings → model, batches, optimiser → `Loop` →
# test accuracy. Everything that makes runs safe to keep — validating every value before a byte is
# written, a lock per run name, building a run beside its place and renaming it in, and curves that
# can be drawn from any thread — is in the section **Engineering** at the end; the ideas are complete
# without it.


# %%
"""Chapter 10: the experiment toolkit: RUN_SETTINGS-style runs, run folders, results, interactive controls."""
import base64
import contextlib
import errno
import functools
import glob
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from diydnn._00_conventions import quick_mode, write_atomically
from diydnn._01_dense import as_count
from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
from diydnn._04_initialisers import INITIALISERS
from diydnn._05_batchnorm import BatchNorm, _is_real
from diydnn._06_optimisers import OPTIMISERS, get_optimiser
from diydnn._07_model import LAYER_TYPES, Sequential, _layer_from_config
from diydnn._08_mnist import BatchStream, _process_alive, load_mnist, train_val_split
from diydnn._09_training import (CHECKPOINT_BEST, CHECKPOINT_LAST, Callback, DivergenceGuard, EvalTask, History, Loop,
                                 TrainTask, load_checkpoint)
from diydnn._14_performance import set_threads
from diydnn._16_designing_cnns import Residual  # noqa: F401  (registers the layer resnet() uses)


# %% tags=["active-ipynb"]
# import tempfile
# import matplotlib.pyplot as plt
# QUICK = quick_mode()
# scratch = Path(tempfile.mkdtemp(prefix="diydnn_ch10_"))
#
#
# # The Engineering section at the end of this chapter defines the checks and the run-folder machinery that the
# # functions below call. So that the examples can run before we get there, we take them from the finished module
# # now (`import diydnn` ran that section already); the section defines them again, identically.
# from diydnn._10_experiments import (RunLock, _check_data, _check_model_fits, _check_values,
#                                     _claim_folder, _disk_full_names, _exists_error, _make_runs_dir, _read_run_file,
#                                     _plain, _swap_in, free_run_name)

# %% [markdown]
# ## 1. Settings
#
# A run is a plain dict. Anything left out takes the default below; an unknown key is an error (a typo
# such as `"num_epoch"` would otherwise be silently ignored). `train_abs_samples` (the name in the original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn))
# limits training to the first *n* images of the shuffled training split; `None` uses all of it. The last
# four keys (weight decay and which parameters it spares, a learning-rate schedule, data augmentation) and
# Dropout layers in the architecture come from [chapter 11](11_regularisation.ipynb); their defaults change
# nothing.
#
# `check_settings` fills in the defaults and checks every value (the checks are in the Engineering section),
# so that a run never fails an hour in.


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
    """The settings with defaults filled in; unknown keys or bad values are a ValueError naming them.

    NumPy scalars are accepted (np.float32(1e-3) is a learning rate) and stored as plain Python
    numbers, so that settings.json can hold them.
    """
    if not isinstance(settings, dict):
        raise ValueError(f"run settings must be a dict, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(SETTINGS_DEFAULTS), key=str)
    if unknown:
        raise ValueError(f"run settings: unknown key(s) {unknown}; known: {sorted(SETTINGS_DEFAULTS)}")
    s = _plain({**SETTINGS_DEFAULTS, **settings})   # a deep copy with NumPy scalars as Python numbers
    _check_values(s)          # every value of the right kind and range (Engineering section)
    return s

# %%
def mlp(hidden=(50,), batchnorm=False, n_classes=10, dropout=0.0):
    """Architecture dicts of a ReLU MLP: [Dense(h) (+ BatchNorm) + ReLU (+ Dropout)] per hidden width, then
    Dense(n_classes). dropout: the probability of dropping a hidden unit (chapter 11); 0 adds no Dropout layer."""
    layers = []
    for units in hidden:
        layers.append({"layer": "Dense", "units": as_count(units, "hidden width", "mlp")})   # 2.5 is not 2
        if batchnorm:
            layers.append({"layer": "BatchNorm"})
        layers.append({"layer": "ReLU"})
        if dropout:
            layers.append({"layer": "Dropout", "rate": float(dropout)})
    return layers + [{"layer": "Dense", "units": as_count(n_classes, "n_classes", "mlp")}]


def describe_mlp(architecture):
    """(hidden widths, uses BatchNorm) of an architecture made by mlp()."""
    dense = [entry["units"] for entry in architecture if entry["layer"] == "Dense"]
    return dense[:-1], any(entry["layer"] == "BatchNorm" for entry in architecture)


def dropout_rate(architecture):
    """The largest Dropout rate in an architecture (0.0 without Dropout): what the slider shows."""
    return max([float(e.get("rate", 0.5)) for e in architecture if e.get("layer") == "Dropout"], default=0.0)

# %%
POOLINGS = ("max", "avg", "stride")


def cnn(filters=(32, 64), kernel_size=3, pooling="max", dense=128, batchnorm=False, n_classes=10,
        image_shape=(28, 28, 1), dropout=0.0):
    """Architecture dicts of a small CNN (chapters 12-13) for rows of pixels: Reshape(image_shape), then per entry f of
    filters a block Conv2D(f, kernel_size, "same") (+ BatchNorm) + ReLU + 2x2 pooling ("max", "avg", or "stride": the
    Conv2D itself strides by 2), then Flatten, Dense(dense) + ReLU (none if dense is 0) (+ Dropout(dropout), chapter 11,
    if dropout > 0), Dense(n_classes)."""
    if pooling not in POOLINGS:
        raise ValueError(f"cnn: pooling must be one of {POOLINGS}, got {pooling!r}")
    layers = [{"layer": "Reshape", "shape": [as_count(d, "image_shape", "cnn") for d in image_shape]}]
    for f in filters:
        layers.append({"layer": "Conv2D", "filters": as_count(f, "filters", "cnn"),
                       "kernel_size": as_count(kernel_size, "kernel_size", "cnn"), "padding": "same",
                       **({"stride": 2} if pooling == "stride" else {})})
        if batchnorm:
            layers.append({"layer": "BatchNorm"})
        layers.append({"layer": "ReLU"})
        if pooling != "stride":
            layers.append({"layer": "MaxPool2D" if pooling == "max" else "AvgPool2D", "pool_size": 2})
    layers.append({"layer": "Flatten"})
    if dense:
        layers += [{"layer": "Dense", "units": as_count(dense, "dense (or 0)", "cnn")}, {"layer": "ReLU"}]
    if dropout:                                  # before the classifier, where the CNN's parameters are
        layers.append({"layer": "Dropout", "rate": float(dropout)})
    return layers + [{"layer": "Dense", "units": as_count(n_classes, "n_classes", "cnn")}]


def describe_cnn(architecture):
    """The knobs of an architecture made by cnn() (filters, kernel_size, pooling, dense, batchnorm), or None for no CNN."""
    convs = [entry for entry in architecture if entry["layer"] == "Conv2D"]
    if not convs or describe_resnet(architecture) is not None:       # no CNN, or a ResNet (its own knobs)
        return None
    pooling = ("max" if any(e["layer"] == "MaxPool2D" for e in architecture) else
               "avg" if any(e["layer"] == "AvgPool2D" for e in architecture) else "stride")
    dense = [entry["units"] for entry in architecture if entry["layer"] == "Dense"]
    return {"filters": [e["filters"] for e in convs], "kernel_size": int(np.ravel(convs[0].get("kernel_size", 3))[0]),
            "pooling": pooling, "dense": dense[0] if len(dense) > 1 else 0,
            "batchnorm": any(entry["layer"] == "BatchNorm" for entry in architecture)}

# %% [markdown]
# Chapter 16's small residual network, for experiment 11: a stem, stages of residual blocks, a head. Its knobs
# (width, blocks per stage, shortcuts on or off, head, where BatchNorm goes) are what that experiment's panel changes.

# %%
BN_PLACEMENTS = ("before", "after", "none")
HEADS = ("gap", "flatten")


def resnet(width=32, blocks=(1, 1), residual=True, head="gap", bn="before", n_classes=10, image_shape=(28, 28, 1)):
    """Architecture dicts of a small residual CNN (chapter 16) for rows of pixels.

    Reshape(image_shape) -> stem: Conv2D(width, 3x3, same) + ReLU + MaxPool2D(2) -> stages: stage i has blocks[i]
    blocks of width * 2**i filters, the first block of every stage after the first strides by 2 -> head -> Dense.
    A block is two 3x3 convolutions, y = ReLU(x + F(x)) (a 1x1 projection on the shortcut where F changes the shape),
    or F alone when residual=False (the same layers without the shortcut: a plain network of the same depth).
    bn: BatchNorm "before" the ReLU (conv -> BN -> ReLU, the convolution without a bias: BN absorbs it), "after" it
    (conv -> ReLU -> BN), or "none" (convolutions with biases). head: "gap" (GlobalAveragePool -> Dense) or
    "flatten" (Flatten -> Dense). The stem's Conv2D is named "stem" so that describe_resnet can tell a ResNet apart.
    """
    if bn not in BN_PLACEMENTS:
        raise ValueError(f"resnet: bn must be one of {BN_PLACEMENTS}, got {bn!r}")
    if head not in HEADS:
        raise ValueError(f"resnet: head must be one of {HEADS}, got {head!r}")
    width = as_count(width, "width", "resnet")
    if isinstance(blocks, (str, bytes)) or not np.iterable(blocks) or len(blocks) == 0:
        raise ValueError(f"resnet: blocks must be a non-empty list of block counts per stage, got {blocks!r}")
    blocks = [as_count(n, "blocks per stage", "resnet") for n in blocks]

    def conv_bn_relu(filters, stride=1, relu=True, name=None):
        conv = {"layer": "Conv2D", "filters": filters, "kernel_size": 3, "padding": "same", "use_bias": bn != "before",
                **({"stride": stride} if stride != 1 else {}), **({"name": name} if name else {})}
        norm = [{"layer": "BatchNorm"}] if bn != "none" else []
        act = [{"layer": "ReLU"}] if relu else []
        return [conv, *norm, *act] if bn != "after" else [conv, *act, *norm]

    layers = [{"layer": "Reshape", "shape": [as_count(d, "image_shape", "resnet") for d in image_shape]},
              *conv_bn_relu(width, name="stem"), {"layer": "MaxPool2D", "pool_size": 2}]
    for stage, n_blocks in enumerate(blocks):
        for b in range(n_blocks):
            filters, stride = width * 2 ** stage, 2 if stage > 0 and b == 0 else 1
            F = conv_bn_relu(filters, stride) + conv_bn_relu(filters, relu=False)
            if residual:
                layers += [{"layer": "Residual", "layers": F, "shortcut_bn": bn != "none"}, {"layer": "ReLU"}]
            else:
                layers += F + [{"layer": "ReLU"}]
    layers.append({"layer": "GlobalAveragePool"} if head == "gap" else {"layer": "Flatten"})
    return layers + [{"layer": "Dense", "units": as_count(n_classes, "n_classes", "resnet")}]

# %%
def describe_resnet(architecture):
    """The knobs of an architecture made by resnet() (width, blocks, residual, head, bn), or None for another one."""
    if not any(e.get("layer") == "Conv2D" and e.get("name") == "stem" for e in architecture):
        return None
    convs, stages = [], []
    for e in architecture:
        inner = e["layers"] if e["layer"] == "Residual" else [e]
        convs += [(c, e["layer"] == "Residual") for c in inner if c["layer"] == "Conv2D" and c.get("name") != "stem"]
    for c, _ in convs[::2]:                          # two convolutions per block; a stride of 2 opens a stage
        if not stages or c.get("stride", 1) != 1:
            stages.append(0)
        stages[-1] += 1
    names = [e["layer"] for e in architecture]
    stem = next(i for i, e in enumerate(architecture) if e.get("name") == "stem")
    after_stem = names[stem + 1]
    bn = "before" if after_stem == "BatchNorm" else "after" if names[stem + 2] == "BatchNorm" else "none"
    return {"width": architecture[stem]["filters"], "blocks": stages, "residual": any(r for _, r in convs),
            "head": "gap" if "GlobalAveragePool" in names else "flatten", "bn": bn}

# %%
def build_model(settings, n_in=784, rng=None):
    """A Sequential from the settings' architecture; Dense and Conv2D layers without an "init" get settings["init"]."""
    s = check_settings(settings)
    def with_init(entry):                 # a Residual block's own layers get it too (chapter 16)
        if entry.get("layer") in ("Dense", "Conv2D"):
            return dict(entry, init=entry.get("init", s["init"]))
        if entry.get("layer") == "Residual":
            return dict(entry, layers=[with_init(e) for e in entry["layers"]])
        return dict(entry)

    architecture = [with_init(entry) for entry in s["architecture"]]
    return Sequential.from_config(architecture, n_in=n_in, rng=rng)

# %% tags=["active-ipynb"]
# print(check_settings({"model_name": "dense50", "num_epochs": 5}))
# print(mlp([100], batchnorm=True), describe_mlp(mlp([100], batchnorm=True)))
# build_model({"architecture": mlp([50], batchnorm=True)}, rng=np.random.default_rng(0)).summary()
# print(check_settings({"lr": np.float32(1e-3), "batch_size": np.int64(64)})["lr"])
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
# ## 3. One run in a dozen lines
#
# Before the run folders: what a run *is*. The settings choose a model, the batches, an optimiser; chapter 09's
# `Loop` trains; the test set measures. Without folders, checkpoints and checks, that is all:

# %% tags=["active-ipynb"]
# def tiny_run(settings, data):
#     """The idea of run_experiment: settings -> model, batches, optimiser -> Loop -> final test accuracy."""
#     s = check_settings(settings)
#     rng = np.random.default_rng(s["seed"])                   # one generator: weights, then batches
#     (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
#     X_train, y_train = X_train[:s["train_abs_samples"]], y_train[:s["train_abs_samples"]]
#     model = build_model(s, n_in=X_train.shape[1], rng=rng)
#     stream = BatchStream(X_train, y_train, batch_size=s["batch_size"], rng=rng, drop_last=False)
#     optimizer = get_optimiser({"name": s["optimizer"], "lr": s["lr"]})
#     task = TrainTask(stream, SoftmaxCrossEntropy(), optimizer, clip_norm=s["clip_grads_norm"])
#     Loop(model, task, progress=False).run(s["num_epochs"] * stream.batches_per_epoch)
#     return EvalTask((X_test, y_test)).evaluate(model)["accuracy"]
#
#
# demo_settings = {"model_name": "demo", "architecture": mlp([50]), "train_abs_samples": 1000 if QUICK else 5000,
#                  "num_epochs": 2 if QUICK else 3, "batch_size": 64, "lr": 3e-3, "evals_per_epoch": 2}
# tiny_accuracy = tiny_run(demo_settings, mnist_splits())
# print(f"Dense(50), {demo_settings['train_abs_samples']} images, {demo_settings['num_epochs']} epochs: "
#       f"test accuracy {tiny_accuracy:.4f}")
# assert tiny_accuracy > 0.7

# %% [markdown]
# ## 4. One run, one folder
#
# `run_experiment(settings)` is `tiny_run` with a record. It trains on the first `train_abs_samples` images of the training split, evaluates
# on the validation set `evals_per_epoch` times per epoch, keeps the best checkpoint by validation
# accuracy, and at the end evaluates on the test set **the checkpoint chosen by validation accuracy**
# (honest model selection: the test set chooses nothing), and also the final weights — once, when validation chose
# the last step and the two are the same weights (a CNN's test pass costs seconds). The folder
# `runs/<model_name>/` then holds `settings.json`, `history.json`, `checkpoint_last.npz`,
# `checkpoint_best.npz` and `result.json`. A run that diverges is stopped by the divergence guard (unless
# `stop_on_divergence` is off) and says so in its result.
#
# A run folder is a result: it is **never lost or mixed**. `run_experiment` checks everything (settings,
# data, the model against the data) before it writes a byte; it refuses a name that already holds a run
# (`RunExistsError`; `free_run_name` proposes the next free one, and `overwrite=True` replaces the old run
# only once the new one is complete); and a second run of a name that is still training is refused
# (`RunLockedError`). How, is the Engineering section at the end of the chapter.
#
# Training keeps every sample (`drop_last=False`), and the batch stream never serves a batch of one sample
# (chapter 08 folds it into the batch before): BatchNorm cannot train on one sample, so 129 images at batch
# 128 would otherwise crash at the end of the first epoch.


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


def _accuracy_and_correct(model, task):
    """(accuracy, correct) of the model's own weights on task's data, in one forward pass per batch; correct holds one
    bool per sample (was it classified right?). The accuracy is summed as EvalTask.evaluate sums it (each batch's
    accuracy times its size, over the total), so it equals task.evaluate(model)["accuracy"] to the bit."""
    total, n, correct = 0.0, 0, []
    for X, y in task.batches():
        out = model.forward(X, training=False)
        total += accuracy(out, y) * len(X)
        n += len(X)
        correct.append(out.argmax(axis=1) == y)
    return total / n, np.concatenate(correct)


def _checkpoint_accuracy(model, path, task, final=None):
    """(accuracy, correct) of the weights stored in a checkpoint, evaluated in `model`, whose own weights are put
    back after. final: the (accuracy, correct) of the model's own weights, returned as it is when the checkpoint holds
    exactly those weights (validation chose the last step, as it mostly does: one pass over the test set, not two)."""
    own = model.state_dict()
    stored = _model_arrays(load_checkpoint(path)[0])
    if final is not None and stored.keys() == own.keys() and all(np.array_equal(stored[k], own[k]) for k in own):
        return final
    model.load_state_dict(stored)
    try:
        return _accuracy_and_correct(model, task)
    finally:
        model.load_state_dict(own)


def pack_bits(correct):
    """A bool array as a short text: np.packbits, then base64 (10,000 test images: 1,668 characters)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_bits(text, n):
    """The n bools that pack_bits(correct) packed."""
    return np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=n).astype(bool)

# %%
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

# %% [markdown]
# `_prepare_run` is the first half of `tiny_run`, with every part checked before anything is written; `_result`
# is what a run reports. `run_experiment` puts them together around the disk.

# %%
def _prepare_run(s, data, make_model, loss, rng):
    """(model, task, n_steps, val task, test task, training samples): everything a run needs, checked before
    anything is written. data=None: MNIST (mnist_splits)."""
    data = _check_data(data if data is not None else mnist_splits(s["n_val"]))
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
    if s["train_abs_samples"] is not None:
        if s["train_abs_samples"] > len(X_train):
            raise ValueError(f"run settings {s['model_name']!r}: train_abs_samples {s['train_abs_samples']} > the "
                             f"{len(X_train)} training samples")
        X_train, y_train = X_train[:s["train_abs_samples"]], y_train[:s["train_abs_samples"]]
    model = make_model(s, rng) if make_model is not None else build_model(s, n_in=X_train.shape[1], rng=rng)
    has_batchnorm = any(isinstance(layer, BatchNorm) for layer in getattr(model, "layers", ()))
    _check_model_fits(model, ((X_train, y_train), (X_val, y_val), (X_test, y_test)), has_batchnorm)
    loss = loss if loss is not None else SoftmaxCrossEntropy()
    # drop_last=False keeps every sample; BatchStream folds a 1-sample remainder into the batch before it,
    # so BatchNorm (which cannot train on one sample) never gets one (chapter 08, section 6)
    stream = BatchStream(X_train, y_train, batch_size=min(s["batch_size"], len(X_train)), rng=rng, drop_last=False)
    eval_every = max(1, stream.batches_per_epoch // s["evals_per_epoch"])
    n_steps = s["num_epochs"] * stream.batches_per_epoch
    optimizer = get_optimiser({"name": s["optimizer"], "lr": s["lr"]})
    stream = _regularise(s, optimizer, stream, n_steps, rng)
    task = TrainTask(stream, loss, optimizer, n_steps_per_checkpoint=eval_every, clip_norm=s["clip_grads_norm"])
    # evaluation batches: 1,000 rows for an MLP; 250 images for a CNN, whose patch matrices grow with the batch (the
    # second convolution's alone is 226 MB for 1,000 images; the peak memory of a run is set here, not in training)
    images = any(getattr(layer, "input_ndim", None) == (4,) for layer in getattr(model, "layers", ()))   # Conv2D, pooling
    eval_batch = 250 if images else 1000
    eval_task = EvalTask((X_val, y_val), name="val", loss=loss, batch_size=eval_batch)
    test = EvalTask((X_test, y_test), name="test", loss=loss, batch_size=eval_batch)
    return model, task, n_steps, eval_task, test, len(X_train)

# %%
def _result(s, loop, model, history, n_train, wall, test, tmp, folder):
    """What a finished run reports (result.json): steps, accuracies (the validation-chosen checkpoint and the
    final weights on the test set), timings, and whether it diverged."""
    stream = loop.task.labeled_data
    final_finite = all(np.isfinite(p).all() for p in model.params.values())
    final = _accuracy_and_correct(model, test) if final_finite else None
    test_final = final[0] if final_finite else float("nan")
    has_best = (tmp / CHECKPOINT_BEST).exists()
    test_best, correct = (_checkpoint_accuracy(model, tmp / CHECKPOINT_BEST, test, final) if has_best
                          else (float("nan"), []))
    val_steps, val_acc = history.steps_values("val", "accuracy") if "val" in history.modes() else ([], [])
    return {
        "model_name": s["model_name"], "steps": loop.step, "epochs": loop.step / stream.batches_per_epoch,
        "train_samples": n_train, "params": int(sum(p.size for p in model.params.values())),
        "seconds": wall, "train_seconds": loop.train_seconds,
        "samples_per_second": loop.step * stream.batch_size / max(loop.train_seconds, 1e-9),
        "final_train_loss": history.last("train", "loss"),
        "final_train_accuracy": history.last("train", "accuracy") if "accuracy" in history.metrics("train")
        else float("nan"),
        "best_val_accuracy": float(np.max(val_acc)) if len(val_acc) else float("nan"),
        "best_step": int(val_steps[int(np.argmax(val_acc))]) if len(val_acc) else None,
        "final_val_accuracy": float(val_acc[-1]) if len(val_acc) else float("nan"),
        "test_accuracy": test_best, "test_accuracy_final": test_final,
        "diverged": loop.diverged,
        "stop_reason": loop.stop_reason.replace(str(tmp), str(folder)) if loop.stop_reason else None,
        # which test images the validation-chosen checkpoint gets right: two recipes can then be compared on the
        # same images (paired_comparison), without their weights
        "test_correct": {"n": len(correct), "bits": pack_bits(correct)},
    }

# %%
def run_experiment(settings, runs_dir=None, data=None, callbacks=(), progress=True, verbose=True,
                   make_model=None, loss=None, overwrite=False):
    """Train one run from its settings, write its run folder, and return its result dict.

    Everything is checked before a file is written: the settings, the data (shapes, dtypes, NaN), the
    model against the data, the optimiser and the clip value. An existing run of the same name is never
    replaced unless overwrite=True; then the new run is written beside it and swapped in only when it is
    complete. Two runs of one name at once: the second is refused (RunLockedError).

    The result holds the settings, the history (a History), the test accuracies and timings.
    make_model(settings, rng) builds the model instead of the settings' architecture (for a layer that
    LAYER_TYPES does not know); loss replaces the default SoftmaxCrossEntropy.
    """
    s = check_settings(settings)
    if not isinstance(overwrite, (bool, np.bool_)):
        raise ValueError(f"run_experiment: overwrite must be True or False, got {overwrite!r}")
    runs_dir = Path(runs_dir if runs_dir is not None else default_runs_dir())
    folder = runs_dir / s["model_name"]
    if folder.exists() and not overwrite:         # the cheap refusal first, before loading data
        raise _exists_error(folder)
    rng = np.random.default_rng(s["seed"])
    model, task, n_steps, eval_task, test, n_train = _prepare_run(s, data, make_model, loss, rng)
    guard = [DivergenceGuard()] if s["stop_on_divergence"] else []

    # -- from here on the disk: one lock per run name, the run built in a temporary folder beside its place
    _make_runs_dir(runs_dir)
    with _disk_full_names(runs_dir, s["model_name"]), RunLock(runs_dir, s["model_name"]):
        tmp = _claim_folder(runs_dir, folder, s["model_name"], overwrite)
        try:
            tmp.mkdir()
            _write_json(tmp / "settings.json", s)
            loop = Loop(model, task, eval_tasks=[eval_task], output_dir=tmp, callbacks=guard + list(callbacks),
                        progress=progress, verbose=verbose)
            wall = time.perf_counter()
            history = loop.run(n_steps)
            wall = time.perf_counter() - wall
            result = _result(s, loop, model, history, n_train, wall, test, tmp, folder)
            _write_json(tmp / "result.json", result)
            _swap_in(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)    # an incomplete run never takes the name; the old run stays
            raise
    return {**result, "settings": s, "history": history, "folder": str(folder), "model": model}

# %% [markdown]
# A small run to see it work: the settings of `tiny_run` above. Its final weights are exactly those of `tiny_run`
# (the same generator draws the same weights and batches; evaluations and checkpoints change nothing), and the
# test accuracy it reports is that of the checkpoint with the best validation accuracy.

# %% tags=["active-ipynb"]
# demo = run_experiment(demo_settings, runs_dir=scratch, progress=False)
# print({k: demo[k] for k in ("steps", "best_val_accuracy", "test_accuracy", "test_accuracy_final", "seconds")})
# print(sorted(p.name for p in Path(demo["folder"]).iterdir()))
# assert demo["test_accuracy"] > 0.7 and (Path(demo["folder"]) / "result.json").exists()
# assert demo["test_accuracy_final"] == tiny_accuracy          # the dozen lines and the full run agree

# %% [markdown]
# ## 5. Reading runs back
#
# `load_runs(runs_dir)` returns one dict per run folder (settings, result, history), `results_table`
# turns them into rows, and `to_markdown` / `to_csv` write those rows as the summary log that the evaluate
# script of the original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) printed.

# %%
RESULT_COLUMNS = ("model_name", "params", "train_samples", "epochs", "best_val_accuracy", "final_val_accuracy",
                  "test_accuracy", "final_train_loss", "seconds", "diverged")


def load_runs(runs_dir=None):
    """One dict per complete run folder under runs_dir (settings + result + history), sorted by name."""
    runs_dir = Path(runs_dir if runs_dir is not None else default_runs_dir())
    runs = []
    # hidden folders (.NAME.new-PID) are runs still being written, or left by a killed one: not results
    for folder in sorted(p for p in runs_dir.glob("*") if not p.name.startswith(".") and (p / "result.json").exists()):
        run = _read_run_file(folder / "result.json", "load_runs")     # a damaged file: a ValueError naming it
        run["settings"] = _read_run_file(folder / "settings.json", "load_runs")
        run["history"] = _read_run_file(folder / "history.json", "load_runs")
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
# ### Three seeds: stored runs, the median and a 95 % interval
#
# One run is one draw: another seed (other initial weights, another batch order) moves MNIST test accuracies
# by a few tenths of a point. The experiments therefore train each recipe with three seeds and report the
# **median** and a **95 % interval** for the mean: for $n$ runs with mean $\bar a$ and sample standard deviation
# $s$, $\bar a \pm t_{0.975,\,n-1}\, s/\sqrt n$ (Student's t; $t_{0.975,\,2} = 4.303$ for three runs, so the
# interval is wide). Two recipes whose intervals overlap are not shown to differ.
#
# `run_or_load(settings)` trains a run, or reads what an earlier run of exactly these settings recorded. It is public
# (`diydnn.run_or_load`); a damaged file in a stored run folder (a truncated `result.json`, say) is an error naming
# that file and what to do (Engineering section).
#
# **Run records.** A run folder holds weights (megabytes) and is not in git; what a notebook *shows* of a run —
# its settings, its history, its result and what it cost — fits in a few kilobytes. So when `run_or_load` trains a
# run in full mode it also writes a **run record**, `records/<model_name>.json` beside the notebook, which is
# committed. On a fresh clone, Run All then reads the records and trains nothing that is recorded. A record holds:
#
# * the checked settings, and the record's format version (`RECORD_VERSION`);
# * the history: every validation evaluation, and the training metrics of the first `RECORD_FIRST_STEPS` steps
#   in full, then of about `RECORD_POINTS` evenly spaced steps (enough to draw the curves);
# * the result (accuracies, steps, timings) and what the run cost (CPU seconds, peak memory);
# * for a run evaluated on the test set, **which** test images its validation-chosen checkpoint classifies right,
#   one bit per image packed into text (`pack_bits`): two recipes can then be compared on the same images
#   (section "Paired comparison" below) without their weights.
#
# A record is only honest while the code that wrote it would write it again. Training is deterministic, so the test
# suite (`tests/test_records.py`) retrains the first steps of every committed record's settings and requires
# them to equal the recorded history bit for bit; a record whose settings the library refuses, or whose version
# is not `RECORD_VERSION`, fails with the command that regenerates it. To retrain every record, run the notebooks
# with the environment variable `DIYDNN_RETRAIN=1` (README, "Run records").
#
# Order of look-up: a record with exactly these settings (unless `DIYDNN_RETRAIN=1`), else a complete run folder
# with exactly these settings (outside quick mode), else a new training. A run read from a record has no weights
# (`"model": None`) unless its folder is also there; `model_of(run)` gives the weights, retraining when it must.
# Quick mode (the tests) neither reads nor writes records: its shrunk runs are trained every time, so that they test
# the code, and they are not the notebook's results. `run_or_load(..., runs_dir=d)` keeps its records in `d/_records`.

# %%
# Student's t, 97.5 % quantile, by degrees of freedom (n - 1): enough for 2 to 6 runs without SciPy
T_975 = {1: 12.706204736174698, 2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987,
         5: 2.5705818366147395}


def interval95(values):
    """(low, high): the 95 % Student-t interval for the mean of 2 to 6 values (e.g. one accuracy per seed)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not 2 <= len(values) <= len(T_975) + 1 or not np.isfinite(values).all():
        raise ValueError(f"interval95: needs 2 to {len(T_975) + 1} finite values, got {values!r}")
    half = T_975[len(values) - 1] * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)

# %% [markdown]
# ### Paired comparison: the same test images
#
# Two recipes' intervals can overlap while one recipe is still better on nearly every image where they disagree.
# Comparing a median with another recipe's interval throws away that both were tested on the **same** 10,000 images.
# A paired comparison keeps it. For one seed of each recipe, let $n_{10}$ count the test images recipe A gets right
# and B wrong, and $n_{01}$ the reverse. If the two checkpoints were equally good, each disagreement would go either
# way with probability ½, so $n_{10} \sim \mathrm{Binomial}(n_{10}+n_{01}, ½)$: **McNemar's exact test** gives the
# two-sided p-value $p = \min\bigl(1,\; 2\,P[X \le \min(n_{10}, n_{01})]\bigr)$. That is the test set's noise. The
# seed's noise is the spread of the per-seed differences $a_A(s) - a_B(s)$: their 95 % interval (Student's t, as above).
#
# `paired_comparison(runs_a, runs_b)` does both, from the per-image correctness that every run records, and calls the
# difference **shown** only when both agree: the interval of the per-seed differences excludes 0 *and* McNemar's
# test on the disagreements of all seeds together gives $p < 0.05$, in the same direction.

# %%
def mcnemar_exact(n10, n01):
    """Two-sided exact McNemar p-value for n10 discordant pairs one way and n01 the other (a binomial test at 1/2)."""
    n10, n01 = int(n10), int(n01)
    if n10 < 0 or n01 < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got {n10}, {n01}")
    n, k = n10 + n01, min(n10, n01)
    tail = sum(math.comb(n, i) for i in range(k + 1))       # exact integers: no overflow for 10,000 images
    return min(1.0, 2 * tail / 2 ** n)


def correct_of(run):
    """The per-test-image correctness (bool array) that a run recorded."""
    bits = run.get("test_correct")
    if not bits or not bits.get("n"):
        raise ValueError(f"run {run.get('model_name')!r} has no per-image test correctness (trained before records "
                         f"kept it?); regenerate it with DIYDNN_RETRAIN=1")
    return unpack_bits(bits["bits"], bits["n"])


def paired_comparison(runs_a, runs_b, alpha=0.05):
    """Recipe A against recipe B on the same test images, seed by seed (runs_a[i] pairs with runs_b[i]).

    Returns {"seeds": [{"diff", "n10", "n01", "p"} per pair], "diff_median", "interval" (of the per-seed
    differences), "n10", "n01", "p" (McNemar on all pairs' disagreements), "verdict": "A better", "B better" or
    "not shown"}."""
    if len(runs_a) != len(runs_b) or len(runs_a) < 2:
        raise ValueError(f"paired_comparison: needs two equally long lists of at least 2 runs, got {len(runs_a)} and "
                         f"{len(runs_b)}")
    seeds = []
    for a, b in zip(runs_a, runs_b):
        ca, cb = correct_of(a), correct_of(b)
        if ca.shape != cb.shape:
            raise ValueError(f"paired_comparison: {a['model_name']!r} and {b['model_name']!r} were tested on "
                             f"{len(ca)} and {len(cb)} images: not the same test set")
        n10, n01 = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
        seeds.append({"diff": (n10 - n01) / len(ca), "n10": n10, "n01": n01, "p": mcnemar_exact(n10, n01)})
    diffs = [s["diff"] for s in seeds]
    lo, hi = interval95(diffs)
    n10, n01 = sum(s["n10"] for s in seeds), sum(s["n01"] for s in seeds)
    p = mcnemar_exact(n10, n01)
    verdict = "not shown"
    if p < alpha and lo > 0 and n10 > n01:
        verdict = "A better"
    elif p < alpha and hi < 0 and n01 > n10:
        verdict = "B better"
    return {"seeds": seeds, "diff_median": float(np.median(diffs)), "interval": (lo, hi), "n10": n10, "n01": n01,
            "p": p, "verdict": verdict}


# %%
RECORD_VERSION = 1          # raise it when a record's format or the numbers a training produces change
RECORD_FIRST_STEPS = 20     # training metrics of the first steps kept in full: the test retrains them
# A matrix product split over several BLAS threads adds its partial sums in another order, so its float32 results
# differ in the last bits (and training amplifies them). Recorded runs, their replays and model_of therefore train
# with this many BLAS threads, whatever the machine has: that is what makes "bit for bit" hold on any machine.
RECORD_BLAS_THREADS = 1
RECORD_POINTS = 100         # then about this many evenly spaced steps


def default_records_dir():
    """records/ beside the current notebook: the committed run records."""
    return Path.cwd() / "records"


def retrain_requested():
    """True when DIYDNN_RETRAIN=1: run_or_load then trains every run again and rewrites its record."""
    return os.environ.get("DIYDNN_RETRAIN", "") not in ("", "0")


def _thinned(history, n_steps):
    """The history as a dict, with the training metrics of the first steps in full and then about RECORD_POINTS."""
    every = max(1, n_steps // RECORD_POINTS)
    d = history.to_dict()
    if "train" in d:
        d["train"] = {m: [p for p in pairs if p[0] <= RECORD_FIRST_STEPS or p[0] % every == 0 or p[0] == n_steps]
                      for m, pairs in d["train"].items()}
    return d


def make_record(run):
    """The run record of a run_experiment / run_or_load result: JSON-ready, a few kilobytes, no weights."""
    result = {k: v for k, v in run.items() if k not in ("settings", "history", "folder", "model", "loaded", "extras")}
    record = {"record_version": RECORD_VERSION, "settings": json.loads(json.dumps(run["settings"])),
              "history": _thinned(run["history"], run["steps"]), "result": result}
    if run.get("extras") is not None:
        record["extras"] = run["extras"]
    return record


# %%
def regenerate_hint(path):
    """How to write the record at path again: the command, for the message of every record error."""
    path = Path(path)
    return (f"regenerate it: in {path.parent.parent} run the experiment notebook that trains {path.stem!r} with "
            f"DIYDNN_RETRAIN=1 (DIYDNN_RETRAIN=1 jupyter nbconvert --to notebook --execute --inplace NN_name.ipynb), "
            f"or delete {path.name} and run that notebook")


def read_record(path):
    """The run record at path, checked: its version, its keys, and settings that the library accepts."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        version, settings = record["record_version"], record["settings"]
        record["history"], record["result"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"run record {path} is damaged ({type(e).__name__}: {e}); {regenerate_hint(path)}") from None
    if version != RECORD_VERSION:
        raise ValueError(f"run record {path} has version {version!r}, this library writes version {RECORD_VERSION}: "
                         f"its numbers may not be what the code gives now; {regenerate_hint(path)}")
    try:
        checked = check_settings(settings)
    except ValueError as e:
        raise ValueError(f"run record {path}: the library refuses its settings ({e}); {regenerate_hint(path)}") from None
    if json.loads(json.dumps(checked)) != settings:
        raise ValueError(f"run record {path}: its settings are not what check_settings makes of them today (a new "
                         f"setting or default); {regenerate_hint(path)}")
    return record


# %%
def _from_record(record, folder, path):
    run = {**record["result"], "settings": record["settings"], "history": History.from_dict(record["history"]),
           "folder": str(folder), "model": None, "loaded": True, "record": str(path), "extras": record.get("extras")}
    if _folder_matches(folder, record["settings"]):
        try:
            run["model"] = load_model(folder, CHECKPOINT_LAST)       # the weights too, where the folder is here
        except (KeyError, ValueError):                             # a layer only its notebook knows: model_of
            pass
    return run


# %%
def run_or_load(settings, runs_dir=None, make_model=None, records_dir=None, extras=None, **kwargs):
    """run_experiment(settings, ...), or what a run of exactly these settings recorded (its record or its folder).

    A loaded run has the same keys as a trained one plus "loaded": True; its "model" holds the final weights
    (the last checkpoint) when the run folder is here, else None (model_of gives them). A trained run also records
    what it cost: the CPU seconds of this process during the run and the peak memory (resident set size) of the
    process so far; in full mode it writes its run record to records_dir (default: records/ beside the notebook, or
    runs_dir/_records when runs_dir is given). Quick mode neither reads nor writes records.
    extras(run) -> dict of JSON values: what a notebook needs of a run's weights or full history (a dead-unit
    fraction, the test predictions), computed once while they are at hand and kept in the record (run["extras"]).
    """
    s = check_settings(settings)
    canonical = json.loads(json.dumps(s))
    folder = Path(runs_dir if runs_dir is not None else default_runs_dir()) / s["model_name"]
    record_path = (Path(records_dir) if records_dir is not None else default_records_dir() if runs_dir is None
                   else Path(runs_dir) / "_records") / f"{s['model_name']}.json"    # with runs_dir (a test): inside it
    if record_path.exists() and not retrain_requested() and not quick_mode():
        record = read_record(record_path)
        if record["settings"] == canonical:
            run = _from_record(record, folder, record_path)
            if extras is not None and "extras" not in record and not quick_mode():   # a record from before: add them
                thinned = run["history"]
                model_of(run, make_model=make_model, **{k: v for k, v in kwargs.items() if k in ("data", "loss")})
                record["extras"] = run["extras"] = extras(run)
                write_atomically(record_path, lambda f: f.write(json.dumps(record, separators=(",", ":")).encode()))
                run["history"] = thinned                 # the rest of the notebook sees what a fresh clone sees
                run.pop("history_full", None)
            return run
    stored, timing_file = folder / "settings.json", folder / "timing.json"
    if (not quick_mode() and not retrain_requested() and (folder / "result.json").exists() and stored.exists()
            and (folder / CHECKPOINT_LAST).exists() and _read_run_file(stored, "run_or_load") == canonical):
        result = _read_run_file(folder / "result.json", "run_or_load")
        arrays, meta = load_checkpoint(folder / CHECKPOINT_LAST)
        if make_model is not None:
            model = make_model(s, np.random.default_rng(s["seed"]))
        else:
            model = Sequential.from_config(meta["config"]["model"], n_in=meta["n_in"])
        model.load_state_dict(_model_arrays(arrays))
        timing = _read_run_file(timing_file, "run_or_load") if timing_file.exists() else {}
        history = _read_run_file(folder / "history.json", "run_or_load")
        return {**result, **timing, "settings": s, "history": history, "folder": str(folder), "model": model,
                "loaded": True}
    cpu = time.process_time()
    with set_threads(RECORD_BLAS_THREADS):
        result = run_experiment(s, runs_dir=runs_dir, make_model=make_model, overwrite=True,
                                **{"progress": False, "verbose": False, **kwargs})
    timing = {"cpu_seconds": time.process_time() - cpu, "peak_rss_mb": _peak_rss_mb()}
    write_atomically(timing_file, lambda f: f.write(json.dumps(timing).encode()))
    run = {**result, **timing, "loaded": False}
    if extras is not None:
        run["extras"] = extras(run)
    if not quick_mode():
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record = make_record(run)
        write_atomically(record_path, lambda f: f.write(json.dumps(record, separators=(",", ":")).encode()))
    return run


# %%
def _folder_matches(folder, settings):
    stored = Path(folder) / "settings.json"
    return ((Path(folder) / CHECKPOINT_LAST).exists() and (Path(folder) / "history.json").exists() and stored.exists()
            and _read_run_file(stored, "run_or_load") == json.loads(json.dumps(settings)))


# %%
def recorded_run(name, records_dir=None):
    """The run that records/<name>.json describes, as run_or_load returns it (no weights): to compare with the runs
    of another notebook without knowing or rebuilding its settings."""
    path = Path(records_dir if records_dir is not None else default_records_dir()) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no run record {path}: run the experiment notebook that trains {name!r} first (in full "
                                f"mode; its records are committed)")
    record = read_record(path)
    return _from_record(record, Path(default_runs_dir()) / name, path)


def model_of(run, make_model=None, **kwargs):
    """The final weights of a run from run_or_load: its model, from its folder when it is here, or else the same run
    trained again into its folder — deterministic, so the weights the record describes. The run's history becomes
    the folder's full one (a record keeps a thinned history)."""
    if run.get("model") is not None and run.get("history_full", not run.get("record")):
        return run["model"]
    s = run["settings"]
    if not _folder_matches(run["folder"], s):
        with set_threads(RECORD_BLAS_THREADS):
            run_experiment(s, runs_dir=Path(run["folder"]).parent, make_model=make_model, overwrite=True,
                           **{"progress": False, "verbose": False, **kwargs})
    arrays, meta = load_checkpoint(Path(run["folder"]) / CHECKPOINT_LAST)
    model = (make_model(s, np.random.default_rng(s["seed"])) if make_model is not None
             else Sequential.from_config(meta["config"]["model"], n_in=meta["n_in"]))
    model.load_state_dict(_model_arrays(arrays))
    run["model"], run["history"], run["history_full"] = model, History.load(Path(run["folder"]) / "history.json"), True
    return model


# %% [markdown]
# **A record checks itself.** `check_record(path)` trains the first steps of the record's settings again — the same
# model, batches and optimiser as `run_experiment` builds, without evaluations or files, which change no number —
# and requires the training metrics of those steps to equal the recorded ones bit for bit (the time a step took
# aside). Any difference is a record that describes other code: regenerate it.

# %%
def replay_first_steps(settings, n_steps, data=None, make_model=None, loss=None):
    """The History of the first n_steps of run_experiment(settings): same model, batches and optimiser, no
    evaluations, no files."""
    s = check_settings(settings)
    rng = np.random.default_rng(s["seed"])
    model, task, _, _, _, _ = _prepare_run(s, data, make_model, loss, rng)
    loop = Loop(model, task, eval_tasks=[], progress=False, verbose=False)
    return loop.run(n_steps)


def check_record(path, n_steps=5, data=None, make_model=None, loss=None):
    """Raise ValueError (with the command that regenerates it) unless the record at path is readable, of this
    version, with settings the library accepts, and its first n_steps train exactly as recorded."""
    record = read_record(path)
    recorded = History.from_dict(record["history"])
    n_steps = min(n_steps, RECORD_FIRST_STEPS, record["result"]["steps"])
    with set_threads(RECORD_BLAS_THREADS):
        replayed = replay_first_steps(record["settings"], n_steps, data=data, make_model=make_model, loss=loss)
    for metric in replayed.metrics("train"):
        if metric == "seconds":                     # the time a step took: the one number that is not reproducible
            continue
        want = [p for p in recorded.get("train", metric) if p[0] <= n_steps]
        got = replayed.get("train", metric)
        if want != got:
            step = next((a[0] for a, b in zip(want, got) if a != b), min(len(want), len(got)))
            raise ValueError(f"run record {path}: training these settings again gives other numbers (train {metric} "
                             f"at step {step}: recorded {dict(want).get(step)}, now {dict(got).get(step)}); the code "
                             f"changed since the record was written; {regenerate_hint(path)}")
    return record


def _peak_rss_mb():
    """The largest resident set size this process has had, in MB (NaN where the resource module is missing)."""
    try:
        import resource
    except ImportError:                     # Windows
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux reports KiB


# %% tags=["active-ipynb"]
# again = run_or_load(json.loads((scratch / "demo" / "settings.json").read_text()), runs_dir=scratch)
# assert again["test_accuracy"] == demo["test_accuracy"] and again["loaded"] != QUICK
# lo, hi = interval95([0.975, 0.98, 0.985])           # three seeds' accuracies: sample standard deviation 0.005
# print(f"three runs 97.5 %, 98 %, 98.5 %: mean 98 %, 95 % interval {lo:.2%} - {hi:.2%}")
# assert np.isclose(hi - 0.98, 4.302652729911275 * 0.005 / np.sqrt(3)) and np.isclose(lo + hi, 2 * 0.98)

# %% [markdown]
# ## 6. Panels
#
# The sliders and the *Train* button of the experiment notebooks — `experiment_controls(defaults)`, with live
# curves, Stop, the reference runs and the cost of a Train — are a unit of their own: [chapter 10a](10a_panels.ipynb).

# %% [markdown]
# ## Engineering: checked settings and data, run folders that are never lost or mixed, curves from any thread
#
# The ideas of this chapter are complete without this section: it makes runs safe to keep and the panel safe to
# press. Every function the sections above borrowed from the finished module is defined here.
#
# ### Every setting checked
#
# Every value is checked where it enters, so that a run never fails an hour in: optimiser and initialiser
# names must be known, numbers must be finite and of the right kind (`True` is an `int` in Python, but it
# is not a batch size), flags must be `True`/`False`. NumPy scalars are welcome (`np.float32(1e-3)` is a
# learning rate) and stored as plain Python numbers, so that `settings.json` can hold them.

# %%
def _plain(value):
    """A copy of nested dicts and lists with every NumPy scalar as the Python number it holds (np.int64(64) -> 64),
    so that every key takes what its Python equivalent takes, and settings.json can hold it."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def _check_values(s):
    """Check (and normalise, in place) every value of filled-in settings s; a ValueError naming the key."""
    name = s["model_name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError(f"run settings: model_name must be a folder-safe name (letters, digits, - _ ., not "
                         f"starting with .), got {name!r}")
    who = f"run settings {name!r}"
    for key in ("num_epochs", "batch_size", "seed", "n_val", "evals_per_epoch"):
        s[key] = as_count(s[key], key, who, low=0 if key == "seed" else 1)
    if s["train_abs_samples"] is not None:
        s["train_abs_samples"] = as_count(s["train_abs_samples"], "train_abs_samples (or None)", who)
    if not _is_real(s["lr"]) or not np.isfinite(s["lr"]) or not s["lr"] > 0:
        raise ValueError(f"run settings {name!r}: lr must be positive and finite (a number, e.g. 1e-3), got {s['lr']!r}")
    s["lr"] = float(s["lr"])
    c = s["clip_grads_norm"]
    if c is not None:
        if not _is_real(c) or not np.isfinite(c) or not c > 0:
            raise ValueError(f"run settings {name!r}: clip_grads_norm must be a positive finite number or None, got {c!r}")
        s["clip_grads_norm"] = float(c)
    if not isinstance(s["optimizer"], str) or s["optimizer"].lower() not in OPTIMISERS:
        raise ValueError(f"run settings {name!r}: unknown optimizer {s['optimizer']!r}; known: {sorted(OPTIMISERS)}")
    s["optimizer"] = s["optimizer"].lower()
    if not isinstance(s["init"], str) or s["init"] not in INITIALISERS:
        raise ValueError(f"run settings {name!r}: unknown init {s['init']!r}; known: {sorted(INITIALISERS)}")
    if not isinstance(s["stop_on_divergence"], (bool, np.bool_)):
        raise ValueError(f"run settings {name!r}: stop_on_divergence must be True or False, got "
                         f"{s['stop_on_divergence']!r}")
    s["stop_on_divergence"] = bool(s["stop_on_divergence"])
    arch = s["architecture"]
    if not isinstance(arch, list) or not arch or not all(isinstance(e, dict) and isinstance(e.get("layer"), str)
                                                         for e in arch):
        raise ValueError(f"run settings {name!r}: architecture must be a non-empty list of layer dicts such as "
                         f"{{'layer': 'Dense', 'units': 50}}, got {arch!r}")
    for i, entry in enumerate(arch):   # every known layer made once (no weights): a size of 2.5, NaN or True refused here
        if entry["layer"] not in LAYER_TYPES:
            continue                   # a layer of the caller's own, which make_model builds (run_experiment checks it)
        try:
            _layer_from_config(i, entry)
        except ValueError as e:
            raise ValueError(f"run settings {name!r}: architecture {str(e).removeprefix('Sequential.from_config: ')}") from None
    _check_regularisation(s)

# %%
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
    if wd is not None and (not _is_real(wd) or not 0 <= wd < float("inf")):
        raise ValueError(f"run settings {name!r}: weight_decay must be a non-negative number or None, got {wd!r}")
    s["weight_decay"] = None if wd is None else float(wd)
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

# %% tags=["active-ipynb"]
# for bad in ({"num_epoch": 5}, {"lr": -1.0}, {"lr": True}, {"optimizer": "adagrad"}, {"clip_grads_norm": float("inf")},
#             {"stop_on_divergence": "no"}, {"model_name": "../escape"}):
#     try:
#         check_settings(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad settings accepted")

# %% [markdown]
# ### Run folders
#
# Three mechanisms, in the order `run_experiment` uses them:
#
# 1. **Validate before the disk.** Settings (`check_settings`), data (three splits; `X` real-valued, the same
#    sample shape everywhere, no NaN/inf, naming the split and the first bad sample; `y` integer labels of the
#    right length, or targets), the model against the data (one `predict` on two samples: does it accept
#    them, does it have an output for every label?), the optimiser and the clip value. A mistake costs no
#    file and no half-written folder.
# 2. **One writer per name.** The file `runs/.NAME.lock` is created with `O_CREAT | O_EXCL`, which
#    succeeds for exactly one process, and holds its PID. A second run of the name finds the lock and a
#    living process behind it and is refused (`RunLockedError`): without it, two runs would write their
#    checkpoints into one folder and mix settings and weights. A process killed with `kill -9` cannot
#    remove its lock; its PID no longer runs, so the next run treats the lock as stale and takes it.
# 3. **Build beside, then rename.** The run is written into `runs/.NAME.new-PID/` and renamed to
#    `runs/NAME/` only when `result.json` is written: an interrupted run never occupies the name (and
#    `load_runs` skips the hidden folders). With `overwrite=True` the old run is renamed away
#    (`.NAME.old-PID`), the new one renamed into place, and only then the old one removed; a run killed
#    between the two renames is repaired by the next run of the name (the old run comes back).
#
# A new name for each press of a *Train* button comes from `free_run_name(name)`: `name`, else `name-2`,
# `name-3`, ... (a name being written counts as taken).


# %% [markdown]
# A damaged file in a run folder (a truncated `result.json` after a full disk, a hand edit that broke the JSON)
# is a `ValueError` naming the file and what to do, never a bare `JSONDecodeError`; the other runs are not touched.
# A runs folder that is a file, and a disk that fills up during a run, are named the same way.

# %%
RUN_FILE_ADVICE = ("The other runs are untouched. Restore the file from a copy, or move the folder {folder} out of "
                   "the runs folder (run_or_load then trains the run afresh)")


def _read_run_file(path, who):
    """The JSON object of a run folder's file (settings, result, timing: a dict; history.json: a History),
    or a ValueError naming the file, what is wrong with it and what to do."""
    path = Path(path)
    advice = RUN_FILE_ADVICE.format(folder=path.parent)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{who}: {path} is missing from its run folder. {advice}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:        # json.JSONDecodeError is a ValueError
        raise ValueError(f"{who}: {path} is damaged (truncated or not JSON: {e}). {advice}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{who}: {path} must hold a JSON object {{...}}, got {type(data).__name__}. {advice}")
    if path.name != "history.json":
        return data
    try:
        return History.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{who}: {path} is not a training history ({type(e).__name__}: {e}). {advice}") from None


def _make_runs_dir(runs_dir):
    """Create the runs folder (and its parents); a ValueError naming it when it, or a folder above it, is a file."""
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"run_experiment: the runs folder {runs_dir} cannot be made: it, or a folder above it, is "
                         f"a file. Move that file away, or pass another runs_dir") from None


@contextlib.contextmanager
def _disk_full_names(runs_dir, name):
    """Turn 'No space left on device' into an error that names the runs folder, the run and what to do."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        raise OSError(errno.ENOSPC, f"run_experiment: the disk of the runs folder {runs_dir} is full (no space left "
                                    f"on device) while writing the run {name!r}; nothing of this run was kept and "
                                    f"the other runs are intact. Free some space, or pass another runs_dir, and "
                                    f"run it again") from None


# %%
class RunExistsError(FileExistsError, ValueError):
    """run_experiment refused to replace an existing run folder (pass overwrite=True to replace it).

    Also a ValueError, like every other refusal of the toolkit, so `except ValueError` shows it too.
    """


class RunLockedError(FileExistsError, ValueError):
    """Another process (alive) is writing the same run folder right now."""


def _lock_path(runs_dir, name):
    return Path(runs_dir) / f".{name}.lock"


def _read_pid(path):
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

# %%
class RunLock:
    """An exclusive lock on one run name: the file runs/.NAME.lock, created atomically, holding the PID.

    Creating a file with O_EXCL succeeds for exactly one process, so two runs of one name cannot both
    start. A lock whose process is gone (killed with kill -9, a power cut) is stale: the next run
    removes it and goes on. An empty lock younger than a few seconds is being written right now and
    counts as held.
    """

    def __init__(self, runs_dir, name):
        self.path, self.name, self.held = _lock_path(runs_dir, name), name, False

    def acquire(self):
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = _read_pid(self.path)
                try:
                    young = time.time() - self.path.stat().st_mtime < 5
                except FileNotFoundError:
                    continue                           # released in the meantime: try again
                if (pid is not None and _process_alive(pid)) or (pid is None and young):
                    who = f"process {pid}" if pid is not None else "a process that is starting"
                    raise RunLockedError(
                        f"run_experiment: the run {self.name!r} is being written by {who} right now (lock file "
                        f"{self.path}); a second run of the same name would mix their files. Wait for it to "
                        f"finish, or choose another model_name (free_run_name proposes one). If no such run is "
                        f"going on, delete the lock file.") from None
                # stale: its process is gone. (Two processes breaking the same stale lock at the same moment
                # could both succeed; rare enough for a learner's notebook, and the swap below stays atomic.)
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise RunLockedError(f"run_experiment: could not take the lock {self.path} for {self.name!r}; try again")

    def release(self):
        if self.held and _read_pid(self.path) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

# %%
def _is_run_folder(folder):
    """A folder that run_experiment wrote (or an empty one): the only kind overwrite=True may replace."""
    return folder.is_dir() and ((folder / "settings.json").is_file() or not any(folder.iterdir()))


def _tidy_leftovers(runs_dir, name):
    """Under the lock: remove temporary folders of killed runs of `name`; finish a swap cut in half."""
    runs_dir = Path(runs_dir)
    for tmp in runs_dir.glob(f".{glob.escape(name)}.new-*"):
        if tmp.is_dir():
            shutil.rmtree(tmp)                 # an incomplete run: never a user's result
    folder = runs_dir / name
    for old in runs_dir.glob(f".{glob.escape(name)}.old-*"):
        if not folder.exists():
            os.rename(old, folder)             # killed between the two renames of a swap: the old run comes back
        elif old.is_dir():
            shutil.rmtree(old)                 # killed after the swap: the replaced run was asked to go


def _claim_folder(runs_dir, folder, name, overwrite):
    """Under the lock: tidy a killed run's leftovers, refuse to replace what must not be replaced; returns the
    temporary folder the run is built in."""
    _tidy_leftovers(runs_dir, name)
    if folder.exists() and not overwrite:
        raise _exists_error(folder)        # appeared while the data loaded
    if folder.exists() and not _is_run_folder(folder):
        raise RunExistsError(f"run_experiment: {folder} exists and is not a run folder (no settings.json); "
                             f"overwrite=True only replaces runs. Choose another model_name.")
    return runs_dir / f".{name}.new-{os.getpid()}"

# %%
def free_run_name(name, runs_dir=None):
    """`name` if no run of that name exists or is being written in runs_dir, else name-2, name-3, ...

    A name that already ends in -N continues from N+1 ("lr-sweep-2" -> "lr-sweep-3"). The Train button
    uses it, so a learner's run never replaces a stored one.
    """
    check_settings({"model_name": name})
    runs_dir = Path(runs_dir if runs_dir is not None else default_runs_dir())

    def taken(candidate):
        return (runs_dir / candidate).exists() or _lock_path(runs_dir, candidate).exists()

    if not taken(name):
        return name
    base, dash, number = name.rpartition("-")
    base, k = (base, int(number) + 1) if dash and number.isdigit() and base else (name, 2)
    while taken(f"{base}-{k}"):
        k += 1
    return f"{base}-{k}"

# %%
def _check_split(who, X, y, n_features=None):
    """X: a real-valued array of shape (m, ...) without NaN/inf; y: m integer labels >= 0, or (m, k) targets."""
    X, y = np.asarray(X), np.asarray(y)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)) \
            or X.dtype == bool:
        raise ValueError(f"run_experiment: {who} X must hold real numbers (e.g. float32), got dtype {X.dtype}")
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"run_experiment: {who} X must have shape (m, features) with m > 0, got {X.shape}")
    if n_features is not None and X.shape[1:] != n_features:
        raise ValueError(f"run_experiment: {who} X has samples of shape {X.shape[1:]}, the training data "
                         f"{n_features}")
    if np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))[0])
        raise ValueError(f"run_experiment: {who} X holds NaN or inf (first in sample {row}); clean the data first")
    if y.ndim not in (1, 2) or len(y) != len(X):
        raise ValueError(f"run_experiment: {who} y must be {len(X)} labels (shape ({len(X)},)) or one-hot targets "
                         f"(shape ({len(X)}, classes)), got shape {y.shape}")
    if y.ndim == 1 and (not np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"run_experiment: {who} y must hold integer class labels, got dtype {y.dtype}")
    if y.ndim == 1 and y.min() < 0:
        raise ValueError(f"run_experiment: {who} y holds a negative label {y.min()}")
    if y.ndim == 2 and not (np.issubdtype(y.dtype, np.number) and np.isfinite(y).all()):
        raise ValueError(f"run_experiment: {who} targets y must be finite numbers")
    return X, y

# %%
def _check_data(data):
    """((X_train, y_train), (X_val, y_val), (X_test, y_test)), each split checked, the same features everywhere."""
    try:
        (X_train, y_train), (X_val, y_val), (X_test, y_test) = data
    except (TypeError, ValueError):
        raise ValueError("run_experiment: data must be ((X_train, y_train), (X_val, y_val), (X_test, y_test))") from None
    train = _check_split("training", X_train, y_train)
    shape = train[0].shape[1:]
    return train, _check_split("validation", X_val, y_val, shape), _check_split("test", X_test, y_test, shape)


def _check_model_fits(model, data, has_batchnorm):
    """The model accepts the data's samples and has an output for every label, checked before any file is written."""
    (X_train, y_train), *_ = data
    try:
        width = model.predict(X_train[:2]).shape[-1]
    except ValueError as e:
        raise ValueError(f"run_experiment: the model does not accept the training samples of shape "
                         f"{X_train.shape[1:]}: {e}") from None
    for who, (_, y) in zip(("training", "validation", "test"), data):
        classes = y.shape[1] if y.ndim == 2 else int(y.max()) + 1
        if (y.ndim == 2 and classes != width) or (y.ndim == 1 and classes > width):
            raise ValueError(f"run_experiment: the model has {width} outputs but the {who} labels need {classes} "
                             f"(set the last Dense layer's units to the number of classes)")
    if has_batchnorm and len(X_train) < 2:
        raise ValueError(f"run_experiment: BatchNorm needs at least 2 training samples, got {len(X_train)}")

# %%
def _exists_error(folder):
    return RunExistsError(
        f"run_experiment: a run named {folder.name!r} already exists in {folder.parent}; nothing was changed. "
        f"Choose another model_name (free_run_name({folder.name!r}) proposes a free one), read the stored run "
        f"with load_runs / load_model, or pass overwrite=True to replace it (the old run is kept until the new "
        f"one is complete).")


def _swap_in(tmp, folder):
    """Put the complete run `tmp` at `folder`: a rename; an existing run is renamed away first, then removed."""
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    os.rename(folder, old)       # if killed right here, the next run of this name renames `old` back
    os.rename(tmp, folder)
    shutil.rmtree(old)

# %% [markdown]
# A run name that already holds a run is refused before anything is loaded, and the stored run stays as it was:

# %% tags=["active-ipynb"]
# # the same name again: refused, the stored run untouched; free_run_name proposes a new name
# try:
#     run_experiment({"model_name": "demo", "lr": 1e-2}, runs_dir=scratch)
# except RunExistsError as e:
#     print("RunExistsError:", str(e).replace(str(scratch), "<runs>"))
# else:
#     raise AssertionError("an existing run was replaced")
# print("free_run_name('demo') ->", free_run_name("demo", scratch))
# assert free_run_name("demo", scratch) == "demo-2" and json.loads((scratch / "demo" / "settings.json").read_text())["lr"] == 3e-3


# %% tags=["active-ipynb"]
# import subprocess, sys
# # overwrite=True: the old run stays whole until the new one is complete
# class Peek(Callback):
#     def on_step_end(self, loop, step, logs):
#         if step == 1:
#             names = sorted(p.name.replace(str(os.getpid()), "<pid>") for p in scratch.iterdir() if "demo" in p.name)
#             print("while the new run trains:", names)
# small = {"model_name": "demo", "architecture": mlp([50]), "train_abs_samples": 500, "batch_size": 64, "lr": 3e-3}
# again = run_experiment(small, runs_dir=scratch, callbacks=[Peek()], overwrite=True, progress=False, verbose=False)
# print("after:", sorted(p.name for p in scratch.iterdir() if "demo" in p.name), " train_samples:", again["train_samples"])
# assert json.loads((scratch / "demo" / "result.json").read_text())["train_samples"] == 500
#
# # a lock held by a living process refuses a second run; the lock of a killed one is stale
# with RunLock(scratch, "demo"):
#     try:
#         run_experiment(small, runs_dir=scratch, overwrite=True)
#     except RunLockedError as e:
#         print("\nRunLockedError:", str(e).replace(str(scratch), "<runs>").replace(str(os.getpid()), "<pid>"))
#     else:
#         raise AssertionError("two runs of one name at once")
# gone = subprocess.Popen([sys.executable, "-c", "pass"]); gone.wait()      # a process id that no longer runs
# (scratch / ".demo.lock").write_text(f"{gone.pid}\n")                      # as if killed with kill -9
# again = run_experiment(small, runs_dir=scratch, overwrite=True, progress=False, verbose=False)
# print("a stale lock (its process is gone) is taken over:", sorted(p.name for p in scratch.iterdir() if "demo" in p.name))
# assert sorted(p.name for p in scratch.iterdir() if "demo" in p.name) == ["demo"]


# %% [markdown]
# ## Summary
#
# * A run is a settings dict in the original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn)'s `RUN_SETTINGS` style, with every hidden knob made explicit
#   and checked (`check_settings`); `mlp(hidden, batchnorm)` writes the usual architectures.
# * The idea of a run is a dozen lines (`tiny_run`): settings → model, batches, optimiser → `Loop` → test
#   accuracy; `run_experiment` gives exactly the same final weights.
# * `run_experiment` trains it, writes a run folder (settings, history, best/last checkpoints, result), and
#   reports the test accuracy of the checkpoint chosen by validation. It validates everything before it
#   writes, never replaces a run unless asked (`overwrite=True`, atomically), and refuses a second run of a
#   name in progress (a lock file with the PID); `free_run_name` proposes a new name.
# * `load_runs`, `results_table`, `to_markdown` and `to_csv` read the folders back; `load_model` restores a
#   checkpoint.
# * `run_or_load` writes a small run record per run (settings, history, result, which test images it gets right)
#   and reads it back on a fresh clone instead of training; `check_record` retrains its first steps bit for bit.
# * `paired_comparison` compares two recipes on the same test images: McNemar's exact test and the per-seed
#   differences.
# * The panels (`experiment_controls`) are [chapter 10a](10a_panels.ipynb).
#
# ## Exercises
#
# 1. Add a "dropout" knob: which chapter would you have to write first?
# 2. Make `run_experiment` resume a run folder instead of starting over (hint: `Loop(..., resume=True)`).
# 3. Plot the validation accuracy of every run in a folder against its training time.
#
#
# The worked solutions follow, in collapsed cells (click to open); the tests run them, so they stay true.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# A dropout knob needs a `Dropout` layer first: a layer that zeroes a random share of its
# inputs in training and none at inference, with a backward pass that uses the same mask, registered in
# `LAYER_TYPES` so that a config can name it. That is [chapter 11](11_regularisation.ipynb), written since: the
# settings accept `mlp(..., dropout=rate)`, `build_model` builds the layer, and the panel has the knob.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     from diydnn._07_model import LAYER_TYPES
#     from diydnn._10a_panels import control_values, settings_from_controls      # the panel's chapter
#     with_dropout = check_settings({"architecture": mlp([50], dropout=0.2)})
#     net = build_model(with_dropout, rng=np.random.default_rng(0))
#     knob = control_values(with_dropout)["dropout"]              # where the panel's dropout control starts
#     print([type(layer).__name__ for layer in net.layers], " the panel's dropout control starts at", knob)
#     assert "Dropout" in LAYER_TYPES and [type(layer).__name__ for layer in net.layers].count("Dropout") == 1
#     assert knob == 0.2 and settings_from_controls(with_dropout, control_values(with_dropout)) == with_dropout

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# A run folder's last checkpoint holds the model, the optimiser's slots, the batch stream's position
# and generator, and the history; chapter 09's `Loop` resumes from it when it is given the same model, optimiser
# and data. So resuming means rebuilding exactly what `run_experiment` built from the stored `settings.json`, and
# a `Loop` on the folder. The test of it: one epoch, then one more resumed, equals two epochs in one go, bit for
# bit. (A complete version would also update `result.json`, and take the run's lock while it writes.)
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     def resume_experiment(folder, extra_epochs, data=None):
#         """Continue the run in `folder` for extra_epochs more epochs, in place; returns the Loop."""
#         folder = Path(folder)
#         s = check_settings(json.loads((folder / "settings.json").read_text()))
#         rng = np.random.default_rng(s["seed"])
#         model, task, n_steps, eval_task, _, _ = _prepare_run(s, data, None, None, rng)   # as run_experiment built them
#         loop = Loop(model, task, eval_tasks=[eval_task], output_dir=folder, progress=False, verbose=False)
#         steps_per_epoch = task.labeled_data.batches_per_epoch
#         print(f"resuming {folder.name} from step {loop.step} for {extra_epochs * steps_per_epoch} more steps")
#         loop.run(extra_epochs * steps_per_epoch)
#         return loop
#
#
#     short = dict(demo_settings, model_name="resumable", num_epochs=1)
#     run_experiment(short, runs_dir=scratch, progress=False, verbose=False)
#     resumed = resume_experiment(scratch / "resumable", 1)
#     in_one_go = run_experiment(dict(short, model_name="in_one_go", num_epochs=2), runs_dir=scratch, progress=False,
#                                verbose=False)
#     same = all(np.array_equal(resumed.model.params[k], in_one_go["model"].params[k]) for k in resumed.model.params)
#     print("1 epoch + 1 resumed == 2 epochs:", resumed.step == in_one_go["steps"], "steps;", same, "weights")
#     assert resumed.step == in_one_go["steps"] and same

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# `load_runs` gives every run's result; the training time is `seconds` (wall time of the loop) and the
# validation accuracy `best_val_accuracy` (or `final_val_accuracy`, the last evaluation).
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     all_runs = load_runs(scratch)
#     fig, ax = plt.subplots(figsize=(6, 3.5))
#     for run in all_runs:
#         ax.scatter(run["seconds"], run["best_val_accuracy"])
#         ax.annotate(run["model_name"], (run["seconds"], run["best_val_accuracy"]), fontsize=8, xytext=(4, 2),
#                     textcoords="offset points")
#     ax.set(xlabel="training time (s, wall)", ylabel="best validation accuracy", title=f"{len(all_runs)} runs in one folder")
#     stored_results = {p.name: json.loads((p / "result.json").read_text()) for p in scratch.iterdir() if (p / "result.json").exists()
#                       and not p.name.startswith(".")}
#     print(sorted(stored_results))
#     assert len(ax.collections) == len(all_runs) == len(stored_results) >= 3
#     assert all(r["best_val_accuracy"] == stored_results[r["model_name"]]["best_val_accuracy"] for r in all_runs)

# %% tags=["active-ipynb"]
# shutil.rmtree(scratch, ignore_errors=True)                # the chapter's run folders

# %% [markdown]
# ---
# [← 09 — training](09_training.ipynb) · [begin here](00_begin_here.ipynb) · **10 — experiments toolkit** · [next: 10a — panels →](10a_panels.ipynb)
