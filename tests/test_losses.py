"""Cross-entropy losses and accuracy: gradients, stability, labels, errors."""
import numpy as np
import pytest

import diydnn as dd


def probabilities(rng, m, k):
    P = np.exp(rng.standard_normal((m, k)))
    return P / P.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_cross_entropy_gradient(seed, one_hot):
    rng = np.random.default_rng(seed)
    m, k = rng.integers(1, 9), rng.integers(2, 8)
    y = rng.integers(0, k, size=m)
    labels = np.eye(k)[y] if one_hot else y
    assert dd.check_loss(dd.SoftmaxCrossEntropy(), rng.standard_normal((m, k)), labels) < 1e-8


@pytest.mark.parametrize("seed", range(4))
def test_categorical_cross_entropy_gradient(seed):
    rng = np.random.default_rng(seed)
    m, k = rng.integers(1, 9), rng.integers(2, 8)
    assert dd.check_loss(dd.CategoricalCrossEntropy(), probabilities(rng, m, k), rng.integers(0, k, size=m)) < 1e-8


def test_fused_backward_is_y_hat_minus_y_over_m():
    rng = np.random.default_rng(0)
    Z, y = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss = dd.SoftmaxCrossEntropy()
    loss(Z, y)
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    np.testing.assert_allclose(loss.backward(), (P - np.eye(4)[y]) / 6, rtol=1e-12)


def test_fused_equals_softmax_then_cross_entropy():
    rng = np.random.default_rng(1)
    Z, y = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    sm, cce, sce = dd.Softmax(), dd.CategoricalCrossEntropy(), dd.SoftmaxCrossEntropy()
    assert np.isclose(cce(sm.forward(Z), y), sce(Z, y), rtol=1e-12)
    np.testing.assert_allclose(sm.backward(cce.backward()), sce.backward(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("scale", [1e2, 1e4, 1e30])
def test_softmax_cross_entropy_is_finite_for_huge_logits(scale):
    Z = np.array([[scale, -scale, 0.0], [-scale, -scale, scale]])
    loss = dd.SoftmaxCrossEntropy()
    value = loss(Z, np.array([1, 2]))
    assert np.isfinite(value) and np.isclose(value, 2 * scale / 2)
    assert np.isfinite(loss.backward()).all()


def test_float32_logits_give_float32_gradient():
    Z = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    loss = dd.SoftmaxCrossEntropy()
    loss(Z, np.array([0, 1, 2, 0]))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize("loss_cls", [dd.SoftmaxCrossEntropy, dd.CategoricalCrossEntropy])
@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, 3]), r"\[0, 3\).*\[3\]"),
    (np.array([0, -1, 2]), r"\[0, 3\).*\[-1\]"),
    (np.array([0, 1]), r"2 labels for 3 predictions"),
    (np.eye(4)[:3], r"one-hot labels of shape \(3, 4\).*\(3, 3\)"),
    (np.array([0.0, 1.0, 2.0]), "integer labels expected"),
    (np.zeros((3, 3, 1), dtype=int), r"shape \(3, 3, 1\)"),
])
def test_bad_labels_are_clear_errors(loss_cls, labels, message):
    P = probabilities(np.random.default_rng(0), 3, 3)
    with pytest.raises(ValueError, match=rf"{loss_cls.__name__}.*{message}"):
        loss_cls()(P, labels)


@pytest.mark.parametrize("loss_cls", [dd.SoftmaxCrossEntropy, dd.CategoricalCrossEntropy])
def test_loss_backward_before_forward(loss_cls):
    with pytest.raises(ValueError, match="before forward"):
        loss_cls().backward()


def test_non_finite_predictions_are_refused():
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy.*NaN or inf"):
        dd.SoftmaxCrossEntropy()(np.array([[np.nan, 0.0]]), np.array([0]))


def test_accuracy():
    y_hat = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert dd.accuracy(y_hat, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert dd.accuracy(y_hat, np.eye(2)[[1, 0, 1]]) == 1.0
    with pytest.raises(ValueError, match="accuracy"):
        dd.accuracy(y_hat, np.array([1, 0]))
