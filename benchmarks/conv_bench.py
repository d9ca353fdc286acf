"""Conv2D + MaxPool2D, forward and backward, on the shapes of experiment 08's CNN: diydnn against PyTorch's CPU ops.

Both sides: float32, one thread (OPENBLAS_NUM_THREADS=1 for NumPy, torch.set_num_threads(1)), the same weights and
batch, each side in its own layout ((m, H, W, C) for diydnn, (m, C, H, W) for PyTorch), a random upstream gradient.
The two sides are timed alternately, so that a change in the machine's load hits both; the median of the repeats is
reported. PyTorch is optional: without it the script says so and exits cleanly (it is never a dependency of the
library or the tests). Prints a Markdown table.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/conv_bench.py [repeats]
"""
import os
import sys
import time

import numpy as np

from diydnn import Conv2D, MaxPool2D, rel_error

SHAPES = [  # (batch, H, W, C_in, filters): the two blocks of experiment 08 (3x3 "same" convolution, 2x2 max pooling)
    (128, 28, 28, 1, 32),
    (128, 14, 14, 32, 64),
]


def diydnn_step(conv, pool, X, G):
    """Forward and backward through Conv2D then MaxPool2D; returns dX."""
    pool.forward(conv.forward(X, training=True), training=True)
    return conv.backward(pool.backward(G))


def main(repeats=15):
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: nothing to compare with (it is optional). Skipped.")
        return 0
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, torch {torch.__version__} "
          f"with {torch.get_num_threads()} thread; load average {tuple(round(x, 2) for x in os.getloadavg())}; "
          f"median of {repeats} repeats")
    print()
    print("| block (batch, H, W, C -> filters) | diydnn fwd+bwd | PyTorch fwd+bwd | ratio |")
    print("|---|---|---|---|")
    ratios = []
    for m, H, W, C, F in SHAPES:
        conv, pool = Conv2D(F, 3, padding="same", n_in=(H, W, C), rng=rng), MaxPool2D(2)
        X = rng.random((m, H, W, C), dtype=np.float32)
        G = rng.standard_normal((m, H // 2, W // 2, F)).astype(np.float32)
        # PyTorch: the same weights, channels first; W (kh, kw, C, F) -> (F, C, kh, kw)
        Xt = torch.tensor(X.transpose(0, 3, 1, 2).copy(), requires_grad=True)
        Wt = torch.tensor(conv.params["W"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
        bt = torch.tensor(conv.params["b"].copy(), requires_grad=True)
        Gt = torch.tensor(G.transpose(0, 3, 1, 2).copy())

        def torch_step():
            Xt.grad = Wt.grad = bt.grad = None
            Y = torch.nn.functional.max_pool2d(torch.nn.functional.conv2d(Xt, Wt, bt, padding=1), 2)
            Y.backward(Gt)
            return Xt.grad

        dX = diydnn_step(conv, pool, X, G)                         # warm up both, and check they agree
        dXt = torch_step()
        # relative errors, not element-wise closeness: two values of a pooling window that differ by one rounding step
        # may have their order swapped between the two libraries' float32 sums, which moves that window's gradient
        assert rel_error(dX, dXt.numpy().transpose(0, 2, 3, 1)) < 1e-3, "diydnn and PyTorch disagree on dX"
        assert rel_error(conv.grads["W"], Wt.grad.numpy().transpose(2, 3, 1, 0)) < 1e-3, "they disagree on dW"
        times = {"diydnn": [], "torch": []}
        for _ in range(repeats):
            for name, step in (("diydnn", lambda: diydnn_step(conv, pool, X, G)), ("torch", torch_step)):
                t = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t)
        ours, theirs = np.median(times["diydnn"]), np.median(times["torch"])
        ratios.append(ours / theirs)
        print(f"| {m}, {H}, {W}, {C} -> {F} | {1e3 * ours:.1f} ms | {1e3 * theirs:.1f} ms | {ours / theirs:.2f}x |")
    print()
    print(f"total time ratio diydnn / PyTorch: geometric mean {np.exp(np.mean(np.log(ratios))):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
