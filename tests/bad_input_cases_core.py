"""Bad input a learner can give the numerics, optimisers, model files and the training loop, and what it gets.

CASES: a list of (area, what_the_user_did, call, expected_exception_type, text_expected_in_message).
`call` takes no arguments and must raise. Files are made in a fresh temporary folder that is removed
afterwards, so messages name a temporary path ending in the file name shown in the case.
tests/test_bad_input_core.py runs every case; the README's table of bad input collects every
tests/bad_input_cases_*.py.
"""
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np

import diydnn as dd
from diydnn._09_training import CHECKPOINT_LAST, load_checkpoint, save_checkpoint


# -- small builders -------------------------------------------------------------------------------
def _model(last=None, seed=0):
    return dd.Sequential([dd.Dense(3), last or dd.ReLU(), dd.Dense(2)], n_in=4, rng=np.random.default_rng(seed))


def _data(seed=0, n=24):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


def _task(batches=None, optimizer=None, **kwargs):
    if batches is None:
        X, y = _data()
        batches = dd.BatchStream(X, y, batch_size=8, rng=np.random.default_rng(0))
    return dd.TrainTask(batches, dd.SoftmaxCrossEntropy(), optimizer or dd.Adam(lr=1e-2), **kwargs)


def _batches(n, X_of=lambda X: X, nan_at=None):
    rng = np.random.default_rng(1)
    for i in range(n):
        X = rng.standard_normal((8, 4)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
        if i == nan_at:
            X[2, 1] = np.nan
        yield X_of(X), y


def _in_folder(action):
    """A zero-argument call that runs action(folder) in a fresh temporary folder, removed afterwards."""
    def call():
        folder = Path(tempfile.mkdtemp(prefix="diydnn_bad_input_"))
        try:
            return action(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return call


def _load_model_file(content):
    def action(folder):
        path = folder / "model.npz"
        if callable(content):
            _model().save(path)
            path.write_bytes(content(path.read_bytes()))
        else:
            path.write_bytes(content)
        return dd.Sequential.load(path)
    return _in_folder(action)


def _flip(raw):
    b = bytearray(raw)
    b[len(raw) // 2] ^= 0x10    # one bit in the middle of the file: the entry's CRC-32 no longer matches
    return bytes(b)


def _npy_bytes(_raw):
    f = io.BytesIO()
    np.save(f, np.zeros(3))
    return f.getvalue()


def _resume_with(first_model, first_opt, second_model, second_opt):
    def action(folder):
        dd.Loop(first_model(), _task(optimizer=first_opt()), output_dir=folder, progress=False, verbose=False).run(2)
        dd.Loop(second_model(), _task(optimizer=second_opt()), output_dir=folder, progress=False, verbose=False)
    return _in_folder(action)


def _resume_from_damaged(damage):
    def action(folder):
        dd.Loop(_model(), _task(), output_dir=folder, progress=False, verbose=False).run(2)
        path = folder / CHECKPOINT_LAST
        path.write_bytes(damage(path.read_bytes()))
        dd.Loop(_model(), _task(), output_dir=folder, progress=False, verbose=False)
    return _in_folder(action)


def _checkpoint_with_meta(meta):
    def action(folder):
        save_checkpoint(folder / "ckpt.npz", {"w": np.ones(2)}, meta)
        return load_checkpoint(folder / "ckpt.npz")
    return _in_folder(action)


def _run(task, model=None, n=5, folder=False):
    if folder:
        return _in_folder(lambda f: dd.Loop(model or _model(), task(), output_dir=f, progress=False,
                                            verbose=False).run(n))
    return lambda: dd.Loop(model or _model(), task(), progress=False, verbose=False).run(n)


def _step(spec, bad):
    def call():
        params = {"dense_0/W": np.ones((2, 2), np.float32), "dense_0/b": np.zeros(2, np.float32)}
        grads = {"dense_0/W": np.ones((2, 2), np.float32), "dense_0/b": np.array([0.5, bad], np.float32)}
        dd.get_optimiser(spec).step(params, grads)
    return call


P3 = np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1]])
Z3 = np.array([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])

CASES = [
    # -- losses and labels (chapter 03) --
    ("loss", "two-hot target rows [1, 1, 0]", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([[1, 1, 0], [0, 1, 0]])),
     ValueError, "each one-hot label row must sum to 1"),
    ("loss", "an all-zero target row", lambda: dd.CategoricalCrossEntropy()(P3, np.array([[0, 0, 0], [0, 1, 0]])),
     ValueError, "rows [0] sum to [0.0]"),
    ("loss", "target values outside [0, 1]", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([[1.5, -0.5, 0], [0, 1, 0]])),
     ValueError, "one-hot labels must lie in [0, 1], got values from -0.5 to 1.5"),
    ("loss", "NaN in one-hot targets", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([[np.nan, 1, 0], [0, 1, 0]])),
     ValueError, "one-hot labels contain NaN (1 of 6 entries)"),
    ("loss", "a label 7 for 3 classes", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([0, 7])),
     ValueError, "labels must lie in [0, 3), got [7]"),
    ("loss", "labels as floats [0.0, 2.0]", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([0.0, 2.0])),
     ValueError, "integer labels expected, got dtype float64"),
    ("loss", "targets as strings", lambda: dd.SoftmaxCrossEntropy()(Z3, np.array([["1", "0", "0"], ["0", "1", "0"]])),
     ValueError, "one-hot labels must be real numbers"),
    ("loss", "NaN in the predictions", lambda: dd.CategoricalCrossEntropy()(np.array([[np.nan, 0.5, 0.5]]), np.array([0])),
     dd.NonFiniteError, "contain NaN or inf"),
    ("loss", "complex logits", lambda: dd.SoftmaxCrossEntropy()(Z3 + 1j, np.array([0, 1])),
     ValueError, "predictions must be real numbers, got dtype complex128"),
    ("labels", "one_hot with a negative label", lambda: dd.one_hot(np.array([0, -1, 2]), 3),
     ValueError, "one_hot: labels must lie in [0, 3), got [-1]"),
    ("labels", "one_hot with a label >= n_classes", lambda: dd.one_hot(np.array([0, 3]), 3),
     ValueError, "one_hot: labels must lie in [0, 3), got [3]"),
    ("labels", "one_hot with float labels", lambda: dd.one_hot(np.array([0.0, 1.5]), 3),
     ValueError, "one_hot: labels must be integers, got dtype float64"),
    ("labels", "one_hot with n_classes=0", lambda: dd.one_hot(np.array([0]), 0),
     ValueError, "one_hot: n_classes must be a positive integer, got 0"),
    ("labels", "accuracy with a label 10 for 3 outputs", lambda: dd.accuracy(Z3, np.array([0, 10])),
     ValueError, "accuracy: labels must lie in [0, 3), got [10]"),
    ("labels", "accuracy with one-hot labels of the wrong width", lambda: dd.accuracy(Z3, np.eye(4)[[0, 1]]),
     ValueError, "accuracy: one-hot labels of shape (2, 4) do not match predictions of shape (2, 3)"),

    # -- optimisers (chapter 06) --
    ("optimiser", "Adam.step with a NaN gradient", _step("adam", np.nan),
     dd.NonFiniteError, "Adam.step: gradient(s) 'dense_0/b' (1 of 2 entries) contain NaN or inf; no parameter and no optimiser state was changed"),
    ("optimiser", "SGD.step with an inf gradient", _step("sgd", np.inf),
     dd.NonFiniteError, "SGD.step: gradient(s) 'dense_0/b'"),
    ("optimiser", "AdamW.step with a -inf gradient", _step("adamw", -np.inf),
     dd.NonFiniteError, "AdamW.step: gradient(s) 'dense_0/b'"),

    # -- model files (chapter 07) --
    ("model file", "Sequential.load of an empty file", _load_model_file(b""),
     ValueError, "model.npz is empty (0 bytes). It may be damaged"),
    ("model file", "Sequential.load of a file cut in half", _load_model_file(lambda raw: raw[:len(raw) // 2]),
     ValueError, "model.npz is damaged (truncated or corrupted)"),
    ("model file", "Sequential.load of a file with one flipped bit", _load_model_file(_flip),
     ValueError, "Bad CRC-32"),
    ("model file", "Sequential.load of a text file", _load_model_file(b"W = [[1, 2], [3, 4]]\n"),
     ValueError, "model.npz is not an .npz file (it does not start like a zip archive)"),
    ("model file", "Sequential.load of a single-array .npy", _load_model_file(_npy_bytes),
     ValueError, "is a single array (.npy)"),
    ("model file", "Sequential.load of a missing file", lambda: dd.Sequential.load("no_such_model.npz"),
     FileNotFoundError, "Sequential.load: no file at no_such_model.npz"),

    # -- checkpoints and resuming (chapter 09) --
    ("checkpoint", "resuming from a truncated checkpoint_last.npz", _resume_from_damaged(lambda raw: raw[:200]),
     ValueError, "pass resume=False to Loop; to continue from the best checkpoint instead"),
    ("checkpoint", "resuming from an empty checkpoint_last.npz", _resume_from_damaged(lambda raw: b""),
     ValueError, "checkpoint_last.npz is empty (0 bytes)"),
    ("checkpoint", "load_checkpoint of a file whose metadata has no 'step'", _checkpoint_with_meta({"epoch": 3}),
     ValueError, "is not a complete diydnn checkpoint: metadata missing or wrong for ['step']"),
    ("checkpoint", "resuming a Dense-ReLU run with a Dense-Softmax model",
     _resume_with(lambda: _model(dd.ReLU()), dd.Adam, lambda: _model(dd.Softmax()), dd.Adam),
     ValueError, "it was written with a different model (entry 1: checkpoint {'layer': 'ReLU'"),
    ("checkpoint", "resuming an SGD run with Adam",
     _resume_with(_model, lambda: dd.SGD(lr=0.1), _model, lambda: dd.Adam(lr=0.1)),
     ValueError, "different optimizer (checkpoint {'name': 'sgd', 'lr': 0.1, 'momentum': 0.0} vs given {'name': 'adam'"),

    # -- tasks and the loop (chapter 09) --
    ("training", "a finite list of 3 batches for 10 steps", _run(lambda: _task(iter(list(_batches(3)))), n=10),
     ValueError, "TrainTask: labeled_data ran out after 3 batches; it must be an endless iterator"),
    ("training", "an eval iterator shorter than n_eval_batches",
     lambda: dd.EvalTask(_batches(1), n_eval_batches=2).evaluate(_model()),
     ValueError, "labeled_data ran out after 1 of the 2 batches"),
    ("training", "EvalTask(batch_size=0)", lambda: dd.EvalTask(_data(), batch_size=0),
     ValueError, "EvalTask 'eval': batch_size must be a positive integer, got 0"),
    ("training", "EvalTask(metrics='accuracy') (a string, not a list)", lambda: dd.EvalTask(_data(), metrics="accuracy"),
     ValueError, "metrics must be a list of names such as ['loss', 'accuracy']"),
    ("training", "TrainTask(clip_norm='5')", lambda: _task(clip_norm="5"),
     ValueError, "TrainTask: clip_norm (or None) must be a number, got '5'"),
    ("training", "TrainTask(clip_norm=-1)", lambda: _task(clip_norm=-1),
     ValueError, "TrainTask: clip_norm (or None) must be a positive finite number, got -1"),
    ("training", "TrainTask(n_steps_per_checkpoint=2.5)", lambda: _task(n_steps_per_checkpoint=2.5),
     ValueError, "n_steps_per_checkpoint must be a positive integer, got 2.5"),
    ("training", "TrainTask with the optimiser's name instead of an optimiser", lambda: _task(optimizer="adam"),
     ValueError, "optimizer must be an optimiser object such as Adam(lr=1e-3)"),
    ("training", "complex training data", _run(lambda: _task(_batches(5, X_of=lambda X: X + 0j))),
     ValueError, "the first batch (step 1): X must hold real numbers, got dtype complex64"),
    ("training", "training data as strings", _run(lambda: _task(_batches(5, X_of=lambda X: X.astype(str)))),
     ValueError, "X must hold real numbers, got dtype <U"),
    ("training", "complex evaluation data", lambda: dd.EvalTask((_data()[0] * 1j, _data()[1]), name="val"),
     ValueError, "EvalTask 'val': the evaluation data: X must hold real numbers, got dtype complex64"),
    ("training", "a NaN in the 2nd batch of an evaluation iterator",
     lambda: dd.EvalTask(_batches(3, nan_at=1), n_eval_batches=3).evaluate(_model()),
     dd.NonFiniteError, "EvalTask 'eval': evaluation batch 2: X of shape (8, 4) holds 1 NaN or inf value(s)"),
    ("training", "a NaN in the 4th training batch", _run(lambda: _task(_batches(10, nan_at=3)), n=10, folder=True),
     dd.NonFiniteError, "the training batch of step 4: X of shape (8, 4) holds 1 NaN or inf value(s), first at index (2, 1): the data is bad, not the training"),
    ("training", "Loop.run(float('nan'))", _run(lambda: _task(), n=float("nan")),
     ValueError, "Loop.run: n_steps must be a positive integer, got nan"),
    ("training", "DivergenceGuard(factor='10')", lambda: dd.DivergenceGuard(factor="10"),
     ValueError, "DivergenceGuard: factor must be a number, got '10'"),
    ("training", "DivergenceGuard(smoothing=1)", lambda: dd.DivergenceGuard(smoothing=1),
     ValueError, "DivergenceGuard: smoothing must lie in [0, 1), got 1"),
    ("training", "EarlyStopping(patience=0)", lambda: dd.EarlyStopping(patience=0),
     ValueError, "EarlyStopping: patience must be a positive integer, got 0"),
    ("training", "EarlyStopping(monitor='accuracy') without the task name", lambda: dd.EarlyStopping(monitor="accuracy"),
     ValueError, "monitor must name '<eval task name>/<metric>'"),
]
