"""Benchmark: one epoch of MNIST training, diydnn (NumPy) against PyTorch on the CPU.

Same network, initialisation scale, optimiser (Adam 1e-3), batch size and data, float32.
Prints the median over --repeats epochs for each. PyTorch is optional: without it the
script times diydnn alone. Usage:
    .venv/bin/python benchmarks/torch_compare.py [--hidden 512 512] [--batch-size 128] [--repeats 3]
"""
import argparse
import statistics
import time

import numpy as np

import diydnn as dd


def diydnn_epoch_seconds(X, y, hidden, batch_size, repeats):
    rng = np.random.default_rng(0)
    layers = []
    for units in hidden:
        layers += [dd.Dense(units), dd.ReLU()]
    model = dd.Sequential(layers + [dd.Dense(10)], n_in=X.shape[1], rng=rng)
    stream = dd.BatchStream(X, y, batch_size=batch_size, rng=rng)
    loop = dd.Loop(model, dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), dd.Adam(lr=1e-3),
                                       n_steps_per_checkpoint=10 ** 9), progress=False, verbose=False)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop.run(stream.batches_per_epoch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), loop.history.last("train", "loss")


def torch_epoch_seconds(X, y, hidden, batch_size, repeats):
    import torch
    torch.manual_seed(0)
    widths = [X.shape[1], *hidden]
    modules = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        modules += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*modules, torch.nn.Linear(widths[-1], 10))
    for m in net:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        order = torch.from_numpy(rng.permutation(len(X)))
        t0 = time.perf_counter()
        for start in range(0, len(X) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), loss.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    (X, y), _ = dd.load_mnist()
    name = "784-" + "-".join(map(str, args.hidden)) + "-10"
    print(f"{name}, batch {args.batch_size}, {len(X):,} samples per epoch, median of {args.repeats} epochs")
    seconds, loss = diydnn_epoch_seconds(X, y, args.hidden, args.batch_size, args.repeats)
    print(f"  diydnn (NumPy {np.__version__}): {seconds:.2f} s per epoch (last batch loss {loss:.3f})")
    try:
        import torch
    except ImportError:
        print("  PyTorch not installed: `pip install torch==2.13.0` to compare")
        return
    seconds, loss = torch_epoch_seconds(X, y, args.hidden, args.batch_size, args.repeats)
    print(f"  PyTorch {torch.__version__} ({torch.get_num_threads()} threads): {seconds:.2f} s per epoch "
          f"(last batch loss {loss:.3f})")


if __name__ == "__main__":
    main()
