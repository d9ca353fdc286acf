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
import math

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
# divergence apart), an upstream gradient of the wrong shape, and `backward` before `forward`. A size that is
# not a count (2.5, NaN, `True`, `None`) is refused by `as_count`, which every later chapter uses for its counts.

# %%
class NonFiniteError(ValueError):
    """A batch holds NaN or inf. A ValueError, so callers may catch either."""


def as_count(value, what, who, low=1):
    """value as an int >= low (a layer size, a step count, a kernel size, a thread count), or a ValueError naming
    `who`, the parameter `what`, the value and what is allowed. Every later chapter checks its counts with this.

    A Python or NumPy integer, or a whole float such as 3.0, is taken. Refused: a bool (True is an int in Python,
    but never a count), None, text, NaN, inf, and 2.5 (int() would silently make it 2, and fail on NaN with a
    message that names no parameter).
    """
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole or value < low:   # is_integer() is False for NaN and inf
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
        raise ValueError(f"{who}: {what} must be {kind}, got {value!r}")
    return int(value)


def _all_finite(X):
    """True if no entry of the float array X is NaN or inf.

    The fast test is one dot product, X . X (a BLAS call: no temporary array, one pass): a sum of
    squares is NaN or inf exactly when an entry is, unless huge entries (|x| > 1e19 in float32) overflow
    the squares. Only then, or for arrays BLAS does not take, the exact test runs: max and min (they
    propagate NaN and show +-inf, and cost far less than isfinite(X).all()). Per step this runs on every
    layer's input, so the difference (half the time on a batch of images, a quarter on a small one) adds up.
    """
    if X.dtype.char in "fd" and X.flags.c_contiguous and math.isfinite(np.vdot(X, X)):
        return True
    return X.size == 0 or bool(np.isfinite(X.max()) and np.isfinite(X.min()))


class Layer:
    """Base class of all layers: the contract of chapter 01 and the input checks."""

    input_ndim = (2,)                   # the ndims of batch it takes; (2, 4) also takes images (chapter 12)
    input_layout = "(m, n_features)"    # how the error messages describe such a batch
    checks_input = False   # True for a layer whose forward() runs _check_input (a model then need not repeat it)
    checks_finite = True   # scan the input for NaN/inf; a model (chapter 07) scans its batch once, at its first layer

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
            if X.dtype.kind not in "biu":         # complex would silently lose its imaginary part; text, objects
                raise ValueError(f"{self!r}: expected a batch of real numbers, got dtype {X.dtype} with shape "
                                 f"{X.shape}; convert it first, e.g. np.asarray(X, dtype=np.float32)")
            X = X.astype(np.float32)              # integers and booleans (pixels, indicators) become float32
        n_in = X.shape[1] if X.ndim == 2 else X.shape[1:]    # one sample: a width, or an image's shape
        if not self.built or (n_in != self.n_in and not self.params):
            self.build(n_in, dtype=X.dtype)   # a layer without weights adapts to any width
        elif n_in != self.n_in:
            what = f"width {self.n_in}" if isinstance(self.n_in, int) else f"shape (m, {', '.join(map(str, self.n_in))})"
            raise ValueError(f"{self!r}: expected input of {what}, got shape {X.shape}")
        if finite and self.checks_finite and not _all_finite(X):
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
# For a batch $X \in \mathbb{R}^{m\times n_{in}}$ (rows are samples), weights
# $W\in\mathbb{R}^{n_{in}\times n_{out}}$ and a bias column $b\in\mathbb{R}^{n_{out}}$:
#
# $$Z = XW + \mathbf{1}_m b^\top, \qquad Z_{ik} = \sum_{j=1}^{n_{in}} X_{ij} W_{jk} + b_k .$$
#
# ($\mathbf{1}_m b^\top$ is the row $b^\top$ repeated on each of the $m$ rows; NumPy's broadcasting does it.) The
# letters keep one meaning through the chapter: $i$ runs over the samples, $j$ over the inputs, $k$ over the outputs;
# $m$, $n_{in}$ and $n_{out}$ are the three sizes.

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
# carries the $1/m$ ([the original](https://github.com/tomjwalker/diy-dnn) divided by $m$ a second time in every layer).
#
# **Bias.** $\partial Z_{ik'}/\partial b_k = [k'=k]$, so $db_k = \sum_i dZ_{ik}$: the column sums of $dZ$. (The bracket
# $[\,\cdot\,]$ around a condition is 1 when the condition holds and 0 otherwise — the *Iverson bracket*; the
# course uses it wherever a derivative is "1 on the diagonal, 0 elsewhere".)
#
# **Inputs.** $\partial Z_{ik'}/\partial X_{i'j} = W_{jk'}$ if $i' = i$, else 0. So
#
# $$dX_{ij} = \sum_{k} dZ_{ik} W_{jk} = (dZ\, W^\top)_{ij}.$$
#
# **A correction to [the original](https://github.com/tomjwalker/diy-dnn).** In the original's features×samples layout,
# $Z' = W'A + b'\mathbf 1_m^\top$ with $A_{ji}$ the activation of input unit $j$ for sample $i$, the same
# derivation gives (in our letters: $i$ sample, $j$ input, $k$ output)
#
# $$dW'_{kj} = \sum_{i=1}^{m} dZ'_{ki}\, A_{ji}, \qquad dW' = dZ' A^\top .$$
#
# The original's table, in its own letters ($i$ output unit, $j$ input unit, $k$ sample), wrote
# $dW'_{ij} = \sum_k dZ'_{ik}\, a_{kj}$: the activation's unit and sample indices swapped, which
# sums over the wrong axis (and is not even defined unless $m = n_{in}$). The correct entry is
# $a_{jk}$ in its letters ($A_{ji}$ in ours); the cell below checks it in the original's layout, and shows it
# is our $dW = X^\top dZ$ transposed.

# %% tags=["active-ipynb"]
# A_o, dZ_o = X_demo.T, rng.standard_normal((2, 4))       # features x samples, as in the original
# dW_o = np.array([[sum(dZ_o[k, i] * A_o[j, i] for i in range(4)) for j in range(3)] for k in range(2)])
# print("dW' = dZ' A^T:", np.allclose(dW_o, dZ_o @ A_o.T), "  equals (X^T dZ)^T:", np.allclose(dW_o, (X_demo.T @ dZ_o.T).T))
# assert np.allclose(dW_o, dZ_o @ A_o.T) and np.allclose(dW_o.T, X_demo.T @ dZ_o.T)

# %% [markdown]
# ## 4. The matrix form, checked
#
# $$dW = X^\top dZ, \qquad db = dZ^\top \mathbf{1}_m, \qquad dX = dZ\, W^\top .$$
#
# Each has the shape of what it differentiates: $(n_{in}\times m)(m\times n_{out}) = n_{in}\times n_{out}$,
# $(n_{out}\times m)(m \times 1) = n_{out}$ (a column, like $b$), and $(m\times n_{out})(n_{out}\times n_{in}) = m \times n_{in}$.
# The cell compares the element-wise sums with the matrix forms on random numbers.

# %% tags=["active-ipynb"]
# dZ_demo = rng.standard_normal((4, 2))
# dW_loop = np.array([[sum(X_demo[i, j] * dZ_demo[i, k] for i in range(4)) for k in range(2)] for j in range(3)])
# dX_loop = np.array([[sum(dZ_demo[i, k] * W_demo[j, k] for k in range(2)) for j in range(3)] for i in range(4)])
# print("dW:", np.abs(dW_loop - X_demo.T @ dZ_demo).max(), " db:", np.abs(dZ_demo.sum(0) - dZ_demo.T @ np.ones(4)).max(),
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
        self.units = as_count(units, "units", "Dense")
        self.init = init
        self.rng = rng
        if n_in is not None:
            self.build(n_in, rng)

    def build(self, n_in, rng=None, dtype=np.float32):
        from diydnn._04_initialisers import get_initialiser  # chapter 04; imported late to keep chapter order
        if np.ndim(n_in) != 0:
            raise ValueError(f"{self!r}: input width must be a positive integer, got {n_in!r} (an image: put a "
                             f"Flatten() before a Dense, chapter 12)")
        n_in = as_count(n_in, "input width", repr(self))
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
        db_new = np.add.reduce(dZ, axis=0)  # db = column sums of dZ (the ufunc itself: less call overhead than np.sum)
        # NaN or inf in dZ shows in its column sums (a small array, so no extra pass over dZ): refuse it as forward
        # refuses a non-finite input, before any gradient changes
        if not _all_finite(db_new) and not _all_finite(dZ):
            raise NonFiniteError(f"{self!r}: upstream gradient of shape {dZ.shape} contains NaN or inf; grads were "
                                 f"not changed")
        dW, db = self._grad_buffer("W"), self._grad_buffer("b")
        np.matmul(X.T, dZ, out=dW)          # sums over the samples; no 1/m here
        db[...] = db_new

# %% [markdown]
# ## 6. Gradient check
#
# `check_layer` from chapter 00 compares `backward` with central differences for the
# input and for every parameter, with a random upstream gradient, in float64; it passes below
# chapter 00's pass mark, a relative error of $10^{-7}$.

# %% tags=["active-ipynb"]
# dense = Dense(5, rng=rng)
# errors = check_layer(dense, rng.standard_normal((7, 4)), rng)
# print({k: f"{v:.1e}" for k, v in errors.items()})
# assert dense.params["W"].shape == (4, 5) and max(errors.values()) < 1e-7

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
# ## 7. Gradient descent, and a picture: fitting a line
#
# What are the gradients for? Training looks for parameters $\theta$ (all the $W$ and $b$) that make the
# loss $L$ small, and the gradient says how $L$ changes near the current $\theta$. To first order (Taylor),
#
# $$L(\theta + \Delta) \approx L(\theta) + \sum d\theta\odot\Delta ,$$
#
# the sum running over every entry. Take the step $\Delta = -\alpha\, d\theta$ with a small **learning rate**
# $\alpha > 0$: then $L(\theta - \alpha\, d\theta) \approx L(\theta) - \alpha \lVert d\theta\rVert^2$, which is *smaller* unless the
# gradient is zero. Repeating this step is **gradient descent**,
#
# $$\theta \leftarrow \theta - \alpha\, d\theta .$$
#
# The first-order picture holds only for small steps: if $\alpha$ is too large, the step overshoots the valley
# and the loss grows. Chapter 06 shows that $-d\theta$ is the direction of steepest descent and builds faster
# rules on it (momentum, Adam); chapters 03 and 05 already use this plain one.
#
# A single Dense layer with a mean-squared-error loss is linear regression. With
# $L = \frac{1}{m}\sum_i (z_i - t_i)^2$ the upstream gradient is $dZ = \frac{2}{m}(Z - T)$ (the one $1/m$),
# and gradient descent $W \leftarrow W - \alpha\, dW$, $b \leftarrow b - \alpha\, db$ should recover the slope and
# intercept of noisy data generated from $t = 3x - 1$. The cell checks the first-order prediction on one tiny
# step, then runs 200 steps and compares with the least-squares solution.

# %% tags=["active-ipynb"]
# x_reg = rng.uniform(-1, 1, size=(64, 1))
# t_reg = 3 * x_reg - 1 + 0.2 * rng.standard_normal((64, 1))
# line = Dense(1, n_in=1, rng=rng)
# mse = lambda layer: float(np.mean((layer.forward(x_reg) - t_reg) ** 2))
#
# # one tiny step: the loss drops by alpha |dtheta|^2, to first order
# L_before, Z = mse(line), line.forward(x_reg)
# line.backward(2 * (Z - t_reg) / len(x_reg))
# grads_0 = {name: g.copy() for name, g in line.grads.items()}
# squared_norm = sum(float(np.sum(g ** 2)) for g in grads_0.values())
# for name in line.params:
#     line.params[name] -= 1e-4 * grads_0[name]
# drop = L_before - mse(line)
# for name in line.params:
#     line.params[name] += 1e-4 * grads_0[name]          # undo it: the run below starts from the same point
# print(f"one step of 1e-4: loss dropped by {drop:.6f}, first-order prediction alpha |dtheta|^2 = {1e-4 * squared_norm:.6f}")
# assert drop > 0 and abs(drop / (1e-4 * squared_norm) - 1) < 1e-2
#
# losses, path = [], []
# for step in range(200):
#     Z = line.forward(x_reg)
#     losses.append(float(np.mean((Z - t_reg) ** 2)))
#     path.append((line.params["W"].item(), line.params["b"].item()))
#     line.backward(2 * (Z - t_reg) / len(x_reg))
#     for name in line.params:
#         line.params[name] -= 0.1 * line.grads[name]
# # every step of alpha = 0.1 lowered the loss, until float32 weights cannot resolve the last digits
# assert all(np.diff(losses[:100]) < 0) and max(np.diff(losses)) < 1e-6
# # the least-squares solution, for comparison
# A_ls = np.hstack([x_reg, np.ones_like(x_reg)])
# slope_ls, icpt_ls = np.linalg.lstsq(A_ls, t_reg, rcond=None)[0].ravel()
# slope, icpt = line.params["W"].item(), line.params["b"].item()
# print(f"gradient descent: slope {slope:.3f}, intercept {icpt:.3f};  least squares: {slope_ls:.3f}, {icpt_ls:.3f}")
# assert abs(slope - slope_ls) < 1e-2 and abs(icpt - icpt_ls) < 1e-2
#
# # too large a step: the MSE is a quadratic bowl whose steepest curvature is the largest eigenvalue of its
# # Hessian (2/m) A^T A; steps beyond 2 / that eigenvalue overshoot further every time
# curvature = np.linalg.eigvalsh(2 / len(x_reg) * A_ls.T @ A_ls).max()
# too_big = Dense(1, n_in=1, rng=np.random.default_rng(0))
# losses_big = []
# for step in range(20):
#     Z = too_big.forward(x_reg)
#     losses_big.append(float(np.mean((Z - t_reg) ** 2)))
#     too_big.backward(2 * (Z - t_reg) / len(x_reg))
#     for name in too_big.params:
#         too_big.params[name] -= 1.2 * (2 / curvature) * too_big.grads[name]
# print(f"stability limit 2/curvature = {2 / curvature:.2f}; at 1.2 times it the loss goes {losses_big[0]:.2f} -> {losses_big[-1]:.3g}")
# assert losses_big[-1] > 10 * losses_big[0]
#
# fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
# axes[0].scatter(x_reg, t_reg, s=10, label="data")
# xs = np.linspace(-1, 1, 2)[:, None]
# axes[0].plot(xs, line.forward(xs), "r", label=f"Dense fit: {slope:.2f}x{icpt:+.2f}")
# axes[0].legend(); axes[0].set_title("One Dense layer = linear regression")
# axes[1].semilogy(losses, label=r"$\alpha = 0.1$")
# axes[1].semilogy(losses_big, label=rf"$\alpha = {1.2 * 2 / curvature:.2f}$ (too large)")
# axes[1].set(xlabel="step", ylabel="MSE", title="Loss during gradient descent"); axes[1].legend()
# ww, bb = np.meshgrid(np.linspace(-1, 4.5, 120), np.linspace(-2.5, 1.5, 120))
# loss_grid = np.mean((ww[..., None] * x_reg.ravel() + bb[..., None] - t_reg.ravel()) ** 2, axis=-1)
# axes[2].contour(ww, bb, np.log(loss_grid), levels=15, cmap="Greys", linewidths=0.6)
# path_arr = np.array(path)
# axes[2].plot(path_arr[:, 0], path_arr[:, 1], ".-", ms=3, label=r"$\theta$ after each step")
# axes[2].plot(slope_ls, icpt_ls, "r*", ms=12, label="least squares")
# axes[2].set(xlabel="slope W", ylabel="intercept b", title="The path downhill, on contours of the MSE"); axes[2].legend()
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
# * Dense: $Z = XW + \mathbf 1_m b^\top$; $dW = X^\top dZ$, $db = dZ^\top\mathbf 1_m$, $dX = dZ\,W^\top$ — no $1/m$
#   (it lives in the loss). The original's $a_{kj}$ should read $a_{jk}$.
# * The gradient check agrees to about $10^{-10}$ (the pass mark is $10^{-7}$).
# * Gradient descent, $\theta \leftarrow \theta - \alpha\,d\theta$, lowers the loss by about $\alpha\lVert d\theta\rVert^2$ per step
#   while $\alpha$ is small enough; too large a step overshoots and diverges.
#
# ## Exercises
#
# 1. Add a `use_bias=False` option and check it.
# 2. Put the $1/m$ back into `backward` (the original's double division) and rerun the
#    regression: how many more steps does it need for the same loss, with a batch of 64?
# 3. Why does `dX` not depend on `b`?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Without a bias the layer is $Z = XW$: no `b` in `params` or `grads`, and $dW$, $dX$ unchanged. A subclass
# that builds as Dense does and then drops `b` is enough; its output is Dense's minus the bias, and it passes the check.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     class DenseNoBias(Dense):
#         """Dense with use_bias=False: Z = X W."""
#         def build(self, n_in, rng=None, dtype=np.float32):
#             super().build(n_in, rng, dtype)
#             del self.params["b"], self.grads["b"]
#         def forward(self, X, training=False):
#             X = self._check_input(X)
#             self._cache = X
#             return X @ self.params["W"]
#         def backward(self, dY):
#             X = self._cached()
#             dZ = self._check_upstream(dY, (X.shape[0], self.units))
#             self.grads["W"] = X.T @ dZ
#             return dZ @ self.params["W"].T
#
#     no_bias = DenseNoBias(5, rng=rng)
#     errors_nb = check_layer(no_bias, rng.standard_normal((7, 4)), rng)
#     print("no bias:", {k: f"{v:.1e}" for k, v in errors_nb.items()})
#     with_bias = Dense(5, n_in=4, rng=rng)
#     with_bias.params["b"][:] = rng.standard_normal(5)
#     no_bias.params["W"] = with_bias.params["W"].astype(np.float64)
#     X_nb = rng.standard_normal((7, 4))
#     assert set(errors_nb) == {"X", "W"} and max(errors_nb.values()) < 1e-7
#     assert np.allclose(no_bias.forward(X_nb), with_bias.forward(X_nb) - with_bias.params["b"], atol=1e-6)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# A second $1/m$ scales every gradient by $1/64$: gradient descent then takes steps of $\alpha/64$. On this
# quadratic loss each mode of the error shrinks by a factor $1-\alpha\lambda$ per step, so reaching the same loss needs
# roughly 64 times as many steps (a little more, since $(1-\alpha\lambda/64)^{64} > 1-\alpha\lambda$). The measurement:
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     class DenseDividedTwice(Dense):
#         """The original's double division: the parameter gradients divided by m once more."""
#         def backward(self, dY):
#             dX = super().backward(dY)
#             for g in self.grads.values():
#                 g /= len(dY)
#             return dX
#
#     def steps_to_reach(layer, target, lr=0.1, max_steps=50_000):
#         for step in range(max_steps):
#             Z = layer.forward(x_reg)
#             if np.mean((Z - t_reg) ** 2) <= target:
#                 return step
#             layer.backward(2 * (Z - t_reg) / len(x_reg))
#             for name in layer.params:
#                 layer.params[name] -= lr * layer.grads[name]
#         return max_steps
#
#     target = losses[99]                                        # the loss the correct layer reaches after 100 steps
#     start = {"W": np.array([[path[0][0]]]), "b": np.array([path[0][1]])}
#     correct_layer, twice_layer = Dense(1, n_in=1), DenseDividedTwice(1, n_in=1)
#     for layer in (correct_layer, twice_layer):
#         layer.params["W"][:], layer.params["b"][:] = start["W"], start["b"]    # the same starting point
#     n_correct, n_twice = steps_to_reach(correct_layer, target), steps_to_reach(twice_layer, target)
#     print(f"steps to reach MSE {target:.4f}: correct {n_correct}, with 1/m twice {n_twice} ({n_twice / n_correct:.0f} times as many)")
#     assert 99 <= n_correct <= 101 and 50 < n_twice / n_correct < 100

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# $dX_{ij} = \sum_k dZ_{ik} W_{jk}$ involves only the local derivative $\partial Z_{ik}/\partial X_{ij} = W_{jk}$, and $b$
# enters $Z$ as an added constant, whose derivative with respect to $X$ is zero. (The *upstream* gradient $dZ$ may depend on
# $b$ through the layers above, but the layer's own backward never reads $b$.) Two biases, one $dZ$: the same $dX$.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     d_a, d_b = Dense(3, n_in=4, rng=np.random.default_rng(9)), Dense(3, n_in=4, rng=np.random.default_rng(9))
#     d_b.params["b"][:] = 100 * rng.standard_normal(3)
#     X_b, dZ_b = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
#     d_a.forward(X_b); d_b.forward(X_b)
#     print("same dX for b = 0 and b = 100 * noise:", np.array_equal(d_a.backward(dZ_b), d_b.backward(dZ_b)))
#     assert np.array_equal(d_a.backward(dZ_b), d_b.backward(dZ_b))

# %% [markdown]
# ---
# [← 00 — conventions](00_conventions.ipynb) · [begin here](00_begin_here.ipynb) · **01 — dense** · [next: 02 — activations →](02_activations.ipynb)
