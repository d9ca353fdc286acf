# %% [markdown]
# [← 15 — diagnosing and tuning](15_diagnosing.ipynb) · [begin here](00_begin_here.ipynb) · **16 — designing a CNN** · [next: experiment 11 — a small ResNet →](experiments/11_resnet.ipynb)
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
# from diydnn._00_conventions import check_layer, numerical_gradient, quick_mode, rel_error, save_figure
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# from diydnn._06_optimisers import Adam
# from diydnn._07_model import Sequential
# from diydnn._08_mnist import batches, load_mnist
# from diydnn._12_convolution import Flatten, Reshape, col2im
# from diydnn._13_pooling import AvgPool2D, GlobalAveragePool, MaxPool2D
# from threadpoolctl import threadpool_limits
# threadpool_limits(limits=1)     # one BLAS thread (chapter 14 shows why; = diydnn.set_threads(1))
# rng = np.random.default_rng(16)
# %% [markdown]
# ## 1. How far one output sees: the receptive field
#
# The **receptive field** of an output value is the set of input pixels it depends on. Follow one axis. A layer with
# window $k_\ell$ and stride $s_\ell$ (a convolution or a pooling; ReLU and BatchNorm have $k = s = 1$) makes each of its
# outputs depend on $k_\ell$ neighbouring inputs, $s_\ell$ apart from one output to the next. Going back from one output
# of layer $L$ to the image, let $r_\ell$ be the width, in pixels, of the field of one value *after* layer $\ell$ and
# $j_\ell = \prod_{i\le \ell} s_i$ the distance, in pixels, between two neighbouring values there (the "jump"; $j_0 =
# 1$). A value after layer $\ell$ covers $k_\ell$ values of layer $\ell-1$, whose fields are each $r_{\ell-1}$ wide and
# start $j_{\ell-1}$ pixels apart, so
#
# $$r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad r_0 = 1
# \qquad\Longrightarrow\qquad r_L = 1 + \sum_{\ell=1}^{L} (k_\ell - 1) \prod_{j<\ell} s_j .$$
#
# Each 3×3 convolution at stride 1 adds 2 pixels; everything after a stride-2 layer adds twice as much. Padding does not
# change the field (it decides only whether the windows near the border hang over it). `receptive_field` walks a list
# of layers with this recursion; in a residual block the field is the larger of the two paths (the 1×1 shortcut adds
# nothing), and after a `GlobalAveragePool` it is the whole image.

# %%
def _window(layer):
    """(k, s) of one axis for a layer: its window and stride; (1, 1) for element-wise layers."""
    if isinstance(layer, Conv2D):
        return layer.kernel_size[0], layer.stride
    if hasattr(layer, "pool_size"):                         # MaxPool2D, AvgPool2D (chapter 13)
        return layer.pool_size[0], layer.strides[0]
    return 1, 1


def receptive_field(layers, r=1, jump=1):
    """(r, jump): the receptive field (in input pixels, along the height) of one value after `layers`, and the distance
    between neighbouring values there. r_l = r_(l-1) + (k_l - 1) jump_(l-1); jump_l = jump_(l-1) s_l.
    Residual blocks: the larger field of the two paths. After a GlobalAveragePool: r = inf (the whole image)."""
    for layer in getattr(layers, "layers", layers):
        if type(layer).__name__ == "Residual":             # chapter 16's block, defined in section 4
            r_f, jump_f = receptive_field(layer.layers, r, jump)
            r_s, _ = receptive_field(layer.projection, r, jump)
            r, jump = max(r_f, r_s), jump_f
        elif type(layer).__name__ == "GlobalAveragePool":
            r = float("inf")
        else:
            k, s = _window(layer)
            r, jump = r + (k - 1) * jump, jump * s
    return r, jump


# %% [markdown]
# **Check against a backward pass.** Send a gradient that is 1 at one output value (in the middle of the map) and 0
# elsewhere back through the layers: the input pixels with a nonzero gradient are exactly those the value depends on.
# ReLU and max pooling would pass the gradient to only some of them (the active units, the winners), so the check uses
# the network's linear skeleton — the same windows and strides, positive random weights, average pooling — which
# passes it to every pixel in the field. The padding is "valid" so that no window hangs over the border.

# %% tags=["active-ipynb"]
# def field_by_backward(layers, size=48):
#     """Height and width of the nonzero region of dX for the middle output value of a linear stack."""
#     model = Sequential(layers, n_in=(size, size, 1), rng=np.random.default_rng(0))
#     for layer in model.layers:
#         if "W" in layer.params:
#             layer.params["W"][...] = np.abs(layer.params["W"]) + 0.1    # positive: no cancellation
#     Y = model.forward(np.zeros((1, size, size, 1), dtype=np.float32))
#     G = np.zeros_like(Y)
#     G[0, Y.shape[1] // 2, Y.shape[2] // 2, 0] = 1.0
#     rows, cols = np.nonzero(model.backward(G)[0, :, :, 0])
#     return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
#
# def conv(k=3, s=1):
#     return Conv2D(1, k, stride=s, use_bias=False)
#
# stacks = {"one 3x3": lambda: [conv()], "two 3x3": lambda: [conv(), conv()], "one 5x5": lambda: [conv(5)],
#           "three 3x3": lambda: [conv(), conv(), conv()], "3x3, 3x3 stride 2, 3x3": lambda: [conv(), conv(3, 2), conv()],
#           "chapter 13's CNN (conv, pool 2, conv, pool 2)": lambda: [conv(), AvgPool2D(2), conv(), AvgPool2D(2)],
#           "conv, pool 2, 3 x (conv, conv, pool 2)":
#               lambda: [conv(), AvgPool2D(2)] + [layer for _ in range(3) for layer in (conv(), conv(), AvgPool2D(2))]}
# for label, make in stacks.items():           # make() builds a fresh list of layers each time
#     r, jump = receptive_field(make())
#     seen = field_by_backward(make(), size=96)
#     print(f"{label:48s} formula r = {r:3d} (jump {jump:2d})   backward pass: {seen[0]} x {seen[1]}")
#     assert seen == (r, r)

# %% [markdown]
# The last stack — four poolings deep — already sees more than a whole 28×28 digit, as the last convolution of an
# image network usually does.
#
# ### Two 3×3 convolutions or one 5×5?
#
# Two stacked 3×3 convolutions see a 5×5 field, like one 5×5. With $C$ channels in and out, the pair has $2\cdot 9C^2$
# weights against $25C^2$, and as many multiply-adds per position; and it has a ReLU between the two, so it computes a
# function one 5×5 convolution cannot. Without the ReLU, the pair *is* a 5×5 convolution: its kernel is the "full"
# convolution of the two 3×3 kernels, $K_5[a, b] = \sum_{u+u'=a,\ v+v'=b} K_1[u, v]\, K_2[u', v']$ (matrices over the
# channels). The cell counts parameters and FLOPs from the built layers and checks the composition.

# %% tags=["active-ipynb"]
# C, HW = 32, (14, 14, 32)
# pair = Sequential([Conv2D(C, 3, padding="same", use_bias=False), Conv2D(C, 3, padding="same", use_bias=False)],
#                   n_in=HW, rng=rng)
# five = Sequential([Conv2D(C, 5, padding="same", use_bias=False)], n_in=HW, rng=rng)
#
# def conv_cost(model):
#     """(weights, forward FLOPs per image): 2 H' W' (kh kw C) F for each convolution."""
#     weights = sum(p.size for p in model.params.values())
#     flops = sum(2 * np.prod(layer.output_width(layer.n_in)[:2]) * layer.params["W"].size for layer in model.layers)
#     return weights, int(flops)
#
# (w2, f2), (w5, f5) = conv_cost(pair), conv_cost(five)
# print(f"two 3x3: {w2:,} weights, {f2 / 1e6:.2f} MFLOP per 14x14x{C} image;  one 5x5: {w5:,} weights, "
#       f"{f5 / 1e6:.2f} MFLOP  -> ratio {w2 / w5:.2f} (= 18/25)")
# assert receptive_field(pair)[0] == receptive_field(five)[0] == 5 and w2 / w5 == f2 / f5 == 18 / 25
#
# K1, K2 = pair.layers[0].params["W"].astype(np.float64), pair.layers[1].params["W"].astype(np.float64)
# K5 = np.zeros((5, 5, C, C))
# for u in range(3):
#     for v in range(3):
#         K5[u:u + 3, v:v + 3] += np.einsum("ij,abjk->abik", K1[u, v], K2)   # K1[u, v] (C x C) times each K2 entry
# X_c = rng.standard_normal((2, 12, 12, C))
# valid_pair = Sequential([Conv2D(C, 3, use_bias=False), Conv2D(C, 3, use_bias=False)], n_in=(12, 12, C), rng=rng)
# valid_five = Conv2D(C, 5, use_bias=False, n_in=(12, 12, C), rng=rng)
# valid_pair.layers[0].params["W"][...], valid_pair.layers[1].params["W"][...] = K1, K2
# valid_five.params["W"][...] = K5
# gap = rel_error(valid_pair.forward(X_c.astype(np.float32)), valid_five.forward(X_c.astype(np.float32)))
# print(f"two linear 3x3 convolutions vs one 5x5 with the composed kernel: rel. error {gap:.1e} (float32)")
# assert gap < 1e-5

# %% [markdown]
# ## 2. Where BatchNorm goes, and why the convolution before it needs no bias
#
# **The bias is absorbed.** In training mode BatchNorm subtracts each channel's mean over the batch and the positions.
# A convolution's bias $b_f$ adds the same constant to every value of channel $f$, so it moves that mean by exactly
# $b_f$ and is subtracted again: the output does not depend on $b$ at all. Its gradient is therefore zero:
# $\partial L/\partial b_f = \sum_{i,r,c} dZ_{i,r,c,f}$, and BatchNorm's backward (chapter 05) returns a $dZ$ whose
# column sums are zero, $\sum dX = a\sum dY - a \sum dY - \hat X\cdot(\dots)$ with $\sum \hat X = 0$. The shift is BatchNorm's
# $\beta$. So a convolution followed by BatchNorm is built with `use_bias=False`: $F$ parameters fewer, no
# parameter the optimiser carries for nothing. The cell checks both claims in float64.

# %% tags=["active-ipynb"]
# conv_b = Conv2D(6, 3, padding="same", rng=rng)             # with a bias
# with_bn = Sequential([conv_b, BatchNorm()])
# X_b = rng.standard_normal((8, 10, 10, 3))                   # float64: the layers are built in float64
# Y_zero = with_bn.forward(X_b, training=True)
# conv_b.params["b"][...] = 5 * rng.standard_normal(6)        # any bias at all
# Y_bias = with_bn.forward(X_b, training=True)
# with_bn.backward(rng.standard_normal(Y_bias.shape))
# db, dW = with_bn.grads["conv2d_0/b"], with_bn.grads["conv2d_0/W"]
# print(f"output change from a bias of size {np.abs(conv_b.params['b']).max():.1f}: "
#       f"{np.abs(Y_bias - Y_zero).max():.1e};  max |db| = {np.abs(db).max():.1e} against max |dW| = {np.abs(dW).max():.1e}")
# assert np.abs(Y_bias - Y_zero).max() < 1e-12 and np.abs(db).max() < 1e-10 * np.abs(dW).max()

# %% [markdown]
# **Before or after the activation?** The original BatchNorm paper puts it between the convolution and the ReLU
# (conv → BN → ReLU: the ReLU sees a normalised input, half of it positive); putting it after the ReLU (conv → ReLU → BN)
# normalises what the next layer receives instead. Both are used. A small measurement: the same two-block network
# both ways, three seeds each, a short run on a subset of MNIST, accuracy on 2,000 test images.
# `train` below is the plain loop of chapter 13, shared by the rest of the chapter.

# %% tags=["active-ipynb"]
# (X_train, y_train), (X_test, y_test) = load_mnist()
# X_eval, y_eval = X_test[:2000], y_test[:2000]
#
# def train(model, n_images, batch_size=64, lr=2e-3, seed=1, on_step=None):
#     """One pass of Adam over the first n_images training images; returns (losses, CPU seconds)."""
#     loss_fn, opt, losses, t0 = SoftmaxCrossEntropy(), Adam(lr=lr), [], time.process_time()
#     for X_b, y_b in batches(X_train[:n_images], y_train[:n_images], batch_size, rng=np.random.default_rng(seed)):
#         losses.append(loss_fn(model.forward(X_b, training=True), y_b))
#         model.backward(loss_fn.backward())
#         if on_step is not None:
#             on_step(model)
#         opt.step(model.params, model.grads)
#     return losses, time.process_time() - t0
#
# def small_cnn(order, seed):
#     def block(filters):
#         conv = Conv2D(filters, 3, padding="same", use_bias=False)
#         return [conv, BatchNorm(), ReLU()] if order == "conv-BN-ReLU" else [conv, ReLU(), BatchNorm()]
#     return Sequential([Reshape((28, 28, 1)), *block(8), MaxPool2D(2), *block(16), MaxPool2D(2), Flatten(), Dense(10)],
#                       n_in=784, rng=np.random.default_rng(seed))
#
# n_place = 3200 if quick_mode() else 12800
# placement = {}
# for order in ("conv-BN-ReLU", "conv-ReLU-BN"):
#     placement[order] = []
#     for seed in range(3):
#         model = small_cnn(order, seed)
#         losses, _ = train(model, n_place, seed=seed)
#         placement[order].append(accuracy(model.predict(X_eval), y_eval))
#         assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])           # each run learns
#     a = np.array(placement[order])
#     print(f"{order}: test accuracy median {np.median(a):.2%}, range {a.min():.2%} - {a.max():.2%} "
#           f"(3 seeds, {n_place:,} images, one pass)")

# %% [markdown]
# Three seeds of a short run are a small sample: read each median together with its range. The rest of the chapter
# uses conv → BN → ReLU, as ResNet does.

# %% [markdown]
# ## 3. A global-average-pooling head instead of Flatten + Dense
#
# Chapter 13's network ends with `Flatten` and a `Dense` layer: every position of the last feature maps has its own
# weights, so the classifier holds $H' W' C \times 10$ weights and learns *where* a feature is. A
# **global-average-pooling head** (Network in Network, 2013) averages each channel over all positions first, then
# applies a `Dense` of $C \times 10$ weights: the last convolutions must produce one map per piece of evidence, and
# the head no longer knows where it was found. The same trunk with each head:

# %% tags=["active-ipynb"]
# def trunk():
#     def block(filters):
#         return [Conv2D(filters, 3, padding="same", use_bias=False), BatchNorm(), ReLU()]
#     return [Reshape((28, 28, 1)), *block(16), MaxPool2D(2), *block(32), MaxPool2D(2), *block(64)]
#
# heads = {"GAP + Dense": [GlobalAveragePool(), Dense(10)], "Flatten + Dense": [Flatten(), Dense(10)]}
# head_models = {label: Sequential(trunk() + head, n_in=784, rng=np.random.default_rng(0)) for label, head in heads.items()}
# n_head = 6400 if quick_mode() else 19200
# head_acc = {}
# for label, model in head_models.items():
#     n_head_params = sum(p.size for layer in model.layers[-2:] for p in layer.params.values())
#     losses, seconds = train(model, n_head, lr=3e-3)
#     head_acc[label] = accuracy(model.predict(X_eval), y_eval)
#     print(f"{label:16s} head {n_head_params:6,} weights, whole model {sum(p.size for p in model.params.values()):6,};"
#           f" test accuracy {head_acc[label]:.2%} after {n_head:,} images ({seconds:.1f} s CPU)")
#     assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
# assert sum(p.size for p in head_models["GAP + Dense"].params.values()) \
#     < sum(p.size for p in head_models["Flatten + Dense"].params.values())

# %% [markdown]
# **Translation.** Shift every test digit $k$ pixels to the right (zero fill) and classify again. The convolutions and
# the poolings move their maps along with the digit; the averaging head then sees almost the same channel means, while
# the Flatten head's weights sit at fixed positions. The table and the figure show accuracy and the mean probability
# of the true class for each shift.

# %% tags=["active-ipynb"]
# def shift_right(X, k):
#     images = X.reshape(-1, 28, 28)
#     shifted = np.zeros_like(images)
#     shifted[:, :, k:] = images[:, :, :28 - k]
#     return shifted.reshape(len(X), 784)
#
# def softmax(Z):
#     E = np.exp(Z - Z.max(axis=1, keepdims=True))
#     return E / E.sum(axis=1, keepdims=True)
#
# shifts = range(0, 7)
# shift_acc, shift_prob = {}, {}
# for label, model in head_models.items():
#     P = [softmax(model.predict(shift_right(X_eval, k))) for k in shifts]
#     shift_acc[label] = [accuracy(p, y_eval) for p in P]
#     shift_prob[label] = [float(p[np.arange(len(p)), y_eval].mean()) for p in P]
# print("shift (pixels)      " + "".join(f"{k:>8d}" for k in shifts))
# for label in head_models:
#     print(f"{label:16s} acc " + "".join(f"{a:8.1%}" for a in shift_acc[label]))
#     print(f"{label:16s} p(y)" + "".join(f"{p:8.2f}" for p in shift_prob[label]))
# drop = {label: shift_acc[label][0] - shift_acc[label][-1] for label in head_models}
# print(f"accuracy lost at a 6-pixel shift: GAP head {drop['GAP + Dense']:.1%}, Flatten head {drop['Flatten + Dense']:.1%}")
# if not quick_mode():
#     assert drop["GAP + Dense"] < drop["Flatten + Dense"]

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
# for label in head_models:
#     axes[0].plot(list(shifts), shift_acc[label], "o-", label=label)
#     axes[1].plot(list(shifts), shift_prob[label], "o-", label=label)
# axes[0].set(xlabel="shift to the right (pixels)", ylabel="test accuracy", title="accuracy under translation")
# axes[1].set(xlabel="shift to the right (pixels)", ylabel="mean p(true class)", title="confidence under translation")
# axes[0].legend()
# axes[2].imshow(np.hstack([shift_right(X_eval[:1], k).reshape(28, 28) for k in (0, 3, 6)]), cmap="gray_r")
# axes[2].set_title("one digit shifted by 0, 3, 6 pixels"); axes[2].axis("off")
# save_figure(fig, "16_gap_translation.png")
# plt.show()

# %% [markdown]
# Read the unshifted accuracies as the price (if any) of the far smaller head, and the printed drop at 6 pixels as what
# it buys (asserted in full mode: the GAP head loses less). MNIST digits are centred, so the Flatten head never had to
# learn other positions; augmentation with shifts (chapter 11) is the other remedy.

# %% [markdown]
# ## 4. Residual connections
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
# first block never has to pass through all of them. The experiment at the end of this section measures this.
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
# ### Deep plain against deep residual
#
# The same depth twice: a stem (2×2 average pooling to 14×14, conv → BN → ReLU) and then 16 convolutions of 8
# channels, either as a plain chain of conv → BN → ReLU, or as 8 residual blocks (conv → BN → ReLU → conv → BN, plus
# the identity, then ReLU) — the same layers, the same weights at the start, only the 8 additions differ. Both are
# trained with the same batches; a callback records the gradient norm of every convolution at every step.

# %% tags=["active-ipynb"]
# def deep_net(residual, n_blocks=8, width=8, seed=0):
#     layers = [Reshape((28, 28, 1)), AvgPool2D(2), *conv_bn(width), ReLU()]
#     for _ in range(n_blocks):
#         F = conv_bn(width) + [ReLU()] + conv_bn(width)
#         layers += [Residual(F), ReLU()] if residual else F + [ReLU()]
#     return Sequential(layers + [GlobalAveragePool(), Dense(10)], n_in=784, rng=np.random.default_rng(seed))
#
# def conv_grad_norms(model):
#     """The gradient norm of each convolution's W, in the order of depth (the stem first)."""
#     return [float(np.linalg.norm(g)) for k, g in model.grads.items() if k.endswith("/W") and "conv2d" in k]
#
# assert all(np.array_equal(a, b) for a, b in zip(deep_net(False).params.values(), deep_net(True).params.values()))
# n_deep = 3840 if quick_mode() else 7680
# deep = {}
# for label, residual in (("plain", False), ("residual", True)):
#     model, norms = deep_net(residual), []
#     losses, seconds = train(model, n_deep, on_step=lambda m: norms.append(conv_grad_norms(m)))
#     deep[label] = {"losses": losses, "norms": np.array(norms), "acc": accuracy(model.predict(X_eval), y_eval)}
#     print(f"{label:8s} 17 convolutions: loss {np.mean(losses[:10]):.2f} -> {np.mean(losses[-10:]):.2f}, test accuracy "
#           f"{deep[label]['acc']:.2%} after {n_deep:,} images ({seconds:.1f} s CPU)")
#     assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])                 # both learn
# spread = {label: float(d["norms"][0].max() / d["norms"][0].min()) for label, d in deep.items()}
# print(f"largest / smallest gradient norm over the 17 convolutions at step 1: plain {spread['plain']:.1f}, "
#       f"residual {spread['residual']:.1f}")
# if not quick_mode():
#     assert np.mean(deep["residual"]["losses"][-20:]) < np.mean(deep["plain"]["losses"][-20:])
#     assert spread["residual"] < spread["plain"]

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
# for label, d in deep.items():
#     smooth = np.convolve(d["losses"], np.ones(10) / 10, mode="valid")
#     axes[0].plot(smooth, label=f"{label} (17 convolutions)")
#     line, = axes[1].semilogy(range(1, 18), d["norms"][0], "o-", label=f"{label}, step 1")
#     axes[1].semilogy(range(1, 18), d["norms"][-20:].mean(axis=0), "s--", color=line.get_color(),
#                      label=f"{label}, mean of the last 20 steps")
# axes[0].set(xlabel="step", ylabel="training loss (mean of 10)", title="training")
# axes[1].set(xlabel="convolution (1 = next to the input)", ylabel="||dW||", title="gradient norm per layer")
# axes[0].legend(); axes[1].legend(fontsize=8)
# save_figure(fig, "16_residual_vs_plain.png")
# plt.show()

# %% [markdown]
# What the figure shows, in the terms of the derivation: in the plain chain every gradient reaches a layer only through
# all the layers above it, and the product of their Jacobians changes its size from layer to layer (here the norms
# spread by the printed factor across the depth at the first step); in the residual network each block's input
# receives the upstream gradient unchanged plus $F$'s contribution, so the norms stay within a smaller range and the
# loss falls faster in the same number of steps (both asserted in full mode). Experiment 11 builds on this.

# %% [markdown]
# ## 5. Transposed convolution: col2im's other name
#
# Chapter 12 wrote a convolution as $Z = \mathrm{im2col}(X)\,\tilde W$ and derived its input gradient as
# $dX = \mathrm{col2im}(dZ\, \tilde W^\top)$. Read as a layer of its own, that map — from a small map $Y$ to a larger
# one, each value of $Y$ stamping a copy of the kernel (weighted by the value) onto the output, overlapping stamps
# adding up — is the **transposed convolution** (also called "deconvolution", though it inverts nothing). It is the
# adjoint of the convolution: $\langle \mathrm{conv}(X), Y\rangle = \langle X, \mathrm{conv}^\top(Y)\rangle$, and with
# stride $s$ it turns an $h\times w$ map into $((h-1)s + k) \times ((w-1)s + k)$: the upsampling layer of decoders
# and segmentation networks. Three checks: it equals `Conv2D.backward` with the same weights; it is the adjoint; and it
# equals the textbook construction — insert $s-1$ zeros between the values of $Y$, pad by $k-1$, and convolve with the
# kernel flipped in space and with its channel axes swapped.

# %% tags=["active-ipynb"]
# def conv_transpose(Y, W, stride):
#     """Transposed convolution of Y (m, h, w, F) with a Conv2D kernel W (k, k, C, F), no padding: col2im of Y W~^T."""
#     m, h, w, F = Y.shape
#     k, _, C, _ = W.shape
#     cols = (Y.reshape(-1, F) @ W.reshape(-1, F).T).reshape(m, h, w, k, k, C)
#     return col2im(cols, (m, (h - 1) * stride + k, (w - 1) * stride + k, C), stride)
#
# k_t, s_t = 3, 2
# conv_layer = Conv2D(4, k_t, stride=s_t, use_bias=False, n_in=(9, 9, 3), rng=rng)
# W_t = conv_layer.params["W"].astype(np.float64)
# conv_layer.params = {"W": W_t}                                   # a float64 copy for the checks
# conv_layer.grads = {"W": np.zeros_like(W_t)}
# X_t = rng.standard_normal((2, 9, 9, 3))
# Y_t = rng.standard_normal(conv_layer.forward(X_t).shape)          # (2, 4, 4, 4)
# up = conv_transpose(Y_t, W_t, s_t)
# dilated = np.zeros((2, (4 - 1) * s_t + 1, (4 - 1) * s_t + 1, 4))
# dilated[:, ::s_t, ::s_t] = Y_t
# padded = np.pad(dilated, ((0, 0), (k_t - 1, k_t - 1), (k_t - 1, k_t - 1), (0, 0)))
# flipped = Conv2D(3, k_t, use_bias=False, n_in=padded.shape[1:], rng=rng)
# flipped.params = {"W": W_t[::-1, ::-1].transpose(0, 1, 3, 2)}    # flip in space, swap C and F
# textbook = flipped.forward(padded)
# print(f"{Y_t.shape[1:]} -> {up.shape[1:]};  vs Conv2D.backward: {rel_error(up, conv_layer.backward(Y_t)):.1e};  "
#       f"adjoint: <conv X, Y> = {np.sum(conv_layer.forward(X_t) * Y_t):.6f}, <X, conv^T Y> = {np.sum(X_t * up):.6f};  "
#       f"vs zeros-inserted flipped convolution: {rel_error(up, textbook):.1e}")
# assert up.shape == X_t.shape and rel_error(up, conv_layer.backward(Y_t)) < 1e-12 and rel_error(up, textbook) < 1e-12
# assert np.isclose(np.sum(conv_layer.forward(X_t) * Y_t), np.sum(X_t * up), rtol=1e-12)

# %% [markdown]
# The picture: a transposed convolution with a kernel of ones applied to a map of ones counts how many stamps cover each
# output pixel. With $k = 3$, $s = 2$ the stamps overlap on every other row and column — the "checkerboard" that
# decoders built this way are known for; with $k = 4$, $s = 2$ every interior pixel is covered twice in each direction.

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
# for ax, k in zip(axes, (3, 4)):
#     cover = conv_transpose(np.ones((1, 5, 5, 1)), np.ones((k, k, 1, 1)), 2)[0, :, :, 0]
#     ax.imshow(cover, cmap="viridis"); ax.set_title(f"k = {k}, s = 2: stamps per pixel"); ax.axis("off")
#     print(f"k = {k}, s = 2: interior coverage counts {sorted(set(cover[k:-k, k:-k].ravel().astype(int).tolist()))}")
# save_figure(fig, "16_transposed_conv.png")
# plt.show()
# assert set(conv_transpose(np.ones((1, 5, 5, 1)), np.ones((4, 4, 1, 1)), 2)[0, 4:-4, 4:-4, 0].ravel()) == {4.0}

# %% [markdown]
# ## 6. What does the network look at? Saliency and occlusion
#
# **Saliency** (Simonyan, Vedaldi and Zisserman, 2014): the gradient of one class score $z_c$ (the logit, before the
# softmax) with respect to the input pixels, $\partial z_c / \partial X$. A large value marks a pixel whose small change
# would change the score most. It costs one backward pass: send $G = e_c$ (1 at the class, 0 elsewhere) into
# `model.backward`, which returns $dX$ — here the first layer *does* compute its input gradient (the training loop's
# `backward_params` skips it; `backward` does not). **Occlusion** (Zeiler and Fergus, 2014) asks the question directly:
# cover a small square of the image with zeros, and record how much the probability of the class drops; slide the
# square over the image. It needs no gradient, only many forward passes.

# %%
def class_score_gradient(model, X, classes):
    """d z_c / dX for each image: the gradient of the logit of its class `classes[i]` (inference mode), one backward."""
    Z = model.forward(X, training=False)
    classes = np.asarray(classes)
    if classes.shape != (len(Z),) or classes.min() < 0 or classes.max() >= Z.shape[1]:
        raise ValueError(f"class_score_gradient: classes must be {len(Z)} integers in [0, {Z.shape[1]}), got {classes!r}")
    G = np.zeros_like(Z)
    G[np.arange(len(Z)), classes] = 1.0
    return model.backward(G)


def saliency(model, X, classes):
    """|d z_c / dX|: the saliency map of each image, in the input's shape."""
    return np.abs(class_score_gradient(model, X, classes))


def occlusion_map(model, image, label, patch=6, stride=2, fill=0.0):
    """Drop in the predicted probability of `label` when a patch x patch square of `image` (H, W) is set to `fill`,
    for each position of the square (stride apart): a map of shape ((H - patch)//stride + 1, (W - patch)//stride + 1).
    All occluded copies go through the model as one batch (predict, inference mode)."""
    image = np.asarray(image)
    H, W = image.shape
    rows, cols = range(0, H - patch + 1, stride), range(0, W - patch + 1, stride)
    copies = np.repeat(image[None], len(rows) * len(cols) + 1, axis=0)     # the last one stays whole
    for i, (r, c) in enumerate((r, c) for r in rows for c in cols):
        copies[i, r:r + patch, c:c + patch] = fill
    Z = model.predict(copies.reshape(len(copies), -1))
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    p = P[:, label] / P.sum(axis=1)
    return (p[-1] - p[:-1]).reshape(len(rows), len(cols))


# %% [markdown]
# **Check.** The saliency of a trained network (the GAP model of section 3), in a float64 copy, against central
# differences over every pixel of one digit; then the maps for digits the network gets right and digits it gets wrong.

# %% tags=["active-ipynb"]
# net = head_models["GAP + Dense"]
# net64 = Sequential.from_config(net.get_config(), dtype=np.float64)
# net64.load_state_dict(net.state_dict())
# x0, c0 = X_eval[:1].astype(np.float64) + 1e-3 * rng.standard_normal((1, 784)), y_eval[:1]   # noise: no max-pool ties
# analytic = class_score_gradient(net64, x0, c0)
# numeric = numerical_gradient(lambda: float(net64.forward(x0, training=False)[0, c0[0]]), x0)
# print(f"saliency vs central differences over {x0.size} pixels: rel. error {rel_error(analytic, numeric):.1e}")
# assert rel_error(analytic, numeric) < 1e-6

# %% tags=["active-ipynb"]
# predicted = net.predict(X_eval).argmax(axis=1)
# right, wrong = np.flatnonzero(predicted == y_eval)[:3], np.flatnonzero(predicted != y_eval)[:3]
# print(f"{len(np.flatnonzero(predicted != y_eval))} of {len(y_eval)} test digits misclassified; shown: 3 right, "
#       f"{len(wrong)} wrong")
# assert len(wrong) >= 1
# chosen = np.concatenate([right, wrong])
# sal = saliency(net, X_eval[chosen], predicted[chosen]).reshape(-1, 28, 28)
# occ = [occlusion_map(net, X_eval[i].reshape(28, 28), predicted[i]) for i in chosen]
# fig, axes = plt.subplots(3, len(chosen), figsize=(2 * len(chosen), 6.4))
# for j, i in enumerate(chosen):
#     verdict = "right" if predicted[i] == y_eval[i] else "WRONG"
#     axes[0, j].imshow(X_eval[i].reshape(28, 28), cmap="gray_r")
#     axes[0, j].set_title(f"{verdict}: label {y_eval[i]},\npredicted {predicted[i]}", fontsize=9)
#     axes[1, j].imshow(sal[j], cmap="hot")
#     axes[2, j].imshow(occ[j], cmap="RdBu_r", vmin=-np.abs(occ[j]).max(), vmax=np.abs(occ[j]).max())
#     for ax in axes[:, j]:
#         ax.axis("off")
# axes[1, 0].set_title("saliency |dz/dX|", fontsize=9, loc="left")
# axes[2, 0].set_title("occlusion: drop of p(predicted)", fontsize=9, loc="left")
# save_figure(fig, "16_saliency.png")
# plt.show()

# %% [markdown]
# How to read the figure: saliency is a local, first-order quantity — which pixels, changed a little, would move the
# score — and for this network the maps are noisy and spread well beyond the strokes, including pixels where ink is
# *absent*. The occlusion map is coarse (one value per patch position) and costs one forward pass per position, but it
# answers a larger question: which region, removed, costs the predicted class its probability (red) or raises it
# (blue). For a misclassified digit it shows which strokes the wrong class rests on. (Smoothed and integrated gradients
# are the usual remedies for the noise; they are averages of this same backward pass.)

# %% [markdown]
# ## Summary
#
# * **Receptive field**: $r = 1 + \sum_\ell (k_\ell - 1)\prod_{j<\ell} s_j$ — each layer adds its window minus one, times
#   the product of the strides before it; `receptive_field` computes it and a backward pass of a one-hot gradient
#   confirms it. Two 3×3 convolutions see as far as one 5×5 with 18/25 of the weights and FLOPs, and a ReLU between them.
# * **BatchNorm after a convolution absorbs its bias** (output unchanged, gradient zero, checked): `use_bias=False`.
#   Its placement before or after the ReLU was measured over three seeds; the printed ranges are the result.
# * **Global average pooling** replaces Flatten + Dense with a head of $C \times 10$ weights and no positions; measured
#   here against Flatten + Dense on accuracy and on shifted digits.
# * **Residual blocks** $y = x + F(x)$ (or $P(x) + F(x)$ with a 1×1 projection): the backward adds the identity's
#   gradient, $dX = dY + F.\mathrm{backward}(dY)$. `Residual` is a layer holding layers, so saving, loading and the
#   optimisers work unchanged; a deep residual network was compared with the plain one of the same depth.
# * **Transposed convolution** is col2im of $Y\tilde W^\top$ — the input gradient of a convolution used as a layer, its
#   adjoint, an upsampling.
# * **Saliency** is one backward pass to the pixels ($dX$ of a class score); **occlusion** is many forward passes.
#
# ## Exercises
#
# 1. If the last layer of $F$ is a BatchNorm with $\gamma = 0$, the block starts as the identity (the "zero-γ"
#    initialisation of residual networks). Check it on a block, in training mode, and find which parameters get a
#    nonzero gradient at the first step.
# 2. After a 2×2 pooling (stride 2) of a 28×28 digit, how many 3×3 convolutions (stride 1) are needed before one value
#    sees the whole digit? Derive it from the formula, then check with `receptive_field`.
# 3. With $k = s$ (e.g. a 2×2 kernel, stride 2) the stamps of a transposed convolution do not overlap. Show that for one
#    channel it is then the Kronecker product of the map with the kernel (`np.kron`).

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

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

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # after the pooling r = 2 and the jump is 2, so each 3x3 convolution adds (3 - 1) * 2 = 4 pixels: 2 + 4n >= 28
#     # gives n = 7 (r = 30; six give 26).
#     for n in (6, 7):
#         r, jump = receptive_field([AvgPool2D(2)] + [Conv2D(8, 3, padding="same") for _ in range(n)])
#         print(f"pool 2 then {n} convolutions 3x3: receptive field {r} pixels (jump {jump})")
#     assert receptive_field([AvgPool2D(2)] + [Conv2D(8, 3) for _ in range(7)])[0] == 30
#     assert receptive_field([AvgPool2D(2)] + [Conv2D(8, 3) for _ in range(6)])[0] == 26

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # each value Y[r, c] stamps Y[r, c] * K at (2r, 2c); with k = s the stamps tile the output: that is np.kron(Y, K).
#     Y_ex, K_ex = rng.standard_normal((5, 5)), rng.standard_normal((2, 2))
#     up_ex = conv_transpose(Y_ex[None, :, :, None], K_ex[:, :, None, None], 2)[0, :, :, 0]
#     print("transposed convolution (k = s = 2) == np.kron(Y, K):", np.allclose(up_ex, np.kron(Y_ex, K_ex)))
#     assert up_ex.shape == (10, 10) and np.allclose(up_ex, np.kron(Y_ex, K_ex), rtol=1e-12, atol=1e-12)


# %% [markdown]
# ---
# [← 15 — diagnosing and tuning](15_diagnosing.ipynb) · [begin here](00_begin_here.ipynb) · **16 — designing a CNN** · [next: experiment 11 — a small ResNet →](experiments/11_resnet.ipynb)
