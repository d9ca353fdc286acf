# %% [markdown]
# [← 11 — regularisation](11_regularisation.ipynb) · [begin here](00_begin_here.ipynb) · **12 — convolution** · [next: 13 — pooling →](13_pooling.ipynb)
#
# # 12 — Convolution
#
# A Dense layer sees an image as 784 unrelated numbers: shift a digit one pixel to the right and,
# for the first layer, it is a different input altogether. A **convolution** slides one small
# kernel (say 3×3) over the whole image and computes the same weighted sum at every position.
# Two ideas make it work on images:
#
# * **locality**: a pixel's meaning comes from its neighbours, so each output looks at a small window;
# * **weight sharing**: an edge is an edge anywhere, so every position uses the same kernel.
#
# A 3×3 kernel from 1 channel to 32 channels has $3\cdot3\cdot1\cdot32 + 32 = 320$ parameters, whatever the
# image size; a Dense layer from 784 pixels to the same $28\cdot28\cdot32$ outputs would have 19.7 million.
#
# This chapter fixes how images are stored, derives the convolution element by element, rewrites it as
# **one matrix product over patches** (im2col), derives the backward pass (the weight gradient is a product,
# the input gradient is the *transposed* patch operation, col2im), checks every gradient by central differences,
# and builds `Conv2D`, `Flatten` and `Reshape`. Chapter 13 adds pooling and trains a CNN.

# %%
"""Chapter 12: convolution. Conv2D on images of shape (m, H, W, C) via im2col and one matrix product;
Flatten and Reshape to move between images and rows of features."""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from diydnn._01_dense import Layer, as_count
from diydnn._07_model import register_layer


# %% tags=["active-ipynb"]
# import tempfile
# import time
# from pathlib import Path
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, quick_mode, rel_error, save_figure
# from diydnn._02_activations import ReLU
# from diydnn._01_dense import Dense
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# from diydnn._06_optimisers import Adam
# from diydnn._07_model import Sequential
# from diydnn._08_mnist import batches, load_mnist
# from IPython.display import Markdown, display
# from threadpoolctl import threadpool_limits
# threadpool_limits(limits=1)     # one BLAS thread for every timing here (chapter 14 shows why; = diydnn.set_threads(1))
# rng = np.random.default_rng(12)

# %% [markdown]
# ## 1. How an image batch is stored: (m, H, W, C)
#
# A batch of colour images has four axes: samples $m$, height $H$, width $W$, channels $C$ (1 for MNIST,
# 3 for RGB, 32 after a convolution with 32 kernels). Two orders are in use: **channels last**
# $(m, H, W, C)$ (TensorFlow/Keras's default) and **channels first** $(m, C, H, W)$ (PyTorch's). In memory
# (C order, the last axis varies fastest) channels last keeps the $C$ values of one pixel side by side;
# channels first keeps a whole $H\times W$ plane of one channel side by side.
#
# The choice matters for the matrix product of section 3, which takes the patches as rows of a matrix
# $P$ of shape $(m H' W',\ k_h k_w C)$ and multiplies by the kernels $\tilde K$ of shape $(k_h k_w C,\ F)$. The result
# has one row per output pixel and one column per kernel: that **is** a channels-last batch
# $(m, H', W', F)$, with no reordering. In channels first the same product needs a transpose of its output
# (a full copy), or one smaller product per sample, $\tilde K^\top P_i$, which gives $(F, H'W')$ per sample directly.
#
# The cell below times all three on the two convolutions of experiment 08's CNN (3×3 "same", batch 128, float32,
# one BLAS thread, median of 7; `benchmarks/conv_layout.py` is the same measurement as a script) and prints the table.
# The machine is shared, so only the ratios mean something, and the cell says which layout was fastest.
#
# Speed of the forward pass is one argument; the others do not depend on the machine. The backward pass computes the
# weight gradient channels last as one product $P^\top dZ$ over all samples, while the per-sample form needs $m$
# products and a sum. And a channels-last batch flattens for a Dense layer with a plain reshape. So **diydnn stores
# images as (m, H, W, C)**, everywhere: `Conv2D`, the pooling layers of chapter 13 and `BatchNorm` on images.

# %% tags=["active-ipynb"]
# def conv_nhwc(X, W2):
#     """3x3 'same' convolution, channels last: patches (m*H*W, 9C) @ W2 (9C, F) is already (m, H, W, F)."""
#     m, H, Wd, C = X.shape
#     Xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
#     P = sliding_window_view(Xp, (3, 3), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3).reshape(m * H * Wd, 9 * C)
#     return (P @ W2).reshape(m, H, Wd, -1)
#
#
# def conv_nchw(X, W2):
#     """The same, channels first: the product's output must be transposed back to (m, F, H, W)."""
#     m, C, H, Wd = X.shape
#     Xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
#     P = sliding_window_view(Xp, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 4, 5, 1).reshape(m * H * Wd, 9 * C)
#     return np.ascontiguousarray((P @ W2).reshape(m, H, Wd, -1).transpose(0, 3, 1, 2))
#
#
# def conv_nchw_per_sample(X, W2):
#     """Channels first, one product per sample: W2^T (F, 9C) @ P_i (9C, H*W) is already (F, H, W)."""
#     m, C, H, Wd = X.shape
#     Xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
#     P = sliding_window_view(Xp, (3, 3), axis=(2, 3)).transpose(0, 4, 5, 1, 2, 3).reshape(m, 9 * C, H * Wd)
#     W2t = np.ascontiguousarray(W2.T)
#     return np.stack([W2t @ P[i] for i in range(m)]).reshape(m, -1, H, Wd)
#
#
# def median_ms(f, repeats):
#     f()                                              # a warm-up call, not timed
#     times = []
#     for _ in range(repeats):
#         t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
#     return 1e3 * float(np.median(times))
#
#
# m_bench, repeats = (16, 2) if quick_mode() else (128, 7)
# layouts = {"(m, H, W, C), one product": lambda X_last, X_first, W2: conv_nhwc(X_last, W2),
#            "(m, C, H, W), one product + transpose": lambda X_last, X_first, W2: conv_nchw(X_first, W2),
#            "(m, C, H, W), a product per sample": lambda X_last, X_first, W2: conv_nchw_per_sample(X_first, W2)}
# rows, layout_ms = [], {}
# for H, C, F in [(28, 1, 32), (14, 32, 64)]:
#     X_last = rng.standard_normal((m_bench, H, H, C)).astype(np.float32)
#     X_first = np.ascontiguousarray(X_last.transpose(0, 3, 1, 2))
#     W2 = rng.standard_normal((9 * C, F)).astype(np.float32)
#     reference = conv_nhwc(X_last, W2).transpose(0, 3, 1, 2)
#     for f in list(layouts.values())[1:]:
#         assert np.allclose(f(X_last, X_first, W2), reference, atol=1e-3)     # the same numbers, three ways
#     layout_ms[H, C, F] = {name: median_ms(lambda: f(X_last, X_first, W2), repeats) for name, f in layouts.items()}
#     fastest = min(layout_ms[H, C, F], key=layout_ms[H, C, F].get)
#     rows.append(f"| {H}×{H}×{C} → {F} | " + " | ".join(f"{t:.1f} ms" for t in layout_ms[H, C, F].values())
#                 + f" | {fastest} |")
# display(Markdown(f"| convolution (batch {m_bench}) | " + " | ".join(layouts) + " | fastest |\n|---|---|---|---|---|\n"
#                  + "\n".join(rows)))
# second = layout_ms[14, 32, 64]
# print(f"second convolution: channels first + transpose takes "
#       f"{second['(m, C, H, W), one product + transpose'] / second['(m, H, W, C), one product']:.2f}x, "
#       f"per sample {second['(m, C, H, W), a product per sample'] / second['(m, H, W, C), one product']:.2f}x "
#       f"the time of channels last")
# if not quick_mode():       # the transpose is a full extra copy of the output: channels last beats it where time goes
#     assert second["(m, H, W, C), one product"] < second["(m, C, H, W), one product + transpose"]

# %% [markdown]
# ## 2. Convolution, element by element — it is really cross-correlation
#
# Take a batch $X$ of shape $(m, H, W, C)$, $F$ kernels $K$ of shape $(k_h, k_w, C, F)$, a bias $b \in \mathbb R^F$
# and a stride $s$. **One symbol per meaning** in chapters 12 and 13: $H, W$ are the height and width of an image
# ($H', W'$ of an output), $C$ its channels, $K$ the kernels, $k_h\times k_w$ a kernel's window, $F$ the number of
# kernels, $s$ the stride. (In the code the kernels are stored as `params["W"]`, the name every layer uses for its
# weights.) Let $X^p$ be $X$ with zeros added around it (padding, below). Output pixel $(r, c)$ of
# kernel $f$ for sample $i$ is the window of $X^p$ whose top-left corner is $(rs, cs)$, multiplied entry-wise with
# the kernel and summed:
#
# $$Z_{i,r,c,f} \;=\; b_f + \sum_{u=0}^{k_h-1}\sum_{v=0}^{k_w-1}\sum_{d=0}^{C-1} X^p_{i,\;rs+u,\;cs+v,\;d}\; K_{u,v,d,f}.$$
#
# **A naming remark.** In mathematics and signal processing, the *convolution* of an image with a kernel flips the
# kernel, $(X \ast K)_{r,c} = \sum_{u,v} X_{r-u,\,c-v} K_{u,v}$; the sum above, with $+u$ and $+v$, is the
# **cross-correlation**. Deep-learning libraries (this one, PyTorch, TensorFlow) compute cross-correlation and call it
# convolution. Since the kernel is learned, the difference is only in which way round the learned kernel is stored:
# cross-correlation with $K$ equals convolution with $K$ rotated by 180°. The cell checks both statements on one channel.
#
# **Output size.** With "valid" padding only windows that fit entirely are used: $H' = \lfloor (H - k_h)/s\rfloor + 1$.
# With "same" padding, zeros are added so that $H' = \lceil H/s \rceil$ (for $s = 1$ the output has the input's size):
# the total padding is $\max((H'-1)s + k_h - H,\ 0)$, half before and half after, the odd one after (bottom, right),
# as in TensorFlow and Keras. Likewise for the width.

# %%
PADDINGS = ("valid", "same")


def conv_output_size(n, k, stride, padding):
    """(output size, padding before, padding after) along one axis of length n, for a window k and a stride.

    "valid": only windows that fit, n_out = floor((n - k) / stride) + 1, no padding.
    "same": n_out = ceil(n / stride), with zeros added so that the windows cover the input; the extra
    zero goes after (bottom/right) when the total is odd, as in TensorFlow and Keras.
    """
    if padding == "same":
        n_out = -(-n // stride)
        total = max((n_out - 1) * stride + k - n, 0)
        return n_out, total // 2, total - total // 2
    return (n - k) // stride + 1, 0, 0


# %% tags=["active-ipynb"]
# def conv_loops(X, W, b, stride, padding):
#     """The element-wise formula, with Python loops over every output value (slow; for checking only)."""
#     m, H, Wd, C = X.shape
#     kh, kw, _, F = W.shape
#     (Ho, top, bottom), (Wo, left, right) = (conv_output_size(H, kh, stride, padding),
#                                             conv_output_size(Wd, kw, stride, padding))
#     Xp = np.zeros((m, H + top + bottom, Wd + left + right, C))
#     Xp[:, top:top + H, left:left + Wd] = X
#     Z = np.zeros((m, Ho, Wo, F))
#     for i in range(m):
#         for r in range(Ho):
#             for c in range(Wo):
#                 for f in range(F):
#                     Z[i, r, c, f] = b[f] + sum(Xp[i, r * stride + u, c * stride + v, d] * W[u, v, d, f]
#                                                for u in range(kh) for v in range(kw) for d in range(C))
#     return Z
#
#
# # cross-correlation with K == true convolution with K rotated by 180 degrees (one channel, "valid")
# img, K = rng.standard_normal((6, 7)), rng.standard_normal((3, 2))
# corr = conv_loops(img[None, :, :, None], K[:, :, None, None], np.zeros(1), 1, "valid")[0, :, :, 0]
# K_rot = K[::-1, ::-1]
# true_conv = np.array([[sum(img[r - u, c - v] * K_rot[u, v] for u in range(3) for v in range(2))   # (X * K_rot)[r, c]
#                        for c in range(1, 7)] for r in range(2, 6)])
# print("cross-correlation with K == convolution with K rotated by 180 degrees:", np.allclose(corr, true_conv))
# assert np.allclose(corr, true_conv)
#
# # output sizes: the formulas, against counting the windows that fit (valid) or ceil(n / s) (same)
# for n in range(3, 12):
#     for k in (1, 2, 3, 5):
#         for s in (1, 2, 3):
#             if k <= n:
#                 assert conv_output_size(n, k, s, "valid")[0] == len(range(0, n - k + 1, s))
#             n_out, before, after = conv_output_size(n, k, s, "same")
#             assert n_out == -(-n // s) and (n_out - 1) * s + k <= n + before + after and 0 <= after - before <= 1
# print("output sizes: 28 -> 3x3 valid", conv_output_size(28, 3, 1, "valid"), "  same", conv_output_size(28, 3, 1, "same"),
#       "  same, stride 2", conv_output_size(28, 3, 2, "same"))

# %% [markdown]
# ## 3. One matrix product over patches (im2col)
#
# Collect every window of $X^p$ as one row of a **patch matrix** $P$: row $(i, r, c)$ holds the $k_h k_w C$ values
# $X^p_{i,\,rs+u,\,cs+v,\,d}$ in the order $(u, v, d)$. Reshape the kernels in the same order to
# $\tilde K = K.\mathrm{reshape}(k_h k_w C, F)$. Then the triple sum of section 2 is a row times a column, and all of
# them at once are one product:
#
# $$\tilde Z = P\,\tilde K + \mathbf 1 b, \qquad P \in \mathbb R^{(m H' W')\times(k_h k_w C)},\quad \tilde Z \in \mathbb R^{(m H' W')\times F},$$
#
# and $\tilde Z$ reshaped to $(m, H', W', F)$ is the output. This is *im2col* ("image to columns"; here rows). It turns
# a convolution into a Dense layer applied to every patch, and hands the heavy work to one large, fast BLAS product.
#
# **A worked example.** One 4×4 image holding the values 1 to 16, one 2×2 kernel, stride 1, "valid": $H' = W' = 3$,
# so $P$ has $3\cdot3 = 9$ rows, one per output pixel $(r, c)$, and $2\cdot2\cdot1 = 4$ columns, the window's entries
# in the order $(u, v)$. Row $(r, c)$ is the window whose top-left corner is $(r, c)$, read row by row. Neighbouring
# windows overlap, so an inner pixel appears in up to four rows: $P$ is larger than the image. The cell prints $X$,
# $P$ and $P\tilde K$ reshaped to 3×3, and compares the result with the loops of section 2.

# %% tags=["active-ipynb"]
# X_demo = np.arange(1, 17, dtype=float).reshape(1, 4, 4, 1)        # one 4x4 image, one channel
# K_demo = np.array([[1., 2.], [0., -1.]]).reshape(2, 2, 1, 1)      # one 2x2 kernel, its entries in the order (u, v)
# windows = [(r, c) for r in range(3) for c in range(3)]
# P_demo = np.array([X_demo[0, r:r + 2, c:c + 2, 0].ravel() for r, c in windows])   # row (r, c): its window, row by row
# print("X =\n", X_demo[0, :, :, 0])
# print("P: one row per window (r, c), its entries in the order (u, v) = (0,0) (0,1) (1,0) (1,1)")
# for (r, c), row in zip(windows, P_demo):
#     print(f"  ({r}, {c}): {row}")
# Z_demo = (P_demo @ K_demo.reshape(4, 1)).reshape(3, 3)
# print("K~ =", K_demo.reshape(4), "  P K~ reshaped to 3x3 =\n", Z_demo)
# assert np.array_equal(Z_demo, conv_loops(X_demo, K_demo, np.zeros(1), 1, "valid")[0, :, :, 0])

# %% [markdown]
# **Building $P$ without a loop over pixels.** `numpy.lib.stride_tricks.sliding_window_view` returns all windows as a
# *view*: an array that shares $X^p$'s memory and walks it with other strides. Its shape is
# $(m, H_p - k_h + 1, W_p - k_w + 1, C, k_h, k_w)$; slicing `[:, ::s, ::s]` keeps every $s$-th window, and a transpose
# puts the axes in the order $(u, v, d)$. Nothing is copied until we ask for a contiguous matrix, and that one
# copy is the patch matrix itself ($k_h k_w$ times the size of the input: the memory price of im2col).

# %%
def im2col(Xp, kh, kw, stride, out_h, out_w):
    """The patches of a padded batch Xp (m, Hp, Wp, C) as a view of shape (m, out_h, out_w, kh, kw, C).

    view[i, r, c] is the window of sample i whose top-left corner is (r*stride, c*stride). No data is copied;
    np.ascontiguousarray(view).reshape(m*out_h*out_w, kh*kw*C) is the patch matrix P.
    """
    windows = sliding_window_view(Xp, (kh, kw), axis=(1, 2))     # (m, Hp-kh+1, Wp-kw+1, C, kh, kw), a view
    windows = windows[:, ::stride, ::stride][:, :out_h, :out_w]
    return windows.transpose(0, 1, 2, 4, 5, 3)


# %% tags=["active-ipynb"]
# X_small = rng.standard_normal((2, 5, 6, 3))
# W_small, b_small = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
# for stride, padding in [(1, "valid"), (2, "valid"), (1, "same"), (2, "same")]:
#     (Ho, top, bottom), (Wo, left, right) = conv_output_size(5, 3, stride, padding), conv_output_size(6, 3, stride, padding)
#     Xp = np.pad(X_small, ((0, 0), (top, bottom), (left, right), (0, 0)))
#     view = im2col(Xp, 3, 3, stride, Ho, Wo)
#     P = np.ascontiguousarray(view).reshape(-1, 3 * 3 * 3)
#     Z = (P @ W_small.reshape(-1, 4) + b_small).reshape(2, Ho, Wo, 4)
#     loops = conv_loops(X_small, W_small, b_small, stride, padding)
#     print(f"stride {stride}, {padding:5s}: output {Z.shape}, patch matrix {P.shape}, view shares memory: "
#           f"{np.shares_memory(view, Xp)};  max |P W + b - loops| = {np.abs(Z - loops).max():.1e}")
#     assert np.shares_memory(view, Xp) and np.allclose(Z, loops)
# assert np.array_equal(np.ascontiguousarray(im2col(X_demo, 2, 2, 1, 3, 3)).reshape(9, 4), P_demo)   # the worked example

# %% [markdown]
# ## 4. Backward
#
# Let $dZ = \partial L/\partial Z$ arrive from above, reshaped like $\tilde Z$ to $(m H' W', F)$. In matrix form the
# layer is a Dense layer with input $P$, so chapter 01 gives two of the three gradients at once:
#
# $$d\tilde K = P^\top d\tilde Z, \qquad db_f = \sum_{i,r,c} dZ_{i,r,c,f}, \qquad dP = d\tilde Z\,\tilde K^\top .$$
#
# The weight gradient is **one product over all patches of all samples**: every position a kernel visits adds
# its contribution (weight sharing means gradient summing). Element-wise,
# $dK_{u,v,d,f} = \sum_{i,r,c} X^p_{i,\,rs+u,\,cs+v,\,d}\; dZ_{i,r,c,f}$ — a cross-correlation of the input with $dZ$.
#
# **The input gradient.** $P$ is not an independent input: each pixel $X^p_{i,y,x,d}$ was *copied* into every patch
# that covers it. A copy's gradient flows back to its source and the copies' gradients add up:
#
# $$dX^p_{i,y,x,d} \;=\; \sum_{\substack{r,c,u,v:\\ rs+u = y,\ cs+v = x}} dP_{(i,r,c),\,(u,v,d)} .$$
#
# This is **col2im**, the transpose of im2col: im2col is a linear map $X^p \mapsto P$ (a 0/1 matrix $S$ with
# $\mathrm{vec}(P) = S\,\mathrm{vec}(X^p)$), and the gradient of a linear map is its transpose, $\mathrm{vec}(dX^p) = S^\top\mathrm{vec}(dP)$.
# Written out, $dX^p_{i,y,x,d} = \sum_{f}\sum_{u,v} dZ_{i,\frac{y-u}{s},\frac{x-v}{s},f}\,K_{u,v,d,f}$ over the $(u,v)$ where
# the indices are whole numbers in range. For $s = 1$ that is a **full convolution**: pad $dZ$ with $k_h - 1$ rows and
# $k_w - 1$ columns of zeros on every side (so that every kernel offset that touched a pixel counts, at the border
# too) and cross-correlate it with the kernels **rotated by 180°** and with **input and output channels swapped**,
# $K^{\mathrm{rot}}_{u,v,f,d} = K_{k_h-1-u,\;k_w-1-v,\;d,\;f}$: the gradient flows from the $F$ output maps back to the
# $C$ input channels. A cross-correlation with a rotated kernel is a true convolution (section 2), so the backward
# pass of a cross-correlation is a convolution. For $s > 1$, first spread $dZ$ out with $s - 1$ zeros between
# neighbouring entries (the positions the strided windows skipped), then do the same: that is a **transposed
# convolution** (also called fractionally strided), the operation upsampling layers use. Finally $dX$ is $dX^p$
# without the padding (the zeros we added are not inputs). A check cell below builds $dX$ this way for strides 1,
# 2 and 3 and compares it with col2im.
#
# **Vectorised col2im.** Loop over the $k_h k_w$ kernel offsets $(u, v)$ only (9 for a 3×3 kernel), never over
# pixels: for each offset, the gradients of that entry of all patches go to a strided slice of $dX^p$,
# `dXp[:, u : u + s*H' : s, v : v + s*W' : s, :] += dP[:, :, :, u, v, :]`, one NumPy add over the whole batch.
# Slices of different offsets overlap (a pixel lies in several windows), and `+=` adds them up.

# %%
def col2im(dcols, padded_shape, stride):
    """The transpose of im2col: add each patch's gradient dcols (m, out_h, out_w, kh, kw, C) back onto the pixels
    it was copied from, in an array of padded_shape. One vectorised add per kernel offset, none per pixel."""
    m, out_h, out_w, kh, kw, C = dcols.shape
    dXp = np.zeros(padded_shape, dtype=dcols.dtype)
    for u in range(kh):
        for v in range(kw):
            dXp[:, u:u + stride * out_h:stride, v:v + stride * out_w:stride, :] += dcols[:, :, :, u, v, :]
    return dXp


# %% [markdown]
# The defining property of a transpose, $\langle S x, p\rangle = \langle x, S^\top p\rangle$ for all $x, p$, checked for
# `im2col` and `col2im` with random arrays, for strides 1 and 2 and windows that overlap or leave pixels out:

# %% tags=["active-ipynb"]
# for stride, (kh, kw), shape in [(1, (3, 3), (2, 6, 7, 3)), (2, (3, 3), (2, 7, 7, 2)), (2, (2, 3), (1, 6, 8, 2)),
#                                 (3, (2, 2), (2, 8, 7, 1))]:
#     Xp = rng.standard_normal(shape)
#     out_h, out_w = (shape[1] - kh) // stride + 1, (shape[2] - kw) // stride + 1
#     P_rand = rng.standard_normal((shape[0], out_h, out_w, kh, kw, shape[3]))
#     lhs = np.sum(im2col(Xp, kh, kw, stride, out_h, out_w) * P_rand)
#     rhs = np.sum(Xp * col2im(P_rand, shape, stride))
#     print(f"stride {stride}, kernel {kh}x{kw}, input {shape}: <im2col(X), P> = {lhs:+.6f}, <X, col2im(P)> = {rhs:+.6f}")
#     assert abs(lhs - rhs) < 1e-9 * max(1, abs(lhs))

# %% [markdown]
# The input gradient as a full convolution with the rotated, channel-swapped kernels (for $s > 1$, of $dZ$ spread out
# by the stride: a transposed convolution), computed with the loops of section 2, against col2im of $d\tilde Z\,\tilde K^\top$
# ("valid" padding, so $dX^p = dX$; with stride 3 the windows leave the last row and column out, whose gradient is 0):

# %% tags=["active-ipynb"]
# def backward_by_convolution(dZ, K, stride, in_hw):
#     """dX of a 'valid' cross-correlation: dZ spread out by the stride, padded by k - 1 (plus the rows and columns the
#     strided windows never reached), cross-correlated with the kernels rotated by 180 degrees, channels swapped."""
#     m, out_h, out_w, F = dZ.shape
#     kh, kw, C, _ = K.shape
#     spread = np.zeros((m, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1, F))
#     spread[:, ::stride, ::stride] = dZ                          # s - 1 zeros between neighbours: the transposed conv.
#     missed_h, missed_w = in_hw[0] - ((out_h - 1) * stride + kh), in_hw[1] - ((out_w - 1) * stride + kw)
#     full = np.pad(spread, ((0, 0), (kh - 1, kh - 1 + missed_h), (kw - 1, kw - 1 + missed_w), (0, 0)))
#     K_rot = K[::-1, ::-1].transpose(0, 1, 3, 2)                 # (kh, kw, F, C): rotated by 180 degrees, channels swapped
#     return conv_loops(full, K_rot, np.zeros(C), 1, "valid")
#
#
# for stride, shape in [(1, (2, 6, 7, 2)), (2, (2, 7, 7, 2)), (3, (1, 8, 7, 2))]:
#     K_check = rng.standard_normal((3, 3, shape[3], 4))
#     out_h, out_w = (shape[1] - 3) // stride + 1, (shape[2] - 3) // stride + 1
#     dZ = rng.standard_normal((shape[0], out_h, out_w, 4))
#     dP = (dZ.reshape(-1, 4) @ K_check.reshape(-1, 4).T).reshape(shape[0], out_h, out_w, 3, 3, shape[3])
#     dX_col2im, dX_conv = col2im(dP, shape, stride), backward_by_convolution(dZ, K_check, stride, shape[1:3])
#     print(f"stride {stride}, input {shape}: max |col2im - full convolution| = {np.abs(dX_col2im - dX_conv).max():.1e}")
#     assert np.allclose(dX_col2im, dX_conv)

# %% [markdown]
# **The scatter the layer uses.** `col2im` above says what the input gradient is; `Conv2D.backward` computes the same
# numbers with two changes in how memory is moved, both measured in chapter 14. (1) $dP$ is computed **offset by
# offset**: $\tilde K$ is $k_h k_w$ blocks of $C$ rows, one per kernel offset $(u, v)$, and
# $dP_{(u,v)} = d\tilde Z\,\tilde K_{(u,v)}^\top$ is one product per offset (`np.matmul` over a stack), so each offset's
# patch gradients are one contiguous $(m, H', W', C)$ array instead of a slice with a stride of $k_h k_w C$ values. Each
# entry is the same sum over the $F$ filters as in the one large product. (2) The adds go **straight into $dX$**, not
# into a padded $dX^p$ that is then cropped: for offset $(u, v)$, output row $r$ lands on input row $y = rs + u - p_{top}$,
# and only the rows $r$ with $0 \le y < H$ are added (likewise the columns). The padding's gradient, which the crop
# threw away, is never computed; every pixel still receives its terms in the same order $(u, v)$, starting from 0.

# %%
def col2im_offsets(dP, in_shape, stride, top, left):
    """col2im onto the unpadded input: dP (kh, kw, m, out_h, out_w, C) holds each kernel offset's patch gradients;
    in_shape = (m, H, W, C); top, left = the padding before the first row and column. Returns dX of in_shape, the
    same numbers as col2im(...)[:, top:top + H, left:left + W] (the same terms, added in the same order)."""
    kh, kw, _, out_h, out_w, _ = dP.shape
    m, H, W, C = in_shape
    dX = np.zeros(in_shape, dtype=dP.dtype)
    for u in range(kh):
        # output rows r0..r1-1 land inside the image: 0 <= r*stride + u - top < H
        r0, r1 = max(0, -((u - top) // stride)), min(out_h, (H - 1 - u + top) // stride + 1)
        for v in range(kw):
            c0, c1 = max(0, -((v - left) // stride)), min(out_w, (W - 1 - v + left) // stride + 1)
            if r0 >= r1 or c0 >= c1:
                continue                                  # this offset only ever saw padding
            y0, x0 = r0 * stride + u - top, c0 * stride + v - left
            dX[:, y0:y0 + stride * (r1 - r0):stride, x0:x0 + stride * (c1 - c0):stride, :] += dP[u, v, :, r0:r1, c0:c1]
    return dX


# %% [markdown]
# Both changes checked against the definition: the offset-by-offset products against the one product (the same
# values; whether BLAS also rounds them to the same bits is printed), and the scatter against col2im plus the crop on
# the same $dP$ — equal bit for bit, for strides 1 to 3, both paddings and kernels that do and do not fit evenly:

# %% tags=["active-ipynb"]
# for stride, (kh, kw), padding, shape in [(1, (3, 3), "same", (2, 6, 7, 16)), (2, (3, 3), "same", (2, 7, 7, 16)),
#                                          (2, (2, 3), "valid", (1, 6, 8, 3)), (3, (3, 3), "same", (2, 8, 7, 1)),
#                                          (2, (1, 1), "same", (2, 7, 7, 8))]:
#     m, H, W, C = shape
#     (out_h, top, bottom), (out_w, left, right) = (conv_output_size(H, kh, stride, padding),
#                                                   conv_output_size(W, kw, stride, padding))
#     dZ = rng.standard_normal((m * out_h * out_w, 5), dtype=np.float32)
#     K = rng.standard_normal((kh, kw, C, 5), dtype=np.float32)
#     one_product = (dZ @ K.reshape(-1, 5).T).reshape(m, out_h, out_w, kh, kw, C)
#     one_product_by_offset = np.ascontiguousarray(one_product.transpose(3, 4, 0, 1, 2, 5))   # (kh, kw, m, H', W', C)
#     per_offset = np.matmul(dZ, K.reshape(kh * kw, C, 5).transpose(0, 2, 1)).reshape(kh, kw, m, out_h, out_w, C)
#     assert np.allclose(per_offset, one_product_by_offset, rtol=1e-5, atol=1e-5)
#     padded = (m, H + top + bottom, W + left + right, C)
#     by_definition = col2im(one_product, padded, stride)[:, top:top + H, left:left + W]
#     scattered = col2im_offsets(one_product_by_offset, shape, stride, top, left)
#     print(f"stride {stride}, kernel {kh}x{kw}, {padding:5s}, input {shape}: scatter bit-equal to col2im: "
#           f"{np.array_equal(scattered, by_definition)}; products bit-equal: "
#           f"{np.array_equal(per_offset, one_product_by_offset)}")
#     assert np.array_equal(scattered, by_definition)

# %% [markdown]
# Where a line prints `products bit-equal: False`, the two ways agree to round-off but not to the last bit: with one
# input channel, each offset's product has a single column, and BLAS computes such a product with another kernel that
# sums in another order. In this course's networks only the first convolution sees one channel, and a model never asks
# it for $dX$ in training (chapter 14's `backward_params`).

# %% [markdown]
# ## 5. The layer: `Conv2D`
#
# `Conv2D(filters, kernel_size=3, stride=1, padding="valid", use_bias=True, init="he")`. The input of one sample has
# shape $(H, W, C)$; the weights are created on the first forward (or eagerly with `n_in=(H, W, C)`) with the
# initialisers of chapter 04. **He initialisation** uses the fan-in of one output value, which is not $C$ but the
# $k_h k_w C$ inputs of its window: $W \sim \mathcal N(0,\ 2/(k_h k_w C))$, drawn as a $(k_h k_w C, F)$ matrix — exactly the
# $\tilde K$ of section 3 — and reshaped. **Glorot** needs a fan-out too: the number of outputs one *input* value
# feeds. An input value enters $k_h k_w$ window positions of each of the $F$ kernels, so the fan-out is $k_h k_w F$, as
# in Keras and PyTorch — not $F$, the width of $\tilde K$, which would draw larger weights. `Conv2D` draws the
# $(k_h k_w C, F)$ matrix and, for Glorot, scales it to the limit $\sqrt{6/(k_h k_w C + k_h k_w F)}$ (a uniform
# distribution scaled is the uniform one of the new limit). A check cell after the layer compares both variances.
#
# The forward pass keeps the patch matrix $P$ for the weight gradient. It is the layer's largest array: for the
# second convolution of experiment 08's CNN at batch 128, $128\cdot14\cdot14$ rows of $3\cdot3\cdot32$ float32 values, 29 MB. <!-- constant: 128·14·14·288·4 bytes -->
# Stride is one integer for both axes; the kernel may be rectangular (`kernel_size=(2, 3)`).

# %%
def _pair(value, what, who):
    """(a, b) from an int a (a square window) or a pair [a, b] of positive integers."""
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{who}: {what} must be an int or a pair of ints, got {value!r}")
    return tuple(as_count(v, what, who) for v in pair)


def _image_shape(layer, n_in):
    """Refuse a sample shape that is not an image (H, W, C), naming the layer."""
    if np.ndim(n_in) != 1 or len(n_in) != 3:
        raise ValueError(f"{layer!r}: input must be images, one sample of shape (H, W, C); got {n_in!r} "
                         f"(rows of pixels? put a Reshape((28, 28, 1)) first)")
    return tuple(int(d) for d in n_in)


@register_layer
class Conv2D(Layer):
    """2-D convolution (a cross-correlation) of images (m, H, W, C) with `filters` kernels of shape (kh, kw, C).

    W has shape (kh, kw, C, filters), b shape (filters,); the output has shape (m, H_out, W_out, filters).
    Forward: one matrix product of the patch matrix (im2col) with W reshaped to (kh*kw*C, filters).
    """

    input_ndim, input_layout = (4,), "(m, height, width, channels)"

    def __init__(self, filters, kernel_size=3, stride=1, padding="valid", use_bias=True, init="he",
                 n_in=None, rng=None, name=None):
        super().__init__(name)
        who = f"Conv2D({self.name!r})"
        self.filters = as_count(filters, "filters", who)
        self.kernel_size = _pair(kernel_size, "kernel_size", who)
        self.stride = as_count(stride, "stride", who)
        if padding not in PADDINGS:
            raise ValueError(f"{who}: padding must be one of {PADDINGS}, got {padding!r}")
        self.padding, self.use_bias, self.init, self.rng = padding, bool(use_bias), init, rng
        if n_in is not None:
            self.build(n_in, rng)

    def _geometry(self, n_in):
        """((out_h, pad_top, pad_bottom), (out_w, pad_left, pad_right)) for one input sample (H, W, C)."""
        H, W, C = _image_shape(self, n_in)
        (kh, kw), s = self.kernel_size, self.stride
        if self.padding == "valid" and (H < kh or W < kw):
            raise ValueError(f"{self!r}: a {kh}x{kw} kernel does not fit an input of shape (m, {H}, {W}, {C}) "
                             f"with padding 'valid'")
        return conv_output_size(H, kh, s, self.padding), conv_output_size(W, kw, s, self.padding)

    def build(self, n_in, rng=None, dtype=np.float32):
        from diydnn._04_initialisers import GlorotUniform, get_initialiser   # chapter 04, as in Dense
        self._geometry(n_in)                                   # refuses a bad shape before anything is created
        super().build(n_in)
        (kh, kw), C = self.kernel_size, self.n_in[2]
        rng = rng if rng is not None else (self.rng if self.rng is not None else np.random.default_rng())
        init = get_initialiser(self.init)
        # fan-in = the kh*kw*C inputs of one output value: drawn as the (kh*kw*C, filters) matrix K~, then shaped
        W = init(kh * kw * C, self.filters, rng)
        if isinstance(init, GlorotUniform):
            # Glorot's fan-out is what one input value feeds, kh*kw*filters (as in Keras and PyTorch), not the matrix's
            # width: U(-l, l) scaled by l_conv / l is U(-l_conv, l_conv), from the same draws
            W *= np.sqrt((kh * kw * C + self.filters) / (kh * kw * C + kh * kw * self.filters))
        self.params = {"W": W.reshape(kh, kw, C, self.filters).astype(dtype)}
        if self.use_bias:
            self.params["b"] = np.zeros(self.filters, dtype=dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def output_width(self, n_in):
        """The shape (H_out, W_out, filters) of one output sample."""
        (out_h, _, _), (out_w, _, _) = self._geometry(n_in)
        return (out_h, out_w, self.filters)

    def get_config(self):
        init = self.init if isinstance(self.init, (str, dict)) else self.init.get_config()
        return {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "stride": self.stride, "padding": self.padding, "use_bias": self.use_bias, "init": init,
                "n_in": list(self.n_in) if self.built else None}

    def forward(self, X, training=False):
        X = self._check_input(X)
        (out_h, top, bottom), (out_w, left, right) = self._geometry(self.n_in)
        (kh, kw), F = self.kernel_size, self.filters
        m, H, W, C = X.shape
        Xp = X
        if top or bottom or left or right:
            Xp = np.zeros((m, H + top + bottom, W + left + right, C), dtype=X.dtype)
            Xp[:, top:top + H, left:left + W, :] = X
        P = np.ascontiguousarray(im2col(Xp, kh, kw, self.stride, out_h, out_w)).reshape(-1, kh * kw * C)
        Z = P @ self.params["W"].reshape(-1, F)                # one product: (m*out_h*out_w, F)
        if self.use_bias:
            Z += self.params["b"]
        self._cache = (P, Xp.shape, X.shape)
        return Z.reshape(m, out_h, out_w, F)                   # already channels last: no transpose

    def backward(self, dY):
        _, _, (m, H, W, C) = self._cached()
        (out_h, top, _), (out_w, left, _) = self._geometry(self.n_in)
        (kh, kw), F = self.kernel_size, self.filters
        dZ = self._param_grads(dY)
        # dP = dZ~ W~^T, one product per kernel offset: (kh*kw, m*out_h*out_w, C), each offset's block contiguous
        dP = np.matmul(dZ, self.params["W"].reshape(kh * kw, C, F).transpose(0, 2, 1))
        dP = dP.reshape(kh, kw, m, out_h, out_w, C)
        return col2im_offsets(dP, (m, H, W, C), self.stride, top, left)   # the transpose of im2col, padding dropped

    def backward_params(self, dY):
        """backward without dX: a model's first convolution (after a Reshape of the pixels) needs only dW and db, and
        skips the product dZ~ W~^T and the col2im scatter (chapter 14)."""
        if type(self).backward is not Conv2D.backward:
            self.backward(dY)                  # a subclass with its own backward runs it
        else:
            self._param_grads(dY)

    def _param_grads(self, dY):
        """Check dY, overwrite grads (dW~ = P^T dZ~: one product; db = column sums), return dZ~ (m*H'*W', F)."""
        P, _, (m, _, _, _) = self._cached()
        (out_h, _, _), (out_w, _, _) = self._geometry(self.n_in)
        dZ = self._check_upstream(dY, (m, out_h, out_w, self.filters)).reshape(-1, self.filters)
        dW = self._grad_buffer("W")                     # the layer's own array (a view of the model's flat array)
        np.matmul(P.T, dZ, out=dW.reshape(-1, self.filters))   # (reshaping a contiguous array gives a view)
        if self.use_bias:
            np.add.reduce(dZ, axis=0, out=self._grad_buffer("b"))
        return dZ


# %% [markdown]
# The variances on a large layer (3×3 kernels, 64 → 128 channels): He's $2/(k_h k_w C)$ and Glorot's
# $2/(k_h k_w C + k_h k_w F)$, with every Glorot weight inside its limit.

# %% tags=["active-ipynb"]
# C_init, F_init = 64, 128
# he = Conv2D(F_init, 3, n_in=(8, 8, C_init), rng=np.random.default_rng(0)).params["W"]
# glorot = Conv2D(F_init, 3, init="glorot", n_in=(8, 8, C_init), rng=np.random.default_rng(0)).params["W"]
# var_he, var_glorot = 2 / (9 * C_init), 2 / (9 * C_init + 9 * F_init)
# limit = np.sqrt(6 / (9 * C_init + 9 * F_init))
# print(f"He: variance {he.var():.3e} (formula {var_he:.3e});  Glorot: {glorot.var():.3e} (formula {var_glorot:.3e}), "
#       f"max |W| {np.abs(glorot).max():.4f} <= limit {limit:.4f}; with fan-out F instead the variance would be "
#       f"{2 / (9 * C_init + F_init) / var_glorot:.2f}x larger")
# assert abs(he.var() / var_he - 1) < 0.02 and abs(glorot.var() / var_glorot - 1) < 0.02
# assert np.abs(glorot).max() <= limit * (1 + 1e-6) and np.abs(glorot).max() > 0.99 * limit

# %% [markdown]
# ## 6. Gradient checks
#
# `check_layer` (chapter 00) compares `backward` with central differences for the input, the kernels and the bias,
# in float64, with a random upstream gradient, on tiny shapes: strides 1 and 2, "valid" and "same", square and
# rectangular kernels, odd sizes where "same" pads unevenly and stride 2 leaves pixels out.

# %% tags=["active-ipynb"]
# for stride in (1, 2):
#     for padding in ("valid", "same"):
#         for kernel_size, shape in [(3, (2, 5, 6, 2)), ((2, 3), (3, 7, 5, 1))]:
#             conv = Conv2D(3, kernel_size, stride=stride, padding=padding, rng=rng)
#             X_check = rng.standard_normal(shape)
#             errors = check_layer(conv, X_check, rng)
#             print(f"stride {stride}, {padding:5s}, kernel {str(kernel_size):6s}, input {shape} -> output "
#                   f"{conv.forward(X_check).shape}: max rel. error {max(errors.values()):.1e}")
#             assert set(errors) == {"X", "W", "b"} and max(errors.values()) < 1e-7
# no_bias = Conv2D(2, 3, padding="same", use_bias=False, rng=rng)
# assert set(check_layer(no_bias, rng.standard_normal((2, 4, 4, 3)), rng)) == {"X", "W"}

# %% [markdown]
# ## 7. Between images and rows: `Flatten` and `Reshape`
#
# A Dense layer takes rows $(m, n)$ and stays that way. `Flatten` turns images $(m, H, W, C)$ into rows
# $(m, HWC)$ in C order (so pixel $(y, x)$, channel $d$ lands in column $(yW + x)C + d$); its backward reshapes the
# gradient back. `Reshape(shape)` goes the other way: MNIST arrives as rows of 784 pixels, and a
# `Reshape((28, 28, 1))` as the first layer of a model turns them into one-channel images, so that the data pipeline,
# the training loop and the experiment toolkit keep handing 2-D batches to every model.
# Neither has parameters; both are reshapes (views, no copies), with the identity as Jacobian up to reordering.

# %%
@register_layer
class Flatten(Layer):
    """(m, d1, d2, ...) -> (m, d1*d2*...): images to rows in C order, so that a Dense layer can follow."""

    input_ndim, input_layout = (2, 3, 4, 5), "(m, ...)"

    def output_width(self, n_in):
        return int(np.prod(n_in))

    def forward(self, X, training=False):
        X = self._check_input(X)
        self._cache = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, dY):
        shape = self._cached()
        return self._check_upstream(dY, (shape[0], int(np.prod(shape[1:])))).reshape(shape)


@register_layer
class Reshape(Layer):
    """(m, ...) -> (m, *shape); e.g. Reshape((28, 28, 1)) turns MNIST's rows of 784 pixels into images."""

    input_ndim, input_layout = (2, 3, 4), "(m, ...)"

    def __init__(self, shape, name=None):
        super().__init__(name)
        dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
        self.shape = tuple(as_count(d, "shape", f"Reshape({self.name!r})") for d in dims)

    def output_width(self, n_in):
        if int(np.prod(n_in)) != int(np.prod(self.shape)):
            raise ValueError(f"{self!r}: cannot reshape one sample of shape {n_in} ({int(np.prod(n_in))} values) "
                             f"to {self.shape} ({int(np.prod(self.shape))} values)")
        return self.shape[0] if len(self.shape) == 1 else self.shape

    def get_config(self):
        return {"name": self.name, "shape": list(self.shape)}

    def forward(self, X, training=False):
        X = self._check_input(X)
        self.output_width(X.shape[1:])
        self._cache = X.shape
        return X.reshape(X.shape[0], *self.shape)

    def backward(self, dY):
        shape = self._cached()
        return self._check_upstream(dY, (shape[0], *self.shape)).reshape(shape)


# %% [markdown]
# A whole model is a `Layer` (chapter 07), so one gradient check covers Reshape → Conv2D → ReLU → Conv2D (stride 2)
# → Flatten → Dense at once. `Sequential` builds from the shape of one sample: a width for rows (here 36 values),
# or a tuple such as `n_in=(6, 6, 1)` for images, and `summary()` shows every layer's output shape.

# %% tags=["active-ipynb"]
# small = Sequential([Reshape((6, 6, 1)), Conv2D(4, 3, padding="same"), ReLU(), Conv2D(3, 3, stride=2), Flatten(),
#                     Dense(5)], rng=np.random.default_rng(0))
# errors = check_layer(small, rng.standard_normal((3, 36)), rng)
# print({k: f"{v:.1e}" for k, v in errors.items()})
# assert max(errors.values()) < 1e-7 and len(errors) == 1 + 2 + 2 + 2
# lines = []
# small.summary(print_fn=lines.append)
# print("\n".join(lines))
# assert any("conv2d_1 (Conv2D)" in line and "(None, 2, 2, 3)" in line and "111" in line for line in lines)
# images_first = Sequential([Conv2D(4, 3), ReLU(), Flatten(), Dense(2)], n_in=(6, 6, 1), rng=np.random.default_rng(0))
# print("built from n_in=(6, 6, 1):", images_first.n_in, "->", images_first.output_width(images_first.n_in))
# assert images_first.output_width((6, 6, 1)) == 2 and images_first.layers[0].params["W"].shape == (3, 3, 1, 4)

# %% [markdown]
# **How far does one output see? The receptive field.** An output value of a stack of convolutions depends on a window
# of the input image, its *receptive field*. Walk back from one output value: layer $\ell$, with a window of $k_\ell$,
# widens the region by $k_\ell - 1$ pixels of *its own input*, and one step in that input is $\prod_{j<\ell} s_j$ pixels
# of the image (the strides of the layers below). So along each axis
#
# $$r = 1 + \sum_{\ell=1}^{L} (k_\ell - 1)\prod_{j<\ell} s_j ,$$
#
# and pooling windows (chapter 13) count as layers too. The check backpropagates a gradient that is 1 at one output
# value and 0 elsewhere through a stack whose kernels are all ones (no cancellation, no ReLU that could switch a path
# off) and measures the nonzero region of $dX$.

# %% tags=["active-ipynb"]
# def receptive_field(kernels, strides):
#     """r = 1 + sum_l (k_l - 1) prod_{j<l} s_j, along one axis."""
#     return 1 + sum((k - 1) * int(np.prod(strides[:l])) for l, k in enumerate(kernels))
#
#
# kernels, strides = (3, 3, 5, 3), (1, 2, 2, 1)
# stack = Sequential([Reshape((48, 48, 1))] + [Conv2D(1, k, stride=s, use_bias=False) for k, s in zip(kernels, strides)],
#                    n_in=48 * 48, rng=np.random.default_rng(0))
# for layer in stack.layers[1:]:
#     layer.params["W"][...] = 1.0
# out = stack.forward(np.zeros((1, 48 * 48)))
# G = np.zeros_like(out)
# G[0, out.shape[1] // 2, out.shape[2] // 2, 0] = 1.0                 # one output value in the middle
# rows, cols = np.nonzero(stack.backward(G).reshape(48, 48))
# measured = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
# print(f"kernels {kernels}, strides {strides}: the formula gives r = {receptive_field(kernels, strides)}; the backward "
#       f"pass reaches a {measured[0]}x{measured[1]} window of the 48x48 input")
# assert measured == (receptive_field(kernels, strides),) * 2 == (21, 21)

# %% [markdown]
# ## 8. A picture: filters a network learned, and what they see
#
# A small all-convolutional network, no pooling yet (chapter 13): `Reshape` → `Conv2D(16, 5×5, stride 2, same)` → ReLU
# → `Conv2D(32, 3×3, stride 2, same)` → ReLU → `Flatten` → `Dense(10)`, trained with Adam on MNIST
# (20,000 images, two epochs; 1,000 images in batches of 32 in quick mode). Strides of 2 halve the image twice, 28 → 14 → 7. Left: the 16 learned
# 5×5 kernels of the first layer — many are oriented edge and stroke detectors. Right: one test digit and its 16 feature
# maps (the first layer's outputs after ReLU): each map lights up where its kernel's pattern occurs.

# %% tags=["active-ipynb"]
# (X_train, y_train), (X_test, y_test) = load_mnist()
# n_train, n_epochs, batch_size = (1000, 2, 32) if quick_mode() else (20000, 2, 64)
# net = Sequential([Reshape((28, 28, 1)), Conv2D(16, 5, stride=2, padding="same"), ReLU(),
#                   Conv2D(32, 3, stride=2, padding="same"), ReLU(), Flatten(), Dense(10)],
#                  n_in=784, rng=np.random.default_rng(1))
# loss_fn, opt = SoftmaxCrossEntropy(), Adam(lr=2e-3)
# t0, losses = time.perf_counter(), []
# for epoch in range(n_epochs):
#     for X_b, y_b in batches(X_train[:n_train], y_train[:n_train], batch_size, rng=np.random.default_rng(2 + epoch)):
#         losses.append(loss_fn(net.forward(X_b, training=True), y_b))
#         net.backward(loss_fn.backward())
#         opt.step(net.params, net.grads)
# n_test = 1000 if quick_mode() else 10000
# acc_net = accuracy(net.predict(X_test[:n_test]), y_test[:n_test])
# print(f"{n_train} images, {n_epochs} epoch(s), {time.perf_counter() - t0:.1f} s: loss {np.mean(losses[:5]):.2f} -> "
#       f"{np.mean(losses[-5:]):.2f}; test accuracy {acc_net:.2%} on {n_test} images")
# assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]) and acc_net > (0.6 if quick_mode() else 0.96)

# %% tags=["active-ipynb"]
# fig = plt.figure(figsize=(13, 4.2))
# grid = fig.add_gridspec(4, 9, wspace=0.08, hspace=0.08)
# kernels = net.layers[1].params["W"][:, :, 0, :]                        # (5, 5, 16)
# digit = X_test[:1]
# maps = net.layers[2].forward(net.layers[1].forward(net.layers[0].forward(digit)))[0]   # (14, 14, 16), after ReLU
# for f in range(16):
#     ax = fig.add_subplot(grid[f // 4, f % 4])
#     lim = np.abs(kernels[:, :, f]).max()
#     ax.imshow(kernels[:, :, f], cmap="RdBu_r", vmin=-lim, vmax=lim); ax.axis("off")
#     ax = fig.add_subplot(grid[f // 4, 5 + f % 4])
#     ax.imshow(maps[:, :, f], cmap="viridis"); ax.axis("off")
# ax = fig.add_subplot(grid[1:3, 4])
# ax.imshow(digit.reshape(28, 28), cmap="gray_r"); ax.set_title(f"input ({y_test[0]})", fontsize=9); ax.axis("off")
# fig.text(0.3, 0.93, "16 learned 5x5 kernels of conv2d_0 (red +, blue -)", ha="center")
# fig.text(0.73, 0.93, "the digit's 16 feature maps (14x14, after ReLU)", ha="center")
# save_figure(fig, "12_filters.png")
# plt.show()

# %% [markdown]
# ## 9. Engineering: what a user can get wrong
#
# Shape errors name the layer and both shapes: rows given to a `Conv2D` (with the hint to `Reshape`), an image of another
# size than the one the layer was built for, a kernel that does not fit with "valid" padding, an image given to a
# Dense (with the hint to `Flatten`), a `Reshape` whose sizes do not match, an upstream gradient of the wrong shape.
# Bad arguments (a padding that does not exist, a zero stride) are refused by the constructor, also when they come
# from a config file.

# %% tags=["active-ipynb"]
# built = Conv2D(4, 3, n_in=(8, 8, 1), rng=rng)
# built.forward(rng.standard_normal((2, 8, 8, 1)))
# for action in (lambda: Conv2D(4, 3).forward(rng.standard_normal((2, 784))),
#                lambda: built.forward(rng.standard_normal((2, 9, 8, 1))),
#                lambda: Conv2D(4, 5).forward(rng.standard_normal((2, 4, 4, 1))),
#                lambda: Sequential([Conv2D(2, 3), Dense(3)], n_in=(5, 5, 1)),
#                lambda: Reshape((28, 28, 1)).forward(rng.standard_normal((2, 780))),
#                lambda: built.backward(rng.standard_normal((2, 8, 8, 4))),
#                lambda: Conv2D(4, 3, padding="full"),
#                lambda: Sequential.from_config([{"layer": "Conv2D", "filters": 4, "stride": 0}])):
#     try:
#         action()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad input was accepted")

# %% [markdown]
# A model with convolutions survives `get_config` → JSON → `from_config` and `save` → `load` (chapter 07), with identical
# predictions; the image shape is stored in the config as a plain list.

# %% tags=["active-ipynb"]
# with tempfile.TemporaryDirectory() as scratch:
#     path = Path(scratch) / "net.npz"
#     net.save(path)
#     reloaded = Sequential.load(path)
# print("config entry:", reloaded.get_config()[1])
# assert np.array_equal(reloaded.predict(X_test[:100]), net.predict(X_test[:100]))
# assert reloaded.get_config() == net.get_config()

# %% [markdown]
# ## Summary
#
# * Images are batches of shape **(m, H, W, C)**, channels last: the matrix product over patches then yields the next
#   layer's input without a transpose, and the weight gradient is one product (section 1 times the three layouts). Dense stays 2-D; `Flatten` and `Reshape` convert.
# * "Convolution" in deep learning is **cross-correlation**, $Z_{i,r,c,f} = b_f + \sum_{u,v,d} X^p_{i,rs+u,cs+v,d}K_{u,v,d,f}$;
#   flipping the kernel makes it a true convolution, and a learned kernel does not care.
# * **im2col**: all windows as rows of a patch matrix $P$ (a strided view, one copy), then $\tilde Z = P\tilde K + b$,
#   one BLAS product.
# * **Backward**: $d\tilde K = P^\top d\tilde Z$, $db = \sum dZ$, $dP = d\tilde Z\tilde K^\top$, and $dX$ = **col2im**($dP$), the
#   transpose of im2col: a scatter-add over the $k_h k_w$ kernel offsets. All checked by central differences.
# * He initialisation uses the fan-in $k_h k_w C$ of one output value; Glorot also the fan-out $k_h k_w F$ of one input.
# * The input gradient is a full convolution of $dZ$ with the kernels rotated by 180° and channels swapped (for a
#   stride $s > 1$, of $dZ$ spread out by $s$: a transposed convolution). A stack of layers sees a window of
#   $r = 1 + \sum_\ell (k_\ell - 1)\prod_{j<\ell} s_j$ pixels per axis (its receptive field, checked by a backward pass).
#
# ## Exercises
#
# 1. A `Conv2D` with a 1×1 kernel is a Dense layer applied to every pixel. Show it numerically: build a `Conv2D(5, 1)`
#    and a `Dense(5)` with the same weights and compare outputs on a random batch of images.
# 2. Count parameters and multiply-adds per image of `Conv2D(32, 3, padding="same")` on 28×28×1 and of a Dense layer
#    with the same number of outputs. Which is larger, and by how much?
# 3. Check that a `Conv2D` with stride 2 equals a stride-1 `Conv2D` (same weights, "valid") followed by keeping every
#    second row and column. What does that tell you about the cost of striding?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # a 1x1 convolution is a Dense layer on the C values of each pixel.
#     conv1x1 = Conv2D(5, 1, n_in=(4, 4, 3), rng=rng)
#     dense = Dense(5, n_in=3, rng=rng)
#     dense.params["W"][...] = conv1x1.params["W"].reshape(3, 5)
#     dense.params["b"][...] = rng.standard_normal(5)
#     conv1x1.params["b"][...] = dense.params["b"]
#     X_ex = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
#     per_pixel = dense.forward(X_ex.reshape(-1, 3)).reshape(2, 4, 4, 5)
#     print("1x1 convolution == Dense on every pixel:", np.allclose(conv1x1.forward(X_ex), per_pixel, atol=1e-6))
#     assert np.allclose(conv1x1.forward(X_ex), per_pixel, atol=1e-6)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # parameters and multiply-adds (MACs) per image.
#     conv_ex = Conv2D(32, 3, padding="same", n_in=(28, 28, 1), rng=rng)
#     conv_params = sum(p.size for p in conv_ex.params.values())
#     conv_macs = 28 * 28 * 32 * (3 * 3 * 1)                 # every output value is a 9-term sum
#     dense_params = 784 * (28 * 28 * 32) + 28 * 28 * 32
#     dense_macs = 784 * (28 * 28 * 32)
#     print(f"Conv2D: {conv_params:,} parameters, {conv_macs:,} MACs;  Dense: {dense_params:,} parameters, {dense_macs:,} MACs")
#     print(f"the Dense layer has {dense_params / conv_params:,.0f}x the parameters and {dense_macs / conv_macs:.0f}x the work")
#     assert conv_params == 3 * 3 * 1 * 32 + 32 == 320 and dense_macs // conv_macs == 784 // 9

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # stride 2 == stride 1 then every second row and column (for "valid" padding).
#     X_ex = rng.standard_normal((2, 9, 8, 2))
#     s1, s2 = Conv2D(3, 3, stride=1, n_in=(9, 8, 2), rng=rng), Conv2D(3, 3, stride=2, n_in=(9, 8, 2), rng=rng)
#     s2.params["W"][...], s2.params["b"][...] = s1.params["W"], rng.standard_normal(3)
#     s1.params["b"][...] = s2.params["b"]
#     print("stride 2 == stride 1 subsampled:", np.allclose(s2.forward(X_ex), s1.forward(X_ex)[:, ::2, ::2]))
#     assert np.allclose(s2.forward(X_ex), s1.forward(X_ex)[:, ::2, ::2])
#     # so striding inside the layer saves about s*s = 4 times the work of computing everything and subsampling

# %% [markdown]
# ---
# [← 11 — regularisation](11_regularisation.ipynb) · [begin here](00_begin_here.ipynb) · **12 — convolution** · [next: 13 — pooling →](13_pooling.ipynb)
