# %% [markdown]
# [← 15 — diagnosing and tuning](15_diagnosing.ipynb) · [begin here](00_begin_here.ipynb) · **16 — designing a CNN**
#
# # 16 — Designing a convolutional network
#
# Chapters 12 and 13 derived the pieces — convolution, pooling, BatchNorm on feature maps — and trained one small
# network. This chapter is about the **architecture**: why networks are stacks of small 3×3 kernels, how far one output
# value "sees" into the image, where BatchNorm goes and why the convolution before it needs no bias, what a global
# average pooling head does instead of Flatten + Dense, why a deep plain network trains badly and what a
# **residual connection** changes, and how to see what a trained network looks at (saliency and occlusion maps).
#
# The chapter builds one new layer, `Residual` — a block $y = x + F(x)$ that is a layer holding layers — and two
# small tools, `receptive_field` and `saliency`/`occlusion_map`. Every training run here is short and uses a subset of
# MNIST; experiment 11 trains a residual network properly.

# %%
"""Chapter 16: designing a CNN. Residual (y = x + F(x): a layer that holds layers, with a 1x1 projection when the
shapes differ), receptive_field, saliency and occlusion_map."""
import numpy as np

from diydnn._01_dense import Dense, Layer
from diydnn._05_batchnorm import BatchNorm
from diydnn._07_model import (LAYER_TYPES, _assign_names, _batch_shape, _input_shape, _layer_from_config, add_to_class,
                               register_layer)
from diydnn._12_convolution import Conv2D


# %% tags=["active-ipynb"]
# import tempfile
# import time
# from pathlib import Path
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, quick_mode, rel_error, save_figure
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# from diydnn._06_optimisers import Adam
# from diydnn._07_model import Sequential
# from diydnn._08_mnist import batches, load_mnist
# from diydnn._12_convolution import Flatten, Reshape, col2im, im2col
# from diydnn._13_pooling import GlobalAveragePool, MaxPool2D
# from threadpoolctl import threadpool_limits
# threadpool_limits(limits=1)     # one BLAS thread (chapter 14 shows why; = diydnn.set_threads(1))
# rng = np.random.default_rng(16)

# %% [markdown]
# ## 5. Residual connections
#
# ### The block, and its backward
#
# A residual block computes $y = x + F(x)$, where $F$ is a short chain of layers (typically conv → BatchNorm → ReLU →
# conv → BatchNorm). It learns the *change* $F(x)$ to its input rather than a whole new representation, and when $F$ is
# near zero the block is near the identity. When $F$ changes the shape (fewer positions with a stride 2, more channels),
# the shortcut is a **projection** $P(x)$ instead: a 1×1 convolution with the same stride and no bias (optionally with
# its own BatchNorm), so $y = P(x) + F(x)$.
#
# The backward is the chain rule over a sum. With $\delta = \partial L/\partial y$ (the upstream gradient) and $y_i =
# x_i + F_i(x)$,
#
# $$\frac{\partial L}{\partial x_j} = \sum_i \delta_i \frac{\partial y_i}{\partial x_j}
# = \sum_i \delta_i \Big(\mathbb 1[i=j] + \frac{\partial F_i}{\partial x_j}\Big)
# = \delta_j + \Big(J_F^\top \delta\Big)_j ,$$
#
# so $dX = dY + F.\mathrm{backward}(dY)$: **the gradient through the identity adds** — the block's input receives the
# upstream gradient unchanged, plus whatever $F$'s layers send back. With a projection the first term is
# $P.\mathrm{backward}(dY)$. $F$'s parameter gradients are exactly those of $F$ alone with upstream $dY$ (the shortcut
# holds none of them). Chained over $L$ blocks, $\partial x_L/\partial x_0 = \prod_\ell (I + J_{F_\ell})$, which
# contains the identity plus every product of Jacobians: however small the $J_{F_\ell}$ are, the gradient reaching the
# first block never has to pass through all of them. Section 5's experiment measures this.
#
# ### A layer that holds layers
#
# `Residual` is built like chapter 07's `Sequential`: it names its layers (`conv2d_0`, `batchnorm_0`, ...), builds them
# in turn from the input shape, passes `training` to each, and gathers their arrays under `"<layer>/<key>"`. Inside a
# model the names nest once more — `residual_0/conv2d_0/W` — so `state_dict`, `save`/`load` and the optimisers address
# them like any other parameter; BatchNorm's running statistics inside the block appear in `state`. The configuration
# nests the same way: `get_config()` lists the inner layers as chapter 07's `{"layer": type name, ...}` dicts, and the
# constructor accepts such dicts, looking each type up in `LAYER_TYPES` only.
#
# (One cost: a model holding a block has `params` gathered on each access, like a model inside a model, so chapter
# 14's flat-array packing declines it and the optimiser updates the arrays one by one — the same numbers, a few
# more NumPy calls per step.)

# %%
SHORTCUTS = ("auto", "identity", "projection")


@register_layer
class Residual(Layer):
    """y = shortcut(x) + F(x), F a list of layers (a block: a layer that holds layers).

    shortcut="auto": the identity when F keeps the shape, else a projection; "identity": always (an error when F
    changes the shape); "projection": always a projection, a 1x1 Conv2D with F's channels and stride and no bias for
    images (a Dense for rows), followed by a BatchNorm when shortcut_bn=True. Layers may be given as Layer objects or
    as config dicts {"layer": type name, ...} (types from LAYER_TYPES only, as in Sequential.from_config).
    """

    input_ndim, input_layout = (2, 4), "(m, n_features) or (m, H, W, C)"
    checks_input = True

    def __init__(self, layers, shortcut="auto", shortcut_bn=False, n_in=None, rng=None, name=None):
        self.name, self.n_in, self._cache, self.rng = name or "residual", None, None, rng
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise ValueError(f"{self!r}: layers must be a list of Layer objects or config dicts, got {layers!r}")
        self.layers = [self._from_entry(i, entry) if isinstance(entry, dict) else entry for i, entry in enumerate(layers)]
        _assign_names(self.layers, repr(self))        # checks the list too: Layers, none twice, usable names
        taken = [layer.name for layer in self.layers if layer.name.startswith("shortcut_")]
        if taken:
            raise ValueError(f"{self!r}: the names {taken} are reserved for the shortcut's layers")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"{self!r}: shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        self.shortcut, self.shortcut_bn = shortcut, bool(shortcut_bn)
        self.projection = []                          # the shortcut's layers, made by build(); [] is the identity
        for layer in self.layers:
            layer.checks_finite = False               # the block scans its input once, as a model does
        if n_in is not None:
            self.build(n_in, rng)

    def _from_entry(self, i, entry):
        try:
            layer, _ = _layer_from_config(i, entry)   # the block builds its layers: a recorded n_in is not needed
        except ValueError as e:
            raise ValueError(f"{self!r}: layers[{i}]: {e}") from None
        return layer


# %% [markdown]
# Forward and backward, the derivation above in code:

# %%
@add_to_class(Residual, "forward")
def _forward(self, X, training=False):
    """y = shortcut(x) + F(x); `training` is passed to every inner layer (BatchNorm, Dropout)."""
    try:
        X = self._check_input(X)
    except ValueError as e:               # an inner layer refused to be built for this input: name the block
        if type(e) is not ValueError or str(e).startswith(repr(self)):
            raise
        raise ValueError(f"{self!r}: cannot take a batch of shape {np.shape(X)}: {e}") from None
    Y = X
    for layer in self.layers:
        Y = layer.forward(Y, training=training)
    S = X
    for layer in self.projection:
        S = layer.forward(S, training=training)
    out = Y + S                  # a new array: Y may be an array a layer of F keeps for its backward
    self._cache = out.shape
    return out


@add_to_class(Residual, "backward")
def _backward(self, dY):
    """dX = shortcut.backward(dY) + F.backward(dY): the derivation above, the identity passing dY on unchanged."""
    dY = self._check_upstream(dY, self._cached())
    dX = dY
    for layer in reversed(self.layers):
        dX = layer.backward(dX)
    dS = dY                      # the identity passes the upstream gradient on unchanged
    for layer in reversed(self.projection):
        dS = layer.backward(dS)
    return dX + dS               # the two paths from x to y: their gradients add


# %% [markdown]
# Its arrays are gathered from the inner layers and the shortcut's, as `Sequential` gathers its layers' (the names
# nest one level deeper inside a model).

# %%
@add_to_class(Residual, "_gather")
def _gather(self, attribute):
    return {f"{layer.name}/{key}": value for layer in self.layers + self.projection
            for key, value in getattr(layer, attribute).items()}


@add_to_class(Residual, "params", property)
def _params(self):
    """{"conv2d_0/W": array, ...}: the inner layers' own arrays (in-place updates reach them)."""
    return self._gather("params")


@add_to_class(Residual, "grads", property)
def _grads(self):
    return self._gather("grads")


@add_to_class(Residual, "state", property)
def _state(self):
    """Non-trainable arrays of the inner layers, e.g. {"batchnorm_0/running_mean": array}."""
    return self._gather("state")


@add_to_class(Residual, "output_width")
def _output_width(self, n_in):
    for layer in self.layers:
        n_in = layer.output_width(n_in)
    return n_in


# %% [markdown]
# Building: the inner layers are built in turn, as in `Sequential`; then the shortcut is chosen from the two shapes.
# For images the projection's stride is the one that maps $H\times W$ to $F$'s $H'\times W'$ with a 1×1 window:
# $\lfloor (H-1)/s\rfloor + 1 = H'$ (true for a 3×3 "same" convolution with stride $s$).

# %%
def _projection_stride(n_in, out):
    """The stride s of a 1x1 "valid" convolution mapping (H, W) to (H', W'), or None if there is none."""
    (H, W, _), (H2, W2, _) = n_in, out
    return next((s for s in range(1, max(H, W) + 1) if (H - 1) // s + 1 == H2 and (W - 1) // s + 1 == W2), None)


@add_to_class(Residual, "build")
def _build(self, n_in, rng=None, dtype=np.float32):
    """Build F's layers for n_in (a width or an image shape), then the shortcut for F's output shape."""
    n_in = _input_shape(n_in, repr(self))
    rng = rng if rng is not None else self.rng
    width = n_in
    for layer in self.layers:
        if layer.built and layer.params:              # built with weights already: keep them if they fit
            if layer.n_in != width:
                raise ValueError(f"{self!r}: {layer!r} was built for input width {layer.n_in}, but the layers "
                                 f"before it give width {width}")
        else:
            layer.build(width, rng, dtype)
        width = layer.output_width(width)
    self.projection = self._make_projection(n_in, width)
    width = n_in
    for layer in self.projection:
        layer.build(width, rng, dtype)
        layer.checks_finite = False
        width = layer.output_width(width)
    self.n_in = n_in


@add_to_class(Residual, "_make_projection")
def _make_projection(self, n_in, out):
    """The shortcut's layers (not built yet): [] for the identity, else a 1x1 Conv2D (images) or a Dense (rows),
    followed by a BatchNorm if shortcut_bn."""
    if self.shortcut == "identity" or (self.shortcut == "auto" and out == n_in):
        if out != n_in:
            raise ValueError(f"{self!r}: its layers map {_batch_shape(n_in)} to {_batch_shape(out)}; an identity "
                             f"shortcut needs the same shape (use shortcut='auto' or 'projection')")
        return []
    if isinstance(n_in, tuple) != isinstance(out, tuple) or (isinstance(n_in, tuple) and len(n_in) != 3):
        raise ValueError(f"{self!r}: its layers map {_batch_shape(n_in)} to {_batch_shape(out)}; a projection "
                         f"shortcut maps images to images or rows to rows")
    if isinstance(n_in, tuple):
        stride = _projection_stride(n_in, out)
        if stride is None:
            raise ValueError(f"{self!r}: no 1x1 convolution with a stride maps {_batch_shape(n_in)} to "
                             f"{_batch_shape(out)}; make the block's output size (H-1)//s + 1 for a stride s")
        layers = [Conv2D(out[2], 1, stride=stride, use_bias=False, name="shortcut_conv")]
    else:
        layers = [Dense(out, name="shortcut_dense")]
    return layers + ([BatchNorm(name="shortcut_bn")] if self.shortcut_bn else [])


# %% [markdown]
# The configuration lists the inner layers as chapter 07's entries (without their input widths: the block builds them);
# the shortcut's layers follow from the shapes and are not listed, but their weights are in `params` and so in a saved
# file. `summary()` prints the block's own table.

# %%
@add_to_class(Residual, "get_config")
def _get_config(self):
    layers = []
    for layer in self.layers:
        kind = type(layer).__name__
        if LAYER_TYPES.get(kind) is not type(layer):
            raise ValueError(f"{self!r}.get_config: {layer!r} is not in LAYER_TYPES {sorted(LAYER_TYPES)}; register "
                             f"its class (register_layer) so that a saved model can be loaded")
        entry = {"layer": kind, **layer.get_config()}
        entry.pop("n_in", None)
        layers.append(entry)
    n_in = list(self.n_in) if isinstance(self.n_in, tuple) else self.n_in     # plain JSON
    return {"name": self.name, "layers": layers, "shortcut": self.shortcut, "shortcut_bn": self.shortcut_bn,
            "n_in": n_in}


@add_to_class(Residual, "summary")
def _summary(self, print_fn=print):
    """Print the block: each inner layer with its output shape and parameter count, then the shortcut."""
    if not self.built:
        raise ValueError(f"{self!r}.summary: the block is not built yet; pass n_in=... or call forward() once")
    rows, width = [], self.n_in
    for layer in self.layers:
        width = layer.output_width(width)
        rows.append((f"{layer.name} ({type(layer).__name__})", _batch_shape(width), _count(layer)))
    shortcut = [(f"{layer.name} ({type(layer).__name__})", "", _count(layer)) for layer in self.projection]
    rows += shortcut or [("shortcut (identity)", _batch_shape(width), "0")]
    w0, w1 = (max(len(row[i]) for row in rows) + 3 for i in range(2))
    print_fn(f'Residual "{self.name}": y = shortcut(x) + F(x), input {_batch_shape(self.n_in)}')
    for a, b, c in rows:
        print_fn(f"  {a:<{w0}}{b:<{w1}}{c:>9}")
    print_fn(f"  Trainable params: {sum(v.size for v in self.params.values()):,}, non-trainable (running "
             f"statistics): {sum(v.size for v in self.state.values()):,}")


def _count(layer):
    return f"{sum(v.size for v in layer.params.values()) + sum(v.size for v in layer.state.values()):,}"


# %% [markdown]
# **Checks.** (1) A block with a projection (stride 2, more channels, BatchNorm inside and on the shortcut) and a block
# inside a block pass the gradient check in float64 with a random upstream gradient, in training mode. (2) A block
# whose backward forgets the identity's term ($dX = F.\mathrm{backward}(dY)$ only) fails it — on $dX$ alone, since
# the parameters' gradients do not involve the shortcut. (3) Inside a model the arrays nest as
# `residual_0/conv2d_0/W`, and a model with two blocks survives `save`/`load` with identical predictions.

# %% tags=["active-ipynb"]
# def conv_bn(filters, stride=1):
#     """3x3 "same" convolution without bias, then BatchNorm (why no bias: section 2)."""
#     return [Conv2D(filters, 3, stride=stride, padding="same", use_bias=False), BatchNorm()]
#
# X_chk = rng.standard_normal((4, 6, 6, 3))
# blocks = {"projection, stride 2": Residual(conv_bn(5, 2) + [ReLU()] + conv_bn(5), shortcut_bn=True, rng=rng),
#           "block in a block": Residual([Conv2D(3, 1), Residual([Conv2D(3, 3, padding="same"), ReLU()])], rng=rng)}
# for label, res in blocks.items():
#     errors = check_layer(res, X_chk, rng)
#     print(f"{label:22s} max rel. error {max(errors.values()):.1e} over {len(errors)} arrays: {sorted(errors)}")
#     assert max(errors.values()) < 1e-7
#
# class ForgetsTheIdentity(Residual):
#     def backward(self, dY):
#         for layer in reversed(self.layers):
#             dY = layer.backward(dY)
#         return dY
#
# errors = check_layer(ForgetsTheIdentity([Conv2D(3, 3, padding="same"), ReLU(), Conv2D(3, 3, padding="same")],
#                                         rng=rng), X_chk, rng)
# print("a block that forgets the identity: dX rel. error", f"{errors['X']:.2f};",
#       "parameters", f"{max(v for k, v in errors.items() if k != 'X'):.1e}")
# assert errors["X"] > 0.1 and max(v for k, v in errors.items() if k != "X") < 1e-7

# %% tags=["active-ipynb"]
# tiny_res = Sequential([Reshape((28, 28, 1)), *conv_bn(8), ReLU(),
#                        Residual(conv_bn(8) + [ReLU()] + conv_bn(8)), ReLU(),
#                        Residual(conv_bn(16, 2) + [ReLU()] + conv_bn(16), shortcut_bn=True), ReLU(),
#                        GlobalAveragePool(), Dense(10)], n_in=784, rng=np.random.default_rng(0))
# tiny_res.summary()
# tiny_res.layers[6].summary()
# X_few = rng.standard_normal((8, 784)).astype(np.float32)
# tiny_res.forward(X_few, training=True)                     # moves the running statistics inside the blocks
# with tempfile.TemporaryDirectory() as scratch:
#     tiny_res.save(Path(scratch) / "res.npz")
#     reloaded = Sequential.load(Path(scratch) / "res.npz")
# assert np.array_equal(reloaded.predict(X_few), tiny_res.predict(X_few))
# assert reloaded.get_config() == tiny_res.get_config()
# print("nested keys:", [k for k in tiny_res.state_dict() if k.startswith(("params/residual_1", "state/residual_1"))][:6],
#       "...\nsaved and loaded: same predictions")

# %% [markdown]
# ## Summary
#
# * A residual block computes $y = x + F(x)$ (or $P(x) + F(x)$ with a 1×1 projection when $F$ changes the shape), and
#   its backward adds the two paths: $dX = dY + F.\mathrm{backward}(dY)$. `Residual` is a layer that holds layers; its
#   arrays nest under the block's name, so saving, loading and the optimisers need nothing new.
#
# ## Exercises
#
# 1. If the last layer of $F$ is a BatchNorm with $\gamma = 0$, the block starts as the identity (the "zero-γ"
#    initialisation of residual networks). Check it on a block, in training mode, and find which parameters get a
#    nonzero gradient at the first step.

# %% [markdown]
# **Solution 1** — try the exercise first; the cell below is collapsed (click to open).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # with gamma = 0 the last BatchNorm outputs beta = 0, so y = x. Its gamma gets the gradient sum(dY * X_hat), which
#     # is not zero; every earlier parameter of F is multiplied by gamma = 0 on the way back, so its gradient is zero.
#     zero_gamma = Residual(conv_bn(3) + [ReLU()] + conv_bn(3), n_in=(6, 6, 3), rng=rng)
#     zero_gamma.layers[-1].params["gamma"][...] = 0.0
#     X_ex = rng.standard_normal((4, 6, 6, 3)).astype(np.float32)
#     print("block == identity:", np.array_equal(zero_gamma.forward(X_ex, training=True), X_ex))
#     zero_gamma.backward(rng.standard_normal(X_ex.shape).astype(np.float32))
#     nonzero = [k for k, g in zero_gamma.grads.items() if np.any(g != 0)]
#     print("parameters with a nonzero gradient:", nonzero)
#     assert np.array_equal(zero_gamma.forward(X_ex, training=True), X_ex)
#     assert set(nonzero) == {"batchnorm_1/gamma", "batchnorm_1/beta"}

# %% [markdown]
# ---
# [← 15 — diagnosing and tuning](15_diagnosing.ipynb) · [begin here](00_begin_here.ipynb) · **16 — designing a CNN**
