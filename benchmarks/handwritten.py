"""The benchmark's two references: the same MLP written by hand in plain NumPy (~40 lines), and in PyTorch.

Both take the initial weights as a list of (W, b) float32 arrays, W of shape (n_in, n_out), and train
on the batches given by a permutation, exactly as diydnn's BatchStream serves them (drop_last=True).
The tests import `NumpyMLP` to check that diydnn computes the same weights.
"""
import numpy as np


class NumpyMLP:
    """A ReLU MLP with softmax cross-entropy, SGD or Adam, written the way one would by hand."""

    def __init__(self, weights, optimiser="adam", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params = [p.copy() for W, b in weights for p in (W, b)]       # W0, b0, W1, b1, ...
        self.optimiser, self.lr, self.beta1, self.beta2, self.eps = optimiser, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, X, y):
        Ws, bs = self.params[0::2], self.params[1::2]
        A = [X]                                                # forward, keeping each layer's input
        for W, b in zip(Ws[:-1], bs[:-1]):
            A.append(np.maximum(A[-1] @ W + b, 0))
        Z = A[-1] @ Ws[-1] + bs[-1]
        Z -= Z.max(axis=1, keepdims=True)                      # softmax cross-entropy from the logits
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = -np.log(P[rows, y]).mean()
        P[rows, y] -= 1
        dZ = P / len(y)                                        # the one 1/m
        grads = []
        for i in reversed(range(len(Ws))):                     # backward; no dX for the first layer
            grads[:0] = [A[i].T @ dZ, dZ.sum(axis=0)]
            if i > 0:
                dZ = (dZ @ Ws[i].T) * (A[i] > 0)
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
        return float(loss)

    def train_epoch(self, X, y, order, batch_size, first=0, last=None):
        """Train on batches first..last-1 of the epoch given by `order` (all full batches by default)."""
        last = len(order) // batch_size if last is None else last
        for start in range(first * batch_size, last * batch_size, batch_size):
            idx = order[start:start + batch_size]
            loss = self.step(X[idx], y[idx])
        return loss

    def weights(self):
        return [(self.params[i].copy(), self.params[i + 1].copy()) for i in range(0, len(self.params), 2)]


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
