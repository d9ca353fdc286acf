"""Chapter 11: Dropout, weight decay and its mask, schedules, augmentation, and their hooks in 06/07/09/10."""
import json

import numpy as np
import pytest

from diydnn._00_conventions import check_layer
from diydnn._01_dense import Dense, Layer
from diydnn._02_activations import ReLU
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import SGD, Adam, AdamW
from diydnn._07_model import LAYER_TYPES, Sequential, register_layer
from diydnn._08_mnist import BatchStream
from diydnn._09_training import Loop, TrainTask
from diydnn._10_experiments import check_settings, mlp
from diydnn._10a_panels import settings_from_controls
from diydnn._11_regularisation import (Augment, AugmentedStream, Constant, CosineDecay, DecayMask, Dropout,
                                       LinearWarmup, StepDecay, get_schedule, schedule_for_run, shift_images)


class FixedUniforms:
    """A generator stand-in whose random() restarts from one seed: the dropout mask is held fixed."""

    def __init__(self, seed):
        self.seed = seed

    def random(self, shape, dtype=np.float64):
        return np.random.default_rng(self.seed).random(shape, dtype=dtype)


def test_dropout_gradient_check_with_the_mask_held_fixed():
    rng = np.random.default_rng(0)
    layer = Dropout(0.3)
    layer.rng = FixedUniforms(1)
    errors = check_layer(layer, rng.standard_normal((5, 9)), rng)
    assert errors["X"] < 1e-8


def test_dropout_backward_uses_the_forward_mask_and_scales_kept_units():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 40)) + 3.0          # no zeros in X: a zero in Y means dropped
    layer = Dropout(0.25, rng=np.random.default_rng(2))
    Y = layer.forward(X, training=True)
    kept = Y != 0
    assert np.allclose(Y[kept], X[kept] / 0.75)
    G = rng.standard_normal(X.shape)
    assert np.allclose(layer.backward(G), np.where(kept, G / 0.75, 0.0))
    assert 0.2 < 1 - kept.mean() < 0.3


def test_dropout_expectation_is_the_input():
    X = np.linspace(-2, 2, 12).reshape(3, 4)
    layer = Dropout(0.5, rng=np.random.default_rng(3))
    mean = np.mean([layer.forward(X, training=True) for _ in range(20000)], axis=0)
    se = np.abs(X) * np.sqrt(0.5 / 0.5 / 20000)      # sqrt(Var/n), Var = X^2 p/(1-p)
    assert np.all(np.abs(mean - X) <= 5 * se + 1e-12)


def test_dropout_is_the_identity_at_inference_and_predict_is_deterministic():
    X = np.random.default_rng(4).random((20, 6)).astype(np.float32)
    net = Sequential([Dense(8), ReLU(), Dropout(0.5), Dense(3)], n_in=6, rng=np.random.default_rng(0))
    assert np.array_equal(net.layers[2].forward(X, training=False), X)
    assert np.array_equal(net.predict(X), net.predict(X))
    assert not np.array_equal(net.forward(X, training=True), net.forward(X, training=True))


def test_dropout_masks_are_reproducible_from_a_seed():
    X = np.ones((4, 30))
    a, b, c = (Dropout(0.5, rng=np.random.default_rng(s)) for s in (7, 7, 8))
    assert np.array_equal(a.forward(X, training=True), b.forward(X, training=True))
    assert not np.array_equal(a.forward(X, training=True), c.forward(X, training=True))


@pytest.mark.parametrize("rate", [1.0, -0.01, 1.5, "0.2", None, True])
def test_dropout_refuses_a_bad_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


def test_dropout_without_a_generator_says_so_in_training():
    layer = Dropout(0.5)
    assert np.array_equal(layer.forward(np.ones((2, 3))), np.ones((2, 3)))     # inference needs none
    with pytest.raises(ValueError, match="random generator"):
        layer.forward(np.ones((2, 3)), training=True)


def test_dropout_config_save_load_and_summary(tmp_path):
    net = Sequential.from_config(mlp([16], dropout=0.4), n_in=5, rng=np.random.default_rng(0))
    assert LAYER_TYPES["Dropout"] is Dropout and net.layers[2].rate == 0.4 and net.layers[2].rng is net.rng
    lines = []
    net.summary(print_fn=lines.append)
    assert any("dropout_0 (Dropout)" in line for line in lines)
    net.save(tmp_path / "m.npz")
    again = Sequential.load(tmp_path / "m.npz")
    X = np.random.default_rng(1).random((7, 5)).astype(np.float32)
    assert again.get_config() == net.get_config() and np.array_equal(again.predict(X), net.predict(X))


def test_register_layer_accepts_a_redefinition_from_a_notebook(monkeypatch):
    monkeypatch.setattr("diydnn._07_model.LAYER_TYPES", dict(LAYER_TYPES))
    from diydnn import _07_model
    again = type("Dropout", (Dropout,), {"__module__": "__main__"})   # what a chapter notebook defines
    assert register_layer(again) is again and _07_model.LAYER_TYPES["Dropout"] is again
    other = type("Dropout", (Layer,), {"__module__": "someone_else"})
    monkeypatch.setattr("diydnn._07_model.LAYER_TYPES", dict(LAYER_TYPES))
    with pytest.raises(ValueError, match="already belongs"):
        register_layer(other)


def test_l2_equals_decoupled_decay_for_sgd_and_differs_for_adam():
    rng = np.random.default_rng(5)
    W0, lr, lam = rng.standard_normal((3, 4)), 0.05, 0.1
    grads = [rng.standard_normal((3, 4)) for _ in range(4)]
    sgd = SGD(lr)
    sgd.l2 = lam
    W, W_ref = W0.copy(), W0.copy()
    for g in grads:
        sgd.step({"W": W}, {"W": g})
        W_ref = (1 - lr * lam) * W_ref - lr * g
    assert np.allclose(W, W_ref, rtol=1e-13, atol=1e-15)
    adam = Adam(lr)
    adam.l2 = lam
    adamw = AdamW(lr, weight_decay=lam)
    Wa, Ww = W0.copy(), W0.copy()
    for g in grads:
        adam.step({"W": Wa}, {"W": g})
        adamw.step({"W": Ww}, {"W": g})
    assert np.max(np.abs(Wa - Ww)) > 1e-3


def test_decay_mask_spares_biases_and_batchnorm_and_is_configurable():
    params = {"dense_0/W": np.ones(3), "dense_0/b": np.ones(3), "batchnorm_0/gamma": np.ones(3),
              "batchnorm_0/beta": np.ones(3)}
    zero = {k: np.zeros(3) for k in params}
    opt = AdamW(0.1, weight_decay=0.5)
    opt.decays = DecayMask()
    opt.step(params, zero)
    assert np.allclose(params["dense_0/W"], 0.95)
    assert all(np.array_equal(params[k], np.ones(3)) for k in ("dense_0/b", "batchnorm_0/gamma", "batchnorm_0/beta"))
    assert opt.weight_decay == 0.5                       # restored after the step
    opt.decays = DecayMask(exclude=["gamma"])
    opt.step(params, zero)
    assert np.allclose(params["dense_0/b"], 0.95) and np.array_equal(params["batchnorm_0/gamma"], np.ones(3))
    sgd = SGD(0.1)
    sgd.l2, sgd.decays = 0.5, DecayMask()
    p = {"dense_0/W": np.ones(2), "dense_0/b": np.ones(2)}
    sgd.step(p, {k: np.zeros(2) for k in p})
    assert np.allclose(p["dense_0/W"], 0.95) and np.array_equal(p["dense_0/b"], np.ones(2))
    with pytest.raises(ValueError, match="exclude"):
        DecayMask("b")


def test_schedule_formulas_composition_and_config_round_trip():
    assert Constant()(10) == 1.0
    assert [StepDecay(3, 0.5)(t) for t in (1, 3, 4, 7)] == [1, 1, 0.5, 0.25]
    cos = CosineDecay(10, final=0.2)
    assert cos(1) == 1.0 and cos(11) == pytest.approx(0.2) and cos(6) == pytest.approx(0.6)
    warm = LinearWarmup(4, CosineDecay(10))
    assert [warm(t) for t in (1, 4, 5)] == [0.25, 1.0, 1.0] and warm(15) == pytest.approx(0.0)
    for sched in (warm, cos, StepDecay(3, 0.5), LinearWarmup(2)):
        again = get_schedule(json.loads(json.dumps(sched.get_config())))
        assert all(again(t) == sched(t) for t in range(1, 40))
    for bad in ("linear", {"name": "cosine"}, {"name": "step", "step_size": 0}, 3):
        with pytest.raises(ValueError):
            get_schedule(bad)


def test_optimiser_consults_the_schedule_each_step_and_keeps_its_base_rate():
    opt = SGD(1.0)
    opt.schedule = StepDecay(2, 0.1)
    W = np.ones(1)
    changes = []
    for _ in range(5):
        before = W.copy()
        opt.step({"W": W}, {"W": np.ones(1)})
        changes.append(float(before[0] - W[0]))
    assert changes == pytest.approx([1, 1, 0.1, 0.1, 0.01]) and opt.lr == 1.0
    assert opt.get_config()["schedule"] == {"name": "step", "step_size": 2, "gamma": 0.1}


def test_schedule_for_run_names():
    assert schedule_for_run(None, 100, 10) is None
    assert isinstance(schedule_for_run("cosine", 100, 10), CosineDecay)
    warm = schedule_for_run("warmup_cosine", 100, 10)
    assert warm(10) == 1.0 and warm(101) == 0.0


def test_shift_images_matches_a_slow_reference_and_augment_is_seeded():
    rng = np.random.default_rng(6)
    X = rng.random((5, 36)).astype(np.float32)
    dy, dx = np.array([0, 1, -1, 2, -2]), np.array([2, 0, -2, 1, -1])
    out = shift_images(X, dy, dx, (6, 6))
    for i in range(5):
        ref = np.zeros((6, 6), np.float32)
        img = X[i].reshape(6, 6)
        for r in range(6):
            for c in range(6):
                if 0 <= r - dy[i] < 6 and 0 <= c - dx[i] < 6:
                    ref[r, c] = img[r - dy[i], c - dx[i]]
        assert np.array_equal(out[i].reshape(6, 6), ref)
    aug = Augment(1, 10, shape=(6, 6))
    assert np.array_equal(aug(X, np.random.default_rng(0)), aug(X, np.random.default_rng(0)))
    assert aug(X, np.random.default_rng(0)).dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        aug(np.ones((2, 35)), rng)
    with pytest.raises(ValueError, match="max_shift"):
        Augment(-1)


def _loop(folder):
    rng = np.random.default_rng(0)
    X = rng.random((200, 16)).astype(np.float32)
    y = (X[:, :4].sum(axis=1) > 2).astype(np.int64)
    model = Sequential([Dense(12), ReLU(), Dropout(0.3), Dense(2)], n_in=16, rng=np.random.default_rng(1))
    stream = AugmentedStream(BatchStream(X, y, 20, np.random.default_rng(2)), Augment(1, shape=(4, 4)),
                             np.random.default_rng(3))
    opt = AdamW(0.01, weight_decay=0.1)
    opt.decays, opt.schedule = DecayMask(), LinearWarmup(3, CosineDecay(20))
    return Loop(model, TrainTask(stream, SoftmaxCrossEntropy(), opt, n_steps_per_checkpoint=5), output_dir=folder,
                progress=False, verbose=False)


def test_resumed_run_with_dropout_schedule_and_augmentation_is_bit_identical(tmp_path):
    whole = _loop(tmp_path / "whole")
    whole.run(20)
    _loop(tmp_path / "split").run(10)
    resumed = _loop(tmp_path / "split")
    assert resumed.step == 10
    resumed.run(10)
    for (k, a), b in zip(whole.model.params.items(), resumed.model.params.values()):
        assert np.array_equal(a, b), k
    assert whole.history.get("train", "lr") == resumed.history.get("train", "lr")
    assert whole.history.get("train", "loss") == resumed.history.get("train", "loss")
    steps, lrs = whole.history.steps_values("train", "lr")
    assert np.allclose(lrs, [0.01 * whole.task.optimizer.schedule(int(t)) for t in steps])
    forgot = _loop(tmp_path / "forgot_first")
    forgot.run(10)
    forgot = _loop(tmp_path / "forgot_first")
    forgot.model.layers[2].rng = np.random.default_rng(1)    # the generator state not restored
    forgot.run(10)
    assert any(not np.array_equal(a, b) for a, b in zip(whole.model.params.values(), forgot.model.params.values()))


def test_resume_under_another_schedule_is_refused(tmp_path):
    _loop(tmp_path / "run").run(5)
    other = _loop(tmp_path / "other")
    other.task.optimizer.schedule = CosineDecay(7)
    before = {k: v.copy() for k, v in other.model.params.items()}
    with pytest.raises(ValueError, match="schedule"):
        other.restore(tmp_path / "run" / "checkpoint_last.npz")
    assert all(np.array_equal(before[k], v) for k, v in other.model.params.items())   # nothing half-restored


def test_settings_know_regularisation_and_refuse_bad_values():
    s = check_settings({"architecture": mlp([8], dropout=0.2), "weight_decay": 0.01, "schedule": "cosine",
                        "augment": {"max_shift": 2, "max_degrees": 5}})
    assert s["decay_exclude"] == ["b", "gamma", "beta"]
    for bad in ({"architecture": mlp([8], dropout=1.0)}, {"weight_decay": -1}, {"weight_decay": True},
                {"schedule": "warp"}, {"augment": {"max_shift": 1.5}}, {"augment": 2}, {"decay_exclude": "b"},
                {"augment": {"shift": 2}}):
        with pytest.raises(ValueError, match="run settings"):
            check_settings(bad)


def test_sliders_start_at_the_settings_and_change_each_piece():
    defaults = check_settings({"architecture": mlp([64], dropout=0.3), "optimizer": "adamw", "weight_decay": 0.02,
                               "schedule": {"name": "cosine", "total_steps": 100}, "augment": {"max_shift": 1},
                               "train_abs_samples": 1000})
    values = {"lr": 1e-3, "batch_size": 128, "hidden_units": 64, "train_abs_samples": 1000, "num_epochs": 1,
              "clip_on": False, "clip": 5.0, "batchnorm": False, "init": "he", "optimizer": "adamw",
              "dropout": 0.3, "decay_on": True, "weight_decay": 0.02, "schedule": "custom", "max_shift": 1}
    assert settings_from_controls(defaults, values) == defaults
    changed = settings_from_controls(defaults, {**values, "dropout": 0.0, "decay_on": False, "schedule": "step",
                                                "max_shift": 0})
    assert changed["architecture"] == mlp([64]) and changed["weight_decay"] is None
    assert changed["schedule"] == "step" and changed["augment"] is None
