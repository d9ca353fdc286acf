"""BatchNorm (chapter 05): gradients in training mode after a Dense, running statistics, inference, errors.

References: the scalar autodiff of tests/reference_autodiff.py (always) and PyTorch float64 (when installed).
The generic layer contract (shapes, NaN, config, ...) is tested in test_layer_contract.py.
"""
import numpy as np
import pytest

import reference_autodiff as ad
from diydnn._00_conventions import check_layer, numerical_gradient, rel_error
from diydnn._01_dense import Dense
from diydnn._02_activations import ReLU
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._05_batchnorm import BatchNorm

TOL = 1e-8


def bn_with_random_params(n, rng, dtype=np.float64, **kwargs):
    bn = BatchNorm(**kwargs)
    bn.build(n, dtype=dtype)
    bn.params["gamma"][:] = rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n)
    bn.params["beta"][:] = rng.standard_normal(n)
    return bn


class DenseThenBN:
    """Dense -> BatchNorm as one layer, with the members check_layer uses."""

    def __init__(self, dense, bn):
        self.dense, self.bn = dense, bn

    @property
    def params(self):
        return {"W": self.dense.params["W"], "gamma": self.bn.params["gamma"], "beta": self.bn.params["beta"]}

    @property
    def grads(self):
        return {"W": self.dense.grads["W"], "gamma": self.bn.grads["gamma"], "beta": self.bn.grads["beta"]}

    def forward(self, X, training=False):
        return self.bn.forward(self.dense.forward(X, training), training)

    def backward(self, dY):
        return self.dense.backward(self.bn.backward(dY))


@pytest.mark.parametrize("seed", range(5))
def test_gradient_check_training_mode_after_a_dense(seed):
    rng = np.random.default_rng(seed)
    m, n_in, units = rng.integers(3, 12), rng.integers(2, 7), rng.integers(2, 7)
    dense = Dense(units, rng=rng)
    H = dense.forward(rng.standard_normal((m, n_in)))               # what a BatchNorm really sees
    bn = bn_with_random_params(units, rng)
    errors = check_layer(bn, H, rng, training=True)                 # random upstream gradient inside
    assert set(errors) == {"X", "gamma", "beta"}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("seed", range(3))
def test_gradient_check_of_the_chain_dense_batchnorm(seed):
    rng = np.random.default_rng(10 + seed)
    m, n_in, units = rng.integers(3, 10), rng.integers(2, 6), rng.integers(2, 6)
    dense = Dense(units, rng=rng)
    dense.build(n_in, rng, np.float64)
    dense.params["b"][:] = rng.standard_normal(units)
    chain = DenseThenBN(dense, bn_with_random_params(units, rng))
    errors = check_layer(chain, rng.standard_normal((m, n_in)), rng, training=True)
    assert max(errors.values()) < 1e-7, errors
    # the Dense bias gets no gradient through a training-mode BatchNorm: shifts are normalised away
    assert np.abs(dense.grads["b"]).max() < 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_gradient_check_inference_mode(seed):
    rng = np.random.default_rng(20 + seed)
    bn = bn_with_random_params(4, rng)
    bn.state["running_mean"][:] = rng.standard_normal(4)
    bn.state["running_var"][:] = rng.uniform(0.3, 3.0, 4)
    errors = check_layer(bn, rng.standard_normal((5, 4)), rng, training=False)
    assert max(errors.values()) < 1e-8, errors


def test_all_ones_upstream_gives_zero_dX_so_the_check_uses_random_ones():
    rng = np.random.default_rng(3)
    bn = bn_with_random_params(3, rng)
    Y = bn.forward(rng.normal(4, 2, (6, 3)), training=True)
    assert np.abs(bn.backward(np.ones_like(Y))).max() < 1e-12
    assert np.abs(bn.backward(rng.standard_normal(Y.shape))).max() > 1e-3


def test_the_check_catches_a_backward_that_ignores_the_batch_statistics():
    class StatsAsConstants(BatchNorm):
        def backward(self, dY):
            _, inv_std, _ = self._cached()
            super().backward(dY)
            return dY * self.params["gamma"] * inv_std

    rng = np.random.default_rng(4)
    bn = StatsAsConstants()
    bn.build(3, dtype=np.float64)
    errors = check_layer(bn, rng.standard_normal((6, 3)), rng, training=True)
    assert errors["X"] > 1e-2


def _reference_batchnorm(Xv, gamma, beta, eps):
    """BatchNorm in scalar Values, column by column, written from the definition."""
    m, n = Xv.shape
    Y = np.empty((m, n), dtype=object)
    for j in range(n):
        col = list(Xv[:, j])
        mu = sum(col[1:], col[0]) * (1.0 / m)
        dev = [x - mu for x in col]
        var = sum((d * d for d in dev[1:]), dev[0] * dev[0]) * (1.0 / m)
        inv_std = (var + eps).sqrt().reciprocal()
        for i in range(m):
            Y[i, j] = gamma[j] * (dev[i] * inv_std) + beta[j]
    return Y


@pytest.mark.parametrize("seed", range(3))
def test_dense_batchnorm_against_scalar_autodiff(seed):
    rng = np.random.default_rng(30 + seed)
    m, n, h = 5, 4, 3
    X = rng.standard_normal((m, n))
    dense = Dense(h, rng=rng)
    dense.build(n, rng, np.float64)
    dense.params["b"][:] = rng.standard_normal(h)
    bn = bn_with_random_params(h, rng, eps=1e-5)
    G = rng.standard_normal((m, h))
    Y = bn.forward(dense.forward(X), training=True)
    dX = dense.backward(bn.backward(G))
    # reference
    Xv, Wv, bv, gv, betav = (ad.values(a) for a in (X, dense.params["W"], dense.params["b"],
                                                   bn.params["gamma"], bn.params["beta"]))
    Yv = _reference_batchnorm(ad.dense(Xv, Wv, bv), gv, betav, 1e-5)
    f = sum((Yv[idx] * G[idx] for idx in np.ndindex(Yv.shape)), ad.Value(0.0))
    f.backward()
    assert rel_error(Y, ad.data(Yv)) < TOL
    for ours, ref in [(dX, Xv), (dense.grads["W"], Wv), (bn.grads["gamma"], gv), (bn.grads["beta"], betav)]:
        assert rel_error(ours, ad.grads(ref)) < TOL
    # the bias's true gradient is zero; both sides agree on that up to rounding
    assert np.abs(dense.grads["b"]).max() < 1e-12 and np.abs(ad.grads(bv)).max() < 1e-12


def test_network_with_batchnorm_and_cross_entropy_against_scalar_autodiff():
    rng = np.random.default_rng(40)
    m, n, h, k = 6, 4, 5, 3
    X, y = rng.standard_normal((m, n)), rng.integers(0, k, m)
    d1, d2 = Dense(h, rng=rng), Dense(k, rng=rng)
    d1.build(n, rng, np.float64)
    d2.build(h, rng, np.float64)
    d2.params["b"][:] = rng.standard_normal(k)
    bn = bn_with_random_params(h, rng)
    relu, loss_fn = ReLU(), SoftmaxCrossEntropy()
    loss = loss_fn(d2.forward(relu.forward(bn.forward(d1.forward(X), training=True))), y)
    dX = d1.backward(bn.backward(relu.backward(d2.backward(loss_fn.backward()))))
    Xv, W1, b1, g, beta, W2, b2 = (ad.values(a) for a in (X, d1.params["W"], d1.params["b"], bn.params["gamma"],
                                                          bn.params["beta"], d2.params["W"], d2.params["b"]))
    H = _reference_batchnorm(ad.dense(Xv, W1, b1), g, beta, bn.eps)
    H = np.vectorize(lambda v: v.relu(), otypes=[object])(H)
    L = ad.cross_entropy(ad.softmax(ad.dense(H, W2, b2)), np.eye(k)[y])
    L.backward()
    assert abs(loss - L.data) <= TOL * abs(L.data)
    for ours, ref in [(dX, Xv), (d1.grads["W"], W1), (bn.grads["gamma"], g), (bn.grads["beta"], beta),
                      (d2.grads["W"], W2), (d2.grads["b"], b2)]:
        assert rel_error(ours, ad.grads(ref)) < TOL


def test_against_pytorch_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(50)
    m, n, h = 9, 5, 6
    X, G = rng.standard_normal((m, n)), rng.standard_normal((m, h))
    dense = Dense(h, rng=rng)
    dense.build(n, rng, np.float64)
    bn = bn_with_random_params(h, rng, momentum=0.8, eps=1e-3)
    Y = bn.forward(dense.forward(X), training=True)
    dX = dense.backward(bn.backward(G))
    t = {name: torch.tensor(a, requires_grad=True) for name, a in
         [("X", X), ("W", dense.params["W"]), ("b", dense.params["b"]),
          ("gamma", bn.params["gamma"]), ("beta", bn.params["beta"])]}
    running_mean, running_var = torch.zeros(h, dtype=torch.float64), torch.ones(h, dtype=torch.float64)
    Yt = torch.nn.functional.batch_norm(t["X"] @ t["W"] + t["b"], running_mean, running_var, t["gamma"], t["beta"],
                                        training=True, momentum=1 - 0.8, eps=1e-3)   # PyTorch's momentum = 1 - ours
    (Yt * torch.tensor(G)).sum().backward()
    assert rel_error(Y, Yt.detach().numpy()) < TOL
    for ours, name in [(dX, "X"), (dense.grads["W"], "W"), (bn.grads["gamma"], "gamma"), (bn.grads["beta"], "beta")]:
        assert rel_error(ours, t[name].grad.numpy()) < TOL
    # running statistics: same momentum convention (converted) and the same unbiased running variance
    assert rel_error(bn.state["running_mean"], running_mean.numpy()) < TOL
    assert rel_error(bn.state["running_var"], running_var.numpy()) < TOL


@pytest.mark.parametrize("seed", range(3))
def test_running_statistics_update_formula(seed):
    rng = np.random.default_rng(60 + seed)
    rho = float(rng.uniform(0.0, 0.99))
    n = int(rng.integers(1, 6))
    bn = BatchNorm(momentum=rho)
    mean, var = np.zeros(n), np.ones(n)
    for _ in range(3):
        m = int(rng.integers(2, 9))
        X = rng.normal(rng.standard_normal(n), rng.uniform(0.5, 3, n), size=(m, n))
        bn.forward(X, training=True)
        mean = rho * mean + (1 - rho) * X.mean(axis=0)
        var = rho * var + (1 - rho) * X.var(axis=0, ddof=1)          # the unbiased batch variance, as PyTorch
        np.testing.assert_allclose(bn.state["running_mean"], mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.state["running_var"], var, rtol=1e-12)


def test_momentum_convention_keras_style():
    """momentum is the weight of the old value: 0 keeps only the last batch; PyTorch's p equals our 1 - p."""
    rng = np.random.default_rng(7)
    X = rng.normal(3, 2, (8, 4))
    last_only = BatchNorm(momentum=0.0)
    last_only.forward(rng.standard_normal((8, 4)), training=True)
    last_only.forward(X, training=True)
    np.testing.assert_allclose(last_only.state["running_mean"], X.mean(0))
    np.testing.assert_allclose(last_only.state["running_var"], X.var(0, ddof=1))
    default = BatchNorm()
    assert default.momentum == 0.9
    default.forward(X, training=True)
    torch_p = 0.1                                   # PyTorch's default momentum: new = (1 - p) old + p batch
    np.testing.assert_allclose(default.state["running_mean"], (1 - torch_p) * 0 + torch_p * X.mean(0))


def test_running_statistics_are_updated_in_place():
    bn = BatchNorm(n_in=3)
    mean, var = bn.state["running_mean"], bn.state["running_var"]
    bn.forward(np.random.default_rng(0).normal(5, 1, (4, 3)), training=True)
    assert bn.state["running_mean"] is mean and bn.state["running_var"] is var
    assert np.all(mean > 0)


def test_inference_uses_only_the_running_statistics():
    rng = np.random.default_rng(8)
    bn = bn_with_random_params(3, rng)
    bn.state["running_mean"][:] = rng.standard_normal(3)
    bn.state["running_var"][:] = rng.uniform(0.5, 2.0, 3)
    before = {k: v.copy() for k, v in bn.state.items()}
    X = rng.normal(2, 3, (10, 3))
    full = bn.forward(X)
    expected = (bn.params["gamma"] * (X - before["running_mean"]) / np.sqrt(before["running_var"] + bn.eps)
                + bn.params["beta"])
    np.testing.assert_allclose(full, expected, rtol=1e-12)
    # each row's output is independent of the batch it is in
    np.testing.assert_allclose(bn.forward(X[:1]), full[:1], rtol=1e-12)
    perm = rng.permutation(10)
    np.testing.assert_allclose(bn.forward(X[perm]), full[perm], rtol=1e-12)
    np.testing.assert_allclose(bn.forward(np.vstack([X[2:5], rng.normal(50, 9, (4, 3))]))[:3], full[2:5], rtol=1e-12)
    for k in before:                                 # and inference never moves the running statistics
        np.testing.assert_array_equal(bn.state[k], before[k])


def test_training_uses_the_batch_statistics():
    rng = np.random.default_rng(9)
    bn = BatchNorm()
    X = rng.normal(5, 3, (12, 4))
    Y = bn.forward(X, training=True)                 # gamma = 1, beta = 0
    np.testing.assert_allclose(Y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Y.var(0), X.var(0) / (X.var(0) + bn.eps), rtol=1e-12)
    # in training mode a row's output depends on its companions
    assert not np.allclose(bn.forward(X[:4], training=True), Y[:4])


def test_batch_of_one_in_training_is_a_clear_error():
    bn = BatchNorm(name="bn1")
    with pytest.raises(ValueError, match=r"bn1.*at least 2 samples.*\(1, 5\)"):
        bn.forward(np.ones((1, 5)), training=True)
    # in inference mode one sample is fine
    assert bn.forward(np.ones((1, 5))).shape == (1, 5)


def test_float32_stays_float32_including_state():
    rng = np.random.default_rng(11)
    bn = BatchNorm()
    Y = bn.forward(rng.standard_normal((8, 3)).astype(np.float32), training=True)
    dX = bn.backward(rng.standard_normal(Y.shape).astype(np.float32))
    arrays = [Y, dX, *bn.params.values(), *bn.grads.values(), *bn.state.values()]
    assert all(a.dtype == np.float32 for a in arrays), [a.dtype for a in arrays]
    assert bn.forward(rng.standard_normal((4, 3)).astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("training", [True, False])
def test_backward_twice_gives_the_same_result(training):
    rng = np.random.default_rng(12)
    bn = bn_with_random_params(4, rng)
    Y = bn.forward(rng.standard_normal((6, 4)), training=training)
    G = rng.standard_normal(Y.shape)
    dX1, grads1 = bn.backward(G), {k: v.copy() for k, v in bn.grads.items()}
    dX2 = bn.backward(G)
    np.testing.assert_array_equal(dX1, dX2)
    for k in grads1:
        np.testing.assert_array_equal(grads1[k], bn.grads[k])


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5, float("nan"), "0.9", None, True])
def test_bad_momentum_is_a_value_error(momentum):
    with pytest.raises(ValueError, match="BatchNorm: momentum must be a number in \\[0, 1\\)"):
        BatchNorm(momentum=momentum)


@pytest.mark.parametrize("eps", [0.0, -1e-5, float("nan"), float("inf"), "1e-5", None])
def test_bad_eps_is_a_value_error(eps):
    with pytest.raises(ValueError, match="BatchNorm: eps must be a positive finite number"):
        BatchNorm(eps=eps)


@pytest.mark.parametrize("n_in", [0, -2, 2.5])
def test_bad_width_is_a_value_error(n_in):
    with pytest.raises(ValueError, match="input width must be a positive integer"):
        BatchNorm(n_in=n_in)


def test_eager_build_and_config():
    bn = BatchNorm(momentum=0.95, eps=1e-3, name="bn", n_in=7)
    assert bn.params["gamma"].shape == bn.params["beta"].shape == (7,)
    np.testing.assert_array_equal(bn.params["gamma"], 1)
    np.testing.assert_array_equal(bn.params["beta"], 0)
    np.testing.assert_array_equal(bn.state["running_mean"], 0)
    np.testing.assert_array_equal(bn.state["running_var"], 1)
    config = bn.get_config()
    assert config == {"name": "bn", "momentum": 0.95, "eps": 1e-3, "n_in": 7}
    assert BatchNorm(**config).get_config() == config
    with pytest.raises(ValueError, match=r"bn.*width 7.*\(2, 5\)"):
        bn.forward(np.ones((2, 5)))


def test_eps_enters_the_normalisation():
    """A constant column is mapped to beta without NaN, and eps changes the scale as the formula says."""
    X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 6.0]])
    for eps in (1e-5, 1.0):
        bn = BatchNorm(eps=eps)
        Y = bn.forward(X, training=True)
        np.testing.assert_array_equal(Y[:, 0], 0.0)
        var = X[:, 1].var()
        np.testing.assert_allclose(Y[:, 1], (X[:, 1] - 4) / np.sqrt(var + eps))


def test_numerical_gradient_of_gamma_in_inference_matches():
    """A direct check without check_layer: dgamma in inference mode with running statistics."""
    rng = np.random.default_rng(13)
    bn = bn_with_random_params(3, rng)
    bn.state["running_var"][:] = rng.uniform(0.5, 2, 3)
    X, G = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    bn.forward(X)
    bn.backward(G)
    num = numerical_gradient(lambda: float(np.sum(bn.forward(X) * G)), bn.params["gamma"])
    assert rel_error(bn.grads["gamma"], num) < 1e-8
