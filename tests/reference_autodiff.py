"""An independent reference for the gradient tests: a tiny scalar reverse-mode autodiff.

Nothing here shares code with diydnn. Each Value is one float64 number that remembers
how it was made; backward() walks the graph in reverse topological order.
Slow (one Python object per number), so the tests use small shapes.
"""
import math

import numpy as np


class Value:
    __slots__ = ("data", "grad", "_parents", "_local")

    def __init__(self, data, parents=(), local=()):
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents   # Values this one was computed from
        self._local = local       # d self / d parent, one per parent

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    __radd__ = __add__

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other if isinstance(other, Value) else Value(-other))

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other.reciprocal()

    def reciprocal(self):
        return Value(1.0 / self.data, (self,), (-1.0 / self.data ** 2,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,))

    def sqrt(self):
        r = math.sqrt(self.data)
        return Value(r, (self,), (0.5 / r,))

    def backward(self):
        order, seen = [], set()

        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for p in v._parents:
                    visit(p)
                order.append(v)

        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            for p, d in zip(v._parents, v._local):
                p.grad += d * v.grad


def values(a):
    """np.ndarray -> object array of Values."""
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = Value(a[idx])
    return out


def grads(V):
    return np.vectorize(lambda v: v.grad, otypes=[float])(V)


def data(V):
    return np.vectorize(lambda v: v.data, otypes=[float])(V)


def dense(X, W, b):
    m, n = X.shape
    k = W.shape[1]
    Z = np.empty((m, k), dtype=object)
    for i in range(m):
        for j in range(k):
            Z[i, j] = sum((X[i, l] * W[l, j] for l in range(n)), b[j])
    return Z


def softmax(Z):
    out = np.empty(Z.shape, dtype=object)
    for i in range(Z.shape[0]):
        e = [z.exp() for z in Z[i]]
        s = sum(e[1:], e[0])
        for j, ej in enumerate(e):
            out[i, j] = ej / s
    return out


def cross_entropy(P, Y):
    """-(1/m) sum Y log P for probabilities P (Values) and one-hot Y (floats)."""
    m = P.shape[0]
    terms = [P[i, j].log() * float(-Y[i, j]) for i in range(m) for j in range(P.shape[1]) if Y[i, j] != 0]
    return sum(terms[1:], terms[0]) * (1.0 / m)
