"""Issue 9, part A: numerics, optimiser, model and checkpoint files, training loop -- bad input and edge cases.

Every test here failed before the change it guards (see the comment above each group).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import diydnn as dd
from diydnn._00_conventions import write_atomically
from diydnn._09_training import CHECKPOINT_BEST, CHECKPOINT_LAST, load_checkpoint, save_checkpoint


# -- losses: confidently wrong samples, huge logits ----------------------------------------------
# Before: Softmax.backward of an exactly one-hot output is 0, so Softmax + CategoricalCrossEntropy
# gave a gradient of exactly 0 for the most wrong sample; SoftmaxCrossEntropy gave inf/NaN at +-3e38.

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_confidently_wrong_sample_still_gets_the_fused_gradient(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [0.3, -0.2, 0.1], [-1e4, 1e4, -1e4]], dtype=dtype)
    y = np.array([1, 0, 0])                              # rows 0 and 2: confidently wrong
    sm, cce, sce = dd.Softmax(), dd.CategoricalCrossEntropy(), dd.SoftmaxCrossEntropy()
    P = sm.forward(Z)
    assert P[0, 1] == 0 and P[2, 0] == 0                 # the true-class probabilities underflow
    cce(P, y)
    chained = sm.backward(cce.backward())
    sce(Z, y)
    fused = sce.backward()
    m = len(y)
    assert chained[0, 1] == pytest.approx(-1 / m, rel=1e-6) and chained[2, 0] == pytest.approx(-1 / m, rel=1e-6)
    np.testing.assert_allclose(chained, fused, rtol=1e-5, atol=2e-12 / m)


@pytest.mark.parametrize("gap", [30.0, 80.0, 300.0])
def test_cross_entropy_is_exact_for_every_probability_that_did_not_underflow(gap):
    # a clip of the loss at 1e-12 made it flat (and the floored backward disagree with it) beyond 27.6 nats
    Z, y = np.array([[gap / 2, -gap / 2, 0.0], [0.1, 0.2, 0.3]]), np.array([1, 2])
    P = dd.Softmax().forward(Z)
    assert P[0, 1] > 0
    loss, sm = dd.CategoricalCrossEntropy(), dd.Softmax()
    assert loss(P, y) == pytest.approx(dd.SoftmaxCrossEntropy()(Z, y), rel=1e-9)
    loss(sm.forward(Z), y)
    chained = sm.backward(loss.backward())
    assert dd.rel_error(chained, (P - np.eye(3)[y]) / 2) < 1e-9
    numeric = dd.numerical_gradient(lambda: loss(dd.Softmax().forward(Z), y), Z)   # the loss is not flat there
    assert dd.rel_error(chained, numeric) < 1e-6


def test_floor_leaves_the_softmax_gradient_check_and_forward_untouched():
    rng = np.random.default_rng(0)
    assert dd.check_layer(dd.Softmax(), rng.standard_normal((6, 7)), rng)["X"] < 1e-8
    P = dd.Softmax().forward(np.array([[1000.0, -1000.0, 0.0]]))
    assert np.array_equal(P, [[1.0, 0.0, 0.0]])          # the forward output stays the exact softmax


@pytest.mark.parametrize("Z, dtype", [
    ([[3e38, -3e38, 0.0], [-3e38, -3e38, 3e38]], np.float32),
    ([[np.finfo(np.float32).max, np.finfo(np.float32).min, 0.0], [0.0, 0.0, 0.0]], np.float32),
    ([[1.7e308, -1.7e308, 0.0], [-1.7e308, -1.7e308, 1.7e308]], np.float64),
    ([[np.finfo(np.float64).max, np.finfo(np.float64).min, 1.0], [1.0, 1.0, 1.0]], np.float64),
])
def test_softmax_cross_entropy_is_finite_for_any_finite_logits(Z, dtype):
    Z = np.array(Z, dtype=dtype)
    y = np.array([1, 0])
    loss = dd.SoftmaxCrossEntropy()
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow, not even a warning
        L = loss(Z, y)
    dZ = loss.backward()
    assert np.isfinite(L) and L > 1e30 and dZ.dtype == dtype and np.isfinite(dZ).all()
    Y_hat = np.eye(3)[np.argmax(Z, axis=1)]              # softmax of such logits is one-hot (row 1 of case 2: 1/3)
    if np.all(Z[1] == Z[1][0]):
        Y_hat[1] = 1 / 3
    np.testing.assert_allclose(dZ, (Y_hat - np.eye(3)[y]) / 2, atol=1e-7)


def test_float32_logits_give_the_float64_loss():
    rng = np.random.default_rng(1)
    Z, y = (rng.standard_normal((50, 10)) * 30).astype(np.float32), rng.integers(0, 10, 50)
    assert dd.SoftmaxCrossEntropy()(Z, y) == pytest.approx(dd.SoftmaxCrossEntropy()(Z.astype(np.float64), y), rel=1e-12)


# -- targets -------------------------------------------------------------------------------------
# Before: multi-hot and out-of-[0, 1] targets, float/negative labels in one_hot, labels >= k in accuracy
# were silently accepted (or failed with an IndexError).

@pytest.mark.parametrize("Y, match", [
    ([[1, 1, 0], [0, 1, 0]], r"rows \[0\] sum to \[2\.0\]"),
    ([[0, 0, 0], [0, 1, 0]], r"rows \[0\] sum to \[0\.0\]"),
    ([[1.5, -0.5, 0], [0, 1, 0]], r"lie in \[0, 1\].*-0\.5 to 1\.5"),
    ([[np.nan, 1, 0], [0, 1, 0]], r"one-hot labels contain NaN \(1 of 6 entries\)"),
    ([[1, 0, 0], [0, 1, 0]] * 1 + [[0, 0, 1]], r"shape \(3, 3\) do not match predictions of shape \(2, 3\)"),
    ([["a", "b", "c"], ["a", "b", "c"]], r"real numbers, got dtype <U1"),
])
@pytest.mark.parametrize("loss", [dd.SoftmaxCrossEntropy, dd.CategoricalCrossEntropy])
def test_bad_two_dimensional_targets_are_refused(loss, Y, match):
    P = np.array([[0.2, 0.5, 0.3], [0.1, 0.8, 0.1]])
    with pytest.raises(ValueError, match=rf"{loss.__name__}\(\): .*{match}"):
        loss()(P, np.array(Y))


def test_soft_targets_are_rows_of_probabilities_and_keep_the_fused_gradient():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 6)
    smoothed = 0.9 * np.eye(4)[y] + 0.1 / 4             # label smoothing: rows still sum to 1
    assert dd.check_loss(dd.SoftmaxCrossEntropy(), rng.standard_normal((6, 4)), smoothed) < 1e-8


@pytest.mark.parametrize("y, n, match", [
    (np.array([0, -1, 2]), 3, r"one_hot: labels must lie in \[0, 3\), got \[-1\]"),
    (np.array([0, 3, 7]), 3, r"one_hot: labels must lie in \[0, 3\), got \[3, 7\]"),
    (np.array([0.0, 1.0, 2.0]), 3, r"one_hot: labels must be integers, got dtype float64"),
    (np.array([[0, 1]]), 3, r"one_hot: integer labels must have shape \(m,\), got shape \(1, 2\)"),
    (np.array([0, 1]), 0, r"one_hot: n_classes must be a positive integer, got 0"),
    (np.array([0, 1]), 2.0, r"one_hot: n_classes must be a positive integer, got 2\.0"),
    (np.array([0, 1]), True, r"one_hot: n_classes must be a positive integer, got True"),
])
def test_one_hot_refuses_bad_labels(y, n, match):
    with pytest.raises(ValueError, match=match):
        dd.one_hot(y, n)


def test_one_hot_still_works():
    np.testing.assert_array_equal(dd.one_hot(np.array([2, 0], dtype=np.uint8), 3), [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("y, match", [
    (np.array([0, 1, 10]), r"accuracy: labels must lie in \[0, 3\), got \[10\]"),
    (np.array([0, -2, 1]), r"accuracy: labels must lie in \[0, 3\), got \[-2\]"),
    (np.array([0.0, 1.0, 2.0]), r"accuracy: labels must be integers"),
    (np.eye(4)[[0, 1, 2]], r"accuracy: one-hot labels of shape \(3, 4\) do not match predictions of shape \(3, 3\)"),
])
def test_accuracy_refuses_labels_out_of_range(y, match):
    with pytest.raises(ValueError, match=match):
        dd.accuracy(np.eye(3), y)


# -- optimiser: NaN/inf gradients change nothing ---------------------------------------------------
# Before: NaN was written into the weights and Adam's moments.

def _params_and_grads(rng):
    params = {"dense_0/W": rng.standard_normal((4, 3)).astype(np.float32),
              "dense_0/b": rng.standard_normal(3).astype(np.float32)}
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    return params, grads


@pytest.mark.parametrize("spec", ["sgd", "momentum", "adam", "adamw"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_is_refused_and_changes_nothing(spec, bad):
    rng = np.random.default_rng(3)
    opt = dd.get_optimiser(spec)
    params, grads = _params_and_grads(rng)
    opt.step(params, grads)                               # slots exist now
    before_params = {k: v.copy() for k, v in params.items()}
    before_state = opt.state_dict()
    grads["dense_0/b"][1] = bad                           # the LAST parameter: the first must not be updated either
    with pytest.raises(dd.NonFiniteError, match=r"step: gradient\(s\) 'dense_0/b' \(1 of 3 entries\) contain NaN or inf"):
        opt.step(params, grads)
    assert all(np.array_equal(params[k], before_params[k]) for k in params)
    after_state = opt.state_dict()
    assert after_state.keys() == before_state.keys()
    assert all(np.array_equal(after_state[k], before_state[k]) for k in before_state)


def test_huge_but_finite_float32_gradients_are_not_refused():
    # vdot(g, g) overflows float32 here; the exact scan must then see that g itself is finite
    params = {"W": np.zeros(4, dtype=np.float32)}
    dd.SGD(lr=1e-30).step(params, {"W": np.full(4, 3e30, dtype=np.float32)})
    np.testing.assert_allclose(params["W"], -3.0, rtol=1e-6)


# -- temporary files of killed saves --------------------------------------------------------------
# Before: a killed save left .<name>.<pid>.tmp behind for ever.

def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_save_removes_the_targets_stale_temporaries_and_only_those(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".model.npz.{dead}.tmp"
    keep = [tmp_path / f".model.npz.{alive}.tmp",          # a save in progress in a live process
            tmp_path / f".other.npz.{dead}.tmp",           # another target's temporary file
            tmp_path / f".model.npz.old.{dead}.tmp",       # the temporary of the target model.npz.old
            tmp_path / "model.npz.tmp", tmp_path / f"model.npz.{dead}.tmp", tmp_path / "notes.txt"]
    for p in [stale, *keep]:
        p.write_bytes(b"half")
    write_atomically(tmp_path / "model.npz", lambda f: f.write(b"whole"))
    assert not stale.exists()
    assert all(p.read_bytes() == b"half" for p in keep)
    assert (tmp_path / "model.npz").read_bytes() == b"whole"


def test_a_checkpoint_save_cleans_up_after_a_killed_one(tmp_path):
    stale = tmp_path / f".{CHECKPOINT_LAST}.{_dead_pid()}.tmp"
    stale.write_bytes(b"PK\x03\x04 half")
    save_checkpoint(tmp_path / CHECKPOINT_LAST, {"w": np.ones(2)}, {"step": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_LAST]


# -- damaged model and checkpoint files -------------------------------------------------------------
# Before: BadZipFile, EOFError, KeyError('step') or "Cannot load file containing pickled data".

def _small_model(seed=0, last=None):
    return dd.Sequential([dd.Dense(3), last or dd.ReLU(), dd.Dense(2)], n_in=4, rng=np.random.default_rng(seed))


def _damaged_versions(raw):
    yield "empty", b""
    for n in (1, 4, 30, len(raw) // 2, len(raw) - 22, len(raw) - 1):
        yield f"truncated to {n} bytes", raw[:n]
    yield "a text file", b"W = [[1, 2], [3, 4]]\n"
    yield "random bytes after a zip signature", b"PK\x03\x04" + bytes(range(256)) * 4


@pytest.mark.parametrize("loader, advice", [
    (lambda p: dd.Sequential.load(p), "save the model again"),
    (lambda p: load_checkpoint(p), "pass resume=False"),
])
def test_damaged_files_give_a_value_error_naming_the_file_and_what_to_do(tmp_path, loader, advice):
    path = tmp_path / "m.npz"
    _small_model().save(path)
    raw = path.read_bytes()
    for what, content in _damaged_versions(raw):
        bad = tmp_path / "bad.npz"
        bad.write_bytes(content)
        with pytest.raises(ValueError) as info:
            loader(bad)
        assert "bad.npz" in str(info.value) and advice in str(info.value), (what, str(info.value))
        assert "pickled data" not in str(info.value), what


def test_bit_flips_anywhere_give_a_value_error_or_an_identical_model(tmp_path):
    model = _small_model()
    path = tmp_path / "m.npz"
    model.save(path)
    raw = path.read_bytes()
    rng = np.random.default_rng(4)
    refused = 0
    for i in rng.choice(len(raw), size=60, replace=False):
        flipped = bytearray(raw)
        flipped[i] ^= 1 << int(rng.integers(8))
        (tmp_path / "f.npz").write_bytes(bytes(flipped))
        try:
            loaded = dd.Sequential.load(tmp_path / "f.npz")
        except ValueError as e:
            assert "f.npz" in str(e)
            refused += 1
            continue
        # a flip in a field nobody reads (e.g. a timestamp) is harmless; anything else must be caught
        assert loaded.get_config() == model.get_config()
        assert all(np.array_equal(loaded.params[k], model.params[k]) for k in model.params)
    assert refused > 30


def test_checkpoint_without_step_is_a_clear_error_not_a_key_error(tmp_path):
    save_checkpoint(tmp_path / "c.npz", {"w": np.ones(2)}, {"epoch": 3})
    with pytest.raises(ValueError, match=r"c\.npz is not a complete diydnn checkpoint.*\['step'\]"):
        load_checkpoint(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", w=np.ones(2))
    with pytest.raises(ValueError, match=r"d\.npz is not a diydnn checkpoint \(no '__meta__' entry\)"):
        load_checkpoint(tmp_path / "d.npz")


def _loop(folder, model=None, optimizer=None, resume=True, seed=0, X=None, y=None, **task_kwargs):
    rng = np.random.default_rng(seed)
    if X is None:
        X = rng.standard_normal((40, 4)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
    stream = dd.BatchStream(X, y, batch_size=8, rng=rng)
    task = dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), optimizer or dd.Adam(lr=1e-2), n_steps_per_checkpoint=5,
                        **task_kwargs)
    return dd.Loop(model or _small_model(seed), task, eval_tasks=[dd.EvalTask((X, y))], output_dir=folder,
                   resume=resume, progress=False, verbose=False)


def test_resume_from_a_damaged_checkpoint_says_what_to_do(tmp_path):
    _loop(tmp_path).run(10)
    last = tmp_path / CHECKPOINT_LAST
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"checkpoint_last\.npz is damaged.*resume=False.*checkpoint_best\.npz"):
        _loop(tmp_path)
    loop = _loop(tmp_path, resume=False)                  # the advice works: start fresh, or the best checkpoint
    loop.restore(tmp_path / CHECKPOINT_BEST)
    assert loop.step in (5, 10)


def test_resume_refuses_a_different_model_and_shows_both(tmp_path):
    _loop(tmp_path, model=_small_model(last=dd.ReLU())).run(5)
    with pytest.raises(ValueError, match=r"different model \(entry 1: checkpoint \{'layer': 'ReLU'.* vs given "
                                         r"\{'layer': 'Softmax'.*resume=False"):
        _loop(tmp_path, model=_small_model(last=dd.Softmax()))


def test_resume_refuses_a_different_optimiser_and_shows_both(tmp_path):
    _loop(tmp_path, optimizer=dd.SGD(lr=0.1)).run(5)
    with pytest.raises(ValueError, match=r"different optimizer \(checkpoint \{'name': 'sgd', 'lr': 0\.1, "
                                         r"'momentum': 0\.0\} vs given \{'name': 'adam'"):
        _loop(tmp_path, optimizer=dd.Adam(lr=0.1))
    with pytest.raises(ValueError, match=r"different optimizer .*'lr': 0\.1.* vs given .*'lr': 0\.05"):
        _loop(tmp_path, optimizer=dd.SGD(lr=0.05))
    assert _loop(tmp_path, optimizer=dd.SGD(lr=0.1)).step == 5   # the same settings resume


class _HalveLearningRate(dd.Callback):
    def on_step_end(self, loop, step, logs):
        loop.task.optimizer.lr = 0.1 / 2 ** step           # a schedule changes the optimiser during the run


def test_a_learning_rate_schedule_does_not_block_resuming(tmp_path):
    loop = _loop(tmp_path, optimizer=dd.SGD(lr=0.1))
    loop.callbacks.append(_HalveLearningRate())
    loop.run(5)
    assert loop.task.optimizer.lr != 0.1
    assert _loop(tmp_path, optimizer=dd.SGD(lr=0.1)).step == 5  # compared with the settings the run began with
    with pytest.raises(ValueError, match=r"different optimizer"):
        _loop(tmp_path, optimizer=dd.SGD(lr=loop.task.optimizer.lr))


# -- the training loop ----------------------------------------------------------------------------
# Before: a bare StopIteration, EvalTask(batch_size=0) failing inside range(), TypeError for clip_norm='5',
# complex data cast silently, NaN in the data reported as "training diverged".

def _finite_batches(n, rng=None, bad_at=None):
    rng = rng or np.random.default_rng(5)
    for i in range(n):
        X = rng.standard_normal((8, 4)).astype(np.float32)
        if i == bad_at:
            X[3, 2] = np.nan
        yield X, (X[:, 0] > 0).astype(np.int64)


def test_a_finite_iterator_that_runs_out_is_a_clear_error():
    task = dd.TrainTask(_finite_batches(3), dd.SoftmaxCrossEntropy(), dd.Adam())
    loop = dd.Loop(_small_model(), task, progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"TrainTask: labeled_data ran out after 3 batches; it must be an endless"):
        loop.run(10)
    assert loop.step == 3                                 # the three batches it had were used


def test_an_eval_iterator_that_runs_out_is_a_clear_error():
    task = dd.EvalTask(_finite_batches(2), n_eval_batches=3)
    with pytest.raises(ValueError, match=r"EvalTask 'eval': labeled_data ran out after 2 of the 3 batches"):
        task.evaluate(_small_model())


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
    ({"batch_size": 2.5}, r"batch_size must be a positive integer, got 2\.5"),
    ({"batch_size": "100"}, r"batch_size must be a positive integer, got '100'"),
    ({"n_eval_batches": 0}, r"n_eval_batches must be a positive integer, got 0"),
    ({"n_eval_batches": float("nan")}, r"n_eval_batches must be a positive integer, got nan"),
    ({"batch_size": float("inf")}, r"batch_size must be a positive integer, got inf"),
    ({"batch_size": True}, r"batch_size must be a positive integer, got True"),
    ({"metrics": "accuracy"}, r"metrics must be a list of names"),
    ({"metrics": ["acc"]}, r"unknown metrics \['acc'\]"),
])
def test_eval_task_settings_are_checked(kwargs, match):
    X = np.zeros((4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        dd.EvalTask((X, np.zeros(4, dtype=int)), **kwargs)


@pytest.mark.parametrize("clip_norm", ["5", 0, -1.0, float("nan"), float("inf"), True, [5]])
def test_bad_clip_norm_is_refused_when_the_task_is_made(clip_norm):
    with pytest.raises(ValueError, match=r"TrainTask: clip_norm \(or None\) must be a"):
        dd.TrainTask(_finite_batches(1), dd.SoftmaxCrossEntropy(), dd.Adam(), clip_norm=clip_norm)


def test_numpy_numbers_are_fine_settings():
    task = dd.TrainTask(_finite_batches(1), dd.SoftmaxCrossEntropy(), dd.Adam(), n_steps_per_checkpoint=np.int64(5),
                        clip_norm=np.float32(5))
    assert task.n_steps_per_checkpoint == 5 and task.clip_norm == 5.0


@pytest.mark.parametrize("loss, optimizer, match", [
    (dd.SoftmaxCrossEntropy, lambda: "adam", r"optimizer must be an optimiser object"),
    (lambda: "cross-entropy", dd.Adam, r"loss must be a loss object"),
])
def test_task_needs_loss_and_optimiser_objects(loss, optimizer, match):
    with pytest.raises(ValueError, match=match):
        dd.TrainTask(_finite_batches(1), loss(), optimizer())


@pytest.mark.parametrize("X, match", [
    (np.ones((8, 4)) + 1j, r"X must hold real numbers, got dtype complex128"),
    (np.full((8, 4), "0.5"), r"X must hold real numbers, got dtype <U3"),
    (np.array([[object()] * 4] * 8), r"X must hold real numbers, got dtype object"),
])
def test_complex_or_string_data_is_refused_before_the_first_update(X, match):
    model = _small_model()
    before = {k: v.copy() for k, v in model.params.items()}
    task = dd.TrainTask(iter([(X, np.zeros(8, dtype=int))] * 3), dd.SoftmaxCrossEntropy(), dd.Adam())
    with pytest.raises(ValueError, match=rf"TrainTask: the first batch \(step 1\): {match}"):
        dd.Loop(model, task, progress=False, verbose=False).run(3)
    assert all(np.array_equal(model.params[k], before[k]) for k in before)
    with pytest.raises(ValueError, match=rf"EvalTask 'val': the evaluation data: {match}"):
        dd.EvalTask((X, np.zeros(8, dtype=int)), name="val")


def test_nan_in_the_data_is_bad_input_naming_the_step_not_divergence(tmp_path):
    task = dd.TrainTask(_finite_batches(10, bad_at=3), dd.SoftmaxCrossEntropy(), dd.Adam(), n_steps_per_checkpoint=2)
    loop = dd.Loop(_small_model(), task, output_dir=tmp_path, progress=False, verbose=False)
    with pytest.raises(dd.NonFiniteError, match=r"the training batch of step 4: X of shape \(8, 4\) holds 1 NaN "
                                                r"or inf value\(s\), first at index \(3, 2\): the data is bad"):
        loop.run(10)
    assert loop.step == 3 and not loop.diverged and "diverged" not in str(loop.stop_reason)
    assert load_checkpoint(tmp_path / CHECKPOINT_LAST)[1]["step"] == 2    # the last good checkpoint is intact


def test_nan_in_the_first_batch_is_refused_before_training():
    task = dd.TrainTask(_finite_batches(5, bad_at=0), dd.SoftmaxCrossEntropy(), dd.Adam())
    with pytest.raises(dd.NonFiniteError, match=r"the first batch \(step 1\): X .* 1 NaN or inf"):
        dd.Loop(_small_model(), task, progress=False, verbose=False).run(5)


def test_a_diverging_model_is_still_divergence_not_bad_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = dd.Sequential([dd.Dense(16), dd.ReLU(), dd.Dense(2)], n_in=5, rng=rng)
    task = dd.TrainTask(dd.BatchStream(X, y, batch_size=16, rng=rng), dd.SoftmaxCrossEntropy(), dd.SGD(lr=1e18))
    loop = dd.Loop(model, task, progress=False, verbose=False)
    with np.errstate(over="ignore", invalid="ignore"):
        loop.run(50)
    assert loop.diverged and "training diverged" in loop.stop_reason


@pytest.mark.parametrize("n, batch_size", [(30, 7), (1001, 1000), (5, 3)])
def test_evaluation_weights_batches_by_size(n, batch_size):
    rng = np.random.default_rng(n)
    X = rng.standard_normal((n, 4)).astype(np.float64)
    y = rng.integers(0, 2, n)
    model = dd.Sequential([dd.Dense(6), dd.ReLU(), dd.Dense(2)], n_in=4, rng=rng)
    model.build(4, dtype=np.float64)
    results = dd.EvalTask((X, y), batch_size=batch_size).evaluate(model)
    out = model.forward(X)
    assert results["loss"] == pytest.approx(dd.SoftmaxCrossEntropy()(out, y), rel=1e-12)
    assert results["accuracy"] == pytest.approx(dd.accuracy(out, y), rel=1e-12)
    batch_means = [dd.SoftmaxCrossEntropy()(out[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]
    assert abs(np.mean(batch_means) - results["loss"]) > 1e-6     # the unweighted mean would be wrong here


class _StopRecorder:
    def __init__(self):
        self.reason = None

    def stop(self, reason, diverged=False):
        self.reason = reason


def test_early_stopping_on_a_flat_metric_counts_ties_as_no_improvement():
    stopper, loop = dd.EarlyStopping(monitor="val/accuracy", patience=3), _StopRecorder()
    for step in range(1, 4):
        stopper.on_eval(loop, step, {"val/accuracy": 0.5})
        assert loop.reason is None
    stopper.on_eval(loop, 4, {"val/accuracy": 0.5})      # third tie in a row
    assert loop.reason and "early stopping at step 4" in loop.reason


def test_early_stopping_resets_on_a_real_improvement():
    stopper, loop = dd.EarlyStopping(monitor="val/loss", patience=2, higher_is_better=False), _StopRecorder()
    for step, value in enumerate([1.0, 1.0, 0.9, 0.9, 0.9], start=1):
        stopper.on_eval(loop, step, {"val/loss": value})
    assert "early stopping at step 5" in loop.reason and stopper.best == 0.9


@pytest.mark.parametrize("kwargs, match", [
    ({"patience": 0}, r"patience must be a positive integer"),
    ({"min_delta": -0.1}, r"min_delta must be a non-negative finite number"),
    ({"monitor": "accuracy"}, r"monitor must name '<eval task name>/<metric>'"),
])
def test_early_stopping_settings_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dd.EarlyStopping(**kwargs)
