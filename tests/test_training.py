"""Chapter 09: the training loop — steps, history, resume, checkpoints, callbacks, tracking, errors."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import diydnn as dd
from diydnn._09_training import CHECKPOINT_BEST, CHECKPOINT_LAST, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def toy_data(seed=0, m=96, n=6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n)).astype(np.float32)
    y = ((X[:, 0] + X[:, 1] ** 2) > 1).astype(np.int64) + (X[:, 2] > 1)
    return X, y


def make_loop(output_dir=None, seed=0, batchnorm=True, optimizer=None, clip_norm=None, every=25, **kwargs):
    X, y = toy_data()
    rng = np.random.default_rng(seed)
    layers = [dd.Dense(12)] + ([dd.BatchNorm()] if batchnorm else []) + [dd.ReLU(), dd.Dense(3)]
    model = dd.Sequential(layers, n_in=X.shape[1], rng=rng)
    task = dd.TrainTask(dd.BatchStream(X, y, batch_size=16, rng=rng), dd.SoftmaxCrossEntropy(),
                        optimizer or dd.Adam(lr=1e-2), n_steps_per_checkpoint=every, clip_norm=clip_norm)
    return dd.Loop(model, task, eval_tasks=[dd.EvalTask((X, y))], output_dir=output_dir, progress=False,
                   verbose=kwargs.pop("verbose", False), **kwargs)


def test_training_learns_and_records_history():
    loop = make_loop()
    history = loop.run(150)
    losses = [v for _, v in history.get("train", "loss")]
    assert len(losses) == 150 and np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert history.last("eval", "accuracy") > 0.8
    # evaluation on the checkpoint schedule only, never after every batch
    assert [s for s, _ in history.get("eval", "accuracy")] == [25, 50, 75, 100, 125, 150]


def test_global_norm_is_recorded_per_step_with_per_layer_norms():
    loop = make_loop()
    history = loop.run(10)
    total = np.array([v for _, v in history.get("train", "grad_norm")])
    layers = [m for m in history.metrics("train") if m.startswith("grad_norm/")]
    assert sorted(layers) == ["grad_norm/batchnorm_0", "grad_norm/dense_0", "grad_norm/dense_1"]
    per_layer = np.array([[v for _, v in history.get("train", m)] for m in layers])
    np.testing.assert_allclose(total ** 2, (per_layer ** 2).sum(axis=0), rtol=1e-5)


def test_clip_norm_records_the_norm_before_clipping_and_clips_the_update():
    lr, c = 0.1, 1e-3
    loop = make_loop(optimizer=dd.SGD(lr=lr), clip_norm=c, batchnorm=False)
    before = {k: v.copy() for k, v in loop.model.params.items()}
    history = loop.run(1)
    norm = history.last("train", "grad_norm")
    step = np.sqrt(sum(np.sum((loop.model.params[k] - before[k]).astype(np.float64) ** 2) for k in before))
    assert norm > 10 * c                      # the recorded norm is the unclipped one
    assert step == pytest.approx(lr * c, rel=1e-3)   # the update used the clipped gradient


def test_resume_equals_uninterrupted_bit_for_bit(tmp_path):
    a = make_loop(tmp_path / "split")
    a.run(200)
    del a
    b = make_loop(tmp_path / "split", seed=99, verbose=True)   # other seed: all state must come from the checkpoint
    assert b.step == 200
    b.run(200)
    c = make_loop(tmp_path / "whole")
    c.run(400)
    assert b.step == c.step == 400
    for k in c.model.params:
        np.testing.assert_array_equal(b.model.params[k], c.model.params[k])
    for k in c.model.state:
        np.testing.assert_array_equal(b.model.state[k], c.model.state[k])
    assert b.history.get("train", "loss") == c.history.get("train", "loss")


def test_resume_says_so_and_can_start_fresh(tmp_path, capsys):
    make_loop(tmp_path).run(30)
    resumed = make_loop(tmp_path, verbose=True)
    assert resumed.step == 30 and "Resuming from step 30" in capsys.readouterr().out
    fresh = make_loop(tmp_path, resume=False)
    assert fresh.step == 0


def test_best_checkpoint_is_kept_by_eval_metric(tmp_path):
    loop = make_loop(tmp_path)
    history = loop.run(100)
    best_step, best_value = history.best("eval", "accuracy")
    arrays, meta = load_checkpoint(tmp_path / CHECKPOINT_BEST)
    assert meta["best_value"] == best_value and meta["step"] == best_step
    assert json.loads((tmp_path / "history.json").read_text())["train"]["loss"][-1][0] == 100


def test_checkpoint_loads_without_pickle(tmp_path):
    make_loop(tmp_path).run(5)
    with np.load(tmp_path / CHECKPOINT_LAST, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


def test_interrupted_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"w": np.arange(3.0)}, {"step": 1})

    def exploding_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt("simulated crash during the write")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"w": np.arange(5.0)}, {"step": 2})
    arrays, meta = load_checkpoint(path)
    assert meta["step"] == 1 and np.array_equal(arrays["w"], np.arange(3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz"]


def test_killed_process_during_checkpoint_write_leaves_previous_loadable(tmp_path):
    """A real SIGKILL while a checkpoint is half written: the previous checkpoint still loads."""
    marker = tmp_path / "writing"
    child = textwrap.dedent(f"""
        import sys, time, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from diydnn._09_training import save_checkpoint
        path = {str(tmp_path / 'ckpt.npz')!r}
        save_checkpoint(path, {{"w": np.full(10, 1.0)}}, {{"step": 1}})
        real = np.savez
        def slow(f, **arrays):
            f.write(b"PK\\x03\\x04" + b"x" * 1000)
            f.flush()
            open({str(marker)!r}, "w").close()
            time.sleep(60)
        np.savez = slow
        save_checkpoint(path, {{"w": np.full(10, 2.0)}}, {{"step": 2}})
    """)
    proc = subprocess.Popen([sys.executable, "-c", child])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "child exited early"
            assert time.monotonic() < deadline, "child never started writing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    arrays, meta = load_checkpoint(tmp_path / "ckpt.npz")
    assert meta["step"] == 1 and np.array_equal(arrays["w"], np.full(10, 1.0))


def test_early_stopping_stops():
    loop = make_loop(every=5, callbacks=[dd.EarlyStopping(monitor="eval/accuracy", patience=2, min_delta=1.0)])
    loop.run(500)
    # min_delta=1 can never be met: stop after the first eval plus two without improvement
    assert loop.step == 15 and "early stopping" in loop.stop_reason


def test_divergence_guard_stops_and_names_the_last_good_checkpoint(tmp_path):
    loop = make_loop(tmp_path, optimizer=dd.SGD(lr=0.05), batchnorm=False, every=10,
                     callbacks=[dd.DivergenceGuard(factor=5, warmup=5)])
    loop.run(30)
    assert not loop.diverged
    loop.task.optimizer.lr = 80.0            # now it explodes
    loop.run(300)
    assert 30 < loop.step < 330 and loop.diverged
    assert "diverged" in loop.stop_reason and str(tmp_path / CHECKPOINT_LAST) in loop.stop_reason
    arrays, meta = load_checkpoint(tmp_path / CHECKPOINT_LAST)
    assert 30 <= meta["step"] < loop.step and f"(step {meta['step']})" in loop.stop_reason
    assert all(np.isfinite(a).all() for k, a in arrays.items() if k.startswith("model/"))


def test_bad_settings_fail_before_training(tmp_path):
    X, y = toy_data()
    rng = np.random.default_rng(0)

    def loop_with(Xb, yb, **kw):
        model = dd.Sequential([dd.Dense(4), dd.ReLU(), dd.Dense(3)], n_in=6, rng=rng)
        task = dd.TrainTask(dd.BatchStream(Xb, yb, batch_size=8, rng=rng), dd.SoftmaxCrossEntropy(), dd.SGD(lr=0.1))
        return model, dd.Loop(model, task, progress=False, **kw)

    model, loop = loop_with(X[:, :5], y)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(ValueError, match=r"TrainTask.*\(8, 5\).*does not fit"):
        loop.run(10)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*7"):
        loop_with(X, y + 5)[1].run(10)
    for n in (0, -5, 2.5):
        with pytest.raises(ValueError, match="n_steps must be a positive integer"):
            loop_with(X, y)[1].run(n)
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        loop_with(X, y, output_dir=a_file)


def test_wandb_is_not_imported_by_diydnn():
    out = subprocess.run([sys.executable, "-c", "import sys, diydnn; print('wandb' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_wandb_disabled_in_tests_runs_quietly():
    assert os.environ["WANDB_MODE"] == "disabled"
    loop = make_loop(callbacks=[dd.WandbLogger(project="diydnn-tests")])
    loop.run(5)
    assert loop.step == 5


def test_wandb_offline_writes_a_local_run_without_network(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    logger = dd.WandbLogger(project="diydnn-tests", config={"seed": 0}, dir=str(tmp_path))
    make_loop(callbacks=[logger]).run(12)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
