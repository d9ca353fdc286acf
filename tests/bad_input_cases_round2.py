"""Bad input for the parts added after the first reliability round: counts, schedules, augmentation, run folders,
and the edges a learner hits first (issue 23). Same format as bad_input_cases_core.py:

CASES: a list of (area, what_the_user_did, call, expected_exception_type, text_expected_in_message).
`call` takes no arguments and must raise. Files are made in a fresh temporary folder that is removed afterwards.
tests/test_bad_input.py runs every case and regenerates media/bad_input.md from them.
"""
import atexit
import errno
import os
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

import diydnn as dd
from bad_input_cases_core import _in_folder
from diydnn._10_experiments import check_settings, mlp, run_experiment, run_or_load
from diydnn._11_regularisation import schedule_for_run

# -- small builders -------------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")


def _tiny_data(seed=0, n_features=12):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, n_features)) * 2

    def draw(k):
        y = rng.integers(0, 3, k)
        return (centres[y] + rng.standard_normal((k, n_features))).astype(np.float32), y
    return draw(200), draw(60), draw(60)


TINY = {"model_name": "tiny", "architecture": mlp([8], n_classes=3), "batch_size": 50, "n_val": 60}
_STORED = {}


def _stored_run():
    """A folder holding one complete tiny run (trained once per process), to copy and damage."""
    if "folder" not in _STORED:
        runs = Path(tempfile.mkdtemp(prefix="diydnn_stored_run_"))
        atexit.register(shutil.rmtree, runs, ignore_errors=True)
        run_experiment(TINY, runs_dir=runs, data=_tiny_data(), progress=False, verbose=False)
        _STORED["folder"] = runs / "tiny"
    return _STORED["folder"]


def _damaged_run(file, content):
    """run_or_load of the stored tiny run after `file` of its folder was replaced by `content`."""
    def action(folder):
        shutil.copytree(_stored_run(), folder / "tiny")
        (folder / "tiny" / file).write_text(content)
        with mock.patch("diydnn._10_experiments.quick_mode", return_value=False):   # the test suite's quick mode
            return run_or_load(TINY, runs_dir=folder, data=_tiny_data())           # would always retrain
    return _in_folder(action)


def _runs_dir_is_a_file(folder):
    (folder / "runs").write_text("not a folder")
    return run_experiment(TINY, runs_dir=folder / "runs", data=_tiny_data(), progress=False, verbose=False)


def _disk_full(folder):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with mock.patch("diydnn._10_experiments._write_json", full):
        return run_experiment(TINY, runs_dir=folder, data=_tiny_data(), progress=False, verbose=False)


def _model_with_nan_weight(folder):
    model = dd.Sequential([dd.Dense(3), dd.ReLU(), dd.Dense(2)], n_in=4, rng=np.random.default_rng(0))
    model.params["dense_1/W"][1, 0] = np.nan          # a model trained into NaN, then saved
    model.save(folder / "model.npz")
    return dd.Sequential.load(folder / "model.npz")


def _sgd_state_into_adam():
    sgd = dd.SGD(lr=0.1)
    for _ in range(3):
        sgd.step({"W": np.ones(2)}, {"W": np.ones(2)})
    dd.Adam().load_state_dict(sgd.state_dict())


def _step_with_schedule(factor):
    class Broken(dd.Schedule):
        name = "broken"

        def __call__(self, t):
            return factor

    opt = dd.SGD(lr=0.1)
    opt.schedule = Broken()
    opt.step({"W": np.ones(2)}, {"W": np.ones(2)})


def _dense_backward(dY):
    layer = dd.Dense(2, n_in=3, rng=np.random.default_rng(0))
    layer.forward(np.ones((2, 3)))
    layer.backward(dY)


def _threads_from_environment(text):
    def call():
        with mock.patch.dict(os.environ, {"DIYDNN_THREADS": text}):
            dd.set_threads()
    return call


def _settings(**more):
    return lambda: check_settings({"model_name": "bad", **more})


PROBABILITIES = np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1]])
LOGITS = np.array([[2.0, -1.0, 0.5], [0.3, 1.2, -0.7]])
CNN = [{"layer": "Reshape", "shape": [28, 28, 1]}, {"layer": "Conv2D", "filters": 8, "kernel_size": NAN},
       {"layer": "Flatten"}, {"layer": "Dense", "units": 10}]

CASES = [
    # counts and sizes that are not counts: the parameter, the value, what is allowed
    ("counts", "Dense(units=2.5)", lambda: dd.Dense(2.5), ValueError, "Dense: units must be a positive integer, got 2.5"),
    ("counts", "Dense(units=nan)", lambda: dd.Dense(NAN), ValueError, "units must be a positive integer, got nan"),
    ("counts", "Dense(units=True)", lambda: dd.Dense(True), ValueError, "units must be a positive integer, got True"),
    ("counts", "Dense(units=None)", lambda: dd.Dense(None), ValueError, "units must be a positive integer, got None"),
    ("counts", "Dense(units=inf)", lambda: dd.Dense(INF), ValueError, "got inf"),
    ("counts", "Conv2D(8, kernel_size=2.5)", lambda: dd.Conv2D(8, 2.5), ValueError,
     "kernel_size must be a positive integer, got 2.5"),
    ("counts", "Conv2D(filters=nan)", lambda: dd.Conv2D(NAN), ValueError, "filters must be a positive integer, got nan"),
    ("counts", "Conv2D(8, kernel_size=(3, True))", lambda: dd.Conv2D(8, (3, True)), ValueError, "got True"),
    ("counts", "Conv2D(8, stride=0)", lambda: dd.Conv2D(8, stride=0), ValueError, "stride must be a positive integer"),
    ("counts", "MaxPool2D(pool_size=2.5)", lambda: dd.MaxPool2D(2.5), ValueError, "pool_size must be a positive integer"),
    ("counts", "AvgPool2D(stride=(1, nan))", lambda: dd.AvgPool2D(2, stride=(1, NAN)), ValueError,
     "stride must be a positive integer, got nan"),
    ("counts", "CosineDecay(total_steps=nan)", lambda: dd.CosineDecay(NAN), ValueError,
     "CosineDecay: total_steps must be a positive integer, got nan"),
    ("counts", "StepDecay(step_size=2.5)", lambda: dd.StepDecay(2.5), ValueError, "step_size must be a positive integer"),
    ("counts", "LinearWarmup(warmup_steps=True)", lambda: dd.LinearWarmup(True), ValueError, "got True"),
    ("counts", "set_threads(2.5)", lambda: dd.set_threads(2.5), ValueError,
     "set_threads: the number of threads n must be a positive integer, got 2.5"),
    ("counts", "set_threads(True)", lambda: dd.set_threads(True), ValueError, "got True"),
    ("counts", "set_threads(nan)", lambda: dd.set_threads(NAN), ValueError, "got nan"),
    ("counts", "run settings with a hidden layer of 2.5 units",
     _settings(architecture=[{"layer": "Dense", "units": 2.5}, {"layer": "ReLU"}, {"layer": "Dense", "units": 10}]),
     ValueError, "architecture entry 0 (Dense): Dense: units must be a positive integer, got 2.5"),
    ("counts", "mlp([2.5])", lambda: mlp([2.5]), ValueError, "mlp: hidden width must be a positive integer, got 2.5"),
    ("counts", "run settings with a CNN kernel size of NaN", _settings(architecture=CNN), ValueError,
     "kernel_size must be a positive integer, got nan"),
    ("counts", "run settings with num_epochs=nan", _settings(num_epochs=NAN), ValueError,
     "num_epochs must be a positive integer, got nan"),
    ("counts", "run settings with batch_size=None", _settings(batch_size=None), ValueError, "batch_size"),
    ("counts", "the panel of settings with 50.5 hidden units",
     lambda: dd.experiment_controls({"model_name": "bad", "architecture": [{"layer": "Dense", "units": 50.5},
                                                                           {"layer": "ReLU"}, {"layer": "Dense", "units": 10}]}), ValueError,
     "units must be a positive integer, got 50.5"),
    # schedules
    ("schedules", "CosineDecay(100) asked for step 0", lambda: dd.CosineDecay(100)(0), ValueError,
     "the step t (1, 2, ...) must be a positive integer, got 0"),
    ("schedules", "StepDecay(10) asked for step -3", lambda: dd.StepDecay(10)(-3), ValueError, "got -3"),
    ("schedules", "LinearWarmup(5) asked for step 2.5", lambda: dd.LinearWarmup(5)(2.5), ValueError, "got 2.5"),
    ("schedules", "a schedule that yields NaN", lambda: _step_with_schedule(NAN), ValueError,
     "a rate must be finite and >= 0. No parameter and no optimiser state was changed"),
    ("schedules", "a schedule that yields a negative factor", lambda: _step_with_schedule(-0.5), ValueError,
     "a learning rate of -0.05"),
    ("schedules", "a warm-up of 500 steps in a run of 100",
     lambda: schedule_for_run({"name": "warmup", "warmup_steps": 500}, 100, 10), ValueError,
     "warms up for 500 steps, but the run has only 100"),
    ("schedules", "StepDecay(gamma=nan)", lambda: dd.StepDecay(10, gamma=np.float32("nan")), ValueError,
     "gamma must lie in (0, 1]"),
    # augmentation
    ("augmentation", "Augment(max_shift=28) for 28x28 images", lambda: dd.Augment(max_shift=28), ValueError,
     "must be at most 14 pixels"),
    ("augmentation", "Augment(max_shift=15) for 28x28 images", lambda: dd.Augment(max_shift=15), ValueError,
     "max_shift=15 can move a digit entirely out of a 28x28 image"),
    ("augmentation", "Augment(max_shift=2.5)", lambda: dd.Augment(max_shift=2.5), ValueError,
     "max_shift (pixels) must be a non-negative integer, got 2.5"),
    ("augmentation", "Augment(max_degrees=nan)", lambda: dd.Augment(max_degrees=NAN), ValueError,
     "max_degrees must lie in [0, 45]"),
    ("augmentation", "run settings with a shift of 20 pixels", _settings(augment={"max_shift": 20}), ValueError,
     "run settings 'bad': Augment: max_shift=20"),
    # a damaged run folder
    ("run folder", "run_or_load with a truncated settings.json", _damaged_run("settings.json", '{"model_name": "ti'),
     ValueError, "tiny/settings.json is damaged (truncated or not JSON"),
    ("run folder", "run_or_load with a result.json that is not JSON", _damaged_run("result.json", "<html>oops</html>"),
     ValueError, "tiny/result.json is damaged"),
    ("run folder", "run_or_load with a truncated history.json", _damaged_run("history.json", '{"train": {"loss": [[1, 0.'),
     ValueError, "tiny/history.json is damaged"),
    ("run folder", "run_or_load with an empty timing.json", _damaged_run("timing.json", ""), ValueError,
     "tiny/timing.json is damaged"),
    ("run folder", "run_or_load with a result.json holding a list", _damaged_run("result.json", "[1, 2]"), ValueError,
     "must hold a JSON object"),
    ("run folder", "a runs folder that is a file", _in_folder(_runs_dir_is_a_file), ValueError,
     "it, or a folder above it, is a file"),
    ("run folder", "a disk that fills up during a run", _in_folder(_disk_full), OSError,
     "is full (no space left on device) while writing the run 'tiny'"),
    # silent nonsense at the edges
    ("edges", "Sequential.load of a model whose weights hold NaN", _in_folder(_model_with_nan_weight), ValueError,
     "'params/dense_1/W' hold NaN or inf"),
    ("edges", "an SGD state loaded into Adam", _sgd_state_into_adam, ValueError,
     "saved by the optimiser 'sgd', not by 'adam'"),
    ("edges", "CategoricalCrossEntropy given logits", lambda: dd.CategoricalCrossEntropy()(LOGITS, np.array([0, 1])),
     ValueError, "use SoftmaxCrossEntropy()"),
    ("edges", "CategoricalCrossEntropy given rows that do not sum to 1",
     lambda: dd.CategoricalCrossEntropy()(PROBABILITIES * 0.5, np.array([0, 1])), ValueError, "sum to [0.5, 0.5]"),
    ("edges", "Dense.backward with a NaN upstream gradient", lambda: _dense_backward(np.array([[np.nan, 0], [0, 0]])),
     dd.NonFiniteError, "upstream gradient of shape (2, 2) contains NaN or inf"),
    ("edges", "Dense.backward with an inf upstream gradient", lambda: _dense_backward(np.array([[INF, 0], [0, 1]])),
     dd.NonFiniteError, "grads were not changed"),
    ("edges", "DIYDNN_THREADS=two", _threads_from_environment("two"), ValueError,
     "the environment variable DIYDNN_THREADS must be a positive integer"),
    ("edges", "DIYDNN_THREADS=0", _threads_from_environment("0"), ValueError, "got '0'"),
]
