# %% [markdown]
# [← 04 — initialisers](04_initialisers.ipynb) · [begin here](00_begin_here.ipynb) · **05 — BatchNorm** · [next: 06 — optimisers →](06_optimisers.ipynb)
#
# # 05 — Batch normalisation
#
# Chapter 04 chose the weights' variance so that activations keep their scale *at
# initialisation*. Training moves the weights, and the input data may have any scale. Batch
# normalisation (Ioffe & Szegedy, 2015) enforces the scale all the time: it standardises each
# unit over the mini-batch, then lets the network pick the scale and shift it wants with two
# learned vectors, $\gamma$ and $\beta$.
#
# BatchNorm is the one layer whose output for a sample depends on the *other* samples of the
# batch, which makes its backward pass the longest derivation of the course. [The original
# *diy-dnn*](https://github.com/tomjwalker/diy-dnn) cited an external derivation instead, and normalised with its running statistics
# during training — so its "BatchNorm" did not normalise the batch it trained on, and no
# gradient flowed through the batch statistics. Here we derive every step, check each one,
# and check the layer in **training mode, after a Dense, with a random upstream gradient**.

# %%
"""Chapter 05: batch normalisation (BatchNorm), with batch statistics in training and running statistics in inference."""
import numpy as np

from diydnn._01_dense import Layer, as_count


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer, numerical_gradient, quick_mode, rel_error, save_figure
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU
# from diydnn._03_cross_entropy import SoftmaxCrossEntropy, accuracy
# rng = np.random.default_rng(5)

# %% [markdown]
# ## 1. Forward, in training mode
#
# A batch $X\in\mathbb{R}^{m\times n}$ (rows are samples). Every unit (column) $k$ is normalised on
# its own, so we drop the index $k$ and write $x_1,\dots,x_m$ for one column. With the **batch**
# statistics
#
# $$\mu = \frac1m\sum_{i=1}^m x_i, \qquad \sigma^2 = \frac1m\sum_{i=1}^m (x_i-\mu)^2, \qquad s = \frac{1}{\sqrt{\sigma^2+\varepsilon}},$$
#
# the layer computes
#
# $$\hat x_i = (x_i - \mu)\,s, \qquad y_i = \gamma\,\hat x_i + \beta .$$
#
# $\sigma^2$ is the *biased* variance (divided by $m$, not $m-1$): it is the variance of exactly the
# numbers being normalised, so each column of $\hat X$ has mean 0 and variance $\sigma^2/(\sigma^2+\varepsilon)\approx 1$.
# $\varepsilon$ (default $10^{-5}$) keeps $s$ finite for a constant column. $\gamma$ and $\beta$ (one per
# unit, initialised to 1 and 0) give the network back the freedom to choose any mean and scale —
# including undoing the normalisation, $\gamma = \sqrt{\sigma^2+\varepsilon}$, $\beta = \mu$.

# %% tags=["active-ipynb"]
# eps = 1e-5
# m, n = 6, 3
# X = rng.normal(5.0, 3.0, size=(m, n))                   # far from mean 0 / variance 1
# gamma, beta = rng.uniform(0.5, 2.0, n), rng.standard_normal(n)
# mu = X.mean(axis=0)
# var = ((X - mu) ** 2).mean(axis=0)                      # biased: 1/m
# s = 1.0 / np.sqrt(var + eps)
# X_hat = (X - mu) * s
# Y = gamma * X_hat + beta
# # element by element, for one column
# k = 1
# mu_k = sum(X[i, k] for i in range(m)) / m
# var_k = sum((X[i, k] - mu_k) ** 2 for i in range(m)) / m
# print("column means of X_hat:", X_hat.mean(0).round(12), "  column variances:", X_hat.var(0).round(6))
# print("undoing it with gamma = sqrt(var + eps), beta = mu gives X back:", np.allclose(np.sqrt(var + eps) * X_hat + mu, X))
# assert np.isclose(mu_k, mu[k]) and np.isclose(var_k, var[k]) and np.isclose(var[k], X[:, k].var())
# assert np.allclose(X_hat.mean(0), 0) and np.allclose(X_hat.var(0), var / (var + eps))
# assert np.allclose(Y.mean(0), beta) and np.allclose(Y.std(0), gamma * np.sqrt(var / (var + eps)))
# assert np.allclose(np.sqrt(var + eps) * X_hat + mu, X)

# %% [markdown]
# ## 2. Backward: $\gamma$ and $\beta$
#
# Let $dy_i = \partial L/\partial y_i$ arrive from above. $\gamma$ and $\beta$ are shared by all $m$ rows,
# so their gradients sum over the batch (no $1/m$: it lives in the loss):
#
# $$d\beta = \sum_{i=1}^m dy_i, \qquad d\gamma = \sum_{i=1}^m dy_i\,\hat x_i, \qquad d\hat x_i = \gamma\, dy_i .$$
#
# The check projects on a random upstream gradient $G$, $f = \sum_{ij} Y_{ij}G_{ij}$, and differentiates $f$
# numerically with respect to $\gamma$, $\beta$ and $\hat X$.

# %% tags=["active-ipynb"]
# G = rng.standard_normal((m, n))                          # the upstream gradient dY, random
# f_of = lambda: float(np.sum((gamma * X_hat + beta) * G))
# for label, analytic, wrt in (("dbeta", G.sum(0), beta), ("dgamma", (G * X_hat).sum(0), gamma),
#                              ("dX_hat", gamma * G, X_hat)):
#     err = rel_error(analytic, numerical_gradient(f_of, wrt))
#     print(f"{label:7s} relative error {err:.1e}")
#     assert err < 1e-7                                     # chapter 00's pass mark

# %% [markdown]
# ## 3. Backward through $\mu$ and $\sigma^2$
#
# Now the part [the original](https://github.com/tomjwalker/diy-dnn) skipped. Each $x_i$ reaches $\hat x$ along three paths: directly
# (in $x_i - \mu$), through $\mu$, and through $\sigma^2$ — and $\mu$ and $\sigma^2$ touch **every**
# $\hat x_j$ of the column. The local derivatives:
#
# $$\frac{\partial \hat x_j}{\partial \sigma^2} = -\tfrac12 (x_j-\mu)(\sigma^2+\varepsilon)^{-3/2} = -\tfrac12\,\hat x_j\, s^2,
# \qquad \frac{\partial \hat x_j}{\partial \mu} = -s,$$
#
# $$\frac{\partial \sigma^2}{\partial \mu} = -\frac2m\sum_{j=1}^m (x_j-\mu) = 0,
# \qquad \frac{\partial \sigma^2}{\partial x_i} = \frac{2(x_i-\mu)}{m}, \qquad \frac{\partial \mu}{\partial x_i} = \frac1m .$$
#
# ($\partial\sigma^2/\partial\mu$ vanishes because the deviations from the mean sum to zero.) Collecting over $j$:
#
# $$d\sigma^2 = \sum_{j=1}^m d\hat x_j\,\frac{\partial \hat x_j}{\partial \sigma^2} = -\frac{s^2}{2}\sum_{j=1}^m d\hat x_j\,\hat x_j,
# \qquad
# d\mu = \sum_{j=1}^m d\hat x_j\,(-s) + d\sigma^2\,\frac{\partial\sigma^2}{\partial\mu} = -s\sum_{j=1}^m d\hat x_j .$$
#
# The check treats $\mu$ and $\sigma^2$ as free variables, $f(\mu, \sigma^2) = \sum_{ij} G_{ij}\big(\gamma_j (X_{ij}-\mu_j)/\sqrt{\sigma^2_j+\varepsilon} + \beta_j\big)$,
# differentiates numerically, and confirms $\partial\sigma^2/\partial\mu = 0$ at the batch mean.

# %% tags=["active-ipynb"]
# dX_hat = gamma * G
# d_var = -0.5 * s ** 2 * (dX_hat * X_hat).sum(0)
# d_mu = -s * dX_hat.sum(0)
# mu_free, var_free = mu.copy(), var.copy()
# f_stats = lambda: float(np.sum(G * (gamma * (X - mu_free) / np.sqrt(var_free + eps) + beta)))
# err_var = rel_error(d_var, numerical_gradient(f_stats, var_free))
# err_mu = rel_error(d_mu, numerical_gradient(f_stats, mu_free))
# mu_probe = mu.copy()
# dvar_dmu = numerical_gradient(lambda: float(((X - mu_probe) ** 2).mean(0).sum()), mu_probe)
# print(f"dvar: {err_var:.1e}   dmu: {err_mu:.1e}   d(sigma^2)/d(mu) at the batch mean: {np.abs(dvar_dmu).max():.1e}")
# assert err_var < 1e-7 and err_mu < 1e-7 and np.abs(dvar_dmu).max() < 1e-8

# %% [markdown]
# ## 4. Backward to the input
#
# Sum the three paths into $x_i$:
#
# $$dx_i = d\hat x_i\, s + d\sigma^2\,\frac{2(x_i-\mu)}{m} + d\mu\,\frac1m .$$
#
# Substitute $d\sigma^2$ and $d\mu$, and use $x_i - \mu = \hat x_i / s$:
#
# $$dx_i = s\, d\hat x_i - \frac{s^2}{2}\Big(\sum_j d\hat x_j\hat x_j\Big)\frac{2\hat x_i}{m\,s} - \frac{s}{m}\sum_j d\hat x_j
#       = \frac{s}{m}\Big(m\, d\hat x_i - \sum_j d\hat x_j - \hat x_i \sum_j d\hat x_j\,\hat x_j\Big).$$
#
# With $d\hat x_j = \gamma\, dy_j$, and back in matrix form (sums over the rows, $\odot$ and the
# division by $\sqrt{\sigma^2+\varepsilon}$ per column):
#
# $$\boxed{\;dX = \frac{\gamma}{m\sqrt{\sigma^2+\varepsilon}} \odot \Big(m\, dY - \mathbf 1_m\!\sum_i dY_{i\cdot} - \hat X \odot \mathbf 1_m\!\sum_i \big(dY\odot\hat X\big)_{i\cdot}\Big)\;}$$
#
# The cell checks the three-path sum against the boxed form, and both against central
# differences of the whole forward pass with respect to $X$.

# %% tags=["active-ipynb"]
# dX_paths = dX_hat * s + d_var * 2 * (X - mu) / m + d_mu / m
# dX_boxed = gamma / (m * np.sqrt(var + eps)) * (m * G - G.sum(0) - X_hat * (G * X_hat).sum(0))
#
# def f_X(G):
#     """The whole training-mode forward pass, projected on the upstream gradient G."""
#     mu_, var_ = X.mean(0), X.var(0)
#     return float(np.sum(G * (gamma * (X - mu_) / np.sqrt(var_ + eps) + beta)))
#
# dX_num = numerical_gradient(lambda: f_X(G), X)
# print(f"three paths vs boxed: {rel_error(dX_paths, dX_boxed):.1e};  boxed vs central differences: {rel_error(dX_boxed, dX_num):.1e}")
# assert rel_error(dX_paths, dX_boxed) < 1e-12 and rel_error(dX_boxed, dX_num) < 1e-7

# %% [markdown]
# ### Why an all-ones upstream gradient proves nothing
#
# The boxed formula shows two properties of each column of $dX$. Since $\sum_i \hat x_i = 0$, it sums to
# zero, $\sum_i dx_i = 0$: shifting a column of $X$ changes no output. Since $\sum_i \hat x_i^2 = m\,\sigma^2/(\sigma^2+\varepsilon)$,
#
# $$\sum_i dx_i\,\hat x_i = s\,\frac{\varepsilon}{\sigma^2+\varepsilon}\sum_j d\hat x_j\,\hat x_j \approx 0:$$
#
# scaling a column changes the output only through $\varepsilon$. Now take $dY = \mathbf 1$: then $m\,dy_i - \sum_j dy_j = 0$ and
# $\sum_j dy_j\hat x_j = \sum_j \hat x_j = 0$, so
#
# $$dY = \mathbf{1} \;\Longrightarrow\; dX = 0 .$$
#
# The outputs of a column always sum to $m\beta$, whatever $X$ is. A gradient check with an all-ones
# upstream gradient therefore passes a "backward" that returns zeros — or anything that is zero for
# this one $dY$. The cell shows it; that is why every check in this course draws $G$ at random.

# %% tags=["active-ipynb"]
# ones = np.ones((m, n))
# dX_ones = gamma / (m * np.sqrt(var + eps)) * (m * ones - ones.sum(0) - X_hat * (ones * X_hat).sum(0))
# num_ones = numerical_gradient(lambda: f_X(ones), X)       # f is now the plain sum of the outputs
# zeros_backward = np.zeros_like(X)
# print(f"max |dX| for dY = 1: {np.abs(dX_ones).max():.1e}  (numerical: {np.abs(num_ones).max():.1e})")
# print(f"column sums of dX: {np.abs(dX_boxed.sum(0)).max():.1e};  dX . x_hat per column: {np.abs((dX_boxed * X_hat).sum(0)).max():.1e}")
# print(f"a backward returning zeros: all-ones check 'error' {np.abs(zeros_backward - num_ones).max():.1e} (passes), "
#       f"random-G check error {rel_error(zeros_backward, dX_num):.1f} (fails)")
# assert np.abs(dX_ones).max() < 1e-12 and np.abs(num_ones).max() < 1e-6
# assert np.allclose(dX_boxed.sum(0), 0)
# assert np.allclose((dX_boxed * X_hat).sum(0), s * eps / (var + eps) * (dX_hat * X_hat).sum(0), rtol=1e-6, atol=1e-14)
# assert rel_error(zeros_backward, dX_num) == 1.0

# %% [markdown]
# ## 5. Running statistics, and inference
#
# At inference a prediction must not depend on which other samples share its batch (or on there being
# a batch at all). So BatchNorm keeps **running statistics**, exponential moving averages of the batch
# statistics seen in training, and in inference mode normalises with them instead:
#
# $$r_\mu \leftarrow \rho\, r_\mu + (1-\rho)\,\mu, \qquad r_{\sigma^2} \leftarrow \rho\, r_{\sigma^2} + (1-\rho)\,\frac{m}{m-1}\sigma^2,
# \qquad\text{inference: } y = \gamma\,\frac{x - r_\mu}{\sqrt{r_{\sigma^2}+\varepsilon}} + \beta .$$
#
# Conventions differ between libraries, and a reader moving between them should know how:
#
# * **Momentum.** We follow Keras: $\rho$ = `momentum` is the weight of the *old* value (default 0.9 here;
#   Keras' default is 0.99). PyTorch's `momentum` is the weight of the *new* batch, $p = 1-\rho$: PyTorch's
#   default `momentum=0.1` is our `momentum=0.9`.
# * **Variance.** Training normalises with the biased $\sigma^2$ (all three agree). What goes into the
#   running variance differs: PyTorch stores the **unbiased** $\frac{m}{m-1}\sigma^2$, Keras (version 3)
#   averages the biased $\sigma^2$. We choose PyTorch's: the running variance estimates the variance of the
#   whole population, and the biased batch variance underestimates it by the factor $(m-1)/m$ on average —
#   a 3 % error at $m = 32$, 25 % at $m = 4$.
# * **Initial values** $r_\mu = 0$, $r_{\sigma^2} = 1$ (all three agree).
#
# In inference mode $\mu$ and $\sigma^2$ are constants, so the layer is an affine map per unit and its
# backward is simply $dX = \gamma\, dY / \sqrt{r_{\sigma^2}+\varepsilon}$ (same $d\gamma$ and $d\beta$).
# A batch of one sample cannot be normalised in training (its variance is 0: $\hat x = 0$ and every
# output would be $\beta$; the unbiased estimate would divide by zero), so it is refused; in inference it is fine.
#
# ## 6. The code

# %%
def _is_real(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class BatchNorm(Layer):
    """Batch normalisation over the batch axis: y = gamma * (x - mean) / sqrt(var + eps) + beta, per unit.

    training=True: normalises with the batch mean and biased batch variance, and updates the running
    statistics, running = momentum * running + (1 - momentum) * batch (Keras convention; PyTorch's
    momentum p is 1 - momentum here), storing the unbiased batch variance m/(m-1) var as PyTorch does.
    training=False: normalises with the running statistics only.
    """

    # images (m, H, W, C), chapter 12: one mean and variance per channel, over the m*H*W positions
    input_ndim, input_layout = (2, 4), "(m, n_features) or (m, H, W, C)"

    def __init__(self, momentum=0.9, eps=1e-5, name=None, n_in=None):
        super().__init__(name)
        if not _is_real(momentum) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"BatchNorm: momentum must be a number in [0, 1) (the weight of the old running value; "
                             f"PyTorch's momentum p is 1 - p here), got {momentum!r}")
        if not _is_real(eps) or not 0.0 < eps < np.inf:
            raise ValueError(f"BatchNorm: eps must be a positive finite number, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        if n_in is not None:
            self.build(n_in)

    def build(self, n_in, rng=None, dtype=np.float32):
        if np.ndim(n_in) == 1 and len(n_in) == 3:          # an image (H, W, C): one gamma and beta per channel
            super().build(n_in)
            n = self.n_in[-1]
        else:
            if np.ndim(n_in) != 0:
                raise ValueError(f"{self!r}: input width must be a positive integer, got {n_in!r}")
            super().build(as_count(n_in, "input width", repr(self)))
            n = self.n_in
        self.params = {"gamma": np.ones(n, dtype=dtype), "beta": np.zeros(n, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"running_mean": np.zeros(n, dtype=dtype), "running_var": np.ones(n, dtype=dtype)}

    def get_config(self):
        n_in = list(self.n_in) if isinstance(self.n_in, tuple) else self.n_in     # plain JSON
        return {"name": self.name, "momentum": self.momentum, "eps": self.eps, "n_in": n_in}

    def forward(self, X, training=False):
        X = self._check_input(X)
        shape = X.shape
        X = X.reshape(-1, shape[-1])      # images (m, H, W, C): rows are the m*H*W positions, one column per channel
        m = X.shape[0]
        if training:
            if m < 2:
                raise ValueError(f"{self!r}: training mode needs at least 2 samples per batch (the variance of one "
                                 f"sample is 0), got shape {shape}")
            # column means as a matrix-vector product 1^T X / m: BLAS streams the rows once, about 9x faster than
            # X.mean(axis=0) on the tall (m*H*W, C) matrices of image batches (chapter 14); same numbers up to round-off
            ones = np.ones(m, dtype=X.dtype)
            mu = (ones @ X) / m
            X_centred = X - mu
            var = (ones @ np.square(X_centred)) / m        # biased (1/m): the variance of what we normalise
            rho = self.momentum
            # in place, so that anyone holding the state arrays (a model, a checkpoint) sees the update
            self.state["running_mean"][...] = rho * self.state["running_mean"] + (1 - rho) * mu
            self.state["running_var"][...] = rho * self.state["running_var"] + (1 - rho) * var * (m / (m - 1))
        else:
            mu, var = self.state["running_mean"], self.state["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)
        X_hat = np.multiply(X_centred, inv_std, out=X_centred) if training else (X - mu) * inv_std
        self._cache = (X_hat.reshape(shape), inv_std, training)      # kept in the input's shape (a view)
        Y = X_hat * self.params["gamma"]
        Y += self.params["beta"]                                      # in place: one (m, n) array less
        return Y.reshape(shape)

    def backward(self, dY):
        X_hat, inv_std, training = self._cached()
        shape = X_hat.shape
        X_hat = X_hat.reshape(-1, shape[-1])                         # rows: samples, or the positions of all images
        dY = self._check_upstream(dY, shape).reshape(X_hat.shape)
        m = dY.shape[0]
        ones = np.ones(m, dtype=dY.dtype)                            # column sums as 1^T A (see forward)
        T = dY * X_hat
        np.matmul(ones, T, out=self._grad_buffer("gamma"))         # written into the layer's gradient arrays
        np.matmul(ones, dY, out=self._grad_buffer("beta"))          # (views of the model's flat array, chapter 14)
        a = self.params["gamma"] * inv_std                           # dX_hat = gamma dY, so gamma folds into a
        if not training:
            return (dY * a).reshape(shape)                # running statistics are constants
        # the boxed formula: direct path, minus the paths through the batch mean and the batch variance,
        # with sum(dX_hat) = gamma * grads["beta"] and sum(dX_hat * X_hat) = gamma * grads["gamma"]:
        # dX = a dY - (a/m) sum(dY) - X_hat (a/m) sum(dY X_hat), in place to spare (m, n) temporaries
        dX = dY * a
        dX -= np.multiply(X_hat, (a / m) * self.grads["gamma"], out=T)
        dX -= (a / m) * self.grads["beta"]
        return dX.reshape(shape)

# %% [markdown]
# ## 7. Gradient check, in training mode, after a Dense
#
# A BatchNorm sits after a Dense, so it is checked on what a Dense produces, with random $\gamma$ and
# $\beta$ (not the initial 1 and 0, which would hide a swapped or missing factor) and `check_layer`'s
# random upstream gradient. Then the composed chain Dense → BatchNorm is checked as one layer, so the
# gradients reaching $W$ and $b$ *through* the batch statistics are tested too. (The Dense bias receives
# exactly zero gradient here: a shift of a column is removed by the normalisation. The check confirms
# it numerically.) `Chain` is a two-line stand-in for the model of chapter 07.

# %% tags=["active-ipynb"]
# dense = Dense(4, rng=rng)
# H = dense.forward(rng.standard_normal((8, 5)))             # float64 input -> float64 layer
# bn = BatchNorm()
# bn.build(4, dtype=np.float64)
# bn.params["gamma"][:] = rng.uniform(0.5, 2.0, 4)
# bn.params["beta"][:] = rng.standard_normal(4)
# errors = check_layer(bn, H, rng, training=True)
# print("BatchNorm after a Dense, training mode:", {k: f"{v:.1e}" for k, v in errors.items()})
# assert max(errors.values()) < 1e-7
#
#
# class Chain:
#     """Layers in a row, with just the contract check_layer needs: forward, backward, params, grads."""
#
#     def __init__(self, *layers):
#         self.layers = layers
#
#     @property
#     def params(self):
#         return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}
#
#     @property
#     def grads(self):
#         return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}
#
#     def forward(self, X, training=False):
#         for layer in self.layers:
#             X = layer.forward(X, training=training)
#         return X
#
#     def backward(self, dY):
#         for layer in reversed(self.layers):
#             dY = layer.backward(dY)
#         return dY
#
#
# chain = Chain(dense, bn)
# X_chain = rng.standard_normal((8, 5))
# errors_chain = check_layer(chain, X_chain, rng, training=True)
# # the Dense bias: both gradients are zero up to rounding, where a *relative* error means nothing
# G_chain = rng.standard_normal((8, 4))
# chain.forward(X_chain, training=True); chain.backward(G_chain)
# db_num = numerical_gradient(lambda: float(np.sum(chain.forward(X_chain, training=True) * G_chain)), dense.params["b"])
# print("Dense -> BatchNorm as one layer:      ", {k: f"{v:.1e}" for k, v in errors_chain.items() if k != "0.b"})
# print(f"gradient reaching the Dense bias: analytic {np.abs(dense.grads['b']).max():.1e}, numerical {np.abs(db_num).max():.1e}")
# assert max(v for k, v in errors_chain.items() if k != "0.b") < 1e-7
# assert np.abs(dense.grads["b"]).max() < 1e-12 and np.abs(db_num).max() < 1e-8

# %% [markdown]
# The check also passes in inference mode (the affine backward), and it is not toothless: a backward
# that forgets the paths through $\mu$ and $\sigma^2$ — treating the batch statistics as constants, the
# effect of [the original](https://github.com/tomjwalker/diy-dnn)'s normalising with stored statistics — fails it.

# %% tags=["active-ipynb"]
# err_inference = check_layer(bn, H, rng, training=False)
# print("inference mode:", {k: f"{v:.1e}" for k, v in err_inference.items()})
# assert max(err_inference.values()) < 1e-7
#
#
# class StatsAsConstants(BatchNorm):
#     def backward(self, dY):
#         _, inv_std, _ = self._cached()
#         super().backward(dY)
#         return dY * self.params["gamma"] * inv_std        # only the direct path
#
#
# wrong = StatsAsConstants()
# wrong.build(4, dtype=np.float64)
# err_wrong = check_layer(wrong, H, rng, training=True)
# print("batch statistics treated as constants:", {k: f"{v:.1e}" for k, v in err_wrong.items()})
# assert err_wrong["X"] > 0.1

# %% [markdown]
# The rest of the contract: calling `backward` twice gives the same result, float32 stays float32
# (parameters, gradients and running statistics), and a training batch of one sample is refused with
# a message that names the layer and the shape.

# %% tags=["active-ipynb"]
# bn32 = BatchNorm()
# Y32 = bn32.forward(rng.standard_normal((16, 3)).astype(np.float32), training=True)
# G32 = rng.standard_normal(Y32.shape).astype(np.float32)
# dX1 = bn32.backward(G32).copy(); dgamma1 = bn32.grads["gamma"].copy()
# dX2 = bn32.backward(G32)
# dtypes = {Y32.dtype, dX2.dtype} | {a.dtype for d in (bn32.params, bn32.grads, bn32.state) for a in d.values()}
# print("dtypes:", dtypes, "  backward twice equal:", np.array_equal(dX1, dX2) and np.array_equal(dgamma1, bn32.grads["gamma"]))
# assert dtypes == {np.dtype(np.float32)} and np.array_equal(dX1, dX2) and np.array_equal(dgamma1, bn32.grads["gamma"])
# try:
#     bn32.forward(np.ones((1, 3), dtype=np.float32), training=True)
# except ValueError as e:
#     print("ValueError:", e)
# else:
#     raise AssertionError("a training batch of one sample was accepted")
# print("one sample in inference mode:", bn32.forward(np.ones((1, 3), dtype=np.float32)))
# for bad in ({"momentum": 1.0}, {"momentum": -0.1}, {"eps": 0.0}, {"eps": float("nan")}):
#     try:
#         BatchNorm(**bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError(f"BatchNorm({bad}) was accepted")

# %% [markdown]
# ## 8. Running statistics, checked
#
# First the update formula after one and two training batches, for a random momentum. Then the
# reason for the unbiased estimate: 4,000 batches of $m = 4$ samples from $\mathcal N(3, 2^2)$ with momentum
# 0.998 (a long average, so that the noise of single batches is averaged out). The running mean settles at 3, the running variance at the population variance 4, while an
# average of the *biased* batch variances would settle at $\tfrac{m-1}{m}\cdot 4 = 3$.

# %% tags=["active-ipynb"]
# rho = float(rng.uniform(0.5, 0.99))
# bn_r = BatchNorm(momentum=rho)
# X1, X2 = rng.normal(2, 3, (10, 3)), rng.normal(-1, 0.5, (7, 3))
# bn_r.forward(X1, training=True)
# expected_mean = rho * 0 + (1 - rho) * X1.mean(0)
# expected_var = rho * 1 + (1 - rho) * X1.var(0, ddof=1)
# assert np.allclose(bn_r.state["running_mean"], expected_mean) and np.allclose(bn_r.state["running_var"], expected_var)
# bn_r.forward(X2, training=True)
# expected_mean = rho * expected_mean + (1 - rho) * X2.mean(0)
# expected_var = rho * expected_var + (1 - rho) * X2.var(0, ddof=1)
# print(f"momentum {rho:.3f}: running mean {bn_r.state['running_mean'].round(4)}, expected {expected_mean.round(4)}")
# assert np.allclose(bn_r.state["running_mean"], expected_mean) and np.allclose(bn_r.state["running_var"], expected_var)
#
# bn_pop = BatchNorm(momentum=0.998)
# biased_avg = 1.0
# for step in range(4000):
#     batch = rng.normal(3.0, 2.0, size=(4, 1))
#     bn_pop.forward(batch, training=True)
#     biased_avg = 0.998 * biased_avg + 0.002 * batch.var()
# print(f"running mean {bn_pop.state['running_mean'][0]:.3f} (population 3);  running var {bn_pop.state['running_var'][0]:.3f} "
#       f"(population 4);  average of biased variances {biased_avg:.3f} (expected 3)")
# assert abs(bn_pop.state["running_mean"][0] - 3) < 0.15 and abs(bn_pop.state["running_var"][0] - 4) < 0.4
# assert abs(biased_avg - 3) < 0.4

# %% [markdown]
# ## 9. Inference mode depends only on the running statistics
#
# In inference a sample's output must be the same whichever batch it is in. Here the running statistics
# and $\gamma$, $\beta$ are random; the layer's output for the full batch, a slice of it, and a shuffled copy
# agree row by row with the formula, and the running statistics do not move. In training mode the same
# rows change with their company.

# %% tags=["active-ipynb"]
# bn_inf = BatchNorm(n_in=3)
# bn_inf.state["running_mean"][:] = rng.standard_normal(3)
# bn_inf.state["running_var"][:] = rng.uniform(0.5, 2, 3)
# bn_inf.params["gamma"][:] = rng.uniform(0.5, 2, 3); bn_inf.params["beta"][:] = rng.standard_normal(3)
# X_inf = rng.normal(1, 2, (10, 3)).astype(np.float32)
# before = {k: v.copy() for k, v in bn_inf.state.items()}
# full = bn_inf.forward(X_inf)
# part = bn_inf.forward(X_inf[:3])
# perm = rng.permutation(10)
# shuffled = bn_inf.forward(X_inf[perm])
# formula = bn_inf.params["gamma"] * (X_inf - before["running_mean"]) / np.sqrt(before["running_var"] + 1e-5) + bn_inf.params["beta"]
# print("inference: slice rows equal:", np.allclose(part, full[:3]), "  shuffled rows equal:", np.allclose(shuffled, full[perm]),
#       "  formula:", np.allclose(full, formula, atol=1e-6))
# assert np.allclose(part, full[:3]) and np.allclose(shuffled, full[perm]) and np.allclose(full, formula, atol=1e-6)
# assert all(np.array_equal(before[k], bn_inf.state[k]) for k in before)
# train_full, train_part = bn_inf.forward(X_inf, training=True), bn_inf.forward(X_inf[:3], training=True)
# print("training: slice rows equal:", np.allclose(train_part, train_full[:3]))
# assert not np.allclose(train_part, train_full[:3])

# %% [markdown]
# ## 10. A picture: pre-activations during training
#
# A small MLP, Dense(64) – ReLU – Dense(64) – ReLU – Dense(4), on a synthetic 4-class problem whose
# 20 input features are *not* standardised: their scales range from 0.1 to 30 and their means from
# −10 to 10, as raw measurements often do. We train it by plain mini-batch gradient descent
# (batch 64, learning rate 0.1) twice: as it is, and with a BatchNorm after each hidden Dense. We
# record the pre-activations entering the second ReLU at every step — the Dense output without BN,
# the BatchNorm output with it — and their mean and standard deviation per unit.

# %% tags=["active-ipynb"]
# def make_data(data_rng, n_samples=2000, n_features=20, n_classes=4):
#     centers = data_rng.standard_normal((n_classes, n_features))
#     labels = data_rng.integers(0, n_classes, n_samples)
#     Xs = centers[labels] + data_rng.standard_normal((n_samples, n_features))
#     scales = np.logspace(-1, 1.5, n_features)              # 0.1 ... 30
#     offsets = data_rng.uniform(-10, 10, n_features)
#     return (Xs * scales + offsets).astype(np.float32), labels
#
#
# def train(use_bn, n_steps, lr, seed=0):
#     """Plain SGD on the synthetic task; returns losses, per-step (unit means, unit stds) and the final accuracy."""
#     net_rng = np.random.default_rng(seed)
#     X_all, y_all = make_data(np.random.default_rng(100))
#     hidden = [Dense(64, rng=net_rng), *([BatchNorm()] if use_bn else []), ReLU(),
#               Dense(64, rng=net_rng), *([BatchNorm()] if use_bn else [])]
#     layers = hidden + [ReLU(), Dense(4, rng=net_rng)]
#     watch = len(hidden) - 1                                # the layer whose output enters the second ReLU
#     loss_fn, losses, unit_means, unit_stds, samples = SoftmaxCrossEntropy(), [], [], [], {}
#     for step in range(n_steps):
#         idx = net_rng.choice(len(X_all), 64, replace=False)
#         out = X_all[idx]
#         for i, layer in enumerate(layers):
#             out = layer.forward(out, training=True)
#             if i == watch:
#                 unit_means.append(out.mean(0)); unit_stds.append(out.std(0))
#                 if step in (0, n_steps - 1):
#                     samples[step] = out.ravel().copy()
#         losses.append(loss_fn(out, y_all[idx]))
#         grad = loss_fn.backward()
#         for layer in reversed(layers):
#             grad = layer.backward(grad)
#         for layer in layers:
#             for name in layer.params:
#                 layer.params[name] -= lr * layer.grads[name]
#     out = X_all
#     for layer in layers:
#         out = layer.forward(out)                            # inference mode: running statistics
#     return np.array(losses), np.array(unit_means), np.array(unit_stds), samples, accuracy(out, y_all)
#
#
# n_steps = 150 if quick_mode() else 400
# runs = {use_bn: train(use_bn, n_steps, lr=0.1) for use_bn in (False, True)}
# for use_bn, (losses, means, stds, _, acc) in runs.items():
#     print(f"{'with' if use_bn else 'without':7s} BN: loss {losses[0]:6.2f} -> {losses[-20:].mean():.3f};  "
#           f"accuracy {acc:.3f};  |unit mean| step 0 {np.abs(means[0]).mean():6.3f}, last {np.abs(means[-1]).mean():.3f};  "
#           f"unit std step 0 {stds[0].mean():6.3f}, last {stds[-1].mean():.3f}")
# means_bn, stds_bn = runs[True][1], runs[True][2]
# means_plain, stds_plain = runs[False][1], runs[False][2]
# assert np.abs(means_bn).max() < 0.5 and 0.6 < stds_bn.min() and stds_bn.max() < 1.6   # every unit, every step
# assert np.abs(means_plain[0]).mean() > 2 and stds_plain[0].mean() > 2                   # far from 0 / 1 without BN
# assert runs[True][0][-20:].mean() < runs[False][0][-20:].mean()                          # and BN learns faster here
# assert runs[True][4] > 0.85

# %% [markdown]
# A larger learning rate shows the practical payoff: with BatchNorm the same network trains at
# learning rate 0.3, without it the pre-activations blow up within a few dozen steps (the layers
# refuse the non-finite batch with a `ValueError`).

# %% tags=["active-ipynb"]
# def diverges(use_bn, lr):
#     with np.errstate(all="ignore"):
#         try:
#             losses = train(use_bn, n_steps, lr)[0]
#         except ValueError as e:                             # NonFiniteError from a layer, or the loss
#             return f"diverged: {str(e)[:60]}..."
#     return None if np.isfinite(losses).all() and losses[-20:].mean() < losses[0] else "did not learn"
#
# fast_plain, fast_bn = diverges(False, 0.3), diverges(True, 0.3)
# print("lr 0.3 without BN:", fast_plain)
# print("lr 0.3 with BN:   ", fast_bn or "trains")
# assert fast_plain is not None and fast_bn is None

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(1, 3, figsize=(15, 4))
# colours = {False: "tab:red", True: "tab:blue"}
# bins = np.linspace(-30, 30, 121)
# for use_bn, (losses, means, stds, samples, _) in runs.items():
#     label = "with BatchNorm" if use_bn else "without BatchNorm"
#     c = colours[use_bn]
#     steps = np.arange(len(means))
#     axes[0].plot(steps, np.median(np.abs(means), axis=1), color=c, label=f"{label}: |unit mean|")
#     axes[0].plot(steps, np.median(stds, axis=1), color=c, ls="--", label=f"{label}: unit std")
#     axes[0].fill_between(steps, np.percentile(stds, 10, axis=1), np.percentile(stds, 90, axis=1), color=c, alpha=0.15)
#     axes[1].hist(np.clip(samples[0], bins[0], bins[-1]), bins=bins, histtype="step", density=True, color=c, ls=":",
#                  label=f"{label}, first step")
#     axes[1].hist(np.clip(samples[len(means) - 1], bins[0], bins[-1]), bins=bins, histtype="step", density=True,
#                  color=c, label=f"{label}, last step")
#     axes[2].semilogy(losses, color=c, label=label)
# axes[0].set_yscale("symlog", linthresh=0.1)
# axes[0].set(xlabel="training step", ylabel="statistic over the batch (symlog scale)",
#             title="Layer-2 pre-activations, per unit\n(lines: median over units; band: 10-90 % of unit stds)")
# axes[0].legend(fontsize=8, loc="center right")
# axes[1].set(xlabel="pre-activation (clipped to ±30)", ylabel="density", title="Layer-2 pre-activations, all units")
# axes[1].legend(fontsize=8)
# axes[2].set(xlabel="training step", ylabel="cross-entropy", title="Training loss, learning rate 0.1")
# axes[2].legend()
# save_figure(fig, "05_batchnorm_preactivations.png")
# plt.show()

# %% [markdown]
# Without BatchNorm the second layer's pre-activations have per-unit means and spreads of tens,
# set by the largest raw features, jumping from batch to batch and drifting as the weights learn
# (the clipped tails of the histogram hold many of them); the network spends its first steps undoing
# the data's scale, and a learning rate large enough to do that quickly makes it diverge. With BatchNorm every unit enters its ReLU with mean $\beta_k \approx 0$ and standard
# deviation $\gamma_k \approx 1$ at every step, whatever the data and the layer below do.
#
# (Why BatchNorm helps optimisation is still debated: the original paper's "internal covariate shift"
# explanation has been questioned, e.g. by Santurkar et al., 2018, who point to a smoother loss surface.
# That it helps here, and how, the figure shows.)

# %% [markdown]
# ## Summary
#
# * Training mode: $\hat x = (x-\mu)/\sqrt{\sigma^2+\varepsilon}$ with the **batch** mean and biased variance,
#   $y = \gamma\hat x + \beta$; inference mode: the **running** statistics, so each row's output is independent of its batch.
# * $d\beta = \sum_i dy_i$, $d\gamma = \sum_i dy_i\hat x_i$, and through $\mu$ and $\sigma^2$:
#   $dX = \frac{\gamma}{m\sqrt{\sigma^2+\varepsilon}}\big(m\,dY - \sum dY - \hat X \sum(dY\odot\hat X)\big)$.
# * $dY = \mathbf 1$ gives $dX = 0$: check BatchNorm with a random upstream gradient, in training mode, after a Dense.
# * Running statistics: $r \leftarrow \rho\,r + (1-\rho)\,\text{batch}$ (Keras' momentum; PyTorch's is $1-\rho$);
#   the running variance stores the unbiased batch variance, as PyTorch does (Keras 3 stores the biased one).
# * A training batch of one sample is a `ValueError`; float32 stays float32.
#
# ## Exercises
#
# 1. Normalise with the running statistics in training mode, as [the original](https://github.com/tomjwalker/diy-dnn) did (and keep the backward
#    as it is). Which check of this chapter fails, and what happens to the training run of section 10?
# 2. A Dense followed by BatchNorm does not need its bias: show that $db = 0$ always (section 7 measured
#    it) and that removing $b$ changes no output in either mode.
# 3. Write Layer Normalisation: the same formulas over the *features* of each sample instead of over the
#    batch. What changes in the backward, and does it still need running statistics?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# The forward now uses constants (the running statistics) while the backward still differentiates through
# the batch statistics: the two no longer belong together, and the **gradient check in training mode** fails (every other
# check of sections 1–4 tests the formulas, not this layer). In training, the running statistics start at mean 0 and
# variance 1 and lag behind the batches, so at first the layer does not normalise (the units of section 10's network
# leave it with means and spreads of one to two instead of 0 and 1), and every step follows a gradient that is not the
# loss's gradient. At learning rate 0.1 the network still learns here, only more slowly.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     class RunningStatsInTraining(BatchNorm):
#         """The original's BatchNorm: in training, update the running statistics and normalise with them."""
#         def forward(self, X, training=False):
#             if not training:
#                 return super().forward(X)
#             super().forward(X, training=True)           # updates the running statistics with this batch
#             Y = super().forward(X, training=False)      # ... but normalises with them
#             X_hat, inv_std, _ = self._cache
#             self._cache = (X_hat, inv_std, True)        # and keeps the training-mode backward
#             return Y
#
#     bn_orig = RunningStatsInTraining()
#     bn_orig.build(4, dtype=np.float64)
#     err_orig = check_layer(bn_orig, H, rng, training=True)
#     print("running statistics in training, gradient check:", {k: f"{v:.1e}" for k, v in err_orig.items()})
#     assert err_orig["X"] > 0.1
#
#     _correct_bn = BatchNorm
#     try:
#         BatchNorm = RunningStatsInTraining              # train() builds its layers by this name: swap it for two runs
#         outcome_orig = diverges(True, 0.1)
#         run_orig = None if outcome_orig else train(True, n_steps, lr=0.1)
#     finally:
#         BatchNorm = _correct_bn
#     if run_orig is None:
#         print("section 10's network with the original's BatchNorm, lr 0.1:", outcome_orig)
#     else:
#         print(f"section 10's network with the original's BatchNorm, lr 0.1: loss {run_orig[0][0]:.2f} -> {run_orig[0][-20:].mean():.3f} "
#               f"(correct BatchNorm: {runs[True][0][-20:].mean():.3f}); first-step |unit mean| {np.abs(run_orig[1][0]).mean():.2f}, "
#               f"unit std {run_orig[2][0].mean():.2f} (correct: {np.abs(means_bn[0]).mean():.2f}, {stds_bn[0].mean():.2f})")
#     assert run_orig is None or (np.abs(run_orig[1][0]).mean() > 1 and run_orig[0][-20:].mean() > runs[True][0][-20:].mean())

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# A bias adds the constant $b_k$ to a whole column; the batch mean absorbs it, $x_i + b - (\mu + b) = x_i - \mu$, and
# the variance does not see it. So in training mode the output does not depend on $b$, and $db = \sum_i dx_i = 0$ since every
# column of BatchNorm's $dX$ sums to zero (section 4). The running mean tracks the batch means, so it carries $b$ too, and
# inference subtracts it again — exactly once the running mean's start at 0 is forgotten: after $t$ updates it holds
# $(1-\rho^t)\,b$ of the bias, so inference differs by $\gamma\rho^t b/\sqrt{r_{\sigma^2}+\varepsilon}$, a vanishing startup effect. The cell
# runs the same Dense → BatchNorm with and without a bias on the same batches.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     W_shared, b_random = rng.standard_normal((5, 4)), 3 * rng.standard_normal(4)
#     pairs = {}
#     for label, bias in (("with b", b_random), ("b = 0", np.zeros(4))):
#         d, norm = Dense(4, n_in=5), BatchNorm(n_in=4)
#         d.params["W"], d.params["b"] = W_shared.copy(), bias.copy()
#         for layer in (d, norm):
#             for k in layer.params:
#                 layer.params[k] = layer.params[k].astype(np.float64)
#             for k in layer.state:
#                 layer.state[k] = layer.state[k].astype(np.float64)
#         pairs[label] = (d, norm)
#     batches_b = [rng.standard_normal((16, 5)) for _ in range(200)]
#     for X_b in batches_b:
#         outs = {label: norm.forward(d.forward(X_b), training=True) for label, (d, norm) in pairs.items()}
#         assert np.allclose(outs["with b"], outs["b = 0"], atol=1e-12)          # training: the same output
#         d, norm = pairs["with b"]
#         d.backward(norm.backward(rng.standard_normal((16, 4))))
#         assert np.abs(d.grads["b"]).max() < 1e-12                                # db = 0
#     X_test_b = rng.standard_normal((7, 5))
#     infer = {label: norm.forward(d.forward(X_test_b)) for label, (d, norm) in pairs.items()}
#     shift = pairs["with b"][1].state["running_mean"] - pairs["b = 0"][1].state["running_mean"]
#     rho_t = 0.9 ** len(batches_b)
#     print(f"running means differ by (1 - rho^t) b: {np.allclose(shift, (1 - rho_t) * b_random)};  "
#           f"inference outputs differ by at most {np.abs(infer['with b'] - infer['b = 0']).max():.1e} (rho^t = {rho_t:.1e})")
#     assert np.allclose(shift, (1 - rho_t) * b_random) and np.allclose(infer["with b"], infer["b = 0"], atol=1e-8)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# Layer normalisation (Ba, Kiros & Hinton, 2016) computes $\mu$ and $\sigma^2$ of each **row** over its $n$ features,
# then applies $\gamma$ and $\beta$ per feature. The derivation of sections 3–4 carries over with the roles of the axes swapped:
# the sums over the batch become sums over the features of the sample, and $m$ becomes $n$,
#
# $$dX_{i\cdot} = \frac{s_i}{n}\Big(n\, d\hat X_{i\cdot} - \sum_j d\hat X_{ij} - \hat X_{i\cdot}\sum_j d\hat X_{ij}\hat X_{ij}\Big), \qquad d\hat X = dY\odot\gamma .$$
#
# ($d\gamma$ and $d\beta$ still sum over the batch, since $\gamma$ and $\beta$ are shared by the rows.) Every sample is normalised with
# its own statistics, in training and at inference alike: no running statistics, no batch dependence, batches of one are fine.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     class LayerNorm(Layer):
#         def __init__(self, eps=1e-5, name=None):
#             super().__init__(name)
#             self.eps = eps
#         def build(self, n_in, rng=None, dtype=np.float32):
#             super().build(n_in)
#             self.params = {"gamma": np.ones(n_in, dtype=dtype), "beta": np.zeros(n_in, dtype=dtype)}
#             self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             mu, var = X.mean(axis=1, keepdims=True), X.var(axis=1, keepdims=True)      # per sample, over the features
#             inv_std = 1.0 / np.sqrt(var + self.eps)
#             X_hat = (X - mu) * inv_std
#             self._cache = (X_hat, inv_std)
#             return self.params["gamma"] * X_hat + self.params["beta"]
#         def backward(self, dY):
#             X_hat, inv_std = self._cached()
#             dY = self._check_upstream(dY, X_hat.shape)
#             self.grads["gamma"], self.grads["beta"] = (dY * X_hat).sum(axis=0), dY.sum(axis=0)
#             dX_hat, n = dY * self.params["gamma"], X_hat.shape[1]
#             return (inv_std / n) * (n * dX_hat - dX_hat.sum(axis=1, keepdims=True)
#                                     - X_hat * (dX_hat * X_hat).sum(axis=1, keepdims=True))
#
#     ln = LayerNorm()
#     ln.build(6, dtype=np.float64)
#     ln.params["gamma"][:], ln.params["beta"][:] = rng.uniform(0.5, 2, 6), rng.standard_normal(6)
#     X_ln = rng.normal(3, 2, (5, 6))
#     err_ln = check_layer(ln, X_ln, rng, training=True)
#     alone = np.vstack([ln.forward(X_ln[i:i + 1]) for i in range(5)])
#     print("LayerNorm gradient check:", {k: f"{v:.1e}" for k, v in err_ln.items()},
#           "  each row the same alone as in the batch:", np.allclose(alone, ln.forward(X_ln)))
#     assert max(err_ln.values()) < 1e-7 and np.allclose(alone, ln.forward(X_ln)) and not ln.state

# %% [markdown]
# ---
# [← 04 — initialisers](04_initialisers.ipynb) · [begin here](00_begin_here.ipynb) · **05 — BatchNorm** · [next: 06 — optimisers →](06_optimisers.ipynb)
