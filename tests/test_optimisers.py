"""Optimisers and clip-norm (chapter 06): update rules against independent scalar references,
PyTorch (when installed), in-place updates, saved state, configs, clipping and bad input."""
import io
import math

import numpy as np
import pytest

from diydnn._01_dense import Dense, NonFiniteError
from diydnn._06_optimisers import (SGD, Adam, AdamW, Optimiser, clip_by_global_norm, get_optimiser,
                                   global_norm)


# ---------------------------------------------------------------- independent references
# Written per element with Python floats, from the formulas, without looking at the library.

def sgd_reference(w0, grad_steps, lr, momentum=0.0):
    w = [float(x) for x in np.ravel(w0)]
    vel = [0.0] * len(w)
    for g in grad_steps:
        g = [float(x) for x in np.ravel(g)]
        for i in range(len(w)):
            if momentum > 0:
                vel[i] = momentum * vel[i] + g[i]
                w[i] = w[i] - lr * vel[i]
            else:
                w[i] = w[i] - lr * g[i]
    return np.array(w).reshape(np.shape(w0))


def adam_reference(w0, grad_steps, lr, beta1, beta2, eps, weight_decay=0.0):
    w = [float(x) for x in np.ravel(w0)]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for t, g in enumerate(grad_steps, start=1):
        g = [float(x) for x in np.ravel(g)]
        for i in range(len(w)):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            m_hat = m[i] / (1 - beta1 ** t)
            v_hat = v[i] / (1 - beta2 ** t)
            w[i] = w[i] - lr * (m_hat / (math.sqrt(v_hat) + eps) + weight_decay * w[i])
    return np.array(w).reshape(np.shape(w0))


def adamw_torch_order_reference(w0, grad_steps, lr, beta1, beta2, eps, weight_decay):
    """PyTorch's AdamW order: first W <- W (1 - lr wd), then the plain Adam step."""
    w = [float(x) for x in np.ravel(w0)]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for t, g in enumerate(grad_steps, start=1):
        g = [float(x) for x in np.ravel(g)]
        for i in range(len(w)):
            w[i] = w[i] * (1 - lr * weight_decay)
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            denom = math.sqrt(v[i]) / math.sqrt(1 - beta2 ** t) + eps
            w[i] = w[i] - (lr / (1 - beta1 ** t)) * m[i] / denom
    return np.array(w).reshape(np.shape(w0))


def max_rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def random_problem(rng, n_steps, dtype=np.float64):
    """Two parameters of random shapes and n_steps random gradients for each."""
    shapes = {"dense_0/W": tuple(rng.integers(1, 5, size=2)), "dense_0/b": (int(rng.integers(1, 5)),)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()} for _ in range(n_steps)]
    return params, grads


def run(opt, params, grad_steps):
    for grads in grad_steps:
        opt.step(params, grads)
    return params


# ---------------------------------------------------------------- update rules

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_sgd_matches_scalar_loop(seed, momentum):
    rng = np.random.default_rng(seed)
    params, grads = random_problem(rng, 5)
    start = {k: p.copy() for k, p in params.items()}
    run(SGD(lr=0.07, momentum=momentum), params, grads)
    for k in params:
        expected = sgd_reference(start[k], [g[k] for g in grads], 0.07, momentum)
        assert max_rel(params[k], expected) < 1e-12


def test_sgd_descends_and_the_originals_sign_ascends():
    # L(w) = |w|^2 / 2, dL/dw = w: the correct rule shrinks the loss, W + lr dW grows it
    w = np.array([3.0, -4.0])
    opt, losses = SGD(lr=0.1), []
    for _ in range(10):
        losses.append(0.5 * w @ w)
        opt.step({"w": w}, {"w": w.copy()})
    assert all(np.diff(losses) < 0)
    w_up = np.array([3.0, -4.0])
    w_up = w_up + 0.1 * w_up
    assert 0.5 * w_up @ w_up > 0.5 * 25


@pytest.mark.parametrize("seed", range(3))
def test_adam_matches_scalar_reference(seed):
    rng = np.random.default_rng(10 + seed)
    params, grads = random_problem(rng, 3)
    start = {k: p.copy() for k, p in params.items()}
    lr, b1, b2, eps = 0.01 * (1 + seed), 0.85, 0.995, 1e-7
    run(Adam(lr=lr, beta1=b1, beta2=b2, eps=eps), params, grads)
    for k in params:
        expected = adam_reference(start[k], [g[k] for g in grads], lr, b1, b2, eps)
        assert max_rel(params[k], expected) < 1e-8


@pytest.mark.parametrize("seed", range(3))
def test_adamw_matches_scalar_reference_and_torch_order(seed):
    rng = np.random.default_rng(20 + seed)
    params, grads = random_problem(rng, 3)
    start = {k: p.copy() for k, p in params.items()}
    lr, b1, b2, eps, wd = 0.02, 0.9, 0.999, 1e-8, 0.1 * (1 + seed)
    run(AdamW(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd), params, grads)
    for k in params:
        g_k = [g[k] for g in grads]
        assert max_rel(params[k], adam_reference(start[k], g_k, lr, b1, b2, eps, wd)) < 1e-8
        assert max_rel(params[k], adamw_torch_order_reference(start[k], g_k, lr, b1, b2, eps, wd)) < 1e-8


def test_adamw_decays_exactly_once_per_step():
    # zero gradient: only the decay acts, W_t = (1 - lr wd)^t W_0
    W = np.array([1.0, -2.0, 0.5])
    opt = AdamW(lr=0.1, weight_decay=0.2)
    for _ in range(7):
        opt.step({"W": W}, {"W": np.zeros(3)})
    np.testing.assert_allclose(W, (1 - 0.02) ** 7 * np.array([1.0, -2.0, 0.5]), rtol=1e-13)


def test_adamw_without_decay_is_adam_bitwise():
    rng = np.random.default_rng(3)
    p1, grads = random_problem(rng, 4)
    p2 = {k: p.copy() for k, p in p1.items()}
    run(Adam(lr=0.01), p1, grads)
    run(AdamW(lr=0.01, weight_decay=0.0), p2, grads)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_adam_first_step_is_lr_times_sign():
    g = np.array([1e-3, -0.2, 7.0, -3e4])
    W = np.zeros(4)
    Adam(lr=0.05).step({"W": W}, {"W": g})
    np.testing.assert_allclose(W, -0.05 * np.sign(g), rtol=1e-5)


def test_hand_computed_steps():
    # the numbers worked out in the chapter
    W = np.array([1.0, -2.0])
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step({"W": W}, {"W": np.array([0.5, -4.0])})
    opt.step({"W": W}, {"W": np.array([1.0, 2.0])})
    np.testing.assert_allclose(W, [0.805, -1.44], atol=1e-14)
    W = np.array([1.0, -2.0])
    opt = Adam(lr=0.1)
    opt.step({"W": W}, {"W": np.array([0.5, -4.0])})
    opt.step({"W": W}, {"W": np.array([0.5, 4.0])})
    np.testing.assert_allclose(W, [0.8, -1.9 - 0.1 / 19], atol=1e-8)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_against_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(42)
    params, grads = random_problem(rng, 3)
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.99, 1e-8, 0.05
    tensors = {k: torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for k, p in params.items()}
    if name == "adam":
        ours = Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
        theirs = torch.optim.Adam(list(tensors.values()), lr=lr, betas=(b1, b2), eps=eps)
    else:
        ours = AdamW(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
        theirs = torch.optim.AdamW(list(tensors.values()), lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    for step_grads in grads:
        ours.step(params, step_grads)
        for k, t in tensors.items():
            t.grad = torch.tensor(step_grads[k], dtype=torch.float64)
        theirs.step()
    for k in params:
        assert max_rel(params[k], tensors[k].detach().numpy()) < 1e-8


# ---------------------------------------------------------------- in place, slots, float32

@pytest.mark.parametrize("spec", ["sgd", "momentum", "adam", "adamw"])
def test_updates_in_place_the_layers_own_arrays(spec):
    rng = np.random.default_rng(5)
    layer = Dense(3, n_in=4, rng=rng)
    params = layer.params
    ids = {k: id(p) for k, p in params.items()}
    before = {k: p.copy() for k, p in params.items()}
    X = rng.standard_normal((6, 4)).astype(np.float32)
    opt = get_optimiser({"name": spec, "lr": 0.1})
    for _ in range(3):
        layer.forward(X)
        layer.backward(rng.standard_normal((6, 3)).astype(np.float32))
        opt.step(params, layer.grads)
    for k, p in layer.params.items():
        assert id(p) == ids[k] and params[k] is p
        assert p.dtype == np.float32
        assert not np.array_equal(p, before[k])


def test_slots_are_lazy_zero_and_per_name():
    opt = Adam(lr=0.1, beta1=0.5, beta2=0.5)
    assert opt.t == 0 and opt.slots == {"m": {}, "v": {}}
    g = {"a": np.array([2.0, -1.0]), "b": np.array([[3.0]])}
    opt.step({"a": np.zeros(2), "b": np.zeros((1, 1))}, g)
    # from zero: m = (1 - b1) g, v = (1 - b2) g^2
    for k in g:
        np.testing.assert_array_equal(opt.slots["m"][k], 0.5 * g[k])
        np.testing.assert_array_equal(opt.slots["v"][k], 0.5 * g[k] ** 2)
    assert opt.t == 1
    sgd = SGD(lr=0.1)
    sgd.step({"a": np.zeros(2)}, {"a": np.ones(2)})
    assert sgd.state_dict().keys() == {"t", "optimizer"} and str(sgd.state_dict()["optimizer"]) == "sgd"


def test_refused_step_changes_nothing():
    rng = np.random.default_rng(6)
    params, grads = random_problem(rng, 2)
    opt = Adam(lr=0.01)
    opt.step(params, grads[0])
    state = opt.state_dict()
    snapshot = {k: p.copy() for k, p in params.items()}
    bad = dict(grads[1])
    bad["dense_0/b"] = np.zeros(params["dense_0/b"].size + 1)
    with pytest.raises(ValueError):
        opt.step(params, bad)
    assert opt.t == 1 and all(np.array_equal(snapshot[k], params[k]) for k in params)
    assert all(np.array_equal(state[k], opt.state_dict()[k]) for k in state)


# ---------------------------------------------------------------- state and config

@pytest.mark.parametrize("spec", ["momentum", {"name": "adam", "lr": 0.01},
                                  {"name": "adamw", "lr": 0.01, "weight_decay": 0.3}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip_is_bitwise(spec, dtype, tmp_path):
    rng = np.random.default_rng(7)
    params, grads = random_problem(rng, 6, dtype)
    opt = get_optimiser(spec)
    run(opt, params, grads[:3])
    state = opt.state_dict()
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype != object for k, v in state.items())
    assert state["t"].shape == () and int(state["t"]) == 3
    np.savez(tmp_path / "opt.npz", **state)
    saved = {k: p.copy() for k, p in params.items()}
    run(opt, params, grads[3:])
    restored = get_optimiser(opt.get_config())
    with np.load(tmp_path / "opt.npz") as loaded:
        restored.load_state_dict(loaded)
    run(restored, saved, grads[3:])
    assert restored.t == opt.t == 6
    for k in params:
        assert np.array_equal(params[k], saved[k]) and params[k].dtype == dtype


def test_state_dict_is_a_copy_and_names_keep_slashes():
    opt = Adam(lr=0.1)
    opt.step({"block/dense_0/W": np.zeros(2)}, {"block/dense_0/W": np.ones(2)})
    state = opt.state_dict()
    assert set(state) == {"t", "optimizer", "m/block/dense_0/W", "v/block/dense_0/W"}
    state["m/block/dense_0/W"][:] = 99
    assert not np.any(opt.slots["m"]["block/dense_0/W"] == 99)
    fresh = Adam(lr=0.1)
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    fresh.load_state_dict(np.load(buffer))
    assert set(fresh.slots["m"]) == {"block/dense_0/W"}


@pytest.mark.parametrize("state", [{}, {"t": np.array(1), "q/W": np.zeros(2)}, {"t": np.array(1), "m": np.zeros(2)},
                                   {"t": np.array(-1)}, {"t": np.array([1, 2])}, {"t": np.array(1.5)}])
def test_load_state_dict_refuses_bad_state(state):
    with pytest.raises(ValueError, match="Adam"):
        Adam().load_state_dict(state)


@pytest.mark.parametrize("opt", [SGD(0.3), SGD(0.2, momentum=0.7), Adam(2e-3, 0.8, 0.95, 1e-6),
                                 AdamW(5e-4, 0.85, 0.9, 1e-7, weight_decay=0.25)])
def test_get_config_rebuilds_the_same_optimiser(opt):
    config = opt.get_config()
    assert isinstance(config, dict) and config["name"] in ("sgd", "adam", "adamw")
    assert all(isinstance(v, (str, float)) for v in config.values())
    clone = get_optimiser(config)
    assert type(clone) is type(opt) and clone.get_config() == config and clone is not opt
    rng = np.random.default_rng(8)
    p1, grads = random_problem(rng, 3)
    p2 = {k: p.copy() for k, p in p1.items()}
    run(opt, p1, grads)
    run(clone, p2, grads)
    assert all(np.array_equal(p1[k], p2[k]) for k in p1)


def test_get_optimiser_names_and_objects():
    assert isinstance(get_optimiser("sgd"), SGD) and get_optimiser("sgd").momentum == 0
    assert get_optimiser("momentum").momentum == 0.9 and get_optimiser({"name": "momentum", "lr": 0.5}).lr == 0.5
    assert type(get_optimiser("adam")) is Adam and get_optimiser("adam").lr == 1e-3
    assert get_optimiser("AdamW").weight_decay == 1e-2
    opt = Adam(0.1)
    assert get_optimiser(opt) is opt
    assert isinstance(opt, Optimiser)


# ---------------------------------------------------------------- clipping

def random_grads(rng, dtype=np.float64):
    return {f"{i}/{k}": rng.standard_normal(tuple(rng.integers(1, 6, size=nd))).astype(dtype)
            for i in range(int(rng.integers(1, 4))) for k, nd in (("W", 2), ("b", 1))}


@pytest.mark.parametrize("seed", range(4))
def test_global_norm_is_the_norm_of_all_gradients_together(seed):
    grads = random_grads(np.random.default_rng(seed))
    flat = np.concatenate([g.ravel() for g in grads.values()])
    assert math.isclose(global_norm(grads), float(np.linalg.norm(flat)), rel_tol=1e-13)
    assert math.isclose(global_norm(list(grads.values())), global_norm(grads), rel_tol=1e-15)
    assert global_norm({}) == 0.0


def test_global_norm_of_large_float32_does_not_overflow():
    g = np.full(4, 1e20, dtype=np.float32)
    assert math.isclose(global_norm({"g": g}), 2e20, rel_tol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_below_threshold_leaves_gradients_untouched(seed, dtype):
    rng = np.random.default_rng(seed)
    grads = random_grads(rng, dtype)
    c = float(rng.uniform(1.1, 3.0)) * global_norm(grads)
    before = {k: g.copy() for k, g in grads.items()}
    returned = clip_by_global_norm(grads, max_norm=c)
    assert math.isclose(returned, global_norm(before), rel_tol=1e-12)
    assert all(np.array_equal(grads[k], before[k]) for k in grads)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_above_threshold_scales_to_exactly_the_threshold(seed, dtype):
    rng = np.random.default_rng(seed)
    grads = random_grads(rng, dtype)
    norm_before = global_norm(grads)
    c = float(rng.uniform(0.05, 0.9)) * norm_before
    before = {k: g.copy() for k, g in grads.items()}
    ids = {k: id(g) for k, g in grads.items()}
    returned = clip_by_global_norm(grads, max_norm=c)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert math.isclose(returned, norm_before, rel_tol=1e-15)
    assert math.isclose(global_norm(grads), c, rel_tol=tol)
    scale = c / norm_before
    for k in grads:    # same arrays, same direction: every array multiplied by the one factor c / norm
        assert id(grads[k]) == ids[k] and grads[k].dtype == dtype
        np.testing.assert_allclose(grads[k], before[k] * scale, rtol=tol, atol=0)


def test_clip_default_threshold_is_five_and_equal_norm_is_untouched():
    g = {"a": np.array([3.0, 4.0])}              # norm 5 exactly
    assert clip_by_global_norm(g) == 5.0 and np.array_equal(g["a"], [3.0, 4.0])
    g = {"a": np.array([6.0, 8.0])}              # norm 10
    assert clip_by_global_norm(g) == 10.0 and np.allclose(g["a"], [3.0, 4.0], rtol=1e-15)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_refuses_non_finite_gradients(bad):
    grads = {"ok": np.ones(3), "broken": np.array([1.0, bad])}
    with pytest.raises(NonFiniteError, match="broken"):
        clip_by_global_norm(grads, 1.0)
    assert issubclass(NonFiniteError, ValueError)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, who, value", [
    (lambda: SGD(lr=0), "SGD", "0"),
    (lambda: SGD(lr=-0.1), "SGD", "-0.1"),
    (lambda: SGD(lr=float("nan")), "SGD", "nan"),
    (lambda: SGD(lr="0.1"), "SGD", "'0.1'"),
    (lambda: SGD(lr=0.1, momentum=1.0), "SGD", "1.0"),
    (lambda: SGD(lr=0.1, momentum=-0.5), "SGD", "-0.5"),
    (lambda: Adam(lr=0.0), "Adam", "0.0"),
    (lambda: Adam(beta1=1.0), "Adam", "1.0"),
    (lambda: Adam(beta1=-0.1), "Adam", "-0.1"),
    (lambda: Adam(beta2=1.5), "Adam", "1.5"),
    (lambda: Adam(eps=0), "Adam", "0"),
    (lambda: Adam(eps=-1e-8), "Adam", "-1e-08"),
    (lambda: AdamW(lr=-1), "AdamW", "-1"),
    (lambda: AdamW(beta2=1.0), "AdamW", "1.0"),
    (lambda: AdamW(weight_decay=-0.01), "AdamW", "-0.01"),
    (lambda: clip_by_global_norm({"a": np.ones(2)}, 0), "clip_by_global_norm", "0"),
    (lambda: clip_by_global_norm({"a": np.ones(2)}, -5.0), "clip_by_global_norm", "-5.0"),
    (lambda: clip_by_global_norm({"a": np.ones(2, dtype=int)}, 5.0), "clip_by_global_norm", "'a'"),
    (lambda: get_optimiser("rmsprop"), "get_optimiser", "'rmsprop'"),
    (lambda: get_optimiser({"name": "sgd", "beta1": 0.9}), "get_optimiser", "beta1"),
    (lambda: get_optimiser(42), "get_optimiser", "42"),
])
def test_bad_input_names_the_culprit_and_the_value(make, who, value):
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert message.startswith(who) and value in message


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError) as info:
        get_optimiser("rmsprop")
    assert all(name in str(info.value) for name in ("sgd", "momentum", "adam", "adamw"))
    with pytest.raises(ValueError) as info:
        get_optimiser({"name": "adamw", "decay": 0.1})
    assert "weight_decay" in str(info.value) and "decay" in str(info.value)


@pytest.mark.parametrize("opt", [SGD(0.1), SGD(0.1, 0.9), Adam(), AdamW()])
def test_step_refuses_mismatched_params_and_grads(opt):
    who = type(opt).__name__
    with pytest.raises(ValueError, match=f"^{who}:.*'b'"):
        opt.step({"W": np.zeros(2)}, {"W": np.zeros(2), "b": np.zeros(1)})
    with pytest.raises(ValueError, match=rf"^{who}:.*\(2, 3\).*\(3, 2\)"):
        opt.step({"W": np.zeros((3, 2))}, {"W": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=f"^{who}:.*'W'"):
        opt.step({"W": [0.0, 1.0]}, {"W": np.zeros(2)})          # a list cannot be updated in place
    with pytest.raises(ValueError, match=f"^{who}:"):
        opt.step([np.zeros(2)], [np.zeros(2)])
    assert opt.t == 0
