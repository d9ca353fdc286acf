"""Chapter 10: the experiment toolkit — settings, run folders, results tables, controls."""
import json

import numpy as np
import pytest

import diydnn as dd
from diydnn._10_experiments import (build_model, check_settings, describe_mlp, load_model, load_runs, mlp,
                                    results_table, run_experiment, to_csv, to_markdown)
from diydnn._10a_panels import LivePlot, experiment_controls, settings_from_controls


def tiny_data(seed=0):
    """A 3-class problem with 20 features, split train/val/test like mnist_splits."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 20)) * 2
    def draw(m):
        y = rng.integers(0, 3, m)
        return (centres[y] + rng.standard_normal((m, 20))).astype(np.float32), y
    return draw(300), draw(100), draw(100)


def test_check_settings_fills_defaults_and_refuses_typos():
    s = check_settings({"model_name": "a", "num_epochs": 3})
    assert s["num_epochs"] == 3 and s["optimizer"] == "adam" and s["clip_grads_norm"] is None
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['num_epoch'\]"):
        check_settings({"num_epoch": 3})
    for bad, message in [({"lr": 0}, "lr must be positive"), ({"batch_size": 0}, "batch_size"),
                         ({"clip_grads_norm": -1}, "clip_grads_norm"), ({"model_name": "../x"}, "folder-safe"),
                         ({"train_abs_samples": 0}, "train_abs_samples"), ({"architecture": []}, "architecture")]:
        with pytest.raises(ValueError, match=message):
            check_settings(bad)


def test_mlp_and_describe_round_trip():
    for hidden, bn in [([50], False), ([100, 50], True)]:
        assert describe_mlp(mlp(hidden, batchnorm=bn)) == (hidden, bn)
    model = build_model({"architecture": mlp([7], batchnorm=True), "init": "glorot"}, n_in=5, rng=np.random.default_rng(0))
    assert [type(l).__name__ for l in model.layers] == ["Dense", "BatchNorm", "ReLU", "Dense"]
    assert model.get_config()[0]["init"] == "glorot"


def test_run_experiment_writes_a_complete_run_folder(tmp_path):
    data = tiny_data()
    result = run_experiment({"model_name": "t1", "architecture": mlp([16], n_classes=3), "num_epochs": 4,
                             "batch_size": 32, "evals_per_epoch": 2, "lr": 1e-2}, runs_dir=tmp_path, data=data,
                            progress=False, verbose=False)
    folder = tmp_path / "t1"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_best.npz", "checkpoint_last.npz", "history.json",
                                                         "result.json", "settings.json"]
    assert result["steps"] == 4 * 10 and result["test_accuracy"] > 0.9 and not result["diverged"]
    # the test accuracy is that of the checkpoint chosen by validation
    best = load_model(folder)
    (_, _), (_, _), (X_test, y_test) = data
    assert dd.accuracy(best.predict(X_test), y_test) == pytest.approx(result["test_accuracy"])
    assert json.loads((folder / "settings.json").read_text())["model_name"] == "t1"


def test_test_accuracy_in_one_pass_equals_evaluate_and_the_checkpoint_is_reused_only_when_equal(tmp_path):
    """A run's test accuracies come from one forward pass per batch (accuracy and which samples are right together),
    equal to EvalTask.evaluate to the bit, uneven last batch included; the checkpoint's result is the final weights'
    own when it holds exactly those weights, and evaluated (the model's weights put back) when it does not."""
    from diydnn._10_experiments import _accuracy_and_correct, _checkpoint_accuracy
    data = tiny_data()
    run_experiment({"model_name": "t", "architecture": mlp([16], n_classes=3), "num_epochs": 2, "batch_size": 32,
                    "lr": 1e-2}, runs_dir=tmp_path, data=data, progress=False, verbose=False)
    X, y = np.concatenate([data[1][0], data[2][0]]), np.concatenate([data[1][1], data[2][1]])   # 200 samples
    task = dd.EvalTask((X, y), batch_size=64)                                                    # 64, 64, 64, 8
    model, path = load_model(tmp_path / "t"), tmp_path / "t" / "checkpoint_best.npz"
    final = _accuracy_and_correct(model, task)
    assert final[0] == task.evaluate(model)["accuracy"]                                           # to the bit
    assert np.array_equal(final[1], model.predict(X).argmax(axis=1) == y) and 0 < final[1].mean() < 1
    assert _checkpoint_accuracy(model, path, task, final) is final        # the same weights: no second pass
    W = model.params["dense_0/W"]
    W[...] = np.random.default_rng(1).standard_normal(W.shape)            # now the model's weights differ
    moved = _accuracy_and_correct(model, task)
    assert not np.array_equal(moved[1], final[1])
    again = _checkpoint_accuracy(model, path, task, moved)
    assert again is not moved and again[0] == final[0] and np.array_equal(again[1], final[1])
    assert _accuracy_and_correct(model, task)[0] == moved[0]              # the model's own weights are back


def test_train_abs_samples_limits_training_data(tmp_path):
    result = run_experiment({"model_name": "t2", "architecture": mlp([8], n_classes=3), "train_abs_samples": 50,
                             "batch_size": 16}, runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)
    assert result["train_samples"] == 50 and result["steps"] == 4


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # the explosion is the point
def test_a_diverging_run_is_stopped_and_reported(tmp_path):
    result = run_experiment({"model_name": "boom", "architecture": mlp([16], n_classes=3), "init": "random",
                             "optimizer": "sgd", "lr": 50.0, "num_epochs": 20, "batch_size": 32},
                            runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)
    assert result["diverged"] and "diverged" in result["stop_reason"] and result["steps"] < 200


def test_load_runs_and_tables(tmp_path):
    for name in ("b", "a"):
        run_experiment({"model_name": name, "architecture": mlp([8], n_classes=3), "batch_size": 64},
                       runs_dir=tmp_path, data=tiny_data(), progress=False, verbose=False)
    (tmp_path / "incomplete").mkdir()          # a folder without result.json is skipped
    runs = load_runs(tmp_path)
    assert [r["model_name"] for r in runs] == ["a", "b"]
    assert runs[0]["history"].last("train", "loss") == runs[0]["final_train_loss"]
    rows = results_table(runs, columns=("model_name", "test_accuracy"))
    md, csv = to_markdown(rows), to_csv(rows)
    assert md.splitlines()[0] == "| model_name | test_accuracy |" and len(md.splitlines()) == 4
    assert csv.splitlines()[1].startswith("a,") and len(csv.splitlines()) == 3


def test_controls_build_settings_and_train_on_click(tmp_path):
    pytest.importorskip("ipywidgets")
    calls = []

    def fake_run(settings, callbacks):
        calls.append((settings, callbacks))
        return {"test_accuracy": 0.5, "steps": 1, "seconds": 0.1}

    defaults = {"model_name": "panel", "architecture": mlp([50, 50]), "train_abs_samples": 1000}
    panel = experiment_controls(defaults, run=fake_run, runs_dir=tmp_path)
    controls = {c.description: c for c in panel.controls.values()}
    controls["hidden units"].value = 25
    controls["BatchNorm"].value = True
    controls["clip-norm"].value = True
    controls["learning rate"].value = 1e-2
    panel.button.click()
    assert panel.wait(10) and len(calls) == 1
    settings, callbacks = calls[0]
    assert settings["architecture"] == mlp([25, 25], batchnorm=True) and settings["model_name"] != "panel"
    assert settings["clip_grads_norm"] == 5.0 and settings["lr"] == pytest.approx(1e-2)
    assert settings["train_abs_samples"] == 1000 and isinstance(callbacks[-1], LivePlot)


def test_settings_from_controls_refuses_bad_values():
    defaults = check_settings({"architecture": mlp([50])})
    values = {"hidden_units": 10, "batchnorm": False, "lr": -1.0, "batch_size": 32, "train_abs_samples": 100,
              "num_epochs": 1, "init": "he", "optimizer": "adam", "clip": 5.0, "clip_on": False}
    with pytest.raises(ValueError, match="lr must be positive"):
        settings_from_controls(defaults, values)


def test_live_plot_draws_into_an_image(tmp_path):
    w = pytest.importorskip("ipywidgets")
    plot = LivePlot(w.Image(format="png"), every=5, min_seconds=0)
    run_experiment({"model_name": "lp", "architecture": mlp([8], n_classes=3), "batch_size": 32, "num_epochs": 2},
                   runs_dir=tmp_path, data=tiny_data(), callbacks=[plot], progress=False, verbose=False)
    # every 5 steps of 20, and once at the end
    assert plot.draws == 5 and not plot.failures and plot.image.value[:4] == b"\x89PNG"


def test_run_experiment_with_a_custom_model_and_loss(tmp_path):
    """make_model/loss: a model ending in Softmax, trained with the cross-entropy on probabilities."""
    made = []

    def make_model(settings, rng):
        model = dd.Sequential([dd.Dense(16), dd.ReLU(), dd.Dense(3), dd.Softmax()], n_in=20, rng=rng)
        made.append(model)
        return model

    data = tiny_data()
    result = run_experiment({"model_name": "custom", "architecture": [{"layer": "MyNet"}], "lr": 1e-2,
                             "num_epochs": 3, "batch_size": 32}, runs_dir=tmp_path, data=data,
                            make_model=make_model, loss=dd.CategoricalCrossEntropy(), progress=False, verbose=False)
    assert made and result["model"] is made[0] and result["test_accuracy"] > 0.9
    # the model keeps its final weights; the reported test accuracy is the best checkpoint's
    (_, _), (_, _), (X_test, y_test) = data
    assert dd.accuracy(result["model"].predict(X_test), y_test) == pytest.approx(result["test_accuracy_final"])
    assert json.loads((tmp_path / "custom" / "settings.json").read_text())["architecture"] == [{"layer": "MyNet"}]
