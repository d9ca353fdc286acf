"""Chapters 12-13: the image layers (Conv2D, MaxPool2D, AvgPool2D, GlobalAveragePool, Flatten, Reshape, BatchNorm on
feature maps) under the layer contract, im2col/col2im, the tie rule, models with images, and a tiny CNN that learns.

Add a new image layer to IMAGE_LAYERS (a factory taking an rng) and it gets every contract test below.
"""
import json

import numpy as np
import pytest

import diydnn as dd
from diydnn._10_experiments import build_model, cnn, describe_cnn
from diydnn._10a_panels import settings_from_controls
from diydnn._12_convolution import conv_output_size

IMAGE_LAYERS = {
    "Conv2D-valid-s1": lambda rng: dd.Conv2D(3, 3, rng=rng),
    "Conv2D-valid-s2": lambda rng: dd.Conv2D(2, 3, stride=2, rng=rng),
    "Conv2D-same-s1": lambda rng: dd.Conv2D(3, 3, padding="same", rng=rng),
    "Conv2D-same-s2": lambda rng: dd.Conv2D(2, (2, 3), stride=2, padding="same", rng=rng),
    "Conv2D-nobias": lambda rng: dd.Conv2D(2, 2, use_bias=False, init="glorot", rng=rng),
    "MaxPool2D": lambda rng: dd.MaxPool2D(2),
    "MaxPool2D-overlap": lambda rng: dd.MaxPool2D(3, stride=2),
    "AvgPool2D": lambda rng: dd.AvgPool2D(2),
    "AvgPool2D-s1": lambda rng: dd.AvgPool2D((2, 3), stride=1),
    "GlobalAveragePool": lambda rng: dd.GlobalAveragePool(),
    "Flatten": lambda rng: dd.Flatten(),
    "ReLU": lambda rng: dd.ReLU(),
    # a large eps: see test_layer_contract.py (few values per channel)
    "BatchNorm": lambda rng: dd.BatchNorm(momentum=float(rng.uniform(0.5, 0.99)), eps=0.1),
    # chapter 16's block: identity or (when the channels differ) a 1x1 projection; stride 2 with BatchNorm inside (the
    # shortcut's own BatchNorm, eps 1e-5, is checked on larger maps in test_residual.py)
    "Residual": lambda rng: dd.Residual([dd.Conv2D(2, 3, padding="same", rng=rng), dd.ReLU(),
                                         dd.Conv2D(2, 3, padding="same", rng=rng)]),
    "Residual-s2-bn": lambda rng: dd.Residual([dd.Conv2D(3, 3, stride=2, padding="same", use_bias=False, rng=rng),
                                               dd.BatchNorm(eps=0.1)]),
}


def image_batch(rng, dtype=np.float64):
    """A small random batch (m, H, W, C) with odd and even sizes, at least 3x3 so that every window fits."""
    m, H, W, C = rng.integers(2, 4), rng.integers(3, 8), rng.integers(3, 8), rng.integers(1, 4)
    return rng.standard_normal((m, H, W, C)).astype(dtype)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", IMAGE_LAYERS)
def test_gradient_check_float64_random_upstream(kind, seed):
    rng = np.random.default_rng(seed)
    layer = IMAGE_LAYERS[kind](rng)
    errors = dd.check_layer(layer, image_batch(rng), rng)
    assert set(errors) == {"X"} | set(layer.params)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("kind", IMAGE_LAYERS)
def test_the_gradient_check_catches_a_wrong_backward(kind, monkeypatch):
    """The check above can fail: scale the layer's dX by 1.01 and it must."""
    rng = np.random.default_rng(7)
    layer = IMAGE_LAYERS[kind](rng)
    backward = layer.backward
    monkeypatch.setattr(layer, "backward", lambda dY: 1.01 * backward(dY))
    assert dd.check_layer(layer, image_batch(rng), rng)["X"] > 1e-3


@pytest.mark.parametrize("kind", IMAGE_LAYERS)
def test_params_grads_backward_twice_and_float32(kind):
    rng = np.random.default_rng(1)
    layer = IMAGE_LAYERS[kind](rng)
    X = image_batch(rng, np.float32)
    before = X.copy()
    Y = layer.forward(X, training=True)
    np.testing.assert_array_equal(X, before)                       # forward does not mutate its input
    G = rng.standard_normal(Y.shape).astype(np.float32)
    dX1 = layer.backward(G)
    first = {k: v.copy() for k, v in layer.grads.items()}
    dX2 = layer.backward(G)
    np.testing.assert_array_equal(dX1, dX2)
    assert dX1.shape == X.shape and Y.dtype == np.float32 and dX1.dtype == np.float32
    assert layer.params.keys() == layer.grads.keys()
    for k in layer.params:
        assert layer.grads[k].shape == layer.params[k].shape and layer.params[k].dtype == np.float32
        np.testing.assert_array_equal(first[k], layer.grads[k])
    assert tuple(np.atleast_1d(layer.output_width(X.shape[1:]))) == Y.shape[1:]


@pytest.mark.parametrize("kind", [k for k in IMAGE_LAYERS if k not in ("Flatten", "ReLU", "BatchNorm")])
@pytest.mark.parametrize("bad", [np.zeros((3, 4)), np.zeros((2, 3, 4)), np.zeros((0, 5, 5, 1))], ids=["2-D", "3-D", "empty"])
def test_bad_shape_is_a_clear_error(kind, bad):
    layer = IMAGE_LAYERS[kind](np.random.default_rng(0))
    with pytest.raises(ValueError, match=rf"{layer.name}.*shape \({bad.shape[0]},"):
        layer.forward(bad)


@pytest.mark.parametrize("kind", IMAGE_LAYERS)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_is_a_clear_error(kind, value):
    layer = IMAGE_LAYERS[kind](np.random.default_rng(0))
    X = np.ones((2, 4, 4, 2))
    X[1, 2, 3, 0] = value
    with pytest.raises(dd.NonFiniteError, match=rf"{layer.name}.*\(2, 4, 4, 2\).*NaN or inf"):
        layer.forward(X)


@pytest.mark.parametrize("kind", IMAGE_LAYERS)
def test_backward_errors_name_the_layer(kind):
    rng = np.random.default_rng(0)
    layer = IMAGE_LAYERS[kind](rng)
    with pytest.raises(ValueError, match=rf"{layer.name}.*backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 3, 3, 1)))
    Y = layer.forward(image_batch(rng))
    with pytest.raises(ValueError, match=rf"{layer.name}.*upstream gradient has shape"):
        layer.backward(np.ones((Y.shape[0] + 1, *Y.shape[1:])))


@pytest.mark.parametrize("kind", IMAGE_LAYERS)
def test_config_rebuilds_an_equivalent_layer(kind):
    rng = np.random.default_rng(4)
    layer = IMAGE_LAYERS[kind](rng)
    X = image_batch(rng, np.float32)
    Y = layer.forward(X)
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config                # plain JSON
    clone = type(layer)(**config)
    assert clone.get_config() == config
    clone.forward(X)
    for k in layer.params:
        clone.params[k][...] = layer.params[k]
    for k in layer.state:
        clone.state[k][...] = layer.state[k]
    np.testing.assert_array_equal(clone.forward(X), Y)


def test_built_conv_refuses_another_image_size_naming_both_shapes():
    conv = dd.Conv2D(4, 3, n_in=(8, 8, 1), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"conv2d.*\(m, 8, 8, 1\).*\(2, 9, 8, 1\)"):
        conv.forward(np.zeros((2, 9, 8, 1)))
    with pytest.raises(ValueError, match=r"conv2d.*5x5 kernel does not fit.*\(m, 4, 4, 1\)"):
        dd.Conv2D(4, 5).forward(np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"Dense.*\(3, 3, 2\).*Flatten"):
        dd.Sequential([dd.Conv2D(2, 3), dd.Dense(3)], n_in=(5, 5, 1))
    with pytest.raises(ValueError, match=r"reshape.*\(780,\).*\(28, 28, 1\)"):
        dd.Reshape((28, 28, 1)).forward(np.zeros((2, 780)))


@pytest.mark.parametrize("kwargs", [{"filters": 0}, {"filters": 2, "stride": 0}, {"filters": 2, "padding": "full"},
                                    {"filters": 2, "kernel_size": (2, 2, 2)}, {"filters": 2.5}])
def test_conv_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Conv2D"):
        dd.Conv2D(**kwargs)


def test_conv_equals_the_element_wise_formula():
    """Cross-correlation, element by element, for strides 1 and 2 and both paddings."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 5, 6, 2))
    for stride in (1, 2):
        for padding in ("valid", "same"):
            conv = dd.Conv2D(3, 3, stride=stride, padding=padding, rng=rng)
            conv.build(X.shape[1:], dtype=np.float64)
            conv.params["b"][...] = rng.standard_normal(3)
            Z = conv.forward(X)
            # TensorFlow's rule: the odd zero of "same" padding goes after (for W = 6, stride 2: 0 before, 1 after)
            (_, top, bottom), (_, left, right) = (conv_output_size(5, 3, stride, padding),
                                                  conv_output_size(6, 3, stride, padding))
            if padding == "same":
                assert (top, bottom) == (1, 1) and (left, right) == ((1, 1) if stride == 1 else (0, 1))
            Xp = np.pad(X, ((0, 0), (top, bottom), (left, right), (0, 0)))
            W, b = conv.params["W"], conv.params["b"]
            for i in range(2):
                for r in range(Z.shape[1]):
                    for c in range(Z.shape[2]):
                        window = Xp[i, r * stride:r * stride + 3, c * stride:c * stride + 3, :]
                        np.testing.assert_allclose(Z[i, r, c], np.einsum("uvd,uvdf->f", window, W) + b, atol=1e-12)


def test_he_initialisation_uses_the_fan_in_of_a_window():
    conv = dd.Conv2D(512, 3, n_in=(8, 8, 16), rng=np.random.default_rng(0))
    assert conv.params["W"].shape == (3, 3, 16, 512)
    assert abs(conv.params["W"].std() - np.sqrt(2 / (3 * 3 * 16))) < 0.01 * np.sqrt(2 / (3 * 3 * 16)) * 5


def test_glorot_uses_the_fan_out_of_an_input_value():
    """Keras and PyTorch: fan_out = kh*kw*filters for a kernel (one input value feeds every kernel at kh*kw offsets)."""
    conv = dd.Conv2D(128, 3, init="glorot", n_in=(8, 8, 64), rng=np.random.default_rng(0))
    W = conv.params["W"].astype(np.float64)
    limit = np.sqrt(6 / (9 * 64 + 9 * 128))
    assert np.abs(W).max() <= limit * (1 + 1e-6) and np.abs(W).max() > 0.99 * limit
    assert abs(W.var() / (2 / (9 * 64 + 9 * 128)) - 1) < 0.02


def test_col2im_is_the_transpose_of_im2col():
    rng = np.random.default_rng(5)
    for stride, kh, kw in [(1, 3, 3), (2, 3, 3), (2, 2, 3), (3, 2, 2)]:
        Xp = rng.standard_normal((2, 8, 7, 3))
        out_h, out_w = (8 - kh) // stride + 1, (7 - kw) // stride + 1
        P = rng.standard_normal((2, out_h, out_w, kh, kw, 3))
        view = dd.im2col(Xp, kh, kw, stride, out_h, out_w)
        assert np.shares_memory(view, Xp)                          # a view: no copy
        assert np.isclose(np.sum(view * P), np.sum(Xp * dd.col2im(P, Xp.shape, stride)))


def test_maxpool_tie_goes_to_the_first_maximum_in_row_major_order():
    pool = dd.MaxPool2D(2)
    X = np.array([[1., 1., 0., 5.],
                  [1., 1., 5., 2.]])[None, :, :, None]
    np.testing.assert_array_equal(pool.forward(X)[0, :, :, 0], [[1, 5]])
    dX = pool.backward(np.array([[3., 7.]])[None, :, :, None])[0, :, :, 0]
    np.testing.assert_array_equal(dX, [[3, 0, 0, 7], [0, 0, 0, 0]])
    X2 = np.zeros((1, 2, 2, 1))                                    # all four tied: the top-left wins
    pool.forward(X2)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0], [[1, 0], [0, 0]])
    X3 = np.array([[0., 2.], [2., 2.]])[None, :, :, None]          # tie among the last three: the top-right wins
    pool.forward(X3)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, :, :, 0], [[0, 1], [0, 0]])


def test_batchnorm_on_images_is_per_channel():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, 4, 5, 2)) * 3 + 1
    bn4, bn2 = dd.BatchNorm(), dd.BatchNorm()
    for training in (True, True, False):
        np.testing.assert_allclose(bn4.forward(X, training=training).reshape(-1, 2),
                                   bn2.forward(X.reshape(-1, 2), training=training))
    assert bn4.params["gamma"].shape == (2,) and bn4.n_in == (4, 5, 2)
    G = rng.standard_normal(X.shape)
    bn4.forward(X, training=True); bn2.forward(X.reshape(-1, 2), training=True)
    np.testing.assert_allclose(bn4.backward(G).reshape(-1, 2), bn2.backward(G.reshape(-1, 2)))


def small_cnn(rng=None, n_in=None):
    return dd.Sequential([dd.Reshape((8, 8, 1)), dd.Conv2D(3, 3, padding="same"), dd.BatchNorm(), dd.ReLU(),
                          dd.MaxPool2D(2), dd.Conv2D(4, 3, stride=2, padding="same"), dd.ReLU(), dd.AvgPool2D(1),
                          dd.Flatten(), dd.Dense(3)], n_in=n_in, rng=rng or np.random.default_rng(0))


def test_a_whole_cnn_passes_the_gradient_check():
    rng = np.random.default_rng(6)
    model = small_cnn()
    errors = dd.check_layer(model, rng.standard_normal((4, 64)), rng)
    errors.pop("conv2d_0/b")                                       # exactly zero before a BatchNorm (chapter 07)
    assert max(errors.values()) < 1e-6, errors


def test_sequential_builds_from_an_image_shape_and_summarises_shapes():
    model = dd.Sequential([dd.Conv2D(4, 3), dd.ReLU(), dd.MaxPool2D(2), dd.GlobalAveragePool(), dd.Dense(2)],
                          n_in=(10, 10, 3), rng=np.random.default_rng(0))
    assert model.n_in == (10, 10, 3) and model.output_width((10, 10, 3)) == 2
    lines = []
    model.summary(print_fn=lines.append)
    assert "input: (None, 10, 10, 3)" in lines[0]
    assert any("conv2d_0 (Conv2D)" in line and "(None, 8, 8, 4)" in line and line.split()[-1] == "112" for line in lines)
    assert any("maxpool2d_0" in line and "(None, 4, 4, 4)" in line for line in lines)
    assert model.get_config()[0]["n_in"] == [10, 10, 3]
    clone = dd.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    assert clone.n_in == (10, 10, 3) and clone.get_config() == model.get_config()
    with pytest.raises(ValueError, match=r"sequential.*\(m, 10, 10, 3\).*\(2, 9, 10, 3\)"):
        model.forward(np.zeros((2, 9, 10, 3)))
    with pytest.raises(ValueError, match="input width must be a positive integer"):
        dd.Sequential([dd.Conv2D(2, 3)], n_in=(10, 0, 3))


def test_save_and_load_a_cnn(tmp_path):
    rng = np.random.default_rng(1)
    model = small_cnn(n_in=64)
    X = rng.random((5, 64)).astype(np.float32)
    model.forward(X, training=True)                                # move the running statistics
    model.save(tmp_path / "cnn.npz")
    loaded = dd.Sequential.load(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.get_config() == model.get_config()
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]


def test_toolkit_builds_cnns_and_sliders_round_trip():
    for pooling in ("max", "avg", "stride"):
        arch = cnn(filters=(4, 8), kernel_size=5, pooling=pooling, dense=16, batchnorm=True)
        assert describe_cnn(arch) == {"filters": [4, 8], "kernel_size": 5, "pooling": pooling, "dense": 16,
                                      "batchnorm": True}
        model = build_model({"architecture": arch, "init": "glorot"}, rng=np.random.default_rng(0))
        assert model.output_width(784) == 10
        assert all(layer.init == "glorot" for layer in model.layers if isinstance(layer, (dd.Conv2D, dd.Dense)))
        values = {"filters": 4, "kernel_size": 5, "pooling": pooling, "batchnorm": True, "lr": 1e-3, "batch_size": 64,
                  "train_abs_samples": 1000, "num_epochs": 1, "init": "he", "optimizer": "adam", "clip_on": False,
                  "clip": 5.0}
        assert settings_from_controls({**dd.check_settings({}), "architecture": arch}, values)["architecture"] == arch
    with pytest.raises(ValueError, match="pooling"):
        cnn(pooling="min")


def test_a_tiny_cnn_learns_mnist_in_the_loop(tmp_path):
    """Quick mode: a few hundred MNIST images through the toolkit's run_experiment (Loop, checkpoints, load_model)."""
    from diydnn._10_experiments import load_model, mnist_splits, run_experiment
    train, (X_val, y_val), (X_test, y_test) = mnist_splits()
    data = ((train[0][:600], train[1][:600]), (X_val[:300], y_val[:300]), (X_test[:500], y_test[:500]))
    settings = {"model_name": "tiny_cnn", "architecture": cnn(filters=(8, 16), dense=32), "num_epochs": 3,
                "lr": 3e-3, "batch_size": 32, "seed": 0}
    result = run_experiment(settings, runs_dir=tmp_path, data=data, progress=False, verbose=False)
    losses = result["history"].steps_values("train", "loss")[1]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert result["test_accuracy"] > 0.6, result["test_accuracy"]
    model = load_model(tmp_path / "tiny_cnn")
    assert isinstance(model.layers[1], dd.Conv2D)
    assert abs(dd.accuracy(model.predict(data[2][0]), data[2][1]) - result["test_accuracy"]) < 1e-9


def test_run_experiment_evaluates_cnns_in_smaller_batches(tmp_path, monkeypatch):
    """The peak memory of a CNN run is set by evaluation (patch matrices grow with the batch): 250 images, not 1,000."""
    import diydnn._10_experiments as toolkit
    sizes = []
    real = toolkit.EvalTask

    def recording(*args, **kwargs):
        task = real(*args, **kwargs)
        sizes.append(task.batch_size)
        return task
    monkeypatch.setattr(toolkit, "EvalTask", recording)
    rng = np.random.default_rng(0)
    images = [(rng.random((m, 64), dtype=np.float32), rng.integers(0, 3, m)) for m in (40, 20, 20)]
    toolkit.run_experiment({"model_name": "c", "architecture": cnn(filters=(2,), dense=0, n_classes=3,
                                                                   image_shape=(8, 8, 1)), "batch_size": 20},
                           runs_dir=tmp_path, data=images, progress=False, verbose=False)
    rows = [(x[:, :20], y) for x, y in images]
    toolkit.run_experiment({"model_name": "m", "architecture": [{"layer": "Dense", "units": 3}], "batch_size": 20},
                           runs_dir=tmp_path, data=rows, progress=False, verbose=False)
    assert sizes == [250, 250, 1000, 1000]
