"""The chapter-03a engine (diydnn.Value): gradients against central differences, forks, deep graphs, errors."""
import math

import numpy as np
import pytest

from diydnn import Value, data_of, grad_of, numerical_gradient, rel_error, to_values


@pytest.mark.parametrize("seed", range(5))
def test_gradients_of_a_random_formula_match_central_differences(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(4)

    def f(v, log, exp):
        s = v[0] * v[1] - v[2] / (v[3] ** 2 + 1.0) + log(v[0] ** 2 + 0.1)
        return exp(s * 0.3) * v[2] + (v[0] - v[3]) ** 3 + 2.0 / (1.5 + v[1] ** 2)

    xv = to_values(x)
    out = f(xv, Value.log, Value.exp)
    out.backward()
    numeric = numerical_gradient(lambda: float(f(x, np.log, np.exp)), x)
    assert math.isclose(out.data, f(x, np.log, np.exp), rel_tol=1e-12)
    assert rel_error(grad_of(xv), numeric) < 1e-8


def test_a_value_used_twice_collects_both_gradients_and_backward_is_repeatable():
    x = Value(3.0)
    y = x * x + x            # x forks three ways
    y.backward()
    assert x.grad == 7.0
    y.backward()             # gradients are recomputed, not accumulated across calls
    assert x.grad == 7.0


def test_relu_subgradient_and_constants():
    for data, slope in ((2.0, 1.0), (-1.0, 0.0), (0.0, 0.0)):
        v = Value(data)
        (v.relu() * 3.0).backward()
        assert v.grad == 3.0 * slope
    c = Value(2.0)
    (5.0 - c / 4.0 + 1.0 / c).backward()
    assert math.isclose(c.grad, -0.25 - 0.25)


def test_a_deep_graph_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(20_000):  # far beyond Python's default recursion limit of 1000
        y = y * 1.0001 + 0.0
    y.backward()
    assert math.isclose(x.grad, 1.0001 ** 20_000, rel_tol=1e-9)
    order = y.topological_order()
    position = {id(n): i for i, n in enumerate(order)}
    assert all(position[id(p)] < position[id(n)] for n in order for p in n.parents)


def test_array_helpers_round_trip_and_matmul_gradient():
    rng = np.random.default_rng(0)
    X, W, G = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    Xv, Wv = to_values(X), to_values(W)
    assert np.array_equal(data_of(Xv), X)
    L = ((Xv @ Wv) * G).sum()
    L.backward()
    assert rel_error(grad_of(Xv), G @ W.T) < 1e-12 and rel_error(grad_of(Wv), X.T @ G) < 1e-12


def test_errors_are_clear():
    with pytest.raises(ValueError, match="exponent"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(ValueError, match="positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="not real"):
        Value(-4.0) ** 0.5
    with pytest.raises(ValueError, match="not differentiable"):
        Value(0.0) ** 0.5
    assert (Value(-2.0) ** 3).data == -8.0 and (Value(0.0) ** 2).data == 0.0
