"""Bad inputs of the data side (chapter 08: MNIST files, batches) and of the experiment toolkit (chapter 10).

CASES: (area, what the user did, call, expected exception type, text expected in the message), where
call is a zero-argument function that must raise. tests/bad_input_table.py runs them all (with the
other tests/bad_input_cases_*.py files) and renders the table media/bad_input.md; tests/test_bad_input.py
checks each case and that the committed table is up to date. A case that needs files builds them in a
temporary folder of its own; the table shows that folder as <tmp>.
"""
import contextlib
import gzip
import os
import socket
import tempfile
from pathlib import Path

import numpy as np

from diydnn._08_mnist import (MNIST_FILES, BatchStream, MNISTChecksumError, MNISTDownloadError, batches, load_mnist,
                              mnist_dir, read_idx, train_val_split)
from diydnn._10_experiments import (RunExistsError, RunLock, RunLockedError, check_settings, load_runs, mlp,
                                    run_experiment)

QUIET = {"progress": False, "verbose": False}


@contextlib.contextmanager
def env(**values):
    """Set (str) or unset (None) environment variables inside the with-block, then put them back."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def idx(array):
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()


def tiny_mnist_folder(root, skip=(), labels_test=3):
    """The four MNIST file names holding tiny IDX data (not the real files)."""
    folder = Path(root) / "mnist"
    folder.mkdir()
    arrays = {MNIST_FILES[0]: np.zeros((6, 4, 4), np.uint8), MNIST_FILES[1]: np.zeros(6, np.uint8),
              MNIST_FILES[2]: np.zeros((3, 4, 4), np.uint8), MNIST_FILES[3]: np.zeros(labels_test, np.uint8)}
    for name, a in arrays.items():
        if name not in skip:
            (folder / name).write_bytes(gzip.compress(idx(a), mtime=0))
    return folder


def in_tmp(function):
    """A case call that runs function(tmp_folder) in a fresh temporary folder."""
    def call():
        with tempfile.TemporaryDirectory() as tmp, env(DIYDNN_DATA_DIR=None, DIYDNN_OFFLINE=None):
            function(Path(tmp))
    return call


def bad_idx(data):
    return in_tmp(lambda tmp: ((tmp / "file.idx").write_bytes(data), read_idx(tmp / "file.idx")))


GOOD_IDX = idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


def dead_mirror_download(tmp):
    with socket.socket() as s:                     # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/"
    mnist_dir(mirrors=[url], cache_dir=tmp / "cache", timeout=5)


def tiny_data(m=60, n_features=5, seed=0):
    rng = np.random.default_rng(seed)
    def draw(k):
        return rng.standard_normal((k, n_features)).astype(np.float32), rng.integers(0, 3, k)
    return draw(m), draw(20), draw(20)


def settings(**more):
    return {"model_name": "t", "architecture": mlp([4], n_classes=3), "batch_size": 16, **more}


def run(tmp, s=None, data=None, **kw):
    run_experiment(s or settings(), runs_dir=tmp / "runs", data=data or tiny_data(), **QUIET, **kw)


def with_nan(tmp):
    (X, y), val, test = tiny_data()
    X[7, 2] = np.nan
    run(tmp, data=((X, y), val, test))


def labels_beyond_outputs(tmp):
    (X, y), val, test = tiny_data()
    run(tmp, data=((X, y + 2), val, test))


def short_labels(tmp):
    (X, y), val, test = tiny_data()
    run(tmp, data=((X, y[:-1]), val, test))


def other_features(tmp):
    train, (X_val, y_val), test = tiny_data()
    run(tmp, data=(train, (X_val[:, :3], y_val), test))


def string_pixels(tmp):
    (X, y), val, test = tiny_data()
    run(tmp, data=((X.astype(str), y), val, test))


def rerun(tmp):
    run(tmp)
    run(tmp, settings(lr=1e-2))


def while_running(tmp):
    (tmp / "runs").mkdir()
    with RunLock(tmp / "runs", "t"):         # this process plays the run in progress
        run(tmp)


def overwrite_notes(tmp):
    (tmp / "runs" / "t").mkdir(parents=True)
    (tmp / "runs" / "t" / "notes.txt").write_text("mine")
    run(tmp, overwrite=True)


def damaged_run(tmp):
    run(tmp)
    (tmp / "runs" / "t" / "result.json").write_text('{"model_name": ')
    load_runs(tmp / "runs")


def wrong_file(tmp):
    folder = tiny_mnist_folder(tmp)
    mnist_dir(folder, cache_dir=tmp / "cache")


CASES = [
    # ---- chapter 08: finding and reading MNIST
    ("MNIST files", "`load_mnist(folder)` with a folder that does not exist",
     in_tmp(lambda tmp: load_mnist(tmp / "nowhere", cache_dir=tmp / "cache")), FileNotFoundError, "does not exist"),
    ("MNIST files", "`load_mnist(folder)` with a folder that lacks two of the four files",
     in_tmp(lambda tmp: load_mnist(tiny_mnist_folder(tmp, skip=MNIST_FILES[2:]), cache_dir=tmp / "cache")),
     FileNotFoundError, "lacks t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"),
    ("MNIST files", "`DIYDNN_DATA_DIR` set to a folder that does not exist",
     in_tmp(lambda tmp: (os.environ.__setitem__("DIYDNN_DATA_DIR", str(tmp / "gone")), mnist_dir(cache_dir=tmp))),
     FileNotFoundError, "environment variable DIYDNN_DATA_DIR"),
    ("MNIST files", "a folder of files with the MNIST names that are not the official files (damaged, or another "
     "data set)", in_tmp(wrong_file), MNISTChecksumError, "is not the official MNIST file: expected SHA-256"),
    ("MNIST files", "no MNIST anywhere and `DIYDNN_OFFLINE=1`",
     in_tmp(lambda tmp: (os.environ.__setitem__("DIYDNN_OFFLINE", "1"), mnist_dir(cache_dir=tmp / "cache"))),
     MNISTDownloadError, "DIYDNN_OFFLINE is set, so nothing is downloaded"),
    ("MNIST files", "no MNIST anywhere, and the only mirror cannot be reached", in_tmp(dead_mirror_download),
     MNISTDownloadError, "cannot connect"),
    ("MNIST files", "`mnist_dir(checksums=...)` without a SHA-256 for one file",
     in_tmp(lambda tmp: mnist_dir(cache_dir=tmp, checksums={n: "0" * 64 for n in MNIST_FILES[:3]})),
     ValueError, "checksums has no SHA-256 for t10k-labels-idx1-ubyte.gz"),
    ("MNIST files", "`mnist_dir(checksums=None)` for the cache (only your own folders may skip the check)",
     in_tmp(lambda tmp: mnist_dir(cache_dir=tmp, checksums=None)), ValueError, "always verified"),
    ("MNIST files", "your own files (`load_mnist(folder, checksums=None)`) with 3 test images but 2 test labels",
     in_tmp(lambda tmp: load_mnist(tiny_mnist_folder(tmp, labels_test=2), checksums=None, cache_dir=tmp / "c")),
     ValueError, "expected 3 uint8 labels"),
    ("IDX format", "`read_idx` on a zip file (magic number `PK\\x03\\x04`)", bad_idx(b"PK\x03\x04" + GOOD_IDX[4:]),
     ValueError, "is not an IDX file"),
    ("IDX format", "`read_idx` on a file with its last byte missing", bad_idx(GOOD_IDX[:-1]), ValueError,
     "(truncated)"),
    ("IDX format", "`read_idx` on a file with two bytes too many", bad_idx(GOOD_IDX + b"\0\0"), ValueError,
     "extra data after the end"),
    ("IDX format", "`read_idx` on a cut-off gzip file", bad_idx(gzip.compress(GOOD_IDX, mtime=0)[:-12]), ValueError,
     "does not decompress"),
    ("IDX format", "`read_idx` on an empty file", bad_idx(b""), ValueError, "found 0 bytes"),
    # ---- chapter 08: splits and batches
    ("batches", "`train_val_split(X, y, n_val=10, rng)` with 10 samples",
     lambda: train_val_split(np.zeros((10, 2)), np.zeros(10), 10, np.random.default_rng(0)), ValueError,
     "0 < n_val < 10"),
    ("batches", "`train_val_split(..., rng=42)`: a seed instead of a Generator",
     lambda: train_val_split(np.zeros((10, 2)), np.zeros(10), 3, 42), ValueError, "np.random.default_rng(0)"),
    ("batches", "`batches(X, y, 0)`", lambda: batches(np.zeros((5, 2)), np.zeros(5), 0), ValueError,
     "batch_size must be a positive integer"),
    ("batches", "`batches(X, y, 2)` with a 1-D X", lambda: batches(np.zeros(5), np.zeros(5), 2), ValueError,
     "at least 2 dimensions"),
    ("batches", "`BatchStream(X, y, 8, rng)` with only 5 samples (drop_last=True)",
     lambda: BatchStream(np.zeros((5, 2)), np.zeros(5), 8, np.random.default_rng(0)), ValueError,
     "would hold no batch"),
    ("batches", "resuming a `BatchStream` from a state saved with another batch size",
     lambda: BatchStream(np.zeros((20, 2)), np.zeros(20), 4, np.random.default_rng(0)).load_state_dict(
         BatchStream(np.zeros((20, 2)), np.zeros(20), 3, np.random.default_rng(0)).state_dict()), ValueError,
     "the state is for (batch_size, drop_last) = (3, True)"),
    # ---- chapter 10: settings
    ("run settings", "a typo in a key: `{'num_epoch': 5}`", lambda: check_settings({"num_epoch": 5}), ValueError,
     "unknown key(s) ['num_epoch']"),
    ("run settings", "`optimizer='adagrad'`", lambda: check_settings({"optimizer": "adagrad"}), ValueError,
     "unknown optimizer 'adagrad'"),
    ("run settings", "`init='kaiming'`", lambda: check_settings({"init": "kaiming"}), ValueError,
     "unknown init 'kaiming'"),
    ("run settings", "`lr=float('nan')`", lambda: check_settings({"lr": float("nan")}), ValueError,
     "lr must be positive and finite"),
    ("run settings", "`lr=True`", lambda: check_settings({"lr": True}), ValueError, "got True"),
    ("run settings", "`clip_grads_norm='5'` (a string)", lambda: check_settings({"clip_grads_norm": "5"}),
     ValueError, "clip_grads_norm must be a positive finite number or None"),
    ("run settings", "`clip_grads_norm=float('inf')`", lambda: check_settings({"clip_grads_norm": float("inf")}),
     ValueError, "got inf"),
    ("run settings", "`batch_size=True`", lambda: check_settings({"batch_size": True}), ValueError,
     "batch_size must be a positive integer"),
    ("run settings", "`num_epochs=2.5`", lambda: check_settings({"num_epochs": 2.5}), ValueError,
     "num_epochs must be a positive integer"),
    ("run settings", "`stop_on_divergence='yes'`", lambda: check_settings({"stop_on_divergence": "yes"}), ValueError,
     "must be True or False"),
    ("run settings", "`model_name='../elsewhere'`", lambda: check_settings({"model_name": "../elsewhere"}),
     ValueError, "folder-safe"),
    ("run settings", "an architecture entry without a layer name: `[{'units': 50}]`",
     lambda: check_settings({"architecture": [{"units": 50}]}), ValueError, "non-empty list of layer dicts"),
    # ---- chapter 10: data and run folders (each refused before a file is written)
    ("run_experiment", "training data with a NaN pixel", in_tmp(with_nan), ValueError,
     "training X holds NaN or inf (first in sample 7)"),
    ("run_experiment", "labels 0-4 for a model with 3 outputs", in_tmp(labels_beyond_outputs), ValueError,
     "the model has 3 outputs but the training labels need 5"),
    ("run_experiment", "one label fewer than images", in_tmp(short_labels), ValueError, "training y must be 60 labels"),
    ("run_experiment", "validation images with 3 features, training images with 5", in_tmp(other_features),
     ValueError, "validation X has samples of shape (3,)"),
    ("run_experiment", "images given as strings", in_tmp(string_pixels), ValueError, "must hold real numbers"),
    ("run_experiment", "`train_abs_samples=100` with 60 training images",
     in_tmp(lambda tmp: run(tmp, settings(train_abs_samples=100))), ValueError, "train_abs_samples 100 > the 60"),
    ("run_experiment", "`overwrite='yes'`", in_tmp(lambda tmp: run(tmp, overwrite="yes")), ValueError,
     "overwrite must be True or False"),
    ("run folders", "the same `model_name` again (another Train press)", in_tmp(rerun), RunExistsError,
     "already exists"),
    ("run folders", "a second run of a name while the first is still training", in_tmp(while_running),
     RunLockedError, "is being written by process"),
    ("run folders", "`overwrite=True` on a folder of your own that is not a run", in_tmp(overwrite_notes),
     RunExistsError, "is not a run folder"),
    ("run folders", "`load_runs` with a damaged `result.json`", in_tmp(damaged_run), ValueError, "is damaged"),
]
