"""Benchmark: the chapter-09 recipe (784-256-128-10, He, Adam 1e-3, batch 128) on full MNIST.

Runs it several times and prints the median wall time, seconds per epoch and test accuracy.
Usage: .venv/bin/python benchmarks/mnist_mlp.py [--repeats 3] [--epochs 12]
Needs the MNIST files (DIYDNN_DATA_DIR, the cache, or a network connection).
"""
import argparse
import statistics
import time

import numpy as np

import diydnn as dd


def one_run(epochs, seed):
    (X_full, y_full), (X_test, y_test) = dd.load_mnist()
    rng = np.random.default_rng(seed)
    (X, y), (X_val, y_val) = dd.train_val_split(X_full, y_full, n_val=5000, rng=rng)
    stream = dd.BatchStream(X, y, batch_size=128, rng=rng)
    model = dd.Sequential([dd.Dense(256), dd.ReLU(), dd.Dense(128), dd.ReLU(), dd.Dense(10)], n_in=784, rng=rng)
    loop = dd.Loop(model, dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), dd.Adam(lr=1e-3),
                                       n_steps_per_checkpoint=stream.batches_per_epoch),
                   eval_tasks=[dd.EvalTask((X_val, y_val), name="val")], progress=False, verbose=False)
    wall = time.perf_counter()
    loop.run(epochs * stream.batches_per_epoch)
    wall = time.perf_counter() - wall
    return wall, dd.accuracy(model.predict(X_test), y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    walls, accs = [], []
    for i in range(args.repeats):
        wall, acc = one_run(args.epochs, seed=2024)
        walls.append(wall)
        accs.append(acc)
        print(f"run {i + 1}: {wall:.1f} s wall, test accuracy {acc:.4f}")
    med = statistics.median(walls)
    print(f"median of {args.repeats}: {med:.1f} s wall for {args.epochs} epochs ({med / args.epochs:.2f} s/epoch, "
          f"{55000 * args.epochs / med:,.0f} samples/s); test accuracy {statistics.median(accs):.4f}")


if __name__ == "__main__":
    main()
