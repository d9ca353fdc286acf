# %% [markdown]
# [← 00 — conventions](00_conventions.ipynb) · [begin here](00_begin_here.ipynb) · **01 — dense** · [next: 02 — activations →](02_activations.ipynb)
#
# # 01 — The layer contract, and Dense
#
# A network is a chain of **layers**. Training needs two passes through the chain:
# *forward* (inputs to outputs) and *backward* (the gradient of the loss, from the
# outputs back to every input and parameter). This chapter fixes the contract every
# layer of `diydnn` obeys, then derives and builds the first real layer: `Dense`.

# %%
"""Chapter 01: the Layer base class (the contract every layer obeys) and the Dense layer."""
import numpy as np


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_layer
# rng = np.random.default_rng(1)

# %% [markdown]
# ## 1. The layer contract
#
# | member | meaning |
# |---|---|
# | `forward(X, training=False)` | returns the output `Y` for a batch `X` of shape $(m, n_{in})$, and keeps what `backward` needs |
# | `backward(dY)` | takes $dY = \partial L/\partial Y$, returns $dX = \partial L/\partial X$, and **overwrites** `grads` (calling it twice gives the same result, it never accumulates) |
# | `backward_params(dY)` | the same without $dX$: only overwrites `grads` (for the first layer of a model, whose input gradient nobody uses; chapter 14) |
# | `params`, `grads` | dicts name → array, with equal keys and shapes (`grads[k]` has the shape of `params[k]`) |
# | `state` | non-trainable arrays (BatchNorm's running statistics) |
# | `get_config()` | the constructor arguments, as plain values (chapter 07 rebuilds models from them) |
# | `build(n_in, rng)` | creates the parameters; called on the first `forward` from the input width (lazy), or by the constructor when `n_in` is given (eager) |
#
# Bad input a user can cause is refused with a `ValueError` that names the layer and the
# shapes: a batch that is not 2-D, a width that does not match a built layer, NaN or inf
# in the batch (a `NonFiniteError`, a kind of `ValueError`, so a training loop can tell
# divergence apart), an upstream gradient of the wrong shape, and `backward` before `forward`.

# %%
class NonFiniteError(ValueError):
    """A batch holds NaN or inf. A ValueError, so callers may catch either."""


class Layer:
    """Base class of all layers: the contract of chapter 01 and the input checks."""

    input_ndim = (2,)                   # the ndims of batch it takes; (2, 4) also takes images (chapter 12)
    input_layout = "(m, n_features)"    # how the error messages describe such a batch
    checks_input = False   # True for a layer whose forward() runs _check_input (a model then need not repeat it)

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.params, self.grads, self.state = {}, {}, {}
        self.n_in = None      # input width, set by build()
        self._cache = None    # what backward needs, set by forward()

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"

    def __call__(self, X, training=False):
        return self.forward(X, training=training)

    @property
    def built(self):
        return self.n_in is not None

    def build(self, n_in, rng=None, dtype=np.float32):
        """Record the input width (an int; for images, chapter 12, the shape of one sample as a tuple);
        layers with parameters create them here."""
        self.n_in = int(n_in) if np.ndim(n_in) == 0 else tuple(int(d) for d in n_in)

    def output_width(self, n_in):
        """Width of the output for an input of width n_in (most layers keep it)."""
        return n_in

    def get_config(self):
        return {"name": self.name}

    def forward(self, X, training=False):
        raise NotImplementedError

    def backward(self, dY):
        raise NotImplementedError

    def _check_input(self, X, finite=True):
        """Validate a batch, build the layer on first use, and return X as a float array.

        finite=False skips the scan for NaN/inf (a model whose first layer scans the same batch anyway)."""
        X = np.asarray(X)
        if X.ndim not in self.input_ndim:
            ndim = " or ".join(f"{n}-D" for n in self.input_ndim)
            raise ValueError(f"{self!r}: expected a {ndim} batch of shape {self.input_layout}, got shape {X.shape}")
        if X.shape[0] == 0:
            raise ValueError(f"{self!r}: got an empty batch, shape {X.shape}")
        if X.dtype.kind != "f":                   # (a plain attribute test: this runs for every layer, every step)
            X = X.astype(np.float32)
        n_in = X.shape[1] if X.ndim == 2 else X.shape[1:]    # one sample: a width, or an image's shape
        if not self.built or (n_in != self.n_in and not self.params):
            self.build(n_in, dtype=X.dtype)   # a layer without weights adapts to any width
        elif n_in != self.n_in:
            what = f"width {self.n_in}" if isinstance(self.n_in, int) else f"shape (m, {', '.join(map(str, self.n_in))})"
            raise ValueError(f"{self!r}: expected input of {what}, got shape {X.shape}")
        # max/min propagate NaN and show +-inf, and cost far less than isfinite(X).all()
        if finite and not (np.isfinite(X.max()) and np.isfinite(X.min())):
            raise NonFiniteError(f"{self!r}: input batch of shape {X.shape} contains NaN or inf")
        return X

    def _cached(self):
        """What forward() kept for backward(); an error if there was no forward yet."""
        if self._cache is None:
            raise ValueError(f"{self!r}: backward() called before forward()")
        return self._cache

    def backward_params(self, dY):
        """Only the parameter half of backward: overwrite grads, return nothing.

        A model calls this on its first layer, whose input gradient (the gradient of the images)
        nobody uses. This default computes dX and drops it; Dense overrides it to skip the work.
        """
        self.backward(dY)

    def _grad_buffer(self, name):
        """grads[name] as a reusable array of the parameter's shape and dtype (a new one only if it is not)."""
        g, p = self.grads.get(name), self.params[name]
        if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype or g is p:
            g = self.grads[name] = np.empty_like(p)
        return g

    def _check_upstream(self, dY, shape):
        """Validate the upstream gradient against the shape of the last forward output."""
        dY = np.asarray(dY)
        if dY.shape != shape:
            raise ValueError(f"{self!r}: upstream gradient has shape {dY.shape}, expected {shape} (the shape of the output)")
        return dY


# %% [markdown]
# ## 2. Dense: forward
#
# For a batch $X \in \mathbb{R}^{m\times n}$ (rows are samples), weights
# $W\in\mathbb{R}^{n\times k}$ and bias $b\in\mathbb{R}^{k}$:
#
# $$Z = XW + \mathbf{1}_m b, \qquad Z_{ik} = \sum_{j=1}^{n} X_{ij} W_{jk} + b_k .$$
#
# ($\mathbf{1}_m b$ is the bias repeated on each of the $m$ rows; NumPy's broadcasting does it.)

# %% tags=["active-ipynb"]
# X_demo = rng.standard_normal((4, 3)); W_demo = rng.standard_normal((3, 2)); b_demo = rng.standard_normal(2)
# Z_loop = np.array([[sum(X_demo[i, j] * W_demo[j, k] for j in range(3)) + b_demo[k] for k in range(2)] for i in range(4)])
# print("max |element-wise sum - (XW + b)| =", np.abs(Z_loop - (X_demo @ W_demo + b_demo)).max())
# assert np.allclose(Z_loop, X_demo @ W_demo + b_demo)

# %% [markdown]
# ## 3. Dense: backward, element by element
#
# Let $dZ_{ik} = \partial L/\partial Z_{ik}$ arrive from the layer above. Each parameter
# reaches $L$ through every $Z_{ik}$ it touches, and the chain rule sums over those paths.
#
# **Weights.** $\partial Z_{ik'}/\partial W_{jk} = X_{ij}$ if $k' = k$, else 0. So
#
# $$dW_{jk} = \sum_{i=1}^{m}\sum_{k'} dZ_{ik'} \frac{\partial Z_{ik'}}{\partial W_{jk}} = \sum_{i=1}^{m} X_{ij}\, dZ_{ik} = (X^\top dZ)_{jk}.$$
#
# The sum over $i$ runs over the samples: **every sample contributes to the weight gradient**.
# There is no $1/m$ here: the loss is already a mean over the batch, so its gradient $dZ$
# carries the $1/m$ (the original divided by $m$ a second time in every layer).
#
# **Bias.** $\partial Z_{ik'}/\partial b_k = [k'=k]$, so $db_k = \sum_i dZ_{ik}$: the column sums of $dZ$.
#
# **Inputs.** $\partial Z_{ik'}/\partial X_{i'j} = W_{jk'}$ if $i' = i$, else 0. So
#
# $$dX_{ij} = \sum_{k} dZ_{ik} W_{jk} = (dZ\, W^\top)_{ij}.$$
#
# **A correction to the original.** In the original's features×samples layout,
# $Z' = W'A + b'$ with $a_{jk}$ the activation of input unit $j$ for sample $k$, the same
# derivation gives
#
# $$dW'_{ij} = \sum_{k=1}^{m} dZ'_{ik}\, a_{jk}, \qquad dW' = dZ' A^\top .$$
#
# The original's table wrote $a_{kj}$ in this sum: unit and sample indices swapped, which
# sums over the wrong axis (and is not even defined unless $m = n$). The correct entry is
# $a_{jk}$; the cell below checks it in the original's layout, and shows it is our
# $dW = X^\top dZ$ transposed.

# %% tags=["active-ipynb"]
# A_o, dZ_o = X_demo.T, rng.standard_normal((2, 4))       # features x samples, as in the original
# dW_o = np.array([[sum(dZ_o[i, k] * A_o[j, k] for k in range(4)) for j in range(3)] for i in range(2)])
# print("dW' = dZ' A^T:", np.allclose(dW_o, dZ_o @ A_o.T), "  equals (X^T dZ)^T:", np.allclose(dW_o, (X_demo.T @ dZ_o.T).T))
# assert np.allclose(dW_o, dZ_o @ A_o.T) and np.allclose(dW_o.T, X_demo.T @ dZ_o.T)

# %% [markdown]
# ## 4. The matrix form, checked
#
# $$dW = X^\top dZ, \qquad db = \mathbf{1}_m^\top dZ, \qquad dX = dZ\, W^\top .$$
#
# Each has the shape of what it differentiates: $(n\times m)(m\times k) = n\times k$,
# $1\times k$, and $(m\times k)(k\times n) = m \times n$. The cell compares the element-wise sums
# with the matrix forms on random numbers.

# %% tags=["active-ipynb"]
# dZ_demo = rng.standard_normal((4, 2))
# dW_loop = np.array([[sum(X_demo[i, j] * dZ_demo[i, k] for i in range(4)) for k in range(2)] for j in range(3)])
# dX_loop = np.array([[sum(dZ_demo[i, k] * W_demo[j, k] for k in range(2)) for j in range(3)] for i in range(4)])
# print("dW:", np.abs(dW_loop - X_demo.T @ dZ_demo).max(), " db:", np.abs(dZ_demo.sum(0) - np.ones(4) @ dZ_demo).max(),
#       " dX:", np.abs(dX_loop - dZ_demo @ W_demo.T).max())
# assert np.allclose(dW_loop, X_demo.T @ dZ_demo) and np.allclose(dX_loop, dZ_demo @ W_demo.T)

# %% [markdown]
# ## 5. The code
#
# The weights are drawn by an **initialiser** (chapter 04 derives them); the default, He
# normal, draws $W_{jk}\sim\mathcal N(0, 2/n_{in})$. `init` is a name (`"he"`, `"glorot"`,
# `"random"`) or an initialiser object. The bias starts at zero. The random generator is
# passed in (`rng=`) or handed over by the model that builds the layer; without one, the
# layer draws from a fresh unseeded generator — never from NumPy's global state.
#
# Two details are about speed (chapter 14 measures them). `backward` writes $dW$ and $db$ **into the
# same arrays** every step (`np.matmul(..., out=)`), so `grads` never allocates; whoever wants to keep one
# step's gradient must copy it. And `backward_params` is `backward` without the product $dZ\,W^\top$,
# for the first layer of a model, whose input gradient nobody needs.

# %%
class Dense(Layer):
    """Fully connected layer Z = X W + b, with W of shape (n_in, units)."""

    checks_input = True

    def __init__(self, units, n_in=None, init="he", rng=None, name=None):
        super().__init__(name)
        if int(units) != units or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.init = init
        self.rng = rng
        if n_in is not None:
            self.build(n_in, rng)

    def build(self, n_in, rng=None, dtype=np.float32):
        from diydnn._04_initialisers import get_initialiser  # chapter 04; imported late to keep chapter order
        if np.ndim(n_in) != 0 or int(n_in) != n_in or n_in < 1:
            hint = " (an image: put a Flatten() before a Dense, chapter 12)" if np.ndim(n_in) else ""
            raise ValueError(f"{self!r}: input width must be a positive integer, got {n_in!r}{hint}")
        super().build(n_in)
        rng = rng if rng is not None else (self.rng if self.rng is not None else np.random.default_rng())
        W = get_initialiser(self.init)(self.n_in, self.units, rng)
        self.params = {"W": W.astype(dtype), "b": np.zeros(self.units, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def output_width(self, n_in):
        return self.units

    def get_config(self):
        init = self.init if isinstance(self.init, (str, dict)) else self.init.get_config()
        return {"name": self.name, "units": self.units, "n_in": self.n_in, "init": init}

    def forward(self, X, training=False):
        X = self._check_input(X)
        self._cache = X
        Z = X @ self.params["W"]
        Z += self.params["b"]               # in place: no second (m, units) array
        return Z

    def backward(self, dY):
        dZ = np.asarray(dY)
        self._param_grads(dZ)               # checks dZ, overwrites grads
        return dZ @ self.params["W"].T      # dX = dZ W^T

    def backward_params(self, dY):
        """The parameter half of backward: overwrite grads["W"] and grads["b"], skip dX (chapter 14)."""
        if type(self).backward is not Dense.backward:
            self.backward(dY)               # a subclass with its own backward (a variant, a bug to study) runs it
        else:
            self._param_grads(dY)

    def _param_grads(self, dY):
        X = self._cached()
        dZ = self._check_upstream(dY, (X.shape[0], self.units))
        dW, db = self._grad_buffer("W"), self._grad_buffer("b")
        np.matmul(X.T, dZ, out=dW)          # sums over the samples; no 1/m here
        np.add.reduce(dZ, axis=0, out=db)   # db = column sums of dZ (the ufunc itself: less call overhead than np.sum)

# %% [markdown]
# ## 6. Gradient check
#
# `check_layer` from chapter 00 compares `backward` with central differences for the
# input and for every parameter, with a random upstream gradient, in float64.

# %% tags=["active-ipynb"]
# dense = Dense(5, rng=rng)
# errors = check_layer(dense, rng.standard_normal((7, 4)), rng)
# print({k: f"{v:.1e}" for k, v in errors.items()})
# assert dense.params["W"].shape == (4, 5) and max(errors.values()) < 1e-8

# %% [markdown]
# Calling `backward` twice gives the same gradients (they are overwritten, not added), and
# a float32 batch stays float32 end to end:

# %% tags=["active-ipynb"]
# d32 = Dense(3, rng=rng)
# Y32 = d32.forward(rng.standard_normal((6, 4)).astype(np.float32))
# G = rng.standard_normal((6, 3)).astype(np.float32)
# d32.backward(G); first = d32.grads["W"].copy()
# d32.backward(G)
# print(Y32.dtype, d32.params["W"].dtype, "twice equal:", np.array_equal(first, d32.grads["W"]))
# assert Y32.dtype == np.float32 and np.array_equal(first, d32.grads["W"])

# %% [markdown]
# Wrong input is refused with a message that names the layer and the shapes:

# %% tags=["active-ipynb"]
# for bad in (rng.standard_normal((6, 5)), rng.standard_normal(4), np.full((2, 4), np.nan)):
#     try:
#         d32.forward(bad)
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad input was accepted")

# %% [markdown]
# ## 7. A picture: fitting a line, and the shapes of one pass
#
# A single Dense layer with a mean-squared-error loss is linear regression. With
# $L = \frac{1}{m}\sum_i (z_i - t_i)^2$ the upstream gradient is $dZ = \frac{2}{m}(Z - T)$ (the one $1/m$),
# and gradient descent $W \leftarrow W - \alpha\, dW$ should recover the slope and intercept of
# noisy data generated from $t = 3x - 1$.

# %% tags=["active-ipynb"]
# x_reg = rng.uniform(-1, 1, size=(64, 1))
# t_reg = 3 * x_reg - 1 + 0.2 * rng.standard_normal((64, 1))
# line = Dense(1, n_in=1, rng=rng)
# losses = []
# for step in range(200):
#     Z = line.forward(x_reg)
#     losses.append(float(np.mean((Z - t_reg) ** 2)))
#     line.backward(2 * (Z - t_reg) / len(x_reg))
#     for k in line.params:
#         line.params[k] -= 0.1 * line.grads[k]
# # the least-squares solution, for comparison
# A_ls = np.hstack([x_reg, np.ones_like(x_reg)])
# slope_ls, icpt_ls = np.linalg.lstsq(A_ls, t_reg, rcond=None)[0].ravel()
# slope, icpt = line.params["W"].item(), line.params["b"].item()
# print(f"gradient descent: slope {slope:.3f}, intercept {icpt:.3f};  least squares: {slope_ls:.3f}, {icpt_ls:.3f}")
# assert abs(slope - slope_ls) < 1e-2 and abs(icpt - icpt_ls) < 1e-2
#
# fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
# axes[0].scatter(x_reg, t_reg, s=10, label="data")
# xs = np.linspace(-1, 1, 2)[:, None]
# axes[0].plot(xs, line.forward(xs), "r", label=f"Dense fit: {slope:.2f}x{icpt:+.2f}")
# axes[0].legend(); axes[0].set_title("One Dense layer = linear regression")
# axes[1].semilogy(losses); axes[1].set(xlabel="step", ylabel="MSE", title="Loss during gradient descent")
# plt.show()

# %% [markdown]
# The shapes of one forward and backward pass through `Dense(5)` on a batch of 7 samples with 4 features:

# %% tags=["active-ipynb"]
# pass_layer = Dense(5, rng=rng)
# Xp = rng.standard_normal((7, 4)); Zp = pass_layer.forward(Xp); dXp = pass_layer.backward(np.ones_like(Zp))
# for name, arr in [("X", Xp), ("W", pass_layer.params["W"]), ("b", pass_layer.params["b"]), ("Z = XW + b", Zp),
#                   ("dZ", Zp), ("dW = X^T dZ", pass_layer.grads["W"]), ("db", pass_layer.grads["b"]), ("dX = dZ W^T", dXp)]:
#     print(f"{name:12s} {str(arr.shape):8s}")

# %% [markdown]
# ## Summary
#
# * Every layer obeys one contract: `forward(X, training)`, `backward(dY)` → `dX` with `grads`
#   overwritten, `params`/`grads`/`state` dicts, `get_config()`, lazy or eager `build`.
# * Dense: $Z = XW + b$; $dW = X^\top dZ$, $db = \sum_i dZ_{i\cdot}$, $dX = dZ\,W^\top$ — no $1/m$
#   (it lives in the loss). The original's $a_{kj}$ should read $a_{jk}$.
# * The gradient check agrees to about $10^{-10}$.
#
# ## Exercises
#
# 1. Add a `use_bias=False` option and check it.
# 2. Put the $1/m$ back into `backward` (the original's double division) and rerun the
#    regression: how many more steps does it need for the same loss, with a batch of 64?
# 3. Why does `dX` not depend on `b`?

# %% [markdown]
# ---
# [← 00 — conventions](00_conventions.ipynb) · [begin here](00_begin_here.ipynb) · **01 — dense** · [next: 02 — activations →](02_activations.ipynb)
