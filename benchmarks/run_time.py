"""Benchmark: how long one committed experiment run takes on this machine, trained again in a process of its own.

It reads the settings of a committed run record (notebooks/experiments/records/<record>.json, e.g. resnet_seed0 of
experiment 11 or cnn_32_64_seed0 of experiment 08), trains them again from scratch in this fresh process (MNIST is
loaded before the clock starts), and measures the wall-clock time, the CPU time of the process and its peak resident
set size. Training is deterministic, so with one BLAS thread (the threads the records were written with) the run must
land on the recorded test accuracy exactly: the benchmark checks that, so the time it reports is the time of the run
the notebook shows. With more threads the products round differently and the accuracy may differ a little; it is
printed, not checked.

    python benchmarks/run_time.py resnet_seed0                  # 1 BLAS thread; writes media/time_resnet_seed0.md
    python benchmarks/run_time.py resnet_seed0 --threads 2 --no-write

Run it on a quiet machine (nothing else training); the load average before and after is printed and written. The
notebooks' records were trained on whatever machine and load there was, so their wall-clock times say little about
a quiet one.
The result goes (atomically) to media/time_<record>.md, which the experiment notebook displays and reads.
"""
import argparse
import json
import os
import platform
import resource
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


def report(settings, run, recorded, wall, cpu, rss_mb, threads, loads):
    """The Markdown that media/time_<record>.md holds: one line per figure ("- name: value"), read back by notebooks."""
    import numpy as np
    same = run["test_accuracy"] == recorded
    return (f"One run of `{settings['model_name']}` ({settings['num_epochs']} epochs of "
            f"{60000 - settings['n_val']:,} images), trained in a fresh process by `benchmarks/run_time.py` on "
            f"{time.strftime('%Y-%m-%d')}: {cpu_name()}, {os.cpu_count()} cores, NumPy {np.__version__}.\n\n"
            f"- wall-clock seconds: {wall:.1f}\n- CPU seconds: {cpu:.1f}\n- peak RSS MB: {rss_mb:.0f}\n"
            f"- BLAS threads: {threads}\n- load average (1 min) before / after: {loads[0]:.2f} / {loads[1]:.2f}\n"
            f"- test accuracy: {run['test_accuracy']:.4f} "
            f"({'the record' + chr(39) + 's, exactly' if same else 'the record: ' + format(recorded, '.4f')})\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="a committed run record's name, e.g. resnet_seed0")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1, as the records)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write media/time_<record>.md")
    args = parser.parse_args(argv)
    if os.environ.get("DIYDNN_QUICK", "") not in ("", "0"):
        parser.error("DIYDNN_QUICK is set: the benchmark times the full run; unset it")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    record_path = RECORDS / f"{Path(args.record).stem}.json"
    if not record_path.exists():
        known = ", ".join(sorted(p.stem for p in RECORDS.glob("*.json"))[:8])
        parser.error(f"no run record {record_path} (records there include: {known}, ...)")

    from diydnn._00_conventions import media_dir, write_atomically
    from diydnn._10_experiments import mnist_splits, read_record, run_experiment
    from diydnn._14_performance import set_threads

    record = read_record(record_path)                     # checked: version, keys, settings the library accepts
    settings = record["settings"]
    mnist_splits(settings["n_val"])                       # loaded before the clock starts, as a notebook has it
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="diydnn_run_time_") as runs_dir, set_threads(args.threads):
        wall, cpu = time.perf_counter(), time.process_time()
        run = run_experiment(settings, runs_dir=runs_dir, progress=False, verbose=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()[0]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # kilobytes on Linux
    recorded = record["result"]["test_accuracy"]
    same = run["test_accuracy"] == recorded
    print(f"{settings['model_name']}: test accuracy {run['test_accuracy']:.4f} (record: {recorded:.4f}, "
          f"{'the same' if same else 'DIFFERENT'}); {wall:.1f} s wall-clock, {cpu:.1f} s CPU, peak RSS {rss_mb:.0f} MB; "
          f"{args.threads} BLAS thread(s); load average before {load_before:.2f}, after {load_after:.2f}")
    if args.threads == 1 and not same:
        sys.exit("the run did not reproduce its record: the library changed the numbers since the record was written "
                 "(retrain the records with DIYDNN_RETRAIN=1; nothing written)")
    if not args.no_write:
        text = report(settings, run, recorded, wall, cpu, rss_mb, args.threads, (load_before, load_after))
        path = media_dir() / f"time_{settings['model_name']}.md"
        write_atomically(path, lambda f: f.write(text.encode()))
        print("written:", path)
    return json.dumps({"wall": wall, "cpu": cpu, "rss_mb": rss_mb, "same": same})


if __name__ == "__main__":
    main()
