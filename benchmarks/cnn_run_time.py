"""Wall-clock time of one full training run of experiment 08's CNN, with the machine's load printed beside it.

Trains the settings of experiment 08 (seed 0 by default) into a scratch folder, exactly as the notebook does
(run_experiment: 6 epochs on 55,000 images, validation every epoch, the test set at the end), and prints the wall and
CPU time, the peak memory of the process and the test accuracy. The notebook's three seeds ran while other jobs
shared the machine; this script is for measuring the time target (at most 5 minutes per run on 2 cores) on a quiet
machine. Training is deterministic, so the accuracy must equal the notebook's run of the same seed.

Run: DIYDNN_THREADS=2 python benchmarks/cnn_run_time.py [seed]
"""
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from diydnn._10_experiments import check_settings, cnn, run_experiment
from diydnn._14_performance import set_threads
from threadpoolctl import threadpool_info

# experiment 08's DEFAULTS in full mode (notebooks/experiments/08_cnn.ipynb, section 1)
SETTINGS = {"architecture": cnn(filters=(32, 64), kernel_size=3, pooling="max", dense=128, batchnorm=True, dropout=0.3),
            "num_epochs": 6, "train_abs_samples": None, "lr": 2e-3, "batch_size": 128, "optimizer": "adam",
            "init": "he", "evals_per_epoch": 1, "schedule": "warmup_cosine", "augment": {"max_shift": 2}}


def main(seed=0):
    set_threads()                                          # DIYDNN_THREADS, default 1
    threads = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
    settings = check_settings({**SETTINGS, "model_name": f"cnn_32_64_seed{seed}", "seed": seed})
    stored = Path(__file__).resolve().parent.parent / "notebooks/experiments/runs" / settings["model_name"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        wall, cpu = time.perf_counter(), time.process_time()
        result = run_experiment(settings, runs_dir=scratch, progress=False, verbose=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"seed {seed}, BLAS threads {threads}: {wall:.0f} s wall ({result['seconds']:.0f} s in run_experiment's "
          f"loop and tests), {cpu:.0f} s CPU, peak RSS {rss:.0f} MB, test accuracy {result['test_accuracy']:.4f}; "
          f"load average before {tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in os.getloadavg())}")
    if (stored / "settings.json").exists() and json.loads((stored / "settings.json").read_text()) == json.loads(json.dumps(settings)):
        notebook = json.loads((stored / "result.json").read_text())["test_accuracy"]
        print(f"the notebook's stored run of this seed: test accuracy {notebook:.4f} "
              f"({'the same' if notebook == result['test_accuracy'] else 'DIFFERENT'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
