# %% [markdown]
# [← 10 — experiments toolkit](10_experiments.ipynb) · [begin here](00_begin_here.ipynb) · **11 — regularisation** · [next: 12 — convolution →](12_convolution.ipynb)
#
# # 11 — Overfitting and regularisation: dropout, weight decay, schedules, augmentation
#
# Chapter 09 trained its first MNIST network and drew this figure. Its left panel shows the problem this
# chapter is about: from epoch 3 on the **validation** loss stops falling and then drifts *up*, while the
# **training** loss keeps falling tenfold. The network is memorising its 55,000 training images instead of
# learning what carries over to new ones: it **overfits**. The Loop already keeps the checkpoint with the
# best validation accuracy (early stopping in effect), but that only stops the damage; it does not make the
# network generalise better.
#
# ![Chapter 09's MNIST curves](../media/09_mnist_mlp_curves.png)
#
# Four remedies, each derived, built and checked here, then combined on MNIST:
#
# 1. **Dropout** — train a random sub-network at each step;
# 2. **weight decay** — pull the weights towards zero, and why "L2 in the loss" and "decoupled decay"
#    are the same for plain SGD but not with momentum or Adam;
# 3. **learning-rate schedules** — constant, step, cosine, linear warm-up, composable;
# 4. **data augmentation** — random shifts (and small rotations) of the training images.
#
# Each remedy comes with the reason it works (dropout as an average over many thinned networks, L2 as a prior
# and as a limit on capacity, weight decay next to BatchNorm), and section 5 reads honestly which of them
# helped on MNIST and which did not. The experiment [07_regularisation](experiments/07_regularisation.ipynb)
# measures each remedy alone and together on the full data, three seeds each.

# %%
"""Chapter 11: overfitting and regularisation: Dropout, weight decay, learning-rate schedules, data augmentation."""
import json
import math
import warnings

import numpy as np

from diydnn._01_dense import Layer, as_count
from diydnn._05_batchnorm import _is_real
from diydnn._07_model import register_layer

# %% tags=["active-ipynb"]
# import tempfile
# import time
# from pathlib import Path
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, quick_mode, rel_error, save_figure
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy
# from diydnn._06_optimisers import SGD, Adam, AdamW
# from diydnn._07_model import LAYER_TYPES, Sequential
# from diydnn._08_mnist import BatchStream
# from diydnn._09_training import EvalTask, Loop, TrainTask, WandbLogger
# from diydnn._10_experiments import check_settings, mlp, mnist_splits, run_experiment
# from diydnn._10a_panels import experiment_controls, settings_from_controls
# from IPython.display import Markdown, display
# from threadpoolctl import threadpool_limits
# from diydnn._05_batchnorm import BatchNorm
# QUICK = quick_mode()
# scratch = Path(tempfile.mkdtemp(prefix="diydnn_ch11_"))
# threadpool_limits(limits=1)     # one BLAS thread for every timing here (chapter 14 shows why; = diydnn.set_threads(1))

# %% [markdown]
# ## 1. Dropout
#
# Throughout this course **`rate` $p$ is the probability of *dropping* a unit** (as in Keras and
# PyTorch; the original dropout paper's $p$ is the probability of *keeping* one). In training, every entry
# of the input $X$ (shape $m\times n$) gets its own mask bit
#
# $$M_{ij} \sim \mathrm{Bernoulli}(1-p) \ \ \text{(1 = keep)}, \qquad Y = X \odot \frac{M}{1-p}.$$
#
# This is **inverted** dropout: the kept units are scaled up by $\frac{1}{1-p}$ *at training time*, so
# that the expected output is the input,
#
# $$\mathbb E[Y_{ij}] = X_{ij}\,\frac{\mathbb E[M_{ij}]}{1-p} = X_{ij}\,\frac{1-p}{1-p} = X_{ij},
# \qquad \mathrm{Var}[Y_{ij}] = X_{ij}^2\,\frac{\mathrm{Var}[M_{ij}]}{(1-p)^2} = X_{ij}^2\,\frac{p}{1-p},$$
#
# and at **inference** the layer is the identity, $Y = X$: no rescaling, no randomness, so `predict` is
# deterministic. (The original formulation scaled by $1-p$ at test time instead; same expectation, but
# every inference path would need to know about it.) Each step thus trains a different random
# sub-network, and no unit can rely on a particular other unit being present.
#
# **Backward.** $Y$ is an element-wise product with a constant (given the mask), so
# $\frac{\partial Y_{ij}}{\partial X_{ij}} = \frac{M_{ij}}{1-p}$ and
#
# $$dX = dY \odot \frac{M}{1-p},$$
#
# through the **same mask** the forward pass drew — which is why the layer keeps it in its cache.
#
# **Where the randomness comes from.** The masks are drawn from a `np.random.Generator`: the one passed as
# `Dropout(rate, rng=...)`, or else the model's, which `Sequential` hands to each layer when it builds it.
# One seed then decides the initial weights *and* every mask, and the generator's state is part of a
# checkpoint (section 6), so a resumed run draws the masks an uninterrupted run would have drawn.

# %%
@register_layer
class Dropout(Layer):
    """Inverted dropout: in training each input is dropped with probability `rate` and the kept ones are
    scaled by 1/(1 - rate), so E[Y] = X; in inference Y = X exactly.

    The masks come from `rng` (a np.random.Generator): the one given here, or else the model's, which
    Sequential hands to every layer when it builds it.
    """

    def __init__(self, rate=0.5, rng=None, name=None):
        super().__init__(name)
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate (the probability of dropping a unit) must lie in [0, 1), got {rate!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"Dropout: rng must be a np.random.Generator or None, got {type(rng).__name__}")
        self.rate = float(rate)
        self.rng = rng

    def build(self, n_in, rng=None, dtype=np.float32):
        super().build(n_in, rng, dtype)
        if self.rng is None:
            self.rng = rng          # the model's generator: one seed decides weights and masks

    def get_config(self):
        return {"name": self.name, "rate": self.rate}

    def forward(self, X, training=False):
        X = self._check_input(X)
        if not training or self.rate == 0:
            self._cache = None      # inference: the identity, nothing to remember
            return X
        if self.rng is None:
            raise ValueError(f"{self!r}: training needs a random generator for the masks; pass rng= to Dropout "
                             f"or to the Sequential that holds it")
        # uniforms in X's precision (float32 draws are cheaper); keep where u >= p, i.e. with probability 1 - p
        keep = self.rng.random(X.shape, dtype=np.float32 if X.dtype == np.float32 else np.float64) >= self.rate
        self._cache = keep * X.dtype.type(1 / (1 - self.rate))    # the scaled mask M/(1-p), in X's dtype
        return X * self._cache

    def backward(self, dY):
        if self._cache is None:     # after an inference forward: the identity
            return np.asarray(dY)
        dY = self._check_upstream(dY, self._cache.shape)
        return dY * self._cache     # the same mask as the forward: dX = dY * M/(1-p)


# %% [markdown]
# **Checks.** The fraction of dropped entries is $p$; the mean over many masks is $X$ and the variance
# $X^2 p/(1-p)$ (within a few standard errors); inference is the identity, bit for bit.

# %% tags=["active-ipynb"]
# rng = np.random.default_rng(11)
# p = 0.3
# X = rng.standard_normal((4, 5))
# layer = Dropout(p, rng=np.random.default_rng(0))
# n_draws = 20000
# draws = np.stack([layer.forward(X, training=True) for _ in range(n_draws)])     # (n_draws, 4, 5)
# dropped = np.mean(draws == 0)
# mean, var = draws.mean(axis=0), draws.var(axis=0)
# se_mean = np.sqrt(X**2 * p / (1 - p) / n_draws)          # standard error of the mean of n_draws samples
# print(f"fraction dropped {dropped:.4f} (p = {p});  max |mean - X| / s.e. = {np.max(np.abs(mean - X) / se_mean):.2f}")
# print(f"max relative error of the variance against X^2 p/(1-p): {np.max(np.abs(var / (X**2 * p / (1 - p)) - 1)):.3f}")
# assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / draws.size)
# assert np.all(np.abs(mean - X) < 5 * se_mean)
# assert np.allclose(var, X**2 * p / (1 - p), rtol=0.05)
# assert np.array_equal(layer.forward(X, training=False), X)                        # inference: identity
# assert set(np.unique(np.round(draws / X, 12))) <= {0.0, round(1 / (1 - p), 12)}   # kept ones scaled by 1/(1-p)

# %% [markdown]
# **Gradient check with the mask held fixed.** A finite-difference check calls `forward` many times; each
# call would draw a new mask and the numerical derivative would be noise. So we hold the mask fixed: the
# layer's generator is replaced by one that restarts from the same seed at every call, so every forward
# draws the *same* mask. The check is chapter 00's `check_layer`: float64, a random upstream gradient
# $G \sim \mathcal N(0,1)$ (never all ones), relative error. We also check directly that `backward` is
# $G \odot M/(1-p)$ with the mask of the forward.

# %% tags=["active-ipynb"]
# class SameMask:
#     """A stand-in generator that gives the same uniforms at every call: the mask is held fixed."""
#     def __init__(self, seed):
#         self.seed = seed
#     def random(self, shape, dtype=np.float64):
#         return np.random.default_rng(self.seed).random(shape, dtype=dtype)
#
# layer = Dropout(0.4)
# layer.rng = SameMask(5)
# X = rng.standard_normal((6, 7))
# errors = check_layer(layer, X, rng)
# print("relative errors:", {k: f"{v:.1e}" for k, v in errors.items()})
# assert errors["X"] < 1e-8
# Y = layer.forward(X, training=True)
# G = rng.standard_normal(Y.shape)
# mask = (np.random.default_rng(5).random(X.shape) >= 0.4) / 0.6
# assert np.allclose(Y, X * mask) and np.allclose(layer.backward(G), G * mask)
# assert np.array_equal(layer.backward(G), layer.backward(G))     # backward twice: same answer, no accumulation

# %% [markdown]
# **Reproducible from a seed, different across seeds**; inside a model, `predict` (inference) is
# deterministic while a training forward is not; a rate outside $[0, 1)$ is refused.

# %% tags=["active-ipynb"]
# X = rng.standard_normal((3, 8)).astype(np.float32)
# a, b, c = (Dropout(0.5, rng=np.random.default_rng(s)) for s in (1, 1, 2))
# assert np.array_equal(a.forward(X, training=True), b.forward(X, training=True))
# assert not np.array_equal(a.forward(X, training=True), c.forward(X, training=True))
# net = Sequential([Dense(16), ReLU(), Dropout(0.5), Dense(3)], n_in=8, rng=np.random.default_rng(0))
# assert net.layers[2].rng is net.rng                     # the model's generator, handed over at build
# assert np.array_equal(net.predict(X), net.predict(X))                                   # inference: deterministic
# assert not np.array_equal(net.forward(X, training=True), net.forward(X, training=True))  # training: new masks
# assert net.forward(X, training=True).dtype == np.float32                                 # float32 stays float32
# for bad in (1.0, -0.1, "0.5", True):
#     try:
#         Dropout(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError(f"rate {bad!r} was accepted")

# %% [markdown]
# **Why it works: an average over $2^n$ thinned networks.** Dropout on a layer of $n$ units has $2^n$ masks;
# each mask picks a *thinned* network, and all of them share one set of weights. Training takes every step
# on freshly drawn thinned networks, so each of them must do well on its own, and no unit can count on
# another being there (no co-adaptation). The prediction we would like at the end is the average of all
# $2^n$ thinned networks, each weighted by the probability of its mask, $\prod_j (1-p)^{M_j} p^{1-M_j}$:
# an ensemble, far too large to run. The full network with every unit kept at its expected value — the
# **weight-scaling rule**, which inverted dropout builds into training — is its cheap approximation. It is
# exact for whatever is *linear* in the dropped units: $\mathbb E_M\big[(X\odot M/(1-p))\,W\big] = XW$. Through a
# nonlinearity it is only an approximation; for a softmax right after the linear layer it is exactly the
# normalised *geometric* mean of the thinned networks' probabilities (Srivastava et al. 2014; Baldi & Sadowski
# 2013), not their arithmetic mean.
#
# The check enumerates all $2^8 = 256$ masks of a tiny network $x \to$ Dense(8) $\to$ ReLU $\to$ Dense(3) $\to$
# softmax with $p = 0.5$, (a) with dropout after the ReLU (the next layer is linear) and (b) with dropout on the
# input (a ReLU follows), and compares the exact average with the one pass of weight scaling.

# %% tags=["active-ipynb"]
# def softmax(Z):
#     E = np.exp(Z - Z.max(axis=-1, keepdims=True))
#     return E / E.sum(axis=-1, keepdims=True)
#
#
# rng = np.random.default_rng(21)
# p, n = 0.5, 8
# X = rng.standard_normal((5, n))
# W1, b1, W2, b2 = rng.standard_normal((n, n)), rng.standard_normal(n), rng.standard_normal((n, 3)), rng.standard_normal(3)
# masks = (np.arange(2**n)[:, None] >> np.arange(n)) & 1                 # all 2^n masks, one per row (1 = keep)
# weights = np.prod(np.where(masks == 1, 1 - p, p), axis=1)              # the probability of each mask
# assert len(masks) == 256 and len(np.unique(masks, axis=0)) == 256 and np.isclose(weights.sum(), 1)
# H = np.maximum(X @ W1 + b1, 0)
# cases = {"(a) dropout after the ReLU": np.stack([(H * M / (1 - p)) @ W2 + b2 for M in masks]),
#          "(b) dropout on the input": np.stack([np.maximum((X * M / (1 - p)) @ W1 + b1, 0) @ W2 + b2 for M in masks])}
# scaled = softmax(H @ W2 + b2)                                           # one pass, every unit: weight scaling
# for label, logits in cases.items():                                     # logits: (2^n masks, 5 samples, 3 classes)
#     mean_logits = np.tensordot(weights, logits, axes=1)
#     arithmetic = np.tensordot(weights, softmax(logits), axes=1)         # the ensemble's average prediction
#     geometric = np.exp(np.tensordot(weights, np.log(softmax(logits)), axes=1))
#     geometric /= geometric.sum(axis=1, keepdims=True)
#     print(f"{label}: max |ensemble mean of logits - one pass| = {np.abs(mean_logits - (H @ W2 + b2)).max():.1e}; "
#           f"max |arithmetic mean of probabilities - one pass| = {np.abs(arithmetic - scaled).max():.3f}; "
#           f"same predicted class for {np.mean(arithmetic.argmax(1) == scaled.argmax(1)):.0%} of the samples")
#     if label.startswith("(a)"):
#         assert np.allclose(mean_logits, H @ W2 + b2)                    # linear after the dropout: exact
#         assert np.allclose(geometric, scaled)                           # = the normalised geometric mean
#     else:
#         assert not np.allclose(mean_logits, H @ W2 + b2, atol=1e-3)     # a ReLU in between: an approximation

# %% [markdown]
# ## 2. Weight decay: L2 in the loss vs decoupled decay
#
# **L2 in the loss.** Add $\frac{\lambda}{2}\sum_{W}\|W\|^2$ to the loss (over the weight matrices, see
# below which ones). Its gradient is $\lambda W$, so every optimiser sees $g + \lambda W$ instead of
# $g = \nabla_W L$.
#
# **Decoupled decay** (Loshchilov & Hutter's AdamW): leave the loss alone and shrink the weights in the
# update itself, outside the optimiser's own transformation $u(\cdot)$ of the gradient:
#
# | | L2 in the loss | decoupled decay |
# |---|---|---|
# | SGD | $W \leftarrow W - \eta\,(g + \lambda W) = (1-\eta\lambda)W - \eta g$ | $W \leftarrow W - \eta g - \eta\lambda W = (1-\eta\lambda)W - \eta g$ |
# | Adam | $W \leftarrow W - \eta\,\dfrac{\hat m(g+\lambda W)}{\sqrt{\hat v(g+\lambda W)}+\epsilon}$ | $W \leftarrow W - \eta\Big(\dfrac{\hat m(g)}{\sqrt{\hat v(g)}+\epsilon} + \lambda W\Big)$ |
#
# For plain **SGD the two are the same update** ($u$ is the identity, and it is linear). **With momentum they
# already differ**: L2's $\lambda W$ enters the velocity, $v \leftarrow \rho v + g + \lambda W$, and is summed over
# past steps like any gradient (up to $1/(1-\rho)$ times), while decoupled decay,
# $v \leftarrow \rho v + g,\ W \leftarrow W - \eta v - \eta\lambda W$, shrinks by $\eta\lambda$ per step whatever the
# history. (PyTorch's `SGD(weight_decay=)` is the L2 form.) For **Adam they differ** more: with L2 the decay term $\lambda W$ passes through the moment estimates and is divided by
# $\sqrt{\hat v}$, so a weight with a large gradient history is barely decayed and one with tiny
# gradients is decayed a lot; at the very first step $\hat m/\sqrt{\hat v} = \pm 1$ per entry, and the
# decay has no effect on the *size* of the update at all. Decoupled decay shrinks every weight by the
# same factor $1-\eta\lambda$ per step.
#
# In diydnn: `AdamW(weight_decay=λ)` decays decoupled (chapter 06); any optimiser with `opt.l2 = λ` adds
# $\lambda W$ to the gradient (L2 in the loss, without writing it into the loss); and in the run settings of
# chapter 10, `weight_decay` means the decoupled decay for `adamw` and L2 for `sgd`, `momentum` and `adam`
# (the convention of PyTorch's `weight_decay` arguments). Chapter 06's `Optimiser.step` does both, in its
# loop over the parameters, before it calls each optimiser's `_update`.
#
# **Which parameters decay.** Weight matrices only. A bias shifts a unit's input and does not make the
# function any more complex by being large; BatchNorm's $\gamma$ and $\beta$ set the scale and shift of
# normalised units, and decaying $\gamma$ towards 0 would switch units off. So by default biases `b` and
# BatchNorm's `gamma`/`beta` are excluded: `DecayMask(exclude=("b", "gamma", "beta"))`, set as
# `optimizer.decays`, and configurable (`decay_exclude` in the run settings). Without a mask (`decays =
# None`) everything decays, which is what chapter 06's AdamW does on its own.

# %%
class DecayMask:
    """Which parameters weight decay acts on: every parameter whose own name (after the last "/") is
    not in `exclude`. By default biases `b` and BatchNorm's `gamma`/`beta` are excluded."""

    def __init__(self, exclude=("b", "gamma", "beta")):
        if isinstance(exclude, str) or not isinstance(exclude, (list, tuple)) \
                or not all(isinstance(e, str) for e in exclude):
            raise ValueError(f"DecayMask: exclude must be a list of parameter names like ['b', 'gamma'], "
                             f"got {exclude!r}")
        self.exclude = tuple(exclude)

    def __call__(self, name):
        return str(name).rsplit("/", 1)[-1] not in self.exclude

    def __repr__(self):
        return f"DecayMask(exclude={list(self.exclude)})"

    def get_config(self):
        return {"exclude": list(self.exclude)}


# %% [markdown]
# **Checks.** (1) SGD with L2 equals the decoupled update $(1-\eta\lambda)W - \eta g$ over several steps
# (to float64 rounding); with momentum $\rho = 0.9$ the two differ, by much more than rounding. (2) Adam with L2 and AdamW differ — and at step 1 the Adam-L2 update has size
# exactly $\eta$ per entry whatever $\lambda$ is, as derived. (3) With a zero gradient and the default
# mask, AdamW shrinks `W` by $1-\eta\lambda$ and leaves `b`, `gamma` and `beta` untouched.

# %% tags=["active-ipynb"]
# rng = np.random.default_rng(3)
# lr, lam = 0.1, 0.05
# W0 = rng.standard_normal((4, 3))
# grads_seq = [rng.standard_normal((4, 3)) for _ in range(5)]
# sgd = SGD(lr)
# sgd.l2 = lam
# W_l2, W_dec = W0.copy(), W0.copy()
# for g in grads_seq:
#     sgd.step({"W": W_l2}, {"W": g})
#     W_dec = (1 - lr * lam) * W_dec - lr * g                      # decoupled, by hand
# print(f"SGD: L2 vs decoupled, rel. error {rel_error(W_l2, W_dec):.1e}")
# assert rel_error(W_l2, W_dec) < 1e-14
# heavy = SGD(lr, momentum=0.9)
# heavy.l2 = lam
# W_l2, W_dec, v = W0.copy(), W0.copy(), np.zeros_like(W0)
# for g in grads_seq:
#     heavy.step({"W": W_l2}, {"W": g})
#     v = 0.9 * v + g                                              # decoupled with momentum, by hand
#     W_dec = W_dec - lr * v - lr * lam * W_dec
# print(f"SGD with momentum 0.9: L2 vs decoupled after 5 steps, rel. difference {rel_error(W_l2, W_dec):.1e}")
# assert rel_error(W_l2, W_dec) > 1e-3
#
# adam_l2, adamw = Adam(lr), AdamW(lr, weight_decay=lam)
# adam_l2.l2 = lam
# W_a, W_w = W0.copy(), W0.copy()
# for i, g in enumerate(grads_seq):
#     adam_l2.step({"W": W_a}, {"W": g})
#     adamw.step({"W": W_w}, {"W": g})
#     if i == 0:   # first step: m_hat/sqrt(v_hat) = sign(g + lam W), so |update| = lr, whatever lam is
#         assert np.allclose(np.abs(W_a - W0), lr, rtol=1e-6)
#         assert np.allclose(W_w, W0 - lr * (g / (np.abs(g) + 1e-8) + lam * W0))
# print(f"Adam: L2 vs AdamW after 5 steps, rel. difference {rel_error(W_a, W_w):.2e}")
# assert rel_error(W_a, W_w) > 1e-3
#
# params = {"dense_0/W": W0.copy(), "dense_0/b": np.ones(3), "batchnorm_0/gamma": np.ones(3), "batchnorm_0/beta": np.ones(3)}
# zero = {k: np.zeros_like(v) for k, v in params.items()}
# opt = AdamW(lr, weight_decay=lam)
# opt.decays = DecayMask()
# opt.step(params, zero)
# assert np.allclose(params["dense_0/W"], (1 - lr * lam) * W0)
# assert all(np.array_equal(params[k], np.ones(3)) for k in ("dense_0/b", "batchnorm_0/gamma", "batchnorm_0/beta"))
# print(opt.decays, "->", {k: opt.decays(k) for k in params}, "; the config records it:", opt.get_config()["decays"])

# %% [markdown]
# **A measured consequence on MNIST.** The same $\lambda$ means very different things in the two
# formulations. We train the same 784–256–10 network with Adam + L2 and with AdamW for a range of
# $\lambda$ (same seed, same batches; 20,000 training images, 5 epochs) and record the test accuracy
# (validation-chosen checkpoint) and the norm of the weight matrices at the end. Decoupled decay at
# $\lambda$ shrinks every weight by $\eta\lambda$ per step ($10^{-5}$ for $\lambda = 10^{-2}$); with L2 inside
# Adam the same $\lambda$ acts through $\hat m/\sqrt{\hat v}$, strongly on weights whose gradients are small.

# %% tags=["active-ipynb"]
# lams = [0.0, 1e-3, 1e-2, 1e-1] if QUICK else [0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
# base = {"architecture": mlp([256]), "num_epochs": 1 if QUICK else 5, "train_abs_samples": 3000 if QUICK else 20000,
#         "seed": 0, "evals_per_epoch": 1}
# decay_results = {}
# for opt_name in ("adam", "adamw"):
#     for lam in lams:
#         r = run_experiment({**base, "model_name": f"{opt_name}_{lam:g}", "optimizer": opt_name, "weight_decay": lam},
#                            runs_dir=scratch / "decay", progress=False, verbose=False)
#         w_norm = float(np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for k, v in r["model"].params.items()
#                                    if k.endswith("/W"))))
#         decay_results[opt_name, lam] = (r["test_accuracy"], w_norm)
# print(f"{'lambda':>8} | {'Adam + L2: test, |W|':>22} | {'AdamW: test, |W|':>20}")
# for lam in lams:
#     (a1, n1), (a2, n2) = decay_results["adam", lam], decay_results["adamw", lam]
#     print(f"{lam:8g} | {a1:10.4f} {n1:10.2f} | {a2:10.4f} {n2:9.2f}")
# assert decay_results["adam", 0.0] == decay_results["adamw", 0.0]          # lambda = 0: the same run
# for lam in lams[1:]:                                                    # the same lambda: L2 in Adam shrinks more
#     assert decay_results["adam", lam][1] < decay_results["adamw", lam][1]
# assert decay_results["adam", 0.1][1] < 0.8 * decay_results["adamw", 0.1][1]

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
# x = [max(l, lams[1] / 10) for l in lams]              # lambda = 0 drawn at the left edge of a log axis
# for opt_name, label in (("adam", "Adam + L2 in the loss"), ("adamw", "AdamW (decoupled)")):
#     axes[0].plot(x, [decay_results[opt_name, l][0] for l in lams], "o-", label=label)
#     axes[1].plot(x, [decay_results[opt_name, l][1] for l in lams], "o-", label=label)
# axes[0].set(xscale="log", xlabel="λ (leftmost point: λ = 0)", ylabel="test accuracy", title="Accuracy")
# axes[1].set(xscale="log", yscale="log", xlabel="λ (leftmost point: λ = 0)", ylabel="‖W‖ (all weight matrices)",
#             title="Size of the weights")
# for ax in axes:
#     ax.grid(alpha=0.3); ax.legend()
# fig.suptitle("The same λ: L2 inside Adam vs decoupled decay (784-256-10, MNIST)")
# save_figure(fig, "11_weight_decay.png")
# plt.show()

# %% [markdown]
# **Reading the numbers.** The cell below reads the table (the quick run of the test suite trains less and
# prints other numbers) and asserts, in the full run, what it says.

# %% tags=["active-ipynb"]
# acc = {key: value[0] for key, value in decay_results.items()}
# norm = {key: value[1] for key, value in decay_results.items()}
# gain = {opt_name: max(acc[opt_name, lam] for lam in lams[1:]) - acc[opt_name, 0.0] for opt_name in ("adam", "adamw")}
# display(Markdown(("*Quick run: too short to read; the text is checked in the full run only.* " if QUICK else "") +
#     f"With L2 inside Adam the weights shrink fast as λ grows — ‖W‖ from {norm['adam', 0.0]:.1f} at λ = 0 to "
#     f"{norm['adam', 1e-2]:.1f} at λ = 10⁻² and {norm['adam', 0.1]:.1f} at 10⁻¹ — and the test accuracy falls with "
#     f"them ({acc['adam', 0.0]:.1%} → {acc['adam', 1e-2]:.1%} → {acc['adam', 0.1]:.1%}). AdamW at the same λ barely "
#     f"moves: ‖W‖ {norm['adamw', 1e-2]:.1f} at 10⁻², {norm['adamw', 0.1]:.1f} at 10⁻¹, and its test accuracy stays "
#     f"between {min(acc['adamw', lam] for lam in lams if lam <= 0.1):.1%} and "
#     f"{max(acc['adamw', lam] for lam in lams if lam <= 0.1):.1%} up to λ = 10⁻¹. So a \"weight decay of 0.01\" is a "
#     f"strong regulariser in one formulation and almost nothing in the other: a value tuned for one does not carry "
#     f"over to the other. **And no λ helps here**: the best λ > 0 beats λ = 0 by {100 * gain['adam']:+.2f} "
#     f"percentage points with Adam + L2 and {100 * gain['adamw']:+.2f} with AdamW — a few test images, within "
#     f"what another seed would change."))
# if not QUICK:
#     assert all(norm["adamw", lam] > 0.9 * norm["adamw", 0.0] for lam in lams if lam <= 0.1)    # AdamW barely moves
#     assert acc["adam", 0.1] < acc["adam", 1e-2] < acc["adam", 0.0] - 0.01                     # L2 in Adam costs accuracy
#     assert max(gain.values()) < 0.002                                                         # no lambda improves

# %% [markdown]
# **Why penalise $\|W\|^2$? Two readings.** *A prior.* Minimising the mean loss $\frac1N\sum_n \ell_n(W)$ is
# maximising the likelihood $p(\text{data}\mid W)$ (for the cross-entropy, $\ell_n = -\log p(y_n\mid x_n, W)$). Believe
# before seeing the data that every weight is small, $W_{jk} \sim \mathcal N(0, \sigma^2)$ independently:
# $-\log p(W) = \frac{1}{2\sigma^2}\|W\|^2 + \text{const}$, so the most probable weights given the data (the MAP
# estimate) minimise
#
# $$\frac1N\sum_n \ell_n(W) + \frac{\lambda}{2}\|W\|^2, \qquad \lambda = \frac{1}{N\sigma^2}:$$
#
# L2 is a Gaussian prior, and it matters less as the data grows ($\lambda \propto 1/N$ for a fixed belief).
# *Capacity control.* Minimising with the penalty is (by a Lagrange multiplier) minimising the loss under a
# constraint $\|W\| \le c$, with a $c$ that falls as $\lambda$ grows: the network may choose among fewer
# functions — with small weights it cannot have steep slopes (a ReLU network's slope is at most the product of
# its layers' spectral norms) — and a smaller set of functions can fit less noise. Both readings are exact for a
# linear model with squared error, where everything has a closed form. The check: the minimiser of
# $\frac1{2N}\|y - Xw\|^2 + \frac\lambda2\|w\|^2$ is $(X^\top X + N\lambda I)^{-1}X^\top y$; it equals the Bayesian
# posterior mean with noise variance 1 and prior variance $\sigma^2 = 1/(N\lambda)$, computed the other way,
# $\sigma^2 X^\top(\sigma^2 XX^\top + I)^{-1}y$; gradient descent with our optimiser's L2 (`opt.l2`) finds it; and
# $\|w\|$ falls as $\lambda$ grows.

# %% tags=["active-ipynb"]
# rng = np.random.default_rng(4)
# N, d = 40, 10
# X_lin = rng.standard_normal((N, d))
# y_lin = X_lin @ rng.standard_normal(d) + rng.standard_normal(N)
# norms = []
# for lam in (0.01, 0.1, 1.0):
#     ridge = np.linalg.solve(X_lin.T @ X_lin + N * lam * np.eye(d), X_lin.T @ y_lin)
#     s2 = 1 / (N * lam)                                                     # the prior's variance
#     posterior_mean = s2 * X_lin.T @ np.linalg.solve(s2 * X_lin @ X_lin.T + np.eye(N), y_lin)
#     w, opt = np.zeros(d), SGD(0.1)
#     opt.l2 = lam
#     for _ in range(3000):
#         opt.step({"w": w}, {"w": -X_lin.T @ (y_lin - X_lin @ w) / N})     # the gradient of the mean squared error / 2
#     print(f"lambda {lam:5g}: |ridge - posterior mean| {np.abs(ridge - posterior_mean).max():.1e}, "
#           f"|ridge - gradient descent with L2| {np.abs(ridge - w).max():.1e}, |w| = {np.linalg.norm(ridge):.3f}")
#     assert np.allclose(ridge, posterior_mean) and np.allclose(ridge, w, atol=1e-8)
#     norms.append(np.linalg.norm(ridge))
# assert norms[0] > norms[1] > norms[2]                                      # a larger lambda, smaller weights

# %% [markdown]
# **Weight decay before BatchNorm changes only the step size.** In a block Dense → BatchNorm (chapter 05) each
# unit is normalised over the batch, so scaling a unit's weights and bias by $a > 0$ changes nothing (up to
# BatchNorm's $\epsilon$): $\mathrm{BN}(X(aW) + ab) = \mathrm{BN}(XW + b)$, since the batch mean and standard deviation
# scale by $a$ too. The loss then depends on the *direction* of each unit's weights only, and differentiating
# $L(aW) = L(W)$ gives two facts: the gradient scales the other way, $\nabla L(aW) = \frac1a\nabla L(W)$, and it is
# orthogonal to the weights, $\langle \nabla L(W), W\rangle = 0$ (the derivative at $a = 1$). So decay cannot make
# such a layer simpler — the function does not depend on $\|W\|$ — but it changes how fast the direction moves.
# An SGD step turns $W$ by an angle of about $\eta\|\nabla L(W)\|/\|W\|$, which is proportional to $\eta/\|W\|^2$:
# without decay every step *grows* $\|W\|$ (a step orthogonal to $W$ lengthens it), the effective learning rate
# falls and training slowly freezes; decay shrinks $\|W\|$ and so acts as a **rising effective learning rate**
# $\eta/\|W\|^2$ (van Laarhoven 2017; Zhang et al. 2019). The check, in float64 (with a tiny $\epsilon$, so that
# the identity is exact to rounding): the same outputs for $W$ and $3W$, gradients in the ratio $1/3$, and
# $\langle \nabla L, W\rangle = 0$ per unit.

# %% tags=["active-ipynb"]
# rng = np.random.default_rng(6)
# X_bn, G = rng.standard_normal((32, 6)), rng.standard_normal((32, 4))       # L = sum(G * output): dL/doutput = G
# dense, bn = Dense(4), BatchNorm(eps=1e-12)
# dense.build(6, rng, dtype=np.float64)
# bn.build(4, dtype=np.float64)
# W, b = dense.params["W"].copy(), rng.standard_normal(4)
# outputs, dWs = [], []
# for a in (1.0, 3.0):
#     dense.params["W"][...], dense.params["b"][...] = a * W, a * b
#     outputs.append(bn.forward(dense.forward(X_bn, training=True), training=True))
#     dense.backward(bn.backward(G))
#     dWs.append(dense.grads["W"].copy())
# print(f"max |BN(X 3W) - BN(X W)| = {np.abs(outputs[1] - outputs[0]).max():.1e}; "
#       f"max |dW at 3W - dW at W / 3| = {np.abs(dWs[1] - dWs[0] / 3).max():.1e}; "
#       f"<dW, W> per unit: {np.abs(np.sum(dWs[0] * W, axis=0)).max():.1e} (|dW| |W| = {np.linalg.norm(dWs[0]) * np.linalg.norm(W):.1f})")
# assert np.allclose(outputs[1], outputs[0], atol=1e-9) and np.allclose(dWs[1], dWs[0] / 3, atol=1e-9)
# assert np.allclose(np.sum(dWs[0] * W, axis=0), 0, atol=1e-9)

# %% [markdown]
# ## 3. Learning-rate schedules
#
# A large step early moves fast; a small step late settles into a minimum instead of rattling around it
# (the noise of a mini-batch gradient is scaled by $\eta$). A **schedule** is a factor $s(t)$ by which step
# $t = 1, 2, \dots$ multiplies the optimiser's `lr`, so the step uses $\eta_t = \eta\, s(t)$:
#
# | schedule | $s(t)$ |
# |---|---|
# | `Constant()` | $1$ |
# | `StepDecay(k, γ)` | $\gamma^{\lfloor (t-1)/k \rfloor}$ — times $\gamma$ every $k$ steps |
# | `CosineDecay(T, f)` | $f + (1-f)\,\frac12\big(1 + \cos(\pi \min(t-1, T)/T)\big)$ — from 1 at $t=1$ to $f$ at $t = T+1$ |
# | `LinearWarmup(w, then)` | $t/w$ for $t \le w$, then $\text{then}(t - w)$ |
#
# Warm-up composes with any schedule: `LinearWarmup(500, CosineDecay(9500))` rises for 500 steps and then
# runs the cosine over the remaining 9,500. (Adam's first steps are large relative to its still-poor
# moment estimates; a short warm-up avoids a bad start.) A schedule is a pure function of $t$ with a
# `get_config`, so the optimiser's step count in a checkpoint restores it exactly, and the config is
# recorded in the checkpoint and the run folder. The optimiser consults it at every step: chapter 06's
# `Optimiser.step` sets this step's rate $\eta\,s(t)$ before its updates and records it as `current_lr`,
# which the Loop logs per step in the History (and so to Weights & Biases).

# %%
class Schedule:
    """A learning-rate schedule: schedule(t) is the factor by which step t (1, 2, ...) multiplies the
    optimiser's lr. A pure function of t, so the step count in a checkpoint restores it exactly."""

    name = "schedule"

    def __call__(self, t):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, **vars(self)}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _step(schedule, t):
    """t as an int >= 1: a schedule is defined for the steps 1, 2, ... only (step 0 or -3 gave nonsense factors)."""
    return as_count(t, "the step t (1, 2, ...)", repr(schedule))


class Constant(Schedule):
    """factor 1 at every step."""

    name = "constant"

    def __call__(self, t):
        _step(self, t)
        return 1.0


class StepDecay(Schedule):
    """factor gamma^floor((t-1) / step_size): the rate is multiplied by gamma every step_size steps."""

    name = "step"

    def __init__(self, step_size, gamma=0.1):
        self.step_size = as_count(step_size, "step_size", "StepDecay")
        if not _is_real(gamma) or not 0 < gamma <= 1:
            raise ValueError(f"StepDecay: gamma must lie in (0, 1], got {gamma!r}")
        self.gamma = float(gamma)

    def __call__(self, t):
        t = _step(self, t)
        return self.gamma ** ((t - 1) // self.step_size)


# %%
class CosineDecay(Schedule):
    """factor final + (1 - final) (1 + cos(pi (t-1) / total_steps)) / 2: 1 at t = 1, `final` from
    t = total_steps + 1 on."""

    name = "cosine"

    def __init__(self, total_steps, final=0.0):
        self.total_steps = as_count(total_steps, "total_steps", "CosineDecay")
        if not _is_real(final) or not 0 <= final <= 1:
            raise ValueError(f"CosineDecay: final must lie in [0, 1], got {final!r}")
        self.final = float(final)

    def __call__(self, t):
        t = _step(self, t)
        progress = min(t - 1, self.total_steps) / self.total_steps
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


class LinearWarmup(Schedule):
    """factor t / warmup_steps for the first warmup_steps steps, then `then` (any schedule), which starts
    at its own step 1 when the warm-up ends: LinearWarmup(500, CosineDecay(9500))."""

    name = "warmup"

    def __init__(self, warmup_steps, then=None):
        self.warmup_steps = as_count(warmup_steps, "warmup_steps", "LinearWarmup")
        self.then = get_schedule(then if then is not None else "constant")

    def __call__(self, t):
        t = _step(self, t)
        if t <= self.warmup_steps:
            return t / self.warmup_steps
        return self.then(t - self.warmup_steps)

    def get_config(self):
        return {"name": self.name, "warmup_steps": self.warmup_steps, "then": self.then.get_config()}


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": CosineDecay, "warmup": LinearWarmup}


def get_schedule(spec):
    """A schedule from a Schedule, a name ("constant") or a config dict ({"name": "cosine", "total_steps": 1000})."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or spec.get("name") not in SCHEDULES:
        raise ValueError(f"get_schedule: expected a Schedule, a name or a config dict with 'name' in "
                         f"{sorted(SCHEDULES)}, got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    try:
        return SCHEDULES[spec["name"]](**kwargs)
    except TypeError as e:
        raise ValueError(f"get_schedule: bad arguments for {spec['name']!r}: {e}") from None


RUN_SCHEDULES = (None, "constant", "cosine", "step", "warmup_cosine")


# %%
def schedule_for_run(spec, n_steps, steps_per_epoch):
    """The schedule of a run of n_steps from the run settings' "schedule": None or "constant" (none),
    "cosine" (from 1 to 0 over the run), "step" (x0.1 after each third of the run), "warmup_cosine" (one
    epoch of linear warm-up, then cosine to 0), or a Schedule / config dict for anything else."""
    if spec is None or spec == "constant":
        return None if spec is None else Constant()
    if spec == "cosine":
        return CosineDecay(n_steps)
    if spec == "step":
        return StepDecay(max(1, -(-n_steps // 3)), gamma=0.1)
    if spec == "warmup_cosine":
        warmup = max(1, min(steps_per_epoch, n_steps // 2))
        return LinearWarmup(warmup, CosineDecay(max(1, n_steps - warmup)))
    return _fits_the_run(get_schedule(spec), n_steps)


# %% [markdown]
# **Checks** of every formula in the table at the points where it is known in closed form, of the
# composition, and of `get_config` → `get_schedule` giving the same factors.

# %% tags=["active-ipynb"]
# cos = CosineDecay(100, final=0.1)
# assert cos(1) == 1.0 and abs(cos(101) - 0.1) < 1e-15 and cos(500) == cos(101)
# assert abs(cos(51) - (0.1 + 0.9 * 0.5)) < 1e-15                          # half-way: the mean of 1 and final
# step = StepDecay(10, gamma=0.5)
# assert [step(t) for t in (1, 10, 11, 20, 21)] == [1, 1, 0.5, 0.5, 0.25]
# warm = LinearWarmup(4, CosineDecay(10))
# assert [warm(t) for t in (1, 2, 3, 4)] == [0.25, 0.5, 0.75, 1.0] and warm(5) == 1.0 and warm(15) == 0.0
# for sched in (Constant(), step, cos, warm, LinearWarmup(3), LinearWarmup(2, LinearWarmup(5, step))):
#     config = sched.get_config()
#     again = get_schedule(json.loads(json.dumps(config)))                  # through plain JSON, as in a checkpoint
#     assert all(again(t) == sched(t) for t in range(1, 200)), config
# print(warm.get_config())
# for bad in ({"name": "cosine"}, {"name": "cosine", "total_steps": 0}, "exponential", {"name": "step", "step_size": 5, "gamma": 2}):
#     try:
#         get_schedule(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError(f"{bad!r} was accepted")

# %% tags=["active-ipynb"]
# T = 1000
# shown = {"constant": Constant(), "step (k=300, γ=0.3)": StepDecay(300, 0.3), "cosine (T=1000)": CosineDecay(T),
#          "warm-up 100 → cosine": LinearWarmup(100, CosineDecay(T - 100, final=0.05))}
# fig, ax = plt.subplots(figsize=(7, 3.2))
# t = np.arange(1, T + 1)
# for label, sched in shown.items():
#     ax.plot(t, [sched(i) for i in t], label=label)
# ax.set(xlabel="step t", ylabel="factor s(t)  (rate = lr · s(t))", title="Learning-rate schedules")
# ax.legend(); ax.grid(alpha=0.3)
# save_figure(fig, "11_schedules.png")
# plt.show()

# %% [markdown]
# **The optimiser consults the schedule at each step.** With SGD on $f(W) = \frac12\|W\|^2$ (gradient $W$),
# the change at step $t$ must be exactly $\eta\,s(t)\,W$; `current_lr` must be $\eta\,s(t)$; and the
# optimiser's own `lr` must stay the base rate (it is what its config records).

# %% tags=["active-ipynb"]
# opt = SGD(0.5)
# opt.schedule = LinearWarmup(3, StepDecay(2, 0.5))
# W = np.ones(4)
# for t in range(1, 9):
#     before = W.copy()
#     opt.step({"W": W}, {"W": W.copy()})
#     assert np.allclose(before - W, 0.5 * opt.schedule(t) * before) and opt.current_lr == 0.5 * opt.schedule(t)
# assert opt.lr == 0.5 and opt.get_config()["schedule"] == opt.schedule.get_config()
# print("rates used:", [0.5 * opt.schedule(t) for t in range(1, 9)])

# %% [markdown]
# ## 4. Data augmentation
#
# A digit moved by a pixel or two, or turned by a few degrees, is the same digit. Showing the network a
# freshly moved copy of each training image at every epoch multiplies the data for free and teaches it the
# invariance it cannot learn from a fixed set of centred digits. We only transform **training batches**:
# validation and test images stay as they are, so the measurements stay comparable.
#
# **Shifts** by whole pixels are exact: pad every image with zeros by $s$ pixels, and let output pixel
# $(r, c)$ of image $i$ read padded pixel $(r + s - \delta_{y,i},\ c + s - \delta_{x,i})$: one fancy-index
# gather for the whole batch, no Python loop. **Rotations** by an angle $\theta$ about the centre $c$ read
# the input at $R(-\theta)(p - c - \delta) + c$ for each output pixel $p$, which is not on the grid, so we
# interpolate bilinearly between its four neighbours (zeros outside the image). Offsets and angles are
# drawn per image from a generator of its own, which the checkpoint saves.

# %%
class Augment:
    """Random shifts by up to max_shift whole pixels (each axis) and rotations by up to max_degrees,
    drawn per image from the generator given at each call; images are rows of X, shape (m, height*width)."""

    def __init__(self, max_shift=2, max_degrees=0.0, shape=(28, 28)):
        if np.ndim(shape) != 1 or len(shape) != 2:
            raise ValueError(f"Augment: shape must be (height, width), got {shape!r}")
        shape = tuple(as_count(n, "shape (height, width)", "Augment") for n in shape)
        max_shift = as_count(max_shift, "max_shift (pixels)", "Augment", low=0)
        if max_shift > min(shape) // 2:   # a shift as large as the image blanks it; half the side keeps a centred digit
            raise ValueError(f"Augment: max_shift={max_shift} can move a digit entirely out of a {shape[0]}x{shape[1]} "
                             f"image; it must be at most {min(shape) // 2} pixels (half the smaller side)")
        if not _is_real(max_degrees) or not 0 <= max_degrees <= 45:
            raise ValueError(f"Augment: max_degrees must lie in [0, 45], got {max_degrees!r}")
        self.max_shift, self.max_degrees, self.shape = max_shift, float(max_degrees), shape

    def __repr__(self):
        return f"Augment(max_shift={self.max_shift}, max_degrees={self.max_degrees}, shape={self.shape})"

    def get_config(self):
        return {"max_shift": self.max_shift, "max_degrees": self.max_degrees, "shape": list(self.shape)}

    def __call__(self, X, rng):
        X = np.asarray(X)
        h, w = self.shape
        if X.ndim != 2 or X.shape[1] != h * w:
            raise ValueError(f"Augment: expected images as rows of shape (m, {h * w}) for {h}x{w} images, "
                             f"got {X.shape}")
        s = self.max_shift
        dy = rng.integers(-s, s + 1, size=len(X))
        dx = rng.integers(-s, s + 1, size=len(X))
        if self.max_degrees == 0:
            return shift_images(X, dy, dx, self.shape)
        angles = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees, size=len(X)))
        return rotate_shift_images(X, angles, dy, dx, self.shape)


def shift_images(X, dy, dx, shape):
    """Every image moved by dy[i] pixels down and dx[i] right, zeros coming in: one gather, no loop."""
    h, w = shape
    m = len(X)
    pad = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    images = np.pad(X.reshape(m, h, w), ((0, 0), (pad, pad), (pad, pad)))
    rows = np.arange(h)[None, :] + pad - dy[:, None]          # output row r reads input row r - dy
    cols = np.arange(w)[None, :] + pad - dx[:, None]
    out = images[np.arange(m)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(m, h * w)


# %%
def rotate_shift_images(X, angles, dy, dx, shape):
    """Every image turned by angles[i] radians about its centre (counter-clockwise as displayed, rows
    down) and moved by (dy[i], dx[i]); bilinear interpolation, zeros outside."""
    h, w = shape
    m = len(X)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    yy = r.ravel()[None, :] - cy - dy[:, None]                 # (m, h*w): output pixel minus centre and shift
    xx = c.ravel()[None, :] - cx - dx[:, None]
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    src_y = cos * yy + sin * xx + cy                            # where each output pixel reads the input
    src_x = -sin * yy + cos * xx + cx
    images = np.pad(X.reshape(m, h, w), ((0, 0), (1, 1), (1, 1)))   # a zero border: reads outside give 0
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0).astype(X.dtype), (src_x - x0).astype(X.dtype)
    y0 = np.clip(y0.astype(np.int64) + 1, 0, h + 1)             # +1 for the border; far outside reads the border
    x0 = np.clip(x0.astype(np.int64) + 1, 0, w + 1)
    y1, x1 = np.minimum(y0 + 1, h + 1), np.minimum(x0 + 1, w + 1)
    i = np.arange(m)[:, None]
    out = ((1 - fy) * ((1 - fx) * images[i, y0, x0] + fx * images[i, y0, x1])
           + fy * ((1 - fx) * images[i, y1, x0] + fx * images[i, y1, x1]))
    return out.astype(X.dtype, copy=False)


# %%
class AugmentedStream:
    """A training batch stream whose X batches pass through `augment` with its own generator.

    Wrap only the training stream: validation and test images stay as they are. state_dict() holds the
    inner stream's state and this generator's, so a resumed run sees the same augmented batches.
    """

    def __init__(self, stream, augment, rng):
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"AugmentedStream: rng must be a np.random.Generator, got {type(rng).__name__}")
        self.stream, self.augment, self.rng = stream, augment, rng
        self.batch_size = getattr(stream, "batch_size", None)             # what TrainTask and the toolkit read
        self.batches_per_epoch = getattr(stream, "batches_per_epoch", None)

    def __repr__(self):
        return f"AugmentedStream({self.stream!r}, {self.augment!r})"

    def __iter__(self):
        return self

    def __next__(self):
        X, y = next(self.stream)
        return self.augment(X, self.rng), y

    def state_dict(self):
        state = {f"inner/{k}": v for k, v in self.stream.state_dict().items()}
        state["augment_rng_state"] = np.array(json.dumps(self.rng.bit_generator.state))
        return state

    def load_state_dict(self, state):
        inner = {k[len("inner/"):]: v for k, v in state.items() if k.startswith("inner/")}
        if "augment_rng_state" not in state or not inner:
            raise ValueError(f"AugmentedStream: the state has no 'augment_rng_state' or no inner stream state; "
                             f"keys: {sorted(state)[:8]}")
        try:
            rng_state = json.loads(str(np.asarray(state["augment_rng_state"])))
        except ValueError as e:
            raise ValueError(f"AugmentedStream: unreadable generator state: {e}") from None
        self.stream.load_state_dict(inner)
        self.rng.bit_generator.state = rng_state


# %% [markdown]
# **Checks.** Shifts against a slow reference (a loop that copies the overlapping window); a rotation
# by 0 is the identity and one by 90° is `np.rot90` exactly (the centre is a pixel corner or centre, so a
# quarter turn maps the grid onto itself); the same seed gives the same batch; the dtype stays float32;
# shifting a batch takes less time than a training step (timed with one BLAS thread, as in chapter 14).

# %% tags=["active-ipynb"]
# def shift_reference(image, dy, dx):
#     out = np.zeros_like(image)
#     h, w = image.shape
#     for r in range(h):
#         for c in range(w):
#             if 0 <= r - dy < h and 0 <= c - dx < w:
#                 out[r, c] = image[r - dy, c - dx]
#     return out
#
# (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = mnist_splits()
# X8 = X_tr[:8]
# dy, dx = np.array([0, 1, -2, 3, 0, -1, 2, -3]), np.array([0, -1, 2, 0, 3, 1, -2, 2])
# shifted = shift_images(X8, dy, dx, (28, 28))
# for i in range(8):
#     assert np.array_equal(shifted[i].reshape(28, 28), shift_reference(X8[i].reshape(28, 28), dy[i], dx[i]))
# zeros = np.zeros(8, dtype=np.int64)
# assert np.allclose(rotate_shift_images(X8, np.zeros(8), zeros, zeros, (28, 28)), X8, atol=1e-6)
# quarter = rotate_shift_images(X8, np.full(8, np.pi / 2), zeros, zeros, (28, 28)).reshape(8, 28, 28)
# assert np.allclose(quarter, np.rot90(X8.reshape(8, 28, 28), k=1, axes=(1, 2)), atol=1e-5)   # counter-clockwise
# assert np.allclose(rotate_shift_images(X8, np.zeros(8), dy, dx, (28, 28)), shifted, atol=1e-6)
# aug = Augment(max_shift=2, max_degrees=10)
# A1, A2 = aug(X8, np.random.default_rng(4)), aug(X8, np.random.default_rng(4))
# assert np.array_equal(A1, A2) and A1.dtype == X8.dtype == np.float32
# assert not np.array_equal(aug(X8, np.random.default_rng(5)), A1)
# batch = X_tr[:128]
# t0 = time.perf_counter(); [Augment(2)(batch, rng) for _ in range(50)]; t_shift = (time.perf_counter() - t0) / 50
# t0 = time.perf_counter(); [aug(batch, rng) for _ in range(50)]; t_rot = (time.perf_counter() - t0) / 50
# big = Sequential([Dense(512), ReLU(), Dense(512), ReLU(), Dense(10)], n_in=784, rng=rng)
# loss, opt = SoftmaxCrossEntropy(), Adam()
# t0 = time.perf_counter()
# for _ in range(20):
#     loss(big.forward(batch, training=True), y_tr[:128]); big.backward(loss.backward()); opt.step(big.params, big.grads)
# t_step = (time.perf_counter() - t0) / 20
# print(f"a batch of 128, one BLAS thread: shifts {t_shift * 1e3:.2f} ms, shifts + rotations {t_rot * 1e3:.2f} ms; "
#       f"one training step of a 784-512-512-10 MLP {t_step * 1e3:.1f} ms (a shared machine: timings vary)")
# assert t_shift < t_step

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(3, 8, figsize=(9, 3.6))
# views = [("original", X8), ("shift ≤ 2 px", Augment(2)(X8, np.random.default_rng(1))),
#          ("shift ≤ 2 px + rotation ≤ 15°", Augment(2, 15)(X8, np.random.default_rng(1)))]
# for row, (title, images) in zip(axes, views):
#     for ax, image in zip(row, images):
#         ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
#         ax.set(xticks=[], yticks=[])
#     row[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
# fig.suptitle("Augmented training images (new offsets and angles at every batch)")
# save_figure(fig, "11_augmentation.png")
# plt.show()

# %% [markdown]
# **Training batches only.** `AugmentedStream` wraps the training `BatchStream`; the labels pass
# unchanged; the evaluation data of an `EvalTask` never goes through it.

# %% tags=["active-ipynb"]
# plain = BatchStream(X_tr[:1000], y_tr[:1000], 100, np.random.default_rng(0))
# augmented = AugmentedStream(BatchStream(X_tr[:1000], y_tr[:1000], 100, np.random.default_rng(0)), Augment(2),
#                             np.random.default_rng(1))
# (Xp, yp), (Xa, ya) = next(plain), next(augmented)
# assert np.array_equal(yp, ya) and not np.array_equal(Xp, Xa) and Xa.shape == Xp.shape
# assert Xa.sum() > 0.99 * Xp.sum()          # MNIST digits sit in a 20x20 box: 2-pixel shifts keep the ink
# print(f"a shifted batch keeps {Xa.sum() / Xp.sum():.1%} of its ink (a digit is smaller than its frame)")

# %% [markdown]
# ## 5. On MNIST: overfitting, and each remedy
#
# To see overfitting quickly, train a 784–256–256–10 MLP on only **5,000** training images for 40 epochs
# (Adam, $10^{-3}$, batch 128; validation on the usual 5,000 held-out images, every epoch): without
# regularisation the validation loss bottoms out within a few epochs and then climbs steadily. Then each
# remedy alone — dropout 0.3, AdamW with $\lambda = 0.05$ on the weight matrices, warm-up + cosine,
# shifts of up to 2 pixels — and all four together. Everything goes through chapter 10's
# `run_experiment`, whose settings know every piece. (The full-data study with three seeds per recipe
# is [experiment 07](experiments/07_regularisation.ipynb).)

# %% tags=["active-ipynb"]
# small = {"architecture": mlp([256, 256]), "train_abs_samples": 1000 if QUICK else 5000,
#          "num_epochs": 6 if QUICK else 40, "lr": 1e-3, "optimizer": "adam", "seed": 0}
# remedies = {
#     "none": {},
#     "dropout 0.3": {"architecture": mlp([256, 256], dropout=0.3)},
#     "AdamW λ=0.05": {"optimizer": "adamw", "weight_decay": 0.05},
#     "warm-up + cosine": {"schedule": "warmup_cosine"},
#     "shift ≤ 2 px": {"augment": {"max_shift": 2}},
#     "all four": {"architecture": mlp([256, 256], dropout=0.3), "optimizer": "adamw", "weight_decay": 0.05,
#                  "schedule": "warmup_cosine", "augment": {"max_shift": 2}},
# }
# small_runs = {}
# for i, (label, change) in enumerate(remedies.items()):
#     small_runs[label] = run_experiment({**small, **change, "model_name": f"small_{i}"}, runs_dir=scratch / "small",
#                                        progress=False, verbose=False)
# print(f"{'recipe':<18} {'best val. loss':>14} {'final val. loss':>15} {'test acc.':>9} {'seconds':>8}")
# for label, r in small_runs.items():
#     _, val_loss = r["history"].steps_values("val", "loss")
#     print(f"{label:<18} {val_loss.min():14.4f} {val_loss[-1]:15.4f} {r['test_accuracy']:9.4f} {r['seconds']:8.1f}")
# for label, r in small_runs.items():                          # every recipe learns, in quick mode too
#     assert r["test_accuracy"] > (0.6 if QUICK else 0.93), label
# net = small_runs["all four"]["model"]
# assert any(isinstance(layer, Dropout) for layer in net.layers)
# assert np.array_equal(net.predict(X_te[:500]), net.predict(X_te[:500]))      # dropout is off at inference
# if not QUICK:
#     _, none_loss = small_runs["none"]["history"].steps_values("val", "loss")
#     _, all_loss = small_runs["all four"]["history"].steps_values("val", "loss")
#     assert none_loss[-1] > 1.2 * none_loss.min()             # the validation loss rises without regularisation
#     assert all_loss[-1] < 1.15 * all_loss.min()              # and not with it
#     assert small_runs["all four"]["test_accuracy"] > small_runs["none"]["test_accuracy"] + 0.005

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
# for label, r in small_runs.items():
#     steps_per_epoch = r["steps"] / r["epochs"]
#     s, v = r["history"].steps_values("val", "loss")
#     axes[0].plot(s / steps_per_epoch, v, label=label, lw=2.5 if label in ("none", "all four") else 1.2)
#     s, a = r["history"].steps_values("val", "accuracy")
#     axes[1].plot(s / steps_per_epoch, a, label=f"{label}: test {r['test_accuracy']:.2%}",
#                  lw=2.5 if label in ("none", "all four") else 1.2)
# axes[0].set(xlabel="epoch", ylabel="validation cross-entropy", yscale="log", title="Validation loss")
# axes[1].set(xlabel="epoch", ylabel="validation accuracy", ylim=(0.9, 1.0), title="Validation accuracy")
# for ax in axes:
#     ax.grid(alpha=0.3); ax.legend(fontsize=8)
# fig.suptitle(f"784-256-256-10 trained on {small['train_abs_samples']:,} MNIST images: overfitting and its remedies")
# save_figure(fig, "11_remedies_small_data.png")
# plt.show()

# %% [markdown]
# **Reading the curves.** The cell below reads them (in the full run it also asserts what it says; the quick run of the
# test suite trains on fewer images for fewer epochs and prints other numbers).

# %% tags=["active-ipynb"]
# curves = {label: r["history"].steps_values("val", "loss") for label, r in small_runs.items()}
# final = {label: v[-1] for label, (_, v) in curves.items()}
# lowest = {label: v.min() for label, (_, v) in curves.items()}
# rise = {label: final[label] / lowest[label] - 1 for label in small_runs}
# test = {label: r["test_accuracy"] for label, r in small_runs.items()}
# steps_none, loss_none = curves["none"]
# epoch_min = steps_none[np.argmin(loss_none)] / (small_runs["none"]["steps"] / small_runs["none"]["epochs"])
# by_final = sorted(final, key=final.get)
# best_test = max(test, key=test.get)
# without_images = [label for label in small_runs if label not in ("shift ≤ 2 px", "all four")]
# display(Markdown(("*Quick run: too short to read; the text is checked in the full run only.* " if QUICK else "") +
#     f"Without regularisation the validation loss is lowest after epoch {epoch_min:.0f} ({lowest['none']:.3f}) and then "
#     f"climbs, to {final['none']:.3f} at the end ({rise['none']:+.0%}), while the training loss keeps falling. Dropout 0.3 "
#     f"and AdamW λ = 0.05 end lower ({final['dropout 0.3']:.3f}, {final['AdamW λ=0.05']:.3f}) but still rise from their "
#     f"lowest point ({rise['dropout 0.3']:+.0%}, {rise['AdamW λ=0.05']:+.0%}): they slow the overfitting, they do not stop "
#     f"it (test accuracy {test['none']:.1%} without, {test['dropout 0.3']:.1%} and {test['AdamW λ=0.05']:.1%} with them). "
#     f"**Shifts of up to 2 pixels change the picture**: the two recipes with shifts end at "
#     f"{final['shift ≤ 2 px']:.3f} (shifts alone) and {final['all four']:.3f} (all four), far below every recipe "
#     f"without them, because they add what a small data set lacks: new images. The lowest final validation loss is "
#     f"*{by_final[0]}*'s, the highest test accuracy *{best_test}*'s ({test[best_test]:.2%}). Shifts alone and all four "
#     f"differ by {abs(test['all four'] - test['shift ≤ 2 px']):.2%} in test accuracy: too little to rank them on one "
#     f"seed (experiment 07 runs three)."))
# if not QUICK:
#     for label in ("dropout 0.3", "AdamW λ=0.05"):
#         assert final[label] < final["none"] and rise[label] > 0.05, label      # slower overfitting, not none
#     assert max(final["shift ≤ 2 px"], final["all four"]) < 0.7 * min(final[label] for label in without_images)
#     assert set(by_final[:2]) == {"shift ≤ 2 px", "all four"}

# %% [markdown]
# **Did weight decay help? Hardly, on this problem.** Section 2's sweep found no $\lambda$ that improved either
# formulation; here, on 5,000 images, AdamW with $\lambda = 0.05$ slows the rise of the validation loss, less
# than dropout does; and experiment 07, with the full training set and three seeds, cannot tell decay alone from no
# regularisation at all. The readings above say why this is no surprise:
#
# * as a *prior* or a *limit on capacity*, decay competes with the data: with 20,000 or 55,000 images and 5–20
#   epochs, the constraint that would change the solution costs more accuracy (Adam + L2's column) than the
#   overfitting it prevents; on 5,000 images the overfitting comes from too few *images*, which shifts cure and a
#   smaller $\|W\|$ does not;
# * the mechanism by which decay helps most in practice — the *rising effective learning rate* of weights that feed
#   a BatchNorm, in long SGD training of deep convolutional networks (the ResNets on CIFAR-10 and ImageNet studied by
#   Zhang et al. 2019) — does not arise in these MLPs: they have no BatchNorm.
#
# So we do not claim a benefit we have not measured: in this course, on MNIST, weight decay is a tool whose
# mechanics you now know, not one that wins. The cell prints the evidence side by side.

# %% tags=["active-ipynb"]
# print(f"section 2, 784-256-10 on {base['train_abs_samples']:,} images: best gain of any lambda > 0 in test accuracy: "
#       f"Adam + L2 {100 * gain['adam']:+.2f}, AdamW {100 * gain['adamw']:+.2f} percentage points")
# print(f"section 5, 784-256-256-10 on {small['train_abs_samples']:,} images: AdamW 0.05 vs none: test accuracy "
#       f"{100 * (test['AdamW λ=0.05'] - test['none']):+.2f} points, final validation loss "
#       f"{final['AdamW λ=0.05']:.3f} vs {final['none']:.3f}; dropout 0.3: {100 * (test['dropout 0.3'] - test['none']):+.2f} "
#       f"points, {final['dropout 0.3']:.3f}")
# if not QUICK:
#     assert final["dropout 0.3"] < final["AdamW λ=0.05"] < final["none"]       # decay slows the rise, less than dropout

# %% [markdown]
# ## 6. Engineering: configs, files, settings, sliders, resuming
#
# `Dropout` is registered with chapter 07's `register_layer`, so a config with `{"layer": "Dropout",
# "rate": 0.3}` builds it, `summary` lists it (no parameters), and `save`/`load` round-trip it; its
# generator is not part of a *model* file (a loaded model predicts, deterministically; to train it, pass
# `rng=` to `load`). Chapter 10's run settings gained four keys, each validated by `check_settings`:
#
# | setting | meaning | default |
# |---|---|---|
# | Dropout layers in `architecture` | per layer: `{"layer": "Dropout", "rate": p}`; `mlp(hidden, dropout=p)` puts one after each hidden ReLU | none |
# | `weight_decay` | λ: decoupled for `adamw`, L2 for `sgd`/`momentum`/`adam`; `None` keeps the optimiser's own | `None` |
# | `decay_exclude` | parameter names weight decay leaves alone | `["b", "gamma", "beta"]` |
# | `schedule` | `None`, `"constant"`, `"cosine"`, `"step"`, `"warmup_cosine"` or a schedule config dict | `None` |
# | `augment` | `None` or `{"max_shift": px, "max_degrees": deg}`, training batches only | `None` |
#
# and the experiment panels have a slider or box for each (the dropout rate applies to every hidden layer).

# %% [markdown]
# A schedule given as a config must fit the run it is used in: a warm-up as long as the run (or longer) would end the
# run still warming up, at a fraction of the rate, without a word, so `schedule_for_run` refuses it; a decay longer
# than the run (it stops before reaching its final factor) is allowed but warned about at the start.

# %%
def _fits_the_run(schedule, n_steps):
    """schedule, if its warm-up ends before the run does (else a ValueError); a warning if a decay outlasts the run."""
    offset, part = 0, schedule
    while isinstance(part, LinearWarmup):
        offset += part.warmup_steps
        if offset >= n_steps:
            raise ValueError(f"schedule_for_run: {schedule!r} warms up for {offset} steps, but the run has only "
                             f"{n_steps}: the run would end still warming up, at {schedule(n_steps):.3g} x lr. Choose "
                             f"warmup_steps < {n_steps} (or 'warmup_cosine', which warms up for one epoch)")
        part = part.then
    length = {CosineDecay: "total_steps", StepDecay: "step_size"}.get(type(part))
    if length and offset + getattr(part, length) >= n_steps:
        warnings.warn(f"schedule_for_run: {schedule!r}: {type(part).__name__}'s {length}={getattr(part, length)} "
                      f"(after {offset} warm-up steps) does not fit in the run's {n_steps} steps: the run ends at "
                      f"{schedule(n_steps):.3g} x lr, before the decay is complete", stacklevel=3)
    return schedule

# %% tags=["active-ipynb"]
# net = Sequential.from_config(mlp([32, 16], dropout=0.25), n_in=784, rng=np.random.default_rng(0))
# net.summary()
# config = net.get_config()
# assert [e["rate"] for e in config if e["layer"] == "Dropout"] == [0.25, 0.25] and LAYER_TYPES["Dropout"] is Dropout
# net.save(scratch / "dropout_net.npz")
# again = Sequential.load(scratch / "dropout_net.npz")
# assert again.get_config() == config and np.array_equal(again.predict(X_te[:100]), net.predict(X_te[:100]))
# for bad in ({"architecture": mlp([32], dropout=1.0)}, {"weight_decay": -1e-4}, {"schedule": "linear"},
#             {"augment": {"max_shift": 1.5}}, {"decay_exclude": "b"}):
#     try:
#         check_settings(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError(f"{bad} was accepted")

# %% tags=["active-ipynb"]
# defaults = check_settings({"model_name": "panel", "architecture": mlp([128], dropout=0.2), "optimizer": "adamw",
#                            "train_abs_samples": 5000,
#                            "weight_decay": 0.05, "schedule": "warmup_cosine", "augment": {"max_shift": 2}})
# panel = experiment_controls(defaults)
# values = {c.description: c.value for c in panel.children if hasattr(c, "value") and hasattr(c, "description")}
# print({k: values[k] for k in ("dropout rate", "weight decay", "weight decay λ", "lr schedule", "random shift (px)")})
# controls = {"lr": 1e-3, "batch_size": 128, "hidden_units": 128, "train_abs_samples": 5000, "num_epochs": 1,
#             "clip_on": False, "clip": 5.0, "batchnorm": False, "init": "he", "optimizer": "adamw",
#             "dropout": 0.2, "decay_on": True, "weight_decay": 0.05, "schedule": "warmup_cosine", "max_shift": 2}
# assert settings_from_controls(defaults, controls) == defaults        # the sliders start at exactly these settings
# assert settings_from_controls(defaults, {**controls, "dropout": 0.0})["architecture"] == mlp([128])

# %% [markdown]
# ### Resuming is bit-exact, with masks, schedule and augmentation
#
# A checkpoint (chapter 09) already holds the model, the optimiser's step count and slots, the batch
# stream and the history. Regularisation adds three sources of state, and each one is saved:
#
# * the **Dropout masks** come from a generator: its state (`bit_generator.state`, plain JSON) is stored
#   in the checkpoint's metadata under `rng_states`, by layer name, and put back on resume;
# * the **schedule** is a function of the step count, which the optimiser's state already holds; its
#   config is recorded in the checkpoint, and resuming under a *different* schedule is refused;
# * the **augmentation** generator's state is part of `AugmentedStream.state_dict()`, saved with the stream.
#
# The check: 60 steps in one go against 40 steps, a brand-new Loop (new model, new generators, as after a
# restart) resuming from the checkpoint, and 20 more. Every weight must be equal **bit for bit**, and so
# must the per-step losses and learning rates. As a control, a resumed run whose Dropout generator was *not*
# restored ends elsewhere.

# %% tags=["active-ipynb"]
# def make_loop(folder):
#     model = Sequential([Dense(64), ReLU(), Dropout(0.3), Dense(10)], n_in=784, rng=np.random.default_rng(7))
#     stream = AugmentedStream(BatchStream(X_tr[:2000], y_tr[:2000], 50, np.random.default_rng(8)), Augment(2, 10),
#                              np.random.default_rng(9))
#     opt = AdamW(2e-3, weight_decay=0.05)
#     opt.decays, opt.schedule = DecayMask(), LinearWarmup(10, CosineDecay(50))
#     return Loop(model, TrainTask(stream, SoftmaxCrossEntropy(), opt, n_steps_per_checkpoint=20),
#                 eval_tasks=[EvalTask((X_va[:500], y_va[:500]), name="val")], output_dir=folder, progress=False,
#                 verbose=False)
#
# whole = make_loop(scratch / "whole")
# whole.run(60)
# make_loop(scratch / "split").run(40)
# resumed = make_loop(scratch / "split")              # a new process would do exactly this
# assert resumed.step == 40
# resumed.run(20)
# same = all(np.array_equal(a, b) for a, b in zip(whole.model.params.values(), resumed.model.params.values()))
# for metric in ("loss", "lr"):
#     assert whole.history.get("train", metric) == resumed.history.get("train", metric), metric
# print("resumed run equals the uninterrupted one bit for bit:", same)
# assert same
# make_loop(scratch / "forgot").run(40)
# forgot = make_loop(scratch / "forgot")
# forgot.model.layers[2].rng = np.random.default_rng(7)   # as if the mask generator's state had not been saved
# forgot.run(20)
# diff = max(float(np.max(np.abs(a - b))) for a, b in zip(whole.model.params.values(), forgot.model.params.values()))
# print(f"without the generator's state the weights differ by up to {diff:.2e}")
# assert diff > 0
# other = make_loop(scratch / "split")
# other.task.optimizer.schedule = CosineDecay(60)          # a different schedule cannot silently continue
# try:
#     other.restore(scratch / "split" / "checkpoint_last.npz")
# except ValueError as e:
#     print("ValueError:", str(e).replace(str(scratch), "<scratch>"))
# else:
#     raise AssertionError("a checkpoint was resumed under another schedule")

# %% [markdown]
# **The learning rate is logged at every step** — in the History as `train/lr`, and through
# `WandbLogger`, which logs every entry of a step's logs, as `train/lr` in Weights & Biases. Here the W&B
# run is replaced by a recorder (the tests run without W&B), to see what it would receive.

# %% tags=["active-ipynb"]
# steps, rates = whole.history.steps_values("train", "lr")
# assert np.allclose(rates, [2e-3 * whole.task.optimizer.schedule(int(t)) for t in steps], rtol=0, atol=1e-15)
#
# class Recorder:
#     def __init__(self):
#         self.logged = []
#     def log(self, values, step):
#         self.logged.append((step, values))
#     def finish(self):
#         pass
#
# class RecordingLogger(WandbLogger):
#     def on_train_begin(self, loop):
#         self.run = Recorder()
#     def on_train_end(self, loop):
#         self.recorded = self.run.logged
#
# logger = RecordingLogger()
# tracked = make_loop(scratch / "tracked")
# tracked.callbacks.append(logger)
# tracked.run(12)
# lr_logged = [(step, v["train/lr"]) for step, v in logger.recorded if "train/lr" in v]
# print("W&B would receive train/lr:", [f"{lr:.1e}" for _, lr in lr_logged[:12]])
# assert [s for s, _ in lr_logged] == list(range(1, 13)) and lr_logged[9][1] == 2e-3

# %% [markdown]
# ## Summary
#
# * **Overfitting** shows as a validation loss that turns upward while the training loss keeps falling
#   (chapter 09's figure, and section 5 with a small training set).
# * **Dropout** with `rate` $p$ = the probability of *dropping*: $Y = X\odot M/(1-p)$ in training (inverted:
#   $\mathbb E[Y] = X$), the identity in inference; $dX = dY\odot M/(1-p)$ through the same mask; masks
#   from a generator that is passed in and saved in checkpoints.
# * **Weight decay**: L2 in the loss adds $\lambda W$ to the gradient; decoupled decay shrinks $W$ by
#   $1-\eta\lambda$ outside the optimiser. The same update for plain SGD; not with momentum, not for Adam
#   (measured: the same $\lambda$ crushes the weights with Adam + L2 and barely moves them with AdamW). Weight
#   matrices decay; biases and BatchNorm's $\gamma, \beta$ do not (`DecayMask`, configurable).
# * **Why**: dropout trains $2^n$ weight-sharing thinned networks, and the full network with weight scaling
#   approximates their average (exactly, for what is linear in the dropped units). L2 is a Gaussian prior
#   ($\lambda = 1/(N\sigma^2)$) and a limit on $\|W\|$. Before a BatchNorm the weights' scale does not matter, and
#   decay acts as a rising effective learning rate. On this chapter's MNIST runs (and in experiment 07) decay did
#   not help; shifts, which add images, helped most.
# * **Schedules** are factors $s(t)$ of the base rate — `Constant`, `StepDecay`, `CosineDecay`,
#   `LinearWarmup(w, then)` — with `get_config`; the optimiser consults them each step; the rate is logged
#   per step; resuming is bit-exact.
# * **Augmentation**: random shifts (exact, one gather) and small rotations (bilinear), seeded, applied by
#   `AugmentedStream` to training batches only.
# * Configs, `summary`, save/load, run settings and the sliders know every piece; experiment 07 combines
#   them on the full data.
#
# ## Exercises
#
# 1. **Test-time scaling.** Implement the original ("non-inverted") dropout: in training $Y = X\odot M$,
#    at inference $Y = (1-p)X$. Check numerically that its expected training output equals its inference
#    output and that its inference output is $(1-p)$ times that of inverted dropout. Show that a network with
#    either can *represent* the same functions (how do the weights after the dropout map?), and that they still
#    do not *train* the same: compare one SGD step of each from corresponding weights.
# 2. **A new schedule.** Write `ExponentialDecay(rate, every)` with factor $\text{rate}^{(t-1)/\text{every}}$
#    and a `get_config`; register it in `SCHEDULES`, check that `get_schedule` round-trips it through JSON,
#    and that `LinearWarmup(5, ExponentialDecay(0.5, 10))` is continuous at the end of the warm-up.
# 3. **Why decay only weights?** With AdamW and a zero gradient, compute after 1,000 steps ($\eta = 10^{-3}$,
#    $\lambda = 0.1$) the factor by which a decaying parameter has shrunk, in closed form and by running the
#    optimiser, with and without the default `DecayMask`, for a BatchNorm `gamma` of ones.
# 4. **A bad augmentation.** Flipping an image left–right is a standard augmentation for photographs. Why
#    is it a bad one for digits? Measure the accuracy of the chapter's regularised network (section 5) on
#    left–right flipped test images.

# %% [markdown]
# **Solutions 1, 2, 3 and 4** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     # Non-inverted dropout: scale at inference instead of in training.
#     class PlainDropout(Dropout):
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             if not training:
#                 self._cache = None
#                 return X * (1 - self.rate)
#             self._cache = (self.rng.random(X.shape) >= self.rate).astype(X.dtype)
#             return X * self._cache
#
#     X = np.random.default_rng(0).standard_normal((3, 4))
#     plain = PlainDropout(0.4, rng=np.random.default_rng(1))
#     mean_train = np.mean([plain.forward(X, training=True) for _ in range(20000)], axis=0)
#     assert np.allclose(mean_train, plain.forward(X), atol=0.03)               # E[train output] = inference output
#     assert np.allclose(plain.forward(X), 0.6 * Dropout(0.4).forward(X))      # (1-p) x inverted dropout's
#     print("max |E[train] - inference| =", np.max(np.abs(mean_train - plain.forward(X))).round(4))
#     # The same functions: the layer after the dropout is linear, so plain dropout with weights W' = W / (1-p) computes
#     # what inverted dropout computes with W, for every mask in training and at inference.
#     p, lr = 0.4, 0.1
#     X, W, G = rng.standard_normal((5, 6)), rng.standard_normal((6, 3)), rng.standard_normal((5, 3))
#     M = rng.random(X.shape) >= p
#     W_plain = W / (1 - p)
#     assert np.allclose((X * M / (1 - p)) @ W, (X * M) @ W_plain) and np.allclose(X @ W, ((1 - p) * X) @ W_plain)
#     # Not the same training: for the loss sum(G * output), dW = (X M/(1-p))^T G but dW' = (X M)^T G = (1-p) dW, and a step
#     # of W' moves the function (1-p) times less again. One SGD step of the plain network is the inverted network's step
#     # with the learning rate lr (1-p)^2 (and the same initialiser gives the two networks different starting functions).
#     dW, dW_plain = (X * M / (1 - p)).T @ G, (X * M).T @ G
#     W1, W1_plain = W - lr * dW, W_plain - lr * dW_plain
#     gap = np.abs(X @ W1 - ((1 - p) * X) @ W1_plain).max()
#     print(f"after one SGD step the two inference outputs differ by up to {gap:.3f}")
#     assert gap > 1e-3 and np.allclose(W - (1 - p) * W1_plain, lr * (1 - p) ** 2 * dW)

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     # An exponential schedule, registered and composed.
#     class ExponentialDecay(Schedule):
#         name = "exponential"
#         def __init__(self, rate, every):
#             if not 0 < rate <= 1:
#                 raise ValueError(f"ExponentialDecay: rate must lie in (0, 1], got {rate!r}")
#             self.rate, self.every = float(rate), as_count(every, "every", "ExponentialDecay")
#         def __call__(self, t):
#             return self.rate ** ((t - 1) / self.every)
#
#     SCHEDULES["exponential"] = ExponentialDecay
#     try:
#         sched = LinearWarmup(5, ExponentialDecay(0.5, 10))
#         again = get_schedule(json.loads(json.dumps(sched.get_config())))
#         assert all(again(t) == sched(t) for t in range(1, 100))
#         assert sched(5) == 1.0 == sched(6) and abs(sched(16) - 0.5) < 1e-15     # continuous; halved 10 steps later
#         print(sched.get_config())
#     finally:
#         del SCHEDULES["exponential"]          # leave the module's registry as it was

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     # Decoupled decay alone: W_t = (1 - lr*lam)^t W_0.
#     lr, lam, n = 1e-3, 0.1, 1000
#     for mask in (None, DecayMask()):
#         params = {"dense_0/W": np.ones(3), "batchnorm_0/gamma": np.ones(3)}
#         opt = AdamW(lr, weight_decay=lam)
#         opt.decays = mask
#         for _ in range(n):
#             opt.step(params, {k: np.zeros(3) for k in params})
#         print(f"mask {mask}: W shrank to {params['dense_0/W'][0]:.4f}, gamma to {params['batchnorm_0/gamma'][0]:.4f}")
#         assert np.allclose(params["dense_0/W"], (1 - lr * lam) ** n)
#         assert np.allclose(params["batchnorm_0/gamma"], 1.0 if mask is not None else (1 - lr * lam) ** n)
#     print(f"closed form (1 - lr lam)^n = {(1 - lr * lam) ** n:.4f} ~ exp(-lr lam n) = {np.exp(-lr * lam * n):.4f}")

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 4.
# with hidden_output():
#     # A mirrored 2 is not a 2 (and a mirrored 7 is no digit at all): flips change the label.
#     flipped = X_te.reshape(-1, 28, 28)[:, :, ::-1].reshape(-1, 784)
#     regularised = small_runs["all four"]["model"]
#     acc = np.mean(regularised.predict(X_te).argmax(axis=1) == y_te)
#     acc_flipped = np.mean(regularised.predict(flipped).argmax(axis=1) == y_te)
#     print(f"test accuracy {acc:.2%}; on left-right flipped test images {acc_flipped:.2%}")
#     assert acc_flipped < acc - 0.2
#     # Only 0, 1 and 8 are roughly symmetric; a network trained on flipped copies would have to give a digit
#     # and its mirror image the same label, which throws information away.

# %% [markdown]
# ---
# [← 10 — experiments toolkit](10_experiments.ipynb) · [begin here](00_begin_here.ipynb) · **11 — regularisation** · [next: 12 — convolution →](12_convolution.ipynb)
