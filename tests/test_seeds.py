"""Chapter 10's three-seed helpers: interval95 (Student-t interval) and run_or_load (reuse only matching runs)."""
import json

import numpy as np
import pytest

from diydnn._10_experiments import interval95, mlp, run_or_load
from test_experiments import tiny_data


def test_interval95_is_the_student_t_interval_and_covers_95_percent():
    lo, hi = interval95([0.97, 0.98, 0.99])
    assert np.isclose((lo + hi) / 2, 0.98) and np.isclose(hi - 0.98, 4.302652729911275 * 0.01 / np.sqrt(3))
    rng = np.random.default_rng(0)
    for n in (2, 3, 5):
        draws = rng.normal(1.0, 0.1, size=(20000, n))
        covered = np.mean([lo <= 1.0 <= hi for lo, hi in map(interval95, draws)])
        assert abs(covered - 0.95) < 0.01, (n, covered)


@pytest.mark.parametrize("bad", [[0.9], [0.9] * 8, [0.9, np.nan, 0.8], [[0.9, 0.8]]])
def test_interval95_refuses_what_it_cannot_do(bad):
    with pytest.raises(ValueError, match="interval95"):
        interval95(bad)


def test_run_or_load_reuses_only_a_run_with_equal_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)          # reuse is off in quick mode
    data = tiny_data()
    s = {"model_name": "r", "architecture": mlp([8], n_classes=3), "num_epochs": 2, "batch_size": 32, "lr": 1e-2}
    first = run_or_load(s, runs_dir=tmp_path, data=data)
    again = run_or_load(s, runs_dir=tmp_path, data=data)
    assert not first["loaded"] and again["loaded"] and again["test_accuracy"] == first["test_accuracy"]
    X = data[2][0]
    assert np.array_equal(again["model"].predict(X), first["model"].predict(X))          # the final weights
    assert again["history"].steps_values("train", "loss")[1].tolist() == \
        first["history"].steps_values("train", "loss")[1].tolist()
    # what the run cost is recorded beside it, and a loaded run reports it as recorded
    timing = json.loads((tmp_path / "r" / "timing.json").read_text())
    assert timing["cpu_seconds"] > 0 and timing["peak_rss_mb"] > 10
    assert (again["cpu_seconds"], again["peak_rss_mb"]) == (first["cpu_seconds"], first["peak_rss_mb"])
    changed = run_or_load(dict(s, lr=2e-2), runs_dir=tmp_path, data=data)                # other settings: retrain
    assert not changed["loaded"] and json.loads((tmp_path / "r" / "settings.json").read_text())["lr"] == 2e-2
    monkeypatch.setenv("DIYDNN_QUICK", "1")
    assert not run_or_load(dict(s, lr=2e-2), runs_dir=tmp_path, data=data)["loaded"]    # the tests always train
