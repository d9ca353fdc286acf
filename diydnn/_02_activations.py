# %% [markdown]
# [← 01 — dense](01_dense.ipynb) · [begin here](00_begin_here.ipynb) · **02 — activations** · [next: 03 — cross-entropy →](03_cross_entropy.ipynb)
#
# # 02 — Activations: ReLU and Softmax
#
# A stack of Dense layers alone is one big linear map. Non-linear **activations** between
# them make the network able to bend. This chapter builds the two the course needs:
# ReLU for hidden layers, and Softmax, which turns the last layer's scores into class
# probabilities. Softmax's backward is where [the original *diy-dnn*](https://github.com/tomjwalker/diy-dnn) went wrong, so we
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
# assert np.array_equal(relu.forward(Xr), np.maximum(0, Xr)) and errs["X"] < 1e-7     # chapter 00's pass mark

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
# where $[i=j]$ is the Iverson bracket of chapter 01 (1 if $i = j$, else 0).
# $J$ is a $k\times k$ matrix **for each sample** — it depends on that sample's $\hat y$. [The
# original](https://github.com/tomjwalker/diy-dnn) built *one* Jacobian from the batch-averaged $\hat y$ and applied it to every
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
# assert rel_error(softmax_jacobian(y1), J_num) < 1e-7

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
# assert errs["X"] < 1e-7

# %% [markdown]
# ## 5. Saturation, dead units and vanishing gradients
#
# Why ReLU? Before it, hidden layers used the **sigmoid** $\sigma(z) = 1/(1+e^{-z})$ or $\tanh z$. Their derivatives,
#
# $$\sigma'(z) = \sigma(z)\,\big(1-\sigma(z)\big) \le \tfrac14, \qquad \tanh'(z) = 1 - \tanh^2 z \le 1,$$
#
# are largest at $z = 0$ and fall to zero as $|z|$ grows: the unit **saturates**, and a saturated unit passes almost
# no gradient. Backpropagation multiplies by one such derivative per layer: the gradient reaching the input of a
# layer is $(dY \odot f'(Z))\,W^\top$. Through $L$ layers a path collects $L$ factors $f'$ — with the sigmoid at most
# $(1/4)^L$ — so the gradients of the lower layers **vanish**, and those layers barely learn (Hochreiter, 1991;
# Glorot & Bengio, 2010). ReLU's derivative is exactly 1 wherever the unit is active, so an active path passes the
# gradient at full strength; chapter 04 chooses the weights' scale so that the layers' products keep it constant.
#
# ReLU has its own failure: a unit whose pre-activation is negative for *every* input outputs 0 and has derivative 0,
# so its weights get **no gradient at all** and never change again — a **dead ReLU**. A large negative bias, or one
# step of a too-large learning rate, can kill units for good.
#
# The first cell checks the derivative bounds; the second sends a random gradient down 20 layers of width 64
# (sigmoid and tanh with $\mathrm{Var}(W) = 1/n_{in}$, ReLU with chapter 04's $2/n_{in}$) and measures its size at every
# layer; the third kills four units of a Dense–ReLU layer and shows that training steps leave their weights untouched.

# %% tags=["active-ipynb"]
# class Sigmoid(Layer):
#     """1 / (1 + exp(-x)), element-wise (a teaching layer: diydnn's hidden layers use ReLU)."""
#     def forward(self, X, training=False):
#         X = self._check_input(X)
#         Y = 1 / (1 + np.exp(-X))
#         self._cache = Y
#         return Y
#     def backward(self, dY):
#         Y = self._cached()
#         return self._check_upstream(dY, Y.shape) * Y * (1 - Y)
#
#
# class Tanh(Layer):
#     """tanh(x), element-wise (a teaching layer)."""
#     def forward(self, X, training=False):
#         X = self._check_input(X)
#         Y = np.tanh(X)
#         self._cache = Y
#         return Y
#     def backward(self, dY):
#         Y = self._cached()
#         return self._check_upstream(dY, Y.shape) * (1 - Y ** 2)
#
#
# z_grid = np.linspace(-10, 10, 20001)[:, None]
# d_sigmoid = Sigmoid(); d_sigmoid.forward(z_grid); ds = d_sigmoid.backward(np.ones_like(z_grid))
# d_tanh = Tanh(); d_tanh.forward(z_grid); dt = d_tanh.backward(np.ones_like(z_grid))
# print(f"max sigmoid' = {ds.max():.6f} at z = {z_grid[ds.argmax(), 0]:.3f};  max tanh' = {dt.max():.6f};  "
#       f"sigmoid' at z = 5: {ds[np.searchsorted(z_grid[:, 0], 5.0), 0]:.4f}")
# assert np.isclose(ds.max(), 0.25) and np.isclose(dt.max(), 1.0) and ds[-1, 0] < 1e-4 and dt[-1, 0] < 1e-8
# errs_act = {name: check_layer(layer, rng.standard_normal((6, 5)), rng)["X"] for name, layer in (("sigmoid", Sigmoid()), ("tanh", Tanh()))}
# print("gradient checks:", {k: f"{v:.1e}" for k, v in errs_act.items()})
# assert max(errs_act.values()) < 1e-7

# %% tags=["active-ipynb"]
# from diydnn._01_dense import Dense
#
# def gradient_through_depth(activation, var_scale, depth=20, width=64, seed=20):
#     """RMS of the gradient reaching each layer's input, for a random upstream gradient at the top."""
#     net_rng = np.random.default_rng(seed)
#     layers = []
#     for _ in range(depth):
#         dense = Dense(width, n_in=width, init=lambda fan_in, fan_out, r: r.normal(0, np.sqrt(var_scale / fan_in), (fan_in, fan_out)),
#                       rng=net_rng)
#         layers += [dense, activation()]
#     A = net_rng.standard_normal((256, width))
#     for layer in layers:
#         A = layer.forward(A)
#     grad, rms = net_rng.standard_normal(A.shape), []
#     for layer in reversed(layers):
#         grad = layer.backward(grad)
#         if isinstance(layer, Dense):
#             rms.append(np.sqrt(np.mean(grad ** 2)))
#     return np.array(rms[::-1])           # rms[0]: at the input of layer 1, rms[-1]: at the input of the top layer
#
# depth_runs = {"sigmoid": gradient_through_depth(Sigmoid, 1.0), "tanh": gradient_through_depth(Tanh, 1.0),
#               "ReLU (He)": gradient_through_depth(ReLU, 2.0)}
# for name, rms in depth_runs.items():
#     print(f"{name:10s} gradient RMS at the top layer's input {rms[-1]:.2e}, at layer 1's input {rms[0]:.2e}: "
#           f"ratio {rms[0] / rms[-1]:.1e}")
# assert depth_runs["sigmoid"][0] / depth_runs["sigmoid"][-1] < 0.25 ** 10        # vanished
# assert depth_runs["tanh"][0] / depth_runs["tanh"][-1] < 0.5                      # shrinks, more slowly
# assert 0.2 < depth_runs["ReLU (He)"][0] / depth_runs["ReLU (He)"][-1] < 5        # keeps its scale
#
# fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
# axes[0].plot(z_grid, ds, label=r"$\sigma'(z)$ (at most 1/4)")
# axes[0].plot(z_grid, dt, label=r"$\tanh'(z)$ (at most 1)")
# axes[0].plot(z_grid, (z_grid > 0).astype(float), "--", label="ReLU'(z)")
# axes[0].set(xlim=(-6, 6), xlabel="z", title="Derivatives: the saturating ones vanish for large |z|"); axes[0].legend(fontsize=8)
# for name, rms in depth_runs.items():
#     axes[1].semilogy(range(1, len(rms) + 1), rms, "o-", ms=3, label=name)
# axes[1].set(xlabel="layer (1 = next to the data)", ylabel="RMS of the gradient at its input",
#             title="A gradient sent down 20 layers"); axes[1].legend(); axes[1].grid(True, alpha=0.3)
# plt.show()

# %% tags=["active-ipynb"]
# dying = Dense(8, n_in=5, rng=rng)
# dying.params["b"][:4] = -10.0                             # units 0-3: pre-activation far below 0 for any N(0, 1) input
# dead_relu = ReLU()
# X_dead, T_dead = rng.standard_normal((128, 5)), rng.standard_normal((128, 8))
# W_dead_before = dying.params["W"][:, :4].copy()
# for step in range(50):                                   # gradient descent on a mean-squared error
#     A = dead_relu.forward(dying.forward(X_dead))
#     dying.backward(dead_relu.backward(2 * (A - T_dead) / len(X_dead)))
#     assert not dying.grads["W"][:, :4].any() and not dying.grads["b"][:4].any()   # exactly zero, every step
#     for name in dying.params:
#         dying.params[name] -= 0.1 * dying.grads[name]
# print("units 0-3 active on", int((A[:, :4] > 0).sum()), "of", A[:, :4].size, "samples x units;",
#       " their weights changed:", not np.array_equal(W_dead_before, dying.params["W"][:, :4]),
#       "; units 4-7 active on", int((A[:, 4:] > 0).sum()), "of", A[:, 4:].size)
# assert np.array_equal(W_dead_before, dying.params["W"][:, :4]) and (A[:, 4:] > 0).any()

# %% [markdown]
# Sigmoid gradients shrink by about a factor 4 per layer here ($\sqrt{E[\sigma'^2]}$ with $\sigma' \le 1/4$), so after
# 20 layers nothing is left; tanh loses less, but still loses; ReLU with He's scale keeps the gradient's size from
# top to bottom. The dead units' weights stay bitwise the same through 50 steps: nothing can revive them (the
# exercises of chapter 04 and the bug zoo come back to this).
#
# ## 6. A picture
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
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# $\mathrm{LeakyReLU}(z) = \max(\alpha z, z)$ for $0 < \alpha < 1$: slope 1 for $z > 0$, $\alpha$ for $z < 0$, so
# $dX = dY \odot (\mathbb 1[X > 0] + \alpha\,\mathbb 1[X \le 0])$. Its negative side keeps a small gradient: a leaky unit cannot die.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     class LeakyReLU(Layer):
#         def __init__(self, alpha=0.01, name=None):
#             super().__init__(name)
#             self.alpha = alpha
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             slope = np.where(X > 0, 1.0, self.alpha)
#             self._cache = slope
#             return X * slope
#         def backward(self, dY):
#             slope = self._cached()
#             return self._check_upstream(dY, slope.shape) * slope
#
#     leaky = LeakyReLU(0.1)
#     X_l = rng.standard_normal((6, 5))
#     errs_leaky = check_layer(leaky, X_l, rng)
#     print("LeakyReLU(0.1) equals max(0.1 z, z):", np.allclose(leaky.forward(X_l), np.maximum(0.1 * X_l, X_l)),
#           " gradient check:", {k: f"{v:.1e}" for k, v in errs_leaky.items()})
#     assert np.allclose(leaky.forward(X_l), np.maximum(0.1 * X_l, X_l)) and errs_leaky["X"] < 1e-7

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# One Jacobian $\bar J = \mathrm{diag}(\bar y) - \bar y\bar y^\top$ from the batch-mean $\bar y$, applied to every row.
# For a batch of one sample, $\bar y$ *is* the sample's $\hat y$ and the result is exact; for larger batches every row gets
# the wrong Jacobian, and the relative error is of order 1 — it does not shrink with the batch size.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     def original_softmax_backward(Y_hat, dY):
#         y_mean = Y_hat.mean(axis=0)
#         J_mean = np.diag(y_mean) - np.outer(y_mean, y_mean)
#         return dY @ J_mean.T
#
#     batch_errors = {}
#     for m_b in (1, 8, 128):
#         Z_b, dY_b = 3 * rng.standard_normal((m_b, 10)), rng.standard_normal((m_b, 10))
#         sm_b = Softmax()
#         Y_b = sm_b.forward(Z_b)
#         batch_errors[m_b] = rel_error(original_softmax_backward(Y_b, dY_b), sm_b.backward(dY_b))
#     print("relative error of the batch-averaged Jacobian:", {m_b: f"{e:.1e}" for m_b, e in batch_errors.items()})
#     assert batch_errors[1] < 1e-12 and batch_errors[8] > 0.3 and batch_errors[128] > 0.3

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# $J\mathbf 1 = \mathrm{diag}(\hat y)\mathbf 1 - \hat y(\hat y^\top\mathbf 1) = \hat y - \hat y \cdot 1 = 0$: the vector $\mathbf 1$ lies in the null
# space of $J$, so $J$ is singular (rank $k-1$ when every $\hat y_j > 0$). It is the derivative of the shift invariance of
# section 2: moving all logits by the same $c$ changes no probability, so the derivative along $\mathbf 1$ is zero — and,
# $J$ being symmetric, every backward result $dz = J\,d\hat y$ sums to zero over the classes.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     J_ex = softmax_jacobian(y1)
#     dz_ex = J_ex @ rng.standard_normal(4)
#     print("J 1 =", J_ex @ np.ones(4), "  rank", np.linalg.matrix_rank(J_ex), "of 4;  sum of a backward result:", f"{dz_ex.sum():.1e}")
#     assert np.allclose(J_ex @ np.ones(4), 0, atol=1e-15) and np.linalg.matrix_rank(J_ex) == 3 and abs(dz_ex.sum()) < 1e-15
#     assert np.allclose(sm((z1 + 7.5)[None]), sm(z1[None]))

# %% [markdown]
# ---
# [← 01 — dense](01_dense.ipynb) · [begin here](00_begin_here.ipynb) · **02 — activations** · [next: 03 — cross-entropy →](03_cross_entropy.ipynb)
