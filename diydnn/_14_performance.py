# %% [markdown]
# [← 13 — pooling](13_pooling.ipynb) · [begin here](00_begin_here.ipynb) · **14 — where the time goes** · [next: experiment 01 — clip-norm →](experiments/01_clip_norm.ipynb)
#
# # 14 — Where the time goes
#
# The library is correct; this chapter asks how fast it is, and why. A training step of an MLP is a
# handful of matrix products plus some element-wise work. We **count** the floating-point operations
# (FLOPs) of a step from the shapes, **measure** how many per second the machine can do at best (its
# sgemm peak), place every part of the step on a **roofline** plot, **profile** one step of a naive
# implementation and of the library, and see how **batch size** and **BLAS threads** change the picture.
#
# Timings depend on the machine and on whatever else runs on it (this chapter was executed on a
# 2-core machine shared with other jobs). So the cells below print and plot times, and the text never types one.
# Where the text compares times (faster, a smaller share), the cell that measures them asserts the comparison;
# what does not depend on the clock — FLOP counts, passes over memory, equal results, memory allocated — is
# asserted exactly.

# %%
"""Chapter 14: where the time goes. FLOPs of a training step, the BLAS thread switch, a timing helper."""
import os
import time

import numpy as np

from diydnn._01_dense import Dense, as_count
from diydnn._02_activations import ReLU
from diydnn._03_cross_entropy import SoftmaxCrossEntropy
from diydnn._06_optimisers import Adam
from diydnn._07_model import Sequential
from diydnn._12_convolution import Conv2D


# %% tags=["active-ipynb"]
# import cProfile
# import io
# import multiprocessing
# import pstats
# import tracemalloc
# from concurrent.futures import ProcessPoolExecutor
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import quick_mode, save_figure
# from diydnn._08_mnist import BatchStream
# from diydnn._09_training import Loop, TrainTask
# import diydnn._14_performance as ch14      # this chapter as a module: a process pool can import its functions
# from diydnn._06_optimisers import SGD
# QUICK = quick_mode()
# rng = np.random.default_rng(14)
# ch14.set_threads(1)      # one BLAS thread for every timing below, as in the benchmark (section 6 says why)

# %% [markdown]
# ## 1. Counting the FLOPs of a training step
#
# A Dense layer with $n$ inputs and $k$ outputs on a batch of $m$ rows does three matrix products per
# step (chapter 01). Each entry of an $(a \times b)(b \times c)$ product is $b$ multiplications and $b$
# additions, so the product costs $2abc$ FLOPs:
#
# | product | shapes | FLOPs |
# |---|---|---|
# | forward $Z = XW$ | $(m\times n)(n\times k)$ | $2mnk$ |
# | weight gradient $dW = X^\top dZ$ | $(n\times m)(m\times k)$ | $2mnk$ |
# | input gradient $dX = dZ\,W^\top$ | $(m\times k)(k\times n)$ | $2mnk$ — **not needed for the first layer** |
#
# The first layer's $dX$ would be the gradient of the loss with respect to the *images*; nothing uses it,
# so a model's `backward_params` (chapters 01 and 07) skips it. For widths $n_0, n_1, \dots, n_L$ the
# matrix products of a step therefore cost
#
# $$F(m) = 2m\Big(3\sum_{\ell=1}^{L} n_{\ell-1} n_\ell \;-\; n_0 n_1\Big).$$
#
# Everything else — bias, ReLU, softmax, the optimiser — is element-wise: a few operations per entry of
# an activation ($O(m n_\ell)$) or per parameter ($O(n_{\ell-1} n_\ell)$, independent of $m$). The function
# below counts the products layer by layer from a built model; the cell checks it against the formula.

# %%
def matmul_flops(model, m):
    """FLOPs of the matrix products of one training step of `model` on a batch of m rows.

    Per Dense layer: 2 m n k for the forward product and for dW, and 2 m n k for dX except for the first
    layer (a model's backward_params skips it). A Conv2D is the same product on its patch matrix: 2 m H' W' F kh kw C
    each. Reshape, ReLU, pooling and the other layers do element-wise work only and add nothing. A layer that holds
    layers (chapter 16's Residual) counts the products of its own layers and of its shortcut's, each with its dX.
    """
    # backward_params computes no dX for the first layer with parameters (layers before it have no gradient at all)
    first = next((i for i, layer in enumerate(model.layers) if layer.params), None)
    return sum(_forward_product_flops(layer, m) * (2 if i == first else 3) if isinstance(layer, (Dense, Conv2D))
               else _nested_flops(layer, m) for i, layer in enumerate(model.layers))


def _forward_product_flops(layer, m):
    """2 m n k of a Dense layer's forward product; a Conv2D's is the same on its patch matrix (chapter 12)."""
    if isinstance(layer, Dense):
        return 2 * m * layer.n_in * layer.units
    out_h, out_w, F = layer.output_width(layer.n_in)      # one product (m H' W', kh kw C) x (kh kw C, F)
    (kh, kw), C = layer.kernel_size, layer.n_in[2]
    return 2 * m * out_h * out_w * F * kh * kw * C


def _inner_layers(layer):
    """The layers a layer holds (a Residual's own and its shortcut's); none for a plain layer."""
    return list(getattr(layer, "layers", [])) + list(getattr(layer, "projection", []))


def _nested_flops(layer, m):
    """Forward, dW and dX products of the layers a layer holds (none for a plain element-wise layer)."""
    return sum(3 * _forward_product_flops(sub, m) if isinstance(sub, (Dense, Conv2D)) else _nested_flops(sub, m)
               for sub in _inner_layers(layer))


def forward_flops(model, m):
    """FLOPs of the matrix products of one forward pass (an evaluation) of `model` on m rows: each product once."""
    def of(layer):
        if isinstance(layer, (Dense, Conv2D)):
            return _forward_product_flops(layer, m)
        return sum(of(sub) for sub in _inner_layers(layer))
    return sum(of(layer) for layer in model.layers)


# %% tags=["active-ipynb"]
# def mlp(widths, rng):
#     layers = []
#     for k in widths[1:-1]:
#         layers += [Dense(k), ReLU()]
#     return Sequential(layers + [Dense(widths[-1])], n_in=widths[0], rng=rng)
#
# for widths, m in [((784, 50, 10), 64), ((784, 256, 128, 10), 128), ((784, 512, 512, 10), 128)]:
#     pairs = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
#     formula = 2 * m * (3 * pairs - widths[0] * widths[1])
#     counted = matmul_flops(mlp(widths, rng), m)
#     params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
#     print(f"{'-'.join(map(str, widths))}/{m}: {counted / 1e6:7.1f} MFLOP per step (formula {formula / 1e6:7.1f}); "
#           f"{params:,} parameters; per epoch of 60,000 images {counted * (60000 // m) / 1e9:.0f} GFLOP")
#     assert counted == formula

# %% [markdown]
# The largest network does 410.8 MFLOP of matrix products per step. The element-wise work of the same step
# is tiny in FLOPs: Adam does twelve operations per parameter (section 3 counts them; 669,706 parameters: about
# 8 MFLOP), the activations add a few per entry of $m \times 1034$ values. In *time* it is another story, as we
# will see: an element-wise operation moves several bytes per FLOP (section 3 counts those too), a large matrix
# product far less than one.
#
# ## 2. The machine's peak: sgemm
#
# The fastest thing a CPU does with float32 numbers is a large matrix product, `sgemm` in BLAS (NumPy's `@`
# calls it). Its rate on square matrices, as the size grows, tends to the practical peak of the core(s).
# We take the best of a few repeats at each size (the machine is shared: the best run is the one least
# disturbed by other jobs).

# %%
def best_seconds(fn, repeats=5):
    """The shortest of `repeats` timings of fn() in seconds, after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# %% tags=["active-ipynb"]
# sizes = [32, 64, 128, 256, 512, 1024] + ([] if QUICK else [2048])
# sgemm = {}
# for n in sizes:
#     A, B = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
#     C = np.empty((n, n), np.float32)
#     sgemm[n] = 2 * n ** 3 / best_seconds(lambda: np.matmul(A, B, out=C), repeats=2 if QUICK else 5)
# peak = max(sgemm.values())
# print("sgemm GFLOP/s by size:", {n: round(r / 1e9, 1) for n, r in sgemm.items()}, f"-> peak {peak / 1e9:.1f} GFLOP/s")
# assert all(np.isfinite(r) and r > 0 for r in sgemm.values())
# assert sgemm[32] < 0.5 * peak                       # small products: far below the peak (next paragraph)

# %% [markdown]
# Small products run far below the peak: the work is too little to amortise packing the matrices into
# the cache-friendly blocks BLAS uses, and the call itself costs microseconds.
#
# ## 3. A roofline
#
# A computation that moves $B$ bytes between memory and the core and does $F$ FLOPs has an **arithmetic
# intensity** $I = F/B$ (FLOPs per byte). If memory delivers $\beta$ bytes per second and the core does
# at most $P$ FLOPs per second, it cannot run faster than
#
# $$R(I) = \min(P,\; \beta I) \quad\text{FLOP/s}:$$
#
# the **roofline** (Williams, Waterman & Patterson, 2009). Below the ridge $I^* = P/\beta$ a computation
# is limited by memory traffic, above it by arithmetic. For an $(a\times b)(b\times c)$ float32 product
# that reads both inputs and writes the output once, $F = 2abc$ and $B = 4(ab + bc + ac)$. An element-wise
# operation such as `W -= step` does 1 FLOP per entry and moves 12 bytes (two reads and a write):
# $I = 1/12$. We measure $\beta$ with a copy of a large array (8 bytes moved per float32 entry: a read and a write),
# far larger than the caches: that is main memory's (DRAM's) bandwidth. Arrays of a few megabytes or less stay in
# the processor's caches, which deliver more; so we also measure the fastest copy of arrays from 64 KiB to 16 MiB,
# a second, higher slanted roof for work whose arrays are cache-resident.

# %%
def matmul_intensity(a, b, c, itemsize=4):
    """FLOPs per byte of an (a x b)(b x c) product that reads its inputs and writes its output once."""
    return 2 * a * b * c / (itemsize * (a * b + b * c + a * c))


# %% tags=["active-ipynb"]
# X_ = np.zeros((128, 784), np.float32); W_ = np.zeros((784, 512), np.float32); Z_ = X_ @ W_
# moved = X_.nbytes + W_.nbytes + Z_.nbytes
# print(f"(128x784)(784x512): intensity {matmul_intensity(128, 784, 512):.1f} FLOP/byte = 2abc / bytes of the three arrays "
#       f"{2 * 128 * 784 * 512 / moved:.1f}")
# assert np.isclose(matmul_intensity(128, 784, 512), 2 * 128 * 784 * 512 / moved)
#
# big = np.ones(2 ** 24 if not QUICK else 2 ** 22, np.float32)      # 64 MB: far larger than the caches
# dst = np.empty_like(big)
# bandwidth = 2 * big.nbytes / best_seconds(lambda: np.copyto(dst, big), repeats=2 if QUICK else 5)
# ridge = peak / bandwidth
# print(f"memory bandwidth (copy) {bandwidth / 1e9:.1f} GB/s; ridge point P/beta = {ridge:.1f} FLOP/byte")
# roof = lambda I: np.minimum(peak, bandwidth * np.asarray(I))
# cache_copy = {}
# for n in [2 ** k for k in range(14, 23, 2)]:                      # 64 KB to 16 MB of float32
#     src, dst_c = np.ones(n, np.float32), np.empty(n, np.float32)
#     cache_copy[src.nbytes] = 2 * src.nbytes / best_seconds(lambda: np.copyto(dst_c, src), repeats=3 if QUICK else 20)
# cache_bandwidth = max(cache_copy.values())
# print("copy GB/s by array size:", {(f"{b >> 10} KiB" if b < 2 ** 20 else f"{b >> 20} MiB"): round(r / 1e9, 1)
#                                    for b, r in cache_copy.items()},
#       f"-> cache bandwidth {cache_bandwidth / 1e9:.1f} GB/s")
# cache_roof = lambda I: np.minimum(peak, cache_bandwidth * np.asarray(I))
# assert cache_bandwidth > bandwidth                                  # the caches deliver more than main memory
# assert np.isclose(roof(ridge / 10), bandwidth * ridge / 10) and np.isclose(roof(ridge * 10), peak)   # min(P, beta I), both sides

# %% [markdown]
# Now each piece of one step of 784–512–512–10 at batch 128, measured alone: the eight matrix products
# (three per layer, minus the first layer's $dX$), and three element-wise pieces — the bias add, ReLU's forward
# and one Adam update of the largest weight matrix — each with its own FLOPs and bytes.
#
# The bytes of an element-wise piece are not a guess: each NumPy call (a *ufunc*: `np.add`, `*`, `>`, `np.sqrt`,
# …) is one pass over memory that reads its array operands and writes its output. `Traced` below is an array
# that logs every such call made with it, so running a piece on traced arrays counts its passes, the bytes they
# move and the entries they write (one operation each). ReLU's `Z * (Z > 0)` is two passes, for instance: the
# comparison writes a mask of one byte per entry, the product reads `Z` and the mask and writes a new array.

# %% tags=["active-ipynb"]
# class Traced(np.ndarray):
#     """An array that logs each NumPy ufunc call made with it: (name, bytes read, bytes written, entries written).
#     A scalar operand moves nothing; an in-place call (out=, *=) writes into an operand."""
#     log = []
#
#     def __array_ufunc__(self, ufunc, method, *inputs, out=(), **kwargs):
#         plain = lambda a: a.view(np.ndarray) if isinstance(a, Traced) else a
#         args, outs = [plain(a) for a in inputs], tuple(plain(o) for o in out)
#         result = getattr(ufunc, method)(*args, **kwargs, **({"out": outs} if outs else {}))
#         written = [w for w in (outs or (result,)) if isinstance(w, np.ndarray)]
#         Traced.log.append((ufunc.__name__, sum(a.nbytes for a in args if isinstance(a, np.ndarray)),
#                            sum(w.nbytes for w in written), sum(w.size for w in written)))
#         if out:
#             return out[0]
#         return result.view(Traced) if isinstance(result, np.ndarray) else result
#
#
# def count_passes(fn, *arrays):
#     """Run fn on traced views of `arrays` (their memory is shared: fn works as usual) and return
#     (passes, operations, bytes moved) of that one call."""
#     Traced.log = []
#     fn(*[a.view(Traced) for a in arrays])
#     return len(Traced.log), sum(n for *_, n in Traced.log), sum(r + w for _, r, w, _ in Traced.log)
#
#
# Z_t = np.arange(-4.0, 4.0, dtype=np.float32)                       # 8 entries: a check by hand
# print("Z * (Z > 0) on 8 float32 entries:", count_passes(lambda Z: Z * (Z > 0), Z_t), "= (passes, operations, bytes)",
#       [(name, r, w) for name, r, w, _ in Traced.log])
# assert count_passes(lambda Z: Z * (Z > 0), Z_t) == (2, 16, 8 * (4 + 1) + 8 * (4 + 1 + 4))

# %% tags=["active-ipynb"]
# m, widths = 128, (784, 512, 512, 10)
# pieces = []                                    # (label, FLOPs, bytes, seconds)
# for i, (n, k) in enumerate(zip(widths[:-1], widths[1:])):
#     X_ = rng.standard_normal((m, n), dtype=np.float32); W_ = rng.standard_normal((n, k), dtype=np.float32)
#     dZ_ = rng.standard_normal((m, k), dtype=np.float32); out_W = np.empty((n, k), np.float32)
#     products = [("XW", lambda: X_ @ W_, (m, n, k)), ("X^T dZ", lambda: np.matmul(X_.T, dZ_, out=out_W), (n, m, k))]
#     if i > 0:
#         products.append(("dZ W^T", lambda: dZ_ @ W_.T, (m, k, n)))
#     for label, fn, (a, b, c) in products:
#         pieces.append((f"layer {i + 1} {label}", 2 * a * b * c, 4 * (a * b + b * c + a * c), best_seconds(fn)))
# Z_ = rng.standard_normal((m, 512), dtype=np.float32); b_ = np.zeros(512, np.float32)
# W_big = np.zeros((784, 512), np.float32); g_big = rng.standard_normal(W_big.shape, dtype=np.float32)
# adam_one = Adam(lr=1e-3)
# timed = {"bias add": lambda: np.add(Z_, b_, out=Z_),                 # as Dense's forward adds b, in place
#          "ReLU fwd": lambda: Z_ * (Z_ > 0),                           # as ReLU.forward computes it
#          "Adam W1": lambda: adam_one.step({"W": W_big}, {"W": g_big}, grads_finite=True)}
# traced_counts = {"bias add": count_passes(lambda Z, b: np.add(Z, b, out=Z), Z_, b_),       # the same code, traced
#                  "ReLU fwd": count_passes(lambda Z: Z * (Z > 0), Z_),
#                  "Adam W1": count_passes(lambda W, g: Adam(lr=1e-3).step({"W": W}, {"W": g}, grads_finite=True),
#                                          W_big, g_big)}
# n_passes = {}
# for label, (passes, F, Bytes) in traced_counts.items():
#     entries = W_big.size if label.startswith("Adam") else Z_.size
#     n_passes[label] = passes
#     print(f"{label}: {passes} pass{'es' if passes > 1 else ''}, {F / entries:.0f} operation(s) and "
#           f"{Bytes / entries:.2f} bytes moved per entry (arrays of {4 * entries / 1e6:.2f} MB)")
#     pieces.append((label, F, Bytes, best_seconds(timed[label])))
# assert n_passes == {"bias add": 1, "ReLU fwd": 2, "Adam W1": 12}     # the counts the text uses
# for label, F, Bytes, s in pieces:
#     print(f"{label:16s} {F / 1e6:8.2f} MFLOP  I = {F / Bytes:6.2f} FLOP/byte  {F / s / 1e9:6.1f} GFLOP/s "
#           f"({100 * F / s / peak:5.1f} % of peak)  {s * 1e6:8.0f} us  {Bytes / s / 1e9:6.1f} GB/s moved "
#           f"({100 * Bytes / s / cache_bandwidth:3.0f} % of the cache bandwidth)")
# products = [(F / s, label) for label, F, Bytes, s in pieces if label.startswith(("layer 1", "layer 2"))]
# in_cache = [(F / s, Bytes / s, label) for label, F, Bytes, s in pieces if not label.startswith("layer")]
# assert all(rate > 0.5 * peak for rate, _ in products)                   # near the flat roof
# assert all(rate < 0.25 * peak and moved > bandwidth for rate, moved, _ in in_cache)   # far below it, above DRAM's

# %% tags=["active-ipynb"]
# fig, ax = plt.subplots(figsize=(8, 5))
# I_axis = np.logspace(-2, 3, 200)
# ax.loglog(I_axis, roof(I_axis) / 1e9, "k-", lw=2, label=f"roofline: min({peak / 1e9:.0f} GFLOP/s, {bandwidth / 1e9:.0f} GB/s × I) (DRAM)")
# ax.loglog(I_axis, cache_roof(I_axis) / 1e9, "k--", lw=1, label=f"cache roof: {cache_bandwidth / 1e9:.0f} GB/s × I")
# for j, (label, F, Bytes, s) in enumerate(pieces):
#     is_product = "layer" in label
#     ax.loglog(F / Bytes, F / s / 1e9, "o" if is_product else "s", color="tab:blue" if is_product else "tab:red", ms=6)
#     ax.annotate(label, (F / Bytes, F / s / 1e9), fontsize=7, xytext=(6, 9 * (j % 3) - 9), textcoords="offset points")
# ax.axvline(ridge, color="grey", ls=":", lw=1)
# ax.set(xlabel="arithmetic intensity I (FLOP per byte)", ylabel="GFLOP/s achieved",
#        title="One step of 784-512-512-10 at batch 128, piece by piece (blue: matrix products)")
# ax.legend(loc="lower right", fontsize=8); ax.grid(alpha=0.3, which="both")
# save_figure(fig, "14_roofline.png")
# plt.show()

# %% [markdown]
# The large matrix products (layers 1 and 2) sit near the flat roof: they are limited by arithmetic, and run at
# more than half the peak (the cell asserts it). Every element-wise piece sits far to the left of the ridge, where
# only memory traffic limits it, and far below the peak. It sits *above* the solid slanted roof, though: its
# arrays (0.26 MB for an activation, 1.61 MB for each of Adam's) stay in the processor's caches, which deliver more
# than main memory, so its roof is the dashed one, the cache's (the table prints how much of the cache bandwidth
# each piece reaches). In FLOPs the element-wise pieces are almost nothing; in time they are not, because each
# pass over an array costs about as much as reading and writing it. The lesson for any framework: **the number
# of passes over memory** (and the number of temporary arrays each creates) decides the cost of the element-wise
# part, not its FLOPs.
#
# ## 4. Profiling one step: naive against optimised
#
# To see where the time goes in the library itself, here is a small **naive** version of the pieces this
# chapter's optimisations changed — written the obvious way, as the library was before:
#
# * `NaiveDense` allocates new gradient arrays every step, adds the bias into a second new array, and
#   computes $dX$ for the first layer too (nobody uses it);
# * `NaiveAdam` computes $\hat m$, $\hat v$, $\sqrt{\hat v}$, the quotient and the step as fresh temporaries
#   (a new parameter-sized array for almost every operation, every step).
#
# The library's versions write into reused arrays (`out=`, `+=`), fold Adam's bias corrections into two
# scalars, and skip the first $dX$ (`Sequential.backward_params`). Both must give the same weights.

# %% tags=["active-ipynb"]
# class NaiveDense(Dense):
#     """Dense as first written: new arrays for Z, dW, db each step; always computes dX."""
#     checks_input = False                     # so the model checks the batch a second time, as before
#
#     def forward(self, X, training=False):
#         X = self._check_input(X)
#         self._cache = X
#         return X @ self.params["W"] + self.params["b"]
#
#     def backward(self, dY):
#         X = self._cached()
#         self.grads["W"] = X.T @ dY
#         self.grads["b"] = dY.sum(axis=0)
#         return dY @ self.params["W"].T
#
#     # (backward_params, inherited from Dense, runs this backward and drops dX: the naive cost)
#
#
# class NaiveAdam(Adam):
#     """Adam as first written: every intermediate a new array."""
#     def _update(self, name, W, dW):
#         m, v = self._slot("m", name, W), self._slot("v", name, W)
#         m *= self.beta1
#         m += (1 - self.beta1) * dW
#         v *= self.beta2
#         v += (1 - self.beta2) * np.square(dW)
#         m_hat = m / (1 - self.beta1 ** self.t)
#         v_hat = v / (1 - self.beta2 ** self.t)
#         W -= self.lr * (m_hat / (np.sqrt(v_hat) + self.eps))
#
#
# def make_loop(widths, m, naive, seed=0, n_data=4096):
#     r = np.random.default_rng(seed)
#     X = r.standard_normal((n_data, widths[0])).astype(np.float32)
#     y = r.integers(0, widths[-1], n_data)
#     D = NaiveDense if naive else Dense
#     layers = []
#     for k in widths[1:-1]:
#         layers += [D(k), ReLU()]
#     model = Sequential(layers + [D(widths[-1])], n_in=widths[0], rng=np.random.default_rng(seed))
#     stream = BatchStream(X, y, batch_size=m, rng=np.random.default_rng(seed + 1))
#     opt = NaiveAdam(lr=1e-3) if naive else Adam(lr=1e-3)
#     return Loop(model, TrainTask(stream, SoftmaxCrossEntropy(), opt, n_steps_per_checkpoint=10 ** 9),
#                 progress=False, verbose=False)
#
#
# prof_widths, prof_m = ((784, 256, 128, 10), 128) if QUICK else ((784, 512, 512, 10), 128)
# n_prof = 10 if QUICK else 60
# loops = {"naive": make_loop(prof_widths, prof_m, naive=True), "optimised": make_loop(prof_widths, prof_m, naive=False)}
# n_same = 10                               # compare after a few steps: training amplifies round-off (section 7)
# for lp in loops.values():
#     lp.run(n_same)                        # same data, same batches, same start
# same = all(np.allclose(a, b, rtol=0, atol=1e-5)       # layer names differ (naivedense_0): compare in order
#            for a, b in zip(loops["naive"].model.params.values(), loops["optimised"].model.params.values()))
# print(f"after {n_same} steps the naive and the optimised library hold the same weights (float32 round-off): {same}")
# assert same

# %% [markdown]
# **Memory allocated per step**, measured with `tracemalloc` (NumPy reports its array memory to it). This
# does not depend on the clock, so it can be checked: the optimised step allocates much less.

# %% tags=["active-ipynb"]
# def peak_bytes_of_one_step(lp):
#     X_b, y_b = lp.task.next_batch()
#     tracemalloc.start()
#     lp.train_step(X_b, y_b)
#     _, peak_b = tracemalloc.get_traced_memory()
#     tracemalloc.stop()
#     return peak_b
#
# alloc = {name: peak_bytes_of_one_step(lp) for name, lp in loops.items()}
# n_params = sum(p.size for p in loops["optimised"].model.params.values())
# print({name: f"{b / 2 ** 20:.1f} MiB" for name, b in alloc.items()}, f"(the parameters: {4 * n_params / 2 ** 20:.1f} MiB)")
# assert alloc["optimised"] < 0.5 * alloc["naive"]

# %% [markdown]
# **The profile.** `cProfile` counts the time spent in each Python function (with NumPy's work inside it),
# over the same steps for both. The table shows the functions with the most time of their own.

# %% tags=["active-ipynb"]
# def profile_steps(lp, n):
#     batches = [lp.task.next_batch() for _ in range(n)]
#     prof = cProfile.Profile()
#     prof.enable()
#     for X_b, y_b in batches:
#         lp.train_step(X_b, y_b)
#     prof.disable()
#     return pstats.Stats(prof)
#
# def own_times(stats):
#     """{function label: seconds of its own}, from a pstats.Stats."""
#     out = {}
#     for (file, line, func), (cc, nc, tottime, cumtime, callers) in stats.stats.items():
#         where = "notebook" if "ipykernel" in file or file.startswith("<") else os.path.basename(file).replace(".py", "")
#         label = f"{where}:{func}" if file != "~" else func
#         out[label] = out.get(label, 0.0) + tottime
#     return out
#
# profiles = {name: own_times(profile_steps(lp, n_prof)) for name, lp in loops.items()}
# for name, times in profiles.items():
#     total = sum(times.values())
#     print(f"--- {name}: {1e3 * total / n_prof:.2f} ms per step (under the profiler)")
#     for label, s in sorted(times.items(), key=lambda kv: -kv[1])[:7]:
#         print(f"   {100 * s / total:5.1f} %  {1e3 * s / n_prof:7.3f} ms  {label}")
# assert all(sum(t.values()) > 0 for t in profiles.values())

# %% [markdown]
# Grouped by what the time is spent on (forward products, backward, the optimiser, the rest):

# %% tags=["active-ipynb"]
# def group(label):
#     if "forward" in label:
#         return "forward"
#     if "backward" in label:
#         return "backward"
#     if "_update" in label or "_step" in label or "optimisers" in label:
#         return "optimiser"
#     return "everything else"
#
# groups = ["forward", "backward", "optimiser", "everything else"]
# per_group = {name: {g: 0.0 for g in groups} for name in profiles}
# for name, times in profiles.items():
#     for label, s in times.items():
#         per_group[name][group(label)] += 1e3 * s / n_prof
# fig, ax = plt.subplots(figsize=(8, 2.8))
# left = np.zeros(2)
# for g, color in zip(groups, ["tab:blue", "tab:orange", "tab:red", "tab:grey"]):
#     widths_ms = np.array([per_group[name][g] for name in profiles])
#     ax.barh(list(profiles), widths_ms, left=left, color=color, label=g)
#     left += widths_ms
# ax.set(xlabel="ms per training step (under cProfile)", title=f"{'-'.join(map(str, prof_widths))}/{prof_m}, Adam")
# ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.35))
# save_figure(fig, "14_profile.png")
# plt.show()

# %% [markdown]
# What changed: the backward of the first layer lost one of its three products (for 784–512–512–10 that is
# $2 \cdot 128 \cdot 784 \cdot 512 = 103$ MFLOP, a quarter of the step's products); the optimiser no longer creates
# a temporary per operation (it makes twelve passes over arrays that stay in cache, and allocates nothing);
# gradients are written into the same arrays each step.
#
# **The fixed cost of a step.** On a small network the arithmetic is small too, and what a library does
# *around* it shows: on 784–50–10 at batch 64 a step is a fraction of a millisecond of NumPy work, and
# every check, every Python call and every value logged is counted in microseconds against it. The library
# does more than a hand-written step, on purpose: it refuses NaN in the batch, checks the labels, logs the
# loss, the batch accuracy and the gradient norms. Each of those was made cheap without dropping it:
#
# * **NaN/inf checks by one dot product.** $X\cdot X$ (one BLAS call, no temporary array) is NaN or inf exactly
#   when an entry of $X$ is — unless the squares of huge entries overflow, and only then does the exact test
#   (max and min) run. On a batch of 64 images this is cheaper than the max and min (the cell below times both).
# * **No one-hot array for integer labels.** The loss picks $\log\hat y$ at each row's label and the backward
#   subtracts 1 there: the same numbers as with the one-hot $Y$ (a sum with one term $1\cdot x$ is $x$), fewer arrays.
# * **One pass for the label range** (labels read as unsigned integers: a negative one becomes huge), the row
#   maxima of the logits from a transposed copy (one reduction over a few long rows, not many short ones),
#   and no per-parameter bookkeeping in the optimiser when no chapter-11 extra (schedule, L2, decay mask) is set.
#
# The cell below times the library's `Loop` against the same SGD step written by hand (the benchmark's
# yardstick), on the same batches from the same weights, in CPU seconds, and checks that both end with the
# same weights; then it times the checks and logs that remain the library's own, and puts the library's own cost
# next to the matrix products of one step of 784–512–512–10 (section 3).

# %% tags=["active-ipynb"]
# def handwritten_sgd_step(params, X_b, y_b, lr):
#     """One SGD step of a one-hidden-layer ReLU MLP with softmax cross-entropy, written by hand: no checks, no logs."""
#     W1, b1, W2, b2 = params
#     A = np.maximum(X_b @ W1 + b1, 0)
#     Z = A @ W2 + b2
#     Z -= Z.max(axis=1, keepdims=True)
#     P = np.exp(Z)
#     P /= P.sum(axis=1, keepdims=True)
#     P[np.arange(len(y_b)), y_b] -= 1
#     dZ = P / len(y_b)                                   # the one 1/m
#     dA = (dZ @ W2.T) * (A > 0)
#     for p, g in zip(params, (X_b.T @ dA, dA.sum(axis=0), A.T @ dZ, dZ.sum(axis=0))):
#         p -= lr * g
#
# small_widths, small_m, small_lr = (784, 50, 10), 64, 0.05
# r_small = np.random.default_rng(3)
# X_small = r_small.random((8192, 784), dtype=np.float32)
# y_small = r_small.integers(0, 10, 8192)
# small_model = Sequential([Dense(50), ReLU(), Dense(10)], n_in=784, rng=np.random.default_rng(4))
# by_hand = [small_model.params[k].copy() for k in ("dense_0/W", "dense_0/b", "dense_1/W", "dense_1/b")]
# start_small = [p.copy() for p in by_hand]                # kept for the round-off experiment below
# small_loop = Loop(small_model, TrainTask(BatchStream(X_small, y_small, batch_size=small_m, rng=np.random.default_rng(5)),
#                                          SoftmaxCrossEntropy(), SGD(lr=small_lr), n_steps_per_checkpoint=10 ** 9),
#                   progress=False, verbose=False)
# rounds, n_small = (2, 128) if QUICK else (5, 256)       # steps per round (one epoch of 8192 images = 128 steps)
# hand_order = np.random.default_rng(5)                   # the permutations the BatchStream draws, one per epoch
# hand_batches = [idx for _ in range(1 + rounds * n_small // 128)
#                 for idx in hand_order.permutation(8192).reshape(-1, small_m)]
# small_loop.run(20)                                       # speed must not change the maths: same weights after 20 steps
# for idx in hand_batches[:20]:
#     handwritten_sgd_step(by_hand, X_small[idx], y_small[idx], small_lr)
# rel_gap = lambda A, B: max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(A, B))
# gap, hand_at_20 = rel_gap(small_model.params.values(), by_hand), [p.copy() for p in by_hand]
# print(f"same weights after 20 steps from the same start: largest difference {gap:.1e} of the largest weight")
# assert gap < 1e-5                                        # float32 round-off
# cpu, done = {"diydnn": [], "by hand": []}, 20
# for r in range(rounds):                                  # interleaved rounds: a busy machine slows both alike
#     t0 = time.process_time()
#     small_loop.run(n_small)
#     cpu["diydnn"].append((time.process_time() - t0) / n_small)
#     t0 = time.process_time()
#     for idx in hand_batches[done:done + n_small]:
#         handwritten_sgd_step(by_hand, X_small[idx], y_small[idx], small_lr)
#     cpu["by hand"].append((time.process_time() - t0) / n_small)
#     done += n_small
# us = {name: 1e6 * np.median(v) for name, v in cpu.items()}
# print(f"784-50-10/64, SGD: diydnn {us['diydnn']:.0f} us, by hand {us['by hand']:.0f} us per step (CPU, median of "
#       f"{rounds} rounds): ratio {us['diydnn'] / us['by hand']:.2f}, the library's own cost {us['diydnn'] - us['by hand']:.0f} us")
# assert small_loop.step == done and all(v > 0 for v in us.values())

# %% [markdown]
# The checks and logs that remain the library's own, timed one by one on a batch of this run:

# %% tags=["active-ipynb"]
# X_b, y_b = X_small[hand_batches[0]], y_small[hand_batches[0]]
# out_b = small_model.forward(X_b, training=True)
# own = {"NaN check of the batch, max and min": lambda: np.isfinite(X_b.max()) and np.isfinite(X_b.min()),
#        "NaN check of the batch, one dot product": lambda: np.isfinite(np.vdot(X_b, X_b)),
#        "gradient norms (one dot product per array)": lambda: [float(np.vdot(g, g)) for g in small_model.grads.values()],
#        "batch accuracy for the logs": lambda: np.count_nonzero(out_b.argmax(axis=1) == y_b) / len(y_b),
#        "the loss, checks included": lambda: small_loop.task.loss(out_b, y_b)}
# own_us = {label: 1e6 * best_seconds(fn, repeats=200) for label, fn in own.items()}
# for label, t in own_us.items():
#     print(f"   {t:6.1f} us  {label}")
# assert own_us["NaN check of the batch, one dot product"] < own_us["NaN check of the batch, max and min"]
# products_us = 1e6 * sum(s for label, F, Bytes, s in pieces if label.startswith("layer"))
# print(f"the library's own cost, {us['diydnn'] - us['by hand']:.0f} us, against the {products_us:.0f} us of the matrix "
#       f"products of one 784-512-512-10 step (section 3): {100 * (us['diydnn'] - us['by hand']) / products_us:.1f} %")
# assert us["diydnn"] - us["by hand"] < 0.1 * products_us                  # a small share of a large step

# %% [markdown]
# Why the check above compares the weights after 20 steps, not after all the steps timed: **training amplifies
# round-off** (a ReLU unit that flips on one side and not on the other, Adam dividing tiny gradients by their own
# scale). The hand-written step against *itself*, started from weights changed by one part in $10^7$ (about one
# float32 rounding) and fed the same batches, drifts away from the unchanged run as the steps go on:

# %% tags=["active-ipynb"]
# nudged = [p * np.float32(1 + 1e-7) for p in start_small]
# for idx in hand_batches[:20]:
#     handwritten_sgd_step(nudged, X_small[idx], y_small[idx], small_lr)
# drift = {20: rel_gap(nudged, hand_at_20)}
# for idx in hand_batches[20:done]:
#     handwritten_sgd_step(nudged, X_small[idx], y_small[idx], small_lr)
# drift[done] = rel_gap(nudged, by_hand)
# print(f"hand-written against itself nudged by one part in 10^7: {drift[20]:.1e} of the largest weight after 20 steps, "
#       f"{drift[done]:.1e} after {done}; diydnn against hand-written after {done}: "
#       f"{rel_gap(small_model.params.values(), by_hand):.1e}")
# assert drift[done] > drift[20]                           # the gap grows with training

# %% [markdown]
# **One array for all parameters.** An optimiser applies the same few element-wise operations to every
# parameter: Adam's update makes twelve passes (section 3 counted them). Called once per array, each pass is a
# Python call and a NumPy dispatch, about a microsecond however small the array; 784–50–10 has four arrays, two of
# them biases of 50 and 10 numbers, so Adam's 48 calls cost as much as its arithmetic. PyTorch's optimisers meet the
# same problem with their `foreach` and `fused` variants (one call for a list of tensors).
#
# The remedy: keep every parameter in **one flat array** and every gradient in another, and let each layer hold
# *views* into them — `layer.params["W"]` becomes a reshaped slice of the flat array, the same numbers, updated in
# place as before. An element-wise update can then run once on the whole flat array (`Optimiser.step_flat`, in
# chapter 06's engineering section), and because every operation is element-wise the numbers are the same, bit for
# bit. `pack(model)` below does the moving; `Sequential.build` (chapter 07) calls it, and the `Loop` (chapter 09)
# asks `flat_params(model)` for the flat arrays at each step and uses `step_flat` when it gets them.
#
# Three details. Each parameter starts on a 64-byte boundary (a cache line): SIMD reductions and BLAS may add in
# another order when an array starts elsewhere, so without it a result could depend on where the memory allocator
# put the buffer. A layer may bind a new array (a user assigns `layer.params["W"] = ...`, or a layer makes new
# gradient arrays each step); the views are then no longer the layer's, and `flat_params` packs the model again —
# a few times at most (`REPACK_LIMIT`), after which the model stays on the per-array path rather than copying
# everything at every step. And an array taken from a layer *before* the layer was put into a model is not the
# layer's array any more: take it from `model.params` (or the layer) after building.

# %%
def _aligned_zeros(n, dtype, align):
    """np.zeros(n, dtype) starting at an address that is a multiple of `align` bytes. Alignment matters for
    reproducibility: SIMD reductions and BLAS may add in another order when an array starts elsewhere."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + align, dtype=np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip:skip + n * itemsize].view(dtype)


class FlatParams:
    """A model's parameters as views into one flat array `params`, its gradients as views into `grads`.

    Entry i is the parameter names[i] ("dense_0/W") of the layer layers[i] (named layer_names[i]), key keys[i], at
    params[slices[i]]; param_views[i] and grad_views[i] are the arrays that layer now holds.
    """

    ALIGN = 64    # bytes: every parameter starts on a cache line, whatever address the memory allocator returns

    def __init__(self, model):
        owned = [(layer, k, p) for layer in model.layers for k, p in layer.params.items()]
        dtype = owned[0][2].dtype
        step = max(1, self.ALIGN // dtype.itemsize)
        starts = np.cumsum([0] + [-(-p.size // step) * step for _, _, p in owned])   # each size rounded up
        self.params = _aligned_zeros(starts[-1], dtype, self.ALIGN)
        self.grads = _aligned_zeros(starts[-1], dtype, self.ALIGN)
        self.layers, self.layer_names, self.keys, self.names, self.slices = [], [], [], [], []
        self.param_views, self.grad_views = [], []
        for (layer, k, p), start in zip(owned, starts):
            where = slice(int(start), int(start) + p.size)      # the gaps between parameters stay 0
            W, dW = self.params[where].reshape(p.shape), self.grads[where].reshape(p.shape)
            W[...] = p                                  # the values move into the flat array
            g = layer.grads.get(k)
            if isinstance(g, np.ndarray) and g.shape == p.shape:
                dW[...] = g
            layer.params[k], layer.grads[k] = W, dW     # from now on the layer works in the flat arrays
            self.layers.append(layer)
            self.layer_names.append(layer.name)
            self.keys.append(k)
            self.names.append(f"{layer.name}/{k}")
            self.slices.append(where)
            self.param_views.append(W)
            self.grad_views.append(dW)

    def intact(self):
        """True while every layer still holds its views (one that bound a new array has left the packing), and they
        are still views of the flat arrays (a copied model, copy.deepcopy or pickle, holds copies: packed anew)."""
        p_owner, g_owner = self.params.base, self.grads.base     # the raw memory of _aligned_zeros
        if p_owner is None or g_owner is None:
            return False                                          # a copy of the flat arrays owns its memory
        for layer, k, W, dW in zip(self.layers, self.keys, self.param_views, self.grad_views):
            if layer.params.get(k) is not W or layer.grads.get(k) is not dW or W.base is not p_owner \
                    or dW.base is not g_owner:
                return False
        return True

# %%
REPACK_LIMIT = 3     # a layer that binds new arrays at every step is left unpacked, not copied every step


def pack(model):
    """Move every parameter and gradient of a Sequential into one flat array each (FlatParams), kept as
    model._flat_params and returned; None if the model can't be packed: no parameters, mixed dtypes, or a model
    inside the model (its `params` is gathered anew on each access). Sequential.build calls it (chapter 07)."""
    model._flat_params = None
    arrays = [p for layer in model.layers for p in layer.params.values()]
    plain = all(type(layer.__dict__.get("params")) is dict for layer in model.layers)
    if plain and arrays and len({p.dtype for p in arrays}) == 1 and arrays[0].dtype.kind == "f":
        model._flat_params = FlatParams(model)
    return model._flat_params


def flat_params(model):
    """The model's FlatParams, packed again if a layer has bound a new array since (REPACK_LIMIT times at most);
    None for a model that is not packed (not built, can't be packed, or not a Sequential)."""
    own = getattr(model, "__dict__", {})
    if "_flat_params" not in own:
        return None
    flat = own["_flat_params"]
    if flat is not None and flat.intact():
        return flat
    repacks = own.get("_repacks", 0)
    if not model.built or repacks >= REPACK_LIMIT:
        return None
    model._repacks = repacks + 1
    return pack(model)

# %% [markdown]
# The layers' arrays are now views: writing into the flat array changes the layer's `W`, and every parameter has
# its own aligned place in it, in the order of `model.params`.

# %% tags=["active-ipynb"]
# model_v = mlp((784, 50, 10), np.random.default_rng(0))
# flat = flat_params(model_v)
# n_v = sum(p.size for p in model_v.params.values())
# print(f"{n_v:,} parameters in one array of {flat.params.size:,} numbers (each parameter starts on a cache line); "
#       f"dense_0/W is a view of shape {flat.param_views[0].shape} at {flat.slices[0]}")
# assert all(np.shares_memory(p, flat.params) and p.ctypes.data % 64 == 0 for p in model_v.params.values())
# flat.params[flat.slices[0].start] += 1.0                   # the first entry of dense_0/W, through the flat array
# assert model_v.layers[0].params["W"][0, 0] == flat.params[flat.slices[0].start]

# %% [markdown]
# The cell below times one optimiser step both ways, per array (`step`) and on the flat array (`step_flat`), on
# 784–50–10 and on 784–512–512–10 (CPU time, median of interleaved rounds), and checks that the two give the same
# numbers, bit for bit.

# %% tags=["active-ipynb"]
# def optimiser_step_times(widths, opt_class, rounds):
#     """us per step of opt_class, per array (step) and on the flat array (step_flat), and whether they agree."""
#     layers = []
#     for k in widths[1:-1]:
#         layers += [Dense(k), ReLU()]
#     model = Sequential(layers + [Dense(widths[-1])], n_in=widths[0], rng=np.random.default_rng(0))
#     flat = flat_params(model)
#     r = np.random.default_rng(1)
#     for g in flat.grad_views:                           # (not the zero gaps between the parameters)
#         g[...] = r.standard_normal(g.shape).astype(np.float32) * 1e-2
#     start = flat.params.copy()
#     per_array, whole, n = opt_class(lr=1e-3), opt_class(lr=1e-3), max(20, 2_000_000 // flat.params.size)
#     times = {"per array": [], "flat": []}
#     for _ in range(rounds):
#         for label, step in (("per array", lambda: per_array.step(model.params, model.grads, grads_finite=True)),
#                             ("flat", lambda: whole.step_flat(flat))):
#             t0 = time.process_time()
#             for _ in range(n):
#                 step()
#             times[label].append(1e6 * (time.process_time() - t0) / n)
#     flat.params[:] = start                              # the same steps again, compared number by number
#     a, b = opt_class(lr=1e-3), opt_class(lr=1e-3)
#     after = []
#     for step in (lambda: a.step(model.params, model.grads, grads_finite=True), lambda: b.step_flat(flat)):
#         flat.params[:] = start
#         for _ in range(3):
#             step()
#         after.append(np.concatenate([W.ravel() for W in flat.param_views]))
#     return {k: float(np.median(v)) for k, v in times.items()}, np.array_equal(*after)
#
# saved = {}
# for widths in ((784, 50, 10), (784, 512, 512, 10)):
#     for opt_class in (SGD, Adam):
#         us_step, same = optimiser_step_times(widths, opt_class, rounds=3 if QUICK else 7)
#         print(f"{'-'.join(map(str, widths)):>15s} {opt_class.__name__:4s}: per array {us_step['per array']:7.1f} us, "
#               f"one flat array {us_step['flat']:7.1f} us per step; same numbers bit for bit: {same}")
#         assert same
#         saved[widths, opt_class.__name__] = 1 - us_step["flat"] / us_step["per array"]
# for name in ("SGD", "Adam"):
#     small, large = saved[(784, 50, 10), name], saved[(784, 512, 512, 10), name]
#     print(f"{name}: the flat array saves {100 * small:.0f} % of the step on 784-50-10, {100 * large:.0f} % on "
#           f"784-512-512-10")
#     assert small > 0 and small > large                   # it pays most where the arrays are small

# %% [markdown]
# On the small network the flat array saves a large share of the optimiser's step; on 784–512–512–10 the
# arithmetic of 669,706 parameters dominates and the share saved is smaller (the cell prints both and asserts
# the order). Two smaller things in the same spirit: a model scans its batch for NaN once, at its
# first layer (the layers after it see what the layer before computed, and the loss refuses non-finite logits),
# and BatchNorm and Conv2D write their gradients into the layer's arrays instead of binding new ones.
#
# What remains of the fixed cost on 784–50–10 is the library's own cost printed under "the fixed cost of a step"
# above: the Python calls of the layers and the loss with their input checks, what the library logs (the gradient
# norms, which also prove the gradients finite, the batch accuracy, the history) and the loop around them. Most of
# it does not depend on the widths, while the matrix products grow with them: against the products of one step of
# 784–512–512–10 it is a small share (printed and asserted there). The benchmark
# (`benchmarks/bench_training.py`) measures whole epochs against hand-written NumPy and PyTorch, with SGD and
# Adam; the README shows its latest table.

# %% [markdown]
# ### A CNN training step, part by part
#
# A convolution is the same matrix product on the patch matrix (chapter 12), so the count of section 1 carries over;
# but a CNN step does more around its products than an MLP step: the im2col copy that builds $P$ in the forward pass,
# the col2im scatter that adds $dP$ back onto the pixels in the backward pass, BatchNorm over every position of every
# image, pooling. The cell below takes one training step of experiment 11's residual CNN (chapter 16: stem, two
# residual blocks, BatchNorm, global average pool) at batch 128 and splits it by part. Each kind of layer is timed
# inside the step (by wrapping its forward and backward); the parts of the convolutions are timed again on their own,
# on the same shapes: the im2col copy, the three products ($P\tilde K$, $P^\top d\tilde Z$, $d\tilde Z\,\tilde K^\top$; not the
# last one for the first convolution, whose input gradient nobody needs) and the scatter of $dP$ (chapter 12's
# `col2im_offsets`, which the layer uses). Against the products stands
# the time sgemm would take for the same FLOPs at the peak of section 2. Medians over steps, one BLAS thread.

# %% tags=["active-ipynb"]
# from diydnn._05_batchnorm import BatchNorm
# from diydnn._10_experiments import build_model, resnet
# from diydnn._12_convolution import col2im, col2im_offsets, im2col
# from diydnn._13_pooling import MaxPool2D
#
#
# def leaf_layers(layers):
#     """The layers that compute: a block's own layers and its shortcut's instead of the block (chapter 16)."""
#     for layer in layers:
#         inner = list(getattr(layer, "layers", [])) + list(getattr(layer, "projection", []))
#         yield from (leaf_layers(inner) if inner else [layer])
#
#
# def median_ms(fn, repeats):
#     fn()                                                      # warm-up, untimed
#     times = []
#     for _ in range(repeats):
#         t0 = time.perf_counter()
#         fn()
#         times.append(time.perf_counter() - t0)
#     return 1e3 * float(np.median(times))
#
#
# def profile_cnn_step(model, X, Y, steps):
#     """Median ms per training step: the whole step and each kind of layer (forward + backward, wrapped timers)."""
#     spent, busy = {}, []
#     def timed(kind, fn):
#         def run(*args, **kwargs):
#             if busy:                                          # a method calling another: counted once
#                 return fn(*args, **kwargs)
#             busy.append(kind)
#             t0 = time.perf_counter()
#             try:
#                 return fn(*args, **kwargs)
#             finally:
#                 spent[kind] = spent.get(kind, 0.0) + time.perf_counter() - t0
#                 busy.pop()
#         return run
#     leaves = list(leaf_layers(model.layers))
#     for layer in leaves:
#         kind = type(layer).__name__ if isinstance(layer, (Conv2D, BatchNorm, MaxPool2D)) else "other layers"
#         for method in ("forward", "backward", "backward_params"):
#             setattr(layer, method, timed(kind, getattr(layer, method)))
#     loss, opt, per_step = SoftmaxCrossEntropy(), Adam(lr=1e-3), []
#     for _ in range(steps + 1):                                # the first step is a warm-up
#         spent.clear()
#         t0 = time.perf_counter()
#         loss.forward(model.forward(X, training=True), Y)
#         model.backward_params(loss.backward())
#         opt.step(model.params, model.grads)
#         step = time.perf_counter() - t0
#         per_step.append({**spent, "step": step, "rest": step - sum(spent.values())})   # the rest, step by step
#     for layer in leaves:                                      # the class's methods again
#         for method in ("forward", "backward", "backward_params"):
#             delattr(layer, method)
#     return {k: 1e3 * float(np.median([s.get(k, 0.0) for s in per_step[1:]])) for k in per_step[-1]}

# %% tags=["active-ipynb"]
# def conv_parts(model, m, repeats):
#     """ms of the parts of every Conv2D of the model, timed on their own on its shapes, and the products' FLOPs."""
#     r, flops = np.random.default_rng(0), 0
#     parts = {"im2col copy": 0.0, "products": 0.0, "col2im": 0.0, "col2im + crop": 0.0, "dP per offset": 0.0,
#              "dP one product": 0.0}
#     first = next(layer for layer in leaf_layers(model.layers) if layer.params)
#     for layer in leaf_layers(model.layers):
#         if not isinstance(layer, Conv2D):
#             continue
#         (out_h, top, bottom), (out_w, left, right) = layer._geometry(layer.n_in)
#         (H, W, C), (kh, kw), F = layer.n_in, layer.kernel_size, layer.filters
#         Xp = r.standard_normal((m, H + top + bottom, W + left + right, C), dtype=np.float32)
#         view = im2col(Xp, kh, kw, layer.stride, out_h, out_w)
#         P, K = np.ascontiguousarray(view).reshape(-1, kh * kw * C), layer.params["W"].reshape(-1, F)
#         dZ = r.standard_normal((P.shape[0], F), dtype=np.float32)
#         K_offsets = layer.params["W"].reshape(kh * kw, C, F).transpose(0, 2, 1)   # dP offset by offset, as the layer
#         parts["im2col copy"] += median_ms(lambda: np.ascontiguousarray(view), repeats)
#         parts["products"] += median_ms(lambda: P @ K, repeats) + median_ms(lambda: P.T @ dZ, repeats)
#         flops += (2 if layer is first else 3) * 2 * P.shape[0] * P.shape[1] * F
#         if layer is not first:         # dX: the third product (dP, offset by offset as the layer), then the scatter
#             per_offset = median_ms(lambda: np.matmul(dZ, K_offsets), repeats)
#             parts["products"] += per_offset
#             parts["dP per offset"] += per_offset
#             dP = np.matmul(dZ, K_offsets).reshape(kh, kw, m, out_h, out_w, C)
#             parts["dP one product"] += median_ms(lambda: dZ @ K.T, repeats)       # the first version's product
#             parts["col2im"] += median_ms(lambda: col2im_offsets(dP, (m, H, W, C), layer.stride, top, left), repeats)
#             # chapter 12's first version, on the same numbers: dP sample-major, scattered onto dX^p, then the crop
#             dP_rows = np.ascontiguousarray(dP.transpose(2, 3, 4, 0, 1, 5))
#             crop = (slice(None), slice(top, top + H), slice(left, left + W))
#             parts["col2im + crop"] += median_ms(lambda: col2im(dP_rows, Xp.shape, layer.stride)[crop], repeats)
#     return parts, flops

# %% tags=["active-ipynb"]
# m_cnn = 128
# resnet_model = build_model({"architecture": resnet(32, (1, 1))}, n_in=784, rng=np.random.default_rng(0))
# X_cnn = rng.random((m_cnn, 784), dtype=np.float32)
# Y_cnn = np.eye(10, dtype=np.float32)[rng.integers(0, 10, m_cnn)]
# ms = profile_cnn_step(resnet_model, X_cnn, Y_cnn, steps=3 if QUICK else 9)
# parts, conv_flops = conv_parts(resnet_model, m_cnn, repeats=3 if QUICK else 9)
# assert conv_flops == matmul_flops(resnet_model, m_cnn) - 3 * 2 * m_cnn * 64 * 10   # all but the Dense head's
# at_peak = 1e3 * conv_flops / peak
# rows = [("Conv2D layers, in the step", ms["Conv2D"]), ("  their products, on their own", parts["products"]),
#         ("    sgemm at the peak, same FLOPs", at_peak), ("  their im2col copies, on their own", parts["im2col copy"]),
#         ("  their col2im, on their own", parts["col2im"]), ("BatchNorm layers", ms["BatchNorm"]),
#         ("MaxPool2D", ms["MaxPool2D"]), ("other layers (ReLU, reshape, pool, Dense)", ms["other layers"]),
#         ("the rest (loss, Adam, the blocks' adds, Python)", ms["rest"])]
# print(f"one training step of resnet(32, (1, 1)) at batch {m_cnn}: {ms['step']:.1f} ms (median)")
# for label, t in rows:
#     print(f"  {label:48s} {t:7.1f} ms  {100 * t / ms['step']:5.1f} % of the step")
# rate = conv_flops / (parts["products"] / 1e3)
# print(f"the convolutions' products: {conv_flops / 1e9:.2f} GFLOP at {rate / 1e9:.1f} GFLOP/s, "
#       f"{100 * rate / peak:.0f} % of the sgemm peak ({parts['products'] / at_peak:.1f}x the time at the peak)")
# assert ms["rest"] > 0 and ms["Conv2D"] > 0.5 * ms["step"] and parts["products"] == max(t for _, t in rows[1:])   # the largest part
# # below the peak, and col2im several times the copy; the shrunk test run, often on a busy machine, asserts the direction
# assert parts["products"] > (1.0 if QUICK else 1.3) * at_peak
# print(f"the scatter of dP: {parts['col2im']:.1f} ms, {parts['col2im'] / parts['im2col copy']:.1f}x the im2col copy; "
#       f"chapter 12's first version (col2im onto the padded dX^p, then the crop) on the same dP: "
#       f"{parts['col2im + crop']:.1f} ms, {parts['col2im + crop'] / parts['col2im']:.1f}x as long")
# layer_way, first_way = parts["dP per offset"] + parts["col2im"], parts["dP one product"] + parts["col2im + crop"]
# print(f"dP offset by offset: {parts['dP per offset']:.1f} ms, as one product: {parts['dP one product']:.1f} ms; "
#       f"product and scatter together: {layer_way:.1f} ms the layer's way, {first_way:.1f} ms the first version's")
# assert parts["col2im"] > parts["im2col copy"] and parts["col2im + crop"] > parts["col2im"] and first_way > layer_way
# assert QUICK or parts["dP per offset"] > parts["dP one product"]      # the smaller products are slower (full run)

# %% [markdown]
# The convolutions take most of the step, and their products are its largest part — but they run below the sgemm
# peak (the cell prints how far): im2col makes tall, narrow products ($F$ = 32 or 64 columns, $k_h k_w C$ = 9 to 576
# rows of $\tilde K$), and on such shapes BLAS cannot keep its register blocks as busy as on the large square matrices
# of section 2. The scatter of $dP$ costs more than the im2col copy (the cell prints how much): it reads $dP$
# ($k_h k_w$ times the size of the input) and makes one strided add per kernel offset, each a pass over $dX$ in
# pieces of one pixel's $C$ channels. It used to cost more still: chapter 12's first version scatters a sample-major
# $dP$, whose blocks for one offset lie $k_h k_w C$ floats apart, onto the padded $dX^p$ and then crops it; the layer's
# `col2im_offsets` takes $dP$ offset-major and adds straight into the unpadded $dX$. Computing $d\tilde Z\,\tilde K^\top$
# as one product per kernel offset writes $dP$ in that order; those smaller products take longer than the one large
# product, but the scatter saves more than they lose (the cell prints both, and the sum). BatchNorm and pooling
# are a few element-wise passes over the largest activations.
#
# This is where diydnn stands against PyTorch on CNNs (the benchmark's CNN rows): PyTorch's CPU convolutions
# (oneDNN) compute the convolution directly, with kernels blocked over channels for the registers, and never write
# a patch matrix or scatter one back. diydnn keeps im2col because it is the idea of chapter 12 in one line, and
# because every number it computes is fixed: the course's run records are checked bit for bit, so a speed-up may
# change how memory is moved, but not the order of the additions. `col2im_offsets` is such a change: every entry of
# $dP$ is the same dot product over the $F$ filters (chapter 12 prints whether BLAS rounds it to the same bits), every
# pixel of $dX$ adds the same terms in the same order (chapter 12 checks that bit for bit), and the records still
# replay exactly (`tests/test_records.py`). The ways left to go faster change rounding:
# computing the convolution directly, with kernels blocked over channels as oneDNN does, computing $dX$ as a
# convolution with the rotated kernels (the order of the sums changes), or fusing BatchNorm's passes.
#
# ## 5. Batch size against throughput
#
# The matrix products of a step grow linearly with $m$, and so does the time — once $m$ is large enough.
# For small batches the fixed costs dominate: Python calls, the optimiser's passes over every parameter
# (which do not depend on $m$), and matrix products too thin to run near the peak. So throughput in samples
# per second rises with the batch size, then flattens. (Larger batches are not free for *learning*: fewer
# updates per epoch; that trade-off is chapter 11's and the experiments'.)
#
# These runs are long, so on a shared machine other jobs take turns on the cores in the middle of them. We
# therefore count **CPU seconds** of this process (`time.process_time`), which leave out the time spent
# waiting for a core; the short sgemm timings above took the best of a few runs for the same reason.

# %% tags=["active-ipynb"]
# batch_sizes = [1, 8, 64, 512] if QUICK else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
# bs_widths = (784, 256, 128, 10)
# throughput = {}
# for m_b in batch_sizes:
#     lp = make_loop(bs_widths, m_b, naive=False, n_data=max(4 * m_b, 512))
#     n_steps = max(3, (2000 if QUICK else 20000) // m_b)
#     lp.run(2)
#     t0 = time.process_time()              # CPU seconds of this process: not the time spent waiting for a core
#     lp.run(n_steps)
#     seconds = (time.process_time() - t0) / n_steps
#     throughput[m_b] = (m_b / seconds, matmul_flops(lp.model, m_b) / seconds)
# for m_b, (sps, fps) in throughput.items():
#     print(f"batch {m_b:5d}: {sps:10,.0f} samples per CPU second  {fps / 1e9:6.1f} GFLOP per CPU second ({100 * fps / peak:4.1f} % of peak)")
# assert all(s > 0 for s, _ in throughput.values())
# sps_m = [throughput[m_b][0] for m_b in batch_sizes]
# print(f"throughput x{sps_m[2] / sps_m[0]:.1f} from batch {batch_sizes[0]} to {batch_sizes[2]}, "
#       f"x{sps_m[-1] / sps_m[-3]:.1f} from batch {batch_sizes[-3]} to {batch_sizes[-1]}")
# assert sps_m[-1] > sps_m[0] and sps_m[-1] / sps_m[-3] < sps_m[2] / sps_m[0]    # rises, then flattens
#
# fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
# ms = np.array(list(throughput)); sps = np.array([v[0] for v in throughput.values()]); fps = np.array([v[1] for v in throughput.values()])
# axes[0].loglog(ms, sps, "o-"); axes[0].set(xlabel="batch size m", ylabel="samples per CPU second", title="Throughput")
# axes[1].semilogx(ms, fps / 1e9, "o-", label="training step (matrix products only)")
# axes[1].axhline(peak / 1e9, color="k", ls="--", label="sgemm peak")
# axes[1].set(xlabel="batch size m", ylabel="GFLOP per CPU second", title=f"{'-'.join(map(str, bs_widths))}, Adam: FLOP rate")
# axes[1].legend(fontsize=8)
# for ax in axes:
#     ax.grid(alpha=0.3, which="both")
# save_figure(fig, "14_batch_size.png")
# plt.show()

# %% [markdown]
# ## 6. Engineering: BLAS threads on a busy machine
#
# NumPy's matrix products run in OpenBLAS (or MKL), which starts one thread per core. After each call its
# threads **spin** for a while, waiting for the next piece of work, rather than sleep — cheap when the
# cores are yours. On a machine that other processes share, or when two trainings run side by side, there
# are more busy threads than cores. Every matrix product ends at a barrier where the calling thread waits
# for all its helpers; if one of them has been preempted, the wait lasts until the scheduler gives it a
# core again (milliseconds), while the spinning threads burn the time slices the others need. A training
# step makes a dozen small products, so it pays this again and again.
#
# The switch is `set_threads(n)` (below; also `diydnn.set_threads`), which caps the BLAS and OpenMP
# threads of the running process through the small package `threadpoolctl`. The environment variables
# `OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1`, set *before* Python starts, do the same. The benchmark
# (`benchmarks/bench_training.py`) uses it, and an experiment notebook can start with
# `diydnn.set_threads()`, which reads `DIYDNN_THREADS` (default 1).

# %%
def set_threads(n=None):
    """Cap the threads NumPy's BLAS (OpenBLAS, MKL) and OpenMP use in this process, from now on.

    n: a positive integer, or None to read the environment variable DIYDNN_THREADS (default 1).
    Returns threadpoolctl's limiter: `lim.restore_original_limits()` undoes it, and
    `with set_threads(1): ...` caps only the block. Needs the small package threadpoolctl
    (in requirements.txt; the library itself does not depend on it).
    """
    if n is None:
        text = os.environ.get("DIYDNN_THREADS", "1")
        if not text.strip().isdigit() or int(text) < 1:
            raise ValueError(f"set_threads: the environment variable DIYDNN_THREADS must be a positive integer "
                             f"(the number of threads), got {text!r}; set it to e.g. 1, or unset it")
        n = int(text)
    n_threads = as_count(n, "the number of threads n", "set_threads")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError("set_threads needs threadpoolctl (`pip install threadpoolctl`); without it, set "
                          "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 before starting Python") from None
    return threadpool_limits(limits=n_threads)


def time_training_steps(threads, n_steps=200, widths=(784, 256, 128, 10), batch_size=128, seed=0):
    """Seconds for n_steps of Adam training on random data with BLAS capped at `threads` (for section 6).

    A top-level function, so that a process pool can run it in fresh processes side by side.
    """
    set_threads(threads)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch_size, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], size=batch_size)
    layers = []
    for k in widths[1:-1]:
        layers += [Dense(k), ReLU()]
    model = Sequential(layers + [Dense(widths[-1])], n_in=widths[0], rng=rng)
    loss, opt = SoftmaxCrossEntropy(), Adam(lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        loss(model.forward(X, training=True), y)
        model.backward_params(loss.backward())
        opt.step(model.params, model.grads)
    return time.perf_counter() - t0


# %% [markdown]
# The experiment: the same training, in one process or in two processes at once, each with 1 or 2 BLAS
# threads. With 2 cores, two processes × two threads means four busy threads for two cores.

# %% tags=["active-ipynb"]
# try:
#     import threadpoolctl
#     have_threadpoolctl = True
# except ImportError:
#     have_threadpoolctl = False
# print("BLAS libraries:", [(i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()] if have_threadpoolctl else "threadpoolctl not installed")
#
# n_thread_steps = 20 if QUICK else 300
# thread_results = {}
# if have_threadpoolctl:
#     with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
#         list(pool.map(ch14.time_training_steps, [1, 1], [2, 2]))         # start both workers (imports) first
#         for threads in (1, 2):
#             thread_results[(1, threads)] = [pool.submit(ch14.time_training_steps, threads, n_thread_steps).result()]
#             futures = [pool.submit(ch14.time_training_steps, threads, n_thread_steps) for _ in range(2)]
#             thread_results[(2, threads)] = [f.result() for f in futures]
#     for (procs, threads), secs in thread_results.items():
#         print(f"{procs} process(es) x {threads} BLAS thread(s): {1e3 * max(secs) / n_thread_steps:6.2f} ms per step "
#               f"(slowest process; {os.cpu_count()} cores on this machine, shared with other jobs)")
#     assert all(s > 0 for secs in thread_results.values() for s in secs)
#     per_step = {key: max(secs) / n_thread_steps for key, secs in thread_results.items()}
#     for procs in (1, 2):
#         change = per_step[(procs, 2)] / per_step[(procs, 1)]
#         print(f"{procs} process(es): a second BLAS thread made each step {'faster' if change < 1 else 'slower'} "
#               f"({change:.2f}x the time with one thread)")

# %% [markdown]
# What to expect: one process on idle cores can gain from a second thread (the large products split in two);
# two processes with two threads each put four spinning threads on two cores, and every other job on the
# machine takes cores from them too. The last lines above say what a second thread did in this run, under this
# run's load — it differs from run to run, which is the point. The safe default for training small networks
# next to other work is **one BLAS thread per process**; use more only when the cores are yours and the
# matrices are large, and measure.
#
# ## 7. Lessons that carry over to any framework
#
# * **Count before you optimise.** The matrix products of a step are known from the shapes; dividing by the
#   measured time gives the fraction of the peak reached — the distance left to go.
# * **Do not compute what nobody uses.** The input gradient of the first layer was a quarter of the products.
#   Frameworks do the same (`requires_grad=False` on the inputs).
# * **Allocation and memory traffic, not FLOPs, decide the element-wise part.** Reuse buffers (`out=`, `+=`),
#   fold scalars together, and count passes over memory. Fused kernels in PyTorch or JAX exist for this reason.
# * **A small step is mostly fixed cost.** Checks, Python calls and logging cost microseconds per step whatever
#   the size; make them cheap (one dot product instead of two scans, no one-hot array, no per-parameter
#   bookkeeping that nothing needs) rather than dropping them. Fewer, larger array operations beat many small
#   ones: one flat array for all parameters (PyTorch's `foreach` optimisers, JAX's flattened pytrees).
# * **Batch size buys throughput** until the products are large enough to run near the peak; past that, only
#   learning dynamics decide.
# * **Threads are a shared resource.** Oversubscribed BLAS threads can cost more than they bring; cap them.
# * **Speed must not change the maths.** Every optimisation here was checked to give the same weights as the
#   plain version (up to float32 round-off); the benchmark checks it against hand-written NumPy too. Compare
#   after a few steps, not after an epoch: training amplifies round-off (ReLU units that flip, Adam dividing
#   tiny gradients by their own scale); section 4 showed the hand-written step drifting from itself.
#
# The benchmark in `benchmarks/bench_training.py` compares the library with the same network written by hand in
# NumPy and with PyTorch on the CPU (same weights, batches and optimiser, interleaved rounds); the README shows
# its latest table.
#
# ## Summary
#
# * A training step of an MLP costs $F(m) = 2m(3\sum_\ell n_{\ell-1}n_\ell - n_0n_1)$ FLOPs of matrix products;
#   `matmul_flops(model, m)` counts them.
# * The roofline $\min(P, \beta I)$ places matrix products near the peak and element-wise work far below it, on the
#   slanted roof of the memory that holds its arrays (the caches, for the arrays of a small step); count the
#   passes and bytes of element-wise code rather than guess them.
# * The library skips the first layer's input gradient, reuses gradient and optimiser buffers, and computes
#   Adam in place; it gives the same weights as the naive version and allocates far less per step.
# * On a small network the fixed cost of a step (checks, Python calls, logs) is what separates a library from
#   a hand-written step; the library keeps every check but makes it cheap (a dot product for NaN, no one-hot),
#   and keeps all parameters in one flat array so that an optimiser step is one call per operation, not one per array.
# * Throughput grows with the batch size until the products saturate; BLAS threads should be capped on a
#   shared machine (`set_threads`).
#
# ## Exercises
#
# 1. Count the FLOPs of one *evaluation* (forward only) of 784–512–512–10 on the 10,000 test images, and time
#    `model.predict` on them. What fraction of the peak does it reach, how does it compare with training's (section 5), and why?
# 2. Adam makes twelve passes over each parameter array (section 3 counted them). Write an SGD-with-momentum update with the fewest
#    passes you can, and check it against `SGD(lr, momentum)` for five steps.
# 3. Profile one step with `clip_norm=1.0` in the TrainTask. What does clipping cost, and why is it cheap here?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # forward only is 2 m sum(n_i n_{i+1}); predict runs in batches of 1024 (large, efficient products)
#     eval_model = mlp((784, 512, 512, 10), rng)
#     X_eval = rng.standard_normal((2000 if QUICK else 10000, 784)).astype(np.float32)
#     eval_flops = 2 * len(X_eval) * (784 * 512 + 512 * 512 + 512 * 10)
#     eval_seconds = best_seconds(lambda: eval_model.predict(X_eval), repeats=2)
#     print(f"predict: {eval_flops / 1e9:.2f} GFLOP in {eval_seconds:.3f} s = {eval_flops / eval_seconds / 1e9:.1f} GFLOP/s "
#           f"({100 * eval_flops / eval_seconds / peak:.0f} % of peak): no optimiser, no backward, batches of 1024")
#     assert eval_flops == sum(2 * len(X_eval) * l.n_in * l.units for l in eval_model.layers if isinstance(l, Dense))

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # two multiply-adds, v <- mu v + dW and W <- W - lr v; NumPy has no fused multiply-add, so each
#     # takes two ufunc calls: v *= mu; v += dW; np.multiply(v, lr, out=tmp); W -= tmp. Four passes, no allocation.
#     def momentum_step(W, dW, v, tmp, lr, mu):
#         v *= mu
#         v += dW
#         np.multiply(v, lr, out=tmp)
#         W -= tmp
#
#     W_a = rng.standard_normal((5, 4)); W_b = W_a.copy(); v_b = np.zeros_like(W_a); tmp_b = np.empty_like(W_a)
#     ref_opt = SGD(lr=0.1, momentum=0.9)
#     for _ in range(5):
#         g_ = rng.standard_normal(W_a.shape)
#         ref_opt.step({"W": W_a}, {"W": g_})
#         momentum_step(W_b, g_, v_b, tmp_b, 0.1, 0.9)
#     print("five momentum steps, max |difference|:", np.abs(W_a - W_b).max())
#     assert np.allclose(W_a, W_b, rtol=0, atol=1e-14)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # clipping reuses the norm the loop computes for its logs (one dot product per gradient), and then
#     # scales each gradient in place only when the norm exceeds the threshold: one extra pass at most.
#     clip_loop = make_loop((784, 256, 128, 10), 128, naive=False)
#     clip_loop.task.clip_norm = 1.0
#     clip_prof = cProfile.Profile()
#     clip_prof.enable()
#     clip_loop.run(5 if QUICK else 30)
#     clip_prof.disable()
#     clip_times = own_times(pstats.Stats(clip_prof))
#     clip_share = sum(s for label, s in clip_times.items() if "clip" in label or "global_norm" in label) / sum(clip_times.values())
#     norms = [v for _, v in clip_loop.history.get("train", "grad_norm")]
#     print(f"clipping: {100 * clip_share:.1f} % of the step's time; the norm was above 1 (clipped) on {sum(v > 1.0 for v in norms)} of {len(norms)} steps")
#     assert 0 <= clip_share < 1 and len(norms) == (5 if QUICK else 30)

# %% [markdown]
# ---
# [← 13 — pooling](13_pooling.ipynb) · [begin here](00_begin_here.ipynb) · **14 — where the time goes** · [next: experiment 01 — clip-norm →](experiments/01_clip_norm.ipynb)
