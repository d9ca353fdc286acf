# %% [markdown]
# [← 06 — optimisers](06_optimisers.ipynb) · [begin here](00_begin_here.ipynb) · **07 — model** · [next: 08 — MNIST →](08_mnist.ipynb)
#
# # 07 — The model: Sequential
#
# Chapter 03 trained a network by hand: a list of layers, a loop for the forward pass, a loop
# in reverse for the backward pass, a loop over every parameter for the update. A **model** is
# that list plus the bookkeeping around it: unique names for the layers, building them with
# the right widths, one dict of all parameters for the optimiser, a summary table, a plain
# description of the architecture (a *config*) and a file that holds config and weights.
#
# `Sequential` is itself a `Layer` (chapter 01): it obeys the same contract, so the same
# gradient check proves a whole model right.
#
# The idea comes first and is small: a model is six lines of forward and backward loops
# (section 2). The sections after it grow that into the library's class one piece at a time. The
# plumbing a real library needs on top — a config and its registry of layer types, `state_dict`,
# files written atomically and read without pickles, input validation — is in the section
# **Engineering** at the end; the ideas are complete without it.


# %%
"""Chapter 07: the model. Sequential is a Layer made of layers: names, building, forward/backward,
params/grads/state, summary, config, state_dict, atomic save/load and predict."""
import inspect
import json
from pathlib import Path

import numpy as np

from diydnn._00_conventions import write_atomically
from diydnn._01_dense import Dense, Layer
from diydnn._02_activations import ReLU, Softmax
from diydnn._05_batchnorm import BatchNorm


# %% tags=["active-ipynb"]
# import tempfile
# from pathlib import Path
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, numerical_gradient, quick_mode, rel_error, save_figure
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# rng = np.random.default_rng(7)
#
# # The Engineering section at the end of this chapter defines the checks of a list of layers that the model
# # calls (_check_layers). So that the examples can run before we get there, we take it from the finished module
# # now (`import diydnn` ran that section already); the section defines it again, identically.
# from diydnn._07_model import _check_layers


# %% [markdown]
# ## 1. A model is a composition
#
# A network of $L$ layers maps a batch $X$ to outputs by applying the layers in turn:
#
# $$A_0 = X,\qquad A_\ell = f_\ell(A_{\ell-1};\,\theta_\ell)\quad(\ell = 1,\dots,L),\qquad
# \hat Y = A_L = (f_L\circ\cdots\circ f_1)(X).$$
#
# For the backward pass take one sample (a row $x$) and write $J_\ell = \partial a_\ell/\partial a_{\ell-1}$
# for the Jacobian of layer $\ell$. The loss reaches $a_{\ell-1}$ only through $a_\ell$, so the chain rule gives
#
# $$da_{\ell-1} = J_\ell^\top\, da_\ell, \qquad dx = J_1^\top J_2^\top\cdots J_L^\top\, da_L = (J_L\cdots J_1)^\top da_L :$$
#
# the Jacobian of the composition is the product of the Jacobians, and the backward pass
# multiplies by their transposes **from the output down**. The parameters $\theta_\ell$ also reach the
# loss only through $a_\ell$, so
#
# $$d\theta_\ell = \Big(\frac{\partial a_\ell}{\partial \theta_\ell}\Big)^{\!\top} da_\ell ,$$
#
# which layer $\ell$ computes from $da_\ell$ and its own cache. That is why every layer's `backward`
# needs only the gradient at its output, and a model's `backward` is a loop over the layers in
# reverse. No layer ever builds $J_\ell$ (each computes the product $J_\ell^\top da_\ell$ directly), but to
# check the claim we build them here for one sample, with batch-first rows: Dense $a W + b$ has
# $J = W^\top$, ReLU has $J = \mathrm{diag}(\mathbb 1[z > 0])$, Softmax has $J = \mathrm{diag}(\hat y) - \hat y\hat y^\top$
# (chapter 02). Their product must equal the numerical Jacobian of the whole chain.

# %% tags=["active-ipynb"]
# chain = [Dense(4, rng=rng), ReLU(), Dense(3, rng=rng), Softmax()]
# x1 = rng.standard_normal((1, 5))                    # one sample, float64
#
#
# def run_chain(x):
#     for layer in chain:
#         x = layer.forward(x)
#     return x
#
#
# y1 = run_chain(x1)
# W1, W2 = chain[0].params["W"], chain[2].params["W"]
# z1 = x1 @ W1 + chain[0].params["b"]
# jacobians = [W1.T, np.diag((z1[0] > 0).astype(float)), W2.T, np.diag(y1[0]) - np.outer(y1[0], y1[0])]
# J_product = jacobians[3] @ jacobians[2] @ jacobians[1] @ jacobians[0]          # J_L ... J_1, shape (3, 5)
#
# J_numeric = np.zeros((3, 5))
# for i in range(3):                                   # row i: the gradient of output i
#     J_numeric[i] = numerical_gradient(lambda: float(run_chain(x1)[0, i]), x1)[0]
# print(f"J_4 J_3 J_2 J_1 vs numerical Jacobian of the chain: rel. error {rel_error(J_product, J_numeric):.1e}")
#
# run_chain(x1)                                        # restore the caches for the backward pass
# g = rng.standard_normal((1, 3))
# dx = g
# for layer in reversed(chain):
#     dx = layer.backward(dx)
# print(f"backward in reverse order vs (J_4 J_3 J_2 J_1)^T g: rel. error {rel_error(dx[0], J_product.T @ g[0]):.1e}")
# assert rel_error(J_product, J_numeric) < 1e-8 and rel_error(dx[0], J_product.T @ g[0]) < 1e-12


# %% [markdown]
# ## 2. The idea in six lines
#
# That is all a model is. Written as a class, with nothing else:

# %% tags=["active-ipynb"]
# class TinySequential:
#     """A model, the whole idea: forward through the layers, backward through them in reverse."""
#
#     def __init__(self, layers):
#         self.layers = layers
#
#     def forward(self, X, training=False):
#         for layer in self.layers:
#             X = layer.forward(X, training=training)
#         return X
#
#     def backward(self, dY):
#         for layer in reversed(self.layers):
#             dY = layer.backward(dY)
#         return dY

# %% [markdown]
# Checked like any layer: for a random upstream gradient $G$, `backward(G)` must be the gradient of
# $\sum_{ij} G_{ij}\,\hat Y_{ij}$ with respect to the input and to every weight, here against central
# differences in float64 on a batch of 8.

# %% tags=["active-ipynb"]
# tiny = TinySequential([Dense(6, rng=rng), ReLU(), Dense(3, rng=rng), Softmax()])
# X_t = rng.standard_normal((8, 5))
# G_t = rng.standard_normal((8, 3))
# tiny.forward(X_t, training=True)
# dX_t = tiny.backward(G_t)
# tiny_loss = lambda: float(np.sum(tiny.forward(X_t, training=True) * G_t))
# errors_t = {"X": rel_error(dX_t, numerical_gradient(tiny_loss, X_t))}
# for i in (0, 2):                                     # the two Dense layers: W and b
#     for key, value in tiny.layers[i].params.items():
#         analytic = tiny.layers[i].grads[key].copy()
#         errors_t[f"layer {i} {key}"] = rel_error(analytic, numerical_gradient(tiny_loss, value))
# print({k: f"{v:.1e}" for k, v in errors_t.items()})
# assert max(errors_t.values()) < 1e-7

# %% [markdown]
# Everything else in this chapter is bookkeeping around these loops: names (section 3), building
# the layers with the right widths and gathering their parameters (4), the checks of the real class
# against the six lines (5), `summary` (7) and `predict` (8).

# %% [markdown]
# ## 3. Names
#
# An optimiser keeps its own state per parameter (Adam's moments), a checkpoint stores every
# array, and a summary prints every layer: all need a **unique, stable name** per layer. As in
# Keras, a layer gets its type and a per-type counter, by position: `dense_0`, `relu_0`, `dense_1`.
# The same architecture always gets the same names, so a file saved from one model loads into
# another built the same way. A name the user chose is kept.

# %%
def _assign_names(layers, who):
    """Give each layer a unique name: its own, or type_counter (dense_0, relu_0, dense_1).

    The list is checked first (_check_layers, in the Engineering section): a ValueError naming `who`."""
    _check_layers(layers, who)
    is_default = [layer.name == type(layer).__name__.lower() for layer in layers]   # Layer's default name
    chosen = [layer.name for layer, default in zip(layers, is_default) if not default]
    taken, counters = set(chosen), {}
    for layer, default in zip(layers, is_default):
        if default:
            base = type(layer).__name__.lower()
            i = counters.get(base, 0)
            while f"{base}_{i}" in taken:       # skip a counter name the user already took
                i += 1
            layer.name = f"{base}_{i}"
            taken.add(layer.name)
            counters[base] = i + 1


# %% [markdown]
# The input of a model is described by the shape of **one sample**: a width `n_in` (an int) for rows of
# features, or, for images (chapter 12), a tuple such as `(28, 28, 1)`. The batch size is never part of it.

# %%
def _input_shape(n_in, who):
    """n_in as an int (a width) or a tuple of ints (an image's shape); a ValueError naming `who` otherwise."""
    shape = (n_in,) if np.ndim(n_in) == 0 else tuple(n_in)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise ValueError(f"{who}: input width must be a positive integer (or a shape of positive integers), got {n_in!r}")
    return int(shape[0]) if len(shape) == 1 else tuple(int(d) for d in shape)


def _batch_shape(n_in):
    """"(None, 50)" for a width, "(None, 28, 28, 1)" for an image shape: None stands for the batch size."""
    dims = (n_in,) if isinstance(n_in, int) else n_in
    return "(None, " + ", ".join(str(d) for d in dims) + ")"


# %% tags=["active-ipynb"]
# named = [Dense(8), ReLU(), Dense(8, name="hidden"), ReLU(), Dense(3), Softmax()]
# _assign_names(named, "demo")
# print([layer.name for layer in named])
# assert [layer.name for layer in named] == ["dense_0", "relu_0", "hidden", "relu_1", "dense_1", "softmax_0"]


# %% [markdown]
# ## 4. The class
#
# `Sequential` is `TinySequential` plus what the rest of the library needs:
#
# * **`forward` / `backward`**: the two loops of section 2; `forward` first checks the batch (2-D, not
#   empty, the model's width) and builds the model on first use.
# * **`params`, `grads`, `state`** are dicts gathered from the layers under `"layer/name"` keys.
#   `params` and `state` hold the layers' **own arrays**, not copies: an optimiser updates
#   `model.params["dense_0/W"] -= lr * dW` in place, and the layer sees it. `grads` is gathered
#   anew on every access, because a layer's `backward` may bind new gradient arrays (Dense
#   overwrites its own in place: copy them if you want to keep a step's gradients).
#
# `Sequential` does not call `Layer.__init__`: that would assign `params`, `grads` and `state`,
# which here are read-only views of the layers.
#
# A class this size hides its idea, so its methods are added in the cells where they are explained:
# `@add_to_class(Sequential, "build")` above a function makes it the method `Sequential.build`, with its own
# name and docstring (so `help(Sequential)` lists it as usual). Nothing else changes: the module that
# `import diydnn` loads runs all of these cells, so the finished class has every method.

# %%
def add_to_class(cls, name, wrap=None):
    """Decorator: make the function below the method `name` of `cls` (wrap=classmethod or property for those).

    The function keeps its docstring and is named cls.name, so help(cls) shows it like any other method.
    """
    def add(function):
        function.__name__, function.__qualname__ = name, f"{cls.__name__}.{name}"
        setattr(cls, name, wrap(function) if wrap is not None else function)
        return function
    return add

# %%
class Sequential(Layer):
    """A chain of layers that is itself a Layer: forward through the list, backward in reverse.

    Layers are named by type and position (dense_0, relu_0, dense_1; a user's name is kept) and
    built in turn with the model's rng: eagerly when n_in is given, else on the first forward.
    Building, predict and summary are added in the cells below; config, state_dict and save/load
    in the chapter's engineering section.
    """

    def __init__(self, layers, n_in=None, rng=None, name="sequential"):
        self.name, self.n_in, self._cache, self.rng = name, None, None, rng
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise ValueError(f"{self!r}: layers must be a list of Layer objects, got {layers!r}")
        self.layers = list(layers)
        _assign_names(self.layers, repr(self))
        for layer in self.layers[1:]:
            # the batch is scanned for NaN/inf once, at the first layer; the layers after it get what the layer
            # before computed, and a loss refuses non-finite outputs (chapter 14: each scan costs a pass)
            layer.checks_finite = False
        first = self.layers[0]
        if n_in is None and first.built and first.params:
            n_in = first.n_in             # e.g. Dense(50, n_in=784) first: the input width is known
        if n_in is not None:
            self.build(n_in, rng)

    def forward(self, X, training=False):
        # 2-D, not empty, right width, builds on first use; finite, unless the first layer checks that itself
        X = self._check_input(X, finite=not self.layers[0].checks_input)
        for layer in self.layers:
            X = layer.forward(X, training=training)
        return X

    def backward(self, dY):
        for layer in reversed(self.layers):
            dY = layer.backward(dY)
        return dY

    def _gather(self, attribute):
        return {f"{layer.name}/{key}": value for layer in self.layers
                for key, value in getattr(layer, attribute).items()}

    @property
    def params(self):
        """{"dense_0/W": array, ...}: the layers' own arrays, so in-place updates reach the layers."""
        return self._gather("params")

    @property
    def grads(self):
        """{"dense_0/W": dW, ...}, gathered anew on each access (a backward may bind new arrays)."""
        return self._gather("grads")

    @property
    def state(self):
        """Non-trainable arrays, e.g. {"batchnorm_0/running_mean": array}: the layers' own arrays."""
        return self._gather("state")

# %% [markdown]
# **Building.** Each layer is built with the width the layer before it gives:
# `layer.build(width, rng, dtype)`, then `width = layer.output_width(width)`. All layers draw
# from the model's one `rng`, in order, so a seed fixes every weight. The model builds
# *eagerly* when `n_in` is given (or the first layer was built with `n_in`, Keras's
# `Dense(50, n_in=784)` idiom), else *lazily* on the first `forward`, in the dtype of that batch —
# float64 for a gradient check, float32 for training.

# %%
@add_to_class(Sequential, "build")
def _build(self, n_in, rng=None, dtype=np.float32):
    """Build every layer in turn, each for the width (or image shape, chapter 12) the layer before it gives."""
    n_in = _input_shape(n_in, repr(self))
    rng = rng if rng is not None else self.rng
    width = n_in
    for layer in self.layers:
        if layer.built and layer.params:          # built with weights already: keep them if they fit
            if layer.n_in != width:
                raise ValueError(f"{self!r}: {layer!r} was built for input width {layer.n_in}, "
                                 f"but the layers before it give width {width}")
        else:
            layer.build(width, rng, dtype)
        width = layer.output_width(width)
    self.n_in = n_in
    # Chapter 14 (where the time goes) moves all parameters into one flat array here, the same numbers, so that an
    # optimiser can update the whole model in one NumPy call per operation. Imported here: chapter 14 imports this one.
    from diydnn._14_performance import pack
    pack(self)


# %%
@add_to_class(Sequential, "output_width")
def _output_width(self, n_in):
    for layer in self.layers:
        n_in = layer.output_width(n_in)
    return n_in


@add_to_class(Sequential, "input_ndim", property)
def _input_ndim(self):
    """The model takes the batches its first layer takes (2-D, or images for a Conv2D, chapter 12)."""
    return self.layers[0].input_ndim


@add_to_class(Sequential, "input_layout", property)
def _input_layout(self):
    return self.layers[0].input_layout

# %% [markdown]
# `backward_params(dY)` is `backward` without the input gradient $dX$ of the whole model, which
# a training step never uses; chapter 14 measures what it saves.

# %%
@add_to_class(Sequential, "backward_params")
def _backward_params(self, dY):
    """backward without the input gradient: the training loop never uses dX of the images,
    so the first layer only fills its grads (for Dense this saves one matrix product)."""
    if type(self).backward is not Sequential.backward:
        self.backward(dY)                 # a subclass with its own backward: run it, drop dX
        return
    # layers before the first one with parameters (a Reshape of the pixels) need no gradient at all
    first = 0
    for i, layer in enumerate(self.layers):   # (a plain loop: a generator costs a microsecond, every step)
        if layer.params:
            first = i
            break
    for layer in self.layers[:first:-1]:
        dY = layer.backward(dY)
    self.layers[first].backward_params(dY)

# %% [markdown]
# ## 5. Forward, backward and the gradient check of a whole model
#
# The model's forward and backward must be exactly the six lines of section 2 on the same layers, and its
# `grads` must be the layers' gradients under the new names:

# %% tags=["active-ipynb"]
# model = Sequential([Dense(6, rng=rng), ReLU(), Dense(3, rng=rng), Softmax()])
# X = rng.standard_normal((8, 5))
# G = rng.standard_normal((8, 3))
# Y_model = model.forward(X, training=True)
# dX_model = model.backward(G)
# grads_model = {k: v.copy() for k, v in model.grads.items()}
# tiny = TinySequential(model.layers)             # the six-line model, on the same layer objects
# A = tiny.forward(X, training=True)
# dA = tiny.backward(G)
# print("names:", [layer.name for layer in model.layers], " built for width", model.n_in)
# print("forward equal:", np.array_equal(Y_model, A), " backward equal:", np.array_equal(dX_model, dA),
#       " grads:", list(grads_model))
# assert np.array_equal(Y_model, A) and np.array_equal(dX_model, dA)
# assert all(np.array_equal(grads_model[f"{l.name}/{k}"], l.grads[k]) for l in model.layers for k in l.grads)


# %% [markdown]
# Because `Sequential` is a `Layer`, `check_layer` of chapter 00 checks the whole chain at once:
# the input gradient and every parameter of every layer, against central differences, with a
# random upstream gradient, in float64 (the model is built lazily from the float64 batch).

# %% tags=["active-ipynb"]
# model64 = Sequential([Dense(7), ReLU(), Dense(5), ReLU(), Dense(3), Softmax()], rng=np.random.default_rng(1))
# errors = check_layer(model64, rng.standard_normal((6, 4)), rng)
# print("dtype:", model64.params["dense_0/W"].dtype, {k: f"{v:.1e}" for k, v in errors.items()})
# assert model64.params["dense_0/W"].dtype == np.float64 and max(errors.values()) < 1e-7

# %% [markdown]
# With a BatchNorm (chapter 05) in the chain, in training mode, the gradients of the first Dense reach it
# *through* the batch statistics. One entry needs care: the bias of a Dense right before a BatchNorm has
# gradient **exactly zero** in training mode, since adding a constant to a column shifts the batch mean by
# the same constant and the normalisation removes it. Its relative error is then $0/0$, rounding noise
# divided by rounding noise, and means nothing; we check that both gradients are zero instead. (This is
# why such a bias is often left out: BatchNorm's $\beta$ does its job.)

# %% tags=["active-ipynb"]
# model_bn = Sequential([Dense(6), BatchNorm(), ReLU(), Dense(4), BatchNorm(), ReLU(), Dense(3), Softmax()],
#                       rng=np.random.default_rng(2))
# X_bn = rng.standard_normal((8, 5))
# errors = check_layer(model_bn, X_bn, rng)
# zero_bias = {k: errors.pop(k) for k in ("dense_0/b", "dense_1/b")}
# print({k: f"{v:.1e}" for k, v in errors.items()})
# G_bn = rng.standard_normal((8, 3))
# model_bn.forward(X_bn, training=True)
# model_bn.backward(G_bn)
# for key in zero_bias:
#     numeric = numerical_gradient(lambda: float(np.sum(model_bn.forward(X_bn, training=True) * G_bn)),
#                                  model_bn.params[key])
#     print(f"{key} before a BatchNorm: max |analytic| {np.abs(model_bn.grads[key]).max():.0e}, "
#           f"max |numerical| {np.abs(numeric).max():.0e}")
#     assert np.abs(model_bn.grads[key]).max() < 1e-12 and np.abs(numeric).max() < 1e-8
# assert max(errors.values()) < 1e-7 and "batchnorm_1/gamma" in errors


# %% [markdown]
# ## 6. `params` are the layers' arrays
#
# An optimiser step is `p -= lr * g` for every entry of `model.params`. That only trains the
# model if the dict's values *are* the layers' weights. The check: one step of plain gradient
# descent through the model's dict changes the layer's own `W` by exactly $-\alpha\,dW$.

# %% tags=["active-ipynb"]
# W_before = model.layers[0].params["W"].copy()
# lr = 0.1
# params, grads = model.params, model.grads
# for key in params:
#     params[key] -= lr * grads[key]
# print("same object:", model.params["dense_0/W"] is model.layers[0].params["W"],
#       "  layer moved by -lr dW:", np.allclose(model.layers[0].params["W"], W_before - lr * model.layers[0].grads["W"]))
# assert model.params["dense_0/W"] is model.layers[0].params["W"]
# assert np.allclose(model.layers[0].params["W"], W_before - lr * model.layers[0].grads["W"])

# %% [markdown]
# ## 7. `summary()`
#
# A table in the style of Keras: each layer with its output shape (`None` for the batch size, which
# the model does not fix) and its number of parameters. BatchNorm's running statistics count as
# *non-trainable* parameters, as in Keras: they are stored and loaded but no gradient moves them.
# The model must be built, since the counts depend on the input width.


# %%
def _summary_lines(model):
    """The lines of Sequential.summary()."""
    if not model.built:
        raise ValueError(f"{model!r}.summary: the model is not built yet; pass n_in=... to Sequential "
                         f"or call forward() once on a batch")
    header = ("Layer (type)", "Output Shape", "Param #")
    rows, width = [], model.n_in
    for layer in model.layers:
        width = layer.output_width(width)
        count = sum(v.size for v in layer.params.values()) + sum(v.size for v in layer.state.values())
        rows.append((f"{layer.name} ({type(layer).__name__})", _batch_shape(width), f"{count:,}"))
    w0, w1, w2 = (max(len(row[i]) for row in rows + [header]) + 3 for i in range(3))
    rule = w0 + w1 + w2 + 1
    trainable = sum(v.size for v in model.params.values())
    frozen = sum(v.size for v in model.state.values())
    table = [f'Model: "{model.name}"   input: {_batch_shape(model.n_in)}', "_" * rule,
             f" {header[0]:<{w0}}{header[1]:<{w1}}{header[2]:>{w2 - 3}}", "=" * rule]
    table += [f" {a:<{w0}}{b:<{w1}}{c:>{w2 - 3}}" for a, b, c in rows]
    table += ["=" * rule, f"Total params: {trainable + frozen:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {frozen:,}", "_" * rule]
    return table


@add_to_class(Sequential, "summary")
def _summary(self, print_fn=print):
    """Print a table: each layer's name and type, output shape and parameter count, then totals."""
    for line in _summary_lines(self):
        print_fn(line)

# %% tags=["active-ipynb"]
# mnist_model = Sequential([Dense(50), BatchNorm(), ReLU(), Dense(10), Softmax()], n_in=784, rng=rng)
# lines = []
# mnist_model.summary(print_fn=lines.append)
# print("\n".join(lines))
# by_hand = {"dense_0": 784 * 50 + 50, "batchnorm_0": 2 * 50 + 2 * 50, "relu_0": 0, "dense_1": 50 * 10 + 10,
#            "softmax_0": 0}
# for name, count in by_hand.items():
#     assert any(line.split()[0] == name and line.split()[-1] == f"{count:,}" for line in lines), name
# assert f"Total params: {sum(by_hand.values()):,}" in lines
# assert f"Trainable params: {sum(by_hand.values()) - 100:,}" in lines and "Non-trainable params: 100" in lines


# %% [markdown]
# By hand: Dense 784 → 50 has $784\cdot 50$ weights and 50 biases, $39{,}250$; BatchNorm over 50 units
# has 50 $\gamma$ and 50 $\beta$ (trainable) and 50 running means and 50 running variances
# (non-trainable), 200; Dense 50 → 10 has $50\cdot 10 + 10 = 510$; ReLU and Softmax have none. Total
# $39{,}960$, of which $39{,}860$ trainable and $100$ not. (The asserts above compare every row and total
# with these numbers.) Nearly all of the model's parameters sit in the first layer, whose input is the
# 784 pixels of an image.

# %% [markdown]
# ## 8. `predict`
#
# `predict(X)` runs the model in inference mode (`training=False`) over slices of `batch_size` rows and
# stacks the outputs, so that predicting 70,000 images never holds the activations of all of them at
# once. Row $i$ of the output depends only on row $i$ of the input, so the result is the same as one
# `forward` on the whole batch — up to the last bits of rounding: BLAS may add up a matrix product in a
# different order for a different number of rows. Each slice, though, equals `forward` on that slice exactly.

# %%
@add_to_class(Sequential, "predict")
def _predict(self, X, batch_size=1024):
    """Outputs in inference mode (training=False), computed batch by batch to bound the memory."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"{self!r}.predict: batch_size must be a positive integer, got {batch_size!r}")
    X = np.asarray(X)
    if X.ndim not in self.input_ndim:
        raise ValueError(f"{self!r}.predict: expected a batch of shape {self.input_layout}, got shape {X.shape}")
    batch_size = int(batch_size)
    outputs = [self.forward(X[i:i + batch_size], training=False) for i in range(0, max(len(X), 1), batch_size)]
    return np.concatenate(outputs)

# %% tags=["active-ipynb"]
# X_many = rng.random((3000, 784)).astype(np.float32)
# full = mnist_model.forward(X_many)
# for batch_size in (1, 7, 1024, 3000):
#     P = mnist_model.predict(X_many, batch_size=batch_size)
#     slices = np.concatenate([mnist_model.forward(X_many[i:i + batch_size]) for i in range(0, 3000, batch_size)])
#     print(f"batch_size {batch_size:4d}: max |predict - forward(all)| = {np.abs(P - full).max():.1e}, "
#           f"equal to forward per slice: {np.array_equal(P, slices)}")
#     assert P.shape == full.shape and np.array_equal(P, slices) and np.allclose(P, full, rtol=1e-5, atol=1e-6)
# assert np.array_equal(mnist_model.predict(X_many, batch_size=3000), full)


# %% [markdown]
# ## 9. A picture: a small model trained
#
# Everything together on a 2-D toy problem: three interleaved spirals, 100 points each. A model with
# two hidden layers of 64 units, each followed by a BatchNorm, is trained with plain full-batch gradient
# descent through `model.params` and `model.grads` and the fused softmax cross-entropy of chapter 03
# (the model ends with logits, no Softmax layer), then asked for its decision regions — in inference
# mode, so with BatchNorm's running statistics. Left: the layer stack with the shapes flowing through it
# (forward goes down, backward comes up). Right: the regions the model draws. (The engineering section
# saves this model to a file and checks that the reloaded copy draws the same regions.)

# %% tags=["active-ipynb"]
# def spirals(n_per_class, n_classes, rng):
#     """Points on n_classes interleaved spirals in the plane, with a little noise."""
#     X, y = [], []
#     for c in range(n_classes):
#         r = np.linspace(0.1, 1.0, n_per_class)
#         angle = np.linspace(c * 2 * np.pi / n_classes, c * 2 * np.pi / n_classes + 4.0, n_per_class)
#         angle = angle + 0.15 * rng.standard_normal(n_per_class)
#         X.append(np.column_stack([r * np.cos(angle), r * np.sin(angle)]))
#         y.append(np.full(n_per_class, c))
#     return np.vstack(X).astype(np.float32), np.concatenate(y)
#
#
# X_sp, y_sp = spirals(100, 3, rng)
# toy = Sequential([Dense(64), BatchNorm(), ReLU(), Dense(64), BatchNorm(), ReLU(), Dense(3)], n_in=2,
#                  rng=np.random.default_rng(3))
# loss_fn = SoftmaxCrossEntropy()
# n_steps, lr = (300 if quick_mode() else 1500), 0.5
# losses = []
# for step in range(n_steps):
#     losses.append(loss_fn(toy.forward(X_sp, training=True), y_sp))
#     toy.backward(loss_fn.backward())
#     params, grads = toy.params, toy.grads
#     for key in params:
#         params[key] -= lr * grads[key]
# acc_toy = accuracy(toy.predict(X_sp), y_sp)
# print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in {n_steps} steps;  training accuracy {acc_toy:.1%}")
# assert losses[-1] < 0.5 * losses[0] and acc_toy > (0.8 if quick_mode() else 0.95)


# %% tags=["active-ipynb"]
# fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.3, 1]})
# stack_lines = []
# toy.summary(print_fn=stack_lines.append)                 # the figure's numbers come from summary()
# rows = [("input", f"(None, {toy.n_in})", "")]
# width = toy.n_in
# for layer in toy.layers:
#     width = layer.output_width(width)
#     n = sum(v.size for v in layer.params.values()) + sum(v.size for v in layer.state.values())
#     rows.append((f"{layer.name} ({type(layer).__name__})", f"(None, {width})", f"{n:,} params" if n else ""))
# for i, (label, shape, count) in enumerate(rows):
#     top = len(rows) - 1 - i
#     ax0.add_patch(plt.Rectangle((0.1, top + 0.15), 0.66, 0.7, facecolor="#dde8f5" if i else "#eeeeee", edgecolor="k"))
#     ax0.text(0.43, top + 0.5, label, ha="center", va="center", fontsize=9)
#     ax0.text(0.79, top + 0.62, shape, va="center", fontsize=9)
#     ax0.text(0.79, top + 0.35, count, va="center", fontsize=9, color="0.4")
#     if i:
#         ax0.annotate("", xy=(0.43, top + 0.85), xytext=(0.43, top + 1.15), arrowprops=dict(arrowstyle="->"))
# ax0.annotate("", xy=(0.05, 0.3), xytext=(0.05, len(rows) - 0.3), arrowprops=dict(arrowstyle="->", lw=1.5))
# ax0.text(0.02, len(rows) / 2, "forward: X, training", rotation=90, ha="right", va="center", fontsize=9)
# ax0.annotate("", xy=(1.12, len(rows) - 0.3), xytext=(1.12, 0.3), arrowprops=dict(arrowstyle="->", lw=1.5, color="C3"))
# ax0.text(1.15, len(rows) / 2, "backward: dY in, dX out", rotation=90, ha="left", va="center", fontsize=9, color="C3")
# ax0.set(xlim=(-0.05, 1.25), ylim=(0, len(rows)),
#         title=f"Layer stack: {stack_lines[-4].split(': ')[1]} parameters ({stack_lines[-2].split(': ')[1]} non-trainable)")
# ax0.axis("off")
#
# grid = np.linspace(-1.2, 1.2, 300, dtype=np.float32)
# gx, gy = np.meshgrid(grid, grid)
# regions = toy.predict(np.column_stack([gx.ravel(), gy.ravel()])).argmax(axis=1).reshape(gx.shape)
# ax1.contourf(gx, gy, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=["#c6dbef", "#fdd0a2", "#c7e9c0"])
# for c, colour in enumerate(["C0", "C1", "C2"]):
#     ax1.scatter(*X_sp[y_sp == c].T, s=10, color=colour, label=f"class {c}")
# ax1.set(title=f"Decision regions (train accuracy {acc_toy:.0%})", aspect="equal")
# ax1.legend(loc="lower right", fontsize=8)
# save_figure(fig, "07_model.png")
# plt.show()

# %% [markdown]
# ## Engineering: state_dict, config, registry, files, validation
#
# The ideas of this chapter are complete without this section: it adds what a library needs so that a
# model can be written down, stored and loaded safely, and so that mistakes are named clearly.
#
# ### `state_dict`: every array, by name
#
# `state_dict()` returns copies of every array under flat keys, `"params/dense_0/W"` and
# `"state/batchnorm_0/running_mean"`; `load_state_dict` checks that keys and shapes agree *before*
# it copies anything (a wrong file never leaves a half-loaded model), then copies **into** the
# existing arrays, so an optimiser that holds references to them keeps working.

# %%
@add_to_class(Sequential, "_named_arrays")
def _named_arrays(self):
    """The model's own arrays under the keys of state_dict()."""
    arrays = {f"params/{key}": value for key, value in self.params.items()}
    arrays.update({f"state/{key}": value for key, value in self.state.items()})
    return arrays


@add_to_class(Sequential, "state_dict")
def _state_dict(self):
    """{"params/dense_0/W": copy, ..., "state/batchnorm_0/running_mean": copy}."""
    return {key: value.copy() for key, value in self._named_arrays().items()}


@add_to_class(Sequential, "load_state_dict")
def _load_state_dict(self, state_dict):
    """Copy arrays into the model's own arrays, in place; all keys and shapes are checked first."""
    if not self.built:
        raise ValueError(f"{self!r}.load_state_dict: the model is not built; pass n_in=... or call forward() once")
    own = self._named_arrays()
    missing, unexpected = sorted(own.keys() - state_dict.keys()), sorted(state_dict.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(f"{self!r}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
    for key, target in own.items():
        if np.shape(state_dict[key]) != target.shape:
            raise ValueError(f"{self!r}.load_state_dict: {key!r} has shape {np.shape(state_dict[key])}, "
                             f"the model's array has shape {target.shape}")
    for key, target in own.items():       # only after every check passed: never a half-loaded model
        target[...] = state_dict[key]

# %% [markdown]
# ### Config: the architecture as plain data
#
# The original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) described its network in `RUN_SETTINGS` as a Python list of layer
# objects, which can be neither written to a file nor compared. `get_config()` turns the model
# into a list of plain dicts, one per layer — the layer's type and its `get_config()`, the
# constructor arguments — and `Sequential.from_config` turns such a list back into a model. The input
# width is recorded once, as `"n_in"` of the first entry.
#
# Building from a config must never run code named in it: the type name is looked up in one
# registry, `LAYER_TYPES`, and nowhere else (no `eval`, no `getattr` on a module with a name from the
# file). Arguments are checked against the constructor's signature *before* the call, so a typo
# such as `"unit"` gives an error that names the entry and lists what the layer accepts. `rng` is
# not accepted: randomness comes from the model's generator. To make your own layer loadable,
# decorate its class with `@register_layer` (later chapters do so for their layers), which adds it to
# `LAYER_TYPES` under its class name.


# %%
LAYER_TYPES = {"Dense": Dense, "ReLU": ReLU, "Softmax": Softmax, "BatchNorm": BatchNorm}


def register_layer(layer_class):
    """Make a Layer subclass loadable by from_config/load under its class name; use it as a decorator."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, Layer)):
        raise ValueError(f"register_layer: {layer_class!r} is not a subclass of Layer")
    known = LAYER_TYPES.get(layer_class.__name__)
    # a chapter's notebook runs the cell that defines its layer again (as __main__), after `import diydnn` registered
    # the module's copy: the notebook's definition takes over; any other second class of that name is an error
    rerun = known is not None and layer_class.__module__ == "__main__" and known.__module__.startswith("diydnn.")
    if known is not None and known is not layer_class and not rerun:
        raise ValueError(f"register_layer: the name {layer_class.__name__!r} already belongs to {known!r}")
    LAYER_TYPES[layer_class.__name__] = layer_class
    return layer_class


def _constructor_args(layer_class):
    """The keyword arguments a config may give a layer class: its constructor's, minus rng, plus n_in."""
    parameters = inspect.signature(layer_class.__init__).parameters.values()
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return (named - {"self", "rng"}) | {"n_in"}


def _layer_from_config(index, entry):
    """(layer, recorded input width or None) from one config entry; the type comes from LAYER_TYPES only."""
    where = f"Sequential.from_config: entry {index}"
    if not isinstance(entry, dict) or "layer" not in entry:
        raise ValueError(f"{where} must be a dict with a 'layer' key, got {entry!r}")
    kwargs = dict(entry)
    kind = kwargs.pop("layer")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ValueError(f"{where}: unknown layer type {kind!r}; known types: {sorted(LAYER_TYPES)}")
    accepted = _constructor_args(LAYER_TYPES[kind])
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"{where} ({kind}): unknown argument(s) {unknown}; {kind} accepts {sorted(accepted)}")
    n_in = kwargs.pop("n_in", None)        # a width, not an argument: the model builds with its own rng
    if isinstance(n_in, (list, tuple)):    # an image shape (chapter 12), a list in JSON
        n_in = _input_shape(n_in, where)
    try:
        return LAYER_TYPES[kind](**kwargs), n_in
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} ({kind}): {e}") from None



# %% [markdown]
# `get_config()` writes the list, `Sequential.from_config` reads it back, through the registry only:

# %%
@add_to_class(Sequential, "get_config")
def _get_config(self):
    """The architecture as a list of plain dicts: {"layer": type name, **layer.get_config()}.

    The input width is recorded once, as "n_in" of the first entry; later widths follow from it.
    """
    config = []
    for layer in self.layers:
        entry = {"layer": type(layer).__name__, **layer.get_config()}
        entry.pop("n_in", None)
        config.append(entry)
    if self.built:
        config[0]["n_in"] = list(self.n_in) if isinstance(self.n_in, tuple) else self.n_in   # plain JSON
    return config


@add_to_class(Sequential, "from_config", classmethod)
def _from_config(cls, config, n_in=None, rng=None, name="sequential", dtype=np.float32):
    """A new model from a list like get_config's; layer types are looked up in LAYER_TYPES only."""
    if not isinstance(config, (list, tuple)) or not config:
        raise ValueError(f"Sequential.from_config: expected a non-empty list of layer dicts, got {config!r}")
    built = [_layer_from_config(i, entry) for i, entry in enumerate(config)]
    layers = [layer for layer, _ in built]
    recorded = [width for _, width in built]
    n_in = n_in if n_in is not None else recorded[0]
    model = cls(layers, rng=rng, name=name)
    if n_in is not None:
        model.build(n_in, dtype=dtype)
        for i, (layer, width) in enumerate(zip(layers, recorded)):
            if width is not None and width != layer.n_in:
                raise ValueError(f"Sequential.from_config: entry {i} ({layer!r}) records n_in={width}, "
                                 f"but the model gives it width {layer.n_in}")
    return model

# %% tags=["active-ipynb"]
# for _ in range(3):                                   # move BatchNorm's running statistics away from 0 and 1
#     mnist_model.forward(rng.random((32, 784)).astype(np.float32), training=True)
# config = mnist_model.get_config()
# text = json.dumps(config)
# print(text)
# clone = Sequential.from_config(json.loads(text), rng=np.random.default_rng(0))
# clone.load_state_dict(mnist_model.state_dict())
# X_img = rng.random((16, 784)).astype(np.float32)
# print("same config:", clone.get_config() == config,
#       "  identical predictions:", np.array_equal(clone.predict(X_img), mnist_model.predict(X_img)))
# assert clone.get_config() == config and np.array_equal(clone.predict(X_img), mnist_model.predict(X_img))

# %% [markdown]
# A config plus a seed is a complete recipe: the same config built twice with generators of the same
# seed draws the same weights (the model hands its one generator to the layers in order), with no
# weights copied. A config written by hand needs only the types and the arguments that differ from
# the defaults.

# %% tags=["active-ipynb"]
# recipe = [{"layer": "Dense", "units": 32, "n_in": 2}, {"layer": "BatchNorm"}, {"layer": "ReLU"},
#           {"layer": "Dense", "units": 3}]
# first, second = (Sequential.from_config(recipe, rng=np.random.default_rng(42)) for _ in range(2))
# X_toy = rng.standard_normal((5, 2)).astype(np.float32)
# print("same seed, identical outputs:", np.array_equal(first.predict(X_toy), second.predict(X_toy)))
# assert np.array_equal(first.predict(X_toy), second.predict(X_toy))
# for bad in ([{"layer": "Conv2D", "filters": 8}], [{"layer": "BatchNorm", "momentun": 0.99}],
#             [{"layer": "__import__('os')"}]):
#     try:
#         Sequential.from_config(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("a bad config was accepted")


# %% [markdown]
# ### `save` and `load`
#
# `save(path)` writes one `.npz` file (a zip of `.npy` arrays): the arrays of `state_dict()` and the
# config as JSON text in a 0-d string array. Three rules make it safe:
#
# * **Atomic.** The file is written to a temporary file in the same folder, flushed to disk, and
#   renamed over the old one with `os.replace`, which is atomic: a reader, or a training run that
#   crashes while saving a checkpoint, sees the old file or the new one, never half a file.
# * **No pickles.** `load` reads with `allow_pickle=False`. A pickle can run arbitrary code when
#   it is loaded; a model file from someone else must only ever be data.
# * **A damaged file says so.** An empty, truncated or bit-flipped file, or one that is not an `.npz` at all,
#   is a `ValueError` that names the file and what to do — not a `BadZipFile` or `EOFError` from deep inside
#   `zipfile`. Reading every entry to its end makes `zipfile` compare the entry's CRC-32 checksum, so a
#   flipped bit in the weights is caught too (`read_npz`; chapter 09's checkpoints use it as well).


# %%
SAVE_FORMAT = "diydnn.Sequential/1"


def _savez_atomic(path, arrays):
    """np.savez(path, **arrays), written to a temporary file beside path and renamed into place (chapter 00)."""
    write_atomically(path, lambda f: np.savez(f, **arrays))


LOAD_ADVICE = ("It may be damaged (a truncated copy, a full disk) or not a model file: save the model again "
               "with model.save(path), or load another copy")


def read_npz(path, who, advice):
    """Every array of the .npz file `path`, read with allow_pickle=False.

    A missing file is a FileNotFoundError. Anything else that is not a readable .npz (empty, truncated,
    bit-flipped, a .npy, a text file, object arrays) is a ValueError naming `who`, the file and what
    went wrong, followed by `advice` (what to do) -- never a BadZipFile or EOFError from deep inside.
    Reading every entry to its end makes zipfile compare each entry's CRC-32, so flipped bits are found.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no file at {path}")

    def refuse(problem):
        return ValueError(f"{who}: {path} {problem}. {advice}")

    with open(path, "rb") as f:
        start = f.read(6)
    if not start:
        raise refuse("is empty (0 bytes)")
    if start == b"\x93NUMPY":
        raise refuse("is a single array (.npy), not an .npz archive of named arrays")
    if not start.startswith(b"PK\x03\x04"):
        raise refuse("is not an .npz file (it does not start like a zip archive)")
    try:   # our own file object: np.load would leave its own open when the zip directory is broken
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise refuse("holds an array of Python objects, which NumPy could only read by unpickling it "
                         "(refused: allow_pickle=False); it was not written by diydnn") from None
        raise refuse(f"is damaged (truncated or corrupted): {e}") from None
    except Exception as e:   # BadZipFile, EOFError, zlib.error, NotImplementedError, MemoryError, OSError, ...
        raise refuse(f"is damaged (truncated or corrupted): {type(e).__name__}: {e}") from None


# %% [markdown]
# `save` checks that every layer can be rebuilt from the registry before it writes anything; `load`
# reads with `read_npz` and rebuilds through `from_config`, in the dtype the file's weights have.

# %%
@add_to_class(Sequential, "save")
def _save(self, path):
    """Write config (as JSON) and all arrays into one .npz file, atomically."""
    if not self.built:
        raise ValueError(f"{self!r}.save: the model is not built; pass n_in=... or call forward() once")
    config = self.get_config()
    for layer, entry in zip(self.layers, config):
        if LAYER_TYPES.get(entry["layer"]) is not type(layer):
            raise ValueError(f"{self!r}.save: {layer!r} is not in LAYER_TYPES {sorted(LAYER_TYPES)}; "
                             f"add its class there so that load() can rebuild it")
    arrays = self.state_dict()
    try:
        arrays["config"] = np.array(json.dumps({"format": SAVE_FORMAT, "name": self.name, "layers": config}))
    except TypeError as e:
        raise ValueError(f"{self!r}.save: the config is not plain JSON: {e}") from None
    _savez_atomic(path, arrays)


@add_to_class(Sequential, "load", classmethod)
def _load(cls, path, rng=None):
    """A model from a file written by save(); read with allow_pickle=False, so it cannot run code.

    A missing file is a FileNotFoundError; an empty, truncated, corrupted or foreign file a
    ValueError that names the file (read_npz, below).
    """
    who, advice = "Sequential.load", LOAD_ADVICE
    arrays = read_npz(path, who, advice)
    if "config" not in arrays:
        raise ValueError(f"{who}: {path} has no 'config' entry; not a file written by Sequential.save. {advice}")
    try:
        header = json.loads(str(arrays.pop("config")))
        if not isinstance(header, dict) or header.get("format") != SAVE_FORMAT:
            raise ValueError(f"it is not in the format {SAVE_FORMAT!r}")
        bad = [key for key, value in arrays.items() if value.dtype.kind in "fc" and not np.isfinite(value).all()]
        if bad:   # a model trained into NaN and saved: it would load and predict NaN without a word
            raise ValueError(f"the array(s) {', '.join(map(repr, bad))} hold NaN or inf (first: "
                             f"{np.count_nonzero(~np.isfinite(arrays[bad[0]]))} of {arrays[bad[0]].size} entries)")
        weights = [value for key, value in arrays.items() if key.startswith("params/")]
        dtype = weights[0].dtype if weights else np.float32   # a float64 model comes back float64
        model = cls.from_config(header.get("layers"), rng=rng, name=header.get("name", "sequential"), dtype=dtype)
        model.load_state_dict(arrays)
    except (ValueError, TypeError, KeyError, AttributeError) as e:   # json.JSONDecodeError is a ValueError
        raise ValueError(f"{who}: {path} does not hold a valid model: {e}. {advice}") from None
    return model

# %% tags=["active-ipynb"]
# scratch = tempfile.TemporaryDirectory()             # removed at the end of the chapter
# folder = Path(scratch.name)
# path = folder / "mnist_model.npz"
# mnist_model.save(path)
# loaded = Sequential.load(path)
# with np.load(path, allow_pickle=False) as data:
#     print("entries in the file:", data.files)
# print("loaded:", [layer.name for layer in loaded.layers], loaded.params["dense_0/W"].dtype,
#       "  identical predictions:", np.array_equal(loaded.predict(X_img), mnist_model.predict(X_img)))
# print("running mean, first 3 units, saved:", mnist_model.state["batchnorm_0/running_mean"][:3],
#       " loaded:", loaded.state["batchnorm_0/running_mean"][:3])
# assert np.array_equal(loaded.predict(X_img), mnist_model.predict(X_img))
# assert loaded.get_config() == mnist_model.get_config()
# assert all(np.array_equal(loaded.state[k], v) for k, v in mnist_model.state.items())
# assert not np.allclose(loaded.state["batchnorm_0/running_mean"], 0)

# %% [markdown]
# An interrupted save. We replace `np.savez` for a moment by a writer that puts out half a file and
# then fails, as a crash or a full disk would. The previous file must be intact and no temporary
# file left behind:

# %% tags=["active-ipynb"]
# before = path.read_bytes()
# real_savez = np.savez
#
#
# def crashing_savez(f, **arrays):
#     f.write(b"PK\x03\x04 half a zip file")
#     raise OSError("disk full (simulated)")
#
#
# np.savez = crashing_savez
# try:
#     mnist_model.save(path)
# except OSError as e:
#     print("save failed:", e)
# finally:
#     np.savez = real_savez
# print("files in the folder:", sorted(p.name for p in folder.iterdir()), "  old file intact:", path.read_bytes() == before)
# assert path.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["mnist_model.npz"]
# assert np.array_equal(Sequential.load(path).predict(X_img), mnist_model.predict(X_img))

# %% [markdown]
# A tampered file whose arrays hold Python objects (which NumPy could only read by unpickling them) is
# refused, and so is a state dict with a wrong shape, an empty file, a file cut short, a file with one
# flipped bit in its weights, and a file that is not an `.npz` at all:

# %% tags=["active-ipynb"]
# tampered = folder / "tampered.npz"
# with np.load(path, allow_pickle=False) as data:
#     entries = {key: data[key] for key in data.files}
# entries["params/dense_0/b"] = np.array([{"payload": "anything"}], dtype=object)
# np.savez(tampered, **entries)
# wrong = mnist_model.state_dict()
# wrong["params/dense_1/W"] = np.zeros((50, 11), dtype=np.float32)
# raw = path.read_bytes()
# flipped = bytearray(raw)
# flipped[len(raw) // 2] ^= 0x10                       # one bit, in the middle of the first layer's weights
# damaged = {"empty.npz": b"", "cut.npz": raw[:len(raw) // 3], "flipped.npz": bytes(flipped),
#            "notes.npz": b"weights: see the notebook\n"}
# for name, content in damaged.items():
#     (folder / name).write_bytes(content)
# for action in (lambda: Sequential.load(tampered), lambda: mnist_model.load_state_dict(wrong),
#                *(lambda name=name: Sequential.load(folder / name) for name in damaged)):
#     try:
#         action()
#     except ValueError as e:
#         print("ValueError:", str(e).replace(str(folder), "<folder>"))
#     else:
#         raise AssertionError("a bad file was accepted")


# %% [markdown]
# The spirals model of section 9, saved and loaded: the reloaded copy carries BatchNorm's running
# statistics too, so it draws the same decision regions, point for point.

# %% tags=["active-ipynb"]
# toy.save(folder / "toy.npz")
# toy_loaded = Sequential.load(folder / "toy.npz")
# grid_points = np.column_stack([gx.ravel(), gy.ravel()])
# same = np.array_equal(toy_loaded.predict(grid_points), toy.predict(grid_points))
# print("reloaded spirals model, identical outputs on all", len(grid_points), "grid points:", same)
# assert same and toy_loaded.get_config() == toy.get_config()

# %% [markdown]
# ### Input validation
#
# A list that cannot be a model is refused before any name is given: an empty list, something that is not a
# `Layer` (a common slip is the class `ReLU` instead of an instance `ReLU()`), the same layer object twice (a
# layer keeps *one* cache for its backward pass, so it cannot sit at two places in a chain), two equal names
# chosen by the user, and a name with a `/`, which separates layer and parameter in `"dense_0/W"`.

# %%
def _check_layers(layers, who):
    """Refuse a list that cannot be a model, and layer names that cannot be keys; a ValueError naming `who`."""
    if not layers:
        raise ValueError(f"{who}: the list of layers is empty")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = f" (a class: write {layer.__name__}(...))" if isinstance(layer, type) else ""
            raise ValueError(f"{who}: item {i} is {layer!r} of type {type(layer).__name__}, not a Layer{hint}")
        for j in range(i):
            if layers[j] is layer:
                raise ValueError(f"{who}: items {j} and {i} are the same layer object {layer!r}; "
                                 f"a layer keeps one cache, so create a second one")
    is_default = [layer.name == type(layer).__name__.lower() for layer in layers]   # Layer's default name
    chosen = [layer.name for layer, default in zip(layers, is_default) if not default]
    for name in chosen:
        if not isinstance(name, str) or "/" in name or chosen.count(name) > 1:
            problem = "is used twice" if chosen.count(name) > 1 else "must be a string without '/'"
            raise ValueError(f"{who}: layer name {name!r} {problem}")


# %% tags=["active-ipynb"]
# for bad in ([], [Dense(3), ReLU], [Dense(3, name="a"), Dense(3, name="a")]):
#     try:
#         _assign_names(bad, "demo")
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("a bad list was accepted")

# %% [markdown]
# Bad input is refused with a message naming the model or the layer: a batch of the wrong width,
# a backward before any forward.

# %% tags=["active-ipynb"]
# for action in (lambda: model.forward(rng.standard_normal((4, 9))),
#                lambda: Sequential([Dense(3), ReLU()]).backward(np.ones((2, 3)))):
#     try:
#         action()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad input was accepted")


# %% tags=["active-ipynb"]
# scratch.cleanup()

# %% [markdown]
# ## Summary
#
# * A model is a composition $f_L\circ\cdots\circ f_1$: its Jacobian is the product $J_L\cdots J_1$ (checked
#   against finite differences), and its backward pass applies the layers' vector–Jacobian products in
#   reverse order — six lines of loops (section 2). `Sequential` is those loops plus bookkeeping, and is
#   itself a `Layer`, so `check_layer` proves a whole model right.
# * Layers get stable unique names by type and position (`dense_0`, `relu_0`, `dense_1`); `params`,
#   `grads`, `state` gather them under `"dense_0/W"` keys, and `params`/`state` are the layers' own arrays,
#   so optimisers update them in place.
# * `summary()` counts parameters ($784\cdot50+50 = 39{,}250$ for the first Dense of an MNIST MLP).
# * `predict` runs batch by batch in inference mode; it equals `forward` up to rounding.
# * Engineering: `get_config()`/`from_config` describe the architecture as plain JSON, built through the
#   `LAYER_TYPES` registry only, with errors that name the entry and list what is known; `save`/`load`
#   use one `.npz` (arrays plus the config as JSON), written atomically via a temporary file and
#   `os.replace`, read with `allow_pickle=False`. A save that fails half-way leaves the old file intact.
#
# ## Exercises
#
# 1. Add a method `pop()` that removes the last layer (e.g. the Softmax, to get logits for the fused loss).
#    What must happen to the names, and to a file saved before the pop?
# 2. Write a `Tanh` layer, register it with `@register_layer`, and show that a model using it survives
#    `save`/`load`. What error do you get before registering it?
# 3. `state_dict()` returns copies while `params` returns the arrays themselves. Construct a bug that
#    would appear if `state_dict()` returned the arrays (hint: save a "best" checkpoint in memory, then train on).
#
# The worked solutions follow, in collapsed cells (click to open); the tests run them, so they stay true.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Removing the last layer changes no other layer's name: a default name counts the
# layers of the same type *before* it, so the remaining layers keep theirs. Only the output width changes.
# A file saved before the pop still loads as the *old* model (its config lists every layer); its arrays
# load into the popped model only if the removed layer had none (a Softmax) — after popping a Dense,
# `load_state_dict` names the keys the model no longer has.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     def pop(model):
#         """Remove the last layer of `model` and return it; the other layers keep their names and weights."""
#         if len(model.layers) < 2:
#             raise ValueError(f"{model!r}.pop: a model needs at least one layer; it has {len(model.layers)}")
#         return model.layers.pop()
#
#
#     with tempfile.TemporaryDirectory() as tmp:
#         clf = Sequential([Dense(8), ReLU(), Dense(3), Softmax()], n_in=4, rng=np.random.default_rng(11))
#         X_pop = rng.standard_normal((5, 4)).astype(np.float32)
#         probabilities, names = clf.predict(X_pop), [layer.name for layer in clf.layers]
#         clf.save(Path(tmp) / "before_pop.npz")
#         removed = pop(clf)
#         logits = clf.predict(X_pop)
#         print("removed:", removed.name, " names now:", [layer.name for layer in clf.layers], " output width:",
#               clf.output_width(4))
#         assert [layer.name for layer in clf.layers] == names[:-1] and clf.output_width(4) == 3
#         assert np.allclose(Softmax().forward(logits), probabilities, atol=1e-6)      # logits, as the fused loss wants
#         old = Sequential.load(Path(tmp) / "before_pop.npz")
#         assert len(old.layers) == 4                         # the file still describes the model before the pop
#         clf.load_state_dict(old.state_dict())               # a Softmax has no arrays: the keys still agree
#         pop(clf)                                            # now the last Dense goes too
#         try:
#             clf.load_state_dict(old.state_dict())
#         except ValueError as e:
#             print("ValueError:", e)
#         else:
#             raise AssertionError("arrays of a removed layer were accepted")

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# $\tanh' = 1 - \tanh^2$, so the backward pass only needs the output it cached. Before
# registering, `save` refuses the model (it could not be loaded again); afterwards it round-trips.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     class Tanh(Layer):
#         """Element-wise tanh; dX = dY * (1 - tanh(X)^2)."""
#
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             self._cache = np.tanh(X)
#             return self._cache
#
#         def backward(self, dY):
#             Y = self._cached()
#             dY = self._check_upstream(dY, Y.shape)
#             return dY * (1 - Y * Y)
#
#
#     tanh_errors = check_layer(Tanh(), rng.standard_normal((6, 4)), rng)
#     net = Sequential([Dense(6), Tanh(), Dense(2)], n_in=3, rng=np.random.default_rng(12))
#     X_tanh = rng.standard_normal((4, 3)).astype(np.float32)
#     with tempfile.TemporaryDirectory() as tmp:
#         try:
#             net.save(Path(tmp) / "tanh.npz")
#         except ValueError as e:
#             print("before registering -> ValueError:", e)
#         else:
#             raise AssertionError("an unregistered layer was saved")
#         register_layer(Tanh)
#         net.save(Path(tmp) / "tanh.npz")
#         back = Sequential.load(Path(tmp) / "tanh.npz")
#     print("gradient check:", {k: f"{v:.1e}" for k, v in tanh_errors.items()}, " reloaded layers:",
#           [type(layer).__name__ for layer in back.layers])
#     assert tanh_errors["X"] < 1e-7 and isinstance(back.layers[1], Tanh)
#     assert np.array_equal(back.predict(X_tanh), net.predict(X_tanh))
#     del LAYER_TYPES["Tanh"]                                  # leave the registry as the chapter built it

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# Keep the "best" weights in memory, then train on: with copies (`state_dict()`), the best
# weights stay as they were; with the arrays themselves, every later step moves them too, and "restoring
# the best checkpoint" restores the current weights — silently, with no error.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     net = Sequential([Dense(16), ReLU(), Dense(3)], n_in=2, rng=np.random.default_rng(13))
#     best_copy = net.state_dict()                            # what state_dict() returns: copies
#     best_refs = net._named_arrays()                         # what it would return without .copy()
#     for step in range(20):                                  # train on
#         loss_fn(net.forward(X_sp, training=True), y_sp)
#         net.backward(loss_fn.backward())
#         params, grads = net.params, net.grads
#         for key in params:
#             params[key] -= 0.5 * grads[key]
#     now = net.state_dict()
#     refs_moved = all(np.array_equal(best_refs[k], now[k]) for k in now)
#     copy_kept = not any(np.array_equal(best_copy[k], now[k]) for k in now if k.endswith("/W"))
#     print("the 'best' held by reference moved with training:", refs_moved, "  the copy kept the old weights:", copy_kept)
#     assert refs_moved and copy_kept

# %% [markdown]
# ---
# [← 06 — optimisers](06_optimisers.ipynb) · [begin here](00_begin_here.ipynb) · **07 — model** · [next: 08 — MNIST →](08_mnist.ipynb)
