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
# passes (Glorot), and shows what [the original *diy-dnn*](https://github.com/tomjwalker/diy-dnn)'s "Random" initialiser, $\mathcal N(0,1)$,
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
# Three initialisers, named as in Keras (`random_normal`, `he_normal`, `glorot_uniform`):
#
# | name | class | distribution | variance |
# |---|---|---|---|
# | `"random"` | `RandomNormal(stddev=1.0)` | $\mathcal N(0, s^2)$ | $s^2$ (the original's "Random": $s = 1$) |
# | `"he"` | `HeNormal()` | $\mathcal N(0, 2/n_{in})$ | $2/n_{in}$ |
# | `"glorot"` | `GlorotUniform()` | $\mathcal U(-l, l)$, $l=\sqrt{6/(n_{in}+n_{out})}$ | $2/(n_{in}+n_{out})$ |
#
# Where Keras' defaults differ from ours: Keras' `RandomNormal` defaults to a standard deviation of **0.05**, ours to
# **1.0**, the original's; Keras' `HeNormal` draws from a normal **truncated** at two standard deviations (rescaled so that
# the variance is still $2/n_{in}$), ours from the plain normal; and a Keras `Dense` starts with `glorot_uniform` by
# default, ours with `"he"`, since our hidden layers are ReLU (section 4). `GlorotUniform` is the same in both.
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


# %%
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
# **A correction to [the original](https://github.com/tomjwalker/diy-dnn).** Its README wrote the He variance as "$C$", a constant. It is
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
# i.e. the two **target variances** $1/n_{in}$ and $1/n_{out}$. Both hold only when $n_{in} = n_{out}$; Glorot's compromise
# takes the harmonic mean of the two target variances (equivalently, one over the mean fan, $\frac{n_{in}+n_{out}}{2}$):
#
# $$\mathrm{Var}(W) = \frac{2}{\frac{1}{1/n_{in}} + \frac{1}{1/n_{out}}} = \frac{2}{n_{in} + n_{out}}.$$
#
# It lies between the two targets, closer to the smaller one.
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
# targets = np.array([1 / 300, 1 / 100])                  # forward and backward target variances, 300 -> 100
# harmonic = len(targets) / np.sum(1 / targets)
# print(f"harmonic mean of 1/300 and 1/100: {harmonic:.6f} = 2/(300+100) = {2 / 400:.6f}")
# assert np.isclose(harmonic, 2 / 400) and targets.min() < harmonic < targets.max()
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
# gradients — the symptom [the original](https://github.com/tomjwalker/diy-dnn)'s README reported, and for which this initialiser is
# part of the cure (the other part, its Softmax backward, was chapter 02).

# %% [markdown]
# ## 8. Why random at all: breaking the symmetry
#
# If the weights only need the right *variance*, why not make them all equal — say all $0.1$, or all zero? Because
# equal weights make every hidden unit the **same** unit. With $W_1$'s columns equal, every hidden unit computes the
# same function of the input; with $W_2$'s rows equal, every one of them receives the same upstream gradient; so their
# gradients $X^\top dZ_{\cdot k}$ are equal, the update keeps the columns equal, and by induction they stay equal for
# ever: a layer of 16 units trains like a layer of one. All zeros is worse still: the hidden pre-activations are 0, the
# ReLU's derivative there is 0 (chapter 02), and the hidden layer gets no gradient at all. Random weights make the units
# different from the start, and gradient descent keeps them different.
#
# The cell trains Dense(16)–ReLU–Dense(4) on the 32 random samples of chapter 03's sanity check, from three starts.

# %% tags=["active-ipynb"]
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
#
# def train_from(init, steps=300, lr=0.5):
#     data_rng, net_rng = np.random.default_rng(3), np.random.default_rng(8)
#     X_s, y_s = data_rng.standard_normal((32, 10)).astype(np.float32), data_rng.integers(0, 4, 32)
#     net = [Dense(16, init=init, rng=net_rng), ReLU(), Dense(4, init=init, rng=net_rng)]
#     loss_s = SoftmaxCrossEntropy()
#     for step in range(steps):
#         out = X_s
#         for layer in net:
#             out = layer.forward(out, training=True)
#         loss_s(out, y_s)
#         grad = loss_s.backward()
#         for layer in reversed(net):
#             grad = layer.backward(grad)
#         for layer in net:
#             for name in layer.params:
#                 layer.params[name] -= lr * layer.grads[name]
#     W1 = net[0].params["W"]
#     spread = float(np.max(W1.max(axis=1) - W1.min(axis=1)))   # how different the 16 units' weights are
#     return spread, float(np.abs(W1).max()), accuracy(out, y_s)
#
# starts = {"all 0.1": lambda fan_in, fan_out, r: np.full((fan_in, fan_out), 0.1),
#           "all zero": lambda fan_in, fan_out, r: np.zeros((fan_in, fan_out)), "He (random)": "he"}
# symmetry = {label: train_from(init) for label, init in starts.items()}
# for label, (spread, largest, acc_s) in symmetry.items():
#     print(f"{label:12s} after 300 steps: spread of the hidden units' weights {spread:.2e}, "
#           f"max |W1| {largest:.3f}, training accuracy {acc_s:.0%}")
# assert symmetry["all 0.1"][0] < 1e-5 * symmetry["all 0.1"][1]      # still 16 copies of one unit
# assert symmetry["all zero"][1] == 0.0                               # the hidden layer never moved
# assert symmetry["He (random)"][0] > 0.5 and symmetry["He (random)"][2] == 1.0
# assert max(symmetry["all 0.1"][2], symmetry["all zero"][2]) < 0.8

# %% [markdown]
# With equal starting weights the sixteen hidden units are still identical after 300 steps (to float32 rounding), and the
# network can separate the 32 samples no better than a network with one hidden unit; from zeros the hidden layer never
# moves and only the output bias learns. From random weights it memorises the batch.

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
# * Weights must be random: equal weights keep the units identical through training (zero weights: no gradient at all).
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
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# With $\mathrm{Var}(W) = 1/n_{in}$ the factor per ReLU layer is $n_{in}\mathrm{Var}(W)/2 = 1/2$ for the variance, so the
# standard deviation shrinks by $\sqrt 2$ per layer: $2^{-9/2} \approx 0.044$ from layer 1 to layer 10. LeCun's variance is right
# for activations that keep the whole second moment (the identity, SELU), not for ReLU, which halves it.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     class LeCunNormal(Initialiser):
#         """N(0, 1/fan_in), Keras' lecun_normal (Keras truncates the normal; this one does not)."""
#         name = "lecun"
#         def __call__(self, fan_in, fan_out, rng):
#             _check_fans(repr(self), fan_in, fan_out)
#             return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=(int(fan_in), int(fan_out)))
#
#     INITIALISERS["lecun"] = INITIALISERS["lecun_normal"] = LeCunNormal     # in the module, a line in the dict literal
#     def activation_stds(spec, activation=ReLU):
#         net_rng, A, out = np.random.default_rng(41), X_in, []
#         for layer in range(depth):
#             A = activation().forward(Dense(width, init=spec, rng=net_rng).forward(A))
#             out.append(A.std())
#         return np.array(out)
#
#     # (Dense looks names up in the installed package diydnn._04_initialisers, not in this notebook's copy of the
#     # registry, so the stack gets the object; get_initialiser("lecun") below uses the registry of this chapter)
#     stds_lecun = activation_stds(LeCunNormal())
#     print(f"LeCun in the ReLU stack: std after layer 1 {stds_lecun[0]:.3f}, after layer 10 {stds_lecun[-1]:.4f}, "
#           f"ratio {stds_lecun[-1] / stds_lecun[0]:.4f} (predicted 2^(-9/2) = {2 ** -4.5:.4f})")
#     assert isinstance(get_initialiser("lecun"), LeCunNormal) and abs(stds_lecun[-1] / stds_lecun[0] / 2 ** -4.5 - 1) < 0.3

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# Backwards, a Dense layer multiplies the gradient's second moment by $n_{out}\mathrm{Var}(W)$ and the ReLU keeps
# about half of it, so the factor is $n_{out}\mathrm{Var}(W)/2$ — the same as forwards for these square layers. He keeps the
# gradients' scale; $\mathcal N(0, 1)$ makes them explode, $\mathcal N(0, 0.01^2)$ vanish, and Glorot loses $\sqrt2$ per layer.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     def gradient_stds(spec, activation=ReLU):
#         net_rng, A, layers = np.random.default_rng(41), X_in, []
#         for layer in range(depth):
#             layers += [Dense(width, init=spec, rng=net_rng), activation()]
#         for layer in layers:
#             A = layer.forward(A)
#         grad, out = np.random.default_rng(42).standard_normal(A.shape), []      # a random upstream gradient
#         for layer in reversed(layers):
#             grad = layer.backward(grad)
#             if isinstance(layer, Dense):
#                 out.append(grad.std())
#         return np.array(out)                 # out[0]: below the top layer, out[-1]: at the input of layer 1
#
#     grad_growth = {}
#     for label, spec in specs.items():
#         g_std = gradient_stds(spec)
#         grad_growth[label] = g_std[-1] / g_std[0]
#         print(f"{label:20s} std of dX below the top layer {g_std[0]:10.3e}, at the input {g_std[-1]:10.3e}, ratio {grad_growth[label]:9.2e}")
#     assert 0.5 < grad_growth["He normal"] < 2 and grad_growth["N(0, 1) (original)"] > 1e6
#     assert grad_growth["N(0, 0.01²)"] < 1e-6 and grad_growth["Glorot uniform"] < 0.1

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# No initialiser keeps the scale exactly, since tanh is not homogeneous. Near 0 its slope is 1, so
# Glorot's $1/n$ (square layers) is right *to first order*, but tanh compresses large values, and the activations decay
# slowly, layer after layer. He's $2/n$ settles at a fixed point (about 0.56 here) without saturating. $\mathcal N(0,1)$ keeps a
# large standard deviation only by **saturating**: most activations sit at $\pm 1$, where tanh's derivative vanishes.
# Small weights shrink the signal to nothing, as with ReLU.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     from diydnn._01_dense import Layer
#
#     class Tanh(Layer):
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             Y = np.tanh(X)
#             self._cache = Y
#             return Y
#         def backward(self, dY):
#             return dY * (1 - self._cached() ** 2)
#
#     tanh_stds, saturated = {}, {}
#     for label, spec in specs.items():
#         net_rng, A, tanh_stds[label] = np.random.default_rng(41), X_in, []
#         for layer in range(depth):
#             A = Tanh().forward(Dense(width, init=spec, rng=net_rng).forward(A))
#             tanh_stds[label].append(A.std())
#         saturated[label] = float(np.mean(np.abs(A) > 0.99))
#         print(f"{label:20s} tanh stack: std layer 1 {tanh_stds[label][0]:.3f}, layer 10 {tanh_stds[label][-1]:.3e}, "
#               f"saturated (|a| > 0.99) {saturated[label]:.0%}")
#     he_tail = np.array(tanh_stds["He normal"][5:])
#     assert saturated["N(0, 1) (original)"] > 0.5 and tanh_stds["N(0, 0.01²)"][-1] < 1e-3
#     assert 0.2 < tanh_stds["Glorot uniform"][-1] / tanh_stds["Glorot uniform"][0] < 0.6 and saturated["Glorot uniform"] < 0.01
#     assert he_tail.max() / he_tail.min() < 1.05 and saturated["He normal"] < 0.01

# %% [markdown]
# ---
# [← 03a — computational graph](03a_computational_graph.ipynb) · [begin here](00_begin_here.ipynb) · **04 — initialisers** · [next: 05 — BatchNorm →](05_batchnorm.ipynb)
