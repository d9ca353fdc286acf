"""Chapter 07: Sequential — names, building, params as views, gradient check of a whole model, summary,
config round trip and its errors, state_dict, atomic save/load without pickles, predict."""
import json
import os
import re

import numpy as np
import pytest

from diydnn._00_conventions import check_layer, numerical_gradient
from diydnn._01_dense import Dense, Layer
from diydnn._02_activations import ReLU, Softmax
from diydnn._05_batchnorm import BatchNorm
from diydnn._07_model import LAYER_TYPES, Sequential


def mlp(rng, n_in=None, batchnorm=True, softmax=True):
    layers = [Dense(int(rng.integers(3, 8)))]
    if batchnorm:
        layers.append(BatchNorm())
    layers += [ReLU(), Dense(int(rng.integers(2, 5)))]
    if softmax:
        layers.append(Softmax())
    return Sequential(layers, n_in=n_in, rng=rng)


def train_forwards(model, rng, n=3, m=16):
    """A few training-mode forwards, so that BatchNorm's running statistics move away from 0 and 1."""
    for _ in range(n):
        model.forward(rng.standard_normal((m, model.n_in)).astype(np.float32) * 3 + 1, training=True)


# ---------------------------------------------------------------- names and the layer list

def test_names_by_type_and_position():
    model = Sequential([Dense(4), BatchNorm(), ReLU(), Dense(4), BatchNorm(), ReLU(), Dense(2), Softmax()])
    assert [l.name for l in model.layers] == ["dense_0", "batchnorm_0", "relu_0", "dense_1", "batchnorm_1",
                                              "relu_1", "dense_2", "softmax_0"]


def test_user_names_are_kept_and_counters_skip_them():
    model = Sequential([Dense(4, name="dense_0"), Dense(4), Dense(4, name="out"), ReLU(name="act")])
    assert [l.name for l in model.layers] == ["dense_0", "dense_1", "out", "act"]
    model = Sequential([Dense(4), Dense(4, name="dense_0")])
    assert [l.name for l in model.layers] == ["dense_1", "dense_0"]


def test_names_are_stable_across_identical_architectures():
    a = Sequential([Dense(3), ReLU(), Dense(2)])
    b = Sequential([Dense(3), ReLU(), Dense(2)])
    assert [l.name for l in a.layers] == [l.name for l in b.layers]


@pytest.mark.parametrize("layers, match", [
    ([], "empty"),
    ([Dense(3), "relu"], r"item 1 is 'relu' of type str, not a Layer"),
    ([Dense(3), ReLU], r"item 1 .*not a Layer.*ReLU\(\.\.\.\)"),
    ([Dense(3, name="x"), ReLU(name="x")], r"'x' is used twice"),
    ([Dense(3, name="a/b")], r"'a/b'.*without '/'"),
])
def test_bad_layer_lists_are_refused(layers, match):
    with pytest.raises(ValueError, match=match):
        Sequential(layers)


def test_same_layer_object_twice_is_refused():
    relu = ReLU()
    with pytest.raises(ValueError, match="items 1 and 3 are the same layer object"):
        Sequential([Dense(3), relu, Dense(3), relu])


def test_layers_must_be_a_list():
    with pytest.raises(ValueError, match="list of Layer objects"):
        Sequential(Dense(3))


def test_sequential_is_a_layer():
    assert isinstance(Sequential([ReLU()]), Layer)


# ---------------------------------------------------------------- building

def test_lazy_and_eager_build_give_the_same_weights():
    eager = Sequential([Dense(5), BatchNorm(), ReLU(), Dense(3)], n_in=4, rng=np.random.default_rng(9))
    lazy = Sequential([Dense(5), BatchNorm(), ReLU(), Dense(3)], rng=np.random.default_rng(9))
    assert eager.built and not lazy.built and lazy.params == {}
    lazy.forward(np.ones((2, 4), dtype=np.float32))
    assert lazy.n_in == 4 and eager.params.keys() == lazy.params.keys()
    for k in eager.params:
        np.testing.assert_array_equal(eager.params[k], lazy.params[k])
    assert [l.n_in for l in eager.layers] == [4, 5, 5, 5]


def test_a_built_first_layer_fixes_the_input_width_and_keeps_its_weights():
    first = Dense(6, n_in=3, rng=np.random.default_rng(0))
    W = first.params["W"].copy()
    model = Sequential([first, ReLU(), Dense(2)], rng=np.random.default_rng(1))
    assert model.built and model.n_in == 3
    np.testing.assert_array_equal(model.params["dense_0/W"], W)        # the same weights (now in the flat array)
    assert model.params["dense_0/W"] is first.params["W"]               # and the layer holds the model's array


def test_a_prebuilt_layer_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match=r"dense_1.*built for input width 7.*give width 6"):
        Sequential([Dense(6), Dense(2, n_in=7, rng=np.random.default_rng(0))], n_in=3)


def test_lazy_build_takes_the_dtype_of_the_first_batch():
    model = mlp(np.random.default_rng(2))
    model.forward(np.ones((3, 4)))
    assert all(p.dtype == np.float64 for p in model.params.values())
    model32 = mlp(np.random.default_rng(2), n_in=4)
    assert all(p.dtype == np.float32 for p in model32.params.values())


def test_wrong_input_width_is_a_clear_error():
    model = mlp(np.random.default_rng(3), n_in=4)
    with pytest.raises(ValueError, match=r"width 4.*\(2, 5\)"):
        model.forward(np.ones((2, 5), dtype=np.float32))


# ---------------------------------------------------------------- forward, backward, gradient check

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("batchnorm", [False, True])
def test_gradient_check_of_a_whole_model(seed, batchnorm):
    rng = np.random.default_rng(seed)
    model = mlp(rng, batchnorm=batchnorm)
    m, n = int(rng.integers(3, 7)), int(rng.integers(2, 6))
    X = rng.standard_normal((m, n))
    errors = check_layer(model, X, rng)                               # random upstream gradient, float64
    assert set(errors) == {"X"} | set(model.params)
    assert any(k.startswith("batchnorm_0/") for k in errors) == batchnorm
    if batchnorm:
        # the bias of the Dense before a BatchNorm has gradient exactly 0 in training mode (the batch mean
        # removes any shift), so its relative error is 0/0; check both gradients are 0 instead
        del errors["dense_0/b"]
        Y = model.forward(X, training=True)
        G = rng.standard_normal(Y.shape)
        model.backward(G)
        numeric = numerical_gradient(lambda: float(np.sum(model.forward(X, training=True) * G)),
                                     model.params["dense_0/b"])
        assert np.abs(model.grads["dense_0/b"]).max() < 1e-12 and np.abs(numeric).max() < 1e-8
    assert max(errors.values()) < 1e-6, errors


def test_the_model_gradient_check_can_fail():
    """A layer with a wrong backward inside a model must show up in the model's check."""

    class HalfReLU(ReLU):
        def backward(self, dY):
            return 0.5 * super().backward(dY)

    rng = np.random.default_rng(5)
    model = Sequential([Dense(4), HalfReLU(), Dense(3)], rng=rng)
    errors = check_layer(model, rng.standard_normal((5, 3)), rng)
    assert errors["X"] > 0.1 and errors["dense_0/W"] > 0.1 and errors["dense_1/W"] < 1e-8


def test_forward_and_backward_are_the_layer_loops():
    rng = np.random.default_rng(6)
    model = mlp(rng)
    X = rng.standard_normal((6, 4))
    Y = model.forward(X, training=True)
    G = rng.standard_normal(Y.shape)
    dX = model.backward(G)
    A = X
    for layer in model.layers:
        A = layer.forward(A, training=True)
    dA = G
    for layer in reversed(model.layers):
        dA = layer.backward(dA)
    np.testing.assert_array_equal(Y, A)
    np.testing.assert_array_equal(dX, dA)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(ValueError, match="backward\\(\\) called before forward\\(\\)"):
        Sequential([Dense(3), ReLU()], n_in=2).backward(np.ones((2, 3)))


# ---------------------------------------------------------------- params, grads, state

def test_params_and_state_are_the_layers_own_arrays():
    rng = np.random.default_rng(7)
    model = mlp(rng, n_in=4)
    for layer in model.layers:
        for k, v in layer.params.items():
            assert model.params[f"{layer.name}/{k}"] is v
        for k, v in layer.state.items():
            assert model.state[f"{layer.name}/{k}"] is v
    assert {"batchnorm_0/running_mean", "batchnorm_0/running_var"} <= set(model.state)
    assert {"batchnorm_0/gamma", "batchnorm_0/beta", "dense_0/W", "dense_1/b"} <= set(model.params)


def test_an_in_place_update_through_params_reaches_the_layers():
    rng = np.random.default_rng(8)
    model = mlp(rng, n_in=4)
    Y = model.forward(rng.standard_normal((5, 4)).astype(np.float32), training=True)
    model.backward(rng.standard_normal(Y.shape).astype(np.float32))
    before = {k: v.copy() for k, v in model.params.items()}
    params, grads = model.params, model.grads
    for k in params:
        params[k] -= 0.1 * grads[k]
    for layer in model.layers:
        for k in layer.params:
            np.testing.assert_allclose(layer.params[k], before[f"{layer.name}/{k}"] - 0.1 * layer.grads[k], rtol=1e-6)


def test_grads_are_gathered_fresh_after_each_backward():
    rng = np.random.default_rng(9)
    model = mlp(rng, n_in=4, batchnorm=False)
    X = rng.standard_normal((5, 4)).astype(np.float32)
    for _ in range(2):
        Y = model.forward(X, training=True)
        model.backward(rng.standard_normal(Y.shape).astype(np.float32))
        grads = model.grads
        assert grads.keys() == model.params.keys()
        for layer in model.layers:
            for k in layer.grads:
                assert grads[f"{layer.name}/{k}"] is layer.grads[k]
                assert grads[f"{layer.name}/{k}"].shape == layer.params[k].shape


# ---------------------------------------------------------------- summary

def summary_lines(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def row_count(lines, name):
    rows = [line for line in lines if line.split() and line.split()[0] == name]
    assert len(rows) == 1, (name, lines)
    return int(rows[0].split()[-1].replace(",", ""))


def total(lines, label):
    return int(next(line for line in lines if line.startswith(label + ":")).split()[-1].replace(",", ""))


def test_summary_of_the_mnist_model_counts_by_hand():
    model = Sequential([Dense(50), BatchNorm(), ReLU(), Dense(10)], n_in=784, rng=np.random.default_rng(0))
    lines = summary_lines(model)
    assert row_count(lines, "dense_0") == 784 * 50 + 50
    assert row_count(lines, "batchnorm_0") == 4 * 50       # gamma, beta + running mean, var (as in Keras)
    assert row_count(lines, "relu_0") == 0
    assert row_count(lines, "dense_1") == 50 * 10 + 10
    assert total(lines, "Total params") == 39250 + 200 + 510
    assert total(lines, "Trainable params") == 39250 + 100 + 510
    assert total(lines, "Non-trainable params") == 100
    assert any("(None, 50)" in line and "batchnorm_0 (BatchNorm)" in line for line in lines)
    assert any("(None, 10)" in line and "dense_1 (Dense)" in line for line in lines)


@pytest.mark.parametrize("seed", range(3))
def test_summary_counts_random_architectures(seed):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 30, size=4)]
    layers = []
    for units in widths[1:]:
        layers += [Dense(units), ReLU()]
    lines = summary_lines(Sequential(layers, n_in=widths[0], rng=rng))
    expected = [a * b + b for a, b in zip(widths[:-1], widths[1:])]
    assert [row_count(lines, f"dense_{i}") for i in range(3)] == expected
    assert total(lines, "Total params") == sum(expected) == total(lines, "Trainable params")


def test_summary_needs_a_built_model():
    with pytest.raises(ValueError, match=r"not built.*n_in.*forward"):
        Sequential([Dense(3)]).summary()


# ---------------------------------------------------------------- config

def test_config_is_plain_json_and_round_trips():
    rng = np.random.default_rng(10)
    model = Sequential([Dense(6, init="glorot"), BatchNorm(momentum=0.8), ReLU(), Dense(3), Softmax()],
                       n_in=5, rng=rng)
    config = model.get_config()
    assert isinstance(config, list) and all(isinstance(e, dict) for e in config)
    text = json.dumps(config)
    assert [e["layer"] for e in config] == ["Dense", "BatchNorm", "ReLU", "Dense", "Softmax"]
    assert config[0]["n_in"] == 5 and all("n_in" not in e for e in config[1:])
    assert config[0]["init"] == "glorot" and config[1]["momentum"] == 0.8
    clone = Sequential.from_config(json.loads(text), rng=np.random.default_rng(0))
    assert clone.get_config() == config
    train_forwards(model, rng)
    clone.load_state_dict(model.state_dict())
    X = rng.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))


def test_the_same_config_and_seed_give_the_same_model():
    config = [{"layer": "Dense", "units": 8, "n_in": 3}, {"layer": "BatchNorm"}, {"layer": "ReLU"},
              {"layer": "Dense", "units": 2}]
    a = Sequential.from_config(config, rng=np.random.default_rng(4))
    b = Sequential.from_config(config, rng=np.random.default_rng(4))
    c = Sequential.from_config(config, rng=np.random.default_rng(5))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.params["dense_0/W"], c.params["dense_0/W"])


def test_from_config_without_width_builds_lazily_or_with_n_in():
    config = [{"layer": "Dense", "units": 4}, {"layer": "ReLU"}]
    assert not Sequential.from_config(config).built
    assert Sequential.from_config(config, n_in=6).layers[0].params["W"].shape == (6, 4)


def test_unknown_layer_type_names_the_entry_and_lists_known_types():
    config = [{"layer": "Dense", "units": 4}, {"layer": "GaussianNoise", "stddev": 0.5}]
    with pytest.raises(ValueError) as info:
        Sequential.from_config(config)
    message = str(info.value)
    assert "entry 1" in message and "'GaussianNoise'" in message
    assert all(name in message for name in LAYER_TYPES) and "BatchNorm" in message


@pytest.mark.parametrize("kind", ["Sequential", "Layer", "np", "json", "eval", "__builtins__", "os.system"])
def test_only_the_registry_is_consulted(kind):
    """Names that exist in the module or in Python must not be reachable from a config."""
    with pytest.raises(ValueError, match="unknown layer type"):
        Sequential.from_config([{"layer": kind}])


def test_unknown_argument_names_the_entry_and_lists_accepted_arguments():
    with pytest.raises(ValueError) as info:
        Sequential.from_config([{"layer": "Dense", "units": 4}, {"layer": "BatchNorm", "momentun": 0.9}])
    message = str(info.value)
    assert "entry 1" in message and "'momentun'" in message
    assert all(arg in message for arg in ("'momentum'", "'eps'", "'name'"))
    with pytest.raises(ValueError, match=r"entry 0 \(Dense\).*\['unit'\].*'units'"):
        Sequential.from_config([{"layer": "Dense", "unit": 4}])


def test_rng_is_not_a_config_argument():
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['rng'\]"):
        Sequential.from_config([{"layer": "Dense", "units": 4, "rng": 0}])


@pytest.mark.parametrize("config, match", [
    ([], "non-empty list"),
    ({"layer": "Dense"}, "non-empty list"),
    ([{"units": 3}], r"entry 0 must be a dict with a 'layer' key"),
    (["Dense"], r"entry 0 must be a dict"),
    ([{"layer": "Dense", "units": -2}], r"entry 0 \(Dense\).*units"),
    ([{"layer": "Dense", "units": 4, "n_in": 3}, {"layer": "Dense", "units": 2, "n_in": 5}],
     r"entry 1.*n_in=5.*width 4"),
])
def test_malformed_configs_are_refused(config, match):
    with pytest.raises(ValueError, match=match):
        Sequential.from_config(config)


# ---------------------------------------------------------------- state_dict

def test_state_dict_round_trip_copies_in_place():
    rng = np.random.default_rng(11)
    model = mlp(rng, n_in=4)
    train_forwards(model, rng)
    sd = model.state_dict()
    assert set(sd) == {f"params/{k}" for k in model.params} | {f"state/{k}" for k in model.state}
    assert any(k.startswith("state/batchnorm_0/running_") for k in sd)
    assert all(sd[f"params/{k}"] is not v for k, v in model.params.items())      # copies
    other = mlp(np.random.default_rng(11), n_in=4)
    arrays_before = {k: v for k, v in other.params.items()}
    other.load_state_dict(sd)
    for k, v in other.params.items():
        assert v is arrays_before[k]                                              # the same arrays, filled in
        np.testing.assert_array_equal(v, model.params[k])
    for k in model.state:
        np.testing.assert_array_equal(other.state[k], model.state[k])
    sd["params/dense_0/W"][...] = 123.0                                            # a copy: the model is untouched
    assert not np.any(model.params["dense_0/W"] == 123.0)


def test_load_state_dict_errors_name_keys_and_shapes_and_change_nothing():
    rng = np.random.default_rng(12)
    model = mlp(rng, n_in=4)
    before = model.state_dict()
    missing = model.state_dict()
    del missing["state/batchnorm_0/running_var"]
    with pytest.raises(ValueError, match=r"missing keys \['state/batchnorm_0/running_var'\]"):
        model.load_state_dict(missing)
    extra = {**model.state_dict(), "params/dense_9/W": np.zeros(2)}
    with pytest.raises(ValueError, match=r"unexpected keys \['params/dense_9/W'\]"):
        model.load_state_dict(extra)
    bad = {k: v + 1 for k, v in model.state_dict().items()}        # every value changed ...
    W = bad["params/dense_1/W"]
    bad["params/dense_1/W"] = np.zeros((W.shape[0], W.shape[1] + 1))   # ... and one shape wrong
    expected = f"'params/dense_1/W' has shape {(W.shape[0], W.shape[1] + 1)}, the model's array has shape {W.shape}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():                          # nothing was loaded half
        np.testing.assert_array_equal(v, before[k])


# ---------------------------------------------------------------- save and load

def test_save_load_identical_predictions_with_batchnorm_state(tmp_path):
    rng = np.random.default_rng(13)
    model = mlp(rng, n_in=4)
    train_forwards(model, rng)
    assert not np.allclose(model.state["batchnorm_0/running_mean"], 0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = Sequential.load(path)
    assert loaded.get_config() == model.get_config()
    for k in model.state:
        np.testing.assert_array_equal(loaded.state[k], model.state[k])
    X = rng.standard_normal((9, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert os.listdir(tmp_path) == ["model.npz"]


def test_save_load_keeps_float64(tmp_path):
    rng = np.random.default_rng(14)
    model = mlp(rng)
    X = rng.standard_normal((5, 3))
    model.forward(X, training=True)
    model.save(tmp_path / "m64.npz")
    loaded = Sequential.load(tmp_path / "m64.npz")
    assert loaded.params["dense_0/W"].dtype == np.float64
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_the_file_is_an_npz_without_pickles(tmp_path):
    model = mlp(np.random.default_rng(15), n_in=4)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert data["config"].dtype.kind == "U" and data["config"].shape == ()
        assert json.loads(str(data["config"]))["layers"] == model.get_config()
        assert all(data[k].dtype != object for k in data.files)


def test_an_interrupted_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    rng = np.random.default_rng(16)
    model = mlp(rng, n_in=4)
    path = tmp_path / "model.npz"
    model.save(path)
    before = path.read_bytes()
    W_saved = model.params["dense_0/W"].copy()
    for p in model.params.values():
        p += 1.0                                                    # the next save would write other numbers

    def crashing_savez(file, **arrays):
        file.write(b"PK\x03\x04" + b"\0" * 100)                    # half a zip file, then the crash
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "savez", crashing_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "new.npz")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]                    # no temporary file, no half new file
    reloaded = Sequential.load(path)
    np.testing.assert_array_equal(reloaded.params["dense_0/W"], W_saved)


def test_a_tampered_file_with_an_object_array_is_refused(tmp_path):
    model = mlp(np.random.default_rng(17), n_in=4)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    entries["params/dense_0/b"] = np.array([object()] * entries["params/dense_0/b"].size, dtype=object)
    np.savez(tmp_path / "evil.npz", **entries)
    with pytest.raises(ValueError, match=r"evil\.npz.*allow_pickle=False"):
        Sequential.load(tmp_path / "evil.npz")


def test_load_refuses_files_that_are_not_models(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        Sequential.load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", W=np.zeros(3))
    with pytest.raises(ValueError, match="no 'config' entry"):
        Sequential.load(tmp_path / "b.npz")
    with pytest.raises(FileNotFoundError):
        Sequential.load(tmp_path / "missing.npz")


def test_save_refuses_unregistered_layers_until_registered(tmp_path, monkeypatch):
    class Tanh(Layer):
        def forward(self, X, training=False):
            X = self._check_input(X)
            self._cache = np.tanh(X)
            return self._cache

        def backward(self, dY):
            return dY * (1 - self._cached() ** 2)

    model = Sequential([Dense(3), Tanh(), Dense(2)], n_in=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"tanh_0.*not in LAYER_TYPES"):
        model.save(tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()
    monkeypatch.setitem(LAYER_TYPES, "Tanh", Tanh)
    model.save(tmp_path / "t.npz")
    X = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_array_equal(Sequential.load(tmp_path / "t.npz").predict(X), model.predict(X))


def test_save_needs_a_built_model(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        Sequential([Dense(3)]).save(tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- predict

@pytest.mark.parametrize("batch_size", [1, 3, 16, 50, 64, 1024])
def test_predict_equals_forward_in_inference_mode(batch_size):
    rng = np.random.default_rng(18)
    model = mlp(rng, n_in=4)
    train_forwards(model, rng)
    state_before = {k: v.copy() for k, v in model.state.items()}
    X = rng.standard_normal((50, 4)).astype(np.float32)
    full = model.forward(X, training=False)
    P = model.predict(X, batch_size=batch_size)
    assert P.shape == full.shape and P.dtype == full.dtype
    slices = np.concatenate([model.forward(X[i:i + batch_size]) for i in range(0, 50, batch_size)])
    np.testing.assert_array_equal(P, slices)
    np.testing.assert_allclose(P, full, rtol=1e-5, atol=1e-6)
    if batch_size >= len(X):
        np.testing.assert_array_equal(P, full)
    for k in state_before:                                           # inference mode: statistics untouched
        np.testing.assert_array_equal(model.state[k], state_before[k])


def test_predict_differs_from_training_mode_with_batchnorm():
    """predict must use the running statistics, not the batch's: this would catch training=True."""
    rng = np.random.default_rng(19)
    model = mlp(rng, n_in=4, softmax=False)
    X = rng.standard_normal((20, 4)).astype(np.float32) * 5 + 3
    assert not np.allclose(model.predict(X), model.forward(X, training=True), atol=1e-3)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_predict_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        mlp(np.random.default_rng(0), n_in=4).predict(np.ones((3, 4)), batch_size=batch_size)


@pytest.mark.parametrize("X", [np.ones(4), np.ones((0, 4))], ids=["1-D", "empty"])
def test_predict_rejects_bad_batches(X):
    with pytest.raises(ValueError, match=r"shape \("):
        mlp(np.random.default_rng(0), n_in=4).predict(X)


def test_register_layer_adds_a_class_by_name_and_refuses_clashes(monkeypatch):
    from diydnn._07_model import register_layer
    monkeypatch.setattr("diydnn._07_model.LAYER_TYPES", dict(LAYER_TYPES))
    from diydnn import _07_model

    class Scale(Layer):
        def forward(self, X, training=False):
            return 2 * self._check_input(X)

        def backward(self, dY):
            return 2 * dY

    assert register_layer(Scale) is Scale and _07_model.LAYER_TYPES["Scale"] is Scale
    assert register_layer(Scale) is Scale                      # registering the same class again is harmless
    clash = type("Dense", (Layer,), {})
    with pytest.raises(ValueError, match="'Dense' already belongs"):
        register_layer(clash)
    with pytest.raises(ValueError, match="not a subclass of Layer"):
        register_layer(int)
    model = Sequential.from_config([{"layer": "Dense", "units": 3, "n_in": 2}, {"layer": "Scale"}],
                                   rng=np.random.default_rng(0))
    assert type(model.layers[1]) is Scale


def test_a_model_scans_its_batch_for_nan_once_and_the_loss_refuses_what_grows_inside():
    from diydnn import NonFiniteError, SoftmaxCrossEntropy
    model = Sequential([Dense(4), ReLU(), Dense(2)], n_in=3, rng=np.random.default_rng(0))
    assert [layer.checks_finite for layer in model.layers] == [True, False, False]
    X = np.ones((2, 3), dtype=np.float32)
    X[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"dense_0.*\(2, 3\).*NaN or inf"):
        model.forward(X)                                     # the user's batch: refused, naming the first layer
    model.layers[0].params["W"][...] = 3e38                  # activations overflow to inf inside the model ...
    with np.errstate(over="ignore", invalid="ignore"):
        out = model.forward(np.ones((2, 3), dtype=np.float32))
    assert not np.isfinite(out).all()
    with pytest.raises(NonFiniteError):
        SoftmaxCrossEntropy()(out, np.array([0, 1]))         # ... and the loss refuses the logits
    assert Dense(2).checks_finite                            # a layer on its own still scans its input


@pytest.mark.parametrize("X", [np.array([[1 + 2j, 3.0]]), np.array([["a", "b"]]), np.array([[1.0, None]], dtype=object)],
                         ids=["complex", "text", "object"])
def test_a_batch_that_is_not_real_numbers_is_refused_by_name(X):
    model = Sequential([Dense(2), ReLU(), Dense(2)], n_in=2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"sequential.*real numbers.*dtype {X.dtype}.*\(1, 2\)"):
        model.forward(X)
    with pytest.raises(ValueError, match=rf"dense_0.*real numbers.*dtype {X.dtype}"):
        model.layers[0].forward(X)
    ints = np.array([[0, 255]], dtype=np.uint8)                  # integers (pixels) are still taken, as float32
    assert model.forward(ints).dtype == np.float32
