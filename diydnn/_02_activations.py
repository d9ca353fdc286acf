# %% [markdown]
# [← 01 — dense](01_dense.ipynb) · [begin here](00_begin_here.ipynb) · **02 — activations** · [next: 03 — cross-entropy →](03_cross_entropy.ipynb)
#
# # 02 — Activations: ReLU and Softmax
#
# A stack of Dense layers alone is one big linear map. Non-linear **activations** between
# them make the network able to bend. This chapter builds the two the course needs:
# ReLU for hidden layers, and Softmax, which turns the last layer's scores into class
# probabilities. Softmax's backward is where the original *diy-dnn* went wrong, so we
# derive it slowly and check it twice.

# %%
"""Chapter 02: activation layers ReLU and Softmax."""
import numpy as np

from diydnn._01_dense import Layer


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, rel_error
# rng = np.random.default_rng(2)

# %% [markdown]
# ## 1. ReLU
#
# $$\mathrm{ReLU}(z) = \max(0, z), \qquad \frac{d\,\mathrm{ReLU}}{dz} = \begin{cases}1 & z > 0\\ 0 & z < 0\end{cases}$$
#
# At $z = 0$ the function has a kink and no derivative; every value in $[0, 1]$ is a
# *subgradient* there. We take **0**, as PyTorch and TensorFlow do. Applied element-wise, the
# Jacobian is diagonal, so the backward pass is an element-wise product with the mask:
#
# $$dX = dY \odot \mathbb{1}[X > 0].$$

# %%
class ReLU(Layer):
    """Element-wise max(0, x); the subgradient at 0 is taken as 0."""

    input_ndim, input_layout = (2, 4), "(m, n_features) or (m, H, W, C)"   # element-wise: images too (ch. 12)

    def forward(self, X, training=False):
        X = self._check_input(X)
        mask = X > 0
        self._cache = mask
        return X * mask  # keeps the dtype; max(0, x) without a temporary

    def backward(self, dY):
        mask = self._cached()
        dY = self._check_upstream(dY, mask.shape)
        return dY * mask


# %% tags=["active-ipynb"]
# relu = ReLU()
# Xr = rng.standard_normal((6, 5))
# print("ReLU(X) == max(0, X):", np.array_equal(relu.forward(Xr), np.maximum(0, Xr)))
# errs = check_layer(relu, Xr, rng)
# print("gradient check:", {k: f"{v:.1e}" for k, v in errs.items()})
# # the subgradient at exactly 0:
# relu.forward(np.array([[0.0, -1.0, 2.0]]))
# print("dX at [0, -1, 2] for dY = 1:", relu.backward(np.ones((1, 3))))
# assert np.array_equal(relu.forward(Xr), np.maximum(0, Xr)) and errs["X"] < 1e-8

# %% [markdown]
# (The check draws $X\sim\mathcal N(0,1)$, so no entry lies within $\varepsilon$ of the kink, where
# central differences would see half a slope.)
#
# ## 2. Softmax forward, computed stably
#
# For one sample with scores (logits) $z \in \mathbb{R}^{k}$:
#
# $$\hat y_j = \mathrm{softmax}(z)_j = \frac{e^{z_j}}{\sum_{l} e^{z_l}}.$$
#
# With logits of 1000, $e^{1000}$ overflows to `inf` and `inf/inf` is NaN. Since
# $\mathrm{softmax}(z - c) = \mathrm{softmax}(z)$ for any constant $c$ (the $e^{-c}$ cancels),
# we subtract each row's maximum first: all exponents are then $\le 0$ and the largest term is
# exactly $e^0 = 1$, so the sum lies in $[1, k]$ and nothing overflows.

# %% tags=["active-ipynb"]
# z = rng.standard_normal((3, 4))
# c = rng.standard_normal((3, 1)) * 10
# sm = lambda a: np.exp(a) / np.exp(a).sum(axis=1, keepdims=True)
# print("softmax(z - c) == softmax(z):", np.allclose(sm(z - c), sm(z)))
# assert np.allclose(sm(z - c), sm(z))
# with np.errstate(over="ignore", invalid="ignore"):
#     print("naive softmax of [1000, -1000, 0]:", sm(np.array([[1000.0, -1000.0, 0.0]])))

# %%
PROBABILITY_FLOOR = 1e-12   # Softmax.backward uses max(y_hat, this); the cross-entropy's backward divides by the same


class Softmax(Layer):
    """Row-wise softmax over the last axis, computed with the row maximum subtracted."""

    def forward(self, X, training=False):
        X = self._check_input(X)
        E = np.exp(X - X.max(axis=1, keepdims=True))  # a new array: the caller's X is untouched
        Y_hat = E / E.sum(axis=1, keepdims=True)
        self._cache = Y_hat
        return Y_hat

    def backward(self, dY):
        # The Jacobian at an exactly one-hot output is 0: a probability that underflowed to 0 would stop all
        # learning from that sample. The backward sees at least PROBABILITY_FLOOR instead (chapter 03, section 3).
        Y_hat = np.maximum(self._cached(), PROBABILITY_FLOOR)
        dY = self._check_upstream(dY, Y_hat.shape)
        # per-sample vector-Jacobian product: y_hat * (dy - <dy, y_hat>)
        return Y_hat * (dY - np.sum(dY * Y_hat, axis=1, keepdims=True))

# %% tags=["active-ipynb"]
# softmax = Softmax()
# logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])
# logits_before = logits.copy()
# P = softmax.forward(logits)
# print(P)
# print("finite:", np.isfinite(P).all(), " rows sum to 1:", np.allclose(P.sum(1), 1), " input unchanged:", np.array_equal(logits, logits_before))
# assert np.isfinite(P).all() and np.allclose(P.sum(1), 1) and np.array_equal(logits, logits_before)
# assert np.allclose(P[1], [1 / (2 + np.e), 1 / (2 + np.e), np.e / (2 + np.e)])

# %% [markdown]
# ## 3. The Jacobian of softmax
#
# Write $S = \sum_l e^{z_l}$, so $\hat y_j = e^{z_j}/S$ and $\partial S/\partial z_i = e^{z_i}$. By the quotient rule
#
# $$\frac{\partial \hat y_j}{\partial z_i} = \frac{[i=j]\,e^{z_j} S - e^{z_j} e^{z_i}}{S^2} = \hat y_j\,([i=j] - \hat y_i),
# \qquad J = \mathrm{diag}(\hat y) - \hat y\,\hat y^\top .$$
#
# $J$ is a $k\times k$ matrix **for each sample** — it depends on that sample's $\hat y$. The
# original built *one* Jacobian from the batch-averaged $\hat y$ and applied it to every
# sample; that is the bug the experiments chapter dissects.

# %% tags=["active-ipynb"]
# def softmax_jacobian(y):
#     """Explicit k x k Jacobian of softmax at one sample with output y."""
#     return np.diag(y) - np.outer(y, y)
#
# z1 = rng.standard_normal(4)
# y1 = sm(z1[None])[0]
# J_num = np.zeros((4, 4))
# for i in range(4):
#     e = np.zeros(4); e[i] = 1e-6
#     J_num[:, i] = (sm((z1 + e)[None])[0] - sm((z1 - e)[None])[0]) / 2e-6
# print("rel. error, analytic vs numerical Jacobian:", f"{rel_error(softmax_jacobian(y1), J_num):.1e}")
# assert rel_error(softmax_jacobian(y1), J_num) < 1e-8

# %% [markdown]
# ## 4. From the Jacobian to a fast backward
#
# The backward pass needs $dz = J^\top d\hat y$ per sample ($J$ is symmetric, so $J^\top = J$):
#
# $$dz_i = \sum_j \hat y_j([i=j] - \hat y_i)\, d\hat y_j = \hat y_i\, d\hat y_i - \hat y_i \sum_j \hat y_j\, d\hat y_j
# = \hat y_i\Big(d\hat y_i - \sum_j d\hat y_j\,\hat y_j\Big).$$
#
# For the whole batch, row by row:
#
# $$dZ = \hat Y \odot \big(d\hat Y - \mathrm{rowsum}(d\hat Y \odot \hat Y)\big).$$
#
# This costs $O(mk)$ instead of building $m$ Jacobians of size $k\times k$. The cell compares it
# with the explicit per-sample products $J_i^\top d\hat y_i$ on random data.
#
# One guard in the code: the backward uses $\max(\hat Y, 10^{-12})$ for $\hat Y$. When a probability underflows
# to exactly 0, $J$ at the one-hot output is the zero matrix and a confidently wrong sample would get no gradient
# at all; chapter 03 (section 3) derives the fix together with the cross-entropy, whose backward divides by the
# same $\max(\hat Y, 10^{-12})$. Probabilities above $10^{-12}$ — all of them, on random data — are untouched.

# %% tags=["active-ipynb"]
# Zb = rng.standard_normal((8, 5)); dYb = rng.standard_normal((8, 5))
# Yb = softmax.forward(Zb)
# fast = softmax.backward(dYb)
# explicit = np.stack([softmax_jacobian(Yb[i]).T @ dYb[i] for i in range(8)])
# print(f"fast form vs explicit per-sample Jacobian products: rel. error {rel_error(fast, explicit):.1e}")
# assert rel_error(fast, explicit) < 1e-12

# %% [markdown]
# And the gradient check of the layer, with a random upstream gradient. With an all-ones
# upstream gradient the true gradient is identically zero ($\sum_j \hat y_j = 1$ whatever $z$),
# so a backward that returned zeros would pass — which is why the check draws $G$ at random.

# %% tags=["active-ipynb"]
# errs = check_layer(Softmax(), rng.standard_normal((6, 7)), rng)
# print("Softmax gradient check:", {k: f"{v:.1e}" for k, v in errs.items()})
# print("backward of all-ones upstream gradient, max |dX| =", np.abs(softmax.backward(np.ones_like(Yb))).max())
# assert errs["X"] < 1e-8

# %% [markdown]
# ## 5. A picture
#
# Left: ReLU and its derivative. Right: how softmax turns two logits $(z, 0)$ into
# probabilities, for temperatures $T$ in $\mathrm{softmax}(z/T)$ — a sigmoid in $z$.

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
# zz = np.linspace(-3, 3, 301)[:, None]
# axes[0].plot(zz, ReLU().forward(zz), label="ReLU(z)")
# r = ReLU(); r.forward(zz)
# axes[0].plot(zz, r.backward(np.ones_like(zz)), "--", label="dReLU/dz (0 at z = 0)")
# axes[0].legend(); axes[0].set_title("ReLU")
# for T in (0.5, 1, 2):
#     two = np.hstack([zz / T, np.zeros_like(zz)])
#     axes[1].plot(zz, Softmax().forward(two)[:, 0], label=f"T = {T}")
# axes[1].set(xlabel="z", ylabel=r"$\hat y_1$", title=r"softmax$((z, 0)/T)_1$"); axes[1].legend()
# plt.show()

# %% [markdown]
# ## Summary
#
# * ReLU: $dX = dY\odot\mathbb 1[X>0]$, subgradient 0 at the kink.
# * Softmax: subtract the row maximum (no overflow at logits of ±1000; the caller's array is
#   left untouched). Its Jacobian is $\mathrm{diag}(\hat y) - \hat y\hat y^\top$ **per sample**, and the
#   backward pass is $\hat Y\odot(d\hat Y - \mathrm{rowsum}(d\hat Y\odot\hat Y))$, checked against the explicit Jacobians.
#
# ## Exercises
#
# 1. Write Leaky ReLU ($\max(\alpha z, z)$) and check it with `check_layer`.
# 2. Build the original's faulty backward — one Jacobian from the batch-mean $\hat y$, applied to
#    every row — and measure its relative error against `Softmax.backward` for batches of 1, 8 and 128.
# 3. Show that $J$ is singular: what is $J\mathbf{1}$, and what does it mean for logits shifted by a constant?

# %% [markdown]
# ---
# [← 01 — dense](01_dense.ipynb) · [begin here](00_begin_here.ipynb) · **02 — activations** · [next: 03 — cross-entropy →](03_cross_entropy.ipynb)
