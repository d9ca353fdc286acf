"""Benchmark: seconds per epoch of MNIST training, diydnn against hand-written NumPy and PyTorch (CPU).

Every implementation trains the same network from the same initial weights on the same batches
(the order diydnn's BatchStream draws) with the same optimiser, float32, one epoch = 60,000 images.
Each runs in its own worker process (so its peak RSS is its own); the parent interleaves them finely:
a round is one epoch of each, cut into --chunks pieces, and the implementations take turns piece by
piece (rotating who goes first), so that a busy machine slows all of them alike; the sgemm peak is
measured after every round. Reported: medians over the
rounds, GFLOP/s of the matrix products (counted from the shapes) against the measured sgemm peak, peak
RSS, and how far the weights after the first epoch are from the hand-written NumPy ones.

    python benchmarks/bench_training.py                  # all rows, 5 rounds, 1 BLAS thread
    python benchmarks/bench_training.py --rows 784-50-10/64 --rounds 3
    python benchmarks/bench_training.py --readme README.md   # also regenerate the README paragraph

The Markdown table is written (atomically) to media/bench_training.md. PyTorch is optional: without it
its column stays empty. BLAS threads are capped with diydnn.set_threads (threadpoolctl; see chapter 14).

Adding a row: append a Row to ROWS (or EXTRA_ROWS) whose `make` maps implementation names to factories
`f(weights, optimiser, lr, batch_size, X, y, order_seed) -> object with train_steps(n) and weights()`, whose
`flops` counts the FLOPs of one training step and `init(seed)` makes the initial weights. The CNN of chapters
12-13 and experiment 11's residual CNN (EXTRA_ROWS) are such rows; an epoch is long, so `timed_steps` times only part of the epoch per round
(the seconds are scaled to the epoch, and the table's row says so):

    python benchmarks/bench_training.py --rows 'cnn-32-64-128/128 adam' 'resnet-32-64 (BatchNorm)/128 adam' --rounds 3

With --rows, the table keeps the other rows of its previous version, marked as kept (not rerun).
"""
import argparse
import math
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))              # handwritten.py
sys.path.insert(0, str(HERE.parent))       # diydnn from this checkout

MEDIA = HERE.parent / "media"
TABLE_FILE = "bench_training.md"
README_START, README_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"


# ----------------------------------------------------------------------------- rows
def mlp_flops(widths, m):
    """FLOPs of the matrix products of one training step: forward, dW, and dX for all but the first layer."""
    pairs = list(zip(widths[:-1], widths[1:]))
    return sum(2 * m * n_in * n_out * (2 if i == 0 else 3) for i, (n_in, n_out) in enumerate(pairs))


def he_weights(widths, seed):
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)).astype(np.float32),
             np.zeros(n_out, dtype=np.float32)) for n_in, n_out in zip(widths[:-1], widths[1:])]


class DiydnnMLP:
    """diydnn through its public API: Sequential + TrainTask + Loop, weights loaded from `weights`."""

    def __init__(self, weights, optimiser, lr, batch_size, X, y, order_seed):
        import diydnn as dd
        layers = []
        for W, _ in weights[:-1]:
            layers += [dd.Dense(W.shape[1]), dd.ReLU()]
        self.model = dd.Sequential(layers + [dd.Dense(weights[-1][0].shape[1])], n_in=weights[0][0].shape[0],
                                   rng=np.random.default_rng(0))
        state = {}
        for i, (W, b) in enumerate(weights):
            state[f"params/dense_{i}/W"], state[f"params/dense_{i}/b"] = W, b
        self.model.load_state_dict(state)
        self._train(dd, optimiser, lr, batch_size, X, y, order_seed)

    def _train(self, dd, optimiser, lr, batch_size, X, y, order_seed):
        opt = dd.Adam(lr=lr) if optimiser == "adam" else dd.SGD(lr=lr)
        self.stream = dd.BatchStream(X, y, batch_size=batch_size, rng=np.random.default_rng(order_seed))
        self.loop = dd.Loop(self.model, dd.TrainTask(self.stream, dd.SoftmaxCrossEntropy(), opt,
                                                     n_steps_per_checkpoint=10 ** 9), progress=False, verbose=False)

    def train_steps(self, n):
        self.loop.run(n)

    def weights(self):
        p = self.model.params
        return [(p[f"dense_{i}/W"].copy(), p[f"dense_{i}/b"].copy()) for i in range(len(self.model.layers) // 2 + 1)]


class _Reference:
    """Hand-written NumPy or PyTorch, fed the permutations BatchStream would draw from the same seed."""

    def __init__(self, cls, weights, optimiser, lr, batch_size, X, y, order_seed):
        self.net, self.X, self.y, self.batch_size = cls(weights, optimiser, lr), X, y, batch_size
        self.rng = np.random.default_rng(order_seed)
        self.order = self.rng.permutation(len(X))         # BatchStream draws one permutation per epoch
        self.position, self.per_epoch = 0, len(X) // batch_size

    def train_steps(self, n):
        while n > 0:
            last = min(self.position + n, self.per_epoch)
            self.net.train_epoch(self.X, self.y, self.order, self.batch_size, self.position, last)
            n -= last - self.position
            self.position = last
            if self.position == self.per_epoch:             # epoch used up: the next permutation, as BatchStream
                self.order, self.position = self.rng.permutation(len(self.X)), 0

    def weights(self):
        return self.net.weights()


def make_numpy(*args):
    from handwritten import NumpyMLP
    return _Reference(NumpyMLP, *args)


def make_torch(*args):
    from handwritten import TorchMLP
    return _Reference(TorchMLP, *args)


IMPLEMENTATIONS = {"diydnn": DiydnnMLP, "numpy": make_numpy, "torch": make_torch}


# The CNN of chapters 12-13 (the default network of diydnn.cnn(): no BatchNorm, no Dropout):
# Reshape(28, 28, 1) -> Conv2D(32, 3x3, same) -> ReLU -> MaxPool2D(2) -> Conv2D(64, 3x3, same) -> ReLU -> MaxPool2D(2)
# -> Flatten -> Dense(128) -> ReLU -> Dense(10).
CNN_IMAGE, CNN_FILTERS, CNN_UNITS, CNN_KERNEL = (28, 28, 1), (32, 64), 128, 3


def cnn_shapes():
    """Weight shapes, diydnn's layout: kernels (kh, kw, C, F), dense W (n_in, n_out)."""
    (H, W, C), (F1, F2), k = CNN_IMAGE, CNN_FILTERS, CNN_KERNEL
    return [(k, k, C, F1), (k, k, F1, F2), (H // 4 * W // 4 * F2, CNN_UNITS), (CNN_UNITS, 10)]


def cnn_weights(seed):
    """He-normal weights (fan-in = kh*kw*C for a kernel, n_in for a dense layer), zero biases, float32."""
    rng = np.random.default_rng(seed)
    return [((rng.standard_normal(s) * math.sqrt(2.0 / math.prod(s[:-1]))).astype(np.float32),
             np.zeros(s[-1], dtype=np.float32)) for s in cnn_shapes()]


def cnn_flops(row):
    """FLOPs of the matrix products of one step: per 'same' convolution 2 m H W F kh kw C for the forward product and
    for dW, and for dX except for the first convolution (no gradient for the images); the dense layers as an MLP."""
    m, (H, W, C), (F1, F2), k = row.batch_size, CNN_IMAGE, CNN_FILTERS, CNN_KERNEL
    conv1 = 2 * m * H * W * F1 * k * k * C
    conv2 = 2 * m * (H // 2) * (W // 2) * F2 * k * k * F1
    dense = 3 * 2 * m * (H // 4 * W // 4 * F2 * CNN_UNITS + CNN_UNITS * 10)
    return 2 * conv1 + 3 * conv2 + dense


class DiydnnCNN(DiydnnMLP):
    """The CNN in diydnn through its public API, weights loaded from `weights`; training as DiydnnMLP."""

    NAMES = ("conv2d_0", "conv2d_1", "dense_0", "dense_1")

    def __init__(self, weights, optimiser, lr, batch_size, X, y, order_seed):
        import diydnn as dd
        (W1, _), (W2, _), (W3, _), (W4, _) = weights
        self.model = dd.Sequential(
            [dd.Reshape(CNN_IMAGE), dd.Conv2D(W1.shape[3], W1.shape[:2], padding="same"), dd.ReLU(), dd.MaxPool2D(2),
             dd.Conv2D(W2.shape[3], W2.shape[:2], padding="same"), dd.ReLU(), dd.MaxPool2D(2), dd.Flatten(),
             dd.Dense(W3.shape[1]), dd.ReLU(), dd.Dense(W4.shape[1])],
            n_in=math.prod(CNN_IMAGE), rng=np.random.default_rng(0))
        self.model.load_state_dict({f"params/{name}/{key}": a for name, (W, b) in zip(self.NAMES, weights)
                                    for key, a in (("W", W), ("b", b))})
        self._train(dd, optimiser, lr, batch_size, X, y, order_seed)

    def weights(self):
        p = self.model.params
        return [(p[f"{name}/W"].copy(), p[f"{name}/b"].copy()) for name in self.NAMES]


def make_numpy_cnn(*args):
    from handwritten import NumpyCNN
    return _Reference(NumpyCNN, *args)


def make_torch_cnn(*args):
    from handwritten import TorchCNN
    return _Reference(TorchCNN, *args)


CNN_IMPLEMENTATIONS = {"diydnn": DiydnnCNN, "numpy": make_numpy_cnn, "torch": make_torch_cnn}


# Experiment 11's residual CNN (chapter 16): diydnn._10_experiments.resnet(32, (1, 1)), BatchNorm in training mode.
def _resnet_model(seed):
    from diydnn._10_experiments import build_model, resnet
    return build_model({"architecture": resnet(32, (1, 1))}, n_in=784, rng=np.random.default_rng(seed))


def resnet_weights(seed):
    """diydnn's initial parameters of the residual CNN (its initialisers, from `seed`): a dict name -> array."""
    return {name: a.copy() for name, a in _resnet_model(seed).params.items()}


def resnet_flops(row):
    """FLOPs of the matrix products of one step, from diydnn's own count (forward, dW, and dX except for the first
    layer, as cnn_flops counts them)."""
    from diydnn._14_performance import matmul_flops
    return matmul_flops(_resnet_model(0), row.batch_size)


class DiydnnResNet(DiydnnMLP):
    """The residual CNN in diydnn, its parameters loaded from `weights`; training as DiydnnMLP."""

    def __init__(self, weights, optimiser, lr, batch_size, X, y, order_seed):
        import diydnn as dd
        self.model = _resnet_model(0)
        state = self.model.state_dict()              # the running statistics as built (0 and 1, as PyTorch's)
        state.update({f"params/{name}": a for name, a in weights.items()})
        self.model.load_state_dict(state)
        self._train(dd, optimiser, lr, batch_size, X, y, order_seed)

    def weights(self):
        """In TorchResNet.weights()'s order: the kernels, the BatchNorm (gamma, beta), the dense layer."""
        from handwritten import TorchResNet
        p = self.model.params
        return ([(p[f"{name}/W"].copy(),) for name in TorchResNet.CONVS]
                + [(p[f"{name}/gamma"].copy(), p[f"{name}/beta"].copy()) for name in TorchResNet.NORMS]
                + [(p["dense_0/W"].copy(), p["dense_0/b"].copy())])


def make_torch_resnet(*args):
    from handwritten import TorchResNet
    return _Reference(TorchResNet, *args)


RESNET_IMPLEMENTATIONS = {"diydnn": DiydnnResNet, "torch": make_torch_resnet}


@dataclass
class Row:
    widths: tuple
    batch_size: int
    optimiser: str
    lr: float
    make: dict = field(default_factory=lambda: dict(IMPLEMENTATIONS))
    flops: object = None          # flops(row) -> FLOPs of one training step; default: the MLP count
    init: object = None           # init(seed) -> initial weights; default: he_weights(widths, seed)
    title: str = None             # the name's network part; default: the widths joined by "-"
    timed_steps: int = None       # steps timed per round (a part of the epoch, scaled up); default: the epoch

    @property
    def name(self):
        return (self.title or "-".join(map(str, self.widths))) + f"/{self.batch_size} {self.optimiser}"

    @property
    def epoch_steps(self):
        return 60000 // self.batch_size

    @property
    def round_steps(self):
        return min(self.timed_steps or self.epoch_steps, self.epoch_steps)

    @property
    def label(self):
        """The name, plus what was timed when a round is only a part of the epoch."""
        if self.round_steps == self.epoch_steps:
            return self.name
        return f"{self.name} (timed on {self.round_steps} of the {self.epoch_steps} batches, ×{self.epoch_steps / self.round_steps:.1f})"

    def step_flops(self):
        return self.flops(self) if self.flops else mlp_flops(self.widths, self.batch_size)

    def weights(self, seed):
        return self.init(seed) if self.init else he_weights(self.widths, seed)


ROWS = [Row(widths, bs, opt, lr) for widths, bs in [((784, 50, 10), 64), ((784, 256, 128, 10), 128),
                                                    ((784, 512, 512, 10), 128)]
        for opt, lr in [("sgd", 0.05), ("adam", 1e-3)]]
# The CNN: one epoch is 30-50 s per implementation on this machine, so a round times a third of it (156 of the 468
# batches, the same ones for everyone) and the seconds are scaled to the epoch; the table says so.
EXTRA_ROWS = [Row((784, 32, 64, 128, 10), 128, "adam", 1e-3, make=dict(CNN_IMPLEMENTATIONS), flops=cnn_flops,
                  init=cnn_weights, title="cnn-32-64-128", timed_steps=156),
              Row((784, 32, 64, 10), 128, "adam", 1e-3, make=dict(RESNET_IMPLEMENTATIONS), flops=resnet_flops,
                  init=resnet_weights, title="resnet-32-64 (BatchNorm)", timed_steps=156)]
# The residual CNN (BatchNorm, Adam) is compared with PyTorch after the same steps: 9.4e-2 of the largest weight, in
# the BatchNorm shifts (beta), whose gradients are sums over 128*14*14 positions that nearly cancel; diydnn against
# itself with a 1e-7 relative change of the initial weights differs by 8.3e-2 there (the convolutions' kernels by ~1e-2
# both ways), while the first step's gradients agree with PyTorch's to ~1e-5 (tests/test_performance.py).
# Equal results are compared after this many steps. Over a whole epoch float32 round-off is amplified by
# the dynamics (ReLU units flipping, Adam dividing tiny gradients by their own scale): on 784-256-128-10,
# hand-written NumPy against itself with a 1e-7 relative change of the initial weights differs by 1.4e-2
# (SGD) and 0.38 (Adam) of the largest weight after one epoch, as much as diydnn differs from it.
CHECK_STEPS = 20


# ----------------------------------------------------------------------------- workers
def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _worker(conn, row, impl, threads, seed):
    """One implementation of one row in its own process: build, then train an epoch on each request."""
    import diydnn as dd
    dd.set_threads(threads)
    if impl == "torch":
        import torch
        torch.set_num_threads(threads)
    (X, y), _ = dd.load_mnist()
    X = np.ascontiguousarray(X, dtype=np.float32)
    make = lambda: row.make[impl](row.weights(seed), row.optimiser, row.lr, row.batch_size, X, y, seed + 1)
    probe = make()                   # the check of equal results: CHECK_STEPS steps from the common start
    probe.train_steps(CHECK_STEPS)
    probe_weights = probe.weights()
    del probe
    net = make()                     # the timed one
    rss_ready = _rss_mb()
    conn.send("ready")
    while True:
        command = conn.recv()
        if isinstance(command, int):                    # train this many steps, report wall and CPU seconds
            t0, c0 = time.perf_counter(), time.process_time()
            net.train_steps(command)
            conn.send((time.perf_counter() - t0, time.process_time() - c0))
        elif command == "weights":
            conn.send(probe_weights)
        else:
            conn.send({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "rss_ready_mb": rss_ready})
            return


def sgemm_peak(sizes=(512, 1024, 2048), repeats=3):
    """The best float32 matrix-product rate over square sizes, best of `repeats` each: (per wall second,
    per CPU second). On a shared machine the CPU-second rate is the one to compare training with: it does
    not count the time the process waits for a core."""
    rng = np.random.default_rng(0)
    best_wall = best_cpu = 0.0
    for n in sizes:
        A, B = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
        C = np.empty((n, n), dtype=np.float32)
        np.matmul(A, B, out=C)                         # warm up
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            np.matmul(A, B, out=C)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best_wall = max(best_wall, 2 * n ** 3 / wall)
            best_cpu = max(best_cpu, 2 * n ** 3 / max(cpu, 1e-9))
    return best_wall, best_cpu


def have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def benchmark_row(row, impls, rounds, threads, chunks=8, seed=0, say=print):
    """Interleaved rounds for one row; returns a dict of medians and checks."""
    ctx = mp.get_context("spawn")
    workers = {}
    for impl in impls:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, row, impl, threads, seed), daemon=True)
        proc.start()
        workers[impl] = (proc, parent)
    try:
        for impl, (_, conn) in workers.items():
            assert conn.recv() == "ready", impl
        times, cpu_times, peaks = {impl: [] for impl in impls}, {impl: [] for impl in impls}, []
        first_weights = {}
        steps = row.round_steps
        cuts = [steps * c // chunks for c in range(chunks + 1)]
        for r in range(rounds):
            seconds, cpu = {impl: 0.0 for impl in impls}, {impl: 0.0 for impl in impls}
            for c in range(chunks):
                turn = (r + c) % len(impls)
                for impl in impls[turn:] + impls[:turn]:   # rotate who goes first
                    conn = workers[impl][1]
                    conn.send(cuts[c + 1] - cuts[c])
                    wall, cpu_s = conn.recv()
                    seconds[impl] += wall
                    cpu[impl] += cpu_s
            scale = row.epoch_steps / steps                # a part of the epoch timed: scaled to the epoch
            for impl in impls:
                times[impl].append(seconds[impl] * scale)
                cpu_times[impl].append(cpu[impl] * scale)
                if r == 0:                                  # weights after CHECK_STEPS steps from the same start
                    workers[impl][1].send("weights")
                    first_weights[impl] = workers[impl][1].recv()
            peaks.append(sgemm_peak())
            say(f"  round {r + 1}/{rounds}: " + ", ".join(f"{impl} {times[impl][-1]:.3f} s ({cpu_times[impl][-1]:.3f} s CPU)"
                                                         for impl in impls)
                + f"; sgemm {peaks[-1][0] / 1e9:.1f} GFLOP/s ({peaks[-1][1] / 1e9:.1f} per CPU-second)")
        memory = {}
        for impl, (proc, conn) in workers.items():
            conn.send("stop")
            memory[impl] = conn.recv()
    finally:
        for proc, _ in workers.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
    result = {"row": row, "seconds": {k: statistics.median(v) for k, v in times.items()},
              "cpu_seconds": {k: statistics.median(v) for k, v in cpu_times.items()},
              "all_seconds": times, "all_cpu_seconds": cpu_times, "memory": memory,
              "peak": statistics.median(p[0] for p in peaks), "peak_cpu": statistics.median(p[1] for p in peaks),
              "ratios": {}, "cpu_ratios": {}, "weight_gap": {}}
    # ratios per round (the rounds are interleaved: same machine state), then their median
    for other in impls:
        if other != "diydnn" and "diydnn" in impls:
            result["ratios"][other] = statistics.median(a / b for a, b in zip(times["diydnn"], times[other]))
            result["cpu_ratios"][other] = statistics.median(a / b for a, b in zip(cpu_times["diydnn"], cpu_times[other]))
            gap = max(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
                      for pa, pb in zip(first_weights["diydnn"], first_weights[other]) for a, b in zip(pa, pb))
            result["weight_gap"][other] = gap
    steps = row.epoch_steps
    result["gflops"] = {k: steps * row.step_flops() / s / 1e9 for k, s in result["seconds"].items()}
    result["gflops_cpu"] = {k: steps * row.step_flops() / s / 1e9 for k, s in result["cpu_seconds"].items()}
    return result


# ----------------------------------------------------------------------------- report
def _fmt(x, spec):
    return "—" if x is None else format(x, spec)


def _weight_gap(gaps):
    """The gap to hand-written NumPy, or to PyTorch for a row without NumPy (said so)."""
    if "numpy" in gaps:
        return _fmt(gaps["numpy"], ".1e")
    return f"{_fmt(gaps.get('torch'), '.1e')} (PyTorch)" if "torch" in gaps else "—"


KEPT = " (kept from the previous run)"


def kept_rows(previous, results):
    """{row name: its line} of an earlier table (its text) for the rows not rerun now (`--rows` picked some), each
    marked as kept: their seconds and their % of the sgemm peak are that run's."""
    rerun = {res["row"].name for res in results}
    kept = {}
    for line in previous.splitlines():
        line = line.replace(KEPT, "")
        for row in ROWS + EXTRA_ROWS:
            if row.name not in rerun and (line.startswith(f"| {row.name} |") or line.startswith(f"| {row.name} (")):
                kept[row.name] = line.replace(f"| {row.name}", f"| {row.name}{KEPT}", 1)
    return kept


def markdown(results, meta, kept=None):
    lines = [f"Seconds per epoch (60,000 MNIST images, float32), median of {meta['rounds']} rounds, each epoch "
             f"interleaved with the others in {meta['chunks']} pieces; {meta['threads']} BLAS thread(s); sgemm peak "
             f"measured in the same run: {meta['peak'] / 1e9:.0f} GFLOP/s per wall second, "
             f"**{meta['peak_cpu'] / 1e9:.0f} GFLOP/s per CPU second**. {meta['machine']}.", "",
             "| network/batch, optimiser | diydnn | NumPy by hand | PyTorch | diydnn ÷ NumPy (CPU time) "
             "| diydnn ÷ PyTorch (CPU time) | diydnn GFLOP/s per CPU s (% of sgemm peak) "
             f"| peak RSS MB diydnn / NumPy / PyTorch | weights vs NumPy (or PyTorch) after {CHECK_STEPS} steps |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = {}
    for res in results:
        s, ratio, cpu_ratio, mem = res["seconds"], res["ratios"], res["cpu_ratios"], res["memory"]
        g = res["gflops_cpu"].get("diydnn")
        rss = " / ".join(_fmt(mem.get(k, {}).get("peak_rss_mb"), ".0f") for k in ("diydnn", "numpy", "torch"))
        rows[res["row"].name] = (f"| {res['row'].label} | {_fmt(s.get('diydnn'), '.2f')} s | {_fmt(s.get('numpy'), '.2f')} s "
                     f"| {_fmt(s.get('torch'), '.2f')} s | {_fmt(ratio.get('numpy'), '.2f')}× ({_fmt(cpu_ratio.get('numpy'), '.2f')}×) "
                     f"| {_fmt(ratio.get('torch'), '.2f')}× ({_fmt(cpu_ratio.get('torch'), '.2f')}×) "
                     f"| {_fmt(g, '.1f')} ({_fmt(g and 100e9 * g / res['peak_cpu'], '.0f')} %) "
                     f"| {rss} | {_weight_gap(res['weight_gap'])} |")
    rows.update(kept or {})
    lines += [rows[row.name] for row in ROWS + EXTRA_ROWS if row.name in rows]     # in the rows' order
    lines += ["", "Ratios are medians of the per-round ratios (within a round the implementations take turns piece by piece). "
              "Times are wall-clock seconds; in brackets the same ratio in CPU seconds of the process, which does not "
              "count the time spent waiting for a core on a shared machine. "
              "GFLOP/s counts only the matrix products of a step (forward, dW, and dX except for the first layer), "
              "per CPU second, against the sgemm peak per CPU second: the fraction of the peak a step reaches. Peak RSS includes the 188 MB of MNIST "
              "as float32 (and, for PyTorch, its own libraries). The weight column is the largest difference "
              f"after {CHECK_STEPS} steps from the same start, relative to the largest weight (float32 round-off; "
              "over a whole epoch the training dynamics amplify round-off, for NumPy against itself too). "
              "A row timed on part of the epoch (the CNNs) gives the seconds of that part scaled to the 60,000 images. "
              "The residual CNN (experiment 11, with BatchNorm) is compared with PyTorch, as there is no NumPy by hand "
              "for it: its BatchNorm shifts get gradients near zero, which Adam scales up, so its weights differ as "
              "much as diydnn differs from itself after a round-off-sized change of the initial weights. "
              + ("A row marked as kept was not rerun: its numbers are the previous run's, against that run's sgemm "
                 "peak. " if kept else "") +
              "Regenerate with `python benchmarks/bench_training.py --readme README.md`."]
    return "\n".join(lines) + "\n"


def machine_description():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    versions = f"NumPy {np.__version__}"
    try:
        import torch
        versions += f", PyTorch {torch.__version__}"
    except ImportError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {versions}; load average {load:.1f} at the start "
            f"(the machine was shared with other processes)")


def update_readme(readme, table):
    """Replace the text between the README's benchmark markers by the table (atomically)."""
    from diydnn._00_conventions import write_atomically
    text = Path(readme).read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme}: no {README_START} ... {README_END} markers to replace")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + README_START + "\n" + table + README_END + tail
    write_atomically(readme, lambda f: f.write(new.encode()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", help="row names like 784-50-10/64 (all optimisers) or '784-50-10/64 adam'")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads per process (default 1)")
    parser.add_argument("--chunks", type=int, default=8, help="pieces per epoch the implementations take turns on")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", default=str(MEDIA / TABLE_FILE))
    parser.add_argument("--readme", help="README file whose benchmark paragraph to regenerate")
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)        # inherited by the workers, before they load BLAS
    import diydnn as dd
    dd.set_threads(args.threads)
    rows = ROWS + EXTRA_ROWS
    if args.rows:
        rows = [r for r in rows if any(r.name == sel or r.name.split()[0] == sel for sel in args.rows)]
        if not rows:
            parser.error(f"no row matches {args.rows}; rows: {[r.name for r in ROWS + EXTRA_ROWS]}")
    use_torch = have_torch() and not args.no_torch
    machine = machine_description()
    print(machine)
    results = []
    for row in rows:
        impls = [k for k in row.make if k != "torch" or use_torch]
        print(f"{row.name}: {', '.join(impls)}")
        results.append(benchmark_row(row, impls, args.rounds, args.threads, args.chunks))
    meta = {"rounds": args.rounds, "threads": args.threads, "chunks": args.chunks, "machine": machine,
            "peak": statistics.median(r["peak"] for r in results),
            "peak_cpu": statistics.median(r["peak_cpu"] for r in results)}
    out = Path(args.out)
    kept = kept_rows(out.read_text(), results) if args.rows and out.exists() else {}
    table = markdown(results, meta, kept)
    print(table)
    from diydnn._00_conventions import write_atomically
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out, lambda f: f.write(table.encode()))
    if args.readme:
        update_readme(args.readme, table)
    return results


if __name__ == "__main__":
    main()
