"""Chapter 16's Residual block: y = shortcut(x) + F(x), a layer that holds layers.

Gradient checks (float64, random upstream gradients) that fail on a block forgetting the identity's gradient, the
config registry and save/load, a hand-written NumPy residual network with the same weights, and training through Loop
with each optimiser (nested parameters, BatchNorm state inside a block).
"""
import json

import numpy as np
import pytest

import diydnn as dd
from diydnn._14_performance import flat_params


def block(kind, rng):
    """Residual blocks on images: identity, projection with a stride, BatchNorm inside and on the shortcut, nested."""
    if kind == "identity":
        return dd.Residual([dd.Conv2D(3, 3, padding="same", rng=rng), dd.ReLU(),
                            dd.Conv2D(3, 3, padding="same", rng=rng)], shortcut="auto")
    if kind == "projection-s2-bn":
        return dd.Residual([dd.Conv2D(4, 3, stride=2, padding="same", use_bias=False, rng=rng),
                            dd.BatchNorm(eps=0.1), dd.ReLU(),
                            dd.Conv2D(4, 3, padding="same", use_bias=False, rng=rng), dd.BatchNorm(eps=0.1)],
                           shortcut_bn=True)
    if kind == "projection-forced":
        return dd.Residual([dd.Conv2D(3, 3, padding="same", rng=rng)], shortcut="projection")
    if kind == "nested":
        inner = dd.Residual([dd.Conv2D(3, 3, padding="same", rng=rng), dd.ReLU()])
        return dd.Residual([dd.Conv2D(3, 1, rng=rng), inner, dd.AvgPool2D(1)])
    raise KeyError(kind)


KINDS = ["identity", "projection-s2-bn", "projection-forced", "nested"]


def images(rng, m=3, H=6, W=5, C=3, dtype=np.float64):
    return rng.standard_normal((m, H, W, C)).astype(dtype)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", KINDS)
def test_gradient_check_float64_random_upstream(kind, seed):
    rng = np.random.default_rng(seed)
    layer = block(kind, rng)
    errors = dd.check_layer(layer, images(rng, C=int(rng.integers(1, 4))), rng)
    assert set(errors) == {"X"} | set(layer.params)
    assert max(errors.values()) < 1e-7, errors


def test_the_gradient_check_fails_on_a_block_that_forgets_the_identity():
    """The derived backward is dX = dY + F.backward(dY); leave out dY and the check must fail on X only."""

    class Forgetful(dd.Residual):
        def backward(self, dY):
            dX = dY
            for layer in reversed(self.layers):
                dX = layer.backward(dX)
            return dX

    rng = np.random.default_rng(3)
    bad = Forgetful([dd.Conv2D(3, 3, padding="same", rng=rng), dd.ReLU(), dd.Conv2D(3, 3, padding="same", rng=rng)])
    errors = dd.check_layer(bad, images(rng), rng)
    assert errors["X"] > 0.1, errors
    assert max(v for k, v in errors.items() if k != "X") < 1e-7   # the parameters' gradients are still right


def test_identity_and_projection_are_chosen_from_the_shapes():
    rng = np.random.default_rng(0)
    same = dd.Residual([dd.Conv2D(3, 3, padding="same")], n_in=(6, 6, 3), rng=rng)
    assert same.projection == []
    wider = dd.Residual([dd.Conv2D(5, 3, stride=2, padding="same")], n_in=(7, 7, 3), rng=rng)
    conv = wider.projection[0]
    assert isinstance(conv, dd.Conv2D) and conv.kernel_size == (1, 1) and conv.stride == 2 and not conv.use_bias
    assert wider.output_width((7, 7, 3)) == (4, 4, 5) and "shortcut_conv/W" in wider.params
    rows = dd.Residual([dd.Dense(4)], n_in=6, rng=rng)
    assert isinstance(rows.projection[0], dd.Dense) and rows.forward(np.ones((2, 6))).shape == (2, 4)
    with pytest.raises(ValueError, match=r"residual.*identity shortcut needs the same shape"):
        dd.Residual([dd.Conv2D(5, 3, padding="same")], shortcut="identity", n_in=(6, 6, 3))
    with pytest.raises(ValueError, match=r"no 1x1 convolution"):
        dd.Residual([dd.Conv2D(3, 3)], n_in=(6, 6, 3))           # 'valid': 6x6 -> 4x4, no 1x1 stride does that
    with pytest.raises(ValueError, match=r"shortcut must be one of"):
        dd.Residual([dd.ReLU()], shortcut="sum")
    with pytest.raises(ValueError, match=r"layers must be a list"):
        dd.Residual(dd.ReLU())
    with pytest.raises(ValueError, match=r"reserved for the shortcut"):
        dd.Residual([dd.ReLU(name="shortcut_conv")])
    with pytest.raises(ValueError, match=r"layers\[0\].*unknown layer type 'Conv3D'"):
        dd.Residual([{"layer": "Conv3D", "filters": 2}])


def test_training_flag_reaches_the_inner_batchnorm():
    rng = np.random.default_rng(1)
    res = dd.Residual([dd.Conv2D(2, 3, padding="same", use_bias=False), dd.BatchNorm()], n_in=(5, 5, 2), rng=rng)
    X = images(rng, H=5, W=5, C=2, dtype=np.float32) + 3.0
    before = res.state["batchnorm_0/running_mean"].copy()
    res.forward(X, training=False)
    np.testing.assert_array_equal(res.state["batchnorm_0/running_mean"], before)
    res.forward(X, training=True)
    assert not np.array_equal(res.state["batchnorm_0/running_mean"], before)


def small_model(rng, dtype_n_in=(8, 8, 1)):
    return dd.Sequential([dd.Reshape(dtype_n_in), dd.Conv2D(4, 3, padding="same", use_bias=False), dd.BatchNorm(),
                          dd.ReLU(),
                          dd.Residual([dd.Conv2D(4, 3, padding="same", use_bias=False), dd.BatchNorm(), dd.ReLU(),
                                       dd.Conv2D(4, 3, padding="same", use_bias=False), dd.BatchNorm()]),
                          dd.ReLU(),
                          dd.Residual([dd.Conv2D(6, 3, stride=2, padding="same", use_bias=False), dd.BatchNorm(),
                                       dd.ReLU(), dd.Conv2D(6, 3, padding="same", use_bias=False), dd.BatchNorm()],
                                      shortcut_bn=True),
                          dd.ReLU(), dd.GlobalAveragePool(), dd.Dense(2)],
                         n_in=int(np.prod(dtype_n_in)), rng=rng)


def test_nested_names_state_dict_save_and_load(tmp_path):
    rng = np.random.default_rng(2)
    model = small_model(rng)
    X = rng.standard_normal((16, 64)).astype(np.float32)
    for _ in range(3):
        model.forward(X, training=True)                   # moves the running statistics inside the blocks
    keys = model.state_dict().keys()
    assert {"params/residual_0/conv2d_0/W", "params/residual_1/shortcut_conv/W", "params/residual_1/shortcut_bn/gamma",
            "state/residual_0/batchnorm_0/running_mean", "state/residual_1/shortcut_bn/running_var"} <= keys
    model.save(tmp_path / "res.npz")
    loaded = dd.Sequential.load(tmp_path / "res.npz")
    assert loaded.get_config() == model.get_config()
    assert json.loads(json.dumps(model.get_config())) == model.get_config()     # plain JSON
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # a block holding a layer class that is not registered cannot be saved: load() could not rebuild it
    class Unregistered(dd.ReLU):
        pass
    bad = dd.Sequential([dd.Residual([Unregistered()])], n_in=3)
    with pytest.raises(ValueError, match=r"not in LAYER_TYPES"):
        bad.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_summary_and_model_summary(capsys):
    model = small_model(np.random.default_rng(0))
    model.summary()
    model.layers[6].summary()
    out = capsys.readouterr().out
    assert "residual_1 (Residual)" in out and "shortcut_conv (Conv2D)" in out and "shortcut (identity)" not in out
    model.layers[4].summary()
    assert "shortcut (identity)" in capsys.readouterr().out


# ---- a hand-written NumPy residual network with the same weights ---------------------------------------------------

def conv_same(X, W, stride):
    """'same' convolution by a loop over the kernel offsets (no im2col), and its backward."""
    m, H, Wd, C = X.shape
    k = W.shape[0]
    oh, ow = -(-H // stride), -(-Wd // stride)
    th, tw = max((oh - 1) * stride + k - H, 0), max((ow - 1) * stride + k - Wd, 0)
    Xp = np.pad(X, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    Z = sum(Xp[:, u:u + stride * oh:stride, v:v + stride * ow:stride, :] @ W[u, v] for u in range(k) for v in range(k))

    def backward(dZ):
        dXp, dW = np.zeros_like(Xp), np.zeros_like(W)
        for u in range(k):
            for v in range(k):
                window = Xp[:, u:u + stride * oh:stride, v:v + stride * ow:stride, :]
                dW[u, v] = np.einsum("irch,ircf->hf", window, dZ)
                dXp[:, u:u + stride * oh:stride, v:v + stride * ow:stride, :] += dZ @ W[u, v].T
        return dXp[:, th // 2:th // 2 + H, tw // 2:tw // 2 + Wd, :], dW
    return Z, backward


def hand_network(X, w, G):
    """conv - relu - [x + conv(relu(conv x))] - relu - [conv1x1_s2(x) + conv(relu(conv_s2 x))] - GAP - dense.
    Returns the output and the gradients of sum(output * G) for X and every weight."""
    z1, b1 = conv_same(X, w["c1"], 1)
    a1 = np.maximum(z1, 0)
    z2, b2 = conv_same(a1, w["r1a"], 1)
    h2 = np.maximum(z2, 0)
    z3, b3 = conv_same(h2, w["r1b"], 1)
    y1 = a1 + z3                                       # identity shortcut
    a2 = np.maximum(y1, 0)
    z4, b4 = conv_same(a2, w["r2a"], 2)
    h4 = np.maximum(z4, 0)
    z5, b5 = conv_same(h4, w["r2b"], 1)
    p, bp = conv_same(a2, w["proj"], 2)                # 1x1 projection, stride 2
    y2 = p + z5
    g = y2.mean(axis=(1, 2))
    out = g @ w["dW"] + w["db"]
    grads = {"dW": g.T @ G, "db": G.sum(axis=0)}
    dy2 = np.broadcast_to((G @ w["dW"].T)[:, None, None, :] / (y2.shape[1] * y2.shape[2]), y2.shape)
    da2_proj, grads["proj"] = bp(dy2)
    dh4, grads["r2b"] = b5(dy2)
    da2_f, grads["r2a"] = b4(dh4 * (z4 > 0))
    dy1 = (da2_proj + da2_f) * (y1 > 0)
    dh2, grads["r1b"] = b3(dy1)
    da1_f, grads["r1a"] = b2(dh2 * (z2 > 0))
    dz1 = (dy1 + da1_f) * (z1 > 0)                     # the identity's gradient adds
    grads["X"], grads["c1"] = b1(dz1)
    return out, grads


def test_against_a_hand_written_numpy_residual_network():
    rng = np.random.default_rng(4)
    model = dd.Sequential([
        dd.Conv2D(3, 3, padding="same", use_bias=False), dd.ReLU(),
        dd.Residual([dd.Conv2D(3, 3, padding="same", use_bias=False), dd.ReLU(),
                     dd.Conv2D(3, 3, padding="same", use_bias=False)]),
        dd.ReLU(),
        dd.Residual([dd.Conv2D(5, 3, stride=2, padding="same", use_bias=False), dd.ReLU(),
                     dd.Conv2D(5, 3, padding="same", use_bias=False)]),
        dd.GlobalAveragePool(), dd.Dense(4)], rng=rng)
    X = rng.standard_normal((2, 7, 6, 2))
    Y = model.forward(X, training=True)                # builds in float64
    w = {"c1": model.params["conv2d_0/W"], "r1a": model.params["residual_0/conv2d_0/W"],
         "r1b": model.params["residual_0/conv2d_1/W"], "r2a": model.params["residual_1/conv2d_0/W"],
         "r2b": model.params["residual_1/conv2d_1/W"], "proj": model.params["residual_1/shortcut_conv/W"],
         "dW": model.params["dense_0/W"], "db": model.params["dense_0/b"]}
    w["db"][...] = rng.standard_normal(4)
    Y = model.forward(X, training=True)
    G = rng.standard_normal(Y.shape)
    dX = model.backward(G)
    out, grads = hand_network(X, w, G)
    np.testing.assert_allclose(Y, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dX, grads["X"], rtol=1e-10, atol=1e-12)
    names = {"c1": "conv2d_0/W", "r1a": "residual_0/conv2d_0/W", "r1b": "residual_0/conv2d_1/W",
             "r2a": "residual_1/conv2d_0/W", "r2b": "residual_1/conv2d_1/W", "proj": "residual_1/shortcut_conv/W",
             "dW": "dense_0/W", "db": "dense_0/b"}
    for hand, key in names.items():
        np.testing.assert_allclose(model.grads[key], grads[hand], rtol=1e-10, atol=1e-12, err_msg=key)


# ---- training through Loop ----------------------------------------------------------------------------------------

def blobs(rng, m=192):
    """8x8 images: class 0 has a bright 3x3 blob in the left half, class 1 in the right half, plus noise."""
    y = rng.integers(0, 2, m)
    X = 0.3 * rng.standard_normal((m, 8, 8)).astype(np.float32)
    for i in range(m):
        r, c = rng.integers(0, 6), rng.integers(0, 2) + 4 * y[i]
        X[i, r:r + 3, c:c + 2] += 2.0
    return X.reshape(m, 64), y


OPTIMIZERS = {"sgd-momentum": lambda: dd.SGD(lr=0.05, momentum=0.9), "adam": lambda: dd.Adam(lr=3e-3),
              "adamw": lambda: dd.AdamW(lr=3e-3, weight_decay=1e-2)}


def residual_loop(optimizer, output_dir, seed=5):
    rng = np.random.default_rng(seed)
    X, y = blobs(np.random.default_rng(0))
    model = small_model(rng)
    task = dd.TrainTask(dd.BatchStream(X, y, batch_size=32, rng=rng), dd.SoftmaxCrossEntropy(), OPTIMIZERS[optimizer](),
                        n_steps_per_checkpoint=30, clip_norm=5.0)
    return dd.Loop(model, task, eval_tasks=[dd.EvalTask((X, y))], output_dir=output_dir, progress=False, verbose=False)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_tiny_residual_cnn_trains_through_loop(optimizer, tmp_path):
    loop = residual_loop(optimizer, tmp_path / "run")
    model = loop.model
    assert flat_params(model) is None      # a model holding a block is not packed: the optimiser's per-array path
    W_before = model.params["residual_1/conv2d_1/W"].copy()
    mean_before = model.state["residual_0/batchnorm_0/running_mean"].copy()
    history = loop.run(90)
    losses = [v for _, v in history.get("train", "loss")]
    assert np.mean(losses[-15:]) < 0.5 * np.mean(losses[:15]), (losses[:15], losses[-15:])
    assert history.last("eval", "accuracy") > 0.9
    assert not np.array_equal(model.params["residual_1/conv2d_1/W"], W_before)      # nested weights were updated
    assert not np.array_equal(model.state["residual_0/batchnorm_0/running_mean"], mean_before)
    # resumed from the checkpoint, with another seed: every nested parameter, state and optimiser slot comes back
    resumed = residual_loop(optimizer, tmp_path / "run", seed=99)
    assert resumed.step == 90
    for k in model.params:
        np.testing.assert_array_equal(resumed.model.params[k], model.params[k])
    for k in model.state:
        np.testing.assert_array_equal(resumed.model.state[k], model.state[k])
    resumed.run(120)
    loop.run(120)
    for k in model.params:
        np.testing.assert_array_equal(resumed.model.params[k], model.params[k])
