# %% [markdown]
# [← 12 — convolution](12_convolution.ipynb) · [begin here](00_begin_here.ipynb) · **13 — pooling** · [next: 14 — where the time goes →](14_performance.ipynb)
#
# # 13 — Pooling, and a convolutional network
#
# A convolution keeps the image's size (with "same" padding) and multiplies the number of channels. **Pooling**
# shrinks the image: it replaces each small window, usually 2×2, by one number — its maximum (max pooling) or its mean
# (average pooling) — channel by channel, with no parameters. Four times fewer positions means four times less work for
# the next convolution, and each later kernel sees a larger part of the digit. Max pooling adds a little tolerance to
# shifts: a feature found anywhere in the window gives the same output.
#
# This chapter derives `MaxPool2D` (and what happens in a tie), `AvgPool2D` and `GlobalAveragePool`, checks all
# gradients by central differences, extends `BatchNorm` to feature maps, and trains the first CNN on MNIST.
# Images are batches of shape $(m, H, W, C)$, as in chapter 12.

# %%
"""Chapter 13: pooling. MaxPool2D (in a tie, the first maximum in row-major window order gets the gradient),
AvgPool2D and GlobalAveragePool, on images of shape (m, H, W, C)."""
import numpy as np

from diydnn._01_dense import Layer
from diydnn._07_model import register_layer
from diydnn._12_convolution import _image_shape, _pair


# %% tags=["active-ipynb"]
# import tempfile
# import time
# from pathlib import Path
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, numerical_gradient, quick_mode, rel_error, save_figure
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# from diydnn._05_batchnorm import BatchNorm
# from diydnn._06_optimisers import Adam
# from diydnn._07_model import Sequential
# from diydnn._08_mnist import batches, load_mnist
# from diydnn._12_convolution import Conv2D, Flatten, Reshape
# from threadpoolctl import threadpool_limits
# threadpool_limits(limits=1)     # one BLAS thread for every timing here (chapter 14 shows why; = diydnn.set_threads(1))
# rng = np.random.default_rng(13)

# %% [markdown]
# ## 1. Max pooling, element by element
#
# With a window $p_h\times p_w$ and strides $(s_h, s_w)$ (by default the window itself: windows side by side, no overlap),
# output pixel $(r, c)$ of channel $d$ is the largest value in its window:
#
# $$Y_{i,r,c,d} = \max_{0\le u<p_h,\ 0\le v<p_w} X_{i,\; r s_h + u,\; c s_w + v,\; d}, \qquad
# H' = \Big\lfloor \frac{H - p_h}{s_h} \Big\rfloor + 1,\quad W' = \Big\lfloor \frac{W - p_w}{s_w} \Big\rfloor + 1 .$$
#
# Only windows that fit are used ("valid"): a 2×2 pooling of a 7×7 image gives 3×3 and ignores the last row and column.
# Each channel is pooled on its own; pooling has no parameters.
#
# **Vectorised, as in chapter 12: a loop over the window offsets, never over pixels.** For offset $(u, v)$, the strided
# slice `X[:, u : u + s_h H' : s_h, v : v + s_w W' : s_w, :]` holds, at position $(r, c)$, entry $(u, v)$ of every window.
# The maximum over the windows is the element-wise maximum of these $p_h p_w$ slices (4 for a 2×2 window): a few
# passes over the batch, all views, no patch matrix.

# %%
class _Pool2D(Layer):
    """Shared by MaxPool2D and AvgPool2D: the window, the strides (by default the window: no overlap), the output size."""

    input_ndim, input_layout = (4,), "(m, height, width, channels)"

    def __init__(self, pool_size=2, stride=None, name=None):
        super().__init__(name)
        who = f"{type(self).__name__}({self.name!r})"
        self.pool_size = _pair(pool_size, "pool_size", who)
        self.strides = self.pool_size if stride is None else _pair(stride, "stride", who)

    def output_width(self, n_in):
        """The shape (H_out, W_out, C) of one output sample."""
        H, W, C = _image_shape(self, n_in)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if H < ph or W < pw:
            raise ValueError(f"{self!r}: a {ph}x{pw} window does not fit an input of shape (m, {H}, {W}, {C})")
        return ((H - ph) // sh + 1, (W - pw) // sw + 1, C)

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size), "stride": list(self.strides)}

    def _slices(self, X):
        """For each window offset (u, v), row-major: the strided view whose [:, r, c, :] is X[:, r*sh + u, c*sw + v, :]."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        out_h, out_w, _ = self.output_width(X.shape[1:])
        return [X[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :] for u in range(ph) for v in range(pw)]


# %% [markdown]
# ## 2. Max pooling, backward — and ties
#
# Within one window, $\partial \max_k x_k / \partial x_j = 1$ if $x_j$ is the (unique) largest, else 0: the gradient of an
# output goes **entirely to the input that won**, and the others get nothing. Summed over the windows that contain an
# input (several, if windows overlap):
#
# $$dX_{i,y,x,d} = \sum_{r,c:\ (y, x)\ \text{is the winner of window}\ (r,c)} dY_{i,r,c,d}.$$
#
# **Ties.** When two inputs of a window share the maximum (common after a ReLU, where many values are exactly 0, and in
# MNIST's saturated pixels), the maximum is not differentiable there: any convex split of $dY$ between the winners is a
# valid subgradient. We choose a rule and test it: **the first maximum in row-major order inside the window (top-left
# first) gets the whole gradient**, as NumPy's `argmax` would pick; the others get 0. The gradient then always sums to
# $dY$ per window (no doubling), and is the gradient of the function obtained by nudging the later tied entries down.
#
# **Vectorised.** The forward pass keeps $X$ and $Y$. Backward walks the offsets in row-major order; at each offset the
# slice holds the winner where it equals $Y$ *and* no earlier offset already claimed the window (a boolean `taken`
# array records the claims). Those positions receive $dY$. When the windows do not overlap (the usual 2×2, stride 2),
# each pixel belongs to at most one window, so its gradient is *written* once (`np.multiply(..., out=)`) instead of
# added; when they also tile the image exactly, $dX$ needs no zeroing first. Together with reused boolean buffers this
# saves whole passes over memory (chapter 14's lesson: memory passes are the cost). A cell below times it against the
# plain version — $dX$ zeroed, new boolean arrays and a `+=` at every offset — on the CNN's first block.

# %%
@register_layer
class MaxPool2D(_Pool2D):
    """Maximum over each pool_size window, per channel. In a tie, the first maximum in row-major order inside the
    window (top-left first) is the winner, and only the winner receives the gradient."""

    def forward(self, X, training=False):
        X = self._check_input(X)
        Y = None
        for view in self._slices(X):
            Y = view.copy() if Y is None else np.maximum(Y, view, out=Y)
        self._cache = (X, Y)
        return Y

    def backward(self, dY):
        X, Y = self._cached()
        dY = self._check_upstream(dY, Y.shape)
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        overlap = sh < ph or sw < pw
        tiled = not overlap and (sh, sw) == (ph, pw) and X.shape[1] % ph == 0 and X.shape[2] % pw == 0
        # every pixel lies in exactly one window when the windows tile the image: each is written once, so no zeros
        dX = (np.empty if tiled else np.zeros)(X.shape, dtype=dY.dtype)
        taken = np.zeros(Y.shape, dtype=bool)      # windows whose winner has been found
        hit = np.empty(Y.shape, dtype=bool)
        for x, dx in zip(self._slices(X), self._slices(dX)):
            np.equal(x, Y, out=hit)                # this offset holds the window's maximum ...
            np.greater(hit, taken, out=hit)        # ... and no earlier offset did (hit and not taken): first one wins
            if overlap:
                dx += dY * hit                     # dx is a view into dX; += adds up overlapping windows
            else:
                np.multiply(dY, hit, out=dx)       # windows apart: each pixel gets one window's share, or none
            taken |= hit
        return dX


# %% [markdown]
# The forward pass against the element-wise formula (a loop over every output), for non-overlapping windows, overlapping
# windows (3×3, stride 2) and a stride of 1, on odd sizes:

# %% tags=["active-ipynb"]
# def maxpool_loops(X, ph, pw, sh, sw):
#     m, H, W, C = X.shape
#     Ho, Wo = (H - ph) // sh + 1, (W - pw) // sw + 1
#     return np.array([[[[max(X[i, r * sh + u, c * sw + v, d] for u in range(ph) for v in range(pw))
#                         for d in range(C)] for c in range(Wo)] for r in range(Ho)] for i in range(m)])
#
#
# for pool_size, stride in [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2))]:
#     pool = MaxPool2D(pool_size, stride)
#     X_pool = rng.standard_normal((2, 7, 8, 3))
#     Y_pool = pool.forward(X_pool)
#     expected = maxpool_loops(X_pool, *pool.pool_size, *pool.strides)
#     print(f"pool {pool.pool_size}, stride {pool.strides}: (2, 7, 8, 3) -> {Y_pool.shape}, equal to the loops: "
#           f"{np.array_equal(Y_pool, expected)}")
#     assert np.array_equal(Y_pool, expected)

# %% [markdown]
# **Gradient checks** in float64 with a random upstream gradient. Central differences need the maximum to be unique
# (a nudge of $10^{-6}$ must not change the winner), which random normal inputs give almost surely:

# %% tags=["active-ipynb"]
# for pool_size, stride in [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2))]:
#     errors = check_layer(MaxPool2D(pool_size, stride), rng.standard_normal((2, 7, 8, 3)), rng)
#     print(f"pool {pool_size}, stride {stride}: rel. error {errors['X']:.1e}")
#     assert errors["X"] < 1e-8

# %% [markdown]
# **The tie rule, tested.** A window of four equal values, a window where two of four tie for the maximum, and overlapping
# windows that share their winner:

# %% tags=["active-ipynb"]
# X_tie = np.array([[1., 1., 0., 5.],
#                   [1., 1., 5., 2.]])[None, :, :, None]            # left window: all equal; right: 5 twice
# pool = MaxPool2D(2)
# print("output:", pool.forward(X_tie)[0, :, :, 0])
# dX_tie = pool.backward(np.array([[3., 7.]])[None, :, :, None])[0, :, :, 0]
# print("gradient (upstream 3 and 7):\n", dX_tie)
# assert np.array_equal(dX_tie, [[3, 0, 0, 7], [0, 0, 0, 0]])     # the top-left of the tied values wins, nothing doubles
# overlap = MaxPool2D(2, stride=1)
# X_ov = np.array([[0., 0., 0.], [0., 9., 0.], [0., 0., 0.]])[None, :, :, None]
# overlap.forward(X_ov)
# dX_ov = overlap.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
# print("overlapping windows with one shared winner:\n", dX_ov)
# assert dX_ov[1, 1] == 4 and dX_ov.sum() == 4

# %% [markdown]
# **What the written-once backward saves**, measured: the same gradient (checked equal, ties included) from the plain
# version and from `MaxPool2D.backward`, on the output of the first convolution block of section 5 after its ReLU
# (batch 128, 28×28×16, many exact zeros), one BLAS thread, median of 7 runs (3 in quick mode).

# %% tags=["active-ipynb"]
# def maxpool_backward_plain(X, Y, dY, pool_size, strides):
#     """The straightforward backward: dX zeroed, new boolean arrays and a += at every window offset."""
#     (ph, pw), (sh, sw) = pool_size, strides
#     out_h, out_w = Y.shape[1:3]
#     dX = np.zeros(X.shape, dtype=dY.dtype)
#     taken = np.zeros(Y.shape, dtype=bool)
#     for u in range(ph):
#         for v in range(pw):
#             hit = (X[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :] == Y) & ~taken
#             dX[:, u:u + sh * out_h:sh, v:v + sw * out_w:sw, :] += dY * hit
#             taken |= hit
#     return dX
#
#
# def median_ms(f, repeats):
#     f()                                                  # a warm-up call, not timed
#     times = []
#     for _ in range(repeats):
#         t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
#     return 1e3 * float(np.median(times))
#
#
# repeats = 3 if quick_mode() else 7
# X_block = np.maximum(rng.standard_normal((128, 28, 28, 16)), 0).astype(np.float32)   # after a ReLU: ties at 0
# pool = MaxPool2D(2)
# Y_block = pool.forward(X_block)
# dY_block = rng.standard_normal(Y_block.shape).astype(np.float32)
# assert np.array_equal(pool.backward(dY_block), maxpool_backward_plain(X_block, Y_block, dY_block, (2, 2), (2, 2)))
# t_plain = median_ms(lambda: maxpool_backward_plain(X_block, Y_block, dY_block, (2, 2), (2, 2)), repeats)
# t_layer = median_ms(lambda: pool.backward(dY_block), repeats)
# print(f"MaxPool2D(2) backward on (128, 28, 28, 16), one BLAS thread, median of {repeats}: plain version "
#       f"{t_plain:.1f} ms, MaxPool2D.backward {t_layer:.1f} ms ({t_plain / t_layer:.2f}x as fast)")
# if not quick_mode():
#     assert t_layer < t_plain

# %% [markdown]
# ## 3. Average pooling
#
# $$Y_{i,r,c,d} = \frac{1}{p_h p_w}\sum_{u,v} X_{i,\; r s_h + u,\; c s_w + v,\; d}, \qquad
# dX_{i,y,x,d} = \frac{1}{p_h p_w}\sum_{r,c:\ (y,x)\ \in\ \text{window}\ (r,c)} dY_{i,r,c,d}.$$
#
# Linear, so every input of a window gets an equal share $1/(p_h p_w)$ of the window's gradient; no ties to worry about.
# The same loop over the offsets computes both directions. **Global average pooling** is the special case of one window
# covering the whole image: $(m, H, W, C) \to (m, C)$, $Y_{i,d} = \frac{1}{HW}\sum_{y,x} X_{i,y,x,d}$ and
# $dX_{i,y,x,d} = dY_{i,d}/(HW)$. It replaces `Flatten` at the end of many modern CNNs: the Dense layer after it then
# has $C$ inputs, whatever the image size.

# %%
@register_layer
class AvgPool2D(_Pool2D):
    """Mean over each pool_size window, per channel; every input of a window gets 1/(ph*pw) of its gradient."""

    def forward(self, X, training=False):
        X = self._check_input(X)
        Y = None
        for view in self._slices(X):
            Y = view.copy() if Y is None else np.add(Y, view, out=Y)
        self._cache = X.shape
        Y *= X.dtype.type(1.0 / np.prod(self.pool_size))
        return Y

    def backward(self, dY):
        x_shape = self._cached()
        dY = self._check_upstream(dY, (x_shape[0], *self.output_width(x_shape[1:])))
        share = dY * dY.dtype.type(1.0 / np.prod(self.pool_size))
        dX = np.zeros(x_shape, dtype=dY.dtype)
        for dx in self._slices(dX):
            dx += share                                # += adds up overlapping windows
        return dX


@register_layer
class GlobalAveragePool(Layer):
    """(m, H, W, C) -> (m, C): the mean of each channel over all positions."""

    input_ndim, input_layout = (4,), "(m, height, width, channels)"

    def output_width(self, n_in):
        return _image_shape(self, n_in)[2]

    def forward(self, X, training=False):
        X = self._check_input(X)
        self._cache = X.shape
        return X.mean(axis=(1, 2))

    def backward(self, dY):
        m, H, W, C = self._cached()
        dY = self._check_upstream(dY, (m, C))
        return np.broadcast_to((dY / (H * W))[:, None, None, :], (m, H, W, C)).copy()


# %% tags=["active-ipynb"]
# X_avg = rng.standard_normal((2, 7, 8, 3))
# for layer in (AvgPool2D(2), AvgPool2D(3, 2), AvgPool2D((2, 3), 1)):
#     loops = np.array([[[[X_avg[i, r * layer.strides[0]:r * layer.strides[0] + layer.pool_size[0],
#                               c * layer.strides[1]:c * layer.strides[1] + layer.pool_size[1], d].mean()
#                         for d in range(3)] for c in range(layer.output_width((7, 8, 3))[1])]
#                       for r in range(layer.output_width((7, 8, 3))[0])] for i in range(2)])
#     errors = check_layer(layer, X_avg, rng)
#     print(f"{layer!r} pool {layer.pool_size}, stride {layer.strides}: equal to the loops: "
#           f"{np.allclose(layer.forward(X_avg), loops)}, gradient rel. error {errors['X']:.1e}")
#     assert np.allclose(layer.forward(X_avg), loops) and errors["X"] < 1e-8
# gap = GlobalAveragePool()
# errors = check_layer(gap, X_avg, rng)
# print(f"GlobalAveragePool: (2, 7, 8, 3) -> {gap.forward(X_avg).shape}, equals mean over H, W: "
#       f"{np.allclose(gap.forward(X_avg), X_avg.mean(axis=(1, 2)))}, gradient rel. error {errors['X']:.1e}")
# assert errors["X"] < 1e-8 and np.allclose(gap.forward(X_avg), X_avg.mean(axis=(1, 2)))

# %% [markdown]
# ## 4. BatchNorm on feature maps: one mean and variance per channel
#
# After a convolution, a channel is one feature detected at every position. Normalising each *value* $(y, x, d)$ on its
# own, as BatchNorm does for the units of a Dense layer, would give every position its own statistics and break the
# weight sharing. Instead BatchNorm on images normalises **per channel, over the batch and all positions**: the mean and
# variance of channel $d$ are taken over the $m H W$ values $X_{i,y,x,d}$, and there is one $\gamma_d$ and one $\beta_d$.
#
# That is exactly chapter 05's BatchNorm applied to the matrix $X.\mathrm{reshape}(mHW, C)$, whose rows are the
# positions of all samples. So the derivation of chapter 05 carries over unchanged with $m \to mHW$:
#
# $$dX = \frac{\gamma}{mHW\sqrt{\sigma^2+\varepsilon}}\Big(mHW\,dY - \textstyle\sum dY - \hat X \sum (dY\odot\hat X)\Big),$$
#
# with the sums over the batch and both spatial axes. Chapter 05's `BatchNorm` does this for a 4-D batch (the axes of its
# sums are all but the last one). The checks: it equals BatchNorm on the reshaped matrix, in training and in inference
# mode, and its gradients (input, $\gamma$, $\beta$) agree with central differences — after a `Conv2D`, in training
# mode, with a random upstream gradient (chapter 05 explains why an all-ones upstream gradient proves nothing).

# %% tags=["active-ipynb"]
# X_bn = rng.standard_normal((3, 4, 5, 2)) * 3 + 1
# bn4, bn2 = BatchNorm(eps=1e-3), BatchNorm(eps=1e-3)
# for training in (True, True, False):
#     Y4 = bn4.forward(X_bn, training=training)
#     Y2 = bn2.forward(X_bn.reshape(-1, 2), training=training)
#     assert np.allclose(Y4.reshape(-1, 2), Y2)
# print("gamma shape", bn4.params["gamma"].shape, "  per channel == BatchNorm on the (m*H*W, C) matrix: True")
# conv_bn = Sequential([Conv2D(3, 3, padding="same"), BatchNorm(eps=1e-2), ReLU()], rng=np.random.default_rng(5))
# errors = check_layer(conv_bn, rng.standard_normal((2, 4, 4, 2)), rng)
# zero = errors.pop("conv2d_0/b")           # a bias before BatchNorm has gradient exactly 0 (chapter 07)
# print({k: f"{v:.1e}" for k, v in errors.items()})
# assert max(errors.values()) < 1e-7 and np.abs(conv_bn.grads["conv2d_0/b"]).max() < 1e-10

# %% [markdown]
# ## 5. A convolutional network
#
# Everything together, in the shape most small image classifiers share: convolution blocks that double the channels
# while pooling halves the image, then a Dense head.
#
# `Reshape(28,28,1)` → `Conv2D(16, 3×3, same)` → ReLU → `MaxPool2D(2)` → `Conv2D(32, 3×3, same)` → ReLU → `MaxPool2D(2)`
# → `Flatten` → `Dense(64)` → ReLU → `Dense(10)`.
#
# The summary shows the shapes: 28×28×1 → 28×28×16 → 14×14×16 → 14×14×32 → 7×7×32 → 1568 → 64 → 10. The convolutions
# have few parameters ($3\cdot3\cdot16\cdot32 + 32 = 4{,}640$ for the second) but do most of the work; most parameters sit in
# the first Dense layer ($1568\cdot64 + 64$). One epoch on 12,000 MNIST images (1,500 in batches of 32 in quick mode), plain Adam,
# one BLAS thread:

# %% tags=["active-ipynb"]
# (X_train, y_train), (X_test, y_test) = load_mnist()
# cnn = Sequential([Reshape((28, 28, 1)), Conv2D(16, 3, padding="same"), ReLU(), MaxPool2D(2),
#                   Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2), Flatten(), Dense(64), ReLU(), Dense(10)],
#                  n_in=784, rng=np.random.default_rng(0))
# cnn.summary()
# assert cnn.output_width(784) == 10 and cnn.layers[7].n_in == (7, 7, 32)
# assert sum(p.size for p in cnn.layers[4].params.values()) == 3 * 3 * 16 * 32 + 32

# %% tags=["active-ipynb"]
# n_train, batch_size = (1500, 32) if quick_mode() else (12000, 64)
# loss_fn, opt = SoftmaxCrossEntropy(), Adam(lr=2e-3)
# t0, losses = time.perf_counter(), []
# for X_b, y_b in batches(X_train[:n_train], y_train[:n_train], batch_size, rng=np.random.default_rng(1)):
#     losses.append(loss_fn(cnn.forward(X_b, training=True), y_b))
#     cnn.backward(loss_fn.backward())
#     opt.step(cnn.params, cnn.grads)
# seconds = time.perf_counter() - t0
# n_test = 1000 if quick_mode() else 10000
# acc_cnn = accuracy(cnn.predict(X_test[:n_test]), y_test[:n_test])
# print(f"{n_train} images, one epoch, {seconds:.1f} s ({n_train / seconds:,.0f} images/s): loss "
#       f"{np.mean(losses[:5]):.2f} -> {np.mean(losses[-5:]):.2f}; test accuracy {acc_cnn:.2%} on {n_test} images")
# assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]) and acc_cnn > (0.6 if quick_mode() else 0.96)

# %% [markdown]
# The picture: one test digit on its way through the network — the input, the 16 maps after the first block
# (14×14) and the 32 maps after the second (7×7) — and the training loss. Experiment 08 trains a larger version of this
# network on all 55,000 training images, to beyond 99 %. <!-- quoted: experiment 08's test accuracy -->

# %% tags=["active-ipynb"]
# digit = X_test[:1]
# activations, A = [], digit
# for layer in cnn.layers:
#     A = layer.forward(A)
#     activations.append(A)
# block1, block2 = activations[3][0], activations[6][0]                   # after the two MaxPool2D layers
# fig = plt.figure(figsize=(13, 4.2))
# grid = fig.add_gridspec(4, 14, wspace=0.08, hspace=0.08)
# ax = fig.add_subplot(grid[0:2, 0:2])
# ax.imshow(digit.reshape(28, 28), cmap="gray_r"); ax.set_title(f"input ({y_test[0]})", fontsize=9); ax.axis("off")
# ax = fig.add_subplot(grid[2:4, 0:2])
# ax.plot(losses, lw=0.7); ax.set_yscale("log"); ax.set_title("training loss", fontsize=9); ax.set_xticks([])
# for f in range(16):
#     ax = fig.add_subplot(grid[f // 4, 2 + f % 4]); ax.imshow(block1[:, :, f], cmap="viridis"); ax.axis("off")
# for f in range(32):
#     ax = fig.add_subplot(grid[f // 8, 6 + f % 8]); ax.imshow(block2[:, :, f], cmap="viridis"); ax.axis("off")
# fig.text(0.34, 0.93, "after block 1: 16 maps, 14x14", ha="center")
# fig.text(0.72, 0.93, "after block 2: 32 maps, 7x7", ha="center")
# save_figure(fig, "13_cnn_maps.png")
# plt.show()

# %% [markdown]
# ## 6. Engineering: shapes, configs, files
#
# The pooling layers refuse what does not fit, naming the layer and the shapes, and a model with pooling layers survives
# `save`/`load` with identical predictions.

# %% tags=["active-ipynb"]
# for action in (lambda: MaxPool2D(2).forward(rng.standard_normal((4, 10))),
#                lambda: MaxPool2D(3).forward(rng.standard_normal((2, 2, 5, 1))),
#                lambda: GlobalAveragePool().forward(rng.standard_normal((2, 3, 3))),
#                lambda: MaxPool2D(0),
#                lambda: Sequential.from_config([{"layer": "MaxPool2D", "pool": 2}]),
#                lambda: cnn.forward(rng.standard_normal((2, 28, 28, 1)))):
#     try:
#         action()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad input was accepted")
# with tempfile.TemporaryDirectory() as scratch:
#     cnn.save(Path(scratch) / "cnn.npz")
#     reloaded = Sequential.load(Path(scratch) / "cnn.npz")
# assert np.array_equal(reloaded.predict(X_test[:200]), cnn.predict(X_test[:200]))
# assert reloaded.get_config() == cnn.get_config()
# print("saved and loaded:", [type(layer).__name__ for layer in reloaded.layers])

# %% [markdown]
# ## Summary
#
# * Max pooling takes the largest value of each window, per channel; its gradient goes to the winner only. **Ties**: the
#   first maximum in row-major order inside the window gets the whole gradient (tested), so nothing is ever doubled.
# * Average pooling spreads each window's gradient equally, $1/(p_h p_w)$; global average pooling is one window per image.
# * Both are computed by a loop over the window offsets on strided views, never over pixels; overlapping windows add up.
# * BatchNorm on feature maps normalises per channel over $m H W$ values: chapter 05's layer on the $(mHW, C)$ matrix,
#   with the same backward formula, checked after a convolution.
# * A conv–pool–conv–pool–dense network of 106,000 parameters reaches about 97 % after one pass over 12,000 images;
#   experiment 08 takes a larger one beyond 99 %. <!-- quoted: experiment 08's test accuracy -->
#
# ## Exercises
#
# 1. Max pooling and ReLU commute: $\mathrm{maxpool}(\mathrm{relu}(X)) = \mathrm{relu}(\mathrm{maxpool}(X))$. Check it, and explain
#    why putting the pooling first saves work.
# 2. A 2×2 average pooling is a convolution with fixed weights. Which `Conv2D` (kernel, stride, weights, bias) computes it
#    for one channel? Check it.
# 3. The **receptive field** of an output is the set of input pixels it depends on. Find the receptive field of one value
#    after the second MaxPool2D of the network in section 5 by backpropagating a gradient that is 1 at that value and 0
#    elsewhere, and compare it with the count by hand.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # max is monotone, so max(relu(x)) = relu(max(x)); pooling first runs the ReLU on 4x fewer values.
#     X_ex = rng.standard_normal((3, 8, 8, 4))
#     pool_then_relu = ReLU().forward(MaxPool2D(2).forward(X_ex))
#     relu_then_pool = MaxPool2D(2).forward(ReLU().forward(X_ex))
#     print("maxpool(relu(X)) == relu(maxpool(X)):", np.array_equal(pool_then_relu, relu_then_pool))
#     assert np.array_equal(pool_then_relu, relu_then_pool)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # a 2x2 kernel of 1/4s with stride 2 and no bias, one input and one output channel.
#     avg_conv = Conv2D(1, 2, stride=2, use_bias=False, n_in=(6, 6, 1), rng=rng)
#     avg_conv.params["W"][...] = 0.25
#     X_ex = rng.standard_normal((2, 6, 6, 1)).astype(np.float32)
#     print("AvgPool2D(2) == Conv2D with W = 1/4, stride 2:", np.allclose(AvgPool2D(2).forward(X_ex), avg_conv.forward(X_ex)))
#     assert np.allclose(AvgPool2D(2).forward(X_ex), avg_conv.forward(X_ex), atol=1e-6)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # backpropagate a one-hot gradient. ReLU and max pooling pass it to only some pixels (the active ones,
#     # the winners), which would hide part of the field; a linear copy of the network (kernels of ones, average pooling,
#     # same windows) passes it to every pixel the value can depend on.
#     linear = Sequential([Reshape((28, 28, 1)), Conv2D(1, 3, padding="same", use_bias=False), AvgPool2D(2),
#                          Conv2D(1, 3, padding="same", use_bias=False), AvgPool2D(2)], n_in=784, rng=rng)
#     for layer in (linear.layers[1], linear.layers[3]):
#         layer.params["W"][...] = 1.0
#     out = linear.forward(np.zeros((1, 784)))
#     G = np.zeros_like(out)
#     G[0, 3, 3, 0] = 1.0                                      # one value in the middle of the 7x7 map
#     rows, cols = np.nonzero(linear.backward(G).reshape(28, 28))
#     size = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
#     # by hand, from the output back: 1 value -> pool 2: 2 -> conv 3x3: 2 + 2 = 4 -> pool 2: 8 -> conv 3x3: 8 + 2 = 10;
#     # chapter 12's formula r = 1 + sum_l (k_l - 1) prod_{j<l} s_j over (conv 3, s 1), (pool 2, s 2), (conv 3, s 1), (pool 2, s 2)
#     kernels, strides = (3, 2, 3, 2), (1, 2, 1, 2)
#     r = 1 + sum((k - 1) * int(np.prod(strides[:l])) for l, k in enumerate(kernels))
#     print("receptive field of one value after block 2:", size, " by hand: (10, 10); the formula:", r)
#     assert size == (10, 10) == (r, r)

# %% [markdown]
# ---
# [← 12 — convolution](12_convolution.ipynb) · [begin here](00_begin_here.ipynb) · **13 — pooling** · [next: 14 — where the time goes →](14_performance.ipynb)
