"""Test configuration for the whole suite (unit tests and notebooks under nbval).

Set here, once, before any test or notebook kernel starts (kernels inherit os.environ):
  - matplotlib draws off-screen;
  - DIYDNN_QUICK=1 shrinks long notebook runs (each still asserts that it learned);
  - DIYDNN_DATA_DIR points the MNIST loader at ../shared/data/mnist (no network);
  - Weights & Biases is disabled, silent, and keeps any files under a git-ignored folder.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ARTIFACTS = ROOT / ".test-artifacts"

os.environ["MPLBACKEND"] = "Agg"
os.environ["DIYDNN_QUICK"] = "1"
os.environ.setdefault("DIYDNN_DATA_DIR", str((ROOT.parent / "shared" / "data" / "mnist").resolve()))
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
for var, sub in (("WANDB_DIR", "wandb"), ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_CONFIG_DIR", "wandb-config"),
                 ("WANDB_DATA_DIR", "wandb-data")):
    os.environ[var] = str(ARTIFACTS / sub)
    (ARTIFACTS / sub).mkdir(parents=True, exist_ok=True)
