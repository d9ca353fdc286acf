"""Benchmark: how long one committed experiment run takes on this machine, trained again in a process of its own.

It reads the settings of a committed run record (notebooks/experiments/records/<record>.json, e.g. resnet_seed0 of
experiment 11 or cnn_32_64_seed0 of experiment 08), trains them again from scratch in this fresh process (MNIST is
loaded before the clock starts), and measures the wall-clock time, the CPU time of the process and its peak resident
set size. Training is deterministic, so with one BLAS thread (the threads the records were written with) the run must
land on the recorded test accuracy exactly: the benchmark checks that, so the time it reports is the time of the run
the notebook shows. With more threads the products round differently and the accuracy may differ a little; it is
printed, not checked.

    python benchmarks/run_time.py resnet_seed0                  # 1 BLAS thread; writes media/time_resnet_seed0.md
    python benchmarks/run_time.py resnet_seed0 --repeats 3      # three runs, each in a fresh process: the medians
    python benchmarks/run_time.py resnet_seed0 --threads 2 --no-write

Run it on a quiet machine (nothing else training); the load average before and after is printed and written. Even a
quiet virtual machine varies from run to run (its host is shared), so --repeats N trains N times, one after the
other, each in a new process, and reports the median wall-clock and CPU seconds, the largest peak RSS, and every run. The
notebooks' records were trained on whatever machine and load there was, so their wall-clock times say little about
a quiet one.
The result goes (atomically) to media/time_<record>.md, which the experiment notebook displays and reads.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))                 # diydnn from this checkout
RECORDS = ROOT / "notebooks" / "experiments" / "records"


def cpu_name():
    """The processor's model name (Linux), or what platform knows."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def report(settings, run, recorded, wall, cpu, rss_mb, threads, loads, walls=None):
    """The Markdown that media/time_<record>.md holds: one line per figure ("- name: value"), read back by notebooks.
    walls: the wall-clock seconds of each run when there were several (wall and cpu are then their medians)."""
    import numpy as np
    same = run["test_accuracy"] == recorded
    several = walls is not None and len(walls) > 1
    what = (f"{len(walls)} runs" if several else "One run") + f" of `{settings['model_name']}`"
    each = ("each trained in a fresh process, one after the other," if several else "trained in a fresh process")
    runs_line = (f"- runs: {len(walls)} (wall-clock and CPU seconds above are their medians, the peak RSS their "
                 f"largest); wall-clock seconds of each: {', '.join(f'{w:.1f}' for w in walls)}\n" if several else "")
    return (f"{what} ({settings['num_epochs']} epochs of {60000 - settings['n_val']:,} images), {each} by "
            f"`benchmarks/run_time.py` on {time.strftime('%Y-%m-%d')}: {cpu_name()}, {os.cpu_count()} cores, "
            f"NumPy {np.__version__}.\n\n"
            f"- wall-clock seconds: {wall:.1f}\n- CPU seconds: {cpu:.1f}\n- peak RSS MB: {rss_mb:.0f}\n" + runs_line +
            f"- BLAS threads: {threads}\n- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f}\n"
            f"- test accuracy: {run['test_accuracy']:.4f} "
            f"({'the record' + chr(39) + 's, exactly' if same else 'the record: ' + format(recorded, '.4f')})\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="a committed run record's name, e.g. resnet_seed0")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1, as the records)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write media/time_<record>.md")
    parser.add_argument("--repeats", type=int, default=1,
                        help="train this many times, each in a new process, and report the medians (default 1)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)   # a child of --repeats: print JSON only
    args = parser.parse_args(argv)
    if os.environ.get("DIYDNN_QUICK", "") not in ("", "0"):
        parser.error("DIYDNN_QUICK is set: the benchmark times the full run; unset it")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    name = Path(args.record).name                         # a name or a path; names may hold dots (adamw0.05)
    record_path = RECORDS / (name if name.endswith(".json") else f"{name}.json")
    if not record_path.exists():
        known = ", ".join(sorted(p.stem for p in RECORDS.glob("*.json"))[:8])
        parser.error(f"no run record {record_path} (records there include: {known}, ...)")

    from diydnn._00_conventions import media_dir, write_atomically
    from diydnn._10_experiments import read_record

    record = read_record(record_path)                     # checked: version, keys, settings the library accepts
    settings = record["settings"]
    if args.one:                                          # a child of --repeats: one run, its figures as JSON
        print(json.dumps(train_once(settings, args.threads)))
        return None
    load_before = os.getloadavg()[0]
    if args.repeats == 1:
        runs = [train_once(settings, args.threads)]
    else:                                                 # each run in a new process: its own peak RSS, a cold start
        runs = []
        for k in range(args.repeats):
            child = subprocess.run([sys.executable, __file__, record_path.name, "--threads", str(args.threads), "--one"],
                                   capture_output=True, text=True)
            if child.returncode != 0:
                sys.exit(f"run {k + 1} of {args.repeats} failed (nothing written):\n{child.stderr[-2000:]}")
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(f"  run {k + 1} of {args.repeats}: {runs[-1]['wall']:.1f} s wall-clock, {runs[-1]['cpu']:.1f} s CPU, "
                  f"peak RSS {runs[-1]['rss_mb']:.0f} MB, test accuracy {runs[-1]['test_accuracy']:.4f}", flush=True)
    load_after = os.getloadavg()[0]
    wall, cpu = statistics.median(r["wall"] for r in runs), statistics.median(r["cpu"] for r in runs)
    rss_mb = max(r["rss_mb"] for r in runs)
    recorded = record["result"]["test_accuracy"]
    accuracies = {r["test_accuracy"] for r in runs}
    same = accuracies == {recorded}
    median = "median " if len(runs) > 1 else ""
    print(f"{settings['model_name']}: test accuracy {', '.join(f'{a:.4f}' for a in sorted(accuracies))} (record: "
          f"{recorded:.4f}, {'the same' if same else 'DIFFERENT'}); {median}{wall:.1f} s wall-clock, {median}{cpu:.1f} s "
          f"CPU, peak RSS {rss_mb:.0f} MB; {len(runs)} run(s), {args.threads} BLAS thread(s); load average before "
          f"{load_before:.2f}, after {load_after:.2f}")
    if args.threads == 1 and not same:
        sys.exit("the run did not reproduce its record: the library changed the numbers since the record was written "
                 "(retrain the records with DIYDNN_RETRAIN=1; nothing written)")
    if not args.no_write:
        text = report(settings, {"test_accuracy": runs[0]["test_accuracy"]}, recorded, wall, cpu, rss_mb, args.threads,
                      (load_before, load_after), walls=[r["wall"] for r in runs])
        path = media_dir() / f"time_{settings['model_name']}.md"
        write_atomically(path, lambda f: f.write(text.encode()))
        print("written:", path)
    return json.dumps({"wall": wall, "cpu": cpu, "rss_mb": rss_mb, "same": same})


def train_once(settings, threads):
    """Train settings from scratch in this process (MNIST loaded before the clock starts, as a notebook has it):
    wall-clock and CPU seconds, the process's peak RSS in MB, and the test accuracy."""
    from diydnn._10_experiments import mnist_splits, run_experiment
    from diydnn._14_performance import set_threads
    mnist_splits(settings["n_val"])
    with tempfile.TemporaryDirectory(prefix="diydnn_run_time_") as runs_dir, set_threads(threads):
        wall, cpu = time.perf_counter(), time.process_time()
        run = run_experiment(settings, runs_dir=runs_dir, progress=False, verbose=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # kilobytes on Linux
    return {"wall": wall, "cpu": cpu, "rss_mb": rss_mb, "test_accuracy": run["test_accuracy"]}


if __name__ == "__main__":
    main()
