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
# 2-core machine shared with other jobs). So the cells below print and plot times, and assert only
# what does not depend on the clock: FLOP counts, equal results, memory allocated.

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
    each. Reshape, ReLU, pooling and the other layers do element-wise work only and add nothing.
    """
    # backward_params computes no dX for the first layer with parameters (layers before it have no gradient at all)
    first = next((i for i, layer in enumerate(model.layers) if layer.params), None)
    flops = 0
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            one = 2 * m * layer.n_in * layer.units
        elif isinstance(layer, Conv2D):     # chapter 12: one product (m H' W', kh kw C) x (kh kw C, F)
            out_h, out_w, F = layer.output_width(layer.n_in)
            (kh, kw), C = layer.kernel_size, layer.n_in[2]
            one = 2 * m * out_h * out_w * F * kh * kw * C
        else:
            continue
        flops += one * (2 if i == first else 3)
    return flops


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
# The largest network does 400 MFLOP of matrix products per step. The element-wise work of the same step
# is tiny in FLOPs: Adam does about a dozen operations per parameter (670,000 parameters: about 8 MFLOP), the
# activations add a few per entry of $m \times 1034$ values. In *time* it is another story, as we will see:
# an element-wise operation moves 8–12 bytes per FLOP, a large matrix product far less than one.
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
# $I = 1/12$. We measure $\beta$ with a large array copy (8 bytes moved per float32 entry: a read and a write).

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
# assert np.isclose(roof(ridge / 10), bandwidth * ridge / 10) and np.isclose(roof(ridge * 10), peak)   # min(P, beta I), both sides

# %% [markdown]
# Now each piece of one step of 784–512–512–10 at batch 128, measured alone: the eight matrix products
# (three per layer, minus the first layer's $dX$), and the element-wise pieces — the bias add, ReLU forward
# and backward, and one Adam update of the largest weight matrix — each with its own FLOPs and bytes.

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
# pieces.append(("bias add", Z_.size, 8 * Z_.size, best_seconds(lambda: np.add(Z_, b_, out=Z_))))
# pieces.append(("ReLU fwd", Z_.size, 9 * Z_.size, best_seconds(lambda: Z_ * (Z_ > 0))))
# W_big = np.zeros((784, 512), np.float32); g_big = rng.standard_normal(W_big.shape, dtype=np.float32)
# adam_one = Adam(lr=1e-3)
# pieces.append(("Adam W1", 12 * W_big.size, 4 * 20 * W_big.size,
#                best_seconds(lambda: adam_one.step({"W": W_big}, {"W": g_big}))))
# for label, F, Bytes, s in pieces:
#     print(f"{label:16s} {F / 1e6:8.2f} MFLOP  I = {F / Bytes:6.2f} FLOP/byte  {F / s / 1e9:6.1f} GFLOP/s "
#           f"({100 * F / s / peak:5.1f} % of peak)  {s * 1e6:8.0f} us")
# assert all(s > 0 for *_, s in pieces)

# %% tags=["active-ipynb"]
# fig, ax = plt.subplots(figsize=(8, 5))
# I_axis = np.logspace(-2, 3, 200)
# ax.loglog(I_axis, roof(I_axis) / 1e9, "k-", lw=2, label=f"roofline: min({peak / 1e9:.0f} GFLOP/s, {bandwidth / 1e9:.0f} GB/s × I)")
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
# The matrix products sit near the flat roof: they are limited by arithmetic, and run at a good
# fraction of the peak. Every element-wise piece sits far to the left, on the slanted roof: it is
# limited by memory traffic, and reaches a few GFLOP/s at most. (One Adam update can land above the slanted
# roof: its arrays, 1.6 MB each, stay in the processor's caches, which are faster than the main memory the
# copy measured.) In FLOPs they are
# almost nothing; in time they are not, because each pass over an array costs about as much as reading
# and writing it. The lesson for any framework: **the number of passes over memory** (and the number of
# temporary arrays each creates) decides the cost of the element-wise part, not its FLOPs.
#
# ## 4. Profiling one step: naive against optimised
#
# To see where the time goes in the library itself, here is a small **naive** version of the pieces this
# chapter's optimisations changed — written the obvious way, as the library was before:
#
# * `NaiveDense` allocates new gradient arrays every step, adds the bias into a second new array, and
#   computes $dX$ for the first layer too (nobody uses it);
# * `NaiveAdam` computes $\hat m$, $\hat v$, $\sqrt{\hat v}$, the quotient and the step as fresh temporaries
#   (about eight parameter-sized arrays per parameter per step).
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
# eight temporaries per parameter (it makes about twelve passes over arrays that stay in cache, and
# allocates nothing); gradients are written into the same arrays each step.
#
# **The fixed cost of a step.** On a small network the arithmetic is small too, and what a library does
# *around* it shows: on 784–50–10 at batch 64 a step is about 0.2 ms of NumPy work, and
# every check, every Python call and every value logged is counted in microseconds against it. The library
# does more than a hand-written step, on purpose: it refuses NaN in the batch, checks the labels, logs the
# loss, the batch accuracy and the gradient norms. Each of those was made cheap without dropping it:
#
# * **NaN/inf checks by one dot product.** $X\cdot X$ (one BLAS call, no temporary array) is NaN or inf exactly
#   when an entry of $X$ is — unless the squares of huge entries overflow, and only then does the exact test
#   (max and min) run. On a batch of 64 images this halves the cost of the check.
# * **No one-hot array for integer labels.** The loss picks $\log\hat y$ at each row's label and the backward
#   subtracts 1 there: the same numbers as with the one-hot $Y$ (a sum with one term $1\cdot x$ is $x$), fewer arrays.
# * **One pass for the label range** (labels read as unsigned integers: a negative one becomes huge), the row
#   maxima of the logits from a transposed copy (NumPy reduces a few long rows faster than many short ones),
#   and no per-parameter bookkeeping in the optimiser when no chapter-11 extra (schedule, L2, decay mask) is set.
#
# The cell below times the library's `Loop` against the same SGD step written by hand (the benchmark's
# yardstick), on the same batches from the same weights, in CPU seconds, and checks that both end with the
# same weights; then it times the checks and logs that remain the library's own.

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
# gap = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(small_model.params.values(), by_hand))
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
#
# X_b, y_b = X_small[hand_batches[0]], y_small[hand_batches[0]]
# out_b = small_model.forward(X_b, training=True)
# own = {"NaN check of the batch, max and min": lambda: np.isfinite(X_b.max()) and np.isfinite(X_b.min()),
#        "NaN check of the batch, one dot product": lambda: np.isfinite(np.vdot(X_b, X_b)),
#        "gradient norms (one dot product per array)": lambda: [float(np.vdot(g, g)) for g in small_model.grads.values()],
#        "batch accuracy for the logs": lambda: np.count_nonzero(out_b.argmax(axis=1) == y_b) / len(y_b),
#        "the loss, checks included": lambda: small_loop.task.loss(out_b, y_b)}
# for label, fn in own.items():
#     print(f"   {1e6 * best_seconds(fn, repeats=200):6.1f} us  {label}")

# %% [markdown]
# **One array for all parameters.** An optimiser applies the same few element-wise operations to every
# parameter: Adam makes a dozen passes. Called once per array, each pass is a Python call and a NumPy dispatch,
# about a microsecond however small the array; 784–50–10 has four arrays, two of them biases of 50 and 10 numbers,
# so Adam's 48 calls cost as much as its arithmetic. PyTorch's optimisers meet the same problem with their
# `foreach` and `fused` variants (one call for a list of tensors). Here `Sequential.build` keeps every parameter
# in **one flat array** and every gradient in another, the layers hold views into them (chapter 07), and
# `Optimiser.step_flat` runs each operation once on the whole array (chapter 06); the `Loop` uses it. The
# operations are element-wise, so the numbers are the same, bit for bit. The cell times one optimiser step both
# ways on the model above and on 784–512–512–10 (CPU time, median of interleaved rounds).

# %% tags=["active-ipynb"]
# def optimiser_step_times(widths, opt_class, rounds):
#     """us per step of opt_class, per array (step) and on the flat array (step_flat), and whether they agree."""
#     layers = []
#     for k in widths[1:-1]:
#         layers += [Dense(k), ReLU()]
#     model = Sequential(layers + [Dense(widths[-1])], n_in=widths[0], rng=np.random.default_rng(0))
#     flat = model.flat()
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
# for widths in ((784, 50, 10), (784, 512, 512, 10)):
#     for opt_class in (SGD, Adam):
#         us_step, same = optimiser_step_times(widths, opt_class, rounds=3 if QUICK else 7)
#         print(f"{'-'.join(map(str, widths)):>15s} {opt_class.__name__:4s}: per array {us_step['per array']:7.1f} us, "
#               f"one flat array {us_step['flat']:7.1f} us per step; same numbers bit for bit: {same}")
#         assert same

# %% [markdown]
# On the small network the flat Adam step takes about 60 µs instead of 80 µs (measured on the quiet machine; the
# figures above are this run's); on 784–512–512–10 the arithmetic of 670,000 parameters dominates and the two are
# within a few per cent. Two smaller things in the same spirit: a model scans its batch for NaN once, at its
# first layer (the layers after it see what the layer before computed, and the loss refuses non-finite logits),
# and BatchNorm and Conv2D write their gradients into the layer's arrays instead of binding new ones.
#
# What remains of the fixed cost on 784–50–10 with SGD, measured against the hand-written step (about 215 µs):
# about 12 µs in the layers and the loss (Python calls, their input checks, the loss in float64), about 15 µs for
# what the library logs (the gradient norms, which also prove the gradients finite, the batch accuracy, the history)
# and a few µs in the loop. With Adam, whose update the flat array makes cheaper than the hand-written one, the
# library is level with hand-written NumPy; with SGD it stays about 15 % dearer on this smallest network. On the
# larger networks of the benchmark (`benchmarks/bench_training.py`) the same fixed cost disappears behind the
# matrix products: there the library runs within 10 % of the hand-written NumPy, and with Adam as fast as it.
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
# step makes a dozen small products, so it pays this again and again: runs 10–30 times slower than with
# one thread have been seen on this project's shared machine.
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

# %% [markdown]
# On an idle 2-core machine one process gains a little from a second thread (the large products split in
# two), but two processes with two threads each are slower than with one each: four spinning threads
# share two cores. On a machine shared with other jobs the second thread mostly hurts. The safe default
# for training small networks next to other work is **one BLAS thread per process**; use more only when
# the cores are yours and the matrices are large, and measure.
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
#   tiny gradients by their own scale). Measured on an epoch of MNIST with 784–256–128–10: hand-written NumPy
#   against *itself*, with the initial weights changed by one part in $10^7$, ends 38 % of the largest weight
#   apart with Adam (diydnn ends 36 % from it) and 1.4 % with SGD (diydnn: 0.003 %).
#
# The benchmark in `benchmarks/bench_training.py` compares the library with the same network written by hand in
# NumPy and with PyTorch on the CPU (same weights, batches and optimiser, interleaved rounds); the README shows
# its latest table.
#
# ## Summary
#
# * A training step of an MLP costs $F(m) = 2m(3\sum_\ell n_{\ell-1}n_\ell - n_0n_1)$ FLOPs of matrix products;
#   `matmul_flops(model, m)` counts them.
# * The roofline $\min(P, \beta I)$ places matrix products near the peak and element-wise work far below it.
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
#    `model.predict` on them. What fraction of the peak does it reach, and why is it higher than training's?
# 2. Adam makes about twelve passes over each parameter array. Write an SGD-with-momentum update with the fewest
#    passes you can, and check it against `SGD(lr, momentum)` for five steps.
# 3. Profile one step with `clip_norm=1.0` in the TrainTask. What does clipping cost, and why is it cheap here?

# %% jupyter={"source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1: forward only is 2 m sum(n_i n_{i+1}); predict runs in batches of 1024 (large, efficient products)
# eval_model = mlp((784, 512, 512, 10), rng)
# X_eval = rng.standard_normal((2000 if QUICK else 10000, 784)).astype(np.float32)
# eval_flops = 2 * len(X_eval) * (784 * 512 + 512 * 512 + 512 * 10)
# eval_seconds = best_seconds(lambda: eval_model.predict(X_eval), repeats=2)
# print(f"predict: {eval_flops / 1e9:.2f} GFLOP in {eval_seconds:.3f} s = {eval_flops / eval_seconds / 1e9:.1f} GFLOP/s "
#       f"({100 * eval_flops / eval_seconds / peak:.0f} % of peak): no optimiser, no backward, batches of 1024")
# assert eval_flops == sum(2 * len(X_eval) * l.n_in * l.units for l in eval_model.layers if isinstance(l, Dense))

# %% jupyter={"source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2: momentum in two passes: v <- mu v + dW (one multiply-add per entry needs two ufunc calls in NumPy),
# # then W <- W - lr v with a work array: np.multiply(v, lr, out=tmp); W -= tmp. Four passes, no allocation.
# def momentum_step(W, dW, v, tmp, lr, mu):
#     v *= mu
#     v += dW
#     np.multiply(v, lr, out=tmp)
#     W -= tmp
#
# W_a = rng.standard_normal((5, 4)); W_b = W_a.copy(); v_b = np.zeros_like(W_a); tmp_b = np.empty_like(W_a)
# ref_opt = SGD(lr=0.1, momentum=0.9)
# for _ in range(5):
#     g_ = rng.standard_normal(W_a.shape)
#     ref_opt.step({"W": W_a}, {"W": g_})
#     momentum_step(W_b, g_, v_b, tmp_b, 0.1, 0.9)
# print("five momentum steps, max |difference|:", np.abs(W_a - W_b).max())
# assert np.allclose(W_a, W_b, rtol=0, atol=1e-14)

# %% jupyter={"source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3: clipping reuses the norm the loop computes for its logs (one dot product per gradient), and then
# # scales each gradient in place only when the norm exceeds the threshold: one extra pass at most.
# clip_loop = make_loop((784, 256, 128, 10), 128, naive=False)
# clip_loop.task.clip_norm = 1.0
# clip_prof = cProfile.Profile()
# clip_prof.enable()
# clip_loop.run(5 if QUICK else 30)
# clip_prof.disable()
# clip_times = own_times(pstats.Stats(clip_prof))
# clip_share = sum(s for label, s in clip_times.items() if "clip" in label or "global_norm" in label) / sum(clip_times.values())
# norms = [v for _, v in clip_loop.history.get("train", "grad_norm")]
# print(f"clipping: {100 * clip_share:.1f} % of the step's time; the norm was above 1 (clipped) on {sum(v > 1.0 for v in norms)} of {len(norms)} steps")
# assert 0 <= clip_share < 1 and len(norms) == (5 if QUICK else 30)

# %% [markdown]
# ---
# [← 13 — pooling](13_pooling.ipynb) · [begin here](00_begin_here.ipynb) · **14 — where the time goes** · [next: experiment 01 — clip-norm →](experiments/01_clip_norm.ipynb)
