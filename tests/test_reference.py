"""Gradients against independent references, to 1e-8 relative error in float64.

Reference 1 (always): a scalar reverse-mode autodiff written in tests/reference_autodiff.py,
sharing no code with diydnn. Reference 2 (when installed): PyTorch, float64.
"""
import numpy as np
import pytest

import diydnn as dd
import reference_autodiff as ad

TOL = 1e-8


def build_net(rng, n, h, k):
    d1 = dd.Dense(h, rng=rng)
    d2 = dd.Dense(k, rng=rng)
    d1.build(n, rng, np.float64)
    d2.build(h, rng, np.float64)
    # non-zero biases so that their gradients are tested through non-trivial values
    d1.params["b"][:] = rng.standard_normal(h)
    d2.params["b"][:] = rng.standard_normal(k)
    return d1, d2


@pytest.mark.parametrize("seed", range(3))
def test_dense_relu_dense_softmax_cross_entropy_against_scalar_autodiff(seed):
    rng = np.random.default_rng(seed)
    m, n, h, k = 5, 4, 6, 3
    X, y = rng.standard_normal((m, n)), rng.integers(0, k, m)
    d1, d2 = build_net(rng, n, h, k)
    relu, sm, cce = dd.ReLU(), dd.Softmax(), dd.CategoricalCrossEntropy()
    # diydnn: the unfused chain, so each layer's backward is exercised
    loss = cce(sm.forward(d2.forward(relu.forward(d1.forward(X)))), y)
    dX = d1.backward(relu.backward(d2.backward(sm.backward(cce.backward()))))
    # reference
    Xv, W1, b1, W2, b2 = (ad.values(a) for a in (X, d1.params["W"], d1.params["b"], d2.params["W"], d2.params["b"]))
    H = np.vectorize(lambda v: v.relu(), otypes=[object])(ad.dense(Xv, W1, b1))
    L = ad.cross_entropy(ad.softmax(ad.dense(H, W2, b2)), np.eye(k)[y])
    L.backward()
    assert abs(loss - L.data) <= TOL * abs(L.data)
    for ours, ref in [(dX, Xv), (d1.grads["W"], W1), (d1.grads["b"], b1), (d2.grads["W"], W2), (d2.grads["b"], b2)]:
        assert dd.rel_error(ours, ad.grads(ref)) < TOL


@pytest.mark.parametrize("seed", range(3))
def test_fused_softmax_cross_entropy_against_scalar_autodiff(seed):
    rng = np.random.default_rng(seed)
    Z, y = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    loss = dd.SoftmaxCrossEntropy()
    value = loss(Z, y)
    Zv = ad.values(Z)
    L = ad.cross_entropy(ad.softmax(Zv), np.eye(4)[y])
    L.backward()
    assert abs(value - L.data) <= TOL * abs(L.data)
    assert dd.rel_error(loss.backward(), ad.grads(Zv)) < TOL


@pytest.mark.parametrize("seed", range(3))
def test_softmax_layer_with_random_upstream_against_scalar_autodiff(seed):
    rng = np.random.default_rng(seed)
    Z, G = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    sm = dd.Softmax()
    sm.forward(Z)
    ours = sm.backward(G)
    Zv = ad.values(Z)
    P = ad.softmax(Zv)
    f = sum((P[idx] * G[idx] for idx in np.ndindex(P.shape)), ad.Value(0.0))
    f.backward()
    assert dd.rel_error(ours, ad.grads(Zv)) < TOL


def test_against_pytorch_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    m, n, h, k = 8, 7, 9, 4
    X, y = rng.standard_normal((m, n)), rng.integers(0, k, m)
    d1, d2 = build_net(rng, n, h, k)
    relu, loss_fn = dd.ReLU(), dd.SoftmaxCrossEntropy()
    loss = loss_fn(d2.forward(relu.forward(d1.forward(X))), y)
    dX = d1.backward(relu.backward(d2.backward(loss_fn.backward())))
    t = {name: torch.tensor(a, requires_grad=True) for name, a in
         [("X", X), ("W1", d1.params["W"]), ("b1", d1.params["b"]), ("W2", d2.params["W"]), ("b2", d2.params["b"])]}
    Z = torch.relu(t["X"] @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    L = torch.nn.functional.cross_entropy(Z, torch.tensor(y))
    L.backward()
    assert abs(loss - L.item()) <= TOL * abs(L.item())
    for ours, name in [(dX, "X"), (d1.grads["W"], "W1"), (d1.grads["b"], "b1"), (d2.grads["W"], "W2"), (d2.grads["b"], "b2")]:
        assert dd.rel_error(ours, t[name].grad.numpy()) < TOL
