"""Property-based tests of the image layers, and distribution tests of every source of randomness.

The layer tests of test_cnn.py use a few chosen shapes; a bug that shows only when, say, pooling windows overlap
along one axis but not the other passes them. Here `hypothesis` draws the geometry: kernel (or pool) sizes and
strides chosen independently per axis, both paddings, odd and even image sizes, batch sizes. Every drawn case is
compared with a plain-loop reference (forward, and for max pooling also backward with its tie rule) and passes
a float64 gradient check with a random upstream gradient.

The distribution tests draw many samples from seeded generators and check what each random transformation
promises: dropout keeps a fraction 1 - rate; every shift in [-s, s] occurs, both signs about equally often;
rotations stay within, and fill, [-max_degrees, max_degrees]; shuffled epochs see every sample once. Bounds are
several standard deviations wide, and every seed is fixed (hypothesis runs derandomized, no example database),
so the tests never flake.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diydnn as dd
from diydnn._12_convolution import conv_output_size

# derandomized: the same examples on every run (no flakes); no database: nothing written into the repository
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
PASS_MARK = 1e-7      # chapter 00's pass mark for a float64 gradient check


# -- plain-loop references: one output value at a time, straight from the formulas ---------------------------------
def conv_reference(X, W, b, stride, padding):
    m, H, Wd, C = X.shape
    kh, kw, _, F = W.shape
    (Ho, top, bottom), (Wo, left, right) = conv_output_size(H, kh, stride, padding), conv_output_size(Wd, kw, stride, padding)
    Xp = np.zeros((m, H + top + bottom, Wd + left + right, C))
    Xp[:, top:top + H, left:left + Wd, :] = X
    Y = np.zeros((m, Ho, Wo, F))
    for i in range(m):
        for r in range(Ho):
            for c in range(Wo):
                for f in range(F):
                    window = Xp[i, r * stride:r * stride + kh, c * stride:c * stride + kw, :]
                    Y[i, r, c, f] = np.sum(window * W[:, :, :, f]) + b[f]
    return Y


def pool_reference(X, pool, strides, kind):
    """(Y, winners): the pooled output, and for max pooling the (row, col) of each window's first maximum."""
    m, H, W, C = X.shape
    (ph, pw), (sh, sw) = pool, strides
    Ho, Wo = (H - ph) // sh + 1, (W - pw) // sw + 1
    Y, winners = np.zeros((m, Ho, Wo, C)), {}
    for i in range(m):
        for r in range(Ho):
            for c in range(Wo):
                for d in range(C):
                    window = X[i, r * sh:r * sh + ph, c * sw:c * sw + pw, d]
                    if kind == "max":
                        u, v = divmod(int(np.argmax(window)), pw)       # argmax: the first maximum, row-major
                        Y[i, r, c, d] = window[u, v]
                        winners[i, r, c, d] = (r * sh + u, c * sw + v)
                    else:
                        Y[i, r, c, d] = window.mean()
    return Y, winners


def max_pool_backward_reference(X, dY, winners):
    dX = np.zeros_like(X)
    for (i, r, c, d), (y, x) in winners.items():
        dX[i, y, x, d] += dY[i, r, c, d]
    return dX


# -- strategies ------------------------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))          # independent per axis
    stride = draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_h, low_w = (1, 1) if padding == "same" else (kh, kw)            # "valid" needs the kernel to fit
    H, W = draw(st.integers(low_h, 7)), draw(st.integers(low_w, 7))     # odd and even sizes
    m, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    return (m, H, W, C), F, (kh, kw), stride, padding, draw(st.integers(0, 2**31 - 1))


@st.composite
def pool_cases(draw):
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))          # overlap along one axis but not the other
    H, W = draw(st.integers(ph, 7)), draw(st.integers(pw, 7))
    m, C = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    return (m, H, W, C), (ph, pw), (sh, sw), draw(st.integers(0, 2**31 - 1))


# -- Conv2D ----------------------------------------------------------------------------------------------------------
@PROPERTY
@given(conv_cases())
def test_conv2d_matches_the_loops_and_its_gradient(case):
    shape, F, kernel, stride, padding, seed = case
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)
    layer = dd.Conv2D(F, kernel, stride=stride, padding=padding, rng=rng)
    Y = layer.forward(X)
    layer.params["b"][...] = rng.standard_normal(F)                     # a bias that is not zero
    Y = layer.forward(X)
    np.testing.assert_allclose(Y, conv_reference(X, layer.params["W"], layer.params["b"], stride, padding),
                               rtol=1e-12, atol=1e-12)
    assert Y.shape[1:] == layer.output_width(shape[1:])
    errors = dd.check_layer(layer, X, rng)
    assert max(errors.values()) < PASS_MARK, (case, errors)


@PROPERTY
@given(conv_cases())
def test_the_layers_scatter_is_col2im_and_the_crop_bit_for_bit(case):
    """Conv2D.backward adds the patch gradients straight onto the unpadded input (col2im_offsets); every pixel must
    get the numbers col2im gives, added in the same order, so the result is equal to the last bit (float32)."""
    (m, H, W, C), _, (kh, kw), stride, padding, seed = case
    rng = np.random.default_rng(seed)
    (Ho, top, bottom), (Wo, left, right) = conv_output_size(H, kh, stride, padding), conv_output_size(W, kw, stride, padding)
    dP = rng.standard_normal((m, Ho, Wo, kh, kw, C), dtype=np.float32)
    by_definition = dd.col2im(dP, (m, H + top + bottom, W + left + right, C), stride)[:, top:top + H, left:left + W]
    offset_major = np.ascontiguousarray(dP.transpose(3, 4, 0, 1, 2, 5))
    np.testing.assert_array_equal(dd.col2im_offsets(offset_major, (m, H, W, C), stride, top, left), by_definition)


# -- pooling ---------------------------------------------------------------------------------------------------------
@PROPERTY
@given(pool_cases(), st.sampled_from(["max", "avg"]))
def test_pooling_matches_the_loops_and_its_gradient(case, kind):
    shape, pool, strides, seed = case
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape)               # continuous values: no ties, so max is differentiable here
    layer = (dd.MaxPool2D if kind == "max" else dd.AvgPool2D)(pool, stride=strides)
    Y = layer.forward(X)
    expected, winners = pool_reference(X, pool, strides, kind)
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-15)
    dY = rng.standard_normal(Y.shape)
    if kind == "max":
        np.testing.assert_allclose(layer.backward(dY), max_pool_backward_reference(X, dY, winners), rtol=1e-12, atol=1e-12)
    errors = dd.check_layer(layer, X, rng)
    assert errors["X"] < PASS_MARK, (case, kind, errors)


@PROPERTY
@given(pool_cases())
def test_max_pooling_ties_send_the_gradient_to_the_first_maximum(case):
    """Few distinct values (as after a ReLU): many ties, overlapping or not; the loops' first-maximum rule must hold."""
    shape, pool, strides, seed = case
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=shape).astype(np.float64)
    layer = dd.MaxPool2D(pool, stride=strides)
    Y = layer.forward(X)
    expected, winners = pool_reference(X, pool, strides, "max")
    np.testing.assert_array_equal(Y, expected)
    dY = rng.standard_normal(Y.shape)
    np.testing.assert_allclose(layer.backward(dY), max_pool_backward_reference(X, dY, winners), rtol=1e-12, atol=1e-12)


# -- distributions of the random transformations -------------------------------------------------------------------
def within(count, n, p, sigmas=5.0):
    """True if `count` successes of `n` trials is within `sigmas` standard deviations of a Binomial(n, p)."""
    return abs(count - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5, 0.8])
def test_dropout_keeps_the_fraction_one_minus_rate_and_scales_the_kept_units(rate):
    layer = dd.Dropout(rate, rng=np.random.default_rng(11))
    X = np.ones((200, 300))
    Y = layer.forward(X, training=True)
    kept = Y != 0
    assert within(kept.sum(), X.size, 1 - rate), kept.mean()
    np.testing.assert_allclose(Y[kept], 1 / (1 - rate))
    # no unit and no sample is favoured: each column's kept count is a Binomial(200, 1 - rate)
    assert all(within(k, 200, 1 - rate) for k in kept.sum(axis=0))
    assert all(within(k, 300, 1 - rate) for k in kept.sum(axis=1))
    again = layer.forward(X, training=True)
    assert not np.array_equal(again != 0, kept)                          # a fresh mask every step


def shifts_of(augment, n, rng, size=15):
    """(dy, dx) of n augmented copies of an image holding one bright pixel at its centre."""
    image = np.zeros((size, size))
    image[size // 2, size // 2] = 1.0
    out = augment(np.tile(image.ravel(), (n, 1)), rng).reshape(n, size, size)
    assert np.allclose(out.sum(axis=(1, 2)), 1.0)                        # the pixel is never lost
    rows, cols = np.unravel_index(out.reshape(n, -1).argmax(axis=1), (size, size))
    return rows - size // 2, cols - size // 2


@PROPERTY
@given(st.integers(1, 7))
def test_every_shift_in_the_range_occurs_and_both_signs_equally_often(s):
    n = 3000
    dy, dx = shifts_of(dd.Augment(max_shift=s, shape=(15, 15)), n, np.random.default_rng(s))
    for d in (dy, dx):
        assert d.min() == -s and d.max() == s
        counts = np.bincount(d + s, minlength=2 * s + 1)
        assert len(counts) == 2 * s + 1 and all(within(c, n, 1 / (2 * s + 1)) for c in counts), counts
        nonzero = np.count_nonzero(d)
        assert within(np.count_nonzero(d > 0), nonzero, 0.5)            # up as often as down, left as right
    assert abs(np.corrcoef(dy, dx)[0, 1]) < 0.1                          # the two axes are drawn independently


def test_zero_shift_leaves_images_unchanged():
    X = np.random.default_rng(0).random((5, 28 * 28))
    np.testing.assert_array_equal(dd.Augment(max_shift=0)(X, np.random.default_rng(1)), X)


def rotation_angles(max_degrees, n, rng, size=41, radius=15):
    """The angle (degrees) each augmented copy turned a pixel at `radius` above the centre, from its centroid."""
    image = np.zeros((size, size))
    c = size // 2
    image[c - radius, c] = 1.0
    out = dd.Augment(max_shift=0, max_degrees=max_degrees, shape=(size, size))(np.tile(image.ravel(), (n, 1)), rng)
    out = out.reshape(n, size, size)
    rows, cols = np.mgrid[0:size, 0:size]
    mass = out.sum(axis=(1, 2))
    y = (out * rows).sum(axis=(1, 2)) / mass - c
    x = (out * cols).sum(axis=(1, 2)) / mass - c
    return np.degrees(np.arctan2(x, -y))                                # 0 for an unturned pixel straight above


@pytest.mark.parametrize("max_degrees", [5.0, 15.0, 30.0])
def test_rotations_fill_the_range_uniformly_and_no_further(max_degrees):
    n = 2000
    angles = rotation_angles(max_degrees, n, np.random.default_rng(int(max_degrees)))
    tolerance = 0.5                               # bilinear interpolation moves the centroid a little
    assert np.all(np.abs(angles) <= max_degrees + tolerance), np.abs(angles).max()
    assert angles.min() < -0.95 * max_degrees and angles.max() > 0.95 * max_degrees
    assert within(np.count_nonzero(angles > 0), n, 0.5)                 # both directions equally often
    counts, _ = np.histogram(angles, bins=6, range=(-max_degrees - tolerance, max_degrees + tolerance))
    assert all(within(k, n, 1 / 6) for k in counts), counts             # uniform over the range


def test_no_rotation_without_max_degrees():
    assert np.allclose(rotation_angles(0.0, 50, np.random.default_rng(0)), 0.0, atol=1e-9)


@pytest.mark.parametrize("drop_last", [True, False])
def test_shuffled_epochs_see_every_sample_once_in_a_uniform_order(drop_last):
    m, batch_size, epochs = 12, 4, 600
    stream = dd.BatchStream(np.arange(m)[:, None].astype(np.float32), np.arange(m), batch_size,
                            np.random.default_rng(5), drop_last=drop_last)
    first_positions = []
    for _ in range(epochs):
        order = np.concatenate([next(stream)[1] for _ in range(stream.batches_per_epoch)])
        assert sorted(order) == list(range(m))                            # every sample exactly once
        first_positions.append(int(np.flatnonzero(order == 0)[0]))
    counts = np.bincount(first_positions, minlength=m)
    assert all(within(k, epochs, 1 / m) for k in counts), counts          # sample 0 is anywhere equally often


def test_he_normal_draws_have_the_promised_variance():
    fan_in, fan_out = 400, 300
    W = dd.HeNormal()(fan_in, fan_out, np.random.default_rng(3))
    n = W.size
    # the sample variance of n normals has standard deviation sigma^2 sqrt(2 / (n - 1))
    assert abs(W.var() - 2 / fan_in) < 5 * (2 / fan_in) * np.sqrt(2 / (n - 1))
    assert abs(W.mean()) < 5 * np.sqrt(2 / fan_in / n)
