"""Speed must not change the maths: diydnn equals hand-written NumPy, and reused buffers leave no stale state.

Nothing here measures time. The hand-written reference is the benchmark's (benchmarks/handwritten.py).
"""
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import diydnn as dd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from handwritten import NumpyMLP  # noqa: E402


def small_problem(seed=0, m=96, widths=(12, 16, 8, 3)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], size=m)
    weights = [((rng.standard_normal((a, b)) * np.sqrt(2 / a)).astype(np.float32),
                (0.1 * rng.standard_normal(b)).astype(np.float32)) for a, b in zip(widths[:-1], widths[1:])]
    return X, y, weights


def diydnn_loop(X, y, weights, optimiser, batch_size, order_seed, clip_norm=None):
    layers = []
    for W, _ in weights[:-1]:
        layers += [dd.Dense(W.shape[1]), dd.ReLU()]
    model = dd.Sequential(layers + [dd.Dense(weights[-1][0].shape[1])], n_in=X.shape[1], rng=np.random.default_rng(9))
    model.load_state_dict({f"params/dense_{i}/{k}": a for i, (W, b) in enumerate(weights) for k, a in (("W", W), ("b", b))})
    stream = dd.BatchStream(X, y, batch_size=batch_size, rng=np.random.default_rng(order_seed))
    task = dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), optimiser, n_steps_per_checkpoint=10 ** 6, clip_norm=clip_norm)
    return dd.Loop(model, task, progress=False, verbose=False), stream


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_same_weights_as_handwritten_numpy(name):
    X, y, weights = small_problem()
    batch_size, epochs = 8, 3
    opt = dd.SGD(lr=0.05) if name == "sgd" else dd.Adam(lr=1e-2)
    loop, stream = diydnn_loop(X, y, weights, opt, batch_size, order_seed=5)
    loop.run(epochs * stream.batches_per_epoch)

    ref = NumpyMLP(weights, name, lr=0.05 if name == "sgd" else 1e-2)
    order_rng = np.random.default_rng(5)             # BatchStream draws one permutation per epoch from its rng
    for _ in range(epochs):
        ref.train_epoch(X, y, order_rng.permutation(len(X)), batch_size)
    moved = 0.0
    for i, (W_ref, b_ref) in enumerate(ref.weights()):
        for key, expected in (("W", W_ref), ("b", b_ref)):
            ours = loop.model.params[f"dense_{i}/{key}"]
            assert ours.dtype == np.float32
            np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-5 * np.abs(expected).max())
            moved = max(moved, np.abs(expected - weights[i][0 if key == "W" else 1]).max())
    assert moved > 1e-2       # training changed the weights: the comparison is not of two untouched copies


def test_backward_params_equals_backward_without_dx():
    rng = np.random.default_rng(1)
    model = dd.Sequential([dd.Dense(6), dd.ReLU(), dd.Dense(4), dd.ReLU(), dd.Dense(3)], n_in=5, rng=rng)
    X, G = rng.standard_normal((7, 5)).astype(np.float32), rng.standard_normal((7, 3)).astype(np.float32)
    model.forward(X, training=True)
    dX = model.backward(G)
    full = {k: g.copy() for k, g in model.grads.items()}
    for g in model.grads.values():
        g[...] = np.nan                                  # backward_params must overwrite every gradient
    assert model.backward_params(G) is None
    assert dX.shape == X.shape
    for k, g in model.grads.items():
        np.testing.assert_array_equal(g, full[k])
    # a layer without its own backward_params falls back to backward and drops dX
    relu_first = dd.Sequential([dd.ReLU(), dd.Dense(2)], n_in=3, rng=rng)
    relu_first.forward(np.ones((2, 3), np.float32), training=True)
    assert relu_first.backward_params(np.ones((2, 2), np.float32)) is None


def test_cnn_backward_params_skips_the_pixels_gradient(monkeypatch):
    """A CNN's first Conv2D (after the Reshape of the pixels) fills dW and db only: no col2im scatter, no Reshape backward,
    and the same gradients as the full backward."""
    import diydnn._12_convolution as conv_module
    rng = np.random.default_rng(4)
    model = dd.Sequential([dd.Reshape((6, 6, 1)), dd.Conv2D(3, 3, padding="same"), dd.BatchNorm(), dd.ReLU(),
                           dd.MaxPool2D(2), dd.Conv2D(4, 3, padding="same"), dd.ReLU(), dd.Flatten(), dd.Dense(3)],
                          n_in=36, rng=rng)
    X, G = rng.standard_normal((5, 36)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    model.forward(X, training=True)
    model.backward(G)
    full = {k: g.copy() for k, g in model.grads.items()}
    calls = []
    real_scatter = conv_module.col2im_offsets                # the scatter Conv2D.backward uses
    monkeypatch.setattr(conv_module, "col2im_offsets", lambda *a: calls.append(a[0].shape) or real_scatter(*a))
    monkeypatch.setattr(dd.Reshape, "backward", lambda self, dY: pytest.fail("Reshape.backward was called"))
    model.forward(X, training=True)
    assert model.backward_params(G) is None
    assert len(calls) == 1                           # the second Conv2D needs dX, the first does not
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, full[k], rtol=1e-6, atol=1e-6)


def test_grads_are_reused_buffers_and_nothing_holds_a_stale_one():
    X, y, weights = small_problem(2)
    opt = dd.Adam(lr=1e-2)
    loop, stream = diydnn_loop(X, y, weights, opt, batch_size=16, order_seed=3, clip_norm=0.5)
    loop.run(1)
    before = loop.model.grads
    first = {k: g.copy() for k, g in before.items()}
    loop.run(1)
    after = loop.model.grads
    for k in after:
        assert after[k] is before[k]                     # the same array, overwritten in place
        assert not np.array_equal(after[k], first[k])    # ... with the second step's values
    # the optimiser's own arrays never alias a gradient or a parameter
    own = [a for slot in opt.slots.values() for a in slot.values()]
    for a in own:
        for g in list(after.values()) + list(loop.model.params.values()):
            assert not np.shares_memory(a, g)
    # history holds plain floats, not views of the buffers
    assert all(isinstance(v, float) for _, v in loop.history.get("train", "grad_norm"))
    # clipping scaled the very arrays the optimiser read: with the norm above 0.5, the logged norm is
    # the one before clipping, and the buffers now hold the clipped gradient of norm 0.5
    norm_before = loop.history.last("train", "grad_norm")
    assert norm_before > 0.5
    assert dd.global_norm(after) == pytest.approx(0.5, rel=1e-5)


def test_optimiser_steps_allocate_no_parameter_sized_arrays():
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((300, 200)).astype(np.float32), "b": np.zeros(200, np.float32)}
    grads = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()}
    size = params["W"].nbytes
    for opt in (dd.SGD(lr=0.1), dd.SGD(lr=0.1, momentum=0.9), dd.Adam(), dd.AdamW()):
        opt.step(params, grads)                          # the first step creates slots and the work array
        tracemalloc.start()
        opt.step(params, grads)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < size / 4, f"{opt!r} allocated {peak} bytes in a step (parameters: {size} bytes)"


def test_in_place_adam_matches_the_textbook_formula():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((4, 3))
    W_ref, m, v = W.copy(), np.zeros_like(W), np.zeros_like(W)
    opt = dd.AdamW(lr=0.01, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)
    for t in range(1, 8):
        g = rng.standard_normal(W.shape)
        opt.step({"W": W}, {"W": g})
        m = 0.8 * m + 0.2 * g
        v = 0.95 * v + 0.05 * g * g
        W_ref = W_ref - 0.01 * ((m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.95 ** t)) + 1e-6) + 0.1 * W_ref)
    np.testing.assert_allclose(W, W_ref, rtol=1e-13, atol=0)


def test_clip_uses_a_given_norm_and_float32_norms_do_not_overflow():
    g = {"a": np.full(4, 3.0, np.float32), "b": np.full(3, 4.0, np.float32)}
    assert dd.global_norm(g) == pytest.approx(np.sqrt(4 * 9 + 3 * 16), rel=1e-6)
    huge = {"a": np.full(4, 1e20, np.float32)}          # squares overflow float32; the float64 recount does not
    assert dd.global_norm(huge) == pytest.approx(2e20, rel=1e-6)
    returned = dd.clip_by_global_norm(g, 1.0, norm=10.0)     # told the norm: scales by 1/10 without recounting
    assert returned == 10.0
    np.testing.assert_allclose(g["a"], 0.3, rtol=1e-6)


def test_set_threads_validates_and_caps_blas():
    for bad in (0, -1, 1.5, "two", [2]):
        with pytest.raises(ValueError, match="positive integer"):
            dd.set_threads(bad)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with dd.set_threads(1):
        blas = [info for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
        assert blas and all(info["num_threads"] == 1 for info in blas)


def test_benchmark_counts_flops_like_the_chapter_and_rewrites_only_its_readme_block(tmp_path):
    import bench_training as bench
    for row in bench.ROWS:
        model = dd.Sequential([layer for k in row.widths[1:-1] for layer in (dd.Dense(k), dd.ReLU())]
                              + [dd.Dense(row.widths[-1])], n_in=row.widths[0], rng=np.random.default_rng(0))
        assert row.step_flops() == dd.matmul_flops(model, row.batch_size)
    assert {row.name for row in bench.ROWS} >= {"784-50-10/64 sgd", "784-256-128-10/128 adam", "784-512-512-10/128 adam"}
    cnn_row, = [row for row in bench.EXTRA_ROWS if row.name == "cnn-32-64-128/128 adam"]
    model, _ = diydnn_cnn(cnn_row.weights(0), bench.CNN_IMAGE)         # the benchmark's count = the chapter's
    assert cnn_row.step_flops() == dd.matmul_flops(model, cnn_row.batch_size) > 3e9
    assert cnn_row.round_steps < cnn_row.epoch_steps and "timed on" in cnn_row.label
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench.README_START}\nold table\n{bench.README_END}\noutro\n")
    bench.update_readme(readme, "| new | table |\n")
    assert readme.read_text() == f"intro\n{bench.README_START}\n| new | table |\n{bench.README_END}\noutro\n"
    no_markers = tmp_path / "other.md"
    no_markers.write_text("nothing to replace\n")
    with pytest.raises(ValueError, match="markers"):
        bench.update_readme(no_markers, "x")
    assert no_markers.read_text() == "nothing to replace\n"


def test_a_subclass_with_its_own_backward_is_honoured_by_the_training_step():
    """A Dense variant that changes backward (as the bug zoo's do) must run in training, first layer included."""
    calls = []

    class HalfGradientDense(dd.Dense):
        def backward(self, dY):
            calls.append(self.name)
            dX = super().backward(dY)
            for g in self.grads.values():
                g *= 0.5
            return dX

    rng = np.random.default_rng(7)
    model = dd.Sequential([HalfGradientDense(4), dd.ReLU(), HalfGradientDense(3)], n_in=5, rng=rng)
    X, G = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)
    model.forward(X, training=True)
    model.backward_params(G)
    assert calls == ["halfgradientdense_1", "halfgradientdense_0"]
    halved = {k: g.copy() for k, g in model.grads.items()}
    plain = dd.Sequential([dd.Dense(4), dd.ReLU(), dd.Dense(3)], n_in=5, rng=np.random.default_rng(0))
    plain.load_state_dict({k.replace("halfgradientdense", "dense"): v for k, v in model.state_dict().items()})
    plain.forward(X, training=True)
    plain.backward_params(G)
    for k, g in plain.grads.items():
        np.testing.assert_allclose(halved[k.replace("dense", "halfgradientdense")], 0.5 * g, rtol=1e-6)


def test_the_loop_checks_gradients_for_nan_once_per_step(monkeypatch):
    """The Loop's finite global norm already proves the gradients finite; the optimiser must not scan them again,
    while a direct optimiser.step still does (and still refuses NaN)."""
    import diydnn._06_optimisers as opt
    calls = []
    real = opt._check_finite_gradients
    monkeypatch.setattr(opt, "_check_finite_gradients", lambda grads, who: calls.append(who) or real(grads, who))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)).astype(np.float32), rng.integers(0, 2, 64)
    model = dd.Sequential([dd.Dense(8), dd.ReLU(), dd.Dense(2)], n_in=5, rng=rng)
    task = dd.TrainTask(dd.BatchStream(X, y, batch_size=16, rng=rng), dd.SoftmaxCrossEntropy(), dd.Adam(),
                        n_steps_per_checkpoint=10)
    dd.Loop(model, task, progress=False).run(8)
    assert calls == []
    grads = {k: np.full_like(v, np.nan) for k, v in model.params.items()}
    with pytest.raises(dd.NonFiniteError):
        task.optimizer.step(model.params, grads)
    assert calls == ["Adam"]


def test_integer_labels_give_the_numbers_of_one_hot_rows():
    """SoftmaxCrossEntropy takes integer labels without building a one-hot array; loss and gradient must be
    exactly those of the one-hot rows, for float32 and float64 logits and several label dtypes."""
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64):
        for label_dtype in (np.int64, np.int32, np.uint8, np.int8, np.uint64):
            Z = (rng.standard_normal((37, 7)) * 20).astype(dtype)
            y = rng.integers(0, 7, 37).astype(label_dtype)
            by_label, by_row = dd.SoftmaxCrossEntropy(), dd.SoftmaxCrossEntropy()
            assert by_label(Z, y) == by_row(Z, np.eye(7, dtype=dtype)[y])
            g_label, g_row = by_label.backward(), by_row.backward()
            assert g_label.dtype == g_row.dtype == dtype
            np.testing.assert_array_equal(g_label, g_row)
            np.testing.assert_array_equal(by_label.backward(), g_label)   # backward twice: the same, nothing in place


@pytest.mark.parametrize("label_dtype", ["<i8", ">i8", "i1", "u1", "<u8"])
def test_the_one_pass_label_check_still_names_every_bad_label(label_dtype):
    Z = np.zeros((3, 4), np.float32)
    signed = np.dtype(label_dtype).kind == "i"
    for k, bad in ((4, [4]), (4, [-1] if signed else [9]), (200, [-3] if signed else [250])):
        y = np.array([0, bad[0], 1], dtype=label_dtype)
        with pytest.raises(ValueError, match=rf"labels must lie in \[0, {k}\), got \[{bad[0]}\]"):
            dd.SoftmaxCrossEntropy()(np.zeros((3, k), np.float32), y)
    assert dd.SoftmaxCrossEntropy()(Z, np.array([0, 3, 1], dtype=label_dtype)) > 0


def test_finite_checks_by_dot_product_are_exact():
    """Layers and losses test finiteness with one dot product X.X and fall back to an exact test when it is not
    finite: huge but finite values (whose squares overflow) pass, and NaN, +inf, -inf fail, in any layout."""
    from diydnn._01_dense import _all_finite
    huge = np.full((4, 3), 3e38, np.float32)                 # squares overflow float32, the values are finite
    assert _all_finite(huge) and _all_finite(np.full((4, 3), 1e300))
    for bad in (np.nan, np.inf, -np.inf):
        for dtype in (np.float32, np.float64, np.float16):
            X = np.ones((5, 6), dtype)
            X[3, 2] = bad
            assert not _all_finite(X)
            assert not _all_finite(X[:, ::2] if bad is not np.nan else X.T)     # non-contiguous: the exact test
    assert _all_finite(np.ones((5, 6), np.float16)) and _all_finite(np.ones((2, 3), np.float32).T)
    model = dd.Sequential([dd.Dense(3), dd.ReLU(), dd.Dense(2)], n_in=3, rng=np.random.default_rng(0))
    model.forward(np.full((4, 3), 1e20, np.float32), training=True)   # squares overflow, the input is finite: accepted
    with pytest.raises(dd.NonFiniteError, match="dense_0"):
        model.forward(np.array([[1.0, -np.inf, 0.0]], np.float32))
    with pytest.raises(dd.NonFiniteError, match="predictions of shape"):
        dd.SoftmaxCrossEntropy()(np.array([[0.0, -np.inf]], np.float32), np.array([0]))


def cnn_problem(seed=0, m=16, image=(8, 8, 1), filters=(4, 6), units=8, classes=10):
    """A small batch of images and He-initialised weights for the benchmark's CNN shape, in miniature."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, *image)).astype(np.float32)
    X[:, :, :image[1] // 2] = 0          # a blank half, as MNIST's borders: equal values in pooling windows (ties)
    X = X.reshape(m, -1)
    y = rng.integers(0, classes, size=m)
    (F1, F2), C = filters, image[2]
    flat = image[0] // 4 * image[1] // 4 * F2
    shapes = [(3, 3, C, F1), (3, 3, F1, F2), (flat, units), (units, classes)]
    weights = [((rng.standard_normal(s) * np.sqrt(2 / np.prod(s[:-1]))).astype(np.float32),
                (0.1 * rng.standard_normal(s[-1])).astype(np.float32)) for s in shapes]
    return X, y, weights


def diydnn_cnn(weights, image):
    (W1, _), (W2, _), (W3, _), (W4, _) = weights
    model = dd.Sequential([dd.Reshape(image), dd.Conv2D(W1.shape[3], 3, padding="same"), dd.ReLU(), dd.MaxPool2D(2),
                           dd.Conv2D(W2.shape[3], 3, padding="same"), dd.ReLU(), dd.MaxPool2D(2), dd.Flatten(),
                           dd.Dense(W3.shape[1]), dd.ReLU(), dd.Dense(W4.shape[1])],
                          n_in=int(np.prod(image)), rng=np.random.default_rng(9))
    names = ["conv2d_0", "conv2d_1", "dense_0", "dense_1"]
    model.load_state_dict({f"params/{n}/{k}": a for n, (W, b) in zip(names, weights) for k, a in (("W", W), ("b", b))})
    return model, names


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_cnn_same_weights_as_handwritten_numpy(name):
    """diydnn's CNN (Sequential + TrainTask + Loop) and the benchmark's NumpyCNN agree after a few steps."""
    from handwritten import NumpyCNN
    image, batch_size, steps = (8, 8, 1), 8, 6
    X, y, weights = cnn_problem(image=image)
    model, names = diydnn_cnn(weights, image)
    stream = dd.BatchStream(X, y, batch_size=batch_size, rng=np.random.default_rng(5))
    lr = 0.05 if name == "sgd" else 1e-2
    opt = dd.SGD(lr=lr) if name == "sgd" else dd.Adam(lr=lr)
    task = dd.TrainTask(stream, dd.SoftmaxCrossEntropy(), opt, n_steps_per_checkpoint=10 ** 6)
    dd.Loop(model, task, progress=False, verbose=False).run(steps)

    ref = NumpyCNN(weights, name, lr=lr, image_shape=image)
    order_rng = np.random.default_rng(5)             # BatchStream's permutation per epoch, from the same seed
    per_epoch = len(X) // batch_size
    for epoch in range(steps // per_epoch):
        ref.train_epoch(X, y, order_rng.permutation(len(X)), batch_size)
    assert ref.t == steps
    moved = []
    for name, (W0, b0), (W_ref, b_ref) in zip(names, weights, ref.weights()):
        for key, start, expected in (("W", W0, W_ref), ("b", b0, b_ref)):
            ours = model.params[f"{name}/{key}"]
            assert ours.dtype == np.float32 and ours.shape == expected.shape
            np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-5 * np.abs(expected).max(), err_msg=f"{name}/{key}")
            moved.append(np.abs(expected - start).max())
    assert min(moved) > 1e-3  # every tensor moved: the comparison is not of two untouched copies


def test_matmul_flops_counts_convolutions():
    """Per Conv2D: 2 m H' W' F kh kw C for the forward product and for dW, and for dX except in the first layer with
    parameters (after a Reshape of the pixels there is no dX to compute); Dense as before."""
    m = 5
    model = dd.Sequential([dd.Reshape((8, 6, 2)), dd.Conv2D(4, 3, padding="same"), dd.ReLU(), dd.MaxPool2D(2),
                           dd.Conv2D(3, (3, 2), stride=2, padding="valid"), dd.Flatten(), dd.Dense(7)],
                          n_in=96, rng=np.random.default_rng(0))
    conv1 = 2 * m * 8 * 6 * 4 * 3 * 3 * 2              # output 8x6x4, window 3x3x2
    conv2 = 2 * m * 1 * 1 * 3 * 3 * 2 * 4              # input 4x3x4: output ((4-3)//2+1, (3-2)//2+1) = (1, 1), 3 filters
    dense = 2 * m * 3 * 7
    assert dd.matmul_flops(model, m) == 2 * conv1 + 3 * conv2 + 3 * dense
    mlp = dd.Sequential([dd.Dense(6), dd.ReLU(), dd.Dense(3)], n_in=4, rng=np.random.default_rng(0))
    assert dd.matmul_flops(mlp, m) == 2 * (2 * m * 4 * 6) + 3 * (2 * m * 6 * 3)


def test_benchmark_residual_row_counts_like_the_chapter_and_its_pytorch_twin_computes_the_same_step():
    """The residual CNN row: diydnn's FLOP count, and PyTorch from the same weights gives the same logits and
    gradients (kernels transposed, 'same' stride-2 padding as diydnn pads: 0 on top, 1 below)."""
    import bench_training as bench
    row, = [row for row in bench.EXTRA_ROWS if row.name.startswith("resnet-32-64")]
    assert row.step_flops() == dd.matmul_flops(bench._resnet_model(0), row.batch_size) > 4e9
    torch = pytest.importorskip("torch")
    from handwritten import TorchResNet
    weights = row.weights(0)
    rng = np.random.default_rng(3)
    X, y = rng.random((8, 784), dtype=np.float32), rng.integers(0, 10, 8)
    model = bench._resnet_model(1)                     # other initial weights, then the row's loaded
    state = model.state_dict()
    state.update({f"params/{k}": v for k, v in weights.items()})
    model.load_state_dict(state)
    twin = TorchResNet(weights)
    Z = model.forward(X, training=True)
    loss = dd.SoftmaxCrossEntropy()
    loss.forward(Z, np.eye(10, dtype=np.float32)[y])
    model.backward(loss.backward())
    Zt = twin.net(torch.from_numpy(X))
    torch.nn.functional.cross_entropy(Zt, torch.from_numpy(y)).backward()
    np.testing.assert_allclose(Z, Zt.detach().numpy(), atol=1e-5)
    for name, conv in twin.conv.items():
        g = conv.weight.grad.numpy().transpose(2, 3, 1, 0)
        np.testing.assert_allclose(model.grads[f"{name}/W"], g, atol=1e-4 * np.abs(g).max())
    for name, norm in twin.norm.items():
        np.testing.assert_allclose(model.grads[f"{name}/gamma"], norm.weight.grad.numpy(), atol=1e-5)


def test_benchmark_keeps_the_rows_it_did_not_rerun():
    import bench_training as bench
    cnn, = [row for row in bench.EXTRA_ROWS if row.name == "cnn-32-64-128/128 adam"]
    mlp = bench.ROWS[0]
    previous = (f"| {mlp.name} | 1.00 s | rest |\n| {cnn.label} | 9.00 s | rest |\n| header |\n")
    result = {"row": cnn, "seconds": {"diydnn": 2.0}, "cpu_seconds": {}, "ratios": {}, "cpu_ratios": {}, "memory": {},
              "gflops_cpu": {"diydnn": 1.0}, "peak_cpu": 1e11, "weight_gap": {"torch": 0.5}}
    kept = bench.kept_rows(previous, [result])
    assert kept == {mlp.name: f"| {mlp.name}{bench.KEPT} | 1.00 s | rest |"}     # the rerun row is not kept
    assert bench.kept_rows(kept[mlp.name], [result]) == kept                     # kept twice: marked once
    table = bench.markdown([result], {"rounds": 1, "threads": 1, "chunks": 1, "peak": 1e11, "peak_cpu": 1e11,
                                      "machine": "m"}, kept)
    rows = [line for line in table.splitlines() if line.startswith(f"| {mlp.name}") or line.startswith(f"| {cnn.name}")]
    assert rows[0] == kept[mlp.name] and rows[1].startswith(f"| {cnn.label} | 2.00 s") and "0.5 (PyTorch)" not in rows[1]
    assert rows[1].endswith("| 5.0e-01 (PyTorch) |") and "marked as kept" in table


def test_forward_flops_counts_each_product_once():
    from diydnn._10_experiments import build_model, mlp, resnet
    from diydnn._14_performance import forward_flops
    m = 7
    dense = build_model({"architecture": mlp([100])}, n_in=784, rng=np.random.default_rng(0))
    assert forward_flops(dense, m) == 2 * m * (784 * 100 + 100 * 10)
    # a residual CNN: a training step is forward + dW + dX for every product, less the stem's dX (the first layer)
    net = build_model({"architecture": resnet(8, (1, 1))}, n_in=784, rng=np.random.default_rng(0))
    stem = next(layer for layer in net.layers if layer.params)
    out_h, out_w, F = stem.output_width(stem.n_in)
    stem_forward = 2 * m * out_h * out_w * F * 3 * 3 * 1
    assert 3 * forward_flops(net, m) - stem_forward == dd.matmul_flops(net, m)   # blocks and shortcuts included
