# %%
"""Chapter 13: pooling. MaxPool2D (ties: the first maximum in row-major window order gets the gradient),
AvgPool2D and GlobalAveragePool, on images of shape (m, H, W, C)."""
import numpy as np

from diydnn._01_dense import Layer
from diydnn._07_model import register_layer
from diydnn._12_convolution import _pair, _positive_int


class _Pool2D(Layer):
    """Shared by MaxPool2D and AvgPool2D: window, stride (default: the window, non-overlapping), output size."""

    input_ndim, input_layout = (4,), "(m, height, width, channels)"

    def __init__(self, pool_size=2, stride=None, name=None):
        super().__init__(name)
        who = f"{type(self).__name__}({self.name!r})"
        self.pool_size = _pair(pool_size, "pool_size", who)
        self.stride = self.pool_size[0] if stride is None else _positive_int(stride, "stride", who)

    def output_width(self, n_in):
        if np.ndim(n_in) != 1 or len(n_in) != 3:
            raise ValueError(f"{self!r}: input must be images of shape (H, W, C), got one sample of shape {n_in!r}")
        (ph, pw), s = self.pool_size, self.stride
        H, W, C = n_in
        if H < ph or W < pw:
            raise ValueError(f"{self!r}: a {ph}x{pw} window does not fit an input of shape (m, {H}, {W}, {C})")
        return ((H - ph) // s + 1, (W - pw) // s + 1, C)        # "valid": the last rows/columns may be left out

    def get_config(self):
        return {"name": self.name, "pool_size": list(self.pool_size), "stride": self.stride}

    def _windows(self, X):
        """The (i, j, strided view) of each window offset: view[:, r, c, :] = X[:, r*s + i, c*s + j, :]."""
        (ph, pw), s = self.pool_size, self.stride
        out_h, out_w, _ = self.output_width(X.shape[1:])
        for i in range(ph):
            for j in range(pw):
                yield i, j, X[:, i:i + s * out_h:s, j:j + s * out_w:s, :]


@register_layer
class MaxPool2D(_Pool2D):
    """Maximum over each pool_size window. In a tie, the first maximum in row-major order inside the window
    (top-left first) is the one selected, and only it receives the gradient."""

    def forward(self, X, training=False):
        X = self._check_input(X)
        Y = None
        for _, _, view in self._windows(X):
            Y = view.copy() if Y is None else np.maximum(Y, view, out=Y)
        self._cache = (X, Y)
        return Y

    def backward(self, dY):
        X, Y = self._cached()
        dY = self._check_upstream(dY, Y.shape)
        dX = np.zeros(X.shape, dtype=dY.dtype)
        taken = np.zeros(Y.shape, dtype=bool)      # windows whose maximum has received its gradient already
        for (_, _, x), (_, _, dx) in zip(self._windows(X), self._windows(dX)):
            hit = x == Y                           # this offset holds the window's maximum ...
            hit &= ~taken                          # ... and no earlier offset did: the first maximum wins a tie
            dx += np.where(hit, dY, 0)             # dx is a view into dX (+=: overlapping windows add up)
            taken |= hit
        return dX


@register_layer
class AvgPool2D(_Pool2D):
    """Mean over each pool_size window; every input of a window receives 1/(ph*pw) of its gradient."""

    def forward(self, X, training=False):
        X = self._check_input(X)
        Y = None
        for _, _, view in self._windows(X):
            Y = view.copy() if Y is None else Y + view
        self._cache = X.shape
        return Y / np.prod(self.pool_size).astype(X.dtype)

    def backward(self, dY):
        x_shape = self._cached()
        out_shape = (x_shape[0], *self.output_width(x_shape[1:]))
        dY = self._check_upstream(dY, out_shape) / np.prod(self.pool_size).astype(dY.dtype)
        dX = np.zeros(x_shape, dtype=dY.dtype)
        for _, _, view in self._windows(dX):
            view += dY
        return dX


@register_layer
class GlobalAveragePool(Layer):
    """(m, H, W, C) -> (m, C): the mean of each channel over all positions."""

    input_ndim, input_layout = (4,), "(m, height, width, channels)"

    def output_width(self, n_in):
        if np.ndim(n_in) != 1 or len(n_in) != 3:
            raise ValueError(f"{self!r}: input must be images of shape (H, W, C), got one sample of shape {n_in!r}")
        return int(n_in[2])

    def forward(self, X, training=False):
        X = self._check_input(X)
        self._cache = X.shape
        return X.mean(axis=(1, 2))

    def backward(self, dY):
        m, H, W, C = self._cached()
        dY = self._check_upstream(dY, (m, C))
        return np.broadcast_to((dY / (H * W))[:, None, None, :], (m, H, W, C)).copy()
