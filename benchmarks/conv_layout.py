"""Which image layout for diydnn's Conv2D: (m, H, W, C) "channels last" or (m, C, H, W) "channels first"?

Times im2col + the one matrix product of a 3x3 "same" convolution (the forward pass of chapter 12) on the
CNN's two convolution shapes, float32, one BLAS thread, median of repeats. Prints a Markdown table.
Run: OPENBLAS_NUM_THREADS=1 python benchmarks/conv_layout.py
"""
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SHAPES = [  # (batch, H, W, C_in, C_out): conv1 on MNIST, conv2 after a 2x2 pooling
    (128, 28, 28, 1, 32),
    (128, 14, 14, 32, 64),
]


def nhwc(X, W):
    """X (m, H, W, C), W (kh*kw*C, F): patches (m*H*W, kh*kw*C) @ W gives (m*H*W, F) = (m, H, W, F), no transpose."""
    m, H, Wd, C = X.shape
    Xp = np.pad(X, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = sliding_window_view(Xp, (3, 3), axis=(1, 2))            # (m, H, W, C, 3, 3), a view
    cols = cols.transpose(0, 1, 2, 4, 5, 3).reshape(m * H * Wd, 9 * C)  # the copy
    return (cols @ W).reshape(m, H, Wd, -1)


def nchw(X, W):
    """X (m, C, H, W), W (C*kh*kw, F): same product, then the output must be transposed to (m, F, H, W)."""
    m, C, H, Wd = X.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = sliding_window_view(Xp, (3, 3), axis=(2, 3))            # (m, C, H, W, 3, 3)
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(m * H * Wd, C * 9)
    Z = (cols @ W).reshape(m, H, Wd, -1)
    return np.ascontiguousarray(Z.transpose(0, 3, 1, 2))


def nchw_batched(X, W):
    """X (m, C, H, W), W (F, C*kh*kw): one product per sample, W @ cols_i of shape (C*9, H*W), output already (m, F, H*W)."""
    m, C, H, Wd = X.shape
    Xp = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = sliding_window_view(Xp, (3, 3), axis=(2, 3))            # (m, C, H, W, 3, 3)
    cols = cols.transpose(0, 1, 4, 5, 2, 3).reshape(m, C * 9, H * Wd)
    return (W @ cols).reshape(m, -1, H, Wd)


def median_time(f, repeats=7):
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    print("| shape (m, H, W, C -> F) | (m, H, W, C) one product | (m, C, H, W) one product + transpose | (m, C, H, W) per-sample products |")
    print("|---|---|---|---|")
    for m, H, Wd, C, F in SHAPES:
        X = rng.standard_normal((m, H, Wd, C)).astype(np.float32)
        Wt = rng.standard_normal((9 * C, F)).astype(np.float32)
        Xc = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
        Wc = np.ascontiguousarray(Wt.reshape(3, 3, C, F).transpose(2, 0, 1, 3).reshape(C * 9, F))
        ref = nhwc(X, Wt)
        assert np.allclose(nchw(Xc, Wc).transpose(0, 2, 3, 1), ref, atol=1e-3)
        assert np.allclose(nchw_batched(Xc, Wc.T.copy()).transpose(0, 2, 3, 1), ref, atol=1e-3)
        t = [median_time(lambda: nhwc(X, Wt)), median_time(lambda: nchw(Xc, Wc)),
             median_time(lambda: nchw_batched(Xc, Wc.T.copy()))]
        print(f"| {m}, {H}, {Wd}, {C} -> {F} | " + " | ".join(f"{1e3 * x:.1f} ms" for x in t) + " |")


if __name__ == "__main__":
    main()
