"""Experiment 11's architecture builder (chapter 10's resnet / describe_resnet), its FLOP count and its panel knobs."""
import itertools

import numpy as np
import pytest

from diydnn import Conv2D, Dense, Residual
from diydnn._10_experiments import build_model, check_settings, cnn, describe_cnn, describe_mlp, describe_resnet, mlp, resnet
from diydnn._10a_panels import control_values, panel_run_name, settings_from_controls
from diydnn._14_performance import matmul_flops

KNOBS = list(itertools.product((4, 8), ([1], [1, 1], [2, 1], [1, 2, 1]), (True, False), ("gap", "flatten"),
                               ("before", "after", "none")))


@pytest.mark.parametrize("width, blocks, residual, head, bn", KNOBS)
def test_describe_reads_back_what_resnet_built(width, blocks, residual, head, bn):
    architecture = resnet(width, blocks, residual, head, bn)
    assert describe_resnet(architecture) == {"width": width, "blocks": blocks, "residual": residual, "head": head,
                                             "bn": bn}
    assert describe_cnn(architecture) is None          # a ResNet is not mistaken for chapter 13's CNN
    model = build_model({"architecture": architecture}, rng=np.random.default_rng(0))
    X = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    assert model.forward(X, training=True).shape == (3, 10)
    blocks_built = [layer for layer in model.layers if isinstance(layer, Residual)]
    assert len(blocks_built) == (sum(blocks) if residual else 0)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    convs += [c for block in blocks_built for c in block.layers if isinstance(c, Conv2D)]
    assert len(convs) == 1 + 2 * sum(blocks)
    assert all(c.use_bias == (bn != "before") for c in convs)     # BatchNorm right after a conv absorbs its bias
    side = 14                                          # after the stem's pooling; each later stage halves ("same")
    for _ in blocks[1:]:
        side = -(-side // 2)
    channels = width * 2 ** (len(blocks) - 1)
    assert model.layers[-1].n_in == (channels if head == "gap" else channels * side * side)


def test_other_architectures_are_not_resnets():
    assert describe_resnet(cnn()) is None and describe_resnet(mlp([50])) is None
    assert describe_mlp(resnet())[0] == []             # no hidden Dense layers in a ResNet


@pytest.mark.parametrize("kwargs, words", [({"bn": "middle"}, "bn must be one of"), ({"head": "pool"}, "head must be"),
                                           ({"blocks": []}, "blocks must be"), ({"blocks": 2}, "blocks must be"),
                                           ({"width": 2.5}, "width")])
def test_bad_knobs_are_named(kwargs, words):
    with pytest.raises(ValueError, match="resnet") as e:
        resnet(**kwargs)
    assert words in str(e.value)


def test_the_settings_initialiser_reaches_the_layers_inside_a_block():
    model = build_model({"architecture": resnet(4, [1]), "init": "glorot"}, rng=np.random.default_rng(0))
    inner = [c for layer in model.layers if isinstance(layer, Residual) for c in layer.layers if isinstance(c, Conv2D)]
    assert inner and all(c.get_config()["init"] == "glorot" for c in inner)


def test_matmul_flops_counts_the_products_inside_blocks_and_shortcuts():
    model = build_model({"architecture": resnet(8, [1, 1])}, rng=np.random.default_rng(0))
    m = 5
    # by hand: stem 28x28x8 from 3x3x1 (no dX: the first layer), block 1: two 14x14x8 from 3x3x8, block 2: 7x7x16
    # from 3x3x8 and from 3x3x16, its 1x1 projection 7x7x16 from 8, the Dense 16 -> 10; forward, dW, dX = 3 products
    stem = 2 * m * 28 * 28 * 8 * 9
    block1 = 2 * (2 * m * 14 * 14 * 8 * 9 * 8)
    block2 = 2 * m * 7 * 7 * 16 * 9 * 8 + 2 * m * 7 * 7 * 16 * 9 * 16 + 2 * m * 7 * 7 * 16 * 8
    dense = 2 * m * 16 * 10
    assert matmul_flops(model, m) == 2 * stem + 3 * (block1 + block2 + dense)


DEFAULTS = check_settings({"model_name": "resnet", "architecture": resnet(32, (1, 1)), "num_epochs": 6, "lr": 2e-3,
                           "batch_size": 128, "schedule": "warmup_cosine", "augment": {"max_shift": 2}})


def test_untouched_panel_controls_give_back_the_defaults():
    values = control_values(DEFAULTS)
    assert {k: values[k] for k in ("width", "blocks", "residual", "head", "bn")} == {
        "width": 32, "blocks": 1, "residual": True, "head": "gap", "bn": "before"}
    assert settings_from_controls(DEFAULTS, values) == DEFAULTS


@pytest.mark.parametrize("knob, value, described, tag", [
    ("residual", False, {"residual": False}, "w32b1x1-plain"), ("head", "flatten", {"head": "flatten"}, "w32b1x1-flatten"),
    ("bn", "after", {"bn": "after"}, "w32b1x1-bnafter"), ("blocks", 2, {"blocks": [2, 2]}, "w32b2x2"),
    ("width", 16, {"width": 16}, "w16b1x1")])
def test_each_panel_knob_changes_exactly_its_part(knob, value, described, tag):
    settings = settings_from_controls(DEFAULTS, dict(control_values(DEFAULTS), **{knob: value}))
    expected = dict(describe_resnet(DEFAULTS["architecture"]), **described)
    assert describe_resnet(settings["architecture"]) == expected
    assert {k for k in settings if settings[k] != DEFAULTS[k]} == {"architecture"}
    assert panel_run_name(DEFAULTS, settings) == f"resnet-{tag}"


def test_the_resnet_panel_shows_its_knobs_and_not_the_mlp_ones():
    pytest.importorskip("ipywidgets")
    from diydnn._10a_panels import _make_controls
    controls = _make_controls(DEFAULTS, control_values(DEFAULTS))
    assert {"width", "blocks", "residual", "head", "bn"} <= set(controls)
    assert not {"hidden_units", "batchnorm", "dropout", "filters", "pooling"} & set(controls)
    values = {name: control.value for name, control in controls.items()}
    assert settings_from_controls(DEFAULTS, values) == DEFAULTS
    assert isinstance(build_model(DEFAULTS, rng=np.random.default_rng(0)).layers[-1], Dense)
