# %% [markdown]
# [← begin here](00_begin_here.ipynb) · [begin here](00_begin_here.ipynb) · **00 — conventions** · [next: 01 — dense →](01_dense.ipynb)
#
# # 00 — Conventions, matrix calculus and the gradient check
#
# This course builds a neural-network library, `diydnn`, from nothing but NumPy.
# Every chapter derives a piece (a layer, a loss, an optimiser), writes it, and
# **proves it with a number** before it is used. This first chapter fixes the
# conventions every later chapter relies on, and builds the one tool that would
# have saved [the original *diy-dnn* project](https://github.com/tomjwalker/diy-dnn): a numerical gradient check.
#
# The code cells of this notebook *are* the module `diydnn/_00_conventions.py`
# (jupytext pairing). Cells that only teach carry the tag `active-ipynb`: they
# run here and are commented out in the module.

# %%
"""Chapter 00: conventions, and the numerical gradient check used by every chapter."""
import base64
import html
import io
import os
import sys
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Rows are samples
#
# A mini-batch of $m$ samples with $n$ features is a matrix $X \in \mathbb{R}^{m \times n}$:
# **one row per sample** ("batch-first"). This is how NumPy, Keras and PyTorch
# store data, and it makes a mini-batch a contiguous slice `X[i:i+m]`.
#
# A dense layer with $n_{in}$ inputs and $n_{out}$ outputs then reads
#
# $$Z = X W + \mathbf 1_m b^\top, \qquad X \in \mathbb{R}^{m\times n_{in}},\; W \in \mathbb{R}^{n_{in}\times n_{out}},\; b \in \mathbb{R}^{n_{out}},\; Z \in \mathbb{R}^{m\times n_{out}}.$$
#
# Vectors are columns, so the bias $b$ is a column of $n_{out}$ numbers, and $\mathbf 1_m b^\top$ (a column of $m$
# ones times the row $b^\top$) is $b^\top$ repeated on each of the $m$ rows. In code this is `X @ W + b` with `b` of shape
# `(n_out,)`: NumPy's broadcasting does the repeating, and we write the short form $Z = XW + b$ when nothing
# depends on it. [The original *diy-dnn*](https://github.com/tomjwalker/diy-dnn) stored the
# transposed layout, **features × samples** (one *column* per sample), and wrote
#
# $$Z' = W' A + b'\mathbf 1_m^\top, \qquad A \in \mathbb{R}^{n_{in}\times m},\; W' \in \mathbb{R}^{n_{out}\times n_{in}},\; b' \in \mathbb{R}^{n_{out}}.$$
#
# The two are the same computation: transpose the batch-first equation,
# $Z^\top = W^\top X^\top + b\,\mathbf 1_m^\top$, and read $A = X^\top$, $W' = W^\top$, $b' = b$, $Z' = Z^\top$.
# The check below computes both and compares.

# %% tags=["active-ipynb"]
# m, n_in, n_out = 4, 3, 2
# X = rng.standard_normal((m, n_in))       # batch-first: rows are samples
# W = rng.standard_normal((n_in, n_out))
# b = rng.standard_normal(n_out)
#
# Z = X @ W + b                              # ours; broadcasting repeats b on every row
# assert np.array_equal(Z, X @ W + np.outer(np.ones(m), b))   # ... which is X W + 1_m b^T
# A, W_t, b_t = X.T, W.T, b[:, None]         # the original's layout
# Z_t = W_t @ A + b_t                        # Z' = W'A + b' 1_m^T (broadcast over the columns)
# print("Z shape", Z.shape, "  Z' shape", Z_t.shape)
# print("max |Z - Z'^T| =", np.abs(Z - Z_t.T).max())
# assert np.allclose(Z, Z_t.T)

# %% [markdown]
# Why rows = samples: slicing a batch out of a data set, shuffling it and
# iterating over it all act on the first axis; `X[i]` is one sample; and the
# libraries a learner meets next use the same layout, so shapes read the same.
# The price is only that the matrix in a formula sits to the *right* of the
# data ($XW$ instead of $WA$).

# %% [markdown]
# ## 2. Matrix calculus in one table
#
# We train by gradient descent on a **scalar** loss $L$. For any array $V$ the
# network uses, we write $dV := \partial L / \partial V$. The one rule to remember:
#
# > **A gradient has the shape of what it differentiates.** $dW$ has the shape of $W$,
# > $dX$ the shape of $X$.
#
# For derivatives of non-scalars one rule fixes every shape: the derivative of an output of shape $P$
# by an input of shape $Q$ has shape $P \times Q$ — **the output's axes first, then the input's** (for
# vectors this is the *numerator layout*; a scalar has no axes, and we write it as a single 1 only where it
# shows a row or a column). The table applies the rule; every entry follows from it.
#
# | derivative of … by … | scalar $x$ | vector $\mathbf{x}\in\mathbb{R}^{q}$ | matrix $X\in\mathbb{R}^{q\times r}$ |
# |---|---|---|---|
# | **scalar** $y$ | $\frac{\partial y}{\partial x}$: scalar | $\frac{\partial y}{\partial \mathbf{x}}$: $1\times q$ (a row) | $\frac{\partial y}{\partial X}$: $q\times r$, the shape of $X$ — this is $dX$ |
# | **vector** $\mathbf{y}\in\mathbb{R}^{p}$ | $p\times 1$ (a column) | $p\times q$ (the Jacobian) | $p\times q\times r$ (a tensor) |
# | **matrix** $Y\in\mathbb{R}^{p\times s}$ | $p\times s$ | $p\times s\times q$ | $p\times s\times q\times r$ |
#
# (Some texts write $\partial y/\partial X$ transposed, $r\times q$, to make it "numerator layout" for matrices too;
# we never do: with output axes first, the gradient of a scalar has exactly the shape of the variable.)
#
# The tensors in the lower right never need to be built: backpropagation only ever
# needs a *vector–Jacobian product*, "upstream gradient times local derivative",
# and for every layer in this course that product has a closed form with plain
# matrix products. For a scalar loss we store the gradient with the shape of the
# variable (the rule above); the checks below compare exactly these arrays.

# %% tags=["active-ipynb"]
# # A numerical check of the table's "shape" column for y = sum(X**2):
# # dy/dX has the shape of X, and equals 2X.
# Xs = rng.standard_normal((2, 3))
# y = lambda: float(np.sum(Xs ** 2))
# dXs_num = np.zeros_like(Xs)
# for idx in np.ndindex(Xs.shape):
#     old = Xs[idx]
#     Xs[idx] = old + 1e-6; up = y()
#     Xs[idx] = old - 1e-6; down = y()
#     Xs[idx] = old
#     dXs_num[idx] = (up - down) / 2e-6
# print("shape of dX:", dXs_num.shape, "  max |numerical - 2X| =", np.abs(dXs_num - 2 * Xs).max())
# assert dXs_num.shape == Xs.shape and np.allclose(dXs_num, 2 * Xs, atol=1e-6)

# %% [markdown]
# ## 3. A 2 × 3 dense layer by hand
#
# Take one sample with two features, $X = [x_1\; x_2]$ ($m=1$, $n_{in}=2$), and three
# outputs ($n_{out}=3$):
#
# $$z_k = x_1 W_{1k} + x_2 W_{2k} + b_k, \qquad k = 1,2,3.$$
#
# With $L$ some scalar of $Z$ and $dZ = [\delta_1\;\delta_2\;\delta_3]$ given, the chain rule term by term gives
#
# $$\frac{\partial L}{\partial W_{jk}} = \sum_{k'} \frac{\partial L}{\partial z_{k'}}\frac{\partial z_{k'}}{\partial W_{jk}} = \delta_k\, x_j, \qquad
# \frac{\partial L}{\partial b_k} = \delta_k, \qquad
# \frac{\partial L}{\partial x_j} = \sum_k \delta_k W_{jk}.$$
#
# Collected into arrays these are $dW = X^\top dZ$ (a $2\times 3$ outer product, the shape of $W$),
# $db = dZ^\top$ (a column, the shape of $b$) and $dX = dZ\,W^\top$ (shape $1 \times 2$, the shape of $X$). Concretely, with
# $X=[1\;2]$, $W=\begin{bmatrix}1&0&-1\\2&1&0\end{bmatrix}$, $b=[0\;1\;2]^\top$ and $dZ=[1\;-1\;2]$:
#
# * $Z = [1\cdot1+2\cdot2+0,\; 0+2+1,\; -1+0+2] = [5\;\; 3\;\; 1]$
# * $dW = \begin{bmatrix}1\cdot1 & 1\cdot(-1) & 1\cdot 2\\ 2\cdot 1 & 2\cdot(-1) & 2\cdot2\end{bmatrix} = \begin{bmatrix}1&-1&2\\2&-2&4\end{bmatrix}$, $db = [1\;-1\;2]^\top$
# * $dX = [1\cdot1 + (-1)\cdot0 + 2\cdot(-1),\; 1\cdot2+(-1)\cdot1+2\cdot0] = [-1\;\; 1]$
#
# The cell checks the hand computation against NumPy.

# %% tags=["active-ipynb"]
# X1 = np.array([[1.0, 2.0]])
# W1 = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
# b1 = np.array([0.0, 1.0, 2.0])
# dZ1 = np.array([[1.0, -1.0, 2.0]])
# assert np.array_equal(X1 @ W1 + b1, [[5.0, 3.0, 1.0]])
# assert np.array_equal(X1.T @ dZ1, [[1, -1, 2], [2, -2, 4]])
# assert np.array_equal(dZ1.sum(axis=0), [1, -1, 2])
# assert np.array_equal(dZ1 @ W1.T, [[-1.0, 1.0]])
# print("hand computation confirmed: Z =", X1 @ W1 + b1, " dX =", dZ1 @ W1.T)

# %% [markdown]
# ## 4. The numerical gradient check
#
# Any differentiable scalar function can be differentiated numerically by
# **central differences**:
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}, \qquad \text{error } O(\varepsilon^2).$$
#
# We compare with the analytic gradient by the **relative error**
#
# $$\mathrm{rel}(a, n) = \frac{\lVert a - n\rVert_2}{\max(\lVert a\rVert_2 + \lVert n\rVert_2,\ 10^{-300})},$$
#
# which does not depend on the scale of the gradient. In float64 with $\varepsilon = 10^{-6}$ a
# correct gradient gives about $10^{-8}$ or smaller (usually $10^{-10}$); a wrong one gives $10^{-2}$ to $1$.
# **The pass mark of every gradient check in this course is a relative error below $10^{-7}$** — stated here
# once; later chapters assert `< 1e-7` and refer back to it. It sits an order of magnitude above what
# rounding leaves in a long chain of layers, and five orders below what any real mistake gives. (It is the mark for
# comparisons with *central differences*; where two exact formulas are compared — a fast form against an explicit
# one, autodiff against a backward — no step error enters, and the checks assert much tighter, down to $10^{-12}$.)
# Float32 has only ~7 digits, so gradient checks always run in **float64**.
#
# A layer maps an array $X$ to an array $Y$, not to a scalar. We make a scalar by
# **projecting on a random upstream gradient** $G$ of the shape of $Y$:
#
# $$f(X) = \sum_{ij} Y_{ij}(X)\, G_{ij} \quad\Longrightarrow\quad \frac{\partial f}{\partial X} = \text{backward}(G).$$
#
# $G$ must be random. With $G$ all ones, $f$ is the plain sum of the outputs, and for
# layers whose outputs sum to a constant (softmax rows sum to 1, BatchNorm outputs
# sum to $m\beta$) the true gradient is **identically zero** — a wrong backward that
# also returns zeros passes. [The original project](https://github.com/tomjwalker/diy-dnn) never ran such a check.

# %%
def rel_error(a, n):
    """Relative error ||a - n|| / (||a|| + ||n||) between two arrays, as a float."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {n.shape}")
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300))


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function f() with respect to the array x.

    x is perturbed in place, one entry at a time, and restored; f takes no
    arguments and reads x (and anything else) from its closure. Returns an
    array of x's shape.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical_gradient: x must be float64 for a meaningful check, got {x.dtype}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        f_plus = f()
        x[idx] = old - eps
        f_minus = f()
        x[idx] = old  # restore before the next entry
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


# %% [markdown]
# The check on a function with a known gradient: $f(x) = \sum_i \sin(x_i)\, x_i^2$ has
# $\partial f/\partial x_i = \cos(x_i)\,x_i^2 + 2 x_i \sin(x_i)$.

# %% tags=["active-ipynb"]
# x = rng.standard_normal((3, 4))
# f = lambda: float(np.sum(np.sin(x) * x ** 2))
# exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
# num = numerical_gradient(f, x)
# err = rel_error(exact, num)
# print(f"relative error, correct gradient: {err:.2e}")
# assert err < 1e-7                                # the course's pass mark
# # and a wrong gradient (a dropped factor 2) is caught:
# err_wrong = rel_error(np.cos(x) * x ** 2 + x * np.sin(x), num)
# print(f"relative error, wrong gradient:   {err_wrong:.2e}")
# assert err_wrong > 1e-2

# %% [markdown]
# How does the error depend on $\varepsilon$? Too large and the $O(\varepsilon^2)$
# truncation error dominates; too small and round-off, about $u/\varepsilon$ with $u$ the unit round-off
# ($10^{-16}$ in float64, $6\cdot 10^{-8}$ in float32), takes over. The sum of $\varepsilon^2$ and $u/\varepsilon$ is
# smallest near $\varepsilon \approx u^{1/3}$. In float64 that puts the bottom of the "V" at
# $\varepsilon \approx 10^{-5}$–$10^{-6}$, with errors near $10^{-11}$. In float32 it moves to
# $\varepsilon \approx 4\cdot 10^{-3}$, and even there the error is about $10^{-5}$ — far above our pass mark,
# and far above a correct float64 check at any step from $10^{-8}$ to $10^{-4}$. That is why we check in float64.
# The cell measures both curves and asserts where their bottoms are.

# %% tags=["active-ipynb"]
# epsilons = np.logspace(-12, -1, 23)
# errs64 = [rel_error(exact, numerical_gradient(f, x, eps=e)) for e in epsilons]
# x32 = x.astype(np.float32)
# def num32(eps):
#     g = np.zeros_like(x32)
#     for idx in np.ndindex(x32.shape):
#         old = x32[idx]
#         x32[idx] = old + np.float32(eps); up = np.sum(np.sin(x32) * x32 ** 2)
#         x32[idx] = old - np.float32(eps); down = np.sum(np.sin(x32) * x32 ** 2)
#         x32[idx] = old
#         g[idx] = (up - down) / np.float32(2 * eps)
#     return g
# errs32 = [rel_error(exact, num32(e)) for e in epsilons]
# fig, ax = plt.subplots(figsize=(6, 3.5))
# ax.loglog(epsilons, errs64, "o-", label="float64")
# ax.loglog(epsilons, errs32, "s-", label="float32")
# ax.set(xlabel=r"step $\varepsilon$", ylabel="relative error", title="Central differences: error against step")
# ax.legend(); ax.grid(True, which="major", alpha=0.3)
# best, best32 = epsilons[int(np.argmin(errs64))], epsilons[int(np.argmin(errs32))]
# print(f"best float64 step: {best:.0e} (error {min(errs64):.1e});  best float32 step: {best32:.0e} (error {min(errs32):.1e})")
# assert 1e-7 <= best <= 1e-4 and 1e-3 <= best32 <= 1e-2          # u^(1/3): 5e-6 and 4e-3
# assert min(errs64) < 1e-9 and 1e-6 < min(errs32) < 1e-4
# plt.show()

# %% [markdown]
# ### Checking a layer and a loss
#
# Every layer in the course obeys one contract (details in chapter 01): `forward(X, training)`
# returns `Y` and remembers what `backward` needs; `backward(dY)` returns `dX` and stores
# the parameter gradients in `layer.grads`, a dict with the same keys as `layer.params`.
# `check_layer` uses exactly that contract, so it works on any layer, on every
# parameter, and later on a whole model. `check_loss` does the same for a loss, whose
# `forward(y_hat, y)` returns a scalar and whose `backward()` returns the gradient with
# respect to `y_hat`.

# %%
def check_layer(layer, X, rng, training=True, eps=1e-6):
    """Gradient check of a layer: returns {"X": rel_error, <param name>: rel_error, ...}.

    The scalar checked is f = sum(forward(X) * G) with a random upstream gradient
    G ~ N(0, 1) drawn from `rng`, so that backward(G) must equal df/dX and the
    layer's grads must equal df/dparam. Everything runs in float64.
    """
    X = np.array(X, dtype=np.float64)  # a copy: we perturb it
    Y = layer.forward(X, training=training)
    for name, p in layer.params.items():
        if p.dtype != np.float64:
            raise ValueError(f"check_layer: parameter {name!r} of {layer!r} is {p.dtype}; build the layer on float64 input")
    G = rng.standard_normal(Y.shape)
    dX = layer.backward(G)
    analytic = {"X": dX}
    analytic.update({name: g.copy() for name, g in layer.grads.items()})

    def f():
        return float(np.sum(layer.forward(X, training=training) * G))

    errors = {"X": rel_error(analytic["X"], numerical_gradient(f, X, eps))}
    for name, p in layer.params.items():
        errors[name] = rel_error(analytic[name], numerical_gradient(f, p, eps))
    return errors


def check_loss(loss, y_hat, y, eps=1e-6):
    """Gradient check of a loss: relative error between loss.backward() and central differences."""
    y_hat = np.array(y_hat, dtype=np.float64)
    loss.forward(y_hat, y)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: float(loss.forward(y_hat, y)), y_hat, eps)
    return rel_error(analytic, numeric)


# %% [markdown]
# A first use, before any real layer exists: a "layer" that squares its input
# element-wise, $Y = X \odot X$, so $dX = 2X \odot dY$ — and a faulty version that forgets
# the factor 2. The check passes the first and fails the second.

# %% tags=["active-ipynb"]
# class Square:
#     params, grads = {}, {}
#     def __init__(self, factor=2.0): self.factor = factor
#     def forward(self, X, training=False):
#         self.X = X
#         return X * X
#     def backward(self, dY):
#         return self.factor * self.X * dY
#
# good = check_layer(Square(), rng.standard_normal((5, 3)), rng)
# bad = check_layer(Square(factor=1.0), rng.standard_normal((5, 3)), rng)
# print("correct square layer:", good)
# print("faulty square layer: ", bad)
# assert good["X"] < 1e-7 and bad["X"] > 0.1

# %% [markdown]
# ## 5. Course conventions in code
#
# * **Randomness** comes from one `np.random.Generator`, created once with a seed and
#   passed in as `rng=`. Nothing in `diydnn` calls `np.random.seed`: [the original](https://github.com/tomjwalker/diy-dnn)
#   re-seeded the global generator with 42 inside every Dense layer, so all its layers
#   of one width started with identical weights.
# * **dtype**: training runs in float32; gradient checks in float64.
# * **One $1/m$**: losses are means over the batch, so the $1/m$ appears once, in the
#   loss gradient, and never again in a layer (the original divided by $m$ twice).
# * **Quick mode**: the test suite sets `DIYDNN_QUICK=1` to shrink long runs;
#   a shrunk run must still show that learning happened.
# * **Nothing is written half**: every file goes to a temporary file first and is renamed into
#   place (`write_atomically`), so a crash leaves the old file or the new one, never a broken one.
# * **Figures** that the README shows are written to `media/` — by the full run only,
#   so a quick test run never overwrites them.

# %%
def quick_mode():
    """True when DIYDNN_QUICK is set to a non-empty value other than "0" (the test suite sets it)."""
    return os.environ.get("DIYDNN_QUICK", "") not in ("", "0")


def media_dir():
    """The repository's media/ folder (where the README's figures live)."""
    return Path(__file__).resolve().parent.parent / "media"


def _temporary_name(path, pid):
    """The temporary file write_atomically uses for `path` in process `pid`: .<name>.<pid>.tmp beside it."""
    return path.with_name(f".{path.name}.{pid}.tmp")


def _process_alive(pid):
    try:
        os.kill(pid, 0)            # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                # exists but belongs to someone else, or we cannot tell: keep its file
    return True


def remove_stale_temporaries(path):
    """Delete temporary files of `path` left by a write_atomically that was killed; return their names.

    Only files named exactly .<name>.<pid>.tmp beside `path` whose process no longer runs: another
    target's temporaries, and a save in progress in a live process, are never touched.
    """
    path = Path(path)
    prefix, removed = f".{path.name}.", []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return removed
    for p in candidates:
        pid = p.name[len(prefix):-len(".tmp")]
        if not pid.isdigit() or p != _temporary_name(path, int(pid)):
            continue               # e.g. .a.npz.old.7.tmp belongs to the target a.npz.old, not to a.npz
        if int(pid) == os.getpid() or not _process_alive(int(pid)):
            try:
                p.unlink()
                removed.append(p.name)
            except FileNotFoundError:
                pass
    return removed


# %%
def write_atomically(path, write):
    """Create or replace the file `path` so that nobody ever sees half of it.

    write(f) fills a temporary file beside `path` (opened "wb"); it is flushed to disk and then
    renamed over `path` with os.replace, which is atomic. If anything fails, the temporary file is
    removed and the old file, if there was one, is untouched. Temporary files of the same `path`
    left by a killed process are removed first (remove_stale_temporaries).
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = _temporary_name(path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())   # on disk before the rename, so a power cut cannot leave an empty file
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_figure(fig, filename):
    """Save a matplotlib figure to media/<filename>, atomically; skipped in quick mode.

    Returns the path written, or None when skipped.
    """
    if quick_mode():
        return None
    path = media_dir() / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=110,
                                                 bbox_inches="tight"))
    return path

# %% [markdown]
# `write_atomically` is what every file the library writes goes through (figures, model files,
# checkpoints, run results). The check: a write that fails half-way leaves the old file as it was,
# and no temporary file behind. A process that is *killed* mid-write cannot clean up, and leaves
# `.data.bin.<pid>.tmp`; the next save of the same file removes such leftovers — only files named exactly
# so, whose process no longer runs, so another file's temporaries and a save in progress are never touched.

# %% tags=["active-ipynb"]
# import tempfile
# folder = Path(tempfile.mkdtemp())
# target = folder / "data.bin"
# write_atomically(target, lambda f: f.write(b"old contents"))
# def crash_half_way(f):
#     f.write(b"new conte")
#     raise RuntimeError("simulated crash")
# try:
#     write_atomically(target, crash_half_way)
# except RuntimeError:
#     pass
# print(target.read_bytes(), sorted(p.name for p in folder.iterdir()))
# assert target.read_bytes() == b"old contents" and [p.name for p in folder.iterdir()] == ["data.bin"]
#
# import subprocess, sys
# killed = subprocess.Popen([sys.executable, "-c", "pass"]); killed.wait()   # a process id that no longer runs
# leftovers = [f".data.bin.{killed.pid}.tmp", f".other.bin.{killed.pid}.tmp", f".data.bin.{os.getpid()}x.tmp"]
# for name in leftovers:
#     (folder / name).write_bytes(b"half")
# write_atomically(target, lambda f: f.write(b"new contents"))
# remaining = sorted(p.name for p in folder.iterdir())
# print("after the next save:", [name.replace(str(killed.pid), "<dead pid>").replace(str(os.getpid()), "<pid>") for name in remaining])
# assert remaining == sorted(["data.bin", *leftovers[1:]]) and target.read_bytes() == b"new contents"

# %% [markdown]
# **Answers stay hidden until asked for.** Every chapter ends with exercises and worked solutions. JupyterLab
# shows a solution cell collapsed, but running it (Run All) brings its output back, right under the question.
# So a solution runs inside `hidden_output()`: what the block prints, and the figures it draws, are shown in a
# closed *details* element — a bar that says "Output of the solution", opened by a click. In a plain viewer (a
# code host) the same element stays closed too. Outside a notebook the text is simply printed.

# %%
@contextmanager
def hidden_output(summary="Output of the solution"):
    """Collect what the block prints and the matplotlib figures it opens; show them in a closed <details> element.

    Used by every worked solution, so that running a notebook does not print the answers under the questions.
    A figure is shown by leaving it open at the end of the block (no plt.show() inside): it is then drawn into
    the element and closed. Exceptions pass through; what was printed before one is shown all the same.
    """
    plt = sys.modules.get("matplotlib.pyplot")            # only if the notebook uses matplotlib already
    figures_before = set(plt.get_fignums()) if plt else set()
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    finally:
        images = []
        plt = sys.modules.get("matplotlib.pyplot")
        for number in (plt.get_fignums() if plt else []):
            if number not in figures_before:
                png = io.BytesIO()
                plt.figure(number).savefig(png, format="png", dpi=90, bbox_inches="tight")
                plt.close(number)
                images.append(base64.b64encode(png.getvalue()).decode("ascii"))
        _show_details(summary, printed.getvalue(), images)


def details_bundle(summary, text, images):
    """The display data of a closed <details> element holding `text` and PNG `images` (base64 strings)."""
    body = (f"<pre>{html.escape(text)}</pre>" if text else "") + "".join(
        f'<img src="data:image/png;base64,{png}" alt="figure of the solution">' for png in images)
    return {"text/html": f"<details><summary>{html.escape(summary)} (click to open)</summary>{body}</details>",
            "text/plain": f"{summary}:\n{text}" + (f"[{len(images)} figure(s)]" if images else "")}


def _show_details(summary, text, images):
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:      # a plain Python process: just print
        print(text, end="")
        return
    display(details_bundle(summary, text, images), raw=True)

# %% [markdown]
# The check: the block prints nothing into the cell's output; at its end one display holds the text inside a
# closed element (`capture_output` records what a cell would show).

# %% tags=["active-ipynb"]
# from IPython.utils.capture import capture_output
# with capture_output() as captured:
#     with hidden_output():
#         print("the answer is 42")
# shown = [out.data for out in captured.outputs]
# print("printed directly:", repr(captured.stdout), "| displays:", len(shown), "|", shown[0]["text/html"][:60], "…")
# assert captured.stdout == "" and len(shown) == 1
# assert shown[0]["text/html"].startswith("<details><summary>") and "the answer is 42" in shown[0]["text/html"]
# assert "<details open" not in shown[0]["text/html"]

# %% [markdown]
# ## Summary
#
# * Batches are **rows = samples**: $Z = XW + \mathbf 1_m b^\top$ (in code `X @ W + b`); the original's
#   $Z' = W'A + b'\mathbf 1_m^\top$ is its transpose.
# * Shapes: the derivative of an output of shape $P$ by an input of shape $Q$ has shape $P\times Q$.
# * **A gradient has the shape of what it differentiates**; backprop needs only
#   vector–Jacobian products, never full Jacobian tensors.
# * `numerical_gradient` (central differences), `rel_error`, and `check_layer` / `check_loss`
#   check any layer or loss **in float64 with a random upstream gradient**; a correct
#   gradient gives a relative error of $10^{-8}$ or below, a wrong one $10^{-2}$ or more. The pass mark,
#   everywhere in the course, is $10^{-7}$.
#
# ## Exercises
#
# 1. Replace the central difference by the forward difference $(f(x+\varepsilon)-f(x))/\varepsilon$
#    and redraw the error-against-step plot. Where is its minimum, and why?
# 2. Show that with an all-ones upstream gradient the check of a softmax layer (chapter 02)
#    passes even when its backward returns zeros.
# 3. Write the backward of the original's layout, $Z' = W'A + b'\mathbf 1_m^\top$, and check it with
#    `check_layer` on a tiny class of your own.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# The forward difference has a first-order truncation error, $\tfrac{\varepsilon}{2} f''$, instead of
# $O(\varepsilon^2)$; with round-off $u/\varepsilon$ the sum is smallest at $\varepsilon \approx \sqrt{u} \approx 10^{-8}$ in float64,
# and the best error is about $\sqrt u \approx 10^{-8}$ — a thousand times worse than the central difference's best.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# with hidden_output():
#     def forward_difference(f, x, eps):
#         grad, f0 = np.zeros_like(x), f()
#         for idx in np.ndindex(x.shape):
#             old = x[idx]
#             x[idx] = old + eps
#             grad[idx] = (f() - f0) / eps
#             x[idx] = old
#         return grad
#
#     errs_fwd = [rel_error(exact, forward_difference(f, x, e)) for e in epsilons]
#     best_fwd = epsilons[int(np.argmin(errs_fwd))]
#     print(f"forward difference: best step {best_fwd:.0e}, error {min(errs_fwd):.1e};  central: best error {min(errs64):.1e}")
#     assert 1e-9 <= best_fwd <= 1e-7 and 1e-9 < min(errs_fwd) < 1e-7 and min(errs_fwd) > 100 * min(errs64)
#     fig, ax = plt.subplots(figsize=(6, 3.5))
#     ax.loglog(epsilons, errs64, "o-", label="central, float64")
#     ax.loglog(epsilons, errs_fwd, "^-", label="forward, float64")
#     ax.set(xlabel=r"step $\varepsilon$", ylabel="relative error", title="Forward against central differences")
#     ax.legend(); ax.grid(True, which="major", alpha=0.3)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# With $G = \mathbf 1$ the checked function is $f = \sum_{ij}\mathrm{softmax}(X)_{ij} = m$, a constant, so its
# true gradient is zero and central differences return round-off noise. A backward that returns zeros then
# matches the numerical gradient to $10^{-10}$ *absolutely* — as well as the correct backward does (the relative
# error is meaningless here: it is about 1 for both, since both compare zero with noise). A random $G$ separates them.
# `check_layer` draws $G$ with `rng.standard_normal`; a stand-in generator that returns ones shows the all-ones case.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     from diydnn._02_activations import Softmax
#
#     class ZeroBackwardSoftmax(Softmax):
#         def backward(self, dY):
#             return np.zeros_like(dY)
#
#     class OnesGenerator:
#         """Looks like a Generator to check_layer, but its 'random' upstream gradient is all ones."""
#         def standard_normal(self, shape):
#             return np.ones(shape)
#
#     X_sm = rng.standard_normal((5, 4))
#     G1 = np.ones((5, 4))
#     f_sm = lambda: float(np.sum(Softmax().forward(X_sm) * G1))
#     num_ones = numerical_gradient(f_sm, X_sm)
#     zero_layer, good_layer = ZeroBackwardSoftmax(), Softmax()
#     zero_layer.forward(X_sm); good_layer.forward(X_sm)
#     abs_zero = np.abs(zero_layer.backward(G1) - num_ones).max()
#     abs_good = np.abs(good_layer.backward(G1) - num_ones).max()
#     print(f"all-ones G: max |zero backward - numerical| = {abs_zero:.1e},  max |correct backward - numerical| = {abs_good:.1e}")
#     print("all-ones G, relative errors (both meaningless):", check_layer(ZeroBackwardSoftmax(), X_sm, OnesGenerator())["X"],
#           f"{check_layer(Softmax(), X_sm, OnesGenerator())['X']:.2f}")
#     random_zero, random_good = check_layer(ZeroBackwardSoftmax(), X_sm, rng)["X"], check_layer(Softmax(), X_sm, rng)["X"]
#     print(f"random G: zero backward {random_zero:.1f} (fails), correct backward {random_good:.1e} (passes)")
#     assert abs_zero < 1e-9 and abs_good < 1e-9 and random_zero == 1.0 and random_good < 1e-7

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# With samples as columns, $Z'_{ki} = \sum_j W'_{kj}A_{ji} + b'_k$. The same chain rule as in section 3 gives
# $dW' = dZ'A^\top$ (shape $n_{out}\times n_{in}$), $db' = dZ'\,\mathbf 1_m$ (row sums: the sum over the samples, now the
# second axis) and $dA = W'^\top dZ'$ (shape $n_{in}\times m$) — the transposes of $X^\top dZ$, $dZ^\top\mathbf 1_m$ and $dZ\,W^\top$.
# `check_layer` does not care which axis holds the samples: it perturbs whatever array it is given.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     class DenseColumns:
#         """Z' = W'A + b' 1^T with A of shape (n_in, m): the original's features x samples layout."""
#         def __init__(self, n_in, n_out, rng):
#             self.params = {"W": rng.standard_normal((n_out, n_in)), "b": rng.standard_normal((n_out, 1))}
#             self.grads = {}
#         def forward(self, A, training=False):
#             self.A = A
#             return self.params["W"] @ A + self.params["b"]
#         def backward(self, dZ):
#             self.grads = {"W": dZ @ self.A.T, "b": dZ.sum(axis=1, keepdims=True)}
#             return self.params["W"].T @ dZ
#
#     errors_cols = check_layer(DenseColumns(3, 2, rng), rng.standard_normal((3, 5)), rng)
#     print("original layout, gradient check:", {k: f"{v:.1e}" for k, v in errors_cols.items()})
#     assert max(errors_cols.values()) < 1e-7

# %% [markdown]
# ---
# [← begin here](00_begin_here.ipynb) · [begin here](00_begin_here.ipynb) · **00 — conventions** · [next: 01 — dense →](01_dense.ipynb)
