# %% [markdown]
# [← 03 — cross-entropy](03_cross_entropy.ipynb) · [begin here](00_begin_here.ipynb) · **03a — computational graph** · [next: 04 — initialisers →](04_initialisers.ipynb)
#
# # 03a — Backpropagation as a computational graph
#
# Chapters 01–03 derived each layer's backward pass by hand, index by index. This chapter looks at
# the same computation from one level down. Any formula a network evaluates is a **graph of small
# operations** (add, multiply, exp, log, max); each operation knows its own *local* derivative; and
# backpropagation is one sweep over the graph in reverse **topological order**, multiplying local
# derivatives along the edges and **adding** where a value was used more than once.
#
# We build that sweep as a tiny reverse-mode automatic-differentiation engine on scalars, the class
# `Value` — about seventy lines — and then use it, knowing nothing of the layers, to re-derive the
# gradients of Dense, softmax + cross-entropy and BatchNorm, and compare them with the library's
# hand-written backward passes in float64: every relative error is printed, and each is asserted below
# $10^{-14}$ — rounding, not approximation, since both sides compute the same sums exactly. The last section explains why a layer's
# backward is nothing but a *fused* piece of this graph: the same sums, computed with a few matrix
# products instead of one Python object per number.

# %%
"""Chapter 03a: a tiny scalar reverse-mode autodiff engine (Value) that re-derives the layers' gradients."""
import math

import numpy as np


# %% tags=["active-ipynb"]
# import time
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import numerical_gradient, rel_error, save_figure
# from diydnn._01_dense import Dense
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy
# from diydnn._05_batchnorm import BatchNorm
# rng = np.random.default_rng(31)

# %% [markdown]
# ## 1. A formula is a graph
#
# Take $f(a, b) = (a b + a)\,e^{b}$. Written as single operations, each producing one new number:
#
# $$u = a\cdot b, \quad v = u + a, \quad w = e^{b}, \quad f = v\cdot w .$$
#
# Each operation is a node; its inputs are its **parents**. The node knows the derivative of its
# output by each input — its **local gradient** — from its own inputs alone:
#
# | node | local gradients |
# |---|---|
# | $u = a b$ | $\partial u/\partial a = b$, $\partial u/\partial b = a$ |
# | $v = u + a$ | $\partial v/\partial u = 1$, $\partial v/\partial a = 1$ |
# | $w = e^b$ | $\partial w/\partial b = e^b = w$ |
# | $f = v w$ | $\partial f/\partial v = w$, $\partial f/\partial w = v$ |
#
# **The chain rule on a graph.** Write $\bar x := \partial f/\partial x$ for any node $x$ (chapter 00's
# $dx$). Start with $\bar f = 1$. A node's $\bar x$ is the sum, over every edge leaving $x$ towards a
# child $c$, of $\bar c \cdot \partial c/\partial x$:
#
# $$\bar x = \sum_{c\,:\,x \to c} \bar c\,\frac{\partial c}{\partial x}.$$
#
# To use it, every child's $\bar c$ must be final before $\bar x$ is computed: we visit the nodes in
# reverse **topological order** (an order in which every node comes after all of its parents). Here:
# $\bar v = w$, $\bar w = v$; then $\bar u = \bar v$; then
#
# $$\bar a = \underbrace{\bar u\, b}_{\text{via } u} + \underbrace{\bar v \cdot 1}_{\text{via } v} = w(b + 1), \qquad
# \bar b = \underbrace{\bar u\, a}_{\text{via } u} + \underbrace{\bar w\, w}_{\text{via } w} = w a + v w = a(b+2)e^b .$$
#
# $a$ and $b$ are each used **twice** (the graph *forks* at them), and their gradients are the
# **sums** over both uses. By direct differentiation of $f = a(b+1)e^b$: $\partial f/\partial a = (b+1)e^b$ and
# $\partial f/\partial b = a(b+2)e^b$ — the same. The cell checks the sweep by hand against central differences.

# %% tags=["active-ipynb"]
# a, b = 1.5, -0.4
# u = a * b; v = u + a; w = math.exp(b); f = v * w          # forward, one operation at a time
# f_bar = 1.0
# v_bar, w_bar = f_bar * w, f_bar * v                        # reverse topological order: f, then v and w, then u
# u_bar = v_bar * 1.0
# a_bar = u_bar * b + v_bar * 1.0                            # a forks into u and v: the two contributions ADD
# b_bar = u_bar * a + w_bar * w                              # b forks into u and w
# fab = lambda x, y: (x * y + x) * math.exp(y)
# num_a = (fab(a + 1e-6, b) - fab(a - 1e-6, b)) / 2e-6
# num_b = (fab(a, b + 1e-6) - fab(a, b - 1e-6)) / 2e-6
# print(f"a_bar {a_bar:.8f} (numerical {num_a:.8f}, closed form {(b + 1) * math.exp(b):.8f})")
# print(f"b_bar {b_bar:.8f} (numerical {num_b:.8f}, closed form {a * (b + 2) * math.exp(b):.8f})")
# assert abs(a_bar - (b + 1) * math.exp(b)) < 1e-12 and abs(b_bar - a * (b + 2) * math.exp(b)) < 1e-12
# assert abs(a_bar - num_a) < 1e-8 and abs(b_bar - num_b) < 1e-8

# %% [markdown]
# ## 2. The engine: `Value`
#
# A `Value` holds one float64 number (`data`), the gradient of the final output by it (`grad`), and
# how it was made: its `parents` and the local gradients $\partial\,\text{self}/\partial\,\text{parent}$,
# computed during the forward pass, when all the inputs are at hand. Arithmetic on Values builds the
# graph as a side effect, so ordinary Python code — `(a * b + a) * b.exp()` — records its own graph.
#
# `backward()` does the two things of section 1: it lists the graph in topological order (a
# depth-first search that appends a node after all its parents; written with an explicit stack, so a
# graph with a million nodes does not hit Python's recursion limit), then walks the list backwards
# and pushes each node's gradient to its parents with `+=` — the **add at forks**. It first sets every
# gradient in the graph to 0, so calling it twice gives the same result, as the layer contract asks.

# %%
class Value:
    """One float64 number in a computational graph: its value, d(output)/d(it), and how it was made."""

    __slots__ = ("data", "grad", "parents", "local_grads", "op")

    def __init__(self, data, parents=(), local_grads=(), op=""):
        self.data = float(data)
        self.grad = 0.0
        self.parents = tuple(parents)          # the Values this one was computed from
        self.local_grads = tuple(local_grads)  # d self / d parent, one per parent, fixed at creation
        self.op = op                           # a label for pictures: "+", "*", "exp", ...

    def __repr__(self):
        return f"Value({self.data:.6g}, grad={self.grad:.6g}{', op=' + repr(self.op) if self.op else ''})"

    @staticmethod
    def lift(x):
        """A Value for x: x itself if it is one, else a constant leaf (its gradient is computed but unused)."""
        return x if isinstance(x, Value) else Value(x, op="const")

    # -- operations: value and local gradients ---------------------------------------
    def __add__(self, other):
        other = Value.lift(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0), "+")

    def __mul__(self, other):
        other = Value.lift(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data), "*")

    def __pow__(self, p):
        if isinstance(p, Value):
            raise ValueError("Value ** Value is not supported: the exponent must be a plain number")
        if self.data < 0 and p != int(p) or self.data == 0 and p < 1:
            raise ValueError(f"Value ** {p}: not differentiable (or not real) at {self.data}")
        return Value(self.data ** p, (self,), (p * self.data ** (p - 1),), f"**{p:g}")

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,), "exp")

    def log(self):
        if self.data <= 0:
            raise ValueError(f"Value.log: the logarithm needs a positive number, got {self.data}")
        return Value(math.log(self.data), (self,), (1.0 / self.data,), "log")

    def relu(self):
        return Value(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,), "relu")  # subgradient 0 at 0

    # the rest are compositions of the above, so they need no derivative of their own
    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-Value.lift(other))

    def __truediv__(self, other):
        return self * Value.lift(other) ** -1

    def __radd__(self, other):
        return Value.lift(other) + self

    def __rmul__(self, other):
        return Value.lift(other) * self

    def __rsub__(self, other):
        return Value.lift(other) - self

    def __rtruediv__(self, other):
        return Value.lift(other) / self

    # -- reverse mode ----------------------------------------------------------------
    def topological_order(self):
        """Every Value this one depends on (and itself), each listed after all of its parents."""
        order, seen = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)           # all its parents are listed already
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))       # come back to it after its parents
            stack.extend((p, False) for p in node.parents if id(p) not in seen)
        return order

    def backward(self):
        """Fill .grad of every Value in the graph with d(self)/d(that Value)."""
        order = self.topological_order()
        for node in order:
            node.grad = 0.0                  # a fresh sweep: nothing is kept from an earlier call
        self.grad = 1.0
        for node in reversed(order):         # children before parents
            for parent, local in zip(node.parents, node.local_grads):
                parent.grad += local * node.grad   # += : a value used twice collects both contributions


# %% [markdown]
# Three helpers move between NumPy arrays and arrays of Values. NumPy's object arrays call
# `+`, `*`, `**` on their elements, so `X @ W + b`, `.sum(axis=0)` and broadcasting work on arrays
# of Values unchanged — each element operation adds nodes to the graph.

# %%
def to_values(a, op="input"):
    """A float64 array as an object array of leaf Values of the same shape."""
    a = np.asarray(a, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        out[idx] = Value(a[idx], op=op)
    return out


def data_of(V):
    """The numbers of an array of Values, as a float64 array."""
    return np.array([v.data for v in np.ravel(V)], dtype=np.float64).reshape(np.shape(V))


def grad_of(V):
    """The gradients of an array of Values, as a float64 array."""
    return np.array([v.grad for v in np.ravel(V)], dtype=np.float64).reshape(np.shape(V))


# %% [markdown]
# The check: the engine on $f(a, b) = (ab + a)e^b$ gives the closed-form gradients of section 1, and
# a wide random formula — with forks, exp, log, powers and division — agrees with chapter 00's central
# differences.

# %% tags=["active-ipynb"]
# a, b = Value(1.5, op="a"), Value(-0.4, op="b")
# f = (a * b + a) * b.exp()
# f.backward()
# print(f"f = {f.data:.8f}; a.grad = {a.grad:.8f}, b.grad = {b.grad:.8f}")
# assert abs(a.grad - (b.data + 1) * math.exp(b.data)) < 1e-12
# assert abs(b.grad - a.data * (b.data + 2) * math.exp(b.data)) < 1e-12
#
# def formula(x):
#     """A scalar of the 5 entries of x (Values or floats) with forks: x[0] is used four times."""
#     s = x[0] * x[1] + (x[2] ** 2 + 1).log() - x[0] / (x[3] ** 2 + 0.5)
#     return (s * x[4]).exp() * x[0] + (x[0] - x[2]) ** 3
#
# x_num = rng.standard_normal(5)
# x_val = to_values(x_num)
# out = formula(x_val)
# out.backward()
# def formula_float(x):
#     s = x[0] * x[1] + np.log(x[2] ** 2 + 1) - x[0] / (x[3] ** 2 + 0.5)
#     return np.exp(s * x[4]) * x[0] + (x[0] - x[2]) ** 3
# numeric = numerical_gradient(lambda: float(formula_float(x_num)), x_num)
# err = rel_error(grad_of(x_val), numeric)
# print(f"engine vs central differences on a 5-input formula: rel. error {err:.1e}")
# assert err < 1e-7                                    # chapter 00's pass mark
# out.backward()                                  # a second call gives the same gradients
# assert rel_error(grad_of(x_val), numeric) == err

# %% [markdown]
# ### Forks: why `+=` and not `=`
#
# $g = x\cdot x$ uses $x$ twice, once as each factor. The multiplication node has **two** edges to $x$,
# each with local gradient $x$, so $\bar x = x + x = 2x$. An engine that *assigned* the gradient along
# each edge (`parent.grad = local * node.grad`) would keep only the last edge and report $x$ — half the
# true derivative. The same happens, less visibly, to any value used twice: a weight used by every
# sample of a batch, an input used by every output unit, BatchNorm's mean used by every row.

# %% tags=["active-ipynb"]
# x = Value(3.0, op="x")
# g = x * x
# g.backward()
# overwritten = {}
# for parent, local in zip(g.parents, g.local_grads):
#     overwritten[id(parent)] = local * 1.0        # '=' instead of '+=': the second edge replaces the first
# print(f"d(x*x)/dx at x = 3: engine {x.grad}, with '=' instead of '+=' {overwritten[id(x)]}, true {2 * 3.0}")
# assert x.grad == 6.0 and overwritten[id(x)] == 3.0

# %% [markdown]
# ### A picture of the graph
#
# The graph of $f(a, b) = (ab + a)e^b$ as the engine recorded it, each node drawn in the column of its
# depth (its longest path from an input). Each box shows the operation, the value (forward pass,
# left to right) and the gradient $\partial f/\partial\,\cdot$ (backward pass, right to left). The inputs
# $a$ and $b$ each have two outgoing edges: their gradients are sums.

# %% tags=["active-ipynb"]
# def draw_graph(root, ax, names=None):
#     """Draw the graph that `root` depends on: columns by depth, boxes with op, data and grad."""
#     names = names or {}
#     order = root.topological_order()
#     depth = {}
#     for node in order:                               # parents come first, so their depth is known
#         depth[id(node)] = 1 + max((depth[id(p)] for p in node.parents), default=-1)
#     columns = {}
#     for node in order:
#         columns.setdefault(depth[id(node)], []).append(node)
#     pos = {id(n): (d, -(i - (len(col) - 1) / 2)) for d, col in columns.items() for i, n in enumerate(col)}
#     for node in order:
#         for parent in node.parents:
#             skips = depth[id(node)] - depth[id(parent)] > 1      # an edge that jumps a column bends around it
#             ax.annotate("", xy=pos[id(node)], xytext=pos[id(parent)],
#                         arrowprops=dict(arrowstyle="-|>", color="0.5", shrinkA=28, shrinkB=28, lw=1.2,
#                                         connectionstyle=f"arc3,rad={-0.45 if skips else 0}"))
#     for node in order:
#         label = names.get(id(node), node.op)
#         ax.text(*pos[id(node)], f"{label}\n{node.data:.3f}\ngrad {node.grad:.3f}", ha="center", va="center",
#                 fontsize=9, bbox=dict(boxstyle="round", fc="lavender" if node.parents else "honeydew", ec="0.4"))
#     ax.set(xlim=(-0.5, max(columns) + 0.5), ylim=(-2.0, 2.0)); ax.axis("off")
#
# a, b = Value(1.5, op="a"), Value(-0.4, op="b")
# u = a * b; v = u + a; w = b.exp(); f = v * w
# f.backward()
# fig, ax = plt.subplots(figsize=(10, 3.6))
# draw_graph(f, ax, names={id(a): "a", id(b): "b", id(u): "u = a*b", id(v): "v = u + a", id(w): "w = exp(b)", id(f): "f = v*w"})
# ax.set_title(r"$f(a, b) = (ab + a)\,e^b$: forward values and backward gradients; $a$ and $b$ fork")
# save_figure(fig, "03a_graph.png")
# print("topological order:", [n.op for n in f.topological_order()])
# assert [n.op for n in f.topological_order()][-1] == "*" and f.topological_order()[-1] is f
# plt.show()

# %% [markdown]
# ## 3. Dense, re-derived by the engine
#
# Build $Z = XW + b$ from Values — $m\cdot k$ sums of $n$ products — then the scalar
# $L = \sum_{ik} Z_{ik}G_{ik}$ with a random $G$ (the projection of chapter 00, so that $\partial L/\partial Z = G$).
# The engine knows nothing of Dense; it only multiplies and adds. Its gradients of $X$, $W$ and $b$
# must equal `Dense.backward(G)` and `Dense.grads`.

# %% tags=["active-ipynb"]
# m, n, k = 4, 3, 5
# X = rng.standard_normal((m, n))
# dense = Dense(k, n_in=n, rng=rng)
# dense.params = {"W": dense.params["W"].astype(np.float64), "b": rng.standard_normal(k)}
# G = rng.standard_normal((m, k))
#
# Xv, Wv, bv = to_values(X), to_values(dense.params["W"]), to_values(dense.params["b"])
# Zv = Xv @ Wv + bv                                   # object arrays: every * and + is a node
# L = (Zv * G).sum()
# L.backward()
#
# Z = dense.forward(X)
# dX = dense.backward(G)
# errors = {"Z": rel_error(data_of(Zv), Z), "dX": rel_error(grad_of(Xv), dX),
#           "dW": rel_error(grad_of(Wv), dense.grads["W"]), "db": rel_error(grad_of(bv), dense.grads["b"])}
# print({name: f"{e:.1e}" for name, e in errors.items()}, f"  graph nodes: {len(L.topological_order())}")
# assert max(errors.values()) < 1e-14                 # float64 rounding: the same sums in another order

# %% [markdown]
# ## 4. Softmax + cross-entropy, re-derived
#
# From the logits $Z$: subtract each row's maximum $c_i$ (a plain number, so no gradient flows into it —
# and none should: chapter 02 showed softmax does not change under a shift), then
# $\log\hat Y_{ij} = (Z_{ij} - c_i) - \log\sum_l e^{Z_{il} - c_i}$ and $L = -\frac1m\sum_i \log\hat Y_{i,y_i}$.
# Chapter 03 found $\partial L/\partial Z = (\hat Y - Y)/m$ by collapsing a Jacobian by hand; the engine
# gets it by walking a graph of exp, +, log and ×, and must agree with `SoftmaxCrossEntropy.backward()`.

# %% tags=["active-ipynb"]
# m, k = 6, 4
# Z = rng.standard_normal((m, k)) * 2
# y = rng.integers(0, k, size=m)
#
# Zv = to_values(Z)
# log_probs = []
# for i in range(m):
#     shifted = [z - Z[i].max() for z in Zv[i]]                 # c_i is a number, not a Value
#     log_sum = sum((s.exp() for s in shifted), Value(0.0)).log()
#     log_probs.append(shifted[y[i]] - log_sum)                  # log y_hat of the true class
# L = -sum(log_probs, Value(0.0)) / m
# L.backward()
#
# sce = SoftmaxCrossEntropy()
# loss = sce(Z, y)
# errors = {"loss": abs(L.data - loss) / abs(loss), "dZ": rel_error(grad_of(Zv), sce.backward())}
# print({name: f"{e:.1e}" for name, e in errors.items()})
# assert max(errors.values()) < 1e-14

# %% [markdown]
# ## 5. BatchNorm, re-derived — a look back, after chapter 05
#
# *BatchNorm is taught in [chapter 05](05_batchnorm.ipynb). On a first read, skip to section 6 and come back here
# after chapter 05; the cells run either way, since the library already holds the layer.*
#
# BatchNorm in training mode (chapter 05) normalises each column with the batch's own mean and variance:
#
# $$\mu = \frac1m\sum_i X_{i\cdot}, \quad \sigma^2 = \frac1m\sum_i (X_{i\cdot} - \mu)^2, \quad
# \hat X = (X - \mu)\,(\sigma^2 + \varepsilon)^{-1/2}, \quad Y = \gamma\odot\hat X + \beta .$$
#
# In the graph, $\mu$ is a node used by **every row** (a fork with $m$ branches), and so is $\sigma^2$; each
# $X_{ij}$ reaches $Y$ directly, through $\mu_j$ and through $\sigma^2_j$. Chapter 05 summed those three
# paths by hand into its boxed formula; the engine sums them by walking the graph. We check after a
# Dense (so that BatchNorm's input is not standard normal) with random $\gamma$, $\beta$ and upstream $G$.

# %% tags=["active-ipynb"]
# m, n, k = 5, 3, 4
# X0 = rng.standard_normal((m, n))
# pre = Dense(k, n_in=n, rng=rng)
# pre.params = {"W": pre.params["W"].astype(np.float64), "b": rng.standard_normal(k)}
# X = pre.forward(X0)                                 # BatchNorm's input: the output of a Dense
# bn = BatchNorm(n_in=k)
# bn.params = {"gamma": rng.uniform(0.5, 2.0, k), "beta": rng.standard_normal(k)}
# G = rng.standard_normal((m, k))
#
# Xv, gv, betav = to_values(X), to_values(bn.params["gamma"]), to_values(bn.params["beta"])
# mu = Xv.sum(axis=0) / m                             # one node per column, used by every row
# var = ((Xv - mu) ** 2).sum(axis=0) / m
# Yv = gv * ((Xv - mu) * (var + bn.eps) ** -0.5) + betav
# L = (Yv * G).sum()
# L.backward()
#
# Y = bn.forward(X, training=True)
# dX = bn.backward(G)
# errors = {"Y": rel_error(data_of(Yv), Y), "dX": rel_error(grad_of(Xv), dX),
#           "dgamma": rel_error(grad_of(gv), bn.grads["gamma"]), "dbeta": rel_error(grad_of(betav), bn.grads["beta"])}
# print({name: f"{e:.1e}" for name, e in errors.items()})
# assert max(errors.values()) < 1e-14

# %% [markdown]
# And the paths through $\mu$ and $\sigma^2$ matter: drop them — treat $\mu$ and $\sigma^2$ as constants, as
# if BatchNorm normalised with fixed statistics — and the gradient is wrong (this is, in effect, what
# [the original](https://github.com/tomjwalker/diy-dnn) did when it normalised with its running statistics during training; the bug zoo,
# experiment 09, shows what that does to training).

# %% tags=["active-ipynb"]
# Xv2, gv2, betav2 = to_values(X), to_values(bn.params["gamma"]), to_values(bn.params["beta"])
# mu_const, var_const = X.mean(axis=0), X.var(axis=0)          # plain numbers: no edges back to X
# L2 = ((gv2 * ((Xv2 - mu_const) * (var_const + bn.eps) ** -0.5) + betav2) * G).sum()
# L2.backward()
# err_no_paths = rel_error(grad_of(Xv2), dX)
# print(f"dX without the paths through mu and sigma^2: rel. error {err_no_paths:.2f} against the true gradient")
# assert abs(L2.data - L.data) < 1e-9 and err_no_paths > 0.1    # same forward value, wrong gradient

# %% [markdown]
# ## 6. Why a layer's backward is a fused piece of the graph
#
# Look at what the engine summed for Dense. $X_{ij}$ is used by the $k$ outputs $Z_{i1},\dots,Z_{ik}$ of its
# row — a fork with $k$ branches, local gradient $W_{jl}$ on the branch to $Z_{il}$ — so
#
# $$\bar X_{ij} = \sum_{l=1}^{k} \bar Z_{il}\,W_{jl} = (\bar Z\,W^\top)_{ij}, \qquad
# \bar W_{jl} = \sum_{i=1}^{m} \bar Z_{il}\,X_{ij} = (X^\top \bar Z)_{jl}, \qquad \bar b_l = \sum_{i=1}^{m} \bar Z_{il}.$$
#
# $W_{jl}$ forks into the $m$ rows of the batch, $b_l$ as well. **Every sum over a fork is a matrix product
# or a column sum**: `Dense.backward` is the engine's reverse sweep over those $2mnk$ nodes, with the
# sums over forks grouped into three array operations. The same holds for every layer: the
# softmax-cross-entropy backward $(\hat Y - Y)/m$ is the sweep over its exp/log/sum nodes collapsed
# algebraically, and BatchNorm's boxed formula is the sweep over its $\mu$ and $\sigma^2$ forks.
#
# The fusion is what makes training possible: one Python object per number costs microseconds per node.
# The cell counts the nodes of a Dense graph against the formula and times the engine against the
# library on the same small layer.

# %% tags=["active-ipynb"]
# m, n, k = 16, 32, 16
# X = rng.standard_normal((m, n)); G = rng.standard_normal((m, k))
# dense = Dense(k, n_in=n, rng=rng)
# dense.params = {"W": dense.params["W"].astype(np.float64), "b": np.zeros(k)}
# t0 = time.perf_counter()
# Xv, Wv, bv = to_values(X), to_values(dense.params["W"]), to_values(dense.params["b"])
# L = ((Xv @ Wv + bv) * G).sum()
# L.backward()
# t_engine = time.perf_counter() - t0
# t0 = time.perf_counter()
# for _ in range(100):
#     dense.forward(X); dense.backward(G)
# t_library = (time.perf_counter() - t0) / 100
# n_ops = sum(1 for node in L.topological_order() if node.parents)
# # Z: m*k entries of n products and n additions (n-1 inside the matmul, 1 for b); L: m*k products, m*k - 1 additions
# expected = m * k * 2 * n + m * k + (m * k - 1)
# print(f"operation nodes: {n_ops:,} (formula {expected:,});  engine {t_engine * 1e3:.0f} ms, "
#       f"library {t_library * 1e6:.0f} µs: {t_engine / t_library:,.0f}x")
# assert n_ops == expected and rel_error(grad_of(Xv), dense.backward(G)) < 1e-8
# assert t_engine > 10 * t_library

# %% [markdown]
# ## Summary
#
# * A formula is a graph of small operations; each knows its **local gradients** from its own inputs.
# * Reverse mode: visit the nodes in reverse **topological order**, and push each node's gradient to its
#   parents, times the local gradient. Where a value is used more than once (a **fork**), the
#   contributions **add** (`+=`).
# * `Value` — our seventy-line engine — re-derives, without knowing any layer, the gradients of Dense,
#   softmax + cross-entropy and BatchNorm; they match the library's backward passes to rounding (every
#   relative error printed in sections 3–5 is below $10^{-14}$, asserted).
# * A layer's backward is a fused piece of this sweep: the sums over forks become matrix products and
#   column sums, thousands of times faster than one object per number.
#
# ## Exercises
#
# 1. Add `tanh` to the engine (local gradient $1 - \tanh^2$) without editing the class: write a function
#    that creates the node. Check it against central differences.
# 2. Use the engine to show that BatchNorm in **training** mode couples the rows of a batch: the loss of
#    row 0 alone has a non-zero gradient with respect to row 1. In a Dense–ReLU network the same
#    gradient is exactly zero. (Experiment 09 turns this into the batch-independence check.)
# 3. For a Dense layer with an $m\times n$ input and $k$ units, how many forward passes does the
#    central-difference check of chapter 00 need for all of $X$, $W$ and $b$, and how many sweeps does
#    the engine need? Compute both for $m=16$, $n=32$, $k=16$.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# A node needs only its value, its parents and its local gradients, all of which the
# constructor takes; $\frac{d}{dx}\tanh x = 1 - \tanh^2 x$.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     def tanh(x):
#         t = math.tanh(x.data)
#         return Value(t, (x,), (1.0 - t * t,), "tanh")
#
#     x_num = rng.standard_normal(3)
#     x_val = to_values(x_num)
#     out = tanh(x_val[0] * x_val[1]) * x_val[2] + tanh(x_val[2])     # x[2] forks
#     out.backward()
#     numeric = numerical_gradient(lambda: float(np.tanh(x_num[0] * x_num[1]) * x_num[2] + np.tanh(x_num[2])), x_num)
#     print(f"tanh node vs central differences: rel. error {rel_error(grad_of(x_val), numeric):.1e}")
#     assert rel_error(grad_of(x_val), numeric) < 1e-7

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# Make the scalar depend on row 0 of the output only, and read the gradient of row 1 of
# the input. Through BatchNorm, row 1 moves $\mu$ and $\sigma^2$, which row 0's output uses; through
# Dense and ReLU, row 1 never meets row 0.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     X = rng.standard_normal((4, 3)); g0 = rng.standard_normal(3)
#     Xv = to_values(X)
#     mu = Xv.sum(axis=0) / 4
#     var = ((Xv - mu) ** 2).sum(axis=0) / 4
#     Y_bn = (Xv - mu) * (var + 1e-5) ** -0.5
#     (Y_bn[0] * g0).sum().backward()
#     row1_bn = np.abs(grad_of(Xv)[1]).max()
#     Xv = to_values(X); W = rng.standard_normal((3, 3))
#     Y_mlp = np.vectorize(Value.relu)(Xv @ W)
#     (Y_mlp[0] * g0).sum().backward()
#     row1_mlp = np.abs(grad_of(Xv)[1]).max()
#     print(f"max |d loss(row 0) / d X[1]|: BatchNorm (training) {row1_bn:.3f}, Dense-ReLU {row1_mlp}")
#     assert row1_bn > 1e-3 and row1_mlp == 0.0

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# Central differences need two forward passes per number checked: $2(mn + nk + k)$.
# Reverse mode needs one forward pass (which records the graph) and one backward sweep for *all*
# gradients of a scalar, whatever their number — which is why training uses it.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     m, n, k = 16, 32, 16
#     print(f"central differences: {2 * (m * n + n * k + k):,} forward passes;  reverse mode: 1 forward + 1 backward sweep")
#     assert 2 * (m * n + n * k + k) == 2080

# %% [markdown]
# ---
# [← 03 — cross-entropy](03_cross_entropy.ipynb) · [begin here](00_begin_here.ipynb) · **03a — computational graph** · [next: 04 — initialisers →](04_initialisers.ipynb)
