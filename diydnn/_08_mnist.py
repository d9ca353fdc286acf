# %% [markdown]
# [← 07 — model](07_model.ipynb) · [begin here](00_begin_here.ipynb) · **08 — MNIST** · [next: 09 — training →](09_training.ipynb)
#
# # 08 — MNIST: the IDX format, a verified download, and batches
#
# Everything so far ran on random numbers. From here on the networks learn to read
# handwritten digits: **MNIST**, 70,000 grey images of 28×28 pixels, each labelled 0–9
# (LeCun, Cortes and Burges). This chapter builds the data side of the library:
#
# 1. where the four files come from: a folder you name, a cache folder, or a download;
# 2. the **IDX** file format, read byte by byte and then with one `np.frombuffer`;
# 3. `load_mnist`, with a look at the digits, the class balance and the mean digit per class;
# 4. a **validation set** cut out of the *training* data (and why the original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn)'s
#    "evaluation" set was wrong);
# 5. **mini-batches**: one shuffled epoch (`batches`) and an endless, resumable stream
#    (`BatchStream`) for the training loop of chapter 09.
#
# How a download from public mirrors is **verified by SHA-256**, cached and written atomically, and
# what happens to a broken or killed download, is in the section **Engineering** at the end; the
# ideas of the chapter are complete without it.


# %%
"""Chapter 08: MNIST — reading IDX files, a verified and cached download, a validation split, and batches."""
import contextlib
import glob
import gzip
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from diydnn._00_conventions import write_atomically
from diydnn._01_dense import as_count
from diydnn._07_model import add_to_class


# %% tags=["active-ipynb"]
# import io
# import socket
# import struct
# import time
#
# import matplotlib.pyplot as plt
# from diydnn._00_conventions import quick_mode, save_figure
# rng = np.random.default_rng(8)
#
#
# # The Engineering section at the end of this chapter defines how mnist_dir checks a folder, reads the cache
# # and downloads, and the checks of the arguments below. So that the chapter can read MNIST before we get there, we take those functions from the
# # finished module now (`import diydnn` ran that section already); the section defines them again, identically.
# from diydnn._08_mnist import (_check_batch_size, _check_rng, _check_Xy, _complete_folder, _download, _is_count,
#                               _missing_from_cache, default_cache_dir)

# %% [markdown]
# ## 1. The four files, and where to find them
#
# MNIST comes as four gzip-compressed files: training images and labels (60,000), test images
# and labels (10,000). Yann LeCun's page, which first distributed them, now often refuses
# downloads, so libraries fetch them from mirrors. A file that merely *exists* proves nothing, so
# every file is checked against the SHA-256 of the official file, wherever it comes from.
#
# `mnist_dir()` returns a folder that holds the four files, looking in this order:
#
# | order | where | if files are missing |
# |---|---|---|
# | 1 | the folder passed as `data_dir=` | `FileNotFoundError` naming the folder and the files |
# | 2 | the folder in the environment variable `DIYDNN_DATA_DIR` | the same |
# | 3 | the cache folder: `$DIYDNN_CACHE_DIR/mnist`, else `$XDG_CACHE_HOME/diydnn/mnist`, else `~/.cache/diydnn/mnist` | download the missing ones |
# | 4 | each mirror in turn, into a temporary file in the cache folder → SHA-256 check → `os.replace` | a `MNISTDownloadError` (a `FileNotFoundError`) listing every URL tried and why it failed, and where to put the files by hand |
#
# A file in a folder you name yourself (1 and 2) that is not the official file is refused with a
# `MNISTChecksumError` naming the file, both hashes and what to do (pass `checksums=None` to load your
# own files, e.g. Fashion-MNIST, unverified). With the environment variable `DIYDNN_OFFLINE=1` step 4 is
# skipped: no network, one clear error. The names and checksums of the files, and the mirrors:

# %%
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the official gzip files (their MD5s are the well-known f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...)
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

# Public copies of the four official files, tried in this order (PyTorch's and TensorFlow's mirrors).
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


# %% [markdown]
# `mnist_dir` is that table as code. Checking a folder (`_complete_folder`), finding which cached files are
# missing or damaged (`_missing_from_cache`) and downloading them (`_download`) are in the Engineering section.

# %%
def mnist_dir(data_dir=None, *, mirrors=MNIST_MIRRORS, cache_dir=None, checksums=MNIST_SHA256, timeout=30):
    """Return the folder holding the four MNIST files (see the table above for the search order).

    data_dir: a folder you provide (must hold the files). Else $DIYDNN_DATA_DIR (the same).
    Else cache_dir (default: default_cache_dir()), where missing or corrupted files are downloaded
    from `mirrors` (base URLs, tried in order), with `timeout` seconds per network operation.
    Every file is verified against `checksums` (name -> SHA-256); checksums=None takes the files of
    data_dir / DIYDNN_DATA_DIR as they are (the cache and downloads always need checksums).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    lacking = [name for name in MNIST_FILES if checksums is not None and name not in checksums]
    if lacking:
        raise ValueError(f"mnist_dir: checksums has no SHA-256 for {', '.join(lacking)}")
    if data_dir is not None:
        return _complete_folder(data_dir, "the data_dir argument", checksums, cache)
    if os.environ.get("DIYDNN_DATA_DIR"):
        return _complete_folder(os.environ["DIYDNN_DATA_DIR"], "the environment variable DIYDNN_DATA_DIR",
                                checksums, cache)
    if checksums is None:
        raise ValueError("mnist_dir: checksums=None only applies to a folder you name (data_dir or DIYDNN_DATA_DIR); "
                         "files in the cache and downloads are always verified")
    todo, notes = _missing_from_cache(cache, checksums)
    if todo:
        _download(todo, notes, cache, mirrors, checksums, timeout)
    return cache

# %% tags=["active-ipynb"]
# folder = mnist_dir()
# print("mnist_dir() ->", folder.name, sorted(p.name for p in folder.glob("*.gz")))
# assert sorted(p.name for p in folder.glob("*.gz")) == sorted(MNIST_FILES)

# %% [markdown]
# ## 2. The IDX format
#
# An IDX file is a tiny header followed by one flat array, all integers **big-endian**
# (most significant byte first):
#
# | bytes | content |
# |---|---|
# | 0–1 | zero |
# | 2 | type of the data: `0x08` = unsigned byte (also `0x09` int8, `0x0B` int16, `0x0C` int32, `0x0D` float32, `0x0E` float64) |
# | 3 | number of dimensions $d$ |
# | 4 … $4+4d-1$ | the $d$ sizes, each a 32-bit big-endian integer |
# | $4+4d$ … | the data, in C order (last index fastest) |
#
# Read as one 32-bit integer, the first four bytes are the **magic number**: `0x00000801` = 2049
# for the label files (unsigned bytes, 1 dimension) and `0x00000803` = 2051 for the image files
# (unsigned bytes, 3 dimensions: count, rows, columns). So an image file has a
# $4 + 4\cdot 3 = 16$-byte header and a label file $4 + 4 = 8$ bytes, and the file sizes must be
#
# $$16 + n\cdot 28\cdot 28 \ \text{(images)}, \qquad 8 + n \ \text{(labels)}.$$
#
# Here are the first bytes of the real files (after gunzip), decoded by hand with `struct`
# (`>` = big-endian, `i` = 32-bit integer):

# %% tags=["active-ipynb"]
# with gzip.open(folder / "train-images-idx3-ubyte.gz") as f:
#     head = f.read(16)
# print("train images, first 16 bytes:", " ".join(f"{b:02x}" for b in head))
# magic, n_images, rows, cols = struct.unpack(">4i", head)
# print(f"  magic {magic} (0x{magic:08x}), {n_images} images of {rows}x{cols}")
# with gzip.open(folder / "train-labels-idx1-ubyte.gz") as f:
#     head_y = f.read(18)
# print("train labels, first 18 bytes:", " ".join(f"{b:02x}" for b in head_y))
# magic_y, n_labels = struct.unpack(">2i", head_y[:8])
# print(f"  magic {magic_y} (0x{magic_y:08x}), {n_labels} labels; the first ten: {list(head_y[8:])}")
# assert (magic, n_images, rows, cols) == (2051, 60000, 28, 28) and (magic_y, n_labels) == (2049, 60000)
# assert list(head_y[8:]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
# # the README's decompressed sizes follow from the header
# assert 16 + 60000 * 28 * 28 == 47_040_016 and 8 + 60000 == 60_008

# %% [markdown]
# `read_idx` does the same for any IDX file, gzip-compressed or not. It decides by the two
# **gzip magic bytes** `1f 8b` at the start of the file, not by the name (a `.gz` name on an
# uncompressed file happens). After the header it is one call: `np.frombuffer` views the bytes
# as an array without a Python loop. Before that, every size is checked: a wrong magic number,
# a short header, missing or extra data bytes each raise a `ValueError` that names the file
# and says what was expected and what was found. A short file read without these checks would
# either crash somewhere far away or, worse, quietly give fewer images.

# %%
# IDX type codes (byte 2 of the magic number) -> NumPy dtype; multi-byte types are big-endian
IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path):
    """Read an IDX file (gzip-compressed or raw) into a NumPy array of the shape its header gives.

    Raises ValueError naming the file when the magic number is wrong, the gzip stream is broken,
    or the data do not fill exactly the shape announced by the header.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)   # zlib in C: the bulk of the loading time
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx: {path} starts like a gzip file (1f 8b) but does not decompress: {e}") from None
    if len(data) < 4:
        raise ValueError(f"read_idx: {path}: expected an IDX header of at least 4 bytes, found {len(data)} bytes")
    zero1, zero2, code, ndim = data[:4]
    if zero1 or zero2 or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(f"read_idx: {path} is not an IDX file: expected a magic number 0x0000TTDD (type TT in "
                         f"{', '.join(f'{c:02x}' for c in IDX_DTYPES)}, DD >= 1 dimensions), e.g. 2049 (0x00000801, "
                         f"labels) or 2051 (0x00000803, images); found 0x{data[:4].hex()} ({int.from_bytes(data[:4], 'big')})")
    n_header = 4 + 4 * ndim
    if len(data) < n_header:
        raise ValueError(f"read_idx: {path}: truncated header: the magic number announces {ndim} dimension sizes "
                         f"({n_header} header bytes), found only {len(data)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, ">i4", count=ndim, offset=4))
    if min(shape) < 0:
        raise ValueError(f"read_idx: {path}: inconsistent header: negative size in shape {shape}")
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(data) - n_header
    if found != expected:
        what = "truncated" if found < expected else "extra data after the end"
        raise ValueError(f"read_idx: {path}: the header gives shape {shape} of {dtype.name}, i.e. {expected:,} data "
                         f"bytes, but the file holds {found:,} ({what})")
    array = np.frombuffer(data, dtype, offset=n_header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))   # a writable copy in native byte order


# %% [markdown]
# A hand-made IDX file shows both the format and the checks: three 2×2 images as unsigned
# bytes, header `00 00 08 03` + sizes 3, 2, 2. Then the same bytes with one byte missing, one
# byte too many, and a wrong magic number (`PK\x03\x04` starts a zip file):

# %% tags=["active-ipynb"]
# def idx_bytes(array):
#     """The IDX encoding of a uint8 array (for this demo)."""
#     return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
#
# tiny = rng.integers(0, 256, size=(3, 2, 2), dtype=np.uint8)
# with tempfile.TemporaryDirectory() as tmp:
#     good = idx_bytes(tiny)
#     print("tiny file:", good.hex(" "))
#     (Path(tmp) / "tiny.idx").write_bytes(good)
#     (Path(tmp) / "tiny.gz").write_bytes(gzip.compress(good))
#     assert np.array_equal(read_idx(Path(tmp) / "tiny.idx"), tiny) and np.array_equal(read_idx(Path(tmp) / "tiny.gz"), tiny)
#     for label, bad in [("truncated", good[:-1]), ("extra", good + b"\0"), ("wrong magic", b"PK\x03\x04" + good[4:])]:
#         (Path(tmp) / "bad.idx").write_bytes(bad)
#         try:
#             read_idx(Path(tmp) / "bad.idx")
#         except ValueError as e:
#             print(f"{label:12s}", str(e).replace(tmp, "<tmp>"))
#         else:
#             raise AssertionError(f"{label} was accepted")

# %% [markdown]
# ## 3. Loading MNIST
#
# `load_mnist` returns the official split: 60,000 training and 10,000 test images. By default
# the images are flattened to rows of $28\cdot 28 = 784$ features (batch-first, as every layer
# expects) and scaled to float32 in $[0, 1]$ by dividing by 255; labels are int64 class indices.
# `scale=False` keeps the raw uint8 pixels, `flatten=False` the 28×28 shape.

# %%
def load_mnist(data_dir=None, *, scale=True, flatten=True, **mnist_dir_kwargs):
    """Return ((X_train, y_train), (X_test, y_test)): the official 60,000/10,000 split of MNIST.

    X: float32 in [0, 1] (scale=True) or uint8 (scale=False), of shape (m, 784) (flatten=True)
    or (m, 28, 28). y: int64 class indices of shape (m,). The files are found by mnist_dir
    (data_dir and **mnist_dir_kwargs are passed on to it).
    """
    folder = mnist_dir(data_dir, **mnist_dir_kwargs)
    splits = []
    for prefix in ("train", "t10k"):
        images, labels = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
        X, y = read_idx(images), read_idx(labels)
        if X.ndim != 3 or X.dtype != np.uint8:
            raise ValueError(f"load_mnist: {images}: expected uint8 images of shape (m, rows, cols), found {X.dtype} {X.shape}")
        if y.ndim != 1 or y.dtype != np.uint8 or len(y) != len(X):
            raise ValueError(f"load_mnist: {labels}: expected {len(X)} uint8 labels (one per image of {images.name}), "
                             f"found {y.dtype} {y.shape}")
        if len(y) and y.max() > 9:
            raise ValueError(f"load_mnist: {labels}: labels must be 0-9, found {y.max()}")
        if flatten:
            X = X.reshape(len(X), -1)
        if scale:
            X = np.divide(X, np.float32(255), dtype=np.float32)   # one pass, exact k/255, 255 -> 1.0
        splits.append((X, y.astype(np.int64)))
    return tuple(splits)


# %% [markdown]
# The checks that this is the real MNIST: shapes, range, the first labels, and the number of
# images per class (known values):

# %% tags=["active-ipynb"]
# (X_train, y_train), (X_test, y_test) = load_mnist()
# print("train:", X_train.shape, X_train.dtype, y_train.shape, y_train.dtype, "  test:", X_test.shape, y_test.shape)
# print("pixel range:", X_train.min(), X_train.max(), "  first labels:", y_train[:10], y_test[:10])
# counts_train, counts_test = np.bincount(y_train, minlength=10), np.bincount(y_test, minlength=10)
# print("per class, train:", counts_train, "\n           test: ", counts_test)
# assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784) and X_train.dtype == np.float32
# assert y_train.dtype == np.int64 and X_train.min() == 0.0 and X_train.max() == 1.0
# assert list(y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4] and list(y_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
# assert list(counts_train) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
# assert list(counts_test) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

# %% [markdown]
# How long does loading take? The median of several full loads (both splits, from the gzip
# files, scaled to float32), and where the time goes for the big file:

# %% tags=["active-ipynb"]
# times = []
# for _ in range(3 if quick_mode() else 7):
#     t0 = time.perf_counter()
#     load_mnist()
#     times.append(time.perf_counter() - t0)
# raw = (folder / "train-images-idx3-ubyte.gz").read_bytes()
# t0 = time.perf_counter(); unzipped = gzip.decompress(raw); t_unzip = time.perf_counter() - t0
# t0 = time.perf_counter(); X_u8 = np.frombuffer(unzipped, np.uint8, offset=16).reshape(-1, 784); t_view = time.perf_counter() - t0
# t0 = time.perf_counter(); np.divide(X_u8, np.float32(255), dtype=np.float32); t_scale = time.perf_counter() - t0
# print(f"load_mnist(): median {np.median(times):.2f} s over {len(times)} runs (min {min(times):.2f} s, max {max(times):.2f} s)")
# print(f"train images: gunzip {t_unzip:.3f} s, np.frombuffer {t_view * 1e6:.0f} µs (no copy), scale to float32 {t_scale:.3f} s")
# assert np.median(times) < 5, "loading should take about a second; something is very slow"

# %% [markdown]
# Decompression (zlib, in C) dominates; `np.frombuffer` costs nothing because it only puts
# an array header on bytes already in memory. A pixel loop in Python would take minutes.
#
# ### A look at the data
#
# The first 40 training digits, with their labels:

# %% tags=["active-ipynb"]
# fig, axes = plt.subplots(4, 10, figsize=(10, 4.6))
# for i, ax in enumerate(axes.flat):
#     ax.imshow(X_train[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
#     ax.set_title(str(y_train[i]), fontsize=10)
#     ax.axis("off")
# fig.suptitle("The first 40 MNIST training images and their labels")
# fig.tight_layout()
# save_figure(fig, "08_digits.png")
# plt.show()

# %% [markdown]
# The classes are not exactly balanced: there are 6,742 ones but only 5,421 fives in the
# training set. A classifier that always answers "1" would score $1135/10000 = 11.35\,\%$ on
# the test set, the floor any model must beat. Train and test have nearly the same proportions:

# %% tags=["active-ipynb"]
# share_train, share_test = counts_train / counts_train.sum(), counts_test / counts_test.sum()
# print("largest class share, train/test:", f"{share_train.max():.4f} / {share_test.max():.4f}",
#       "  max |train share - test share| =", f"{np.abs(share_train - share_test).max():.4f}")
# assert np.argmax(counts_test) == 1 and share_test.max() == 0.1135 and np.abs(share_train - share_test).max() < 0.01
#
# fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
# for ax, counts, name in [(axes[0], counts_train, "training set (60,000)"), (axes[1], counts_test, "test set (10,000)")]:
#     ax.bar(range(10), counts, color="tab:blue")
#     ax.axhline(counts.mean(), color="k", ls="--", lw=1, label="balanced")
#     ax.set(xticks=range(10), xlabel="digit", ylabel="images", title=f"Label counts, {name}")
#     ax.legend(loc="lower right")
# fig.tight_layout()
# save_figure(fig, "08_class_balance.png")
# plt.show()

# %% [markdown]
# The mean image of each class: the average "shape" of a digit. A linear classifier is, roughly,
# a template match against pictures like these, which is why even softmax regression — one Dense layer, no hidden units —
# gets most digits right ([chapter 03, section 7](03_cross_entropy.ipynb) trains one and prints its accuracy).

# %% tags=["active-ipynb"]
# means = np.stack([X_train[y_train == c].mean(axis=0) for c in range(10)])
# # check: the class means, weighted by the class sizes, give back the overall mean image
# assert np.allclose(counts_train @ means / len(y_train), X_train.mean(axis=0, dtype=np.float64), atol=1e-5)
# fig, axes = plt.subplots(1, 10, figsize=(10, 1.6))
# for c, ax in enumerate(axes):
#     ax.imshow(means[c].reshape(28, 28), cmap="gray_r"); ax.set_title(str(c)); ax.axis("off")
# fig.suptitle("Mean training image per class", y=1.08)
# save_figure(fig, "08_mean_digits.png")
# plt.show()


# %% [markdown]
# ## 4. A validation set, cut from the training data
#
# Training chooses things: the learning rate, the number of epochs, the architecture, when to
# stop. Each choice made by looking at a score fits the model a little to the data behind that
# score. So three roles need three sets:
#
# * **training set**: the data the gradients come from;
# * **validation set**: held out from training, used for every choice and every plot during development;
# * **test set**: the official 10,000 images, used **once**, for the final number. Only then is the
#   number an honest estimate of accuracy on new digits, comparable with published MNIST results
#   (all measured on exactly these 10,000 images).
#
# `train_val_split` draws the validation set at random from the training data, with the
# generator you pass in (so a seed reproduces it).
#
# **The original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn) got this wrong.** It joined all 70,000 images and took an unshuffled 80/20 split:
# the first 56,000 for training and the last 14,000 for "evaluation", which are the last 4,000
# *training* images plus all 10,000 *test* images. The test set was thus used for evaluation
# during development (so its final score is no longer an unbiased estimate), the reported numbers
# are on a mixed set that matches no published result, and the split depends on the order of the
# files rather than on chance (LeCun's page notes that the first 5,000 test images, from NIST's
# SD-3, are cleaner and easier than the last 5,000, from SD-1: a split by position is not
# a random sample). The cell rebuilds that split to show what it contained.

# %%
def train_val_split(X, y, n_val, rng):
    """Split (X, y) at random into ((X_tr, y_tr), (X_val, y_val)) with n_val validation samples.

    Use it on the TRAINING data only; the test set stays untouched until the final evaluation.
    Both parts keep the original order of their samples (the subsets are random, not their order).
    """
    X, y = _check_Xy("train_val_split", X, y)
    if not _is_count(n_val) or not 0 < n_val < len(X):
        raise ValueError(f"train_val_split: n_val must be an integer with 0 < n_val < {len(X)} (the number of "
                         f"samples), got {n_val!r}")
    order = _check_rng("train_val_split", rng).permutation(len(X))
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (X[tr], y[tr]), (X[val], y[val])


# %% tags=["active-ipynb"]
# (X_tr, y_tr), (X_val, y_val) = train_val_split(X_train, y_train, 10_000, np.random.default_rng(0))
# print("training part:", X_tr.shape, "  validation part:", X_val.shape)
# print("validation counts per class:", np.bincount(y_val, minlength=10))
# # every training image lands in exactly one part: the class counts add up, and so do the pixel sums
# assert np.array_equal(np.bincount(y_tr, minlength=10) + np.bincount(y_val, minlength=10), counts_train)
# assert np.isclose(X_tr.sum(dtype=np.float64) + X_val.sum(dtype=np.float64), X_train.sum(dtype=np.float64))
# (_, _), (X_val2, y_val2) = train_val_split(X_train, y_train, 10_000, np.random.default_rng(0))
# assert np.array_equal(X_val, X_val2) and np.array_equal(y_val, y_val2)   # same seed, same split
#
# # the original's "evaluation" set: the last 20 % of all 70,000, unshuffled
# X_all = np.concatenate([X_train, X_test])
# X_eval = X_all[int(0.8 * len(X_all)):]
# print(f"original 'evaluation' set: {len(X_eval)} images = {len(X_eval) - len(X_test)} training images "
#       f"+ all {len(X_test)} test images")
# assert np.array_equal(X_eval[:4000], X_train[-4000:]) and np.array_equal(X_eval[4000:], X_test)

# %% [markdown]
# ## 5. Mini-batches: one epoch
#
# An **epoch** is one pass over the training set. Mini-batch gradient descent shuffles the
# samples (a fresh random permutation $\pi$ each epoch), then cuts the permuted data into
# contiguous batches of $B$ samples: batch $k$ holds the samples $\pi(kB), \dots, \pi(kB + B - 1)$.
# With $m$ samples the epoch has
#
# $$\left\lceil m / B \right\rceil \text{ batches (the last one smaller when } B \nmid m\text{)}, \quad
#   \text{or } \left\lfloor m / B \right\rfloor \text{ with } \texttt{drop\_last=True}.$$
#
# Without a generator, `batches` keeps the order (for evaluation, where order does not matter
# and reproducibility is free). Each call draws a new permutation from the generator, so calling
# it once per epoch reshuffles every epoch. Unshuffled batches are views (no copy);
# shuffled ones gather their rows by fancy indexing, one batch at a time.


# %%
def _epoch_end(m, batch_size, drop_last):
    """Where the batches of one epoch stop: all m samples, or the last full batch."""
    return m - m % batch_size if drop_last else m


def _stream_stop(m, batch_size, drop_last, start):
    """End of the stream's batch starting at `start`: a 1-sample remainder joins the batch before it."""
    stop = min(start + batch_size, m)
    if not drop_last and m - stop == 1 and stop > start + 1:
        stop = m
    return stop


def _take(X, y, order, start, stop):
    """Samples start..stop-1 of the data in the given order (None: the stored order, as views)."""
    if order is None:
        return X[start:stop], y[start:stop]
    idx = order[start:stop]
    return X.take(idx, axis=0), y.take(idx, axis=0)     # the rows, copied (take: less overhead than X[idx])


def _one_epoch(X, y, order, batch_size, drop_last):
    for start in range(0, _epoch_end(len(X), batch_size, drop_last), batch_size):
        yield _take(X, y, order, start, start + batch_size)


def batches(X, y, batch_size, rng=None, drop_last=False):
    """Iterate over ONE epoch of (X_batch, y_batch): contiguous batches of the data, permuted by rng.

    rng: a numpy Generator (a fresh permutation on every call), or None to keep the order.
    drop_last: drop the last batch when it has fewer than batch_size samples.
    """
    X, y = _check_Xy("batches", X, y)
    batch_size = _check_batch_size("batches", batch_size)
    order = None if rng is None else _check_rng("batches", rng).permutation(len(X))
    return _one_epoch(X, y, order, batch_size, drop_last)   # the checks above run now, not at the first next()


# %% tags=["active-ipynb"]
# X10, y10 = np.arange(10).reshape(10, 1), np.arange(10)
# print("in order:      ", [yb.tolist() for _, yb in batches(X10, y10, 4)])
# print("drop_last:     ", [yb.tolist() for _, yb in batches(X10, y10, 4, drop_last=True)])
# rng_demo = np.random.default_rng(1)
# print("shuffled, 2x:  ", [yb.tolist() for _, yb in batches(X10, y10, 4, rng_demo)],
#       [yb.tolist() for _, yb in batches(X10, y10, 4, rng_demo)])
# # check: batch k holds pi(kB) ... pi(kB + B - 1), with pi the permutation the same seed draws
# pi = np.random.default_rng(1).permutation(10)
# assert all(np.array_equal(yb, pi[4 * k:4 * k + 4]) for k, (_, yb) in enumerate(batches(X10, y10, 4, np.random.default_rng(1))))
#
# m, B = len(X_tr), 128
# n_full = sum(1 for _ in batches(X_tr, y_tr, B, rng))
# n_drop = sum(1 for _ in batches(X_tr, y_tr, B, rng, drop_last=True))
# print(f"m = {m}, B = {B}: {n_full} batches (ceil), {n_drop} with drop_last (floor); last batch "
#       f"{len(list(batches(X_tr, y_tr, B))[-1][0])} samples")
# assert n_full == -(-m // B) == int(np.ceil(m / B)) and n_drop == m // B
#
# t0 = time.perf_counter()
# seen = np.zeros(10, dtype=np.int64)
# for X_batch, y_batch in batches(X_tr, y_tr, B, rng):
#     seen += np.bincount(y_batch, minlength=10)
# print(f"one shuffled epoch, only fetching the batches: {time.perf_counter() - t0:.2f} s")
# assert np.array_equal(seen, np.bincount(y_tr, minlength=10))    # every sample once per epoch


# %% [markdown]
# ## 6. An endless, resumable stream of batches
#
# A training loop in the style of Trax (chapter 09) does not count epochs: it asks its task's
# `labeled_data` for the next batch, step after step. `BatchStream` is that iterator: it serves
# batches from a permutation exactly like `batches`, and when an epoch is used up it draws the next
# permutation and goes on. It counts `epoch` (the epoch the next batch comes from, i.e. the number of
# finished epochs) and `position` (where in the permutation the next batch starts); by default it
# drops the last partial batch, so that every step sees $B$ samples.
#
# With `drop_last=False` it keeps every sample, with one exception: a last batch of **one** sample
# is folded into the batch before it (which then holds $B+1$). One sample is a useless gradient
# step (a single image's gradient, weighted like a full batch), and BatchNorm cannot train on it at
# all: its batch variance is 0, so $\hat x = 0$ and every gradient through it vanishes, and chapter 05
# refuses such a batch. Folding, not dropping: every sample is still seen once per epoch, and no
# valid setting (129 samples at batch 128, say) can crash a run in its last step of an epoch.
#
# A training run that stops and **resumes** from a checkpoint must continue with exactly the
# batches it would have seen. `state_dict()` returns everything that decides them as plain
# arrays, ready for `np.savez`: the current permutation, `position`, `epoch`, and the state of the
# random generator, written as JSON text (no pickle: loading a pickle can run arbitrary code).
# `load_state_dict` puts them back.


# %%
class BatchStream:
    """Endless iterator over shuffled epochs of (X_batch, y_batch), resumable via state_dict()."""

    def __init__(self, X, y, batch_size, rng, drop_last=True):
        self.X, self.y = _check_Xy("BatchStream", X, y)
        self.batch_size = _check_batch_size("BatchStream", batch_size)
        self.rng = _check_rng("BatchStream", rng)
        self.drop_last = bool(drop_last)
        m = len(self.X)
        if self.drop_last and self.batch_size > m:
            raise ValueError(f"BatchStream: batch_size {self.batch_size} > {m} samples: with drop_last=True an epoch "
                             f"would hold no batch")
        self.batches_per_epoch = m // self.batch_size if self.drop_last else -(-m // self.batch_size)
        if not self.drop_last and m % self.batch_size == 1 and m > 1:
            self.batches_per_epoch -= 1          # the lone last sample is folded into the batch before
        self.permutation = self.rng.permutation(m)
        self.position = 0
        self.epoch = 0

    def __repr__(self):
        return (f"BatchStream(m={len(self.X)}, batch_size={self.batch_size}, drop_last={self.drop_last}, "
                f"epoch={self.epoch}, position={self.position})")

    def __iter__(self):
        return self

    def __next__(self):
        start = self.position
        self.position = _stream_stop(len(self.X), self.batch_size, self.drop_last, start)
        batch = _take(self.X, self.y, self.permutation, start, self.position)
        if self.position >= _epoch_end(len(self.X), self.batch_size, self.drop_last):
            # epoch used up: draw the next permutation now, so that the state always describes the NEXT batch
            self.permutation = self.rng.permutation(len(self.X))
            self.position = 0
            self.epoch += 1
        return batch

# %% [markdown]
# Its state, for a checkpoint (chapter 09), as plain arrays:

# %%
# %%
def _to_json(value):
    """json.dumps helper for generator states: arrays and numpy integers become plain lists and ints."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    raise TypeError(f"cannot store {type(value).__name__} in a generator state")


@add_to_class(BatchStream, "state_dict")
def _state_dict(self):
    """Everything that decides the following batches, as arrays (np.savez-friendly, no pickle)."""
    return {"permutation": self.permutation.copy(),
            "position": np.array(self.position, dtype=np.int64),
            "epoch": np.array(self.epoch, dtype=np.int64),
            "batch_size": np.array(self.batch_size, dtype=np.int64),
            "drop_last": np.array(self.drop_last),
            "rng_state": np.array(json.dumps(self.rng.bit_generator.state, default=_to_json))}


@add_to_class(BatchStream, "load_state_dict")
def _load_state_dict(self, state):
    """Restore a state from state_dict() (a dict or an np.load result); the data must be the same."""
    m = len(self.X)
    permutation = np.asarray(state["permutation"])
    position, epoch = int(state["position"]), int(state["epoch"])
    settings, ours = (int(state["batch_size"]), bool(state["drop_last"])), (self.batch_size, self.drop_last)
    if settings != ours:
        raise ValueError(f"BatchStream: the state is for (batch_size, drop_last) = {settings}, this stream has {ours}")
    if permutation.shape != (m,) or not np.array_equal(np.sort(permutation), np.arange(m)):
        raise ValueError(f"BatchStream: the state's permutation (shape {permutation.shape}) is not a permutation "
                         f"of this stream's {m} samples")
    if not 0 <= position < _epoch_end(m, self.batch_size, self.drop_last) or epoch < 0:
        raise ValueError(f"BatchStream: invalid position {position} or epoch {epoch} for {m} samples")
    try:
        self.rng.bit_generator.state = json.loads(str(np.asarray(state["rng_state"])))
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"BatchStream: cannot restore the generator state into "
                         f"{type(self.rng.bit_generator).__name__}: {e}") from None
    self.permutation, self.position, self.epoch = permutation.astype(np.int64), position, epoch

# %% [markdown]
# The stream in use: 1,000 steps of batch 128 over the 50,000 training images. An epoch holds
# $\lfloor 50000/128\rfloor = 390$ batches, so after 1,000 steps the stream has finished 2 epochs
# and served 220 batches of the third: `epoch` = 2 and `position` = 220 · 128 = 28,160 (it counts
# samples). Every epoch shows each sample at most once (exactly once, minus the 80 dropped).

# %% tags=["active-ipynb"]
# stream = BatchStream(X_tr, y_tr, 128, np.random.default_rng(42))
# counts = np.zeros(len(X_tr), dtype=np.int64)
# ids = np.arange(len(X_tr))    # stream the sample indices alongside, to count who is seen
# id_stream = BatchStream(X_tr[:, :1], ids, 128, np.random.default_rng(42))
# for step in range(1000):
#     X_batch, y_batch = next(stream)
#     _, id_batch = next(id_stream)
#     if step < 390:
#         counts[id_batch] += 1
# print(stream, "  batches per epoch:", stream.batches_per_epoch)
# print("first epoch: samples seen once:", (counts == 1).sum(), " never:", (counts == 0).sum(), " twice or more:", (counts > 1).sum())
# assert stream.batches_per_epoch == 50000 // 128 == 390 and X_batch.shape == (128, 784)
# assert (stream.epoch, stream.position) == (1000 // 390, (1000 % 390) * 128) == (2, 28160)
# assert (counts == 1).sum() == 390 * 128 and (counts == 0).sum() == 50000 % 128 and counts.max() == 1
#
# # keeping every sample (drop_last=False): 129 samples at batch 128 make ONE batch of 129, not 128 + 1
# stream_129 = BatchStream(X_tr[:129], y_tr[:129], 128, np.random.default_rng(0), drop_last=False)
# print("129 samples, batch 128, drop_last=False:", stream_129.batches_per_epoch, "batch of",
#       len(next(stream_129)[0]), "samples")
# assert stream_129.batches_per_epoch == 1 and stream_129.epoch == 1

# %% [markdown]
# And the resume check: save the state after 500 steps through an `.npz` file (loaded with
# `allow_pickle=False`), let the original run 500 more steps (across an epoch boundary), and let a
# **new** stream, built with a differently seeded generator, load the saved state: its next 500
# batches must be bit for bit those of the original.

# %% tags=["active-ipynb"]
# original = BatchStream(X_tr, y_tr, 128, np.random.default_rng(7))
# for _ in range(500):
#     next(original)
# with tempfile.TemporaryDirectory() as tmp:
#     np.savez(Path(tmp) / "stream.npz", **original.state_dict())
#     saved = dict(np.load(Path(tmp) / "stream.npz", allow_pickle=False))
# print({k: (v.shape, v.dtype.str) for k, v in saved.items()})
# resumed = BatchStream(X_tr, y_tr, 128, np.random.default_rng(12345))
# resumed.load_state_dict(saved)
# same = all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(
#     (next(original) for _ in range(500)), (next(resumed) for _ in range(500))))
# print("epochs now:", original.epoch, resumed.epoch, "  identical batches after resume:", same)
# assert same and original.epoch == resumed.epoch == 2 and original.position == resumed.position


# %% [markdown]
# ## Engineering: a verified download, the cache, leftovers
#
# The ideas of this chapter are complete without this section: it makes the data arrive, and arrive right,
# on any machine. A mirror can be down, can serve an error page with status 200, or can break the connection
# half-way; so every downloaded file is checked against the SHA-256 of the official file, and it only gets
# its real name after the check passed. These are the functions `mnist_dir` calls.

# %%
class MNISTDownloadError(FileNotFoundError):
    """No mirror delivered a file with the right SHA-256; the message lists every attempt."""


class MNISTChecksumError(ValueError):
    """A file in a folder you named is not the official MNIST file (its SHA-256 differs)."""


def default_cache_dir():
    """The MNIST cache folder: $DIYDNN_CACHE_DIR/mnist, else $XDG_CACHE_HOME/diydnn/mnist, else ~/.cache/diydnn/mnist."""
    if os.environ.get("DIYDNN_CACHE_DIR"):
        return Path(os.environ["DIYDNN_CACHE_DIR"]).expanduser() / "mnist"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "diydnn" / "mnist"


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

# %%
VERIFIED_MEMO = "verified.json"   # in the cache folder: files already hashed, by path + size + mtime


class _VerifiedMemo:
    """SHA-256 of files, remembered by (absolute path, size, mtime in ns) in cache/verified.json.

    Hashing the 55 MB of MNIST takes a noticeable part of a load; a file whose size and modification
    time have not changed since it was hashed is not read again. Any edit, copy or download changes
    the mtime, so it is hashed anew. The memo is a cache only: a missing, unreadable or corrupt memo
    just means hashing again, and a read-only cache folder means not remembering.
    """

    def __init__(self, cache):
        self.path, self.changed = Path(cache) / VERIFIED_MEMO, False
        try:
            self.entries = json.loads(self.path.read_text())
            if not isinstance(self.entries, dict):
                raise ValueError("not a dict")
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, path):
        path = Path(path).resolve()
        st = path.stat()
        entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        known = self.entries.get(str(path))
        if isinstance(known, dict) and all(known.get(k) == v for k, v in entry.items()) and "sha256" in known:
            return known["sha256"]
        entry["sha256"] = _sha256(path)
        self.entries[str(path)] = entry
        self.changed = True
        return entry["sha256"]

    def save(self):
        if not self.changed:
            return
        # forget files that are gone (temporary folders), so the memo stays small
        self.entries = {k: v for k, v in self.entries.items() if os.path.exists(k)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, lambda f: f.write(json.dumps(self.entries, indent=1, sort_keys=True).encode()))
            self.changed = False
        except OSError:
            pass   # cannot write the cache folder: the files were still verified, only not remembered

# %%
def _process_alive(pid):
    """True when a process with this id runs (or may run: on Windows we cannot ask safely)."""
    if pid <= 0:
        return False
    if os.name == "nt":          # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)          # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:      # exists, owned by someone else
        return True
    return True


def _remove_stale_parts(dest):
    """Remove `.NAME.PID.xxxx.part` files of `dest` left by downloads whose process is gone (only those)."""
    prefix = f".{dest.name}."
    for part in dest.parent.glob(f".{glob.escape(dest.name)}.*.part"):
        pid = part.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or not _process_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()


def _complete_folder(folder, source, checksums, cache):
    """The folder, if it holds all four files with the right SHA-256 (unless checksums is None).

    Missing files: a FileNotFoundError naming the folder and the files. A file with another
    SHA-256: a MNISTChecksumError naming the file, both hashes and what to do.
    """
    folder = Path(folder).expanduser()
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing:
        state = "does not exist" if not folder.is_dir() else "lacks " + ", ".join(missing)
        raise FileNotFoundError(f"mnist_dir: the MNIST folder {folder} (from {source}) {state}; "
                                f"it must hold the four files {', '.join(MNIST_FILES)}")
    if checksums is None:        # the caller's own files (e.g. Fashion-MNIST): taken as they are
        return folder
    memo = _VerifiedMemo(cache)
    for name in MNIST_FILES:
        got = memo.sha256(folder / name)
        if got != checksums[name]:
            memo.save()
            raise MNISTChecksumError(
                f"mnist_dir: {folder / name} (from {source}) is not the official MNIST file: expected SHA-256 "
                f"{checksums[name]}, got {got} ({(folder / name).stat().st_size:,} bytes). It is damaged or "
                f"another data set. Replace it with the official file, or stop pointing the loader at this folder "
                f"(without data_dir and DIYDNN_DATA_DIR it downloads a verified copy into the cache), or pass "
                f"checksums=None to use your own files unverified.")
    memo.save()
    return folder

# %%
class _BadDownload(Exception):
    """A download that arrived but must not be kept (truncated or wrong checksum)."""


def _fetch(url, dest, sha256, timeout):
    """Download url into a temporary file beside dest, check length and SHA-256, then rename it to dest.

    On any failure (or Ctrl-C) the temporary file is removed, so the folder never holds a half file.
    A download killed outright (kill -9, power cut) cannot clean up: its `.part` file is removed here,
    by the next download of the same file (see the engineering section).
    """
    _remove_stale_parts(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=".part")
    try:
        h, n = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            size = response.headers.get("Content-Length")
            size = int(size) if size is not None else None
            try:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
            except http.client.IncompleteRead as e:
                raise _BadDownload(f"truncated: the connection closed after {n + len(e.partial):,} bytes"
                                   + (f" of {size:,}" if size else "")) from None
        if size is not None and n != size:   # http.client may return a short body without complaint
            raise _BadDownload(f"truncated: received {n:,} of {size:,} bytes (Content-Length)")
        got = h.hexdigest()
        if got != sha256:
            raise _BadDownload(f"checksum mismatch: expected SHA-256 {sha256}, got {got} ({n:,} bytes)")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _why(error, timeout):
    """A short reason for a failed download attempt."""
    if isinstance(error, _BadDownload):
        return str(error)
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP error {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"cannot connect: {error.reason}"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout} s"
    return f"{type(error).__name__}: {error}"

# %%
def _missing_from_cache(cache, checksums):
    """(names of the files the cache lacks or holds damaged, {name: [why]}); verified files are remembered."""
    todo, notes = [], {}
    memo = _VerifiedMemo(cache)
    for name in MNIST_FILES:
        if (cache / name).is_file():
            got = memo.sha256(cache / name)
            if got == checksums[name]:
                continue
            notes[name] = [f"the cached copy has SHA-256 {got}, expected {checksums[name]}"]
        todo.append(name)
    memo.save()
    return todo, notes


def _download(todo, notes, cache, mirrors, checksums, timeout):
    """Download the files `todo` into `cache` from the first mirror that delivers each one verified;
    a MNISTDownloadError listing every attempt when a file cannot be had (or DIYDNN_OFFLINE is set)."""
    if _offline():
        raise MNISTDownloadError("\n".join(
            [f"mnist_dir: the MNIST file(s) {', '.join(todo)} are not in the cache folder {cache}, and "
             f"DIYDNN_OFFLINE is set, so nothing is downloaded."] + _how_to_provide(cache)))
    cache.mkdir(parents=True, exist_ok=True)
    failures = {}
    for name in todo:
        tried = notes.get(name, [])
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            print(f"diydnn: downloading {url}", file=sys.stderr)
            try:
                _fetch(url, cache / name, checksums[name], timeout)
                break
            except (_BadDownload, OSError, ValueError, http.client.HTTPException) as e:
                tried.append(f"{url}: {_why(e, timeout)}")
        else:
            failures[name] = tried or ["no mirrors given"]
    if failures:
        lines = [f"mnist_dir: could not get {len(failures)} MNIST file(s) into the cache folder {cache}."]
        for name, tried in failures.items():
            lines += [f"  {name}:"] + [f"    {t}" for t in tried]
        lines += ["Nothing half-downloaded was kept."] + _how_to_provide(cache)
        raise MNISTDownloadError("\n".join(lines))


def _how_to_provide(cache):
    """The lines of an error message that say how to give the loader the files by hand."""
    return ["To use MNIST without a download, get the four files",
            f"({', '.join(MNIST_FILES)}; their SHA-256 are in MNIST_SHA256) and either",
            "  - put them in a folder and set the environment variable DIYDNN_DATA_DIR to it "
            "(or pass data_dir=that folder), or",
            f"  - copy them into the cache folder {cache}"]


def _offline():
    """True when DIYDNN_OFFLINE is set to a non-empty value other than "0": never download."""
    return os.environ.get("DIYDNN_OFFLINE", "") not in ("", "0")

# %% [markdown]
# The download machinery at work, without the internet: `urllib` also opens `file://` URLs, so
# the folder `mnist_dir()` found serves as a "mirror", and a closed port on this machine plays a
# dead one. The first mirror refuses the connection, the second delivers, and every file is verified
# before it appears in the (temporary) cache. A second call downloads nothing. (`DIYDNN_DATA_DIR`,
# when set, comes before the cache, so the demos hide it for a moment.)


# %% tags=["active-ipynb"]
# with socket.socket() as s:   # a port nobody listens on: connecting to it is refused at once
#     s.bind(("127.0.0.1", 0))
#     dead_mirror = f"http://127.0.0.1:{s.getsockname()[1]}/"
#
# @contextlib.contextmanager
# def download_log(**placeholders):
#     """Show the loader's "downloading" lines with local paths replaced (stored outputs hold no absolute paths)."""
#     log = io.StringIO()
#     try:
#         with contextlib.redirect_stderr(log):
#             yield
#     finally:
#         text = log.getvalue().replace(folder.as_uri(), "<mnist>")
#         for name, path in placeholders.items():
#             text = text.replace(Path(path).as_uri(), f"<{name}>").replace(str(path), f"<{name}>")
#         print(text, end="")
#
# @contextlib.contextmanager
# def no_data_dir_env():
#     """Hide DIYDNN_DATA_DIR inside the with-block, so that mnist_dir goes on to the cache."""
#     saved = os.environ.pop("DIYDNN_DATA_DIR", None)
#     try:
#         yield
#     finally:
#         if saved is not None:
#             os.environ["DIYDNN_DATA_DIR"] = saved
#
# with tempfile.TemporaryDirectory() as tmp, no_data_dir_env(), download_log(tmp=tmp):
#     cache = mnist_dir(mirrors=[dead_mirror, folder.as_uri() + "/"], cache_dir=Path(tmp) / "cache", timeout=5)
#     print("cache now holds:", sorted(p.name for p in cache.iterdir()))
#     assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES)
#     assert mnist_dir(mirrors=[], cache_dir=cache) == cache    # all present and verified: no download


# %% [markdown]
# And when every mirror serves something wrong (here: four small files of junk), the error says
# what was tried, what was wrong, and where to put the files by hand; the cache stays empty.

# %% tags=["active-ipynb"]
# with tempfile.TemporaryDirectory() as tmp, no_data_dir_env(), download_log(tmp=tmp):
#     junk = Path(tmp) / "junk"; junk.mkdir()
#     for name in MNIST_FILES:
#         (junk / name).write_bytes(b"<html>Service unavailable</html>")
#     try:
#         mnist_dir(mirrors=[dead_mirror, junk.as_uri()], cache_dir=Path(tmp) / "cache", timeout=5)
#     except MNISTDownloadError as e:
#         print(str(e).replace(tmp, "<tmp>"))
#     else:
#         raise AssertionError("junk was accepted")
#     assert list((Path(tmp) / "cache").iterdir()) == []


# %% [markdown]
# ### Input checks
#
# `train_val_split`, `batches` and `BatchStream` refuse what they cannot use, naming the function and what was
# given: data that is not batch-first or of unequal lengths, a generator that is not a `np.random.Generator`
# (a seed or the legacy global state would make the split unreproducible or shared), a count or batch size
# that is not a positive integer.

# %%
def _check_Xy(who, X, y):
    """X and y as arrays; X at least 2-D (batch-first), y at least 1-D, equal non-zero lengths."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2 or y.ndim < 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{who}: expected X of shape (m, ...) with at least 2 dimensions and y of shape (m, ...) "
                         f"with the same m > 0; got X {X.shape}, y {y.shape}")
    return X, y


def _check_rng(who, rng):
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{who}: rng must be a numpy Generator, e.g. np.random.default_rng(0); got {rng!r}")
    return rng


def _is_count(n):
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


def _check_batch_size(who, batch_size):
    return as_count(batch_size, "batch_size", who)


# %% tags=["active-ipynb"]
# for action in (lambda: train_val_split(X_train[:10], y_train[:9], 2, np.random.default_rng(0)),
#                lambda: train_val_split(X_train[:10], y_train[:10], 2, 0),
#                lambda: batches(X_train[:10], y_train[:10], 0),
#                lambda: BatchStream(X_train[:10], y_train[:10], 2.5, np.random.default_rng(0))):
#     try:
#         action()
#     except ValueError as e:
#         print("ValueError:", e)
#     else:
#         raise AssertionError("bad arguments were accepted")

# %% [markdown]
# ### Every file verified, quickly; leftovers of killed downloads
#
# **Verified wherever it comes from.** A folder you name (`data_dir=` or `DIYDNN_DATA_DIR`) is checked
# against the published SHA-256 just like the cache: a damaged copy, a half-copied file or another data set
# under the MNIST names would otherwise train and test on the wrong data without a word. The refusal names
# the file, both hashes and the ways out (the official file, the cache, or `checksums=None` for your own
# files, e.g. Fashion-MNIST).
#
# **Quickly.** Hashing the four files costs about as much as a quarter of the load, on every load. So
# `mnist_dir` remembers each verified file in a small JSON file in the cache folder (`verified.json`),
# under its absolute path with its size and modification time in nanoseconds; while those are unchanged the
# file is not read again. Anything that rewrites a file (an edit, a copy, a download) changes its mtime, so
# it is hashed anew. The memo is written atomically, and a missing or corrupt memo only means hashing again.
#
# **Leftovers.** A download writes `.NAME.PID.xxxx.part` beside its target and renames it at the end; a
# download killed outright (kill -9, power cut) leaves the `.part` behind. The next download of the same
# file removes those whose process no longer runs, and nothing else.


# %% tags=["active-ipynb"]
# with tempfile.TemporaryDirectory() as tmp:
#     tmp = Path(tmp)
#     t0 = time.perf_counter(); mnist_dir(folder, cache_dir=tmp / "cache"); t_first = time.perf_counter() - t0
#     t0 = time.perf_counter(); mnist_dir(folder, cache_dir=tmp / "cache"); t_again = time.perf_counter() - t0
#     memo = json.loads((tmp / "cache" / VERIFIED_MEMO).read_text())
#     print(f"verify the named folder: {t_first * 1000:.0f} ms the first time, {t_again * 1000:.1f} ms when remembered")
#     entry = memo[str((folder / MNIST_FILES[0]).resolve())]
#     print(f"{VERIFIED_MEMO}: {len(memo)} entries, e.g. {MNIST_FILES[0]}: size {entry['size']:,}, sha256 {entry['sha256'][:16]}...")
#     assert len(memo) == 4 and all(e["sha256"] == MNIST_SHA256[Path(k).name] for k, e in memo.items())
#
#     # a named folder with one wrong file: refused, naming the file and both hashes
#     mine = tmp / "mine"; mine.mkdir()
#     for name in MNIST_FILES[:3]:
#         (mine / name).symlink_to(folder / name)
#     (mine / MNIST_FILES[3]).write_bytes(gzip.compress(b"not MNIST", mtime=0))
#     try:
#         mnist_dir(mine, cache_dir=tmp / "cache")
#     except MNISTChecksumError as e:
#         print("\nMNISTChecksumError:", str(e).replace(str(tmp), "<tmp>"))
#     else:
#         raise AssertionError("a wrong file was accepted")
#
#     # the .part file of a killed download of one file; another file's .part and a file of yours stay
#     with no_data_dir_env(), download_log(tmp=tmp):
#         cache = mnist_dir(mirrors=[folder.as_uri() + "/"], cache_dir=tmp / "dl")
#         (cache / MNIST_FILES[1]).unlink()
#         leftovers = [cache / f".{MNIST_FILES[1]}.99999999.k1ll3d.part", cache / f".{MNIST_FILES[2]}.99999999.abc.part",
#                      cache / "my-notes.part"]
#         for p in leftovers:
#             p.write_bytes(b"half a download")
#         mnist_dir(mirrors=[folder.as_uri() + "/"], cache_dir=cache)
#     print("\nafter downloading", MNIST_FILES[1], "again:", sorted(p.name for p in cache.glob("*.part")))
#     assert not leftovers[0].exists() and leftovers[1].exists() and leftovers[2].exists()


# %% [markdown]
# ## Summary
#
# * MNIST is four IDX files: a header (magic number 2049/2051 = type `0x08` unsigned bytes and the
#   number of dimensions, then big-endian 32-bit sizes) and the raw bytes. `read_idx` checks that the
#   data fill exactly the announced shape and names the file when they do not.
# * `mnist_dir` finds the files: `data_dir=` → `DIYDNN_DATA_DIR` → the cache folder → the mirrors.
#   Every file is checked against the published SHA-256, wherever it comes from (a verified file is
#   remembered by path, size and mtime, so loading stays well under a second). Downloads go to a
#   temporary file, are checked and only then renamed, so a broken download leaves nothing behind (and a
#   killed one's `.part` is removed by the next download); when all mirrors fail, the error lists every
#   attempt and where to put the files by hand.
# * `load_mnist` gives the official 60,000/10,000 split as float32 rows of 784 pixels in $[0, 1]$
#   and int64 labels, in well under a second (gunzip dominates; `np.frombuffer` copies nothing).
# * Choices are made on a validation set drawn at random from the training data
#   (`train_val_split`); the test set is used once, at the end. The original [*diy-dnn*](https://github.com/tomjwalker/diy-dnn)'s "evaluation" set
#   (4,000 training + 10,000 test images, an unshuffled 80/20 split) mixed both roles.
# * `batches` gives one epoch of contiguous batches of a fresh permutation; `BatchStream` gives
#   endless epochs and a pickle-free `state_dict` with which a resumed run sees exactly the same batches.
#   It never serves a batch of one sample: such a remainder joins the batch before it.
#
# ## Exercises
#
# 1. Fashion-MNIST uses the same four file names and the IDX format. What would you need to change
#    to load it with `load_mnist`? Why does `mnist_dir` refuse a Fashion-MNIST file in the MNIST cache
#    and in `DIYDNN_DATA_DIR`, and what does `checksums=None` change?
# 2. Write `write_idx(path, array)`, the inverse of `read_idx` for all six IDX types, and test that
#    `read_idx(write_idx(...))` gives the array back (mind the byte order of `>i4` and `>f4`).
# 3. Make `train_val_split` *stratified*: every class gets the same share of validation samples.
#    With a random split of 10,000, how far are the class counts from that ideal (compare with
#    the counts printed in section 4)?
#
#
#
# The worked solutions follow, in collapsed cells (click to open); the tests run them, so they stay true.

# %% [markdown]
# **Solutions 1, 2 and 3** — try the exercises first. The worked solutions are in the collapsed cells below (click a bar to open it; outputs are collapsed too).

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 1</b> (click to open)</summary>
#
# Nothing in `read_idx` or `load_mnist` is specific to digits: the format, the shapes and the
# label range 0–9 are the same. What differs are the bytes, so the published SHA-256 of MNIST does not match:
# `mnist_dir` refuses such files in a folder you name (a Fashion-MNIST file under an MNIST name would
# otherwise train and test on the wrong data without a word), and in the cache it treats them as damaged and
# downloads MNIST over them. `checksums=None` (only for a folder you name) takes the files as they are. Below,
# a small stand-in for Fashion-MNIST (random images under the MNIST names) shows both.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 1.
# from diydnn._00_conventions import hidden_output   # a solution's output shows only when opened
# with hidden_output():
#     def write_gz_idx(path, array):
#         """A gzip-compressed IDX file of a uint8 array."""
#         Path(path).write_bytes(gzip.compress(idx_bytes(array), mtime=0))
#
#
#     with tempfile.TemporaryDirectory() as tmp:
#         fashion = Path(tmp) / "fashion"; fashion.mkdir()
#         for prefix, n in (("train", 12), ("t10k", 5)):
#             write_gz_idx(fashion / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
#             write_gz_idx(fashion / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
#         try:
#             load_mnist(fashion, cache_dir=Path(tmp) / "cache")
#         except MNISTChecksumError as e:
#             print("verified (the default) -> MNISTChecksumError:", str(e).replace(tmp, "<tmp>")[:150], "...")
#         else:
#             raise AssertionError("files that are not MNIST were accepted")
#         (Xf, yf), (Xf_test, yf_test) = load_mnist(fashion, checksums=None)
#     print("checksums=None:", Xf.shape, Xf.dtype, yf.shape, Xf_test.shape)
#     assert Xf.shape == (12, 784) and Xf_test.shape == (5, 784) and Xf.max() <= 1.0 and yf.dtype == np.int64

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 2</b> (click to open)</summary>
#
# The header is the magic number (two zero bytes, the type code, the number of dimensions)
# and the sizes as big-endian 32-bit integers; the data follow in C order, converted to the big-endian type
# of the code (`astype(">i4")`, `astype(">f4")`, …) — writing native little-endian bytes would read back as
# nonsense for every type wider than one byte.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 2.
# with hidden_output():
#     def write_idx(path, array):
#         """Write `array` as an IDX file (gzip-compressed when the name ends in .gz); returns the path."""
#         array = np.asarray(array)
#         codes = {np.dtype(dtype).newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
#         native = array.dtype.newbyteorder("=")
#         if native not in codes or array.ndim == 0:
#             raise ValueError(f"write_idx: IDX stores {sorted(str(d) for d in codes)} arrays of >= 1 dimension, "
#                              f"got {array.dtype} of shape {array.shape}")
#         code = codes[native]
#         data = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
#                 + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes())
#         path = Path(path)
#         path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
#         return path
#
#
#     with tempfile.TemporaryDirectory() as tmp:
#         for code, dtype in IDX_DTYPES.items():
#             native = np.dtype(dtype).newbyteorder("=")
#             original_array = (rng.standard_normal((3, 4, 5)) * 1000).astype(native)
#             for name in ("a.idx", "a.gz"):
#                 back = read_idx(write_idx(Path(tmp) / name, original_array))
#                 assert back.dtype == native and np.array_equal(back, original_array), (dtype, name)
#         raw = write_idx(Path(tmp) / "b.idx", np.array([1, 256], dtype=np.int32)).read_bytes()
#     print("int32 [1, 256] as IDX:", raw.hex(" "))
#     assert raw == bytes.fromhex("0000 0c01 0000 0002 0000 0001 0000 0100")
#     print("all six IDX types round-trip, raw and gzip-compressed")

# %% [markdown] tags=["solution"]
# <details><summary><b>Solution 3</b> (click to open)</summary>
#
# Split each class on its own: class $c$ with $m_c$ samples gives $n_{val}\,m_c/m$ of them,
# rounded so that the parts add up to $n_{val}$ (the largest remainders get the extra sample). Then every class
# is within one sample of its ideal share. A random split of 10,000 is off by up to a few tens of images per
# class — the standard deviation of a class count is about $\sqrt{n_{val}\,p(1-p)} \approx 30$ for $p \approx 0.1$.
#
# </details>

# %% jupyter={"outputs_hidden": true, "source_hidden": true} tags=["active-ipynb", "solution"]
# # Solution 3.
# with hidden_output():
#     def stratified_split(X, y, n_val, rng):
#         """train_val_split with the same share of every class in the validation set."""
#         X, y = _check_Xy("stratified_split", X, y)
#         classes, counts_c = np.unique(y, return_counts=True)
#         ideal = n_val * counts_c / len(y)
#         n_per_class = np.floor(ideal).astype(int)
#         n_per_class[np.argsort(ideal - n_per_class)[::-1][:n_val - n_per_class.sum()]] += 1   # largest remainders
#         val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, n_per_class)])
#         is_val = np.zeros(len(y), dtype=bool)
#         is_val[val] = True
#         return (X[~is_val], y[~is_val]), (X[is_val], y[is_val])
#
#
#     ideal_counts = 10_000 * counts_train / len(y_train)
#     (_, _), (_, y_strat) = stratified_split(X_train, y_train, 10_000, np.random.default_rng(0))
#     off_random = np.abs(np.bincount(y_val, minlength=10) - ideal_counts)       # the random split of section 4
#     off_strat = np.abs(np.bincount(y_strat, minlength=10) - ideal_counts)
#     print("ideal:     ", np.round(ideal_counts, 1))
#     print("random:    ", np.bincount(y_val, minlength=10), f"  max off by {off_random.max():.1f}")
#     print("stratified:", np.bincount(y_strat, minlength=10), f"  max off by {off_strat.max():.1f}")
#     assert len(y_strat) == 10_000 and off_strat.max() < 1 and off_random.max() > 5

# %% [markdown]
# ---
# [← 07 — model](07_model.ipynb) · [begin here](00_begin_here.ipynb) · **08 — MNIST** · [next: 09 — training →](09_training.ipynb)
