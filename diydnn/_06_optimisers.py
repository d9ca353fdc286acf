# %% [markdown]
# [← 05 — BatchNorm](05_batchnorm.ipynb) · [begin here](00_begin_here.ipynb) · **06 — optimisers** · [next: 07 — model →](07_model.ipynb)
#
# # 06 — Optimisers: SGD, momentum, Adam, AdamW — and clipping by the global norm
#
# Backpropagation gives the gradient $dW = \partial L/\partial W$ of every parameter. An
# **optimiser** turns those gradients into a change of the parameters. This chapter derives
# four update rules — plain gradient descent, momentum, Adam and AdamW — from what they are
# meant to do, checks each against a step computed by hand, and corrects the five slips of
# [the original *diy-dnn*](https://github.com/tomjwalker/diy-dnn) README on the way (a `+` that climbs instead of descends, Adam's
# missing square and missing power $t$, AdamW's decay applied twice, and clip-norm written with
# `max`). It ends with **clipping by the global norm**, the one correct form of the original's
# "clip-norm", and a picture of the four optimisers racing down two valleys.
#
# Every optimiser has one method, `opt.step(params, grads)`, where `params` and `grads` are dicts
# name → array with equal keys and shapes. It changes each parameter array **in place**: those
# arrays are the layers' own, so a new array bound to a dict entry would never reach the layer.

# %%
"""Chapter 06: optimisers (SGD with momentum, Adam, AdamW) and clipping by the global gradient norm."""
import math

import numpy as np

from diydnn._01_dense import NonFiniteError


# %% tags=["active-ipynb"]
# import io
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import rel_error, save_figure
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# rng = np.random.default_rng(6)

# %% [markdown]
# ## 1. Gradient descent, and the sign that matters
#
# Near the current parameters $W$, a small change $\Delta$ changes the loss by (first-order Taylor)
#
# $$L(W + \Delta) \approx L(W) + \langle dW, \Delta\rangle, \qquad \langle dW, \Delta\rangle = \sum_{ij} dW_{ij}\,\Delta_{ij}.$$
#
# Among all steps of a given length $\lVert\Delta\rVert = r$, Cauchy–Schwarz says
# $\langle dW, \Delta\rangle \ge -\lVert dW\rVert\, r$, with equality exactly for $\Delta = -r\, dW/\lVert dW\rVert$:
# the **negative** gradient is the direction of steepest descent. Gradient descent with learning
# rate $\alpha > 0$ (chapter 01 introduced it and chapters 03 and 05 used it; here is why it is the right direction) is therefore
#
# $$W \leftarrow W - \alpha\, dW, \qquad L(W - \alpha\, dW) = L(W) - \alpha \lVert dW\rVert^2 + O(\alpha^2).$$
#
# **[The original](https://github.com/tomjwalker/diy-dnn) README wrote $W \leftarrow W + \alpha\, dW$.** That is gradient *ascent*: to first order
# it *raises* the loss by $\alpha\lVert dW\rVert^2$ every step.
# The cell checks the first-order prediction on the elongated quadratic
# $L(w) = \tfrac12(w_1^2 + 100 w_2^2)$, gradient $(w_1,\, 100 w_2)$, then takes 20 steps each way.

# %% tags=["active-ipynb"]
# def quadratic(w):
#     """L(w) = (w1^2 + 100 w2^2) / 2 and its gradient: a valley 100 times more curved across than along."""
#     return 0.5 * (w[0] ** 2 + 100 * w[1] ** 2), np.array([w[0], 100 * w[1]])
#
# w0 = np.array([-8.0, 1.5])
# L0, g0 = quadratic(w0)
# alpha = 1e-5
# print(f"L(w - a dW) - L(w) = {quadratic(w0 - alpha * g0)[0] - L0:.6f};  first-order prediction -a|dW|^2 = {-alpha * g0 @ g0:.6f}")
# print(f"L(w + a dW) - L(w) = {quadratic(w0 + alpha * g0)[0] - L0:+.6f};  first-order prediction +a|dW|^2 = {alpha * g0 @ g0:+.6f}")
# assert np.isclose(quadratic(w0 - alpha * g0)[0] - L0, -alpha * g0 @ g0, rtol=1e-2)
# assert np.isclose(quadratic(w0 + alpha * g0)[0] - L0, alpha * g0 @ g0, rtol=1e-2)
#
# w_down, w_up, losses_down, losses_up = w0.copy(), w0.copy(), [], []
# for step in range(20):
#     losses_down.append(quadratic(w_down)[0]); w_down = w_down - 0.01 * quadratic(w_down)[1]
#     losses_up.append(quadratic(w_up)[0]);     w_up = w_up + 0.01 * quadratic(w_up)[1]
# print(f"20 steps of W - a dW: loss {losses_down[0]:.1f} -> {losses_down[-1]:.3f};   of W + a dW: {losses_up[0]:.1f} -> {losses_up[-1]:.3g}")
# assert all(np.diff(losses_down) < 0) and all(np.diff(losses_up) > 0)

# %% [markdown]
# ## 2. The optimiser contract
#
# | member | meaning |
# |---|---|
# | `step(params, grads)` | one update of every `params[name]`, **in place**, from `grads[name]`; then `t` has grown by one |
# | `t` | the number of steps taken (Adam's bias correction needs it) |
# | slots | per-parameter buffers (momentum's velocity, Adam's $m$ and $v$), kept by parameter name, created as zeros on first use |
# | `state_dict()` / `load_state_dict(d)` | the step count and all slots as a flat dict `str` → array (`"t"`, `"m/dense_0/W"`, …), ready for `np.savez`; loading restores it exactly |
# | `get_config()` | `{"name": ..., <hyperparameters>}`; `get_optimiser(config)` rebuilds the optimiser |
#
# Bad input is refused with a `ValueError` that names the optimiser and the value: a learning rate
# that is not positive, a $\beta$ or momentum outside $[0, 1)$, a negative weight decay, a
# non-positive $\varepsilon$, and `params` and `grads` whose keys or shapes differ. A check runs
# before anything changes, so a refused step leaves parameters, slots and `t` as they were. A gradient
# that holds NaN or inf is refused the same way, with a `NonFiniteError` naming it (section 7), and so is a
# learning-rate schedule (chapter 11) that gives a rate that is NaN, inf or negative.

# %%
def _number(value, what, who):
    """value as a float, or a ValueError naming `who` and the value."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{who}: {what} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: {what} must be a number, got {value!r}") from None


def _positive(value, what, who):
    x = _number(value, what, who)
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"{who}: {what} must be a positive finite number, got {value!r}")
    return x


def _non_negative(value, what, who):
    x = _number(value, what, who)
    if not (x >= 0 and math.isfinite(x)):
        raise ValueError(f"{who}: {what} must be a non-negative finite number, got {value!r}")
    return x


def _fraction(value, what, who):
    """A decay rate (momentum, beta1, beta2): a number in [0, 1)."""
    x = _number(value, what, who)
    if not 0 <= x < 1:
        raise ValueError(f"{who}: {what} must lie in [0, 1), got {value!r}")
    return x


def _check_pairs(params, grads, who):
    """params and grads: dicts with equal keys; every parameter a float array, every gradient of its shape."""
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise ValueError(f"{who}: params and grads must be dicts name -> array, "
                         f"got {type(params).__name__} and {type(grads).__name__}")
    if params.keys() != grads.keys():
        only_p = ", ".join(sorted(map(repr, params.keys() - grads.keys()))) or "none"
        only_g = ", ".join(sorted(map(repr, grads.keys() - params.keys()))) or "none"
        raise ValueError(f"{who}: params and grads have different keys; only in params: {only_p}; only in grads: {only_g}")
    for name, W in params.items():
        if not isinstance(W, np.ndarray) or W.dtype.kind != "f":
            kind = W.dtype if isinstance(W, np.ndarray) else type(W).__name__
            raise ValueError(f"{who}: parameter {name!r} must be a float NumPy array (it is updated in place), got {kind}")
        g = grads[name]
        if (g.shape if isinstance(g, np.ndarray) else np.shape(g)) != W.shape:   # (np.shape costs a Python call)
            raise ValueError(f"{who}: gradient {name!r} has shape {np.shape(g)}, its parameter has shape {W.shape}")


def _check_finite_gradients(grads, who):
    """NonFiniteError naming every gradient that holds NaN or inf; nothing is changed.

    The fast test is one dot product per tensor, vdot(g, g) (a BLAS call, no temporary array): it is
    finite whenever g is, unless the squares overflow. Only then does the exact, slower isfinite scan run.
    """
    suspects = []
    for name, g in grads.items():
        g = np.asarray(g)
        if g.dtype.kind not in "fc":
            continue                                # integer gradients cannot hold NaN
        with np.errstate(over="ignore", invalid="ignore"):
            square_sum = np.vdot(g, g)
        if not np.isfinite(square_sum):
            suspects.append((name, g))
    bad = [f"{name!r} ({np.count_nonzero(~np.isfinite(g))} of {g.size} entries)"
           for name, g in suspects if not np.isfinite(g).all()]
    if bad:
        raise NonFiniteError(f"{who}.step: gradient(s) {', '.join(bad)} contain NaN or inf; no parameter and no "
                             f"optimiser state was changed. Look for NaN in the data or a diverging loss "
                             f"(a smaller lr, clip_norm).")


class Optimiser:
    """Base class: step(params, grads) updates every params[name] in place from grads[name].

    Subclasses set `name`, `hyperparameters` (constructor arguments, also the keys of
    get_config) and `slot_names` (per-parameter buffers), and implement _update.
    """

    name = "optimiser"
    hyperparameters = ("lr",)
    slot_names = ()
    # chapter 11 (regularisation) sets these on an optimiser object; the defaults change nothing
    schedule = None      # a learning-rate schedule: step t uses the rate lr * schedule(t)
    decays = None        # name -> bool: the parameters weight decay acts on (None: all of them)
    l2 = 0.0             # L2 in the loss, (l2/2)||W||^2 for each decaying W: adds l2 W to its gradient

    def __init__(self, lr):
        self.lr = _positive(lr, "learning rate lr", type(self).__name__)
        self.t = 0                                              # steps taken
        self.slots = {slot: {} for slot in self.slot_names}     # slot -> {parameter name -> array}

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        return f"{type(self).__name__}({args})"

    def get_config(self):
        config = {"name": self.name, **{k: getattr(self, k) for k in self.hyperparameters}}
        if self.schedule is not None:                            # chapter 11
            config["schedule"] = self.schedule.get_config()
        if self.l2:
            config["l2"] = self.l2
        if self.decays is not None:
            config["decays"] = getattr(self.decays, "get_config", lambda: repr(self.decays))()
        return config

    def step(self, params, grads, grads_finite=False):
        """One update of every parameter, in place. params, grads: dicts name -> array.

        grads_finite=True says the caller has already proved every gradient finite (the Loop has: the global
        norm it logs is finite), so the same pass over the gradients is not made twice."""
        who = type(self).__name__
        _check_pairs(params, grads, who)
        for slot, buffers in self.slots.items():   # a slot of the wrong shape: refuse before changing anything
            for name, buf in buffers.items():
                W = params.get(name)
                if W is not None and buf.shape != W.shape:
                    raise ValueError(f"{who}: slot {slot!r} of parameter {name!r} has shape {buf.shape}, "
                                     f"the parameter has shape {W.shape}")
        if not grads_finite:
            _check_finite_gradients(grads, who)     # NaN/inf anywhere: refuse before the first parameter changes
        rate = self._rate_now(self.t + 1)           # a schedule's NaN or negative rate: refused, nothing changed
        self.t += 1
        if self.schedule is None and not self.l2 and self.decays is None:
            # the plain step, none of chapter 11's additions: no per-parameter bookkeeping (chapter 14: on a
            # small network the Python around the arithmetic costs as much as the arithmetic)
            self.current_lr = self.lr
            for name, W in params.items():
                self._update(name, W, np.asarray(grads[name]))
            return
        lr, weight_decay = self.lr, getattr(self, "weight_decay", None)
        self.current_lr = rate
        try:
            self.lr = self.current_lr            # chapter 11: _update reads self.lr, so it sees this step's rate
            for name, W in params.items():
                dW = np.asarray(grads[name])
                decays = self.decays is None or self.decays(name)
                if self.l2 and decays:
                    dW = dW + self.l2 * W        # chapter 11: the gradient of (l2/2)||W||^2
                if weight_decay is not None:     # chapter 11: AdamW's decoupled decay only where `decays`
                    self.weight_decay = weight_decay if decays else 0.0
                self._update(name, W, dW)
        finally:
            self.lr = lr
            if weight_decay is not None:
                self.weight_decay = weight_decay

    def _rate_now(self, t):
        """The learning rate of step t: lr, times chapter 11's schedule at step t when one is set.

        A schedule whose rate is NaN, inf or negative would step into NaN or uphill: a ValueError naming the
        schedule, the step and the rate, raised before any parameter or the step count changes."""
        if self.schedule is None:
            return self.lr
        factor = self.schedule(t)
        try:
            rate = self.lr * float(factor)
        except (TypeError, ValueError):
            rate = None
        if rate is None or not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"{type(self).__name__}.step: the schedule {self.schedule!r} gives the factor {factor!r} "
                             f"at step {t}, so a learning rate of {rate!r}; a rate must be finite and >= 0. No "
                             f"parameter and no optimiser state was changed.")
        return rate

    def _update(self, name, W, dW):
        """Change the array W in place; dW is its gradient, t already counts this step."""
        raise NotImplementedError

    def _slot(self, slot, name, W):
        """The buffer `slot` of parameter `name`, created as zeros (of W's shape and dtype) on first use."""
        buffers = self.slots[slot]
        if name not in buffers:
            buffers[name] = np.zeros_like(W)
        return buffers[name]

    def _scratch(self, name, W):
        """A work array of W's shape and dtype, reused every step (not state: never saved).

        The updates below write their temporaries into it with `out=` instead of allocating
        fresh arrays each step (chapter 14 measures what that saves)."""
        scratch = self.__dict__.get("_scratch_buffers")
        if scratch is None:
            scratch = self._scratch_buffers = {}
        buf = scratch.get(name)
        if buf is None or buf.shape != W.shape or buf.dtype != W.dtype:
            buf = scratch[name] = np.empty_like(W)
        return buf

    def state_dict(self):
        """Step count, slots and the optimiser's name as a flat dict str -> array:
        {"t": 0-d array, "<slot>/<parameter>": array, "optimizer": 0-d text array such as 'adam'}."""
        state = {"t": np.array(self.t, dtype=np.int64), "optimizer": np.array(self.name)}
        for slot, buffers in self.slots.items():
            for name, buf in buffers.items():
                state[f"{slot}/{name}"] = buf.copy()
        return state

    def load_state_dict(self, state):
        """Restore what state_dict() returned (a dict, or the NpzFile np.load gives), exactly."""
        who = type(self).__name__
        keys = list(state.keys())
        if "t" not in keys:
            raise ValueError(f"{who}: state has no step count 't'; keys: {sorted(map(str, keys))[:10]}")
        saved_by = str(np.asarray(state["optimizer"])) if "optimizer" in keys else None   # (older states lack it)
        if saved_by is not None and saved_by != self.name:
            # e.g. an SGD state ({"t": 3}) in Adam would start Adam at t = 3 with empty moments
            raise ValueError(f"{who}: this state was saved by the optimiser {saved_by!r}, not by {self.name!r}; "
                             f"load it into {saved_by!r}, or start {self.name!r} afresh")
        t = np.asarray(state["t"])
        if t.shape != () or not np.issubdtype(t.dtype, np.integer) or t < 0:
            raise ValueError(f"{who}: step count 't' must be a non-negative integer 0-d array, got {t!r}")
        slots = {slot: {} for slot in self.slot_names}
        for key in keys:
            if key in ("t", "optimizer"):
                continue
            slot, sep, name = str(key).partition("/")    # parameter names may hold "/" themselves
            if not sep or not name or slot not in slots:
                raise ValueError(f"{who}: unexpected key {key!r} in state; expected 't' and '<slot>/<parameter>' "
                                 f"with slot in {list(self.slot_names)}")
            slots[slot][name] = np.array(state[key], copy=True)
        self.t, self.slots = int(t), slots


# %% [markdown]
# ## 3. SGD and momentum
#
# **SGD** is the rule of section 1, applied to every parameter: $W \leftarrow W - \alpha\, dW$
# ("stochastic" because $dW$ comes from a mini-batch).
#
# **Momentum** (Polyak's heavy ball) keeps a velocity $v$, a running sum of past gradients that
# forgets with rate $\rho \in [0, 1)$ — the same letter as BatchNorm's running averages in chapter 05, with the same
# meaning: the weight of the old value ($\mu$ stays the mean). The code calls it `momentum` in both places:
#
# $$v \leftarrow \rho\, v + dW, \qquad W \leftarrow W - \alpha\, v, \qquad v_0 = 0 .$$
#
# Unrolled, $v_t = \sum_{k=1}^{t} \rho^{t-k} g_k$. Where successive gradients agree (along the floor
# of a valley) they add up: for a constant gradient $g$, $v_t = g\,(1-\rho^t)/(1-\rho) \to g/(1-\rho)$, a
# step $1/(1-\rho) = 10$ times longer for $\rho = 0.9$. Where they alternate in sign (across the
# valley) they cancel. This is PyTorch's convention. Keras, and Sutskever et al. (2013), write
#
# $$u \leftarrow \rho\, u - \alpha\, dW, \qquad W \leftarrow W + u .$$
#
# For a constant $\alpha$ the two are the same iterates: by induction $u_t = -\alpha v_t$ (true at
# $t=0$; then $u_t = \rho u_{t-1} - \alpha g_t = -\alpha(\rho v_{t-1} + g_t) = -\alpha v_t$). They differ only
# when $\alpha$ changes during training: ours applies a new $\alpha$ to the whole velocity at once, theirs
# only to new gradients. `SGD(lr, momentum=0.0)` is plain SGD; `momentum > 0` adds the velocity slot.

# %%
class SGD(Optimiser):
    """Gradient descent W <- W - lr dW; with momentum rho > 0 the heavy ball v <- rho v + dW, W <- W - lr v."""

    name = "sgd"
    hyperparameters = ("lr", "momentum")

    def __init__(self, lr=0.01, momentum=0.0):
        self.momentum = _fraction(momentum, "momentum", type(self).__name__)
        self.slot_names = ("velocity",) if self.momentum > 0 else ()
        super().__init__(lr)

    def _update(self, name, W, dW):
        step = self._scratch(name, W)
        if self.momentum == 0:
            np.multiply(dW, self.lr, out=step)
        else:
            v = self._slot("velocity", name, W)
            v *= self.momentum
            v += dW                      # v <- rho v + dW
            np.multiply(v, self.lr, out=step)
        W -= step                        # in place: W is the layer's own array


# %% [markdown]
# A check by hand. $W = [1, -2]$, $dW = [0.5, -4]$, $\alpha = 0.1$: SGD gives $W - 0.1\,dW = [0.95,\ -1.6]$.
# With momentum $\rho = 0.9$, the first step is the same ($v_1 = dW$); a second gradient $[1, 2]$ gives
# $v_2 = 0.9\,[0.5, -4] + [1, 2] = [1.45,\ -1.6]$ and $W_2 = [0.95 - 0.145,\ -1.6 + 0.16] = [0.805,\ -1.44]$.
# Then five steps on random arrays against a plain loop over the elements.

# %% tags=["active-ipynb"]
# W = np.array([1.0, -2.0])
# SGD(lr=0.1).step({"W": W}, {"W": np.array([0.5, -4.0])})
# print("SGD step:", W)
# assert np.allclose(W, [0.95, -1.6], rtol=0, atol=1e-15)
#
# W, heavy = np.array([1.0, -2.0]), SGD(lr=0.1, momentum=0.9)
# heavy.step({"W": W}, {"W": np.array([0.5, -4.0])})
# assert np.allclose(W, [0.95, -1.6], rtol=0, atol=1e-15)
# heavy.step({"W": W}, {"W": np.array([1.0, 2.0])})
# print("momentum, two steps:", W, " velocity:", heavy.slots["velocity"]["W"])
# assert np.allclose(heavy.slots["velocity"]["W"], [1.45, -1.6], rtol=0, atol=1e-15)
# assert np.allclose(W, [0.805, -1.44], rtol=0, atol=1e-15)
#
# # five steps, two parameters, against a scalar loop over the elements
# params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)}
# ref = {k: [float(x) for x in p.ravel()] for k, p in params.items()}
# vel = {k: [0.0] * p.size for k, p in params.items()}
# opt = SGD(lr=0.05, momentum=0.8)
# for step in range(5):
#     grads = {k: rng.standard_normal(p.shape) for k, p in params.items()}
#     opt.step(params, grads)
#     for k in ref:
#         for i, g in enumerate(grads[k].ravel()):
#             vel[k][i] = 0.8 * vel[k][i] + g
#             ref[k][i] = ref[k][i] - 0.05 * vel[k][i]
# err = max(rel_error(params[k].ravel(), ref[k]) for k in ref)
# print(f"momentum, 5 steps vs scalar loop: rel. error {err:.1e},  t = {opt.t}")
# assert err < 1e-14 and opt.t == 5

# %% [markdown]
# The two momentum conventions agree step for step while $\alpha$ is constant, and part when
# $\alpha$ changes (here it drops tenfold after five steps). And a constant gradient drives the
# velocity to $g/(1-\rho)$:

# %% tags=["active-ipynb"]
# def keras_momentum(w, grads_seq, lrs, rho):
#     u, path = np.zeros_like(w), []
#     for g, a in zip(grads_seq, lrs):
#         u = rho * u - a * g
#         w = w + u
#         path.append(w)
#     return np.array(path)
#
# def ours(w, grads_seq, lrs, rho):
#     w, path, opt = w.copy(), [], SGD(lr=lrs[0], momentum=rho)
#     for g, a in zip(grads_seq, lrs):
#         opt.lr = a
#         opt.step({"w": w}, {"w": g})
#         path.append(w.copy())
#     return np.array(path)
#
# g_seq = rng.standard_normal((10, 3))
# same_lr, dropped_lr = [0.1] * 10, [0.1] * 5 + [0.01] * 5
# gap_const = np.abs(keras_momentum(np.zeros(3), g_seq, same_lr, 0.9) - ours(np.zeros(3), g_seq, same_lr, 0.9)).max()
# gap_drop = np.abs(keras_momentum(np.zeros(3), g_seq, dropped_lr, 0.9) - ours(np.zeros(3), g_seq, dropped_lr, 0.9)).max()
# print(f"max |Keras form - ours|: constant lr {gap_const:.1e},  lr dropped after 5 steps {gap_drop:.2f}")
# assert gap_const < 1e-14 and gap_drop > 1e-2
#
# opt, w, g = SGD(lr=1e-3, momentum=0.9), np.zeros(2), np.array([1.0, -2.0])
# for _ in range(200):
#     opt.step({"w": w}, {"w": g})
# print("velocity after 200 constant gradients:", opt.slots["velocity"]["w"], " g/(1 - rho) =", g / 0.1)
# assert np.allclose(opt.slots["velocity"]["w"], g / (1 - 0.9) * (1 - 0.9 ** 200))
# assert np.allclose(opt.slots["velocity"]["w"], g / (1 - 0.9), rtol=1e-8)

# %% [markdown]
# ## 4. Adam
#
# Adam (Kingma & Ba, 2015) keeps two running averages per parameter, of the gradient and of its
# **element-wise square**, with decay rates $\beta_1, \beta_2 \in [0,1)$:
#
# $$m \leftarrow \beta_1 m + (1-\beta_1)\, dW, \qquad v \leftarrow \beta_2 v + (1-\beta_2)\, dW \odot dW, \qquad m_0 = v_0 = 0 .$$
#
# Both start at zero, so early on they are biased towards zero. Unrolled,
# $m_t = (1-\beta_1)\sum_{k=1}^t \beta_1^{t-k} g_k$; if the gradients have a constant mean $\bar g$,
# $\mathbb E[m_t] = \bar g\,(1-\beta_1)\sum_{j=0}^{t-1}\beta_1^{j} = \bar g\,(1-\beta_1^t)$. Dividing by $1-\beta_1^t$ removes the bias
# (and the same for $v$):
#
# $$\hat m = \frac{m}{1-\beta_1^{\,t}}, \qquad \hat v = \frac{v}{1-\beta_2^{\,t}}, \qquad
# W \leftarrow W - \alpha\, \frac{\hat m}{\sqrt{\hat v} + \varepsilon},$$
#
# with $t$ the step count (1 on the first step) and $\varepsilon$ a guard against dividing by zero. The
# update divides each coordinate by its own gradient scale $\sqrt{\hat v}$: every parameter gets a step
# of about $\alpha$, whatever the size of its gradient.
#
# The check: for a constant gradient, $\hat m_t$ is the gradient itself at every $t$ (not only on average).

# %% tags=["active-ipynb"]
# b1, g = 0.9, np.array([0.5, -4.0])
# m_t = np.zeros(2)
# for t in range(1, 51):
#     m_t = b1 * m_t + (1 - b1) * g
#     assert np.allclose(m_t, g * (1 - b1 ** t)) and np.allclose(m_t / (1 - b1 ** t), g)
# print(f"m_50 = {m_t},  m_50 / (1 - b1^50) = {m_t / (1 - b1 ** 50)}  (the gradient {g})")

# %% [markdown]
# **Two slips of [the original](https://github.com/tomjwalker/diy-dnn) README.**
#
# * *Bias correction without $^t$*: $m/(1-\beta_1)$ is a **constant** factor, 10 for $\beta_1 = 0.9$ — it only
#   rescales the learning rate and corrects nothing. It happens to be right at $t=1$ and then drifts
#   to 10 times the gradient (and $v/(1-\beta_2)$ to 1000 times the squared gradient).
# * *$v$ without the square*: $v \leftarrow \beta_2 v + (1-\beta_2)\, dW$ is a second average of the gradient, which is
#   **negative** wherever the gradient is, and then $\sqrt{\hat v}$ is not a number; where gradients
#   change sign it passes through zero and the step $\hat m/(\sqrt{\hat v}+\varepsilon)$ explodes.

# %% tags=["active-ipynb"]
# m_t = np.zeros(2)
# ratios = []
# for t in range(1, 51):
#     m_t = b1 * m_t + (1 - b1) * g
#     ratios.append((m_t / (1 - b1))[0] / g[0])      # the correction without ^t
# print(f"m / (1 - b1) divided by the gradient: t=1 {ratios[0]:.2f}, t=10 {ratios[9]:.2f}, t=50 {ratios[-1]:.2f}")
# assert np.isclose(ratios[0], 1) and ratios[-1] > 9.9
#
# v_no_square = 0.001 * np.array([0.5, -4.0])                   # one step of v <- b2 v + (1 - b2) dW
# with np.errstate(invalid="ignore"):
#     root = np.sqrt(v_no_square / (1 - 0.999))
# print("v without the square, after one gradient [0.5, -4]:", v_no_square, "-> sqrt(v_hat) =", root)
# assert np.isnan(root[1])
# v_flip = 0.999 * (0.001 * 2.0) + 0.001 * (-2.0)               # gradients +2, then -2
# print(f"v without the square, after gradients +2 and -2: {v_flip:.1e} (negative, though the gradients are not small)")
# assert v_flip < 0

# %% [markdown]
# **The first step.** At $t=1$: $m_1 = (1-\beta_1)g$, $v_1 = (1-\beta_2)g^2$, so $\hat m_1 = g$ and $\hat v_1 = g^2$, and
#
# $$\frac{\hat m_1}{\sqrt{\hat v_1}+\varepsilon} = \frac{g}{|g| + \varepsilon} \approx \operatorname{sign}(g):$$
#
# Adam's first step moves **every coordinate by almost exactly $\alpha$**, for gradients of any size
# (as long as $|g| \gg \varepsilon$). It is also why the whole update is nearly invariant to rescaling the loss.

# %%
class Adam(Optimiser):
    """Adam: m <- b1 m + (1-b1) dW, v <- b2 v + (1-b2) dW^2, W <- W - lr m_hat / (sqrt(v_hat) + eps)."""

    name = "adam"
    hyperparameters = ("lr", "beta1", "beta2", "eps")
    slot_names = ("m", "v")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        who = type(self).__name__
        self.beta1 = _fraction(beta1, "beta1", who)
        self.beta2 = _fraction(beta2, "beta2", who)
        self.eps = _positive(eps, "eps", who)

    def _step(self, name, W, dW):
        """Update the moments of parameter `name`; return lr m_hat / (sqrt(v_hat) + eps) in a reused work array.

        Every line writes in place (`out=`, `*=`): no temporary arrays. The bias corrections are
        folded into two scalars, as Kingma & Ba suggest (their section 2): with c1 = 1 - b1^t and
        c2 = 1 - b2^t,  lr (m/c1) / (sqrt(v/c2) + eps) = (lr sqrt(c2)/c1) m / (sqrt(v) + eps sqrt(c2)).
        """
        m, v, tmp = self._slot("m", name, W), self._slot("v", name, W), self._scratch(name, W)
        m *= self.beta1
        np.multiply(dW, 1 - self.beta1, out=tmp)
        m += tmp                                       # m <- b1 m + (1 - b1) dW
        v *= self.beta2
        np.multiply(dW, 1 - self.beta2, out=tmp)
        tmp *= dW                                      # the square: v estimates E[dW^2] >= 0
        v += tmp                                       # v <- b2 v + (1 - b2) dW^2
        c1, root_c2 = 1 - self.beta1 ** self.t, math.sqrt(1 - self.beta2 ** self.t)   # corrections with the power t
        np.sqrt(v, out=tmp)
        tmp += self.eps * root_c2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * root_c2 / c1
        return tmp

    def _update(self, name, W, dW):
        W -= self._step(name, W, dW)


# %% [markdown]
# Checks. By hand: $W = [1, -2]$, $g_1 = [0.5, -4]$, $\alpha = 0.1$. Step 1: $m = [0.05, -0.4]$, $v = [0.00025, 0.016]$,
# $\hat m = [0.5, -4]$, $\hat v = [0.25, 16]$, a step of $0.1\,[1, -1]$ (up to $\varepsilon$): $W = [0.9, -1.9]$.
# Step 2 with $g_2 = [0.5, 4]$ (the second coordinate flips sign): $m = 0.9\,[0.05, -0.4] + 0.1\,[0.5, 4] = [0.095, 0.04]$,
# $v = [0.00049975, 0.031984]$; with $1-\beta_1^2 = 0.19$ and $1-\beta_2^2 = 0.001999$:
# $\hat m = [0.5, 0.04/0.19]$, $\hat v = [0.25, 16]$, so $\hat m/\sqrt{\hat v} = [1,\ 1/19]$ and $W = [0.8,\ -1.9 - 0.1/19]$.
# The coordinate whose gradient flipped barely moves: the average of $-4$ and $+4$ is small.
# Then the first step for gradients from $10^{-3}$ to $10^{3}$, and five steps against a scalar loop.

# %% tags=["active-ipynb"]
# W, adam = np.array([1.0, -2.0]), Adam(lr=0.1)
# adam.step({"W": W}, {"W": np.array([0.5, -4.0])})
# print("Adam, step 1:", W)
# assert np.allclose(adam.slots["m"]["W"], [0.05, -0.4]) and np.allclose(adam.slots["v"]["W"], [0.00025, 0.016])
# assert np.allclose(W, [0.9, -1.9], rtol=0, atol=1e-8)
# adam.step({"W": W}, {"W": np.array([0.5, 4.0])})
# print("Adam, step 2:", W, "  expected:", [0.8, -1.9 - 0.1 / 19])
# assert np.allclose(adam.slots["m"]["W"], [0.095, 0.04]) and np.allclose(adam.slots["v"]["W"], [0.00049975, 0.031984])
# assert np.allclose(W, [0.8, -1.9 - 0.1 / 19], rtol=0, atol=1e-8)
#
# g_wide = np.array([1e-3, -0.05, 1.0, -30.0, 1e3])
# W = np.zeros(5)
# Adam(lr=0.01).step({"W": W}, {"W": g_wide})
# print("first-step sizes / lr for gradients", g_wide, ":", -W / 0.01)
# assert np.allclose(-W, 0.01 * np.sign(g_wide), rtol=1e-5, atol=0)
#
# W_a, W_b, opt_a, opt_b = np.ones(5), np.ones(5), Adam(lr=0.01), Adam(lr=0.01)
# for _ in range(5):
#     g_r = rng.standard_normal(5)
#     opt_a.step({"W": W_a}, {"W": g_r}); opt_b.step({"W": W_b}, {"W": 1000 * g_r})
# print(f"five steps with gradients x1000: max |difference| {np.abs(W_a - W_b).max():.1e}")
# assert np.allclose(W_a, W_b, rtol=0, atol=1e-9)
#
# def adam_scalar_loop(w, g_seq, lr, b1, b2, eps, wd=0.0):
#     """Adam/AdamW written out for one number: the reference the checks compare with."""
#     m = v = 0.0
#     for t, g in enumerate(g_seq, start=1):
#         m = b1 * m + (1 - b1) * g
#         v = b2 * v + (1 - b2) * g * g
#         m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
#         w = w - lr * (m_hat / (v_hat ** 0.5 + eps) + wd * w)
#     return w
#
# W = rng.standard_normal((2, 3)); W_start = W.copy()
# g_steps = rng.standard_normal((5, 2, 3))
# opt = Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6)
# for g_r in g_steps:
#     opt.step({"W": W}, {"W": g_r})
# ref = np.array([adam_scalar_loop(W_start[idx], g_steps[(slice(None),) + idx], 0.01, 0.8, 0.99, 1e-6)
#                 for idx in np.ndindex(W.shape)]).reshape(W.shape)
# print(f"Adam, 5 steps vs scalar loop: rel. error {rel_error(W, ref):.1e}")
# assert rel_error(W, ref) < 1e-12

# %% [markdown]
# ## 5. AdamW: decoupled weight decay
#
# *Weight decay* pulls every weight towards zero a little each step. With plain SGD it is the
# same as an L2 penalty $\frac{\lambda}{2}\lVert W\rVert^2$ in the loss: its gradient $\lambda W$ joins $dW$. Inside
# Adam it is not: the term $\lambda W$ would pass through $\hat m/\sqrt{\hat v}$ and be divided by the gradient scale,
# so weights with large gradients would hardly decay and, on the first step, the decay alone moves
# a weight by a full $\alpha$ whatever $\lambda$ is. Loshchilov & Hutter (2019) therefore **decouple** it,
# taking the decay outside the adaptive step:
#
# $$W \leftarrow W - \alpha\left(\frac{\hat m}{\sqrt{\hat v} + \varepsilon} + \lambda W\right),$$
#
# with $m, v, \hat m, \hat v$ exactly as in Adam (computed from $dW$ alone). $\lambda$ appears **once**. [The original](https://github.com/tomjwalker/diy-dnn)
# README wrote the $\lambda W$ term in two places, so every step decays the weights twice — with a zero gradient,
# $(1-2\alpha\lambda)$ per step instead of $(1-\alpha\lambda)$: twice the decay that was asked for.
# (We scale the decay by $\alpha$, as PyTorch does; the paper writes it with a separate schedule factor.)
#
# PyTorch's `AdamW`, as its documentation writes the algorithm, first shrinks, $W \leftarrow (1-\alpha\lambda) W$, and then
# takes the Adam step. The moments do not depend on $W$, so this is $W - \alpha\lambda W - \alpha\,\hat m/(\sqrt{\hat v}+\varepsilon)$:
# the same formula, up to rounding. (The check below re-implements that order in NumPy; the notebook does not run
# PyTorch. The test suite does: `tests/test_optimisers.py` compares `Adam` and `AdamW` with PyTorch's own optimisers, to a
# relative error of $10^{-8}$, when PyTorch is installed.)
#
# Here the decay applies to **every parameter passed to `step`, biases included** (and, later,
# BatchNorm's $\gamma$ and $\beta$). Many recipes exclude biases and normalisation parameters: to do so,
# split the dict and use two optimisers, e.g. `AdamW` for `{k: v for k, v in params.items() if k.endswith("/W")}`
# and `Adam` with the same $\alpha, \beta$'s for the rest (exercise 2).

# %%
class AdamW(Adam):
    """Adam with decoupled weight decay: W <- W - lr (m_hat / (sqrt(v_hat) + eps) + weight_decay W)."""

    name = "adamw"
    hyperparameters = Adam.hyperparameters + ("weight_decay",)

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2):
        super().__init__(lr, beta1, beta2, eps)
        self.weight_decay = _non_negative(weight_decay, "weight_decay", type(self).__name__)

    def _update(self, name, W, dW):
        # W - lr (d + wd W) = (1 - lr wd) W - lr d: shrink, then the Adam step (PyTorch's order; equal up to rounding)
        step = self._step(name, W, dW)
        W *= 1 - self.lr * self.weight_decay
        W -= step


# %% [markdown]
# Checks: with a zero gradient only the decay acts, so $W_t = (1-\alpha\lambda)^t W_0$ exactly (the double decay
# would give $(1-2\alpha\lambda)^t$); two steps by hand with $\lambda = 0.1$ (the Adam directions $[1, -1]$ and
# $[1, 1/19]$ from above, plus $\lambda W$); the decay-first order of PyTorch's documentation, written out in NumPy; the
# scalar loop; and Adam with L2
# inside, whose first step is a full $\alpha$ even for a tiny $\lambda$.

# %% tags=["active-ipynb"]
# W, opt = np.array([1.0, -2.0]), AdamW(lr=0.1, weight_decay=0.1)
# for _ in range(10):
#     opt.step({"W": W}, {"W": np.zeros(2)})
# print(f"zero gradient, 10 steps: W = {W}, (1 - a l)^10 W0 = {0.99 ** 10 * np.array([1.0, -2.0])}, (1 - 2 a l)^10 W0 = {0.98 ** 10 * np.array([1.0, -2.0])}")
# assert np.allclose(W, 0.99 ** 10 * np.array([1.0, -2.0]), rtol=1e-14)
#
# W, opt = np.array([1.0, -2.0]), AdamW(lr=0.1, weight_decay=0.1)
# opt.step({"W": W}, {"W": np.array([0.5, -4.0])})
# W1_hand = np.array([1.0 - 0.1 * (1 + 0.1 * 1.0), -2.0 - 0.1 * (-1 + 0.1 * -2.0)])   # [0.89, -1.88]
# assert np.allclose(W, W1_hand, rtol=0, atol=1e-8)
# opt.step({"W": W}, {"W": np.array([0.5, 4.0])})
# W2_hand = W1_hand - 0.1 * (np.array([1.0, 1 / 19]) + 0.1 * W1_hand)
# print("AdamW, two steps:", W, " by hand:", W2_hand)
# assert np.allclose(W, W2_hand, rtol=0, atol=1e-8)
#
# W, W_torch_order, opt = W_start.copy(), W_start.copy(), AdamW(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.3)
# m_t, v_t = np.zeros_like(W), np.zeros_like(W)
# for t, g_r in enumerate(g_steps, start=1):
#     opt.step({"W": W}, {"W": g_r})
#     W_torch_order *= 1 - 0.01 * 0.3                     # decay first ...
#     m_t = 0.8 * m_t + 0.2 * g_r; v_t = 0.99 * v_t + 0.01 * g_r ** 2
#     W_torch_order -= 0.01 * (m_t / (1 - 0.8 ** t)) / (np.sqrt(v_t / (1 - 0.99 ** t)) + 1e-6)   # ... then Adam
# ref = np.array([adam_scalar_loop(W_start[idx], g_steps[(slice(None),) + idx], 0.01, 0.8, 0.99, 1e-6, wd=0.3)
#                 for idx in np.ndindex(W.shape)]).reshape(W.shape)
# print(f"AdamW, 5 steps: vs PyTorch's documented order (in NumPy) {rel_error(W, W_torch_order):.1e}, vs scalar loop {rel_error(W, ref):.1e}")
# assert rel_error(W, W_torch_order) < 1e-14 and rel_error(W, ref) < 1e-12
#
# W_l2, W_dec = np.array([1.0, -2.0]), np.array([1.0, -2.0])
# lam = 1e-4
# Adam(lr=0.1).step({"W": W_l2}, {"W": lam * W_l2})              # L2 inside Adam, no data gradient
# AdamW(lr=0.1, weight_decay=lam).step({"W": W_dec}, {"W": np.zeros(2)})
# print(f"decay of one step with lambda = {lam}: L2 inside Adam moves W by {np.array([1.0, -2.0]) - W_l2}, AdamW by {np.array([1.0, -2.0]) - W_dec}")
# assert np.allclose(np.array([1.0, -2.0]) - W_l2, [0.1, -0.1], rtol=1e-3)
# assert np.allclose(np.array([1.0, -2.0]) - W_dec, 0.1 * lam * np.array([1.0, -2.0]))

# %% [markdown]
# ## 6. Names, configs and saved state
#
# `get_optimiser` accepts a name (`"sgd"`, `"momentum"` — SGD with $\rho = 0.9$ —, `"adam"`, `"adamw"`), a config dict
# such as `{"name": "adam", "lr": 1e-3}`, or an optimiser, which it returns as it is. Unknown names and
# unknown arguments are refused with the list of known ones. The defaults: SGD $\alpha = 0.01$ (Keras'), Adam and AdamW
# $\alpha = 10^{-3}$, $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\varepsilon = 10^{-8}$ (the paper's), AdamW $\lambda = 10^{-2}$ (PyTorch's).

# %%
OPTIMISERS = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
}


def get_optimiser(spec):
    """An optimiser from a name ("adam"), a config dict ({"name": "sgd", "lr": 0.1}) or an Optimiser object."""
    if isinstance(spec, Optimiser):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"get_optimiser: expected a name, a config dict or an Optimiser, got {spec!r}; "
                         f"known names: {sorted(OPTIMISERS)}")
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMISERS:
        raise ValueError(f"get_optimiser: unknown optimiser {name!r}; known: {sorted(OPTIMISERS)}")
    cls, defaults = OPTIMISERS[key]
    unknown = sorted(set(kwargs) - set(cls.hyperparameters))
    if unknown:
        raise ValueError(f"get_optimiser: unknown argument(s) {unknown} for {name!r}; known: {list(cls.hyperparameters)}")
    return cls(**{**defaults, **kwargs})


# %% [markdown]
# The state of an optimiser is its step count and its slots; `state_dict()` flattens them into
# names like `"m/dense_0/W"`, which `np.savez` writes as they are. The check runs 3 steps, saves
# (through an in-memory `.npz` file), runs 3 more; a fresh optimiser restored from the file and
# run on the same 3 gradients must give **bitwise** the same parameters.

# %% tags=["active-ipynb"]
# for spec in ("momentum", {"name": "adam", "lr": 0.01}, {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}):
#     opt = get_optimiser(spec)
#     params = {"dense_0/W": rng.standard_normal((3, 2)).astype(np.float32), "dense_0/b": np.zeros(2, np.float32)}
#     g_list = [{k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()} for _ in range(6)]
#     for grads in g_list[:3]:
#         opt.step(params, grads)
#     buffer = io.BytesIO(); np.savez(buffer, **opt.state_dict()); buffer.seek(0)
#     saved_params = {k: p.copy() for k, p in params.items()}
#     for grads in g_list[3:]:
#         opt.step(params, grads)
#     restored = get_optimiser(opt.get_config())
#     restored.load_state_dict(np.load(buffer))
#     for grads in g_list[3:]:
#         restored.step(saved_params, grads)
#     same = all(np.array_equal(params[k], saved_params[k]) for k in params)
#     print(f"{opt!r}: state keys {sorted(opt.state_dict())}, t = {restored.t}, bitwise equal after restore: {same}")
#     assert same and restored.t == opt.t == 6 and restored.get_config() == opt.get_config()

# %% [markdown]
# Bad input is refused, naming the optimiser and the value:

# %% tags=["active-ipynb"]
# bad_inputs = [lambda: SGD(lr=0), lambda: SGD(lr=0.1, momentum=1.0), lambda: Adam(beta1=-0.1), lambda: Adam(beta2=1.0),
#               lambda: Adam(eps=0), lambda: AdamW(weight_decay=-1e-3), lambda: get_optimiser("rmsprop"),
#               lambda: get_optimiser({"name": "adam", "momentum": 0.9}),
#               lambda: SGD(0.1).step({"W": np.zeros(2)}, {"W": np.zeros(3)}),
#               lambda: SGD(0.1).step({"W": np.zeros(2)}, {"b": np.zeros(2)})]
# for make in bad_inputs:
#     try:
#         make()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad input was accepted")

# %% [markdown]
# ## 7. With real layers: in place, or not at all
#
# A network's parameters are the arrays inside its layers. A model (chapter 07) collects them into one
# flat dict, `{"0/W": dense.params["W"], ...}`, *once*; the optimiser must change those very arrays.
# Gradients, in contrast, are recomputed by every `backward` (Dense overwrites its own `grads` arrays in
# place; another layer may bind new ones), so the grads dict is collected after each backward. The cell memorises 32 random samples with
# Dense(64)–ReLU–Dense(4), as in chapter 03, now with Adam — and then shows what goes wrong when an
# update *rebinds* instead: `params[k] = params[k] - lr * grads[k]` puts a new array in the dict, and the
# layers never see it.

# %% tags=["active-ipynb"]
# def tiny_problem(seed):
#     r = np.random.default_rng(seed)
#     X = r.standard_normal((32, 10)).astype(np.float32)
#     y = r.integers(0, 4, size=32)
#     layers = [Dense(64, rng=r), ReLU(), Dense(4, rng=r)]
#     return X, y, layers
#
# def forward_backward(layers, X, y, loss_fn):
#     out = X
#     for layer in layers:
#         out = layer.forward(out, training=True)
#     loss = loss_fn(out, y)
#     grad = loss_fn.backward()
#     for layer in reversed(layers):
#         grad = layer.backward(grad)
#     return loss, out
#
# X_t, y_t, layers = tiny_problem(0)
# loss_fn = SoftmaxCrossEntropy()
# forward_backward(layers, X_t, y_t, loss_fn)             # builds the layers (lazy weights)
# params = {f"{i}/{k}": p for i, layer in enumerate(layers) for k, p in layer.params.items()}
# originals = {k: id(p) for k, p in params.items()}
# opt, history = Adam(lr=0.01), []
# for step in range(150):
#     loss, out = forward_backward(layers, X_t, y_t, loss_fn)
#     history.append(loss)
#     grads = {f"{i}/{k}": g for i, layer in enumerate(layers) for k, g in layer.grads.items()}
#     opt.step(params, grads)
# in_place = all(layers[int(k.split("/")[0])].params[k.split("/")[1]] is p and id(p) == originals[k] for k, p in params.items())
# print(f"Adam: loss {history[0]:.3f} -> {history[-1]:.4f}, accuracy {accuracy(out, y_t):.0%};  same arrays as the layers': {in_place}")
# assert in_place and accuracy(out, y_t) == 1.0 and history[-1] < 0.05
# print("Adam's slots:", sorted(opt.state_dict()))
#
# X_t, y_t, layers = tiny_problem(0)
# forward_backward(layers, X_t, y_t, loss_fn)
# params = {f"{i}/{k}": p for i, layer in enumerate(layers) for k, p in layer.params.items()}
# rebound = []
# for step in range(20):
#     loss, _ = forward_backward(layers, X_t, y_t, loss_fn)
#     rebound.append(loss)
#     for i, layer in enumerate(layers):
#         for k, g in layer.grads.items():
#             params[f"{i}/{k}"] = params[f"{i}/{k}"] - 0.01 * g    # WRONG: a new array, the layer keeps the old one
# print(f"rebinding update: loss {rebound[0]:.4f} -> {rebound[-1]:.4f} (nothing learned)")
# assert rebound[0] == rebound[-1]

# %% [markdown]
# **Or not at all.** One NaN in one gradient — from a NaN in the data, or a loss that overflowed — would
# poison every later step: the weight becomes NaN, and Adam's $v$ keeps the NaN for good. So `step` looks
# at every gradient *before* it changes anything: one dot product $\langle g, g\rangle$ per tensor (a BLAS
# call, no temporary array), which is finite whenever $g$ is, unless the squares overflow — only then does an
# exact element-wise scan decide. A NaN or inf is refused with a `NonFiniteError` that names the tensor, and
# weights, slots and $t$ stay exactly as they were.

# %% tags=["active-ipynb"]
# X_t, y_t, layers = tiny_problem(1)
# forward_backward(layers, X_t, y_t, loss_fn)
# params = {f"{i}/{k}": p for i, layer in enumerate(layers) for k, p in layer.params.items()}
# grads = {f"{i}/{k}": g for i, layer in enumerate(layers) for k, g in layer.grads.items()}
# opt = Adam(lr=0.01)
# opt.step(params, grads)                                   # one good step: Adam's slots exist
# weights_before, state_before = {k: p.copy() for k, p in params.items()}, opt.state_dict()
# grads["2/b"][1] = np.nan                                  # the LAST tensor: a late check would have updated the others
# try:
#     opt.step(params, grads)
# except NonFiniteError as e:
#     print("NonFiniteError:", e)
# unchanged = all(np.array_equal(params[k], weights_before[k]) for k in params) and \
#     all(np.array_equal(v, opt.state_dict()[k]) for k, v in state_before.items())
# print("weights, slots and t unchanged:", unchanged, "  t =", opt.t)
# assert unchanged and opt.t == 1

# %% [markdown]
# ## 8. Clipping by the global norm
#
# A single bad batch can produce a huge gradient, and one huge step can throw the parameters far away.
# Clipping bounds the **length** of the step without changing its **direction**. Treat all parameter
# gradients of the network as one long vector $g = (\mathrm{vec}\,dW_1, \mathrm{vec}\,db_1, \dots)$; its length is
#
# $$\lVert g\rVert = \sqrt{\sum_{\ell} \lVert dW_\ell\rVert_F^2}, \qquad \lVert dW\rVert_F^2 = \sum_{ij} dW_{ij}^2 ,$$
#
# and, with the threshold $c > 0$ (default $5$, as in [the original](https://github.com/tomjwalker/diy-dnn)),
#
# $$g \leftarrow g \cdot \min\!\left(1, \frac{c}{\lVert g\rVert}\right).$$
#
# The factor is a positive scalar shared by every array, so the direction is unchanged. If $\lVert g\rVert \le c$
# the factor is 1 and nothing changes; otherwise the new length is $\lVert g\rVert \cdot c/\lVert g\rVert = c$ exactly.
# `clip_by_global_norm(grads, max_norm)` does this in place and returns $\lVert g\rVert$ *before* clipping (worth
# logging: a training loop can watch it). A NaN or infinite norm cannot be clipped into anything meaningful;
# it raises `NonFiniteError` (a `ValueError`) naming the gradients at fault.
#
# **What [the original](https://github.com/tomjwalker/diy-dnn) did instead**, three ways wrong:
#
# * it wrote the factor with $\max$: $\max(1, c/\lVert g\rVert) \ge 1$ never shrinks a large gradient, and
#   *blows up* every small one to length $c$;
# * it clipped each tensor separately by its *spectral* norm $\lVert dW\rVert_2 = \sigma_{\max}(dW)$: tensors get
#   different factors, so the direction of $g$ changes (and $\lVert dW\rVert_2 \le \lVert dW\rVert_F$ measures something else);
# * it also clipped the *activation* gradients $dX$ passed between layers during backprop, so the gradients of the
#   lower layers stopped being the gradient of the loss at all.

# %%
def _gradient_items(grads, who):
    """(name, array) pairs of a dict name -> array, or of a list/tuple of arrays."""
    if isinstance(grads, dict):
        return list(grads.items())
    if isinstance(grads, (list, tuple)):
        return list(enumerate(grads))
    raise ValueError(f"{who}: expected a dict name -> gradient array (or a list of arrays), got {type(grads).__name__}")


def global_norm(grads):
    """sqrt of the sum of squares of every entry of every gradient array."""
    items = _gradient_items(grads, "global_norm")
    # each array's sum of squares in its own dtype (a float32 dot product, no float64 copy of every gradient),
    # added up in Python floats (float64)
    arrays = [np.asarray(g) for _, g in items]
    arrays = [g if g.dtype.kind == "f" else g.astype(np.float64) for g in arrays]   # integers: no silent wrap-around
    total = sum(float(np.vdot(g, g)) for g in arrays)
    if not math.isfinite(total):
        # the squares of huge float32 entries (> 1e19) overflow: recount in float64 before calling it inf
        total = sum(float(np.vdot(g, g)) for g in (g.astype(np.float64) for g in arrays))
    if not math.isfinite(total) and all(np.isfinite(g).all() for g in arrays):
        # finite entries beyond 1e154 overflow even float64's squares: scale by the largest |entry| first,
        # ||g|| = a ||g / a||. (Inf only if the norm itself exceeds the largest float, about 1.8e308.)
        a = max((float(np.max(np.abs(g))) for g in arrays if g.size), default=0.0)
        scaled = (g.astype(np.float64) / a for g in arrays)
        return a * math.sqrt(sum(float(np.vdot(g, g)) for g in scaled))
    return math.sqrt(total)


def clip_by_global_norm(grads, max_norm=5.0, norm=None):
    """Scale all gradient arrays in place by min(1, max_norm / global norm); return the norm before clipping.

    `norm`: the global norm if the caller has computed it already (the training loop logs it), so that
    it is not counted twice."""
    who = "clip_by_global_norm"
    max_norm = _positive(max_norm, "max_norm", who)
    items = _gradient_items(grads, who)
    for name, g in items:
        if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
            kind = g.dtype if isinstance(g, np.ndarray) else type(g).__name__
            raise ValueError(f"{who}: gradient {name!r} must be a float NumPy array (it is scaled in place), got {kind}")
    norm = global_norm(grads) if norm is None else float(norm)
    if not math.isfinite(norm):
        bad = [name for name, g in items if not np.all(np.isfinite(g))]
        if bad:
            raise NonFiniteError(f"{who}: the global gradient norm is {norm}; gradients with NaN or inf: {bad}")
        # finite gradients whose norm exceeds the largest float: shrink them by their largest |entry| first
        a = max(float(np.max(np.abs(g))) for _, g in items if g.size)
        for _, g in items:
            g /= a
        scale = max_norm / global_norm(grads)
        for _, g in items:
            g *= scale
        return norm
    if norm > max_norm:
        scale = max_norm / norm
        for _, g in items:
            g *= scale
    return norm

# %% [markdown]
# The checks: the global norm equals the norm of the concatenated vector; a gradient set under the threshold
# is left bitwise untouched; one above it ends with norm $c$ and the same direction (cosine 1), and the return
# value is the norm before. Then the original's three variants on the same gradients.

# %% tags=["active-ipynb"]
# # bias gradients are often much smaller than weight gradients
# grads = {"0/W": rng.standard_normal((10, 64)), "0/b": 0.05 * rng.standard_normal(64), "2/W": rng.standard_normal((64, 4))}
# flat = np.concatenate([g.ravel() for g in grads.values()])
# print(f"global norm {global_norm(grads):.6f},  norm of the concatenated vector {np.linalg.norm(flat):.6f}")
# assert np.isclose(global_norm(grads), np.linalg.norm(flat), rtol=1e-14)
#
# small = {k: g * (4.0 / np.linalg.norm(flat)) for k, g in grads.items()}       # norm 4 < 5
# small_before = {k: g.copy() for k, g in small.items()}
# returned = clip_by_global_norm(small, 5.0)
# assert np.isclose(returned, 4.0) and all(np.array_equal(small[k], small_before[k]) for k in small)
#
# big = {k: g * 10.0 for k, g in grads.items()}
# big_arrays = {k: id(g) for k, g in big.items()}
# returned = clip_by_global_norm(big, 5.0)
# clipped = np.concatenate([g.ravel() for g in big.values()])
# cosine = clipped @ flat / (np.linalg.norm(clipped) * np.linalg.norm(flat))
# print(f"norm 4: returned {global_norm(small_before):.3f}, untouched;  norm {returned:.2f}: clipped to {global_norm(big):.12f}, cosine with the original {cosine:.15f}")
# assert np.isclose(returned, 10 * np.linalg.norm(flat)) and abs(global_norm(big) - 5.0) < 1e-12
# assert abs(cosine - 1) < 1e-12 and all(id(g) == big_arrays[k] for k, g in big.items())
#
# # the original's variants
# tiny = {k: g * (0.1 / np.linalg.norm(flat)) for k, g in grads.items()}           # norm 0.1
# with_max = {k: g * max(1.0, 5.0 / global_norm(tiny)) for k, g in tiny.items()}
# print(f"with max instead of min, a gradient of norm 0.1 becomes norm {global_norm(with_max):.1f}")
# assert np.isclose(global_norm(with_max), 5.0)
#
# big = {k: g * 10.0 for k, g in grads.items()}          # norm 10 |g|, well above c = 5
# per_tensor = {k: g * min(1.0, 5.0 / np.linalg.norm(g, 2)) for k, g in big.items()}   # ord 2: spectral for a matrix
# pt = np.concatenate([g.ravel() for g in per_tensor.values()])
# cos_pt = pt @ flat / (np.linalg.norm(pt) * np.linalg.norm(flat))
# print(f"per-tensor spectral clipping: cosine with the true gradient {cos_pt:.4f}; spectral <= Frobenius: "
#       f"{all(np.linalg.norm(g, 2) <= np.linalg.norm(g) for g in grads.values() if g.ndim == 2)}")
# assert cos_pt < 0.999
#
# # clipping the activation gradient between the layers of a small network
# X_t, y_t, layers = tiny_problem(1)
# forward_backward(layers, X_t, y_t, loss_fn)
# true_grad = np.concatenate([g.ravel() for layer in layers for g in layer.grads.values()])
# grad = loss_fn.backward()
# grad = layers[2].backward(grad)
# grad = grad * min(1.0, 0.01 / np.linalg.norm(grad))        # clip dX of the last Dense to norm 0.01
# grad = layers[0].backward(layers[1].backward(grad))
# mixed = np.concatenate([g.ravel() for layer in layers for g in layer.grads.values()])
# cos_act = mixed @ true_grad / (np.linalg.norm(mixed) * np.linalg.norm(true_grad))
# print(f"clipping an activation gradient: cosine of the resulting parameter 'gradient' with the true one {cos_act:.4f}")
# assert cos_act < 0.999

# %% [markdown]
# ## 9. A picture: four optimisers in two valleys
#
# Two classic test functions with two parameters, so the paths can be drawn: the elongated quadratic
# of section 1 (minimum at the origin, 100 times more curved across than along), and Rosenbrock's
# banana valley $f(x, y) = (1-x)^2 + 100(y - x^2)^2$ (minimum at $(1, 1)$ in a narrow curved valley). Each
# optimiser uses a learning rate that suits it (SGD's is just under its stability limit $2/100$ on the quadratic).

# %% tags=["active-ipynb"]
# def rosenbrock(w):
#     x, y = w
#     return (1 - x) ** 2 + 100 * (y - x * x) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
#
# def descend(f, opt, w_start, n_steps):
#     w = np.array(w_start, dtype=np.float64)
#     path, losses = [w.copy()], []
#     for _ in range(n_steps):
#         L, g = f(w)
#         losses.append(L)
#         opt.step({"w": w}, {"w": g})
#         path.append(w.copy())
#     losses.append(f(w)[0])
#     return np.array(path), np.array(losses)
#
# setups = {
#     "quadratic": (quadratic, (-8.0, 1.5), 150, {"SGD lr=0.019": SGD(0.019), "momentum lr=0.01, rho=0.9": SGD(0.01, 0.9),
#                                                 "Adam lr=0.3": Adam(0.3), "AdamW lr=0.3, wd=0.1": AdamW(0.3, weight_decay=0.1)}),
#     "Rosenbrock": (rosenbrock, (-1.5, 2.0), 1000, {"SGD lr=1e-3": SGD(1e-3), "momentum lr=1e-3, rho=0.9": SGD(1e-3, 0.9),
#                                                    "Adam lr=0.05": Adam(0.05), "AdamW lr=0.05, wd=0.1": AdamW(0.05, weight_decay=0.1)}),
# }
# runs = {problem: {label: descend(f, opt, start, n) for label, opt in opts.items()}
#         for problem, (f, start, n, opts) in setups.items()}
# for problem, results in runs.items():
#     print(problem + ":", ", ".join(f"{label.split()[0]} {losses[0]:.1f} -> {losses[-1]:.2e} at {np.round(path[-1], 3)}"
#                                    for label, (path, losses) in results.items()))
#
# fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=80)   # a lighter notebook; media/ gets 110 dpi
# colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
# grids = {"quadratic": (np.linspace(-9, 9, 200), np.linspace(-2.5, 2.5, 200)), "Rosenbrock": (np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))}
# for col, (problem, results) in enumerate(runs.items()):
#     f = setups[problem][0]
#     xs, ys = grids[problem]
#     XX, YY = np.meshgrid(xs, ys)
#     ZZ = np.array([[f(np.array([x, y]))[0] for x in xs] for y in ys])
#     ax = axes[0, col]
#     ax.contour(XX, YY, np.log10(ZZ + 1e-3), levels=12, cmap="Greys", linewidths=0.5)
#     for color, (label, (path, losses)) in zip(colors, results.items()):
#         ax.plot(path[:, 0], path[:, 1], ".-" if len(path) < 200 else "-", color=color, ms=2, lw=1, label=label)
#         ax.plot(*path[-1], "o", color=color, ms=7, mec="k")       # where it ended
#     ax.plot(*((0, 0) if problem == "quadratic" else (1, 1)), "k*", ms=12)
#     ax.set(title=f"{problem}: paths from {tuple(setups[problem][1])}", xlabel="$w_1$", ylabel="$w_2$")
#     ax.legend(fontsize=8, loc="lower right" if problem == "quadratic" else "upper left")
#     ax = axes[1, col]
#     for color, (label, (path, losses)) in zip(colors, results.items()):
#         ax.semilogy(np.maximum(losses, 1e-30), color=color, label=label)
#     ax.set(title=f"{problem}: loss against step", xlabel="step", ylabel="loss")
#     ax.legend(fontsize=8); ax.grid(True, alpha=0.3)
# fig.tight_layout()
# save_figure(fig, "06_optimiser_trajectories.png")
#
# final = {p: {label.split()[0]: losses[-1] for label, (path, losses) in r.items()} for p, r in runs.items()}
# assert max(final["quadratic"][k] for k in ("momentum", "Adam", "AdamW")) < 1e-3   # they reach the bottom of the bowl
# assert final["quadratic"]["SGD"] > 100 * final["quadratic"]["momentum"]    # SGD is held back by the steep direction
# assert final["Rosenbrock"]["momentum"] < 1e-3 and final["Rosenbrock"]["Adam"] < 1e-3
# assert final["Rosenbrock"]["SGD"] > 100 * final["Rosenbrock"]["momentum"]   # plain SGD crawls along the valley
# assert 1e-3 < final["Rosenbrock"]["AdamW"] < 1.0                            # decay pulls it off (1, 1)
# plt.show()

# %% [markdown]
# What the picture shows. On the quadratic, SGD — its learning rate capped by the steep direction —
# zig-zags across the valley and crawls along it. Momentum swings across the valley too, but along the
# floor, where successive gradients agree, its velocity grows to $1/(1-\rho) = 10$ times the gradient. Adam's first
# steps go diagonally — every coordinate moves by $\alpha$, whatever its gradient — and then it homes in; AdamW
# gets there faster still, because here its decay pulls towards the minimum at the origin. In Rosenbrock's
# curved valley plain SGD, whose learning rate is limited by the steep walls, has barely moved along the floor
# after 1000 steps, while momentum and Adam reach $(1, 1)$. AdamW stops short: its decay pulls towards $0$, so it
# settles where the Adam step balances $\lambda W$. Weight decay changes the problem being solved — the point of a
# regulariser, and a reason to exclude parameters (biases) whose size should not be penalised.

# %% [markdown]
# ## Engineering: one update for the whole model
#
# The ideas of this chapter are complete without this section. A `Sequential` keeps all its
# parameters in one flat array (and the gradients in another; chapter 14 shows why and how); each layer holds
# views into them. Every update above is element-wise and the same for every parameter, so it can run **once on the flat arrays**
# instead of once per parameter: the same numbers, bit for bit, with one NumPy call per operation instead of
# one per array and operation (chapter 14 measures the difference; the `Loop` of chapter 09 uses it).
# The slots become views into flat buffers too, so `slots`, `state_dict()` and `load_state_dict()` work
# by parameter name exactly as before. Where the update depends on the name — L2 or a decay mask (chapter 11),
# or a subclass with its own `_update` — `step_flat` declines and the caller uses `step`.

# %%
FLAT = "*"                # the name under which step_flat hands the flat arrays to _update (a real one has a "/")


def _step_flat(self, flat):
    """step() for a model packed into one array (chapter 14's FlatParams): each operation of the update runs once,
    on the whole flat array. Same numbers as step(), bit for bit. The caller has proved the gradients finite.

    Returns False, changing nothing, where the update is not the same for every parameter (L2, a decay mask,
    a subclass with its own _update), or where a slot does not fit its parameter: then the caller uses step()."""
    if type(self) not in FLAT_OPTIMISERS or self.l2 or self.decays is not None:
        return False
    flat_slots = self._flat_slots(flat)
    if flat_slots is None:
        return False
    rate = self._rate_now(self.t + 1)               # refused before anything changes, as in step()
    self.t += 1
    lr = self.lr
    self.current_lr = rate
    try:
        self.lr = self.current_lr                   # _update reads self.lr (chapter 11's schedule)
        for slot, buf in flat_slots.items():
            self.slots[slot][FLAT] = buf            # _update finds its slot buffers by name
        self._update(FLAT, flat.params, flat.grads)
    finally:
        self.lr = lr
        for slot in flat_slots:
            self.slots[slot].pop(FLAT, None)
    return True


def _flat_slots(self, flat):
    """{slot: flat buffer}, whose views are the per-parameter slots; made (or made again, after load_state_dict or a
    new packing) from the slots there are, zeros elsewhere. None if a slot does not fit its parameter."""
    made = self.__dict__.get("_flat_slots_made")
    if made is not None and made[0] is flat:
        slots = self.slots
        for slot, name, view in made[2]:            # still the views? (load_state_dict binds new arrays)
            if slots[slot].get(name) is not view:
                break
        else:
            return made[1]
    bufs, views = {}, []
    for slot in self.slot_names:
        named = self.slots[slot]
        if not named.keys() <= set(flat.names):
            return None                             # slots of parameters the model does not have: step() says so
        buf = bufs[slot] = np.zeros_like(flat.params)
        for name, where, W in zip(flat.names, flat.slices, flat.param_views):
            view = buf[where].reshape(W.shape)
            old = named.get(name)
            if old is not None:
                if np.shape(old) != W.shape:
                    return None
                view[...] = old
            views.append((slot, name, view))
    for slot, name, view in views:                  # only now: nothing changes if a slot does not fit
        self.slots[slot][name] = view
    self._flat_slots_made = (flat, bufs, views)
    return bufs


Optimiser.step_flat, Optimiser._flat_slots = _step_flat, _flat_slots
FLAT_OPTIMISERS = (SGD, Adam, AdamW)      # element-wise updates, the same for every parameter


# %% [markdown]
# ## Summary
#
# * Descend: $W \leftarrow W - \alpha\,dW$ (the original's `+` climbs). Momentum ($\rho$ = `momentum`): $v \leftarrow \rho v + dW$, $W \leftarrow W - \alpha v$
#   (Keras' $u \leftarrow \rho u - \alpha dW$, $W \leftarrow W + u$ is the same for constant $\alpha$).
# * Adam: $m, v$ are running means of $dW$ and $dW^2$ (the square!), bias-corrected by $1-\beta^t$ (the power!);
#   $W \leftarrow W - \alpha\,\hat m/(\sqrt{\hat v}+\varepsilon)$. Its first step moves every coordinate by $\approx\alpha$.
# * AdamW: $W \leftarrow W - \alpha(\hat m/(\sqrt{\hat v}+\varepsilon) + \lambda W)$, decay once, outside the adaptive scaling; equal,
#   up to rounding, to the decay-first order PyTorch documents (re-implemented here; the tests compare with PyTorch itself
#   when it is installed). Here
#   it decays every parameter it is given, biases included.
# * Every optimiser updates the layers' arrays **in place**; its slots, `t`, `state_dict()` and `get_config()`
#   make it saveable and rebuildable (`get_optimiser`), bitwise.
# * Clip by the **global** norm over all parameter gradients: $g \leftarrow g\min(1, c/\lVert g\rVert)$ keeps the direction,
#   leaves small gradients alone and shortens large ones to exactly $c$ — not `max`, not per-tensor spectral
#   norms, never on activation gradients.
# * Engineering: on a model packed into one flat array (chapter 14), `step_flat` runs each operation of the update
#   once for the whole model — the same numbers bit for bit, one NumPy call per operation instead of one per array.
#
# ## Exercises
#
# 1. Nesterov momentum evaluates the gradient "ahead", at $W - \alpha\rho v$. Show that it can be written as
#    $v \leftarrow \rho v + dW$, $W \leftarrow W - \alpha(dW + \rho v)$, add it to `SGD` as an option, and compare on Rosenbrock.
# 2. Add an `exclude` option to `AdamW` (a function of the parameter name, e.g. `lambda k: k.endswith("/b")`) that
#    switches the decay off for those parameters. Check with a zero gradient that biases keep their values.
# 3. Train the tiny network of section 7 with the original's clip-norm (`max` instead of `min`) and with the
#    correct one, both with $c = 5$ and plain SGD. Plot both losses; what does `max` do once the gradients become small?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Write $\tilde W_t = W_t - \alpha\rho v_t$ for the look-ahead point and $\tilde g_t$ for the gradient there. Nesterov's
# step is $v_{t+1} = \rho v_t + \tilde g_t$, $W_{t+1} = W_t - \alpha v_{t+1}$. Then
#
# $$\tilde W_{t+1} = W_{t+1} - \alpha\rho v_{t+1} = \tilde W_t + \alpha\rho v_t - \alpha v_{t+1} - \alpha\rho v_{t+1} = \tilde W_t - \alpha(\tilde g_t + \rho v_{t+1}),$$
#
# using $\alpha\rho v_t - \alpha v_{t+1} = -\alpha\tilde g_t$. So an optimiser that *stores* the look-ahead point needs only the gradient
# at the point it stores: $v \leftarrow \rho v + dW$, $W \leftarrow W - \alpha(dW + \rho v)$ (PyTorch's `nesterov=True` form). In the module it
# would be a `nesterov=False` argument of `SGD`; here it is a subclass. The cell checks the identity step by step on the
# quadratic of section 1, then races it on Rosenbrock against plain momentum.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     class NesterovSGD(SGD):
#         """SGD with Nesterov momentum: v <- rho v + dW, W <- W - lr (dW + rho v)."""
#         def __init__(self, lr=0.01, momentum=0.9):
#             super().__init__(lr, momentum)
#         def _update(self, name, W, dW):
#             v = self._slot("velocity", name, W)
#             v *= self.momentum
#             v += dW
#             W -= self.lr * (dW + self.momentum * v)
#
#     lr_n, rho_n = 0.01, 0.9
#     W_look, v_look = np.array([-8.0, 1.5]), np.zeros(2)          # the look-ahead definition, written out
#     W_store, nesterov = W_look.copy(), NesterovSGD(lr_n, rho_n)   # the stored-look-ahead form
#     for step in range(30):
#         g_ahead = quadratic(W_look - lr_n * rho_n * v_look)[1]
#         v_look = rho_n * v_look + g_ahead
#         W_look = W_look - lr_n * v_look
#         nesterov.step({"w": W_store}, {"w": quadratic(W_store)[1]})
#         assert np.allclose(W_store, W_look - lr_n * rho_n * v_look, rtol=0, atol=1e-12)
#     path_nag, losses_nag = descend(rosenbrock, NesterovSGD(1e-3, 0.9), (-1.5, 2.0), 1000)
#     losses_mom = runs["Rosenbrock"]["momentum lr=1e-3, rho=0.9"][1]
#     print(f"identity holds for 30 steps;  Rosenbrock after 1000 steps: momentum {losses_mom[-1]:.2e}, Nesterov {losses_nag[-1]:.2e} "
#           f"at {np.round(path_nag[-1], 4)}")
#     assert losses_nag[-1] < 1e-3

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# A subclass that switches the decay off (for one parameter, for one step) where `exclude(name)` is true.
# With a zero gradient, Adam's step is exactly zero, so excluded biases keep their values bitwise, and the weights
# decay by $(1-\alpha\lambda)^t$. (Chapter 11 builds the same idea into every optimiser, as its `decays` mask.)
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     class AdamWExclude(AdamW):
#         def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2, exclude=lambda name: False):
#             super().__init__(lr, beta1, beta2, eps, weight_decay)
#             self.exclude = exclude
#         def _update(self, name, W, dW):
#             if not self.exclude(name):
#                 return super()._update(name, W, dW)
#             decay, self.weight_decay = self.weight_decay, 0.0     # no decay for this parameter, this step
#             try:
#                 super()._update(name, W, dW)
#             finally:
#                 self.weight_decay = decay
#
#     params_ex = {"0/W": rng.standard_normal((3, 2)), "0/b": rng.standard_normal(2)}
#     start_ex = {k: p.copy() for k, p in params_ex.items()}
#     opt_ex = AdamWExclude(lr=0.1, weight_decay=0.1, exclude=lambda name: name.endswith("/b"))
#     for _ in range(10):
#         opt_ex.step(params_ex, {k: np.zeros_like(p) for k, p in params_ex.items()})
#     print("bias unchanged:", np.array_equal(params_ex["0/b"], start_ex["0/b"]),
#           "  weights decayed by (1 - lr wd)^10:", np.allclose(params_ex["0/W"], 0.99 ** 10 * start_ex["0/W"], rtol=1e-14))
#     assert np.array_equal(params_ex["0/b"], start_ex["0/b"]) and np.allclose(params_ex["0/W"], 0.99 ** 10 * start_ex["0/W"], rtol=1e-14)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# With `max`, the factor $\max(1, c/\lVert g\rVert)$ is at least 1: large gradients pass unclipped, and every gradient
# shorter than $c$ is **blown up** to length $c$, so every step is at least $\alpha c$ long, however close to a minimum.
# On the tiny network this looks harmless at first — the loss even falls faster — but only because memorising 32
# points has no minimum at finite weights: the cross-entropy keeps falling as the logits grow, and full-length steps
# make the weights grow without bound (overconfidence, not learning). Where a minimum exists, as in the valley of
# section 1, `max` never settles: it keeps jumping around the bottom at a distance set by $\alpha c$, while the correct
# clipping lets the shrinking gradients through unchanged and converges.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     def train_clipped(factor, steps=300, lr=0.1, c=5.0):
#         X_c, y_c, net = tiny_problem(0)
#         loss_c, norms = SoftmaxCrossEntropy(), []
#         forward_backward(net, X_c, y_c, loss_c)                     # builds the layers
#         params_c = {f"{i}/{k}": p for i, layer in enumerate(net) for k, p in layer.params.items()}
#         opt_c, losses_c = SGD(lr), []
#         for step in range(steps):
#             loss, _ = forward_backward(net, X_c, y_c, loss_c)
#             losses_c.append(loss)
#             grads_c = {f"{i}/{k}": g for i, layer in enumerate(net) for k, g in layer.grads.items()}
#             norm = global_norm(grads_c)
#             for g in grads_c.values():
#                 g *= factor(c / norm)
#             norms.append(global_norm(grads_c))
#             opt_c.step(params_c, grads_c)
#         return np.array(losses_c), np.array(norms), global_norm(params_c)
#
#     clip_min, clip_max = (lambda r: min(1.0, r)), (lambda r: max(1.0, r))
#     losses_min, norms_min, weights_min = train_clipped(clip_min)
#     losses_max, norms_max, weights_max = train_clipped(clip_max)
#     print(f"tiny network, min (correct): loss {losses_min[0]:.3f} -> {losses_min[-1]:.4f}, last gradient norm {norms_min[-1]:.3f}, "
#           f"weight norm {weights_min:.1f};  max: loss -> {losses_max[-1]:.1e}, gradient norm never below {norms_max.min():.3f}, "
#           f"weight norm {weights_max:.1f}")
#     assert norms_max.min() > 5.0 * (1 - 1e-5) and weights_max > 1.5 * weights_min      # (float32 rounding)
#
#     def valley(factor, steps=1000, lr=0.019, c=5.0):          # section 9's SGD learning rate
#         w, opt_v, out = np.array([-8.0, 1.5]), SGD(lr), []
#         for step in range(steps):
#             L, g = quadratic(w)
#             out.append(L)
#             opt_v.step({"w": w}, {"w": g * factor(c / np.linalg.norm(g))})
#         return np.array(out)
#
#     valley_min, valley_max = valley(clip_min), valley(clip_max)
#     print(f"valley of section 1: min -> loss {valley_min[-1]:.1e};  max -> loss {valley_max[-1]:.1e} (it never settles)")
#     assert valley_min[-1] < 1e-10 and valley_max[-20:].min() > 1e-2
#     fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
#     for ax, (curve_min, curve_max, title) in zip(axes, ((losses_min, losses_max, "tiny network, SGD lr 0.1"),
#                                                        (valley_min, valley_max, "valley of section 1, SGD lr 0.019"))):
#         ax.semilogy(curve_min, label=r"$g \cdot \min(1, c/\|g\|)$ (correct)")
#         ax.semilogy(curve_max, label=r"$g \cdot \max(1, c/\|g\|)$ (the original's)")
#         ax.set(xlabel="step", ylabel="loss", title=title); ax.legend(fontsize=8)
#     fig.suptitle("Clip-norm with min and with max, c = 5", y=1.02)

# %% [markdown]
# ---
# [← 05 — BatchNorm](05_batchnorm.ipynb) · [begin here](00_begin_here.ipynb) · **06 — optimisers** · [next: 07 — model →](07_model.ipynb)
