"""Issue 23 (reliability, round two): what must still WORK next to the refusals of bad_input_cases_round2.py.

Counts accept every whole number (Python or NumPy, 3.0); every run setting takes the NumPy scalars its Python
equivalent takes; a refused step, backward or load changes nothing; the global norm of huge finite gradients is
computed without overflow; a decay longer than the run is warned about; the panel's ranges include the notebook's
values; a damaged run folder leaves the other runs as they were; run_or_load is public.
"""
import json
import shutil
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import diydnn as dd
from bad_input_cases_round2 import TINY, _stored_run, _tiny_data
from diydnn._01_dense import as_count
from diydnn._14_performance import flat_params
from diydnn._10_experiments import check_settings
from diydnn._10a_panels import control_values, experiment_controls, settings_from_controls
from diydnn._11_regularisation import schedule_for_run


# -- counts ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [3, 3.0, np.int8(3), np.int64(3), np.uint16(3), np.float32(3.0), np.float64(3)])
def test_a_count_is_any_whole_number(value):
    n = as_count(value, "units", "Dense")
    assert n == 3 and type(n) is int


@pytest.mark.parametrize("value", [2.5, np.float32(2.5), float("nan"), np.float64("inf"), -1, 0, True, np.bool_(True),
                                   None, "3", [3], 3 + 0j])
def test_a_count_refuses_everything_else_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^Dense: units must be a positive integer, got "):
        as_count(value, "units", "Dense")


def test_the_layers_take_numpy_and_whole_float_counts():
    assert dd.Dense(np.int64(4)).units == 4 and dd.Dense(4.0).units == 4
    conv = dd.Conv2D(np.int32(8), kernel_size=(np.int64(3), 3.0), stride=np.uint8(2))
    assert (conv.filters, conv.kernel_size, conv.stride) == (8, (3, 3), 2)
    assert dd.MaxPool2D(np.int64(2), stride=(1, 2.0)).strides == (1, 2)
    assert dd.CosineDecay(np.int64(10)).total_steps == 10
    assert json.dumps(conv.get_config())                                  # plain ints: the config is JSON


# -- NumPy scalars in the run settings ---------------------------------------------------------------------------
PYTHON = {"num_epochs": 2, "batch_size": 64, "seed": 3, "n_val": 5000, "evals_per_epoch": 2, "train_abs_samples": 1000,
          "lr": 1e-3, "clip_grads_norm": 5.0, "weight_decay": 1e-4, "stop_on_divergence": False,
          "architecture": [{"layer": "Dense", "units": 50}, {"layer": "ReLU"}, {"layer": "Dropout", "rate": 0.25},
                           {"layer": "Dense", "units": 10}],
          "schedule": {"name": "step", "step_size": 100, "gamma": 0.5},
          "augment": {"max_shift": 2, "max_degrees": 10.0}}


def numpy_version(value):
    """The same settings with every number a NumPy scalar of another width."""
    if isinstance(value, dict):
        return {k: numpy_version(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numpy_version(v) for v in value]
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int32(value)
    if isinstance(value, float):
        return np.float32(value) if value in (0.25, 0.5, 10.0, 5.0) else np.float64(value)   # float32 where exact
    return value


@pytest.mark.parametrize("key", sorted(PYTHON))
def test_every_setting_takes_the_numpy_scalars_its_python_equivalent_takes(key):
    python = check_settings({key: PYTHON[key]})
    numpy = check_settings({key: numpy_version(PYTHON[key])})
    assert numpy == python
    assert json.dumps(numpy) == json.dumps(python)                       # settings.json holds plain numbers


def test_check_settings_does_not_change_the_callers_settings_or_the_defaults():
    mine = {"architecture": [{"layer": "Dense", "units": np.int64(5)}, {"layer": "Dense", "units": 3}]}
    check_settings(mine)
    assert type(mine["architecture"][0]["units"]) is np.int64
    assert check_settings({})["architecture"] == dd.mlp([50])


# -- refusals change nothing ---------------------------------------------------------------------------------------
def test_a_refused_scheduled_rate_changes_no_weight_and_no_step_count():
    opt = dd.Adam(lr=0.1)
    opt.schedule = dd.LinearWarmup(2, dd.CosineDecay(3))
    W = np.ones(3)
    opt.step({"W": W}, {"W": np.ones(3)})
    before, slots = W.copy(), {k: v["W"].copy() for k, v in opt.slots.items()}
    opt.schedule.then.final = float("nan")                                 # goes wrong from step 3 on
    opt.schedule.then.total_steps = 1
    opt.step({"W": W}, {"W": np.ones(3)})                                 # step 2: still warming up, fine
    before, slots = W.copy(), {k: v["W"].copy() for k, v in opt.slots.items()}
    with pytest.raises(ValueError, match="at step 3"):
        opt.step({"W": W}, {"W": np.ones(3)})
    assert opt.t == 2 and np.array_equal(W, before)
    assert all(np.array_equal(opt.slots[k]["W"], v) for k, v in slots.items())


def test_a_refused_scheduled_rate_on_the_flat_path_changes_nothing():
    model = dd.Sequential([dd.Dense(3), dd.ReLU(), dd.Dense(2)], n_in=4, rng=np.random.default_rng(0))
    X, y = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2
    opt = dd.Adam(lr=0.1)
    opt.schedule = dd.StepDecay(1, gamma=0.5)
    loss = dd.SoftmaxCrossEntropy()
    loss(model.forward(X, training=True), y)
    model.backward(loss.backward())
    assert opt.step_flat(flat_params(model)) is True
    before = model.state_dict()
    opt.schedule.gamma = -1.0
    with pytest.raises(ValueError, match="a rate must be finite and >= 0"):
        opt.step_flat(flat_params(model))
    assert opt.t == 1 and all(np.array_equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_refused_upstream_gradient_leaves_the_dense_gradients_as_they_were():
    layer = dd.Dense(2, n_in=3, rng=np.random.default_rng(0))
    layer.forward(np.ones((2, 3)))
    layer.backward(np.ones((2, 2)))
    grads = {k: v.copy() for k, v in layer.grads.items()}
    for bad in (np.array([[np.nan, 0], [0, 0]]), np.array([[np.inf, -np.inf], [0, 0]])):
        with pytest.raises(dd.NonFiniteError, match="upstream gradient"):
            layer.backward(bad)
        with pytest.raises(dd.NonFiniteError):
            layer.backward_params(bad)
        assert all(np.array_equal(layer.grads[k], v) for k, v in grads.items())
    layer.backward(np.full((2, 2), 1e38, dtype=np.float32))               # huge but finite: taken


def test_an_optimiser_state_loads_into_the_same_optimiser_and_old_states_still_load():
    adam = dd.Adam(lr=0.1)
    adam.step({"W": np.ones(2)}, {"W": np.ones(2)})
    other = dd.Adam(lr=0.1)
    other.load_state_dict(adam.state_dict())
    assert other.t == 1 and np.array_equal(other.slots["m"]["W"], adam.slots["m"]["W"])
    old = {k: v for k, v in adam.state_dict().items() if k != "optimizer"}   # written before the name was stored
    dd.Adam(lr=0.1).load_state_dict(old)
    with pytest.raises(ValueError, match="saved by the optimiser 'adam', not by 'adamw'"):
        dd.AdamW(lr=0.1).load_state_dict(adam.state_dict())


def test_categorical_cross_entropy_takes_float32_softmax_rows_of_many_classes():
    Z = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32) * 5
    P = dd.Softmax().forward(Z)
    assert np.isfinite(dd.CategoricalCrossEntropy()(P, np.arange(64)))


# -- the global norm of huge finite gradients ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e160, 1e200, 1e300])
def test_the_global_norm_of_huge_finite_gradients_does_not_overflow(scale):
    rng = np.random.default_rng(0)
    small = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    expected = dd.global_norm(small) * scale
    huge = {k: v * scale for k, v in small.items()}
    assert dd.global_norm(huge) == pytest.approx(expected, rel=1e-12)
    norm = dd.clip_by_global_norm(huge, 5.0)
    assert norm == pytest.approx(expected, rel=1e-12)
    assert dd.global_norm(huge) == pytest.approx(5.0, rel=1e-12)
    for k in small:                                                       # the direction is kept
        np.testing.assert_allclose(huge[k], small[k] * 5.0 / dd.global_norm(small), rtol=1e-12)


def test_clipping_gradients_whose_norm_exceeds_the_largest_float():
    grads = {"a": np.full(100, 1e308)}                                    # norm 1e309: not a float64
    assert dd.clip_by_global_norm(grads, 5.0) == float("inf")
    assert dd.global_norm(grads) == pytest.approx(5.0) and np.allclose(grads["a"], 0.5)


# -- schedules that do not fit the run ----------------------------------------------------------------------------
def test_a_decay_longer_than_the_run_is_warned_about_and_a_fitting_one_is_not():
    with pytest.warns(UserWarning, match="does not fit in the run's 100 steps"):
        schedule_for_run({"name": "cosine", "total_steps": 1000}, 100, 10)
    with pytest.warns(UserWarning, match="after 10 warm-up steps"):
        schedule_for_run({"name": "warmup", "warmup_steps": 10, "then": {"name": "cosine", "total_steps": 95}}, 100, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schedule_for_run({"name": "cosine", "total_steps": 90}, 100, 10)
        schedule_for_run({"name": "warmup", "warmup_steps": 10, "then": {"name": "cosine", "total_steps": 80}}, 100, 10)
        for name in ("cosine", "step", "warmup_cosine"):
            schedule_for_run(name, 100, 10)
            schedule_for_run(name, 3, 10)                                 # even a run shorter than an epoch


# -- the panel's ranges --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("more", [{"augment": {"max_shift": 6}}, {"num_epochs": 45}, {"lr": 0.07, "batch_size": 100},
                                  {"augment": {"max_shift": 14, "max_degrees": 20.0}}])
def test_the_untouched_panel_trains_exactly_the_notebooks_settings(more):
    pytest.importorskip("ipywidgets")
    defaults = check_settings({"model_name": "wide", **more})
    panel = experiment_controls(defaults, run=lambda s, callbacks: None)
    assert panel.values() == control_values(defaults)                     # no control clipped its start value
    assert settings_from_controls(defaults, panel.values()) == defaults


# -- a damaged run folder: the other runs stay as they were ---------------------------------------------------------
def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_a_damaged_run_leaves_every_other_run_intact(tmp_path):
    shutil.copytree(_stored_run(), tmp_path / "tiny")
    shutil.copytree(_stored_run(), tmp_path / "other")
    (tmp_path / "tiny" / "result.json").write_text('{"test_accuracy": 0.9')
    before = snapshot(tmp_path)
    with mock.patch("diydnn._10_experiments.quick_mode", return_value=False):
        with pytest.raises(ValueError, match="tiny/result.json is damaged"):
            dd.run_or_load(TINY, runs_dir=tmp_path, data=_tiny_data())
    with pytest.raises(ValueError, match="tiny/result.json is damaged"):
        dd.load_runs(tmp_path)
    assert snapshot(tmp_path) == before                                   # nothing removed, nothing rewritten


def test_run_or_load_loads_an_intact_stored_run(tmp_path):
    shutil.copytree(_stored_run(), tmp_path / "tiny")
    with mock.patch("diydnn._10_experiments.quick_mode", return_value=False):
        run = dd.run_or_load(TINY, runs_dir=tmp_path, data=_tiny_data())
    assert run["loaded"] is True and isinstance(run["history"], dd.History) and run["steps"] > 0


def test_run_or_load_is_public_and_documented():
    from diydnn._10_experiments import run_or_load
    assert dd.run_or_load is run_or_load
    root = Path(__file__).resolve().parent.parent
    row = [line for line in (root / "README.md").read_text().splitlines() if "notebooks/10_experiments.ipynb" in line][0]
    assert "`run_or_load`" in row                                          # the course table's row of chapter 10
    assert "`run_or_load`" in (root / "diydnn" / "_10_experiments.py").read_text().split("## Summary")[1]
