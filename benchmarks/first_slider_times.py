"""Time to first slider: how long Run All of every experiment notebook takes on a fresh clone, in full mode.

A learner clones the repository and presses Run All: the panel is usable once the last cell has run. This script
does the same headless: it clones the repository's HEAD into a temporary folder (so no run folder, cache or venv of
this checkout is there: only what git holds, the run records included), then executes each experiment notebook top
to bottom in full mode (DIYDNN_QUICK unset, DIYDNN_RETRAIN unset) with nbconvert, one at a time, and prints the wall
time of each, with the machine's load average (the machine may be shared). MNIST must be reachable
(DIYDNN_DATA_DIR, the cache, or a network). The browser test (tests/browser/test_learner.py) measures the same in
JupyterLab.

    python benchmarks/first_slider_times.py                     # every experiment notebook
    python benchmarks/first_slider_times.py 07_regularisation 08_cnn
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems of experiment notebooks (default: all)")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("DIYDNN_QUICK", "DIYDNN_RETRAIN")}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="diydnn_clone_") as tmp:
        clone = Path(tmp) / "diydnn"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env["PYTHONPATH"] = str(clone)                       # the clone's diydnn, not this checkout's
        folder = clone / "notebooks" / "experiments"
        stems = args.notebooks or sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))
        times = {}
        for stem in stems:
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            done = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "nbconvert", "--to", "notebook",
                                   "--execute", "--inplace", "--ExecutePreprocessor.timeout=-1", f"{stem}.ipynb"],
                                  cwd=folder, env=env, capture_output=True, text=True)
            times[stem] = time.perf_counter() - t0
            status = "ok" if done.returncode == 0 else f"FAILED: {done.stderr.strip().splitlines()[-1:]}"
            print(f"{stem:20s} Run All {times[stem]:6.1f} s   (load average before: {load:.1f})   {status}", flush=True)
    print(f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} CPUs; "
          f"slowest: {max(times, key=times.get)} {max(times.values()):.1f} s")


if __name__ == "__main__":
    main()
