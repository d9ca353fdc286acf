"""Chapter 15: the health callbacks against hand computations, their passivity (trained weights bit for bit the
same with and without them), the range test's ramp and pick, and the search helpers."""
import os

import numpy as np
import pytest

from diydnn._01_dense import Dense
from diydnn._02_activations import ReLU
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import SGD, Adam
from diydnn._07_model import Sequential
from diydnn._08_mnist import BatchStream
from diydnn._09_training import Loop, TrainTask
from diydnn._11_regularisation import Dropout
from diydnn._15_diagnosing import (ACTIVATION_BINS, ActivationStats, DeadUnits, ExponentialRamp, SEARCH_SPACE,
                                   UpdateRatio, grid_trials, health_callbacks, importance, log_histogram,
                                   log_edges, lr_range_test, pick_lr, random_trials, smooth, trial_settings)


def tiny(seed=0, dropout=False, n_in=4, hidden=3):
    rng = np.random.default_rng(seed)
    layers = [Dense(hidden), ReLU()] + ([Dropout(0.3, rng=np.random.default_rng(seed + 1))] if dropout else [])
    return Sequential(layers + [Dense(2)], n_in=n_in, rng=rng)


def data(seed=0, m=16, n_in=4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n_in)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def loop_for(model, X, y, optimizer, callbacks, batch_size=8, seed=0):
    task = TrainTask(BatchStream(X, y, batch_size, np.random.default_rng(seed)), SoftmaxCrossEntropy(), optimizer,
                     n_steps_per_checkpoint=1000)
    return Loop(model, task, callbacks=callbacks, progress=False, verbose=False)


def test_update_ratio_is_lr_times_grad_norm_over_weight_norm_for_sgd():
    """For SGD, W_t - W_(t-1) = -lr dW: the ratio is lr ||dW|| / ||W_(t-1)||, with dW the step's own gradient."""
    model, (X, y) = tiny(), data()
    lr = 0.1
    loop = loop_for(model, X, y, SGD(lr=lr), [UpdateRatio(every=1)], batch_size=16)
    for step in (1, 2, 3):
        W_before = {name: model.layers[i].params["W"].copy() for i, name in ((0, "dense_0"), (2, "dense_1"))}
        loop.run(1)
        for i, name in ((0, "dense_0"), (2, "dense_1")):
            dW = model.layers[i].grads["W"].astype(np.float64)
            hand = lr * np.linalg.norm(dW) / np.linalg.norm(W_before[name].astype(np.float64))
            recorded = loop.history.get("health", f"update_ratio/{name}")[-1]
            assert recorded[0] == step
            assert recorded[1] == pytest.approx(hand, rel=1e-5)


def test_update_ratio_every_k_records_only_those_steps():
    model, (X, y) = tiny(), data()
    loop = loop_for(model, X, y, Adam(lr=1e-2), [UpdateRatio(every=3)])
    loop.run(10)
    steps = [s for s, _ in loop.history.get("health", "update_ratio/dense_0")]
    assert steps == [3, 6, 9]
    assert all(v > 0 for _, v in loop.history.get("health", "update_ratio/dense_0"))


def test_activation_stats_match_a_hand_forward_with_the_weights_before_the_step():
    model, (X, y) = tiny(), data()
    W1, b1 = model.layers[0].params["W"].copy(), model.layers[0].params["b"].copy()
    loop = loop_for(model, X, y, SGD(lr=0.1), [ActivationStats(every=1)], batch_size=16)
    loop.run(1)
    A = np.maximum(X.astype(np.float64) @ W1 + b1, 0)        # the whole batch: batch_size = m
    h = {metric: loop.history.last("health", metric) for metric in loop.history.metrics("health")}
    assert h["act_mean/dense_1"] == pytest.approx(A.mean(), rel=1e-5)
    assert h["act_std/dense_1"] == pytest.approx(A.std(), rel=1e-5)
    assert h["act_zero/dense_1"] == pytest.approx(np.mean(A == 0))
    dW = model.layers[2].grads["W"].astype(np.float64)
    W2 = model.layers[2].params["W"].astype(np.float64) + 0.1 * dW          # W before the SGD step
    assert h["grad_std/dense_1"] == pytest.approx(dW.std(), rel=1e-5)
    assert h["grad_to_weight/dense_1"] == pytest.approx(dW.std() / model.layers[2].params["W"].std(), rel=1e-5)
    assert not np.allclose(W2, model.layers[2].params["W"])                   # (the step did move it)
    assert "act_mean/dense_0" not in h            # the first layer's input is the data, not an activation
    counts, _ = log_histogram(A, log_edges(*ACTIVATION_BINS))
    (step, recorded), = loop.callbacks[0].histograms[("act", "dense_1")]
    assert step == 1 and np.array_equal(recorded, counts) and counts.sum() == np.count_nonzero(A)


def test_log_histogram_counts_by_decade_and_zeros_apart():
    counts, zero = log_histogram(np.array([0.0, 0.0, 1e-3, -2e-3, 5.0, 1e9]), np.array([-4.0, -2.0, 0.0, 2.0]))
    assert counts.tolist() == [2, 0, 2] and zero == pytest.approx(2 / 6)    # 1e9 lands in the last bin
    big = np.arange(1, 10001, dtype=np.float32)            # read at stride 3: 1, 4, 7, ...
    counts, _ = log_histogram(big, np.array([0.0, 2.0, 5.0]), max_values=4096)
    assert counts.sum() == len(big[::3]) and counts[0] == len(np.arange(1, 100, 3))


def test_dead_units_counts_a_unit_that_never_fires():
    model, (X, y) = tiny(hidden=3), data()
    dense = model.layers[0]
    dense.params["W"][:, 1] = 0.0
    dense.params["b"][1] = -100.0       # unit 1 outputs 0 for any input: dead, and SGD never revives it
    dense.params["b"][[0, 2]] = 100.0   # units 0 and 2 fire for every sample
    loop = loop_for(model, X, y, SGD(lr=0.01), [DeadUnits(every=2)])
    loop.run(4)
    assert [s for s, _ in loop.history.get("health", "dead/relu_0")] == [2, 4]
    assert all(v == pytest.approx(1 / 3) for _, v in loop.history.get("health", "dead/relu_0"))


def test_health_callbacks_never_change_the_trained_weights():
    """Same seed, same batches, dropout masks from the same generator: with or without the callbacks every
    parameter and every logged training value is the same, bit for bit."""
    runs = []
    for callbacks in ([], health_callbacks(every=1, update_every=1, dead_every=1)):
        model, (X, y) = tiny(dropout=True, hidden=8), data(m=64)
        loop = loop_for(model, X, y, Adam(lr=1e-2), callbacks)
        loop.run(25)
        runs.append((model.state_dict(), loop.history.get("train", "loss")))
    (params_a, loss_a), (params_b, loss_b) = runs
    assert params_a.keys() == params_b.keys()
    assert all(np.array_equal(params_a[k], params_b[k]) for k in params_a)
    assert loss_a == loss_b


def test_exponential_ramp_and_range_test_rates():
    ramp = ExponentialRamp(1e4, 5)
    assert [ramp(t) for t in (1, 3, 5)] == pytest.approx([1.0, 1e2, 1e4])
    with pytest.raises(ValueError, match="ratio"):
        ExponentialRamp(0.5, 10)
    X, y = data(m=64)
    curve = lr_range_test(tiny(), X, y, optimizer="sgd", lr_min=1e-4, lr_max=1e2, n_steps=50, batch_size=8)
    n = len(curve["lr"])
    assert curve["lr"][0] == pytest.approx(1e-4) and np.allclose(np.diff(np.log(curve["lr"])), np.log(1e6) / 49)
    assert n <= 50 and len(curve["loss"]) == n
    with pytest.raises(ValueError, match="lr_min"):
        lr_range_test(tiny(), X, y, lr_min=1.0, lr_max=0.1)


def test_smooth_has_no_lag_and_pick_lr_is_the_minimum_over_divide_by():
    x = np.linspace(-3, 3, 61)
    loss = x ** 2 + 1
    assert np.argmin(smooth(loss, 5)) == 30          # a centred window keeps a symmetric minimum in place
    assert np.isnan(smooth(np.array([1.0, 2.0, np.inf]), 1)[-1])
    curve = {"lr": np.geomspace(1e-5, 1e1, 61), "loss": loss, "smoothed": smooth(loss, 5)}
    assert pick_lr(curve) == pytest.approx(1e-2)
    assert pick_lr(curve, divide_by=10) == pytest.approx(1e-3)


def test_random_and_grid_trials_cover_the_space():
    trials = random_trials(200, np.random.default_rng(0))
    assert trials == random_trials(200, np.random.default_rng(0))
    for name, (low, high, how) in SEARCH_SPACE.items():
        values = np.array([t[name] for t in trials])
        assert values.min() >= low and values.max() <= high
        assert len(set(values)) > (20 if how == "log_int" else 190)          # every trial a new value
    grid = grid_trials(2)
    assert len(grid) == 2 ** len(SEARCH_SPACE)
    assert sorted({t["lr"] for t in grid}) == pytest.approx([1e-4 * 300 ** 0.25, 1e-4 * 300 ** 0.75])   # cell centres
    assert len(grid_trials({"lr": 3, "weight_decay": 1, "dropout": 1, "batch_size": 2})) == 6


def test_importance_finds_the_parameter_that_matters():
    rng = np.random.default_rng(1)
    trials = random_trials(40, rng)
    results = [{"params": t, "best_val_accuracy": 0.9 - 0.02 * (np.log10(t["lr"]) + 2.5) ** 2 + 1e-4 * rng.random()}
               for t in trials]
    shares = importance(results)
    assert shares["lr"] > 0.95 and max(v for k, v in shares.items() if k != "lr") < 0.3


def test_trial_settings_put_dropout_into_the_architecture():
    s = trial_settings({"hidden": [20], "optimizer": "adamw"}, {"lr": 0.01, "weight_decay": 1e-3, "dropout": 0.25,
                                                                "batch_size": 64}, "t_00")
    assert s["lr"] == 0.01 and s["batch_size"] == 64 and s["model_name"] == "t_00"
    assert {"layer": "Dropout", "rate": 0.25} in s["architecture"]


def test_dead_units_counts_over_the_window_not_the_last_batch():
    """A unit that fired in any batch of the window is alive; only units silent in every batch count as dead."""
    from types import SimpleNamespace
    from diydnn._09_training import History
    relu = ReLU(name="relu_0")
    loop = SimpleNamespace(model=SimpleNamespace(layers=[relu]), history=History(), callbacks=[])
    dead = DeadUnits(every=2)
    for step, fires in ((1, [True, False, False]), (2, [False, True, False]), (3, [False, False, False]),
                        (4, [False, False, False])):
        relu._cache = np.array([fires, [False] * 3])          # two samples; the second never fires
        dead.on_step_end(loop, step, {})
    assert loop.history.get("health", "dead/relu_0") == [(2, pytest.approx(1 / 3)), (4, 1.0)]


def test_health_values_also_go_to_a_running_wandb_logger():
    """record_health sends the values to W&B (as health/<name>, at the step) when the loop has a running WandbLogger;
    a stand-in run records the calls, so no wandb is needed."""
    from diydnn._09_training import WandbLogger

    class FakeRun:
        def __init__(self):
            self.logged = []

        def log(self, values, step):
            self.logged.append((step, dict(values)))

    logger = WandbLogger()
    logger.on_train_begin = lambda loop: None          # keep the fake run: no wandb.init
    logger.on_train_end = lambda loop: None
    logger.run = FakeRun()
    model, (X, y) = tiny(), data()
    loop = loop_for(model, X, y, SGD(lr=0.1), [UpdateRatio(every=2), logger])
    loop.run(4)
    health = [(step, v) for step, v in logger.run.logged if any(k.startswith("health/") for k in v)]
    assert [step for step, _ in health] == [2, 4]
    assert health[0][1]["health/update_ratio/dense_0"] == loop.history.get("health", "update_ratio/dense_0")[0][1]


def test_run_search_sets_the_wandb_group_only_while_it_runs(tmp_path, monkeypatch):
    """With wandb_group, each trial gets a WandbLogger and WANDB_RUN_GROUP is set during the search, then restored."""
    import diydnn._15_diagnosing as diagnosing
    seen = []

    def fake_run_or_load(settings, runs_dir=None, data=None, callbacks=()):
        seen.append((os.environ.get("WANDB_RUN_GROUP"), [type(c).__name__ for c in callbacks]))
        return {"model_name": settings["model_name"], "best_val_accuracy": 0.5}

    monkeypatch.setattr(diagnosing, "run_or_load", fake_run_or_load)
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    trials = random_trials(2, np.random.default_rng(0))
    results = diagnosing.run_search({"hidden": [4]}, trials, "s", runs_dir=tmp_path, wandb_group="g")
    assert seen == [("g", ["WandbLogger"])] * 2 and "WANDB_RUN_GROUP" not in os.environ
    assert [r["params"] for r in results] == trials
