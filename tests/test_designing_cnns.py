"""Chapter 16's tools: receptive_field (against a backward pass), class_score_gradient/saliency (against central
differences) and occlusion_map."""
import numpy as np
import pytest

import diydnn as dd


def nonzero_field(layers, size=40):
    """Height of the input region with a nonzero gradient for the middle output value (positive weights, no ReLU)."""
    model = dd.Sequential(layers, n_in=(size, size, 1), rng=np.random.default_rng(0))
    for key, p in model.params.items():
        p[...] = np.abs(p) + 0.1
    Y = model.forward(np.zeros((1, size, size, 1)))
    G = np.zeros_like(Y)
    G[0, Y.shape[1] // 2, Y.shape[2] // 2, 0] = 1.0
    rows = np.flatnonzero(np.abs(model.backward(G)[0, :, :, 0]).sum(axis=1))
    return int(rows.max() - rows.min() + 1)


STACKS = {
    "3x3 x2": lambda: [dd.Conv2D(1, 3), dd.Conv2D(1, 3)],
    "5x5 s2, 3x3": lambda: [dd.Conv2D(1, 5, stride=2), dd.Conv2D(1, 3)],
    "pool, 3x3, pool 3 s2": lambda: [dd.AvgPool2D(2), dd.Conv2D(1, 3), dd.AvgPool2D(3, stride=2), dd.Conv2D(1, 3)],
    "residual stride 2": lambda: [dd.Conv2D(1, 3), dd.Residual([dd.Conv2D(1, 3, stride=2, padding="same"),
                                                                dd.Conv2D(1, 3, padding="same")]), dd.Conv2D(1, 3)],
}


@pytest.mark.parametrize("kind", STACKS)
def test_receptive_field_matches_a_backward_pass(kind):
    r, _ = dd.receptive_field(STACKS[kind]())
    assert nonzero_field(STACKS[kind]()) == r


def test_receptive_field_formula_and_global_pool():
    assert dd.receptive_field([dd.Conv2D(1, 3), dd.MaxPool2D(2), dd.Conv2D(1, 3)]) == (3 + 1 + 4, 2)   # +2, +1 (the pool), +2 x 2
    assert dd.receptive_field([dd.Conv2D(1, 3), dd.GlobalAveragePool()])[0] == float("inf")
    model = dd.Sequential([dd.Conv2D(2, 3), dd.Conv2D(2, 3)], n_in=(8, 8, 1))
    assert dd.receptive_field(model) == (5, 1)             # a model: its layers


def trained_like_model(rng):
    model = dd.Sequential([dd.Reshape((8, 8, 1)), dd.Conv2D(3, 3, padding="same"), dd.ReLU(), dd.MaxPool2D(2),
                           dd.Flatten(), dd.Dense(4)], n_in=64, rng=rng)
    return model


def test_class_score_gradient_against_central_differences():
    rng = np.random.default_rng(0)
    model = trained_like_model(rng)
    X = rng.standard_normal((3, 64))
    model.forward(X)                                        # builds nothing new: float32 weights ...
    model64 = dd.Sequential.from_config(model.get_config(), dtype=np.float64)
    model64.load_state_dict(model.state_dict())              # ... copied into a float64 twin
    classes = np.array([0, 3, 1])
    dX = dd.class_score_gradient(model64, X, classes)

    def score():
        Z = model64.forward(X)
        return float(Z[np.arange(3), classes].sum())
    assert dd.rel_error(dX, dd.numerical_gradient(score, X)) < 1e-7
    np.testing.assert_array_equal(dd.saliency(model64, X, classes), np.abs(dX))
    wrong = dd.class_score_gradient(model64, X, np.array([1, 3, 0]))   # another class: another gradient
    assert dd.rel_error(wrong, dX) > 0.1
    with pytest.raises(ValueError, match=r"class_score_gradient: classes must be 3 integers in \[0, 4\)"):
        dd.class_score_gradient(model64, X, np.array([0, 4, 1]))


def test_occlusion_map_finds_the_pixel_the_model_reads():
    """A model whose class-0 logit is 10 x pixel (2, 5) only: occluding that pixel is the only patch that matters."""
    model = dd.Sequential([dd.Dense(2)], n_in=64, rng=np.random.default_rng(0))
    model.params["dense_0/W"][...] = 0.0
    model.params["dense_0/W"][2 * 8 + 5, 0] = 10.0
    image = np.zeros((8, 8), dtype=np.float32)
    image[2, 5] = 1.0
    drops = dd.occlusion_map(model, image, 0, patch=2, stride=2)
    assert drops.shape == (4, 4)
    assert drops[1, 2] > 0.49 and np.count_nonzero(drops) == 1      # the patch at rows 2-3, cols 4-5: p 1 -> 1/2
