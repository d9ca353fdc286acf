# %% [markdown]
# [← 03a — computational graph](03a_computational_graph.ipynb) · [begin here](00_begin_here.ipynb) · **04 — initialisers** · [next: 05 — BatchNorm →](05_batchnorm.ipynb)
#
# # 04 — Initialisers: N(0,1), He and Glorot
#
# Before the first gradient step, every weight of a network is a random number. *Which*
# random numbers decides whether the signal survives the trip through the layers: too large
# and the activations (and gradients) grow by a constant factor per layer and explode; too
# small and they shrink to nothing. This chapter derives the variance that keeps a ReLU
# network's activations at a constant scale (He), the compromise for forward *and* backward
# passes (Glorot), and shows what the original *diy-dnn*'s "Random" initialiser, $\mathcal N(0,1)$,
# does to a 10-layer network.
#
# An initialiser is a small object: called as `init(fan_in, fan_out, rng)` it returns a
# float64 array of shape $(n_{in}, n_{out})$, drawn **only** from the generator it is given.
# `Dense` (chapter 01) looks it up by `get_initialiser(spec)` when it builds its weights.

# %%
"""Chapter 04: weight initialisers RandomNormal, HeNormal, GlorotUniform, and get_initialiser."""
import numpy as np


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import save_figure
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU
# rng = np.random.default_rng(4)

# %% [markdown]
# ## 1. The code
#
# Three initialisers, named as in Keras:
#
# | name | class | distribution | variance |
# |---|---|---|---|
# | `"random"` | `RandomNormal(stddev=1.0)` | $\mathcal N(0, s^2)$ | $s^2$ (the original's "Random": $s = 1$) |
# | `"he"` | `HeNormal()` | $\mathcal N(0, 2/n_{in})$ | $2/n_{in}$ |
# | `"glorot"` | `GlorotUniform()` | $\mathcal U(-l, l)$, $l=\sqrt{6/(n_{in}+n_{out})}$ | $2/(n_{in}+n_{out})$ |
#
# `get_initialiser` turns a name (or alias), a config dict such as `{"name": "random", "stddev": 0.1}`,
# or an object into an initialiser; `get_config()` returns such a dict, so a model's config
# (chapter 07) can rebuild its initialisers. The sections after the code derive the variances.

# %%
def _check_fans(who, fan_in, fan_out):
    """Refuse fans that are not positive integers (a zero fan_in would divide by zero)."""
    for label, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
        if isinstance(fan, bool) or int(fan) != fan or fan < 1:
            raise ValueError(f"{who}: {label} must be a positive integer, got {fan!r}")


class Initialiser:
    """Draws a weight matrix of shape (fan_in, fan_out) from the generator it is given."""

    name = "initialiser"

    def __call__(self, fan_in, fan_out, rng):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"{type(self).__name__}()"


class RandomNormal(Initialiser):
    """N(0, stddev^2); with stddev=1 this is the original diy-dnn's "random" initialiser."""

    name = "random"

    def __init__(self, stddev=1.0):
        if not stddev > 0:
            raise ValueError(f"RandomNormal: stddev must be positive, got {stddev!r}")
        self.stddev = float(stddev)

    def __call__(self, fan_in, fan_out, rng):
        _check_fans(repr(self), fan_in, fan_out)
        return rng.normal(0.0, self.stddev, size=(int(fan_in), int(fan_out)))

    def get_config(self):
        return {"name": self.name, "stddev": self.stddev}

    def __repr__(self):
        return f"RandomNormal(stddev={self.stddev})"


class HeNormal(Initialiser):
    """N(0, 2/fan_in): keeps the variance of ReLU activations constant from layer to layer."""

    name = "he"

    def __call__(self, fan_in, fan_out, rng):
        _check_fans(repr(self), fan_in, fan_out)
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(int(fan_in), int(fan_out)))


class GlorotUniform(Initialiser):
    """U(-l, l) with l = sqrt(6/(fan_in + fan_out)): variance 2/(fan_in + fan_out)."""

    name = "glorot"

    def __call__(self, fan_in, fan_out, rng):
        _check_fans(repr(self), fan_in, fan_out)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(int(fan_in), int(fan_out)))


INITIALISERS = {
    "random": RandomNormal, "random_normal": RandomNormal,
    "he": HeNormal, "he_normal": HeNormal,
    "glorot": GlorotUniform, "glorot_uniform": GlorotUniform, "xavier": GlorotUniform,
}


def get_initialiser(spec):
    """An initialiser from a name ("he"), a config dict ({"name": "random", "stddev": 0.1}) or an object."""
    if isinstance(spec, Initialiser) or (callable(spec) and not isinstance(spec, (str, dict, type))):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if isinstance(spec, dict):
        kwargs = dict(spec)
        name = kwargs.pop("name", None)
        if name not in INITIALISERS:
            raise ValueError(f"unknown initialiser {name!r}; known: {sorted(INITIALISERS)}")
        try:
            return INITIALISERS[name](**kwargs)
        except TypeError as e:
            raise ValueError(f"initialiser {name!r}: bad arguments {kwargs}: {e}") from None
    raise ValueError(f"initialiser must be a name, a config dict or an Initialiser, got {spec!r}")

# %% [markdown]
# Each initialiser draws what its table row says. For a large matrix the sample mean is
# near 0 and the sample variance near the formula (the standard error of a variance estimate from
# $N$ draws is about $\sqrt{2/N}$ relative, 0.3 % here). The same seed gives the same weights, and
# NumPy's global random state is never touched.

# %% tags=["active-ipynb"]
# fan_in, fan_out = 400, 300
# expected_var = {"random": 1.0, "he": 2 / fan_in, "glorot": 2 / (fan_in + fan_out)}
# global_state = np.random.get_state()[1].copy()
# for name, var in expected_var.items():
#     W = get_initialiser(name)(fan_in, fan_out, np.random.default_rng(0))
#     again = get_initialiser(name)(fan_in, fan_out, np.random.default_rng(0))
#     print(f"{name:7s} shape {W.shape}  mean {W.mean():+.5f}  variance {W.var():.6f}  formula {var:.6f}")
#     assert W.shape == (fan_in, fan_out) and W.dtype == np.float64 and np.array_equal(W, again)
#     assert abs(W.mean()) < 4 * np.sqrt(var / W.size) and abs(W.var() / var - 1) < 0.02
# assert np.array_equal(global_state, np.random.get_state()[1])
# print("same seed -> same weights; global RNG state untouched")

# %% [markdown]
# ## 2. How the variance travels through a layer
#
# Take one Dense layer at initialisation (bias 0) with $n = n_{in}$ inputs:
# $z_k = \sum_{j=1}^{n} a_j W_{jk}$. Assume the weights are independent, of mean 0 and of variance
# $\mathrm{Var}(W)$, and independent of the inputs $a_j$, which are identically distributed. Each
# term has mean $E[a_j]E[W_{jk}] = 0$, and the terms are uncorrelated, so
#
# $$\mathrm{Var}(z_k) = \sum_{j=1}^{n} \mathrm{Var}(a_j W_{jk}) = n\,\big(E[a^2]\,E[W^2] - (E[a]\,E[W])^2\big)
#   = n\,\mathrm{Var}(W)\,E[a^2].$$
#
# Note $E[a^2]$, not $\mathrm{Var}(a)$: the inputs of a hidden layer are ReLU outputs, whose mean
# is not zero. The cell checks the formula by Monte Carlo, with ReLU inputs and weights of
# variance $0.3^2$.

# %% tags=["active-ipynb"]
# n, m_mc = 256, 20000
# a = np.maximum(0, rng.standard_normal((m_mc, n)))          # ReLU outputs: E[a] > 0
# W = rng.normal(0, 0.3, size=(n, 64))
# z = a @ W
# predicted = n * 0.3 ** 2 * np.mean(a ** 2)
# print(f"Var(z) measured {z.var():.3f};  n Var(W) E[a^2] = {predicted:.3f};  n Var(W) Var(a) would be {n * 0.09 * a.var():.3f}")
# assert abs(z.var() / predicted - 1) < 0.05 and abs(z.var() / (n * 0.09 * a.var()) - 1) > 0.3

# %% [markdown]
# ## 3. What a ReLU does to the second moment
#
# If $z$ is symmetric about 0 (true at initialisation: the weights are symmetric), half of its
# mass is cut off by the ReLU, and the other half is kept unchanged:
#
# $$E[\mathrm{relu}(z)^2] = \int_0^\infty z^2\,p(z)\,dz = \frac12\int_{-\infty}^{\infty} z^2\,p(z)\,dz
#   = \frac12\,E[z^2] = \frac12\,\mathrm{Var}(z).$$
#
# No Gaussian assumption is needed, only symmetry and mean 0. Checked for a Gaussian and a
# uniform $z$:

# %% tags=["active-ipynb"]
# for label, zs in (("N(0, 3^2)", rng.normal(0, 3, 10 ** 6)), ("U(-2, 2)", rng.uniform(-2, 2, 10 ** 6))):
#     lhs, rhs = np.mean(np.maximum(0, zs) ** 2), zs.var() / 2
#     print(f"z ~ {label:9s}: E[relu(z)^2] = {lhs:.4f},  Var(z)/2 = {rhs:.4f}")
#     assert abs(lhs / rhs - 1) < 0.01

# %% [markdown]
# ## 4. He: $\mathrm{Var}(W) = 2/n_{in}$
#
# Put the two together for layer $l$, whose inputs are the ReLU of layer $l-1$'s pre-activations:
#
# $$\mathrm{Var}(z^{(l)}) = n_{in}\,\mathrm{Var}(W^{(l)})\,E\big[\mathrm{relu}(z^{(l-1)})^2\big]
#   = \frac{n_{in}\,\mathrm{Var}(W^{(l)})}{2}\,\mathrm{Var}(z^{(l-1)}).$$
#
# The variance is multiplied by $n_{in}\mathrm{Var}(W)/2$ in every layer, so over $L$ layers by
# $(n_{in}\mathrm{Var}(W)/2)^{L}$. It stays constant exactly when
#
# $$\mathrm{Var}(W) = \frac{2}{n_{in}} \qquad\text{(He et al., 2015)}.$$
#
# **A correction to the original.** Its README wrote the He variance as "$C$", a constant. It is
# not a constant: it is $2/n_{in}$ and shrinks as the layer gets wider, which is the whole point.
#
# With the original's $\mathcal N(0,1)$ ($\mathrm{Var}(W) = 1$) and 256 inputs, the factor is
# $256/2 = 128$ per layer: the standard deviation grows by $\sqrt{128}\approx 11.3$ per layer. With
# Glorot on a square 256 → 256 layer, $\mathrm{Var}(W) = 2/512$ and the factor is $1/2$. The cell
# measures the factor on one layer for each.

# %% tags=["active-ipynb"]
# z_prev = rng.standard_normal((4096, 256)) * 1.7                   # some symmetric pre-activations
# for name, predicted in (("random", 256 / 2), ("he", 1.0), ("glorot", 256 * (2 / 512) / 2)):
#     W = get_initialiser(name)(256, 256, rng)
#     z_next = np.maximum(0, z_prev) @ W
#     factor = z_next.var() / z_prev.var()
#     print(f"{name:7s} Var(z_l)/Var(z_l-1) measured {factor:8.3f}, predicted n Var(W)/2 = {predicted:8.3f}")
#     assert abs(factor / predicted - 1) < 0.15

# %% [markdown]
# ## 5. Glorot: forward and backward at once
#
# The backward pass has its own variance rule. From chapter 01, $dX = dZ\,W^\top$, i.e.
# $da_j = \sum_{k=1}^{n_{out}} dz_k W_{jk}$: the same sum as in section 2, now over the $n_{out}$
# outputs, so $\mathrm{Var}(da) = n_{out}\,\mathrm{Var}(W)\,E[dz^2]$. For an activation whose slope is
# about 1 near zero (the identity, or tanh, which Glorot and Bengio studied in 2010), keeping
# both passes at a constant scale needs
#
# $$n_{in}\,\mathrm{Var}(W) = 1 \quad\text{(forward)}, \qquad n_{out}\,\mathrm{Var}(W) = 1 \quad\text{(backward)}.$$
#
# Both hold only when $n_{in} = n_{out}$; Glorot's compromise takes the harmonic mean,
#
# $$\mathrm{Var}(W) = \frac{2}{n_{in} + n_{out}}.$$
#
# To draw it from a uniform distribution $\mathcal U(-l, l)$, whose density is $1/(2l)$,
#
# $$\mathrm{Var}\big(\mathcal U(-l,l)\big) = \int_{-l}^{l} \frac{x^2}{2l}\,dx = \frac{l^2}{3}
#   \quad\Longrightarrow\quad l = \sqrt{3\cdot\frac{2}{n_{in}+n_{out}}} = \sqrt{\frac{6}{n_{in}+n_{out}}}.$$
#
# The cells check the uniform variance, the limit, and the backward rule.
# (For ReLU networks the backward rule gets the same factor $1/2$ as the forward one, since
# the ReLU passes a gradient with probability $1/2$; He's "fan-out" variant uses $2/n_{out}$.)

# %% tags=["active-ipynb"]
# l = 0.7
# u = rng.uniform(-l, l, 10 ** 6)
# print(f"Var(U(-{l}, {l})) = {u.var():.5f},  l^2/3 = {l ** 2 / 3:.5f}")
# assert abs(u.var() / (l ** 2 / 3) - 1) < 0.01
# W_g = GlorotUniform()(300, 100, rng)
# limit = np.sqrt(6 / 400)
# print(f"Glorot 300 -> 100: max |W| = {np.abs(W_g).max():.4f} <= l = {limit:.4f};  Var(W) = {W_g.var():.6f}, 2/(300+100) = {2 / 400:.6f}")
# assert np.abs(W_g).max() <= limit and np.abs(W_g).max() > 0.99 * limit and abs(W_g.var() / (2 / 400) - 1) < 0.03

# %% tags=["active-ipynb"]
# n_in_b, n_out_b = 128, 512
# W_b = rng.normal(0, 0.05, size=(n_in_b, n_out_b))
# dZ = rng.standard_normal((4096, n_out_b))
# dX = dZ @ W_b.T
# print(f"backward: Var(dX) measured {dX.var():.4f},  n_out Var(W) E[dz^2] = {n_out_b * 0.05 ** 2 * np.mean(dZ ** 2):.4f}")
# assert abs(dX.var() / (n_out_b * 0.05 ** 2 * np.mean(dZ ** 2)) - 1) < 0.05

# %% [markdown]
# ## 6. Dense takes a name, a config or an object
#
# `Dense(units, init=...)` accepts any of the three forms, and its config stores the
# initialiser as a name or a dict, so `Dense(**config)` rebuilds it. Same seed, same spec:
# same weights. A name nobody knows is refused with the list of known ones.

# %% tags=["active-ipynb"]
# by_name = Dense(64, n_in=32, init="he", rng=np.random.default_rng(7))
# by_object = Dense(64, n_in=32, init=HeNormal(), rng=np.random.default_rng(7))
# small = Dense(64, n_in=32, init={"name": "random", "stddev": 0.01}, rng=np.random.default_rng(7))
# print("init='he' and init=HeNormal() give the same weights:", np.array_equal(by_name.params["W"], by_object.params["W"]))
# print("config of the object version:", by_object.get_config())
# print("config of the dict version:  ", small.get_config(), " std of W:", round(float(small.params["W"].std()), 4))
# rebuilt = Dense(**small.get_config(), rng=np.random.default_rng(7))
# assert np.array_equal(by_name.params["W"], by_object.params["W"])
# assert np.array_equal(rebuilt.params["W"], small.params["W"]) and abs(small.params["W"].std() / 0.01 - 1) < 0.1
# for bad in ("lecun", {"name": "random", "mean": 1.0}, 3):
#     try:
#         get_initialiser(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("a bad initialiser spec was accepted")

# %% [markdown]
# ## 7. Ten layers deep
#
# A stack of 10 Dense(256)–ReLU layers, fed a batch of 512 samples of $\mathcal N(0,1)$ noise,
# built four times: with the original's $\mathcal N(0,1)$, with $\mathcal N(0, 0.01^2)$ (a common "small
# random numbers" recipe), with Glorot and with He. The predicted standard deviation of the
# pre-activations is multiplied per layer by $\sqrt{n_{in}\mathrm{Var}(W)/2}$: $\sqrt{128}\approx 11.3$,
# $\sqrt{0.0128}\approx 0.11$, $\sqrt{1/2}\approx 0.71$ and $1$. The figure shows the standard deviation
# of the activations (ReLU outputs) after each layer, and the histograms of He's activations.

# %% tags=["active-ipynb"]
# depth, width, batch = 10, 256, 512
# X_in = np.random.default_rng(40).standard_normal((batch, width))
# specs = {"N(0, 1) (original)": "random", "N(0, 0.01²)": {"name": "random", "stddev": 0.01},
#          "Glorot uniform": "glorot", "He normal": "he"}
# stds, he_activations = {}, []
# for label, spec in specs.items():
#     net_rng = np.random.default_rng(41)            # the same generator for every initialiser
#     A = X_in
#     stds[label] = []
#     for layer in range(depth):
#         A = ReLU().forward(Dense(width, init=spec, rng=net_rng).forward(A))
#         stds[label].append(A.std())
#         if spec == "he":
#             he_activations.append(A)
# for label, s in stds.items():
#     print(f"{label:20s} std after layer 1: {s[0]:10.3e}   after layer 10: {s[-1]:10.3e}   ratio {s[-1] / s[0]:9.2e}")
# growth = {label: s[-1] / s[0] for label, s in stds.items()}
# assert 0.5 < min(stds["He normal"]) / stds["He normal"][0] and max(stds["He normal"]) / stds["He normal"][0] < 2
# ratio_100 = np.array(stds["N(0, 1) (original)"]) / np.array(stds["N(0, 0.01²)"])
# assert np.allclose(ratio_100, 100.0 ** np.arange(1, depth + 1), rtol=1e-9)   # ReLU nets are positively homogeneous
# assert growth["N(0, 1) (original)"] > 1e6 and growth["N(0, 0.01²)"] < 1e-6 and growth["Glorot uniform"] < 0.1
#
# fig, axes = plt.subplots(1, 2, figsize=(11, 4))
# for label, s in stds.items():
#     axes[0].semilogy(range(1, depth + 1), s, "o-", label=label)
# axes[0].set(xlabel="layer", ylabel="std of the activations", title="10 ReLU layers of width 256: activation scale")
# axes[0].legend(); axes[0].grid(True, which="major", alpha=0.3)
# for layer in (0, 4, 9):
#     axes[1].hist(he_activations[layer][he_activations[layer] > 0].ravel(), bins=80, histtype="step", density=True,
#                  label=f"layer {layer + 1}")
# axes[1].set(xlabel="activation (positive part)", ylabel="density", title="He: the same distribution in every layer")
# axes[1].legend()
# save_figure(fig, "04_activation_std.png")
# plt.show()

# %% [markdown]
# The prediction holds over ten orders of magnitude: with $\mathcal N(0,1)$ the activations
# grow by about 11 per layer and reach $10^{10}$ (in float32 a few more layers, or the squared
# values in a loss, overflow to `inf`); with small weights they vanish just as fast; Glorot,
# derived for tanh, loses a factor $\sqrt2$ per layer in a ReLU network; He keeps the scale.
# The two normal curves are exact mirror images: both stacks draw from the same seeded generator,
# so their weights differ by the factor 100 alone, and a ReLU network is positively homogeneous
# ($\mathrm{relu}(cz) = c\,\mathrm{relu}(z)$ for $c > 0$): layer $l$ is scaled by $100^{l}$ exactly.
# Gradients obey the same arithmetic backwards, so an exploding forward pass comes with exploding
# gradients — the symptom the original's README reported, and for which this initialiser is
# part of the cure (the other part, its Softmax backward, was chapter 02).

# %% [markdown]
# ## Summary
#
# * A Dense layer multiplies the second moment of the signal by $n_{in}\mathrm{Var}(W)$, and a ReLU
#   halves it: $\mathrm{Var}(z^{(l)}) = \tfrac{n_{in}\mathrm{Var}(W)}{2}\mathrm{Var}(z^{(l-1)})$.
# * **He**: $\mathrm{Var}(W) = 2/n_{in}$ keeps ReLU networks at a constant scale (the original wrote "$C$").
# * **Glorot**: $\mathrm{Var}(W) = 2/(n_{in}+n_{out})$, the compromise of the forward and backward
#   rules; uniform with $l = \sqrt{6/(n_{in}+n_{out})}$ since $\mathrm{Var}\,\mathcal U(-l,l) = l^2/3$.
# * **$\mathcal N(0,1)$** multiplies the standard deviation by $\sqrt{n_{in}/2}$ per layer: $10^{10}$ after ten.
# * Initialisers draw only from the `rng` they are given; `Dense(init=...)` takes a name, a dict or an object.
#
# ## Exercises
#
# 1. Write `LeCunNormal` with $\mathrm{Var}(W) = 1/n_{in}$ (Keras' `lecun_normal`) and add it to the
#    `INITIALISERS` registry. What does it do in the 10-layer ReLU stack, and why?
# 2. Measure the standard deviation of the *gradients* $dX$ flowing backwards through the same
#    10-layer stacks, with a random upstream gradient. Which initialiser keeps them constant?
# 3. Replace ReLU by tanh in the stack (you will need a tiny `Tanh` layer). Which initialiser
#    keeps the scale now?

# %% [markdown]
# ---
# [← 03a — computational graph](03a_computational_graph.ipynb) · [begin here](00_begin_here.ipynb) · **04 — initialisers** · [next: 05 — BatchNorm →](05_batchnorm.ipynb)
