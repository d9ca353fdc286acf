"""Initialisers (chapter 04): statistics, reproducibility, no global RNG, get_initialiser, Dense(init=...)."""
import numpy as np
import pytest

from diydnn._01_dense import Dense
from diydnn._04_initialisers import (INITIALISERS, GlorotUniform, HeNormal, Initialiser, RandomNormal,
                                     get_initialiser)

SHAPES = [(600, 400), (200, 900), (1500, 120)]


@pytest.mark.parametrize("fan_in,fan_out", SHAPES)
@pytest.mark.parametrize("init,variance", [
    (RandomNormal(), lambda i, o: 1.0),
    (RandomNormal(stddev=0.05), lambda i, o: 0.05 ** 2),
    (HeNormal(), lambda i, o: 2.0 / i),
    (GlorotUniform(), lambda i, o: 2.0 / (i + o)),
], ids=["random", "random-0.05", "he", "glorot"])
def test_mean_and_variance_match_the_formula(init, variance, fan_in, fan_out):
    W = init(fan_in, fan_out, np.random.default_rng(fan_in + fan_out))
    var = variance(fan_in, fan_out)
    assert W.shape == (fan_in, fan_out) and W.dtype == np.float64
    # sample mean: standard error sqrt(var/N); sample variance: relative standard error <= sqrt(2/N) ~ 0.3 %
    assert abs(W.mean()) < 5 * np.sqrt(var / W.size)
    assert abs(W.var() / var - 1) < 0.02


def test_he_scales_with_fan_in_only():
    rng = np.random.default_rng(0)
    narrow, wide = HeNormal()(100, 500, rng), HeNormal()(400, 500, rng)
    assert abs(narrow.var() / wide.var() - 4) < 0.2
    assert abs(HeNormal()(100, 50, rng).var() / HeNormal()(100, 2000, rng).var() - 1) < 0.1


@pytest.mark.parametrize("fan_in,fan_out", [(300, 100), (10, 10), (784, 512)])
def test_glorot_stays_inside_its_limit_and_fills_it(fan_in, fan_out):
    W = GlorotUniform()(fan_in, fan_out, np.random.default_rng(1))
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(W).max() <= limit
    assert np.abs(W).max() > 0.9 * limit          # a uniform sample of >= 100 values reaches near the edge
    # uniform, not normal: the fraction within half the limit is 1/2 (a normal of equal variance gives ~0.71)
    assert abs(np.mean(np.abs(W) < limit / 2) - 0.5) < 0.08


@pytest.mark.parametrize("spec", ["random", "he", "glorot"])
def test_same_seed_same_weights_other_seed_other_weights(spec):
    init = get_initialiser(spec)
    a = init(20, 30, np.random.default_rng(5))
    b = init(20, 30, np.random.default_rng(5))
    c = init(20, 30, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("spec", ["random", "he", "glorot"])
def test_no_global_rng_is_used(spec):
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    init = get_initialiser(spec)
    first = init(8, 8, np.random.default_rng(9))
    np.random.seed(999)                            # reseeding the global state must change nothing
    second = init(8, 8, np.random.default_rng(9))
    np.testing.assert_array_equal(first, second)
    np.random.seed(123)
    init(8, 8, np.random.default_rng(9))
    np.testing.assert_array_equal(state, np.random.get_state()[1])


@pytest.mark.parametrize("name,cls", sorted(INITIALISERS.items()))
def test_every_name_and_alias(name, cls):
    init = get_initialiser(name)
    assert type(init) is cls and isinstance(init, Initialiser)
    assert get_initialiser({"name": name}).get_config() == init.get_config()


def test_config_dict_with_arguments():
    init = get_initialiser({"name": "random", "stddev": 0.1})
    assert isinstance(init, RandomNormal) and init.stddev == 0.1
    assert abs(init(500, 500, np.random.default_rng(0)).std() / 0.1 - 1) < 0.02


def test_objects_and_callables_pass_through():
    he = HeNormal()
    assert get_initialiser(he) is he

    def zeros(fan_in, fan_out, rng):
        return np.zeros((fan_in, fan_out))

    assert get_initialiser(zeros) is zeros


@pytest.mark.parametrize("init", [RandomNormal(), RandomNormal(stddev=0.3), HeNormal(), GlorotUniform()])
def test_config_round_trip(init):
    config = init.get_config()
    clone = get_initialiser(config)
    assert type(clone) is type(init) and clone.get_config() == config
    np.testing.assert_array_equal(clone(7, 5, np.random.default_rng(3)), init(7, 5, np.random.default_rng(3)))


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match=r"unknown initialiser 'lecun'.*'glorot'.*'he'.*'random'"):
        get_initialiser("lecun")
    with pytest.raises(ValueError, match="unknown initialiser None"):
        get_initialiser({"stddev": 1.0})


@pytest.mark.parametrize("bad", [3, None, ["he"], HeNormal])
def test_spec_of_the_wrong_kind(bad):
    with pytest.raises(ValueError, match="initialiser must be a name, a config dict or an Initialiser"):
        get_initialiser(bad)


def test_bad_arguments_are_a_value_error():
    with pytest.raises(ValueError, match=r"'random'.*mean"):
        get_initialiser({"name": "random", "mean": 1.0})
    with pytest.raises(ValueError, match=r"'he'.*stddev"):
        get_initialiser({"name": "he", "stddev": 2.0})


@pytest.mark.parametrize("stddev", [0, -1.0, float("nan")])
def test_random_normal_rejects_non_positive_stddev(stddev):
    with pytest.raises(ValueError, match="RandomNormal: stddev must be positive"):
        RandomNormal(stddev)


@pytest.mark.parametrize("init", [RandomNormal(), HeNormal(), GlorotUniform()])
@pytest.mark.parametrize("fans", [(0, 5), (5, 0), (-2, 3), (2.5, 3)])
def test_bad_fans_are_a_value_error(init, fans):
    with pytest.raises(ValueError, match="fan_(in|out) must be a positive integer"):
        init(*fans, np.random.default_rng(0))


@pytest.mark.parametrize("spec,cls", [("he", HeNormal), ("glorot", GlorotUniform), ("xavier", GlorotUniform),
                                      ("random", RandomNormal)])
def test_dense_accepts_names_and_objects_alike(spec, cls):
    by_name = Dense(40, n_in=30, init=spec, rng=np.random.default_rng(2))
    by_object = Dense(40, n_in=30, init=cls(), rng=np.random.default_rng(2))
    np.testing.assert_array_equal(by_name.params["W"], by_object.params["W"])
    expected = cls()(30, 40, np.random.default_rng(2)).astype(np.float32)
    np.testing.assert_array_equal(by_name.params["W"], expected)


def test_dense_default_is_he_and_variance_follows_fan_in():
    layer = Dense(500, n_in=800, rng=np.random.default_rng(4))
    assert abs(layer.params["W"].var() / (2 / 800) - 1) < 0.02
    np.testing.assert_array_equal(layer.params["b"], 0)


@pytest.mark.parametrize("init", ["glorot", {"name": "random", "stddev": 0.2}, HeNormal(), RandomNormal(0.5)])
def test_dense_config_round_trip_with_initialiser(init):
    layer = Dense(6, n_in=4, init=init, rng=np.random.default_rng(8))
    config = layer.get_config()
    rebuilt = Dense(**config, rng=np.random.default_rng(8))
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(rebuilt.params["W"], layer.params["W"])


def test_dense_with_unknown_initialiser_fails_at_build():
    layer = Dense(3, init="lecun")
    with pytest.raises(ValueError, match="unknown initialiser 'lecun'"):
        layer.forward(np.ones((2, 4)))
