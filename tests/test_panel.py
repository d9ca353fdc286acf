"""The experiment panel's promises, in Python (tests/browser/test_learner.py checks them in a real browser):
untouched controls give exactly the notebook's settings; Train never replaces a stored run and names the folder
it writes; a failed redraw never ends a run; the curves never use matplotlib's (thread-unsafe) mathtext parser.
"""
import threading

import numpy as np
import pytest

from diydnn._10_experiments import (LivePlot, check_settings, cnn, experiment_controls, free_run_name, mlp,
                                    panel_run_name, run_experiment, settings_from_controls)

w = pytest.importorskip("ipywidgets")

# the panels' defaults in the experiment notebooks (01: exploding run, 02: full data, 03: BatchNorm, 04: widest
# MLP, 06: the bug) and awkward values that lie on no round grid
NOTEBOOK_DEFAULTS = [
    {"model_name": "clip_random_sgd", "architecture": mlp([50]), "train_abs_samples": 100, "batch_size": 100,
     "num_epochs": 100, "init": "random", "optimizer": "sgd", "lr": 3.0, "clip_grads_norm": None},
    {"model_name": "clip_random_sgd_c5", "architecture": mlp([50]), "train_abs_samples": 100, "batch_size": 100,
     "num_epochs": 100, "init": "random", "optimizer": "sgd", "lr": 3.0, "clip_grads_norm": 5.0},
    {"model_name": "full_random_sgd", "architecture": mlp([50]), "train_abs_samples": None, "num_epochs": 10,
     "batch_size": 128, "evals_per_epoch": 2, "init": "random", "optimizer": "sgd", "lr": 3.0},
    {"model_name": "bn_he_adam_with_bn", "architecture": mlp([50], batchnorm=True), "num_epochs": 10},
    {"model_name": "arch_512_512", "architecture": mlp([512, 512]), "num_epochs": 15},
    {"model_name": "bug_faulty", "architecture": mlp([50]), "num_epochs": 2, "lr": 0.1, "batch_size": 32,
     "optimizer": "sgd", "evals_per_epoch": 8, "stop_on_divergence": False},
    {"model_name": "odd", "architecture": mlp([256, 128]), "lr": 7e-4, "clip_grads_norm": 3.3, "batch_size": 100,
     "train_abs_samples": 777, "num_epochs": 45, "init": "glorot", "optimizer": "adamw"},
    {"model_name": "odd_bn", "architecture": mlp([37, 37], batchnorm=True), "lr": 0.0123, "n_val": 1000},
    {"model_name": "reg", "architecture": mlp([100, 100], dropout=0.15), "weight_decay": 5e-4, "schedule": "cosine",
     "augment": {"max_shift": 2}, "lr": 3e-3, "num_epochs": 4},
    {"model_name": "cnn", "architecture": cnn([6, 12], kernel_size=5, pooling="avg", dense=64, batchnorm=True),
     "lr": 2e-3, "num_epochs": 3},
]


from test_experiments import tiny_data  # noqa: E402  (one toy problem for the toolkit's tests)


def tiny_run(runs_dir):
    return lambda settings, callbacks: run_experiment(settings, runs_dir=runs_dir, data=tiny_data(), callbacks=callbacks,
                                                      progress=False, verbose=False)


@pytest.mark.parametrize("defaults", NOTEBOOK_DEFAULTS, ids=lambda d: d["model_name"])
def test_untouched_controls_hold_exactly_the_defaults(defaults, tmp_path):
    panel = experiment_controls(defaults, runs_dir=tmp_path)
    expected = check_settings(defaults)
    assert settings_from_controls(defaults, panel.values()) == expected
    assert panel.controls["lr"].value == expected["lr"] and type(panel.controls["lr"].value) is type(expected["lr"])
    # a browser only sends the index of the chosen option; the index of the untouched slider gives back the value
    for name in ("lr", "clip", "hidden_units", "filters"):
        if name not in panel.controls:
            continue
        slider = panel.controls[name]
        assert slider.options[slider.index][1] == slider.value
    assert "the notebook's settings" in panel.changes.value
    assert "Run All" in repr(panel)          # what a page without a live kernel shows instead of the widgets


def test_the_old_log_slider_grid_could_not_hold_the_defaults():
    """Why SelectionSlider: 10**(k/4) (FloatLogSlider, step 0.25) misses lr 3 and clip 5 (3.162, 5.012)."""
    grid = 10 ** (np.arange(-20, 5) * 0.25)
    assert not np.isclose(grid, 3.0, rtol=1e-9, atol=0).any() and not np.isclose(grid, 5.0, rtol=1e-9, atol=0).any()


def test_moved_controls_are_named_in_the_run_and_the_diff_line(tmp_path):
    panel = experiment_controls(NOTEBOOK_DEFAULTS[0], runs_dir=tmp_path)
    panel.controls["lr"].value = 0.3
    panel.controls["num_epochs"].value = 1
    assert "lr 3 → 0.3" in panel.changes.value and "num_epochs 100 → 1" in panel.changes.value
    settings = settings_from_controls(NOTEBOOK_DEFAULTS[0], panel.values())
    assert panel_run_name(NOTEBOOK_DEFAULTS[0], settings) == "clip_random_sgd-lr0.3-ep1"
    assert settings["lr"] == 0.3 and settings["num_epochs"] == 1


def test_a_cnn_panel_rebuilds_the_architecture_only_when_a_knob_moves(tmp_path):
    defaults = NOTEBOOK_DEFAULTS[-1]
    panel = experiment_controls(defaults, runs_dir=tmp_path)
    assert "hidden_units" not in panel.controls and panel.controls["filters"].value == 6
    panel.controls["filters"].value = 8
    settings = settings_from_controls(defaults, panel.values())
    assert settings["architecture"] == cnn([8, 16], kernel_size=5, pooling="avg", dense=64, batchnorm=True)
    assert panel_run_name(defaults, settings) == "cnn-f8k5avgbn"
    # the dropout slider reaches a CNN too: Dropout before the classifier, and the run name says so
    panel.controls["dropout"].value = 0.3
    settings = settings_from_controls(defaults, panel.values())
    assert settings["architecture"] == cnn([8, 16], kernel_size=5, pooling="avg", dense=64, batchnorm=True, dropout=0.3)
    assert [e["layer"] for e in settings["architecture"]][-2:] == ["Dropout", "Dense"]
    assert panel_run_name(defaults, settings) == "cnn-f8k5avgbndo0.3"


def test_train_never_replaces_a_stored_run(tmp_path):
    defaults = {"model_name": "stored", "architecture": mlp([8], n_classes=3), "batch_size": 32, "num_epochs": 2}
    stored = run_experiment(defaults, runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "stored").iterdir()}
    panel = experiment_controls(defaults, run=tiny_run(tmp_path), runs_dir=tmp_path)
    panel.button.click()                                  # untouched: same settings, a new folder
    panel.controls["lr"].value = 0.01
    panel.button.click()
    panel.button.click()                                  # the same change again: -2
    names = [r["model_name"] for r in panel.results]
    assert names == ["stored-again", "stored-lr0.01", "stored-lr0.01-2"], names
    assert {p.name: p.read_bytes() for p in (tmp_path / "stored").iterdir()} == before
    assert panel.results[0]["test_accuracy"] == stored["test_accuracy"]      # untouched = the stored run's settings
    assert "stored-lr0.01-2" in panel.heading.value and panel.plots[-1].title.endswith("stored-lr0.01-2")
    assert "test accuracy" in panel.result_line.value
    assert free_run_name("stored", tmp_path) == "stored-2" and free_run_name("new", tmp_path) == "new"


def test_a_failing_redraw_never_ends_a_run(tmp_path):
    class Broken(LivePlot):
        def render(self, history):
            raise ValueError(r"Unknown symbol: \mathdefault, found '$'  (a simulated parser collision)")

    panel = experiment_controls({"model_name": "r", "architecture": mlp([8], n_classes=3), "batch_size": 32},
                                runs_dir=tmp_path,
                                run=lambda s, callbacks: tiny_run(tmp_path)(s, [Broken(callbacks[0].image, every=1,
                                                                                       min_seconds=0, status=panel.status)]))
    panel.button.click()
    result = panel.results[-1]
    assert result["steps"] == 10 and (tmp_path / result["model_name"] / "result.json").exists()
    assert "test accuracy" in panel.result_line.value and "redraw(s) of the curves failed" in panel.status.value


def test_curves_never_call_the_mathtext_parser(tmp_path, monkeypatch):
    import matplotlib.mathtext
    history = run_experiment({"model_name": "m", "architecture": mlp([8], n_classes=3), "batch_size": 32},
                             runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)["history"]

    def forbidden(*args, **kwargs):
        raise AssertionError("mathtext parser called")
    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse", forbidden)
    assert LivePlot().render(history)[:4] == b"\x89PNG"


def test_redraws_from_several_threads_at_once_never_fail(tmp_path):
    """What a kernel with widget messages on a subshell thread does: redraw while other threads draw too."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    history = run_experiment({"model_name": "t", "architecture": mlp([8], n_classes=3), "batch_size": 32},
                             runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)["history"]
    plots, errors = [LivePlot() for _ in range(3)], []

    class FakeLoop:
        pass
    loop = FakeLoop()
    loop.history = history

    def redraw_many(plot):
        for _ in range(5):
            plot.redraw(loop, wait=True)

    def other_drawing():                 # a notebook cell drawing log axes (mathtext tick labels) meanwhile
        try:
            for _ in range(5):
                fig = Figure()
                fig.subplots().semilogy([1, 10, 100])
                fig.canvas.draw()
        except Exception as e:          # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=redraw_many, args=(p,)) for p in plots] + [threading.Thread(target=other_drawing)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.draws == 5 and not p.failures for p in plots), [p.failures for p in plots]
