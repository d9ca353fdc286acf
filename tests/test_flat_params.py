"""One array for all parameters (chapter 14's FlatParams and packing, chapter 06's step_flat): the packing must not change
a single number, must survive what users do to layers and optimisers, and must step aside where it can't help."""
import numpy as np
import pytest

from diydnn import (SGD, Adam, AdamW, BatchNorm, BatchStream, Conv2D, CosineDecay, DecayMask, Dense, Flatten, Loop,
                    MaxPool2D, ReLU, Reshape, Sequential, SoftmaxCrossEntropy, TrainTask)
from diydnn._14_performance import flat_params, pack

OPTIMISERS = {"sgd": lambda: SGD(lr=0.1), "momentum": lambda: SGD(lr=0.05, momentum=0.9), "adam": lambda: Adam(lr=1e-2),
              "adamw": lambda: AdamW(lr=1e-2, weight_decay=0.1)}


def data(seed=0, n=96, d=6, k=3):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d)).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 1)


def mlp(seed=0):
    return Sequential([Dense(8), BatchNorm(), ReLU(), Dense(3)], n_in=6, rng=np.random.default_rng(seed))


def loop_for(model, opt, seed=1, **kw):
    X, y = data()
    task = TrainTask(BatchStream(X, y, batch_size=16, rng=np.random.default_rng(seed)), SoftmaxCrossEntropy(), opt,
                     n_steps_per_checkpoint=10 ** 9, **kw)
    return Loop(model, task, progress=False, verbose=False)


def unpacked(model):
    """Make the model fall back to the per-array path for good (as a model that cannot be packed does)."""
    model._flat_params, model._repacks = None, 10 ** 6
    return model


def test_build_packs_the_parameters_into_one_array_and_the_layers_hold_views():
    model = mlp()
    flat = flat_params(model)
    assert flat is not None and flat.params.size >= sum(p.size for p in model.params.values())
    for name, W, dW in zip(flat.names, flat.param_views, flat.grad_views):
        assert model.params[name] is W and model.grads[name] is dW
        assert np.shares_memory(W, flat.params) and np.shares_memory(dW, flat.grads)
        assert W.ctypes.data % 64 == 0 and dW.ctypes.data % 64 == 0      # each starts on a cache line
    gaps = np.ones(flat.params.size, dtype=bool)
    for where in flat.slices:
        gaps[where] = False
    assert gaps.any() and (flat.params[gaps] == 0).all()                   # sizes 8, 8, ...: there are gaps, zero
    flat.params[:] = 7.0                                   # the flat array and the layers' arrays are one memory
    assert all((p == 7.0).all() for p in model.params.values())


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_the_flat_update_gives_the_per_array_numbers_bit_for_bit(name):
    packed, plain = loop_for(mlp(), OPTIMISERS[name]()), loop_for(unpacked(mlp()), OPTIMISERS[name]())
    h_packed, h_plain = packed.run(30), plain.run(30)
    assert flat_params(packed.model) is not None and flat_params(plain.model) is None
    assert "_flat_slots_made" in vars(packed.task.optimizer) and "_flat_slots_made" not in vars(plain.task.optimizer)
    for k, W in plain.model.params.items():
        np.testing.assert_array_equal(packed.model.params[k], W)
    for k, v in plain.task.optimizer.state_dict().items():
        np.testing.assert_array_equal(packed.task.optimizer.state_dict()[k], v)
    assert h_packed.get("train", "loss") == h_plain.get("train", "loss")
    assert h_packed.get("train", "grad_norm/dense_1") == h_plain.get("train", "grad_norm/dense_1")
    flat = flat_params(packed.model)
    gaps = np.ones(flat.params.size, dtype=bool)
    for where in flat.slices:
        gaps[where] = False
    assert (flat.params[gaps] == 0).all()                 # the optimiser's steps leave the gaps at 0


def test_schedule_and_clipping_take_the_flat_path_with_the_same_numbers():
    make = lambda: Adam(lr=1e-2)
    runs = []
    for model in (mlp(), unpacked(mlp())):
        opt = make()
        opt.schedule = CosineDecay(total_steps=40)
        runs.append(loop_for(model, opt, clip_norm=0.5))
        runs[-1].run(25)
    assert runs[0].task.optimizer.__dict__.get("_flat_slots_made") is not None      # it did use the flat path
    for k, W in runs[1].model.params.items():
        np.testing.assert_array_equal(runs[0].model.params[k], W)


def test_a_decay_mask_declines_the_flat_path_and_step_decides_per_name():
    opt = AdamW(lr=1e-2, weight_decay=0.5)
    opt.decays = DecayMask()                                 # biases and BatchNorm's gamma/beta are not decayed
    model = mlp()
    assert opt.step_flat(flat_params(model)) is False and opt.t == 0
    lp = loop_for(model, opt)
    lp.run(5)
    ref_opt = AdamW(lr=1e-2, weight_decay=0.5)
    ref_opt.decays = DecayMask()
    ref = loop_for(unpacked(mlp()), ref_opt)
    ref.run(5)
    for k, W in ref.model.params.items():
        np.testing.assert_array_equal(lp.model.params[k], W)


def test_resuming_from_a_saved_optimiser_state_continues_exactly(tmp_path):
    lp = loop_for(mlp(), Adam(lr=1e-2))
    lp.run(10)
    state, weights = lp.task.optimizer.state_dict(), lp.model.state_dict()
    lp.run(10)
    other = loop_for(mlp(seed=5), Adam(lr=1e-2))
    other.run(3)                                             # its own flat slots exist; loading must replace them
    other.model.load_state_dict(weights)
    other.task.optimizer.load_state_dict(state)
    other.task = lp.task.__class__(BatchStream(*data(), batch_size=16, rng=np.random.default_rng(1)),
                                   SoftmaxCrossEntropy(), other.task.optimizer, n_steps_per_checkpoint=10 ** 9)
    for _ in range(10):
        other.task.next_batch()                              # the batches lp used for its first 10 steps
    other.run(10)
    for k, W in lp.model.params.items():
        np.testing.assert_array_equal(other.model.params[k], W)
    assert other.task.optimizer.slots["m"]["dense_0/W"] is not state["m/dense_0/W"]   # copied in, then stepped


def test_a_layer_that_binds_new_arrays_is_repacked_and_then_left_unpacked():
    model = mlp()
    first = flat_params(model)
    model.layers[0].params["W"] = model.layers[0].params["W"] * 2          # a user replaces an array
    second = flat_params(model)
    assert second is not first and second.intact()
    np.testing.assert_array_equal(model.params["dense_0/W"], 2 * first.param_views[0])

    class Rebinding(Dense):                                   # a layer that makes new gradient arrays every step
        def backward(self, dY):
            dX = super().backward(dY)
            self.grads = {k: g.copy() for k, g in self.grads.items()}
            return dX

    model = Sequential([Rebinding(8), ReLU(), Rebinding(3)], n_in=6, rng=np.random.default_rng(0))
    ref = unpacked(Sequential([Dense(8), ReLU(), Dense(3)], n_in=6, rng=np.random.default_rng(0)))
    a, b = loop_for(model, Adam(lr=1e-2)), loop_for(ref, Adam(lr=1e-2))
    a.run(12)
    b.run(12)
    assert flat_params(model) is None                               # gave up packing: no copy of everything each step
    for (ka, Wa), (kb, Wb) in zip(model.params.items(), ref.params.items()):
        np.testing.assert_array_equal(Wa, Wb)


def test_models_that_cannot_be_packed_are_left_alone():
    mixed = Sequential([Dense(3), Dense(2)], n_in=4, rng=np.random.default_rng(0))
    mixed.layers[1].params["W"] = mixed.layers[1].params["W"].astype(np.float64)
    mixed.layers[1].grads["W"] = mixed.layers[1].grads["W"].astype(np.float64)
    assert pack(mixed) is None
    assert flat_params(Sequential([ReLU()], n_in=4)) is None      # no parameters
    assert flat_params(object()) is None and flat_params(Sequential([Dense(2)])) is None   # not a Sequential; not built
    inner = Sequential([Dense(3)], n_in=4, rng=np.random.default_rng(0))
    outer = Sequential([inner, ReLU(), Dense(2)], n_in=4, rng=np.random.default_rng(1))
    assert flat_params(outer) is None and flat_params(inner) is not None  # a model inside a model keeps its own packing


def test_the_cnn_layers_write_their_gradients_into_the_flat_array():
    model = Sequential([Reshape((8, 8, 1)), Conv2D(4, 3, padding="same"), BatchNorm(), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(3)], n_in=64, rng=np.random.default_rng(0))
    flat = flat_params(model)
    r = np.random.default_rng(1)
    X, y = r.standard_normal((10, 64)).astype(np.float32), r.integers(0, 3, 10)
    loss = SoftmaxCrossEntropy()
    loss(model.forward(X, training=True), y)
    model.backward_params(loss.backward())
    assert flat_params(model) is flat and np.abs(flat.grads).sum() > 0       # still packed: gradients written in place


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_model_is_packed_anew_and_trains_its_own_arrays(how):
    import copy
    import pickle
    model = mlp()
    loop_for(model, Adam(lr=1e-2)).run(3)
    twin = copy.deepcopy(model) if how == "deepcopy" else pickle.loads(pickle.dumps(model))
    flat = flat_params(twin)
    assert flat is not None and all(np.shares_memory(p, flat.params) for p in twin.params.values())
    assert not any(np.shares_memory(p, flat_params(model).params) for p in twin.params.values())
    a, b = loop_for(model, SGD(lr=0.1)), loop_for(twin, SGD(lr=0.1))
    a.run(5)
    b.run(5)                                              # the copy trains: its layers' arrays move ...
    for k, W in model.params.items():
        np.testing.assert_array_equal(twin.params[k], W)  # ... exactly as the original's did
