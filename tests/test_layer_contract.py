"""The layer contract of chapter 01, for every layer: gradients, backward twice, dtypes, configs, errors.

Add a new layer to LAYERS (a factory taking an rng) and it gets every test below.
"""
import numpy as np
import pytest

import diydnn as dd

LAYERS = {
    "Dense": lambda rng: dd.Dense(int(rng.integers(1, 6)), rng=rng),
    "Dense-glorot": lambda rng: dd.Dense(3, init="glorot", rng=rng),
    "ReLU": lambda rng: dd.ReLU(),
    "Softmax": lambda rng: dd.Softmax(),
    # checked in training mode (check_layer's default); a large eps because with m = 2 samples the normalised
    # output is +-1 whatever the input, and only eps leaves a gradient that central differences can measure
    "BatchNorm": lambda rng: __import__("diydnn._05_batchnorm", fromlist=["BatchNorm"]).BatchNorm(
        momentum=float(rng.uniform(0.5, 0.99)), eps=0.1),
    # chapter 16's block on rows: an identity shortcut when the width is 4, else a Dense projection
    "Residual-dense": lambda rng: dd.Residual([dd.Dense(3, rng=rng), dd.ReLU(), dd.Dense(4, rng=rng)], rng=rng),
    "Residual-batchnorm": lambda rng: dd.Residual([dd.BatchNorm(eps=0.1), dd.ReLU()]),
    "Residual-projection": lambda rng: dd.Residual([dd.Dense(3, rng=rng)], shortcut="projection", rng=rng),
}


def random_batch(rng, dtype=np.float64):
    m, n = rng.integers(2, 7, size=2)
    return rng.standard_normal((m, n)).astype(dtype)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", LAYERS)
def test_gradient_check_float64_random_upstream(kind, seed):
    rng = np.random.default_rng(seed)
    layer = LAYERS[kind](rng)
    errors = dd.check_layer(layer, random_batch(rng), rng)
    assert set(errors) == {"X"} | set(layer.params)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("kind", LAYERS)
def test_params_and_grads_have_equal_keys_and_shapes(kind):
    rng = np.random.default_rng(0)
    layer = LAYERS[kind](rng)
    X = random_batch(rng)
    layer.backward(rng.standard_normal(layer.forward(X, training=True).shape))
    assert layer.params.keys() == layer.grads.keys()
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape
    assert isinstance(layer.state, dict)


@pytest.mark.parametrize("kind", LAYERS)
def test_backward_twice_does_not_accumulate(kind):
    rng = np.random.default_rng(1)
    layer = LAYERS[kind](rng)
    Y = layer.forward(random_batch(rng), training=True)
    G = rng.standard_normal(Y.shape)
    dX1 = layer.backward(G)
    first = {k: v.copy() for k, v in layer.grads.items()}
    dX2 = layer.backward(G)
    np.testing.assert_array_equal(dX1, dX2)
    for k in first:
        np.testing.assert_array_equal(first[k], layer.grads[k])


@pytest.mark.parametrize("kind", LAYERS)
def test_float32_stays_float32(kind):
    rng = np.random.default_rng(2)
    layer = LAYERS[kind](rng)
    X = random_batch(rng, np.float32)
    Y = layer.forward(X, training=True)
    dX = layer.backward(rng.standard_normal(Y.shape).astype(np.float32))
    assert Y.dtype == np.float32 and dX.dtype == np.float32
    assert all(v.dtype == np.float32 for v in list(layer.params.values()) + list(layer.grads.values()))


@pytest.mark.parametrize("kind", LAYERS)
def test_forward_does_not_mutate_input(kind):
    rng = np.random.default_rng(3)
    layer = LAYERS[kind](rng)
    X = random_batch(rng)
    before = X.copy()
    layer.forward(X, training=True)
    np.testing.assert_array_equal(X, before)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("bad", [np.zeros(4), np.zeros((2, 3, 4)), np.zeros((0, 4))], ids=["1-D", "3-D", "empty"])
def test_bad_shape_is_a_clear_error(kind, bad):
    layer = LAYERS[kind](np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{layer.name}.*shape \({bad.shape[0]},"):
        layer.forward(bad)


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_clear_error(kind, value):
    layer = LAYERS[kind](np.random.default_rng(0))
    X = np.ones((3, 4))
    X[1, 2] = value
    with pytest.raises(dd.NonFiniteError, match=rf"{layer.name}.*\(3, 4\).*NaN or inf"):
        layer.forward(X)


@pytest.mark.parametrize("kind", LAYERS)
def test_backward_before_forward_is_a_clear_error(kind):
    layer = LAYERS[kind](np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{layer.name}.*backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 3)))


@pytest.mark.parametrize("kind", LAYERS)
def test_upstream_gradient_of_wrong_shape_is_a_clear_error(kind):
    rng = np.random.default_rng(0)
    layer = LAYERS[kind](rng)
    Y = layer.forward(random_batch(rng))
    with pytest.raises(ValueError, match=rf"{layer.name}.*upstream gradient has shape"):
        layer.backward(np.ones((Y.shape[0] + 1, Y.shape[1])))


@pytest.mark.parametrize("kind", LAYERS)
def test_config_rebuilds_an_equivalent_layer(kind):
    rng = np.random.default_rng(4)
    layer = LAYERS[kind](rng)
    X = random_batch(rng, np.float32)  # an eagerly rebuilt layer is float32, the training dtype
    Y = layer.forward(X)
    config = layer.get_config()
    clone = type(layer)(**config)
    assert clone.get_config() == config
    clone.forward(X)  # builds, if lazy
    for k in layer.params:
        clone.params[k][...] = layer.params[k]
    for k in layer.state:
        clone.state[k][...] = layer.state[k]
    np.testing.assert_array_equal(clone.forward(X), Y)


def test_dense_wrong_width_names_layer_and_shapes():
    layer = dd.Dense(3, n_in=4, rng=np.random.default_rng(0), name="hidden")
    with pytest.raises(ValueError, match=r"hidden.*width 4.*\(5, 7\)"):
        layer.forward(np.ones((5, 7)))


def test_dense_lazy_and_eager_build_agree():
    eager = dd.Dense(3, n_in=4, rng=np.random.default_rng(7))
    lazy = dd.Dense(3, rng=np.random.default_rng(7))
    assert eager.built and not lazy.built and lazy.params == {}
    lazy.forward(np.ones((2, 4), dtype=np.float32))
    assert lazy.built and lazy.n_in == 4
    np.testing.assert_array_equal(eager.params["W"], lazy.params["W"])


def test_dense_uses_the_given_rng_and_never_the_global_state():
    state = np.random.get_state()[1].copy()
    a = dd.Dense(8, n_in=5, rng=np.random.default_rng(11)).params["W"]
    b = dd.Dense(8, n_in=5, rng=np.random.default_rng(11)).params["W"]
    c = dd.Dense(8, n_in=5, rng=np.random.default_rng(12)).params["W"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(state, np.random.get_state()[1])


@pytest.mark.parametrize("units", [0, -3, 2.5])
def test_dense_rejects_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        dd.Dense(units)


def test_the_gradient_check_catches_a_wrong_backward():
    """The checker itself must be able to fail: a Dense whose backward forgets the transpose-free db sum."""

    class BrokenDense(dd.Dense):
        def backward(self, dY):
            dX = super().backward(dY)
            self.grads["b"] = self.grads["b"] / dY.shape[0]   # the original's second 1/m
            return dX

    rng = np.random.default_rng(5)
    errors = dd.check_layer(BrokenDense(3, rng=rng), rng.standard_normal((6, 4)), rng)
    assert errors["X"] < 1e-8 and errors["W"] < 1e-8 and errors["b"] > 0.5


def test_softmax_is_stable_and_leaves_input_alone():
    Z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])
    before = Z.copy()
    P = dd.Softmax().forward(Z)
    assert np.isfinite(P).all() and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(Z, before)
    np.testing.assert_allclose(P[0], [1, 0, 0])


def test_relu_subgradient_at_zero_is_zero():
    relu = dd.ReLU()
    relu.forward(np.array([[0.0, -1.0, 2.0]]))
    np.testing.assert_array_equal(relu.backward(np.full((1, 3), 5.0)), [[0.0, 0.0, 5.0]])
