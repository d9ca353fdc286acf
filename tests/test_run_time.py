"""benchmarks/run_time.py (times one committed run again): its refusals, and the report the notebooks read back.

Nothing here trains on MNIST or measures time; the benchmark's own run checks the recorded accuracy."""
import json
import subprocess
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
    (["resnet_seed0", "--repeats", "0"], "--repeats must be at least 1, got 0"),
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


def _fake_children(monkeypatch, results):
    """subprocess.run replaced: the k-th child 'prints' results[k] (a dict) or fails (None)."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        result = results[len(calls) - 1]
        if result is None:
            return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="Traceback: MemoryError")
        return subprocess.CompletedProcess(cmd, 0, stdout="loading...\n" + json.dumps(result) + "\n", stderr="")
    monkeypatch.setattr(run_time.subprocess, "run", fake_run)
    return calls


@pytest.mark.parametrize("name", ["resnet_fast_seed0", "resnet_scan_16_111_e6_lr0.01_adamw0.05"])   # a dot in a name
def test_repeats_report_the_medians_and_every_run(name, monkeypatch, tmp_path):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)
    from diydnn._10_experiments import read_record
    recorded = read_record(run_time.RECORDS / f"{name}.json")["result"]["test_accuracy"]
    runs = [{"wall": w, "cpu": w - 1, "rss_mb": r, "test_accuracy": recorded}
            for w, r in ((301.0, 540.0), (280.0, 545.0), (290.0, 530.0))]
    calls = _fake_children(monkeypatch, runs)
    import diydnn._00_conventions as conventions
    monkeypatch.setattr(conventions, "media_dir", lambda: tmp_path)
    out = json.loads(run_time.main([name, "--repeats", "3"]))
    assert len(calls) == 3 and all(c[-1] == "--one" and c[2] in (name, f"{name}.json") for c in calls)
    assert out == {"wall": 290.0, "cpu": 289.0, "rss_mb": 545.0, "same": True}
    figures = parse((tmp_path / f"time_{name}.md").read_text())
    assert float(figures["wall-clock seconds"]) == 290.0 and float(figures["peak RSS MB"]) == 545
    assert figures["runs"].startswith("3 (") and figures["runs"].endswith("301.0, 280.0, 290.0")


def test_a_failed_or_different_repeat_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)
    import diydnn._00_conventions as conventions
    monkeypatch.setattr(conventions, "media_dir", lambda: tmp_path)
    good = {"wall": 1.0, "cpu": 1.0, "rss_mb": 1.0, "test_accuracy": 0.5}     # not the record's accuracy
    _fake_children(monkeypatch, [good, None])
    with pytest.raises(SystemExit, match="run 2 of 2 failed"):
        run_time.main(["resnet_fast_seed0", "--repeats", "2"])
    _fake_children(monkeypatch, [good, good])
    with pytest.raises(SystemExit, match="did not reproduce its record"):
        run_time.main(["resnet_fast_seed0", "--repeats", "2"])
    assert list(tmp_path.iterdir()) == []
