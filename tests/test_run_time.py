"""benchmarks/run_time.py (times one committed run again): its refusals, and the report the notebooks read back.

Nothing here trains on MNIST or measures time; the benchmark's own run checks the recorded accuracy."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_time  # noqa: E402


def parse(text):
    """What experiment 11 reads of the report: the '- name: value' lines."""
    return dict(line[2:].split(": ", 1) for line in text.splitlines() if line.startswith("- "))


@pytest.mark.parametrize("argv, message", [
    (["no_such_record"], "no run record .*no_such_record.json"),
    (["resnet_seed0", "--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_refuses_bad_arguments_naming_them(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)
    with pytest.raises(SystemExit):
        run_time.main(argv)
    assert __import__("re").search(message, capsys.readouterr().err)


def test_refuses_quick_mode(capsys, monkeypatch):
    monkeypatch.setenv("DIYDNN_QUICK", "1")
    with pytest.raises(SystemExit):
        run_time.main(["resnet_seed0"])
    assert "DIYDNN_QUICK is set" in capsys.readouterr().err


def test_nothing_is_written_when_it_refuses(monkeypatch):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)
    before = sorted(p.name for p in (ROOT / "media").iterdir())
    with pytest.raises(SystemExit):
        run_time.main(["no_such_record"])
    assert sorted(p.name for p in (ROOT / "media").iterdir()) == before


@pytest.mark.parametrize("test_accuracy, says", [(0.9951, "the record's, exactly"), (0.9949, "the record: 0.9951")])
def test_report_holds_the_figures_the_notebook_reads(test_accuracy, says):
    settings = {"model_name": "resnet_seed0", "num_epochs": 15, "n_val": 5000}
    text = run_time.report(settings, {"test_accuracy": test_accuracy}, 0.9951, wall=312.34, cpu=300.06, rss_mb=757.9,
                           threads=1, loads=(0.04, 1.02))
    figures = parse(text)
    assert float(figures["wall-clock seconds"]) == 312.3 and float(figures["CPU seconds"]) == 300.1
    assert float(figures["peak RSS MB"]) == 758 and figures["BLAS threads"] == "1"
    assert figures["load average (1 min) before / after"] == "0.04 / 1.02"
    assert figures["test accuracy"] == f"{test_accuracy:.4f} ({says})"
    assert "15 epochs of 55,000 images" in text
