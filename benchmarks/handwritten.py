"""The benchmark's references: the same networks written by hand in plain NumPy, and in PyTorch.

NumpyMLP/TorchMLP: a ReLU MLP (~40 lines). NumpyCNN/TorchCNN: the CNN of chapters 12-13.
All take the initial weights as a list of (W, b) float32 arrays (W of shape (n_in, n_out) for a dense layer,
(kh, kw, C, F) for a convolution, as diydnn's Dense and Conv2D), and train on the batches given by a
permutation, exactly as diydnn's BatchStream serves them (drop_last=True).
The tests import `NumpyMLP` and `NumpyCNN` to check that diydnn computes the same weights.
None of this imports diydnn: it is the independent reference.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class _ByHand:
    """What the hand-written networks share: parameters W0, b0, W1, b1, ..., SGD or Adam, the batch loop."""

    def __init__(self, weights, optimiser="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params = [p.copy() for W, b in weights for p in (W, b)]       # W0, b0, W1, b1, ...
        self.optimiser, self.lr, self.beta1, self.beta2, self.eps = optimiser, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def update(self, grads):
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if self.optimiser == "sgd":
                p -= self.lr * g
                continue
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= self.lr * (m / (1 - self.beta1 ** self.t)) / (np.sqrt(v / (1 - self.beta2 ** self.t)) + self.eps)

    def train_epoch(self, X, y, order, batch_size, first=0, last=None):
        """Train on batches first..last-1 of the epoch given by `order` (all full batches by default)."""
        last = len(order) // batch_size if last is None else last
        for start in range(first * batch_size, last * batch_size, batch_size):
            idx = order[start:start + batch_size]
            loss = self.step(X[idx], y[idx])
        return loss

    def weights(self):
        return [(self.params[i].copy(), self.params[i + 1].copy()) for i in range(0, len(self.params), 2)]


def softmax_cross_entropy(Z, y):
    """The loss and its gradient with respect to the logits Z (the one 1/m). Overwrites Z."""
    Z -= Z.max(axis=1, keepdims=True)                      # stable: the largest logit becomes 0
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = -np.log(P[rows, y]).mean()
    P[rows, y] -= 1
    return float(loss), P / len(y)


class NumpyMLP(_ByHand):
    """A ReLU MLP with softmax cross-entropy, SGD or Adam, written the way one would by hand."""

    def step(self, X, y):
        Ws, bs = self.params[0::2], self.params[1::2]
        A = [X]                                                # forward, keeping each layer's input
        for W, b in zip(Ws[:-1], bs[:-1]):
            A.append(np.maximum(A[-1] @ W + b, 0))
        loss, dZ = softmax_cross_entropy(A[-1] @ Ws[-1] + bs[-1], y)
        grads = []
        for i in reversed(range(len(Ws))):                     # backward; no dX for the first layer
            grads[:0] = [A[i].T @ dZ, dZ.sum(axis=0)]
            if i > 0:
                dZ = (dZ @ Ws[i].T) * (A[i] > 0)
        self.update(grads)
        return loss


# ----------------------------------------------------------------------------- the CNN of chapters 12-13
# Images (m, H, W, C), kernels (kh, kw, C, F), stride 1, "same" padding (odd kernels), 2x2 max-pooling.
def conv_forward(X, W, b):
    """A 'same' convolution as one matrix product: the patch matrix P (m*H*W, kh*kw*C) times W (kh*kw*C, F)."""
    kh, kw, C, F = W.shape
    m, H, Wd, _ = X.shape
    Xp = np.zeros((m, H + kh - 1, Wd + kw - 1, C), dtype=X.dtype)        # zero padding of kh//2, kw//2
    Xp[:, kh // 2:kh // 2 + H, kw // 2:kw // 2 + Wd] = X
    windows = sliding_window_view(Xp, (kh, kw), axis=(1, 2))           # (m, H, W, C, kh, kw), a view
    P = windows.transpose(0, 1, 2, 4, 5, 3).reshape(m * H * Wd, kh * kw * C)   # the one copy: im2col
    Z = P @ W.reshape(-1, F)
    Z += b
    return Z.reshape(m, H, Wd, F), (P, Xp.shape)


def conv_backward(dZ, W, cache, need_dX=True):
    """dW = P^T dZ and db (one product); dX by col2im: dP = dZ W^T, each of the kh*kw shifted slices added back."""
    P, padded_shape = cache
    kh, kw, C, F = W.shape
    m, H, Wd, _ = dZ.shape
    dZ = dZ.reshape(-1, F)
    dW, db = (P.T @ dZ).reshape(W.shape), dZ.sum(axis=0)
    if not need_dX:
        return None, dW, db
    dP = (dZ @ W.reshape(-1, F).T).reshape(m, H, Wd, kh, kw, C)
    dXp = np.zeros(padded_shape, dtype=dZ.dtype)
    for u in range(kh):
        for v in range(kw):
            dXp[:, u:u + H, v:v + Wd] += dP[:, :, :, u, v]
    return dXp[:, kh // 2:kh // 2 + H, kw // 2:kw // 2 + Wd], dW, db


def maxpool_forward(A):
    """2x2 max-pooling of (m, H, W, C) with H, W even: a reshape to (m, H/2, 2, W/2, 2, C) and a max; the mask marks
    the one winner of each window. Ties are common, not rare: a blank region of an image gives a constant ReLU(bias)
    over a whole window. Marking every tied pixel would send the window's gradient there 2-4 times over; the first
    maximum in row-major order takes it all (as diydnn's MaxPool2D and PyTorch do)."""
    m, H, Wd, C = A.shape
    A6 = A.reshape(m, H // 2, 2, Wd // 2, 2, C)
    Y = A6.max(axis=(2, 4))
    mask = A6 == Y[:, :, None, :, None]
    taken = np.zeros(Y.shape, dtype=bool)                 # windows whose winner is already marked
    for a in range(2):
        for b in range(2):
            mask[:, :, a, :, b] &= ~taken
            taken |= mask[:, :, a, :, b]
    return Y, mask


def maxpool_backward(dY, mask):
    m, h, _, w, _, C = mask.shape
    return (mask * dY[:, :, None, :, None]).reshape(m, 2 * h, 2 * w, C)


class NumpyCNN(_ByHand):
    """Reshape(28, 28, 1) -> Conv 3x3 same -> ReLU -> MaxPool 2 -> Conv 3x3 same -> ReLU -> MaxPool 2 -> Flatten
    -> Dense -> ReLU -> Dense, softmax cross-entropy; weights [(W1, b1), (W2, b2), (W3, b3), (W4, b4)]."""

    def __init__(self, weights, *args, image_shape=(28, 28, 1), **kwargs):
        super().__init__(weights, *args, **kwargs)
        self.image_shape = image_shape

    def step(self, X, y):
        W1, b1, W2, b2, W3, b3, W4, b4 = self.params
        X = X.reshape(len(X), *self.image_shape)
        Z1, cache1 = conv_forward(X, W1, b1)
        A1, mask1 = maxpool_forward(np.maximum(Z1, 0))
        Z2, cache2 = conv_forward(A1, W2, b2)
        A2, mask2 = maxpool_forward(np.maximum(Z2, 0))
        F = A2.reshape(len(X), -1)                              # flatten in C order (y, x, channel)
        A3 = np.maximum(F @ W3 + b3, 0)
        loss, dZ4 = softmax_cross_entropy(A3 @ W4 + b4, y)
        dW4, db4 = A3.T @ dZ4, dZ4.sum(axis=0)
        dZ3 = (dZ4 @ W4.T) * (A3 > 0)
        dW3, db3 = F.T @ dZ3, dZ3.sum(axis=0)
        dZ2 = maxpool_backward((dZ3 @ W3.T).reshape(A2.shape), mask2) * (Z2 > 0)
        dA1, dW2, db2 = conv_backward(dZ2, W2, cache2)
        dZ1 = maxpool_backward(dA1, mask1) * (Z1 > 0)
        _, dW1, db1 = conv_backward(dZ1, W1, cache1, need_dX=False)     # nobody needs the gradient of the images
        self.update([dW1, db1, dW2, db2, dW3, db3, dW4, db4])
        return loss


class TorchMLP:
    """The same network in PyTorch (CPU): nn.Linear layers holding the same weights, torch.optim.Adam/SGD."""

    def __init__(self, weights, optimiser="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        import torch
        self.torch = torch
        modules = []
        for W, b in weights:
            linear = torch.nn.Linear(*W.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W.T.copy()))   # PyTorch stores W as (n_out, n_in)
                linear.bias.copy_(torch.from_numpy(b))
            modules += [linear, torch.nn.ReLU()]
        self.net = torch.nn.Sequential(*modules[:-1])
        if optimiser == "sgd":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps)

    def train_epoch(self, X, y, order, batch_size, first=0, last=None):
        torch = self.torch
        if getattr(self, "_data", (None,))[0] is not X:       # wrap the arrays once (no copy)
            self._data = (X, torch.from_numpy(X), torch.from_numpy(y.astype(np.int64)))
        _, Xt, yt = self._data
        last = len(order) // batch_size if last is None else last
        order = torch.from_numpy(order)
        for start in range(first * batch_size, last * batch_size, batch_size):
            idx = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(self.net(Xt[idx]), yt[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return float(loss.detach())

    def weights(self):
        linears = [m for m in self.net if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]


class TorchCNN(TorchMLP):
    """NumpyCNN's network in PyTorch (CPU): nn.Conv2d/nn.MaxPool2d/nn.Linear holding the same weights.

    PyTorch's layout is (m, C, H, W) with kernels (F, C, kh, kw): the kernels are transposed once here, and the
    first Linear's rows are reordered once, since PyTorch flattens (channel, y, x) where diydnn flattens (y, x,
    channel). The images need no transpose at all: with one channel, a row of 784 pixels viewed as (1, 28, 28)
    (PyTorch) or (28, 28, 1) (diydnn) is the same memory, so each batch is a free view, as for the others.
    """

    def __init__(self, weights, optimiser="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, image_shape=(28, 28, 1)):
        import torch
        self.torch, self.image_shape = torch, image_shape
        nn = torch.nn
        (W1, b1), (W2, b2), (W3, b3), (W4, b4) = weights
        H, Wd, C = image_shape
        if C != 1:
            raise ValueError(f"TorchCNN: images with {C} channels would need a transpose per batch; only C = 1 here")
        self.pooled = (H // 4, Wd // 4, W2.shape[3])                       # (y, x, channel) before the flatten
        self.net = nn.Sequential(
            nn.Unflatten(1, (C, H, Wd)),
            nn.Conv2d(C, W1.shape[3], W1.shape[:2], padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(W1.shape[3], W2.shape[3], W2.shape[:2], padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(*W3.shape), nn.ReLU(), nn.Linear(*W4.shape))
        convs = [m for m in self.net if isinstance(m, nn.Conv2d)]
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for conv, (W, b) in zip(convs, [(W1, b1), (W2, b2)]):
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.transpose(3, 2, 0, 1))))
                conv.bias.copy_(torch.from_numpy(b))
            for linear, (W, b) in zip(linears, [(self._rows_to_torch(W3), b3), (W4, b4)]):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))   # PyTorch stores (n_out, n_in)
                linear.bias.copy_(torch.from_numpy(b))
        if optimiser == "sgd":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps)

    def _rows_to_torch(self, W):
        """Rows of the first dense W in diydnn's flatten order (y, x, c) -> PyTorch's (c, y, x)."""
        h, w, c = self.pooled
        return W.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)

    def weights(self):
        nn = self.torch.nn
        convs = [m for m in self.net if isinstance(m, nn.Conv2d)]
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        out = [(c.weight.detach().numpy().transpose(2, 3, 1, 0).copy(), c.bias.detach().numpy().copy()) for c in convs]
        h, w, c = self.pooled
        W3 = linears[0].weight.detach().numpy().T.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
        out.append((W3.copy(), linears[0].bias.detach().numpy().copy()))
        out.append((linears[1].weight.detach().numpy().T.copy(), linears[1].bias.detach().numpy().copy()))
        return out


class TorchResNet(TorchMLP):
    """Experiment 11's small residual CNN (diydnn._10_experiments.resnet(32, (1, 1))) in PyTorch (CPU).

    Stem: 3x3 conv (32, no bias) + BatchNorm + ReLU + 2x2 max-pool; block 1: two 3x3 convs (32) with BatchNorm, added
    to the identity, ReLU; block 2: the same with 64 filters, the first conv strided by 2, the shortcut a strided 1x1
    conv + BatchNorm; ReLU, global average pool, Linear(64, 10). `weights` is a dict of diydnn's parameter names
    ("stem/W", "residual_0/conv2d_0/W", ...) to arrays in diydnn's layouts (kernels (kh, kw, C, F)): the kernels are
    transposed once to PyTorch's (F, C, kh, kw). A stride-2 'same' convolution of 14 pixels pads 0 rows on top and 1
    below (TensorFlow's rule, which diydnn follows), so it is written as an explicit pad then an unpadded conv.
    BatchNorm trains on the batch statistics; diydnn's momentum 0.9 is PyTorch's 0.1.
    """

    CONVS = ["stem", "residual_0/conv2d_0", "residual_0/conv2d_1", "residual_1/conv2d_0", "residual_1/conv2d_1",
             "residual_1/shortcut_conv"]
    NORMS = ["batchnorm_0", "residual_0/batchnorm_0", "residual_0/batchnorm_1", "residual_1/batchnorm_0",
             "residual_1/batchnorm_1", "residual_1/shortcut_bn"]

    def __init__(self, weights, optimiser="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        import torch
        self.torch, nn = torch, torch.nn
        shapes = {name: weights[f"{name}/W"].shape for name in self.CONVS}
        self.conv = {}
        for name in self.CONVS:
            kh, kw, C, F = shapes[name]
            self.conv[name] = nn.Conv2d(C, F, (kh, kw), stride=2 if name.startswith("residual_1/") and
                                        name != "residual_1/conv2d_1" else 1,
                                        padding=0 if name.startswith("residual_1/") and name != "residual_1/conv2d_1"
                                        else "same", bias=False)
        self.norm = {name: nn.BatchNorm2d(weights[f"{name}/gamma"].shape[0], eps=1e-5, momentum=0.1) for name in self.NORMS}
        self.dense = nn.Linear(*weights["dense_0/W"].shape)
        with torch.no_grad():
            for name, conv in self.conv.items():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights[f"{name}/W"].transpose(3, 2, 0, 1))))
            for name, norm in self.norm.items():
                norm.weight.copy_(torch.from_numpy(weights[f"{name}/gamma"]))
                norm.bias.copy_(torch.from_numpy(weights[f"{name}/beta"]))
            self.dense.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["dense_0/W"].T)))
            self.dense.bias.copy_(torch.from_numpy(weights["dense_0/b"]))
        self.net = nn.Module()                          # holds the modules; calling it runs forward() below
        for i, module in enumerate([*self.conv.values(), *self.norm.values(), self.dense]):
            self.net.add_module(str(i), module)
        self.net.forward = self.forward
        self.net.train()
        if optimiser == "sgd":
            self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        else:
            self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(beta1, beta2), eps=eps)

    def forward(self, X):
        F, c, n = self.torch.nn.functional, self.conv, self.norm
        x = X.view(-1, 1, 28, 28)
        x = F.max_pool2d(F.relu(n["batchnorm_0"](c["stem"](x))), 2)
        y = n["residual_0/batchnorm_1"](c["residual_0/conv2d_1"](F.relu(n["residual_0/batchnorm_0"](c["residual_0/conv2d_0"](x)))))
        x = F.relu(x + y)
        y = F.relu(n["residual_1/batchnorm_0"](c["residual_1/conv2d_0"](F.pad(x, (0, 1, 0, 1)))))   # 'same', stride 2
        y = n["residual_1/batchnorm_1"](c["residual_1/conv2d_1"](y))
        x = F.relu(y + n["residual_1/shortcut_bn"](c["residual_1/shortcut_conv"](x)))
        return self.dense(x.mean(dim=(2, 3)))

    def weights(self):
        out = [(c.weight.detach().numpy().transpose(2, 3, 1, 0).copy(),) for c in self.conv.values()]
        out += [(n.weight.detach().numpy().copy(), n.bias.detach().numpy().copy()) for n in self.norm.values()]
        return out + [(self.dense.weight.detach().numpy().T.copy(), self.dense.bias.detach().numpy().copy())]
