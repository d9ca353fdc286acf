"""The experiment panel's promises, in Python (tests/browser/test_learner.py checks them in a real browser):
untouched controls give exactly the notebook's settings; Train never replaces a stored run and names the folder
it writes; a failed redraw never ends a run; the curves never use matplotlib's (thread-unsafe) mathtext parser.
"""
import json
import threading

import numpy as np
import pytest

from diydnn._10_experiments import check_settings, cnn, free_run_name, mlp, run_experiment
from diydnn._10a_panels import LivePlot, experiment_controls, panel_run_name, settings_from_controls

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
    assert panel.wait(60)
    panel.controls["lr"].value = 0.01
    panel.button.click()
    assert panel.wait(60)
    panel.button.click()                                  # the same change again: -2
    assert panel.wait(60)
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
                                run=lambda s, callbacks: tiny_run(tmp_path)(s, [Broken(callbacks[-1].image, every=1,
                                                                                       min_seconds=0, status=panel.status)]))
    panel.button.click()
    assert panel.wait(60)
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


# -- training in the background, Stop, the reference (chapter 10a) ------------------------------------------------
from diydnn._09_training import Callback, load_checkpoint  # noqa: E402
from diydnn._10a_panels import (STOPPED_BY_LEARNER, _run_flops, compare_with_reference, estimate_seconds,  # noqa: E402
                                preview_settings)

SLOW = {"model_name": "slow", "architecture": mlp([8], n_classes=3), "batch_size": 16, "num_epochs": 30,
        "evals_per_epoch": 2}


class StopAt(Callback):
    """Presses the panel's Stop when the run reaches a given step (as a learner could, at any moment)."""

    def __init__(self, panel, step):
        self.panel, self.step = panel, step

    def on_step_end(self, loop, step, logs):
        if step == self.step:
            self.panel.stop()


@pytest.mark.parametrize("stop_step", [1, 2, 7, 19, 20, 37])
def test_stop_at_any_step_leaves_a_valid_marked_folder(tmp_path, stop_step):
    panel = experiment_controls(SLOW, runs_dir=tmp_path,
                                run=lambda s, callbacks: run_experiment(s, runs_dir=tmp_path, data=tiny_data(),
                                                                        callbacks=[*callbacks, StopAt(panel, stop_step)],
                                                                        progress=False, verbose=False))
    assert panel.train() is not None and panel.wait(60)
    result = panel.results[-1]
    folder = tmp_path / result["model_name"]
    # the StopOnRequest callback sees the event at the end of the step where Stop was pressed, or the next one
    assert result["steps"] in (stop_step, stop_step + 1) and result["stop_reason"].startswith(STOPPED_BY_LEARNER)
    assert json.loads((folder / "result.json").read_text())["stop_reason"] == result["stop_reason"]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_best.npz", "checkpoint_last.npz", "history.json",
                                                        "result.json", "settings.json"]
    arrays, meta = load_checkpoint(folder / "checkpoint_best.npz")
    assert arrays and np.isfinite(result["test_accuracy"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]       # no half-written folder left
    assert "partial run" in panel.result_line.value and not panel.button.disabled


def test_stop_before_the_first_step_keeps_no_folder(tmp_path):
    def run(s, callbacks):
        panel.stop()                                      # pressed while the data is still being prepared
        return run_experiment(s, runs_dir=tmp_path, data=tiny_data(), callbacks=callbacks, progress=False,
                              verbose=False)
    panel = experiment_controls(SLOW, runs_dir=tmp_path, run=run)
    panel.train()
    assert panel.wait(60) and not panel.results
    assert list(tmp_path.iterdir()) == [] and "nothing trained" in panel.result_line.value


def test_two_presses_never_run_two_trainings(tmp_path):
    running, most = [], []
    gate = threading.Event()

    def run(s, callbacks):
        running.append(s["model_name"])
        most.append(len(running))
        gate.wait(10)
        running.remove(s["model_name"])
        return {"test_accuracy": 0.5, "steps": 1, "seconds": 0.1, "settings": s, "model_name": s["model_name"]}
    panel = experiment_controls(SLOW, runs_dir=tmp_path, run=run)
    presses = [threading.Thread(target=panel.train) for _ in range(8)]       # from several threads at once
    for t in presses:
        t.start()
    for t in presses:
        t.join()
    assert panel.train() is None and "already running" in panel.status.value
    gate.set()
    assert panel.wait(10)
    assert most == [1] and len(panel.results) == 1
    assert panel.train() is not None and panel.wait(10) and len(panel.results) == 2     # free again once it ended


def test_train_returns_at_once_and_the_result_is_set_against_the_reference(tmp_path):
    data = tiny_data()
    reference = [run_experiment(dict(SLOW, num_epochs=2, model_name=f"ref_seed{seed}", seed=seed), runs_dir=tmp_path,
                                data=data, progress=False, verbose=False) for seed in (0, 1, 2)]
    defaults = dict(SLOW, num_epochs=2, model_name="ref_seed0")
    panel = experiment_controls(defaults, runs_dir=tmp_path, reference=reference,
                                run=lambda s, cb: run_experiment(s, runs_dir=tmp_path, data=data, callbacks=cb,
                                                                 progress=False, verbose=False))
    assert panel.image.value[:4] == b"\x89PNG"          # the reference curves before any Train: never a broken image
    assert "about" in panel.changes.value                # the cost, before pressing
    panel.controls["seed"].value = 1
    assert panel.train() is not None and panel.wait(60)
    assert "only the seed changed: the difference is seed noise" in panel.result_line.value
    assert panel.results[-1]["test_accuracy"] == reference[1]["test_accuracy"]     # the same run as the reference's
    panel.controls["seed"].value = 0
    panel.controls["lr"].value = 0.1
    assert panel.train() is not None and panel.wait(60)
    assert "vs reference" in panel.result_line.value and "3-seed interval" in panel.result_line.value


def test_compare_with_reference_inside_above_below():
    ref = [{"test_accuracy": a, "model_name": f"r{i}", "settings": check_settings({"seed": i, "lr": 1e-3})}
           for i, a in enumerate((0.979, 0.98, 0.981))]
    defaults = check_settings({"seed": 0, "lr": 1e-3})
    new = lambda acc, **kw: {"test_accuracy": acc, "settings": check_settings({"seed": 0, "lr": 3e-3, **kw})}  # noqa: E731
    assert "within seed noise" in compare_with_reference(new(0.981), defaults, ref)
    assert "above the reference recipe's seed noise" in compare_with_reference(new(0.9999), defaults, ref)
    assert "below the reference recipe's seed noise" in compare_with_reference(new(0.5), defaults, ref)
    assert "+0.20 points" in compare_with_reference(new(0.981), defaults, ref)
    assert "preview" in compare_with_reference(new(0.9), defaults, ref, preview=True)


def test_cost_estimate_scales_with_flops_samples_and_evaluations():
    ref = {"seconds": 100.0, "settings": check_settings({"architecture": mlp([100]), "train_abs_samples": 10000,
                                                          "num_epochs": 2})}
    # per sample: a step costs 2*(2*784*100 + 3*100*10) FLOPs (no dX for the first layer), a forward pass
    # 2*(784*100 + 100*10); the validation set (5,000) is evaluated once an epoch and the test set (10,000) once
    # (the last weights; a second pass only when validation chose an earlier step)
    step, forward = 2 * (2 * 784 * 100 + 3 * 100 * 10), 2 * (784 * 100 + 100 * 10)

    def by_hand(samples, epochs):
        return step * samples * epochs + forward * (5000 * epochs + 10000)
    base = by_hand(10000, 2)
    twice = dict(ref["settings"], num_epochs=4)
    assert estimate_seconds(twice, ref) == pytest.approx(100.0 * by_hand(10000, 4) / base)
    assert estimate_seconds(dict(ref["settings"], train_abs_samples=5000), ref) == pytest.approx(
        100.0 * by_hand(5000, 2) / base)
    assert 100.0 < estimate_seconds(twice, ref) < 200.0      # the test set's evaluation does not grow with epochs
    wide = estimate_seconds(dict(ref["settings"], architecture=mlp([200])), ref)
    assert wide == pytest.approx(200.0, rel=0.01)       # 784*200 + 200*10 vs 784*100 + 100*10: about twice
    # a panel's small run of a CNN: its evaluations (15,000 forward passes, each a third of a training step's products
    # but for the first layer's missing dX) cost about as much as its training on 5,000 samples
    training, evaluations = _run_flops(dict(ref["settings"], architecture=cnn(), num_epochs=1, train_abs_samples=5000))
    assert 0.8 < evaluations / training < 1.25
    p = preview_settings(ref["settings"])
    assert p["train_abs_samples"] == 1000 and p["num_epochs"] == 1


def test_slider_readouts_cannot_be_typed_into(tmp_path):
    panel = experiment_controls(NOTEBOOK_DEFAULTS[1], runs_dir=tmp_path)
    sliders = [c for c in panel.controls.values() if isinstance(c, (w.SelectionSlider, w.IntSlider))]
    assert sliders and all(not c.readout for c in sliders)
    labels = {box.children[0].description: box.children[1].value for box in panel.children
              if isinstance(box, w.HBox) and len(box.children) == 2 and isinstance(box.children[1], w.Label)}
    assert labels["clip threshold c"] == "5" and labels["learning rate"] == "3"
    panel.controls["clip"].value = 1.0
    labels = {box.children[0].description: box.children[1].value for box in panel.children
              if isinstance(box, w.HBox) and len(box.children) == 2 and isinstance(box.children[1], w.Label)}
    assert labels["clip threshold c"] == "1"
