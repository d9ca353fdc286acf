# %% [markdown]
# [← 02 — activations](02_activations.ipynb) · [begin here](00_begin_here.ipynb) · **03 — cross-entropy** · [next: 03a — computational graph →](03a_computational_graph.ipynb)
#
# # 03 — Categorical cross-entropy, fused with softmax
#
# A classifier outputs probabilities $\hat Y$ (one row per sample, one column per class);
# the labels are $Y$, one-hot rows. The **loss** says with one number how wrong the
# probabilities are, and its gradient starts the backward pass. This chapter derives the
# categorical cross-entropy, its gradient, and the famous simplification when it follows a
# softmax: $dZ = (\hat Y - Y)/m$. It ends with the sanity check every new network deserves:
# overfit a tiny batch.

# %%
"""Chapter 03: categorical cross-entropy (from probabilities, and fused with softmax from logits) and accuracy."""
import numpy as np

from diydnn._01_dense import NonFiniteError, _all_finite
from diydnn._02_activations import PROBABILITY_FLOOR


# %% tags=["active-ipynb"]
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import check_loss, check_layer, numerical_gradient, rel_error
# from diydnn._01_dense import Dense
# from diydnn._02_activations import ReLU, Softmax
# rng = np.random.default_rng(3)

# %% [markdown]
# ## 1. The loss, in sum form and in trace form
#
# For a batch of $m$ samples and $k$ classes, with $Y_{ij} = 1$ if sample $i$ is of class $j$:
#
# $$L = -\frac{1}{m}\sum_{i=1}^{m}\sum_{j=1}^{k} Y_{ij}\,\log \hat Y_{ij}
#     = -\frac{1}{m}\,\mathrm{tr}\!\big(Y^\top \log \hat Y\big),$$
#
# with $\log$ element-wise. Only the true class of each sample contributes, so
# $L = -\frac1m\sum_i \log \hat Y_{i,y_i}$: the mean negative log-probability of the right answer.
# In both forms **the two factors carry the same index pair** (sample $i$, class $j$):
# $\mathrm{tr}(Y^\top \log\hat Y) = \sum_j (Y^\top \log \hat Y)_{jj} = \sum_j\sum_i Y_{ij}\log\hat Y_{ij}$.
# [The original](https://github.com/tomjwalker/diy-dnn) paired mismatched indices ($y_{ij}$ with $\hat y_{ji}$); that is a different number,
# and not even defined unless $m = k$. The cell checks the three correct forms against each other
# and shows the swapped one disagrees.

# %% tags=["active-ipynb"]
# m, k = 5, 5   # square only so that the swapped form can be computed at all
# Y_hat = np.exp(rng.standard_normal((m, k))); Y_hat /= Y_hat.sum(1, keepdims=True)
# labels = rng.integers(0, k, size=m)
# Y = np.eye(k)[labels]
# L_sum = -sum(Y[i, j] * np.log(Y_hat[i, j]) for i in range(m) for j in range(k)) / m
# L_trace = -np.trace(Y.T @ np.log(Y_hat)) / m
# L_pick = -np.mean(np.log(Y_hat[np.arange(m), labels]))
# L_swapped = -np.trace(Y @ np.log(Y_hat)) / m          # y_ij paired with y_hat_ji
# print(f"sum form {L_sum:.6f}   trace form {L_trace:.6f}   true-class form {L_pick:.6f}   swapped indices {L_swapped:.6f}")
# assert np.isclose(L_sum, L_trace) and np.isclose(L_sum, L_pick) and not np.isclose(L_sum, L_swapped)

# %% [markdown]
# ## 2. Its gradient with respect to the probabilities
#
# Each $\hat Y_{ij}$ appears in one term: $\partial L/\partial \hat Y_{ij} = -\frac{1}{m}\,Y_{ij}/\hat Y_{ij}$, i.e.
#
# $$d\hat Y = -\frac{1}{m}\, Y \oslash \hat Y \quad (\oslash\text{: element-wise division}).$$
#
# Here is the **one $1/m$** of the whole backward pass. ([The original](https://github.com/tomjwalker/diy-dnn) also clipped this gradient
# to $[-1, 1]$, which cuts off exactly the large gradients of confidently wrong samples.)
# `CategoricalCrossEntropy` takes probabilities. To keep $\log$ finite its loss clips them to $[\epsilon_0, 1]$ with
# $\epsilon_0$ the smallest positive normal number of the dtype ($1.2\cdot 10^{-38}$ in float32, $2.2\cdot 10^{-308}$ in
# float64), which changes only a probability that underflowed; its gradient divides by $\max(\hat Y, 10^{-12})$,
# for a reason section 3 gives.
#
# Labels come either as integers of shape $(m,)$ in $[0, k)$ or one-hot of shape $(m, k)$;
# anything else is a `ValueError` that names the loss and the shapes or values. A 2-D target must be
# rows of probabilities — entries in $[0, 1]$, each row summing to 1: one-hot rows, or smoothed ones
# (exercise 2) — since section 3's simplification uses $\sum_j Y_{ij} = 1$; a two-hot or all-zero row is refused.

# %%
def _integer_labels(y, k, who):
    """y as a 1-D integer array with every label in [0, k), or a ValueError naming `who` and the bad labels."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{who}: integer labels must have shape (m,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{who}: labels must be integers, got dtype {y.dtype} (first values {y[:5].tolist()}); "
                         f"whole numbers stored as floats can be converted with y.astype(int)")
    if y.size and not _labels_in_range(y, k):          # one O(m) pass; the fancy indexing only on failure
        bad = np.unique(y[(y < 0) | (y >= k)])
        raise ValueError(f"{who}: labels must lie in [0, {k}), got {bad[:5].tolist()}"
                         f"{' and more' if bad.size > 5 else ''}")
    return y


def _labels_in_range(y, k):
    """True if every entry of the non-empty integer array y lies in [0, k).

    One pass instead of min and max: read as unsigned, a negative label of a b-bit type becomes at
    least 2**(b-1), so when k <= 2**(b-1) (always, for int32/int64 labels) one maximum finds both kinds."""
    bits = 8 * y.dtype.itemsize
    if y.dtype.kind == "i" and y.dtype.isnative and k <= 1 << (bits - 1):
        unsigned = y.view(np.uint64) if bits == 64 else y.view(f"u{bits // 8}")   # (a type: faster than a name)
        return bool(np.maximum.reduce(unsigned) < k)
    if y.dtype.kind == "u":
        return bool(np.maximum.reduce(y) < k)
    return bool(y.min() >= 0 and y.max() < k)


def one_hot(y, n_classes, dtype=np.float32):
    """Integer labels of shape (m,), each in [0, n_classes) -> one-hot rows of shape (m, n_classes)."""
    if isinstance(n_classes, (bool, np.bool_)) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"one_hot: n_classes must be a positive integer, got {n_classes!r}")
    return _one_hot(_integer_labels(y, n_classes, "one_hot"), n_classes, dtype)


def _one_hot(y, k, dtype):
    Y = np.zeros((len(y), k), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def _targets(y, shape, who, dtype):
    """Labels y (integers (m,) or one-hot (m, k)) as a one-hot array of `shape`, validated."""
    target = _labels_or_rows(y, shape, who, dtype)
    return _one_hot(target, shape[1], dtype) if target.ndim == 1 else target


# %%
def _labels_or_rows(y, shape, who, dtype):
    """Labels y validated against predictions of `shape`: integer labels (m,) are returned as they are
    (SoftmaxCrossEntropy needs no one-hot array for them), 2-D rows of probabilities in `dtype`."""
    m, k = shape
    y = np.asarray(y)
    if y.ndim == 1:
        if y.shape[0] != m:
            raise ValueError(f"{who}: {y.shape[0]} labels for {m} predictions (labels shape {y.shape}, predictions shape {shape})")
        if y.dtype.kind not in "iu":               # (the dtype's kind: a cheaper test than np.issubdtype, per step)
            raise ValueError(f"{who}: integer labels expected, got dtype {y.dtype}; pass one-hot rows as a 2-D array")
        if not _labels_in_range(y, k):
            _integer_labels(y, k, who)             # raises, naming the bad labels
        return y
    if y.ndim == 2:
        if y.shape != shape:
            raise ValueError(f"{who}: one-hot labels of shape {y.shape} do not match predictions of shape {shape}")
        if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
            raise ValueError(f"{who}: one-hot labels must be real numbers, got dtype {y.dtype}")
        _check_target_rows(y, who)
        return y.astype(dtype, copy=False)
    raise ValueError(f"{who}: labels must be integers of shape (m,) or one-hot of shape (m, k), got shape {y.shape}")


def _check_target_rows(Y, who, tolerance=1e-3):
    """2-D targets must be rows of probabilities: entries in [0, 1], each row summing to 1.

    One-hot rows are the usual case; a smoothed row such as (0.9, 0.05, 0.05) is allowed too, since
    the fused gradient (Y_hat - Y)/m needs only that each row sums to 1 (section 3). The tolerance
    absorbs float32 rounding of soft rows; multi-hot (1, 1, 0) or empty (0, 0, 0) rows are far outside it.
    Three vectorised passes over the m x k array: cheap next to the forward pass.
    """
    lo, hi = Y.min(), Y.max()                    # min/max propagate NaN, so NaN fails here too
    if np.isnan(lo) or np.isnan(hi):
        raise ValueError(f"{who}: one-hot labels contain NaN ({np.count_nonzero(np.isnan(Y))} of {Y.size} entries)")
    if not (lo >= 0 and hi <= 1):
        raise ValueError(f"{who}: one-hot labels must lie in [0, 1], got values from {lo} to {hi}")
    sums = Y.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1) > tolerance)
    if bad.size:
        raise ValueError(f"{who}: each one-hot label row must sum to 1 (exactly one 1 per row, or a row of "
                         f"probabilities); rows {bad[:5].tolist()} sum to {sums[bad[:5]].tolist()}")


def _check_predictions(P, who):
    P = np.asarray(P)
    if P.ndim != 2 or P.shape[0] == 0 or P.shape[1] == 0:
        raise ValueError(f"{who}: predictions must be a non-empty 2-D array (m, n_classes), got shape {P.shape}")
    if P.dtype.kind != "f":                       # floats are real numbers: the usual case skips the dtype tests
        if np.iscomplexobj(P) or not np.issubdtype(P.dtype, np.number):
            raise ValueError(f"{who}: predictions must be real numbers, got dtype {P.dtype}")
        P = P.astype(np.float32)
    if not _all_finite(P):                         # chapter 01: one dot product, exact fallback
        raise NonFiniteError(f"{who}: predictions of shape {P.shape} contain NaN or inf")
    return P


# %%
class Loss:
    """Base class: forward(y_hat, y) returns the mean loss as a float; backward() returns dL/dy_hat."""

    def __init__(self):
        self._cache = None

    def __call__(self, y_hat, y):
        return self.forward(y_hat, y)

    def __repr__(self):
        return f"{type(self).__name__}()"

    def get_config(self):
        return {"name": type(self).__name__}

    def _cached(self):
        if self._cache is None:
            raise ValueError(f"{self!r}: backward() called before forward()")
        return self._cache


def _check_probability_rows(P, who, tolerance=1e-3):
    """Predictions for CategoricalCrossEntropy must be probabilities: values in [0, 1], rows summing to 1.

    Logits (a last Dense without Softmax) are the usual mistake: their loss comes out near 0 or negative and
    training goes nowhere, without a word. The tolerance absorbs float32 rounding of a softmax's rows."""
    lo, hi = float(P.min()), float(P.max())
    sums = P.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1) > tolerance)
    if lo < 0 or hi > 1 + tolerance or bad.size:
        rows = f"; rows {bad[:5].tolist()} sum to {np.round(sums[bad[:5]], 4).tolist()}" if bad.size else ""
        raise ValueError(f"{who}: predictions must be probabilities (values in [0, 1], each row summing to 1, as a "
                         f"Softmax gives), got values from {lo:.3g} to {hi:.3g}{rows}. For logits (a last Dense "
                         f"without Softmax) use SoftmaxCrossEntropy(), which applies the softmax itself, stably")


class CategoricalCrossEntropy(Loss):
    """L = -(1/m) sum Y log(Y_hat), from probabilities Y_hat (rows summing to 1)."""


    def forward(self, Y_hat, y):
        Y_hat = _check_predictions(Y_hat, repr(self))
        _check_probability_rows(Y_hat, repr(self))   # logits here would give a loss near 0, without a word
        Y = _targets(y, Y_hat.shape, repr(self), Y_hat.dtype)
        # the loss is exact for every probability a float holds (the clip only keeps log(0) away) ...
        P = np.clip(Y_hat, np.finfo(Y_hat.dtype).tiny, 1.0)
        self._cache = (P, Y)
        return float(-np.sum(Y * np.log(P)) / Y_hat.shape[0])

    def backward(self):
        P, Y = self._cached()
        # ... its gradient divides by max(P, PROBABILITY_FLOOR), the factor Softmax.backward multiplies by (section 3)
        return -(Y / np.maximum(P, PROBABILITY_FLOOR)) / P.shape[0]  # the one 1/m of the backward pass


# %% tags=["active-ipynb"]
# cce = CategoricalCrossEntropy()
# print(f"loss {cce(Y_hat, labels):.6f} (sum form above: {L_sum:.6f})")
# dY_formula = -(Y / Y_hat) / m
# print(f"-(1/m) Y/Y_hat vs backward(): {rel_error(dY_formula, cce.backward()):.1e}")
# err = check_loss(cce, Y_hat, labels)
# print(f"gradient check of the loss: {err:.1e}")
# assert np.isclose(cce(Y_hat, labels), L_sum) and err < 1e-7          # chapter 00's pass mark

# %% [markdown]
# ## 3. Softmax and cross-entropy together: $dZ = (\hat Y - Y)/m$
#
# Put the softmax of chapter 02 in front: $\hat Y = \mathrm{softmax}(Z)$. Chain the two backward
# passes, for sample $i$:
#
# $$dZ_{i\cdot} = \hat Y_{i\cdot} \odot \Big(d\hat Y_{i\cdot} - \sum_j d\hat Y_{ij}\hat Y_{ij}\Big)
# \quad\text{with}\quad d\hat Y_{ij} = -\frac{Y_{ij}}{m\,\hat Y_{ij}} .$$
#
# Then $\hat Y_{ij}\, d\hat Y_{ij} = -Y_{ij}/m$ and $\sum_j d\hat Y_{ij}\hat Y_{ij} = -\frac1m\sum_j Y_{ij} = -\frac1m$
# (a one-hot row sums to 1). So
#
# $$dZ_{ij} = -\frac{Y_{ij}}{m} + \frac{\hat Y_{ij}}{m}, \qquad dZ = \frac{1}{m}\big(\hat Y - Y\big).$$
#
# Two divisions and a Jacobian collapse into one subtraction — and it is bounded: every entry lies
# in $[-1/m, 1/m]$, so there is nothing to clip. The cell checks it against the chained backward passes.

# %% tags=["active-ipynb"]
# Z = rng.standard_normal((m, k))
# sm_layer = Softmax()
# P = sm_layer.forward(Z)
# cce.forward(P, labels)
# chained = sm_layer.backward(cce.backward())
# fused = (P - Y) / m
# print(f"chained softmax + cross-entropy backward vs (Y_hat - Y)/m: rel. error {rel_error(chained, fused):.1e}")
# assert rel_error(chained, fused) < 1e-12

# %% [markdown]
# **When a probability underflows.** Take logits $(10^4, -10^4, 0)$ with true class 1: $\hat y_1 = e^{-2\cdot 10^4}$
# is 0 in any float format, and $\hat y = (1, 0, 0)$ exactly. At an exactly one-hot $\hat y$ the Jacobian
# $\mathrm{diag}(\hat y) - \hat y\hat y^\top$ is the zero matrix, so the chained backward gives **exactly 0** for the
# most wrong sample of the batch, whatever the upstream gradient — while the true gradient $(\hat Y - Y)/m$ is
# $\pm 1/m$ there. The cure is to keep the two factors that cancel in the derivation equal: the cross-entropy
# gradient divides by $P = \max(\hat Y, \varepsilon)$ and the Softmax backward multiplies by the same $P$, with
# $\varepsilon = 10^{-12}$. Then $P_{ij}\, d\hat Y_{ij} = -Y_{ij}/m$ again, and the derivation above gives
#
# $$dZ = \frac1m\big(\max(\hat Y, \varepsilon) - Y\big),$$
#
# the fused gradient up to $\varepsilon/m$, for every sample. Two choices make it consistent. The **loss** is not
# clipped at $\varepsilon$: a clip is a flat piece of the loss, where the true gradient is 0, so a gradient check
# of a sample more than $-\log\varepsilon = 27.6$ nats wrong would (rightly) see 0 where the backward says $-1/m$.
# The loss clips only at the smallest normal float ($\epsilon_0$ above), to keep $\log 0$ away: it is exact for
# every probability that did not underflow (up to 87 nats per sample in float32, 708 in float64). The
# **gradient** uses $\varepsilon = 10^{-12}$: the factor $1/P$ then stays below $10^{12}$ — harmless here, where the
# Softmax multiplies it by the same $P$ at once, but a $1/\epsilon_0 \approx 10^{38}$ would overflow float32 as soon as
# anything else multiplies it (the faulty Softmax backward of experiment 06). $10^{-12}$ is below float32's
# resolution near 1 ($6\cdot 10^{-8}$), so no probability that matters is changed.
# (`SoftmaxCrossEntropy` below works from the logits and needs none of this.)

# %% tags=["active-ipynb"]
# Z_wrong = np.array([[1e4, -1e4, 0.0], [0.5, -0.3, 0.1]])
# y_wrong = np.array([1, 0])                                 # row 0 is confidently wrong
# sm_w, cce_w = Softmax(), CategoricalCrossEntropy()
# P_w = sm_w.forward(Z_wrong)
# J0 = np.diag(P_w[0]) - np.outer(P_w[0], P_w[0])
# print("softmax of row 0:", P_w[0], "  its Jacobian is zero:", not J0.any())
# cce_w(P_w, y_wrong)
# chained_w = sm_w.backward(cce_w.backward())
# eps_w = 1e-12
# expected_w = (np.maximum(P_w, eps_w) - np.eye(3)[y_wrong]) / 2
# print("chained gradient, row 0:", chained_w[0], "  (max(Y_hat, eps) - Y)/m:", expected_w[0])
# assert not J0.any() and np.allclose(chained_w, expected_w, rtol=1e-12, atol=0)
# assert np.isclose(chained_w[0, 1], -1 / 2) and np.abs(chained_w - (P_w - np.eye(3)[y_wrong]) / 2).max() <= eps_w
#
# Z_far, y_far = np.array([[40.0, -40.0, 0.0]]), np.array([1])   # 80 nats wrong: y_hat_1 = 2e-35, tiny but not 0
# L_far = lambda: cce_w(sm_w.forward(Z_far), y_far)
# loss_far = L_far()
# chained_far = sm_w.backward(cce_w.backward())
# err_far = rel_error(chained_far, numerical_gradient(L_far, Z_far))
# print(f"80 nats wrong: loss {loss_far:.2f} (exact 80.00); chained gradient {chained_far[0]}, "
#       f"vs central differences of the loss: rel. error {err_far:.1e}")
# assert np.isclose(loss_far, 80.0) and err_far < 1e-7

# %% [markdown]
# ## 4. Stable from the logits: log-sum-exp
#
# Computing $\hat Y$ and then $\log\hat Y$ loses precision (and gives $\log 0 = -\infty$) when a
# probability underflows. Instead take the log of the softmax directly:
#
# $$\log \hat Y_{ij} = Z_{ij} - \mathrm{LSE}(Z_{i\cdot}), \qquad
# \mathrm{LSE}(z) = \log\sum_l e^{z_l} = c + \log \sum_l e^{z_l - c},\quad c = \max_l z_l .$$
#
# With $c$ the row maximum, the sum lies in $[1, k]$, so its log is finite and the result is exact
# to rounding. One trap remains: $z_l - c$ itself can overflow. For float32 logits of $\pm 3\cdot 10^{38}$
# the difference $-6\cdot 10^{38}$ is beyond float32's largest number, becomes $-\infty$, and
# $0\cdot(-\infty)$ is NaN. So the loss is computed in float64 (where any float32 difference fits), and float64
# logits are clipped to $\pm\frac14$ of float64's largest number, so that their differences and the sum
# over the batch (taken after dividing by $m$) stay finite: the loss is finite for **any** finite logits. The
# gradient comes back in the logits' dtype. The cells check the identity, the loss for logits of $\pm 10^4$,
# and the extremes.

# %% tags=["active-ipynb"]
# z = rng.standard_normal((4, 6)) * 3
# naive_lse = np.log(np.exp(z).sum(1))
# c = z.max(1)
# print("LSE identity holds:", np.allclose(naive_lse, c + np.log(np.exp(z - c[:, None]).sum(1))))
# assert np.allclose(naive_lse, c + np.log(np.exp(z - c[:, None]).sum(1)))

# %%
LOGIT_LIMIT = 1.7976931348623157e308 / 4   # a quarter of float64's largest number; |logits| beyond it are clipped


class SoftmaxCrossEntropy(Loss):
    """Softmax followed by categorical cross-entropy, computed from the logits Z.

    forward(Z, y) uses log-sum-exp in float64, so it is finite for any finite logits;
    backward() returns dZ = (softmax(Z) - Y) / m in the dtype of Z.

    Integer labels need no one-hot Y: the loss picks log Y_hat at each row's label, and the
    backward subtracts 1 there. The numbers are the same as with Y (a sum with one term 1 * x is x).
    """

    def forward(self, Z, y):
        Z = _check_predictions(Z, repr(self))
        m, k = Z.shape
        target = _labels_or_rows(y, Z.shape, repr(self), Z.dtype)   # labels (m,), or rows Y (m, k)
        # float64 and a clip: Z - max(Z) of float32 logits of +-3e38 overflows float32, not float64;
        # float64 logits are clipped to +-LOGIT_LIMIT so that the difference stays below float64's max
        Z64 = Z.astype(np.float64)                   # a copy, so the clip below never touches the caller's Z
        if Z.dtype.itemsize >= 8:                    # float32 logits are far inside the limit
            np.clip(Z64, -LOGIT_LIMIT, LOGIT_LIMIT, out=Z64)
        # the row maxima, from a (k, m) copy: NumPy reduces a few long rows much faster than many short ones
        # (for k = 10 classes, half the time); a maximum is exact whichever way it is taken
        Z64 -= np.maximum.reduce(Z64.T.copy(), axis=0)[:, None]   # shifted (in place: Z64 is our own copy)
        log_sum = np.log(np.add.reduce(np.exp(Z64), axis=1, keepdims=True))
        log_probs = np.subtract(Z64, log_sum, out=Z64)   # log softmax(Z), every entry finite
        Y_hat = np.exp(log_probs).astype(Z.dtype, copy=False)
        if target.ndim == 1:
            if target.dtype != np.intp:                    # (uint64 + int64 would give floats)
                target = target.astype(np.intp)
            at_label = np.arange(0, m * k, k) + target     # flat index of each row's label
            self._cache = (Y_hat, at_label)
            per_sample = -log_probs.take(at_label)         # -log Y_hat at the label
        else:
            self._cache = (Y_hat, target)
            per_sample = -np.einsum("ij,ij->i", target, log_probs)
        # each per-sample loss is <= 2 LOGIT_LIMIT + log k: finite; divide first, so that the sum cannot overflow
        return float(np.add.reduce(per_sample / m))

    def backward(self):
        Y_hat, target = self._cached()
        m = Y_hat.shape[0]
        if target.ndim == 1:                       # integer labels: target is the flat index of each label
            dZ = Y_hat.copy()
            dZ.reshape(-1)[target] -= 1            # Y_hat - Y, in place
            dZ /= m
            return dZ
        return (Y_hat - target) / m


# %%
def accuracy(y_hat, y):
    """Fraction of rows whose largest entry (of probabilities or logits) is the true class."""
    y_hat = np.asarray(y_hat)
    y = np.asarray(y)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    if y_hat.ndim != 2 or labels.shape != (y_hat.shape[0],) or y_hat.shape[0] == 0:
        raise ValueError(f"accuracy: predictions of shape {y_hat.shape} do not match labels of shape {y.shape}")
    if y.ndim == 2 and y.shape != y_hat.shape:
        raise ValueError(f"accuracy: one-hot labels of shape {y.shape} do not match predictions of shape {y_hat.shape}")
    _integer_labels(labels, y_hat.shape[1], "accuracy")   # a label >= k would silently count as wrong
    return float(np.mean(y_hat.argmax(axis=1) == labels))

# %% tags=["active-ipynb"]
# sce = SoftmaxCrossEntropy()
# big = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [0.0, 0.0, 0.0]])
# loss_big = sce(big, np.array([1, 2, 0]))
# # exact: row 0 true class 1 -> 2e4; row 1 true class 2 -> 0 (up to e^-2e4); row 2 -> log 3
# print(f"loss with logits of ±1e4: {loss_big:.4f} (exact {(2e4 + np.log(3)) / 3:.4f});  gradient finite:", np.isfinite(sce.backward()).all())
# with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
#     print("naive log(softmax) of the same logits:", np.log(np.exp(big) / np.exp(big).sum(1, keepdims=True))[0])
# assert np.isclose(loss_big, (2e4 + np.log(3)) / 3) and np.isfinite(sce.backward()).all()
#
# for Z_ext in (np.array([[3e38, -3e38, 0.0]], dtype=np.float32), np.array([[1.7e308, -1.7e308, 0.0]])):
#     with np.errstate(over="raise", invalid="raise"):
#         loss_ext = sce(Z_ext, np.array([1]))
#     print(f"{Z_ext.dtype} logits {Z_ext[0, 0]:.1e}: loss {loss_ext:.4g}, gradient {sce.backward()[0]}")
#     assert np.isfinite(loss_ext) and np.allclose(sce.backward(), [[1, -1, 0]])
#
# Zc = rng.standard_normal((7, 4)); yc = rng.integers(0, 4, 7)
# err_int = check_loss(SoftmaxCrossEntropy(), Zc, yc)
# err_onehot = check_loss(SoftmaxCrossEntropy(), Zc, np.eye(4)[yc])
# print(f"gradient check, integer labels {err_int:.1e}, one-hot labels {err_onehot:.1e}")
# print("accuracy of the logits above:", accuracy(Zc, yc), "  by hand:", np.mean(Zc.argmax(1) == yc))
# assert err_int < 1e-7 and err_onehot < 1e-7 and accuracy(Zc, yc) == np.mean(Zc.argmax(1) == yc)

# %% [markdown]
# Bad labels are refused before anything is computed — by the losses, by `one_hot` and by `accuracy`
# (a label $\ge k$ would otherwise just count as wrong). The checks are a few vectorised passes over the
# $m \times k$ targets, cheap next to the forward pass:

# %% tags=["active-ipynb"]
# two_hot = np.eye(4)[yc] + np.eye(4)[(yc + 1) % 4]
# for bad_call in (lambda: sce(Zc, np.array([0, 1, 7, 2, 3, 0, 1])), lambda: sce(Zc, np.array([0, 1])),
#                  lambda: sce(Zc, np.eye(5)[:7]), lambda: sce(Zc, np.zeros(7)), lambda: sce(Zc, two_hot),
#                  lambda: sce(Zc, 2 * np.eye(4)[yc] - 0.5), lambda: one_hot(np.array([0, -1, 2]), 3),
#                  lambda: one_hot(np.array([0.0, 1.0]), 3), lambda: accuracy(Zc, yc + 4)):
#     try:
#         bad_call()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad labels were accepted")
# smoothed = 0.9 * np.eye(4)[yc] + 0.1 / 4                  # rows of probabilities are fine
# print(f"smoothed labels accepted; gradient check {check_loss(SoftmaxCrossEntropy(), Zc, smoothed):.1e}")
# assert check_loss(SoftmaxCrossEntropy(), Zc, smoothed) < 1e-7

# %% [markdown]
# ## 5. Sanity check: overfit a tiny batch
#
# Before training on 60,000 images, a new network must be able to memorise 32 samples. We draw
# 32 random points in 10 dimensions with **random** labels from 4 classes — there is no pattern
# to learn, only to memorise — and train Dense(64)–ReLU–Dense(4) with softmax cross-entropy by
# plain gradient descent, $\theta \leftarrow \theta - \alpha\, d\theta$. If the loss does not go to
# nearly zero and the accuracy to 100 %, something in the forward or backward pass is wrong.

# %% tags=["active-ipynb"]
# X_tiny = rng.standard_normal((32, 10)).astype(np.float32)
# y_tiny = rng.integers(0, 4, size=32)
# layers = [Dense(64, rng=rng), ReLU(), Dense(4, rng=rng)]
# loss_fn = SoftmaxCrossEntropy()
# lr, history = 0.5, []
# for step in range(300):
#     out = X_tiny
#     for layer in layers:
#         out = layer.forward(out, training=True)
#     history.append(loss_fn(out, y_tiny))
#     grad = loss_fn.backward()
#     for layer in reversed(layers):
#         grad = layer.backward(grad)
#     for layer in layers:
#         for name in layer.params:
#             layer.params[name] -= lr * layer.grads[name]
# acc_tiny = accuracy(out, y_tiny)
# print(f"loss {history[0]:.3f} -> {history[-1]:.4f};  training accuracy {acc_tiny:.0%}")
# assert acc_tiny == 1.0 and history[-1] < 0.05
#
# fig, ax = plt.subplots(figsize=(6, 3.5))
# ax.semilogy(history)
# ax.set(xlabel="step", ylabel="cross-entropy", title="Overfitting 32 random samples (Dense 64 - ReLU - Dense 4)")
# plt.show()

# %% [markdown]
# ## 6. Why cross-entropy, and not the squared error?
#
# The squared error $\frac1m\sum_{ij}(\hat Y_{ij} - Y_{ij})^2$ also measures how far the probabilities are from the labels,
# and it is bounded — why not train with it? Because of what its gradient does **after the softmax**. Its upstream
# gradient is $d\hat Y = \frac2m(\hat Y - Y)$, and the softmax backward multiplies it by the Jacobian
# $J = \mathrm{diag}(\hat y) - \hat y\hat y^\top$ of chapter 02. When a sample is **confidently wrong** — nearly all
# probability on a wrong class — $\hat y$ is nearly one-hot, $J$ is nearly zero, and so is the gradient: the worse the
# mistake, the less the squared error does about it. The cross-entropy's $\frac1{\hat Y}$ cancels exactly that factor, and
# its gradient $(\hat Y - Y)/m$ stays near its largest value. Numbers for one sample ($m = 1$, 10 classes), true
# class 1, and a logit $g$ on the wrong class 0 (all other logits 0):

# %% tags=["active-ipynb"]
# gaps = np.array([0.0, 2.0, 5.0, 10.0, 15.0])
# grad_ce, grad_mse = [], []
# for g in gaps:
#     z_g = np.zeros((1, 10)); z_g[0, 0] = g
#     sm_g = Softmax()
#     p_g = sm_g.forward(z_g)
#     y_g = np.eye(10)[[1]]
#     grad_ce.append(np.linalg.norm(p_g - y_g))                          # softmax + cross-entropy: Y_hat - Y
#     grad_mse.append(np.linalg.norm(sm_g.backward(2 * (p_g - y_g))))    # softmax + squared error: J 2(Y_hat - Y)
# print(" gap g   p(true class)   |dZ| cross-entropy   |dZ| squared error")
# for g, ce, se in zip(gaps, grad_ce, grad_mse):
#     print(f"{g:6.0f}   {np.exp(0) / (np.exp(g) + 9):13.2e}   {ce:18.3f}   {se:18.2e}")
# assert grad_ce[-1] > grad_ce[0] and grad_ce[-1] > 1.4                 # largest when most wrong (-> sqrt 2)
# assert grad_mse[0] > 0.1 * grad_ce[0] and grad_mse[3] < 1e-3 * grad_ce[3] and grad_mse[-1] < 1e-5 * grad_ce[-1]

# %% [markdown]
# At $g = 0$ both losses push about equally; ten nats into a wrong answer the squared error's gradient is a thousand
# times smaller than the cross-entropy's, and it keeps shrinking like $e^{-g}$. A network that starts, or wanders, into
# confident mistakes climbs out of them slowly with the squared error. (Cross-entropy is also the negative log-likelihood
# of the labels under the model's probabilities: minimising it is maximum-likelihood fitting.)
#
# ## 7. Two checks on real data: the initial loss, and softmax regression
#
# **The initial loss.** A freshly initialised classifier knows nothing, so its probabilities should be close to uniform,
# $1/k$, and its loss close to $-\log(1/k) = \log k$: $\ln 10 \approx 2.303$ for the ten digits of MNIST. More precisely,
# if the $k$ logits of a sample have mean $\bar z$ and a small spread $s^2 = \frac1k\sum_j (z_j - \bar z)^2$, a second-order
# expansion of log-sum-exp around equal logits gives $\mathrm{LSE}(z) \approx \log k + \bar z + s^2/2$, so the loss of a sample
# whose true-class logit is typical is about $\log k + s^2/2$. A first loss far above $\log k$ means logits far too
# large (a wrong initialiser, unscaled inputs); far below, a bug or a leak of the labels. It is the first number to
# look at when a network is new. The images come from the loader of chapter 08 (pixels scaled to $[0, 1]$).
#
# **Softmax regression.** A single `Dense(10)` with softmax cross-entropy is *softmax regression*, the linear classifier
# chapter 08 quotes at "about 92 %" on MNIST. The cell trains it with plain mini-batch gradient descent (batch 100,
# $\alpha = 0.5$, 5 epochs, a fixed recipe not tuned on the test set) and measures it on the 10,000 test images.
# Zero weights are a fine start for a single layer (chapter 04 shows why not for more); they give exactly $\ln 10$.

# %% tags=["active-ipynb"]
# from diydnn._00_conventions import quick_mode
# from diydnn._08_mnist import load_mnist
# (X_train, y_train), (X_test, y_test) = load_mnist()
#
# def initial_loss(init, seed=0, n=2000):
#     init_rng = np.random.default_rng(seed)
#     net = [Dense(100, init=init, rng=init_rng), ReLU(), Dense(10, init=init, rng=init_rng)]
#     out = X_train[:n]
#     for layer in net:
#         out = layer.forward(out)
#     return SoftmaxCrossEntropy()(out, y_train[:n]), float(np.mean(out.var(axis=1)))
#
# loss_he, spread_he = initial_loss("he")
# loss_bad, _ = initial_loss("random")                     # N(0, 1) weights: logits in the tens
# print(f"fresh 784-100-10 network, He init: loss {loss_he:.3f};  ln 10 = {np.log(10):.3f};  "
#       f"ln 10 + s^2/2 = {np.log(10) + spread_he / 2:.3f}")
# print(f"the same with N(0, 1) weights: loss {loss_bad:.1f}  (the check flags it)")
# assert abs(loss_he - np.log(10)) < 0.3 and abs(loss_he - (np.log(10) + spread_he / 2)) < 0.05 and loss_bad > 10

# %% tags=["active-ipynb"]
# n_train, n_epochs = (10_000, 2) if quick_mode() else (60_000, 5)
# sr_rng = np.random.default_rng(30)
# softmax_regression = Dense(10, n_in=784, init=lambda fan_in, fan_out, r: np.zeros((fan_in, fan_out)), rng=sr_rng)
# sr_loss = SoftmaxCrossEntropy()
# first_loss = sr_loss(softmax_regression.forward(X_train[:n_train]), y_train[:n_train])
# sr_history = []
# for epoch in range(n_epochs):
#     order = sr_rng.permutation(n_train)
#     for start in range(0, n_train, 100):
#         idx = order[start:start + 100]
#         sr_history.append(sr_loss(softmax_regression.forward(X_train[idx]), y_train[idx]))
#         softmax_regression.backward(sr_loss.backward())
#         for name in softmax_regression.params:
#             softmax_regression.params[name] -= 0.5 * softmax_regression.grads[name]
# test_acc = accuracy(softmax_regression.forward(X_test), y_test)
# print(f"softmax regression, {n_train:,} training images, {n_epochs} epochs: loss {first_loss:.4f} (ln 10 = {np.log(10):.4f}) "
#       f"-> {np.mean(sr_history[-100:]):.3f};  test accuracy {test_acc:.2%}")
# assert np.isclose(first_loss, np.log(10)) and test_acc >= (0.85 if quick_mode() else 0.90)
#
# fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.1]})
# axes[0].plot(sr_history, lw=0.5)
# axes[0].axhline(np.log(10), color="k", ls="--", lw=1, label=r"$\ln 10$")
# axes[0].set(xlabel="step (batch of 100)", ylabel="cross-entropy", title=f"Softmax regression on MNIST: test accuracy {test_acc:.1%}")
# axes[0].legend()
# W_sr = softmax_regression.params["W"]
# templates = np.vstack([np.hstack([W_sr[:, c].reshape(28, 28) for c in range(row, row + 5)]) for row in (0, 5)])
# axes[1].imshow(templates, cmap="RdBu", vmin=-np.abs(W_sr).max(), vmax=np.abs(W_sr).max())
# axes[1].set(title="Its weights: one 28x28 template per digit, 0-4 above, 5-9 below"); axes[1].axis("off")
# plt.show()

# %% [markdown]
# A linear model gets about 92 % of the test digits right: each class's weights are a template (blue: pixels that
# speak for the digit, red: against), and a digit is classified by its best-matching template. The remaining 8 %
# need non-linear features — the hidden layers of the next chapters.

# %% [markdown]
# ## Summary
#
# * $L = -\frac1m\sum_{ij}Y_{ij}\log\hat Y_{ij} = -\frac1m\mathrm{tr}(Y^\top\log\hat Y)$, same index pair in both factors.
# * $d\hat Y = -\frac1m Y\oslash\hat Y$ — the only $1/m$ of the backward pass.
# * After a softmax: $dZ = (\hat Y - Y)/m$, bounded by $1/m$; with $\hat Y$ floored at $10^{-12}$ in both the
#   cross-entropy's gradient and the Softmax backward (and the loss itself exact), a confidently wrong sample
#   still gets it.
#   `SoftmaxCrossEntropy` computes the loss from the logits with log-sum-exp in float64 and is finite for any
#   finite logits.
# * Labels are integers in $[0, k)$ or rows of probabilities (one-hot); `accuracy` compares argmaxes.
# * A Dense–ReLU–Dense network memorises 32 random samples: the whole chain is wired right.
# * After a softmax, the squared error's gradient vanishes exactly for confident mistakes; the cross-entropy's does not.
# * A fresh classifier's loss is about $\ln k$ ($\ln 10 \approx 2.30$ on MNIST); softmax regression reaches about 92 %.
#
# ## Exercises
#
# 1. Clip the gradient of the loss to $[-1, 1]$ as the original did. For which samples does
#    it change anything? Rerun the tiny-batch training and compare the curves.
# 2. Add label smoothing: one-hot rows replaced by $(1-\epsilon)Y + \epsilon/k$. Does
#    $dZ = (\hat Y - Y)/m$ still hold? Check with `check_loss`.
# 3. Why does the sanity check use random labels rather than a learnable pattern?

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# The gradient of the loss, $d\hat Y = -\frac1m Y\oslash\hat Y$, is non-zero only at each sample's true class, where it
# is $-1/(m\,\hat y_{true})$. Clipping to $[-1, 1]$ changes it only when $\hat y_{true} < 1/m$ — for the **most wrong** samples,
# and for no others. Through the softmax, their gradient $(\hat y - e_{true})/m$ is then multiplied by $m\,\hat y_{true} < 1$:
# the worse the mistake, the smaller the push. The cell checks both statements on a batch, then retrains the tiny
# network with the clipped gradient: from section 5's start, where hardly a sample is that wrong, the curves coincide;
# from a start with confident mistakes — the original's $\mathcal N(0, 1)$ weights, logits in the tens — the clipped run
# stalls while the correct one still memorises the batch.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     def train_tiny(clip, init="he", steps=300, lr=0.5, seed=0):
#         net_rng = np.random.default_rng(seed)
#         net = [Dense(64, init=init, rng=net_rng), ReLU(), Dense(4, init=init, rng=net_rng)]
#         softmax_out, cce_out, losses_t = Softmax(), CategoricalCrossEntropy(), []
#         for step in range(steps):
#             out = X_tiny
#             for layer in net:
#                 out = layer.forward(out, training=True)
#             losses_t.append(cce_out(softmax_out.forward(out), y_tiny))
#             grad = cce_out.backward()
#             if clip:
#                 grad = np.clip(grad, -1, 1)                    # the original's clipped cost gradient
#             grad = softmax_out.backward(grad)
#             for layer in reversed(net):
#                 grad = layer.backward(grad)
#             for layer in net:
#                 for name in layer.params:
#                     layer.params[name] -= lr * layer.grads[name]
#         return np.array(losses_t)
#
#     Z_c = 4 * rng.standard_normal((32, 4)); y_c = rng.integers(0, 4, 32)
#     sm_c, cce_c = Softmax(), CategoricalCrossEntropy()
#     P_c = sm_c.forward(Z_c); cce_c(P_c, y_c)
#     g_c = cce_c.backward()
#     changed_rows = np.flatnonzero((np.clip(g_c, -1, 1) != g_c).any(axis=1))
#     p_true = P_c[np.arange(32), y_c]
#     dZ_clipped, dZ_true = sm_c.backward(np.clip(g_c, -1, 1)), (P_c - np.eye(4)[y_c]) / 32
#     print("rows changed by the clip:", changed_rows.tolist(), "  rows with p_true < 1/m:", np.flatnonzero(p_true < 1 / 32).tolist())
#     assert np.array_equal(changed_rows, np.flatnonzero(p_true < 1 / 32)) and len(changed_rows) > 0
#     assert np.allclose(dZ_clipped[changed_rows], 32 * p_true[changed_rows, None] * dZ_true[changed_rows])
#
#     curves = {(init_name, clip): train_tiny(clip, init) for init_name, init in (("He", "he"), ("N(0, 1)", "random"))
#               for clip in (False, True)}
#     for (init_name, clip), curve in curves.items():
#         print(f"start {init_name:7s} {'clipped' if clip else 'correct'}: loss {curve[0]:.3f} -> {curve[-1]:.4f}")
#     assert abs(curves[("He", True)][-1] / curves[("He", False)][-1] - 1) < 0.1           # nothing to clip: same curve
#     assert curves[("N(0, 1)", True)][-1] > 100 * curves[("N(0, 1)", False)][-1]           # confident mistakes: it stalls
#     fig, ax = plt.subplots(figsize=(6, 3.2))
#     for (init_name, clip), curve in curves.items():
#         ax.semilogy(curve, ls="--" if clip else "-", label=f"start {init_name}, {'clipped to [-1, 1]' if clip else 'correct'}")
#     ax.set(xlabel="step", ylabel="cross-entropy", title="The original's clipped cost gradient"); ax.legend(fontsize=8)

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# Yes: the derivation of section 3 used only $\sum_j Y_{ij} = 1$, and a smoothed row
# $(1-\epsilon)Y_{i\cdot} + \epsilon/k$ still sums to $1-\epsilon+\epsilon = 1$. So $dZ = (\hat Y - Y_\epsilon)/m$ with the smoothed targets.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     eps_ls = 0.1
#     Y_smooth = (1 - eps_ls) * np.eye(4)[yc] + eps_ls / 4
#     sce_ls = SoftmaxCrossEntropy()
#     sce_ls(Zc, Y_smooth)
#     P_ls = np.exp(Zc - Zc.max(1, keepdims=True)); P_ls /= P_ls.sum(1, keepdims=True)
#     err_ls = check_loss(SoftmaxCrossEntropy(), Zc, Y_smooth)
#     print(f"label smoothing: rows sum to {Y_smooth.sum(1)[:3]}...; backward vs (Y_hat - Y_eps)/m: "
#           f"{rel_error(sce_ls.backward(), (P_ls - Y_smooth) / len(Zc)):.1e};  gradient check {err_ls:.1e}")
#     assert rel_error(sce_ls.backward(), (P_ls - Y_smooth) / len(Zc)) < 1e-12 and err_ls < 1e-7

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# A learnable pattern can be fitted by *part* of a network, so a broken part can hide. Random labels can
# only be memorised, and memorising needs every layer to learn. Below, a "bug" freezes the hidden layer (its
# gradients never arrive), in a network with 16 hidden units. With labels from a linear pattern the broken network
# still reaches 100 % — the check would pass; with random labels it cannot, while the correct network can. (With 64
# hidden units, as in section 5, the frozen network memorises 32 points too, only to a loss five times higher: the test
# is sharpest when the readout alone cannot do the job. Look at the loss, not only the accuracy.)
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     def fit_32(labels, frozen_hidden, hidden=16, seed=0, steps=300, lr=0.5):
#         r = np.random.default_rng(seed)
#         X_p = r.standard_normal((32, 10)).astype(np.float32)
#         y_p = r.integers(0, 4, 32) if labels == "random" else np.argmax(X_p @ r.standard_normal((10, 4)), axis=1)
#         net = [Dense(hidden, rng=r), ReLU(), Dense(4, rng=r)]
#         for step in range(steps):
#             out = X_p
#             for layer in net:
#                 out = layer.forward(out, training=True)
#             loss_p = loss_fn(out, y_p)
#             grad = loss_fn.backward()
#             for layer in reversed(net):
#                 grad = layer.backward(grad)
#             for layer in net[2:] if frozen_hidden else net:      # the bug: the hidden layer never moves
#                 for name in layer.params:
#                     layer.params[name] -= lr * layer.grads[name]
#         return loss_p, accuracy(out, y_p)
#
#     results_p = {(labels, frozen): fit_32(labels, frozen) for labels in ("pattern", "random") for frozen in (False, True)}
#     for (labels, frozen), (loss_p, acc_p) in results_p.items():
#         print(f"{labels:7s} labels, {'frozen hidden layer (bug)' if frozen else 'correct network':25s}: loss {loss_p:.3f}, accuracy {acc_p:.0%}")
#     assert results_p[("pattern", True)][1] == 1.0                                   # the bug passes the pattern test
#     assert results_p[("random", False)][1] == 1.0 and results_p[("random", True)][1] < 1.0   # and fails the random one

# %% [markdown]
# ---
# [← 02 — activations](02_activations.ipynb) · [begin here](00_begin_here.ipynb) · **03 — cross-entropy** · [next: 03a — computational graph →](03a_computational_graph.ipynb)
