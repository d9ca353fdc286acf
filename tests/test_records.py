"""Run records (chapter 10): written by run_or_load in full mode, read back instead of training, and honest — the
first steps of every committed record train again bit for bit; a tampered, stale or refused record fails with the
command that regenerates it. Also the paired comparison (McNemar) that the records make possible."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from diydnn._02_activations import Softmax
from diydnn._03_cross_entropy import CategoricalCrossEntropy
from diydnn._07_model import Sequential
from diydnn._10_experiments import (RECORD_VERSION, build_model, check_record, mcnemar_exact, mlp, mnist_splits,
                                    model_of, pack_bits, paired_comparison, read_record, run_or_load, unpack_bits)

ROOT = Path(__file__).resolve().parent.parent
RECORDS = sorted((ROOT / "notebooks" / "experiments" / "records").glob("*.json"))
NOTEBOOK_06 = ROOT / "notebooks" / "experiments" / "06_original_bug.py"


from test_experiments import tiny_data  # noqa: E402  (one toy problem for the toolkit's tests)


TINY = {"model_name": "tiny", "architecture": mlp([8]), "num_epochs": 2, "batch_size": 32, "lr": 1e-2,
        "evals_per_epoch": 2, "n_val": 100}


@pytest.fixture
def full_mode(monkeypatch):
    monkeypatch.delenv("DIYDNN_QUICK", raising=False)
    monkeypatch.delenv("DIYDNN_RETRAIN", raising=False)


def _notebook_softmax(name):
    """A Softmax subclass that experiment 06 defines in its notebook (its records name it in their architecture)."""
    source = NOTEBOOK_06.read_text()
    start = source.index(f"class {name}(Softmax):")
    end = source.index("\n\n\n", start)
    namespace = {"Softmax": Softmax, "np": np}
    exec(source[start:end], namespace)            # the class exactly as the notebook defines it
    return namespace[name]


def _builder(settings):
    """(make_model, loss) for a record: None, None for the library's layers; experiment 06's own Softmax classes
    (and its loss on probabilities) for its records."""
    last = settings["architecture"][-1]["layer"]
    if not last.endswith("Softmax"):                # the library's own layers, trained with SoftmaxCrossEntropy
        return None, None
    softmax = _notebook_softmax(last) if last != "Softmax" else Softmax
    body = dict(settings, architecture=settings["architecture"][:-1])

    def make(s, rng):
        core = build_model(body, rng=rng)
        return Sequential([*core.layers, softmax()], n_in=core.n_in, rng=rng)
    return make, CategoricalCrossEntropy()


_DATA = {}


def _mnist(n_val):
    if n_val not in _DATA:
        _DATA[n_val] = mnist_splits(n_val)
    return _DATA[n_val]


@pytest.mark.parametrize("path", RECORDS, ids=[p.stem for p in RECORDS])
def test_committed_record_trains_again_bit_for_bit(path):
    record = json.loads(path.read_text())
    make_model, loss = _builder(record["settings"])
    check_record(path, n_steps=3, data=_mnist(record["settings"]["n_val"]), make_model=make_model, loss=loss)


def test_committed_records_exist_and_are_small():
    assert len(RECORDS) >= 20, [p.name for p in RECORDS]        # experiments 02, 03, 04, 06, 07, 08
    for path in RECORDS:
        assert path.stat().st_size < 64_000, (path.name, path.stat().st_size)
        result = read_record(path)["result"]
        assert result["test_correct"]["n"] in (0, 10_000), path.name   # the full MNIST test set


def test_record_written_read_back_and_retrained_on_request(tmp_path, full_mode, monkeypatch):
    data = tiny_data()
    trained = run_or_load(TINY, runs_dir=tmp_path / "runs", records_dir=tmp_path / "records", data=data)
    path = tmp_path / "records" / "tiny.json"
    assert not trained["loaded"] and path.exists() and read_record(path)["record_version"] == RECORD_VERSION
    correct = unpack_bits(trained["test_correct"]["bits"], trained["test_correct"]["n"])
    assert len(correct) == 100 and math.isclose(correct.mean(), trained["test_accuracy"])
    # a fresh clone: no run folder, only the record
    loaded = run_or_load(TINY, runs_dir=tmp_path / "elsewhere", records_dir=tmp_path / "records", data=data)
    assert loaded["loaded"] and loaded["model"] is None and loaded["test_accuracy"] == trained["test_accuracy"]
    assert loaded["history"].get("val", "accuracy") == trained["history"].get("val", "accuracy")
    # the weights on demand: trained again, the same final weights
    model = model_of(loaded, data=data)
    for key, value in trained["model"].state_dict().items():
        assert np.array_equal(model.state_dict()[key], value), key
    # the record's own check passes
    check_record(path, n_steps=4, data=data)
    # DIYDNN_RETRAIN=1 trains again and rewrites the record
    before = path.stat().st_mtime_ns
    monkeypatch.setenv("DIYDNN_RETRAIN", "1")
    again = run_or_load(TINY, runs_dir=tmp_path / "runs", records_dir=tmp_path / "records", data=data)
    assert not again["loaded"] and path.stat().st_mtime_ns != before


def test_quick_mode_neither_reads_nor_writes_records(tmp_path, full_mode, monkeypatch):
    dirs = {"runs_dir": tmp_path / "runs", "records_dir": tmp_path / "records", "data": tiny_data()}
    run_or_load(TINY, **dirs)
    before = (tmp_path / "records" / "tiny.json").read_bytes()
    monkeypatch.setenv("DIYDNN_QUICK", "1")
    assert not run_or_load(TINY, **dirs)["loaded"]                      # the tests always train
    assert (tmp_path / "records" / "tiny.json").read_bytes() == before
    assert not run_or_load(dict(TINY, model_name="other"), **dirs)["loaded"]
    assert not (tmp_path / "records" / "other.json").exists()


def test_records_of_a_given_runs_dir_stay_inside_it(tmp_path, full_mode):
    run_or_load(TINY, runs_dir=tmp_path / "runs", data=tiny_data())
    assert (tmp_path / "runs" / "_records" / "tiny.json").exists()
    assert run_or_load(TINY, runs_dir=tmp_path / "runs", data=tiny_data())["loaded"]


@pytest.mark.parametrize("tamper, message", [
    (lambda r: r["history"]["train"]["loss"].__setitem__(1, [2, r["history"]["train"]["loss"][1][1] + 1e-9]),
     "gives other numbers .*train loss at step 2"),
    (lambda r: r.__setitem__("record_version", RECORD_VERSION - 1), "has version"),
    (lambda r: r["settings"].__setitem__("lr", -1.0), "refuses its settings"),
    (lambda r: r["settings"].pop("seed"), "not what check_settings makes"),
    (lambda r: r.pop("history"), "is damaged"),
])
def test_tampered_or_stale_record_fails_with_the_command_to_regenerate_it(tmp_path, full_mode, tamper, message):
    data = tiny_data()
    run_or_load(TINY, runs_dir=tmp_path / "runs", records_dir=tmp_path / "records", data=data)
    path = tmp_path / "records" / "tiny.json"
    record = json.loads(path.read_text())
    tamper(record)
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=message) as caught:
        check_record(path, n_steps=4, data=data)
    assert "DIYDNN_RETRAIN=1" in str(caught.value) and "tiny" in str(caught.value)


def test_pack_bits_round_trip_and_size():
    correct = np.random.default_rng(0).random(10_000) < 0.98
    text = pack_bits(correct)
    assert len(text) <= 1_700 and np.array_equal(unpack_bits(text, 10_000), correct)


def test_mcnemar_exact_by_hand():
    # 10 images one way, 2 the other: P[X <= 2] for Binomial(12, 1/2) = (1 + 12 + 66) / 4096, doubled
    assert mcnemar_exact(10, 2) == 2 * 79 / 4096 == mcnemar_exact(2, 10)
    assert mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6) == 2 / 64
    with pytest.raises(ValueError, match="counts"):
        mcnemar_exact(-1, 3)


def _run(name, correct):
    correct = np.asarray(correct, dtype=bool)
    return {"model_name": name, "test_correct": {"n": len(correct), "bits": pack_bits(correct)}}


def test_paired_comparison_by_hand():
    rng = np.random.default_rng(1)
    base = rng.random(1000) < 0.9
    a, b = [], []
    for seed, (n10, n01) in enumerate([(30, 5), (25, 8), (28, 6)]):
        ca, cb = base.copy(), base.copy()
        idx = rng.permutation(1000)
        ca[idx[:n10]], cb[idx[:n10]] = True, False            # A right, B wrong
        ca[idx[n10:n10 + n01]], cb[idx[n10:n10 + n01]] = False, True
        a.append(_run(f"a{seed}", ca)), b.append(_run(f"b{seed}", cb))
    out = paired_comparison(a, b)
    assert [s["n10"] for s in out["seeds"]] == [30, 25, 28] and [s["n01"] for s in out["seeds"]] == [5, 8, 6]
    assert out["seeds"][0]["diff"] == 25 / 1000 and out["seeds"][0]["p"] == mcnemar_exact(30, 5)
    assert (out["n10"], out["n01"]) == (83, 19) and out["verdict"] == "A better"
    assert paired_comparison(b, a)["verdict"] == "B better"
    assert paired_comparison(a, a)["verdict"] == "not shown"          # a recipe against itself: no difference
    with pytest.raises(ValueError, match="not the same test set"):
        paired_comparison(a, [_run("x", base[:500])] * 3)
    with pytest.raises(ValueError, match="per-image"):
        paired_comparison(a, [{"model_name": "old"}] * 3)


def test_extras_are_kept_in_the_record_and_added_to_an_older_record(tmp_path, full_mode):
    data = tiny_data()
    seen = []

    def extras(run):
        seen.append(run["model"] is not None)
        steps, loss = run["history"].steps_values("train", "loss")
        return {"n_loss_points": len(steps), "w_sum": float(np.abs(run["model"].state_dict()["params/dense_0/W"]).sum())}
    dirs = {"runs_dir": tmp_path / "runs", "records_dir": tmp_path / "records", "data": data}
    trained = run_or_load(TINY, extras=extras, **dirs)
    assert trained["extras"]["n_loss_points"] == trained["steps"]             # the full history, not the thinned one
    loaded = run_or_load(TINY, runs_dir=tmp_path / "nowhere", records_dir=tmp_path / "records", data=data,
                         extras=extras)
    assert loaded["extras"] == trained["extras"] and len(seen) == 1           # read, not computed again
    # a record written before the notebook asked for extras: computed once (from the folder here) and kept
    path = tmp_path / "records" / "tiny.json"
    record = json.loads(path.read_text())
    del record["extras"]
    path.write_text(json.dumps(record))
    again = run_or_load(TINY, extras=extras, **dirs)
    assert again["extras"] == trained["extras"] and "extras" in json.loads(path.read_text())
