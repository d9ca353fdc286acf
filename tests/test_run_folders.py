"""Chapter 10: runs are never lost or mixed — validation before the disk, refusal, atomic overwrite, the lock."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diydnn._10_experiments import (RunExistsError, RunLock, RunLockedError, check_settings, free_run_name, load_runs,
                                    mlp, run_experiment)

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"progress": False, "verbose": False}


def tiny_data(seed=0, m=300, n_features=20):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, n_features)) * 2

    def draw(k):
        y = rng.integers(0, 3, k)
        return (centres[y] + rng.standard_normal((k, n_features))).astype(np.float32), y
    return draw(m), draw(100), draw(100)


def settings(name="t", **more):
    return {"model_name": name, "architecture": mlp([8], n_classes=3), "batch_size": 64, **more}


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(Path(folder).iterdir())}


# ---------------------------------------------------------------- check_settings

@pytest.mark.parametrize("bad,words", [
    ({"optimizer": "adma"}, "unknown optimizer 'adma'"), ({"optimizer": 3}, "unknown optimizer"),
    ({"init": "hee"}, "unknown init 'hee'"), ({"lr": float("nan")}, "lr must be positive and finite"),
    ({"lr": float("inf")}, "lr"), ({"lr": True}, "lr"), ({"lr": "1e-3"}, "lr"), ({"lr": np.float32("nan")}, "lr"),
    ({"clip_grads_norm": float("inf")}, "clip_grads_norm"), ({"clip_grads_norm": "5"}, "clip_grads_norm"),
    ({"clip_grads_norm": True}, "clip_grads_norm"), ({"batch_size": True}, "batch_size"),
    ({"num_epochs": 2.5}, "num_epochs"), ({"train_abs_samples": True}, "train_abs_samples"),
    ({"seed": -1}, "seed"), ({"stop_on_divergence": 1}, "stop_on_divergence"),
    ({"stop_on_divergence": "yes"}, "stop_on_divergence"), ({"architecture": [{"units": 5}]}, "architecture"),
    ({"model_name": ".hidden"}, "folder-safe"),
])
def test_check_settings_refuses(bad, words):
    with pytest.raises(ValueError) as info:
        check_settings(bad)
    assert words in str(info.value)


def test_check_settings_accepts_numpy_scalars_and_stores_plain_numbers():
    s = check_settings({"lr": np.float32(1e-3), "batch_size": np.int64(32), "clip_grads_norm": np.float64(5),
                        "stop_on_divergence": np.bool_(False), "optimizer": "Adam", "train_abs_samples": np.int32(7)})
    assert s["lr"] == pytest.approx(1e-3) and type(s["lr"]) is float and type(s["batch_size"]) is int
    assert s["clip_grads_norm"] == 5.0 and s["stop_on_divergence"] is False and s["optimizer"] == "adam"
    json.dumps(s)                                     # settings.json can hold them


# ---------------------------------------------------------------- validation before the disk

def _nan_data():
    (X, y), val, test = tiny_data()
    X = X.copy()
    X[17, 3] = np.nan
    return (X, y), val, test


@pytest.mark.parametrize("case", ["settings", "optimizer", "clip", "nan", "shape", "labels", "too_many", "dtype",
                                  "features", "not_triple", "overwrite"])
def test_bad_input_leaves_the_disk_untouched(tmp_path, case):
    data, s, kw = tiny_data(), settings(), {}
    (X, y), val, test = data
    if case == "settings":
        s["num_epoch"] = 3
    elif case == "optimizer":
        s["optimizer"] = "adagrad"
    elif case == "clip":
        s["clip_grads_norm"] = float("nan")
    elif case == "nan":
        data = _nan_data()
    elif case == "shape":
        data = ((X, y[:-1]), val, test)
    elif case == "labels":
        data = ((X, y + 5), val, test)
    elif case == "too_many":
        s["train_abs_samples"] = 301
    elif case == "dtype":
        data = ((X.astype(str), y), val, test)
    elif case == "features":
        data = ((X, y), (val[0][:, :10], val[1]), test)
    elif case == "not_triple":
        data = ((X, y), val)
    elif case == "overwrite":
        kw["overwrite"] = "yes"
    runs = tmp_path / "runs"
    with pytest.raises(ValueError) as info:
        run_experiment(s, runs_dir=runs, data=data, **kw, **QUIET)
    assert not runs.exists(), f"{case}: {info.value}"
    if case == "nan":
        assert "sample 17" in str(info.value) and "training" in str(info.value)


# ---------------------------------------------------------------- never replace, atomic overwrite

def test_rerun_of_an_existing_name_is_refused_and_changes_nothing(tmp_path):
    run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), **QUIET)
    before = snapshot(tmp_path / "t")
    with pytest.raises(RunExistsError) as info:
        run_experiment(settings(lr=1e-2), runs_dir=tmp_path, data=tiny_data(1), **QUIET)
    assert "already exists" in str(info.value) and "overwrite=True" in str(info.value)
    assert "free_run_name" in str(info.value) and isinstance(info.value, FileExistsError)
    assert isinstance(info.value, ValueError)       # `except ValueError` (the Train button's) shows it too
    assert snapshot(tmp_path / "t") == before and sorted(p.name for p in tmp_path.iterdir()) == ["t"]


class Boom(Exception):
    pass


def test_overwrite_keeps_the_old_run_until_the_new_one_is_complete(tmp_path):
    from diydnn._09_training import Callback
    run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), **QUIET)
    old = snapshot(tmp_path / "t")
    seen = []

    class Watch(Callback):
        def on_step_end(self, loop, step, logs):
            seen.append((snapshot(tmp_path / "t") == old, sorted(p.name for p in tmp_path.iterdir())))
            if step == 3 and self.fail:
                raise Boom("the new run fails half-way")

    watch = Watch()
    watch.fail = True
    with pytest.raises(Boom):
        run_experiment(settings(lr=1e-2), runs_dir=tmp_path, data=tiny_data(), callbacks=[watch], overwrite=True,
                       **QUIET)
    assert seen[0][0] and seen[0][1] == [".t.lock", f".t.new-{os.getpid()}", "t"]   # written beside the old
    assert snapshot(tmp_path / "t") == old and sorted(p.name for p in tmp_path.iterdir()) == ["t"]
    watch.fail, seen[:] = False, []
    result = run_experiment(settings(lr=1e-2), runs_dir=tmp_path, data=tiny_data(), callbacks=[watch],
                            overwrite=True, **QUIET)
    assert all(same for same, _ in seen)                     # the old run stayed whole during the whole new run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"] and result["folder"] == str(tmp_path / "t")
    assert json.loads((tmp_path / "t" / "settings.json").read_text())["lr"] == 1e-2
    assert load_runs(tmp_path)[0]["test_accuracy"] == result["test_accuracy"]


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "my_notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not a run folder"):
        run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), overwrite=True, **QUIET)
    assert (tmp_path / "t" / "my_notes.txt").read_text() == "mine"


def test_a_swap_cut_in_half_is_repaired_by_the_next_run(tmp_path):
    run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), **QUIET)
    old = snapshot(tmp_path / "t")
    os.rename(tmp_path / "t", tmp_path / ".t.old-99999999")    # killed between the two renames of a swap
    with pytest.raises(RunExistsError):
        run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), **QUIET)
    # the cheap check saw no folder, the lock-protected one found the old run renamed back and refused
    assert snapshot(tmp_path / "t") == old and sorted(p.name for p in tmp_path.iterdir()) == ["t"]


# ---------------------------------------------------------------- the lock

CHILD = """
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, {tests!r})
from test_run_folders import tiny_data, settings
from diydnn._09_training import Callback
from diydnn._10_experiments import run_experiment

class Slow(Callback):
    def on_step_end(self, loop, step, logs):
        Path({marker!r}).write_text("running")
        time.sleep(0.2)

run_experiment(settings(num_epochs=50), runs_dir={runs!r}, data=tiny_data(), callbacks=[Slow()], progress=False,
               verbose=False)
"""


def test_a_second_run_of_the_same_name_is_refused_and_a_kill_9_lock_is_stale(tmp_path):
    marker, runs = tmp_path / "started", tmp_path / "runs"
    code = CHILD.format(tests=str(ROOT / "tests"), marker=str(marker), runs=str(runs))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child run did not start"
            time.sleep(0.05)
        with pytest.raises(RunLockedError) as info:
            run_experiment(settings(), runs_dir=runs, data=tiny_data(), **QUIET)
        assert f"process {child.pid}" in str(info.value) and ".t.lock" in str(info.value)
        assert not (runs / "t").exists()                   # nothing of ours was written, nothing mixed
    finally:
        child.send_signal(signal.SIGKILL)                  # kill -9: no cleanup runs in the child
        child.wait()
        child.stderr.close()
    assert (runs / ".t.lock").read_text().strip() == str(child.pid)
    assert (runs / f".t.new-{child.pid}").is_dir()         # its incomplete run, never under the name
    result = run_experiment(settings(), runs_dir=runs, data=tiny_data(), **QUIET)   # stale lock: taken over
    assert sorted(p.name for p in runs.iterdir()) == ["t"] and result["steps"] > 0
    assert sorted(p.name for p in (runs / "t").iterdir()) == ["checkpoint_best.npz", "checkpoint_last.npz",
                                                               "history.json", "result.json", "settings.json"]


def test_lock_in_the_same_process_and_release(tmp_path):
    with RunLock(tmp_path, "x"):
        assert (tmp_path / ".x.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RunLockedError, match=f"process {os.getpid()}"):
            RunLock(tmp_path, "x").acquire()
    assert not (tmp_path / ".x.lock").exists()


# ---------------------------------------------------------------- free names, loading, valid edge settings

def test_free_run_name(tmp_path):
    assert free_run_name("a", tmp_path) == "a"
    (tmp_path / "a").mkdir()
    assert free_run_name("a", tmp_path) == "a-2"
    (tmp_path / "a-2").mkdir()
    (tmp_path / ".a-3.lock").write_text("1")              # being written: taken too
    assert free_run_name("a", tmp_path) == "a-4" and free_run_name("a-2", tmp_path) == "a-4"
    assert free_run_name("lr-1e-3", tmp_path) == "lr-1e-3"
    with pytest.raises(ValueError, match="folder-safe"):
        free_run_name("../x", tmp_path)


def test_load_runs_skips_runs_being_written_and_names_a_damaged_one(tmp_path):
    run_experiment(settings(), runs_dir=tmp_path, data=tiny_data(), **QUIET)
    (tmp_path / ".u.new-123").mkdir()
    (tmp_path / ".u.new-123" / "result.json").write_text("{}")
    assert [r["model_name"] for r in load_runs(tmp_path)] == ["t"]
    (tmp_path / "t" / "result.json").write_text('{"model_name": ')
    with pytest.raises(ValueError, match=r"t/result.json is damaged"):
        load_runs(tmp_path)


def test_batchnorm_with_a_one_sample_last_batch_trains(tmp_path):
    (X, y), val, test = tiny_data(m=129)
    result = run_experiment({"model_name": "bn", "architecture": mlp([8], batchnorm=True, n_classes=3),
                             "batch_size": 128, "num_epochs": 3, "lr": 1e-2}, runs_dir=tmp_path,
                            data=((X, y), val, test), **QUIET)
    assert result["steps"] == 3 and np.isfinite(result["final_train_loss"]) and not result["diverged"]
