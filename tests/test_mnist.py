"""Tests of chapter 08: IDX reading, the verified/cached download (loopback server only), load_mnist, split, batches.

No test touches the internet: downloads come from an http.server on 127.0.0.1 serving tiny IDX files
the tests build themselves, with their own checksums. The real MNIST is read from wherever
mnist_dir() finds it in this session (conftest.py resolves it once, up front).
"""
import gzip
import hashlib
import http.server
import json
import os
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import diydnn._08_mnist as ch08
from diydnn._08_mnist import (MNIST_FILES, MNIST_MIRRORS, MNIST_SHA256, VERIFIED_MEMO, BatchStream, MNISTChecksumError,
                              MNISTDownloadError, batches, default_cache_dir, load_mnist, mnist_dir, read_idx,
                              train_val_split)


def idx_bytes(array, type_code=0x08):
    """Encode an array as IDX by hand (big-endian sizes), independently of the module under test."""
    big = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    return (bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array, dtype=big).tobytes())


def tiny_mnist(seed=0, n_train=6, n_test=3, side=4):
    """Four tiny gzip IDX files with the MNIST names: name -> gzip bytes, plus the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8)}
    files = {name: gzip.compress(idx_bytes(a), mtime=0) for name, a in arrays.items()}
    return files, arrays


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write_folder(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# ---------------------------------------------------------------- read_idx

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", [(7,), (5, 3, 4), (2, 3, 4, 5)])
def test_read_idx_roundtrip(tmp_path, compress, shape):
    a = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = idx_bytes(a)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.shape == shape and got.dtype == np.uint8 and np.array_equal(got, a)
    got[...] = 0   # a writable array, not a view on read-only bytes


def test_read_idx_decides_by_magic_bytes_not_suffix(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "raw.gz").write_bytes(idx_bytes(a))                 # raw data with a .gz name
    (tmp_path / "packed.idx").write_bytes(gzip.compress(idx_bytes(a)))  # gzip without the suffix
    assert np.array_equal(read_idx(tmp_path / "raw.gz"), a) and np.array_equal(read_idx(tmp_path / "packed.idx"), a)


@pytest.mark.parametrize("code,dtype", [(0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_multibyte_types_are_big_endian(tmp_path, code, dtype):
    a = (np.random.default_rng(code).standard_normal((3, 5)) * 1000).astype(dtype)
    (tmp_path / "m.idx").write_bytes(idx_bytes(a, code))
    got = read_idx(tmp_path / "m.idx")
    assert got.dtype == dtype and got.dtype.isnative and np.array_equal(got, a)


def _bad_files():
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    return {
        "wrong magic": (b"\x12\x34\x08\x03" + good[4:], "magic"),
        "unknown type": (b"\x00\x00\x07\x03" + good[4:], "magic"),
        "zero dimensions": (b"\x00\x00\x08\x00" + good[4:], "magic"),
        "short header": (good[:10], "header"),
        "too short for a magic": (b"\x00\x00", "header"),
        "truncated data": (good[:-1], "truncated"),
        "extra data": (good + b"\x00\x00", "extra"),
        "inconsistent sizes": (good[:4] + struct.pack(">3I", 2, 3, 5) + good[16:], "(2, 3, 5)"),
        "negative size": (good[:4] + struct.pack(">3i", 2, -3, 4) + good[16:], "negative"),
        "truncated gzip": (gzip.compress(good)[:-12], "decompress"),
        "corrupt gzip": (gzip.compress(good)[:10] + b"\xff" * 30, "decompress"),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_read_idx_rejects_bad_files_naming_the_file(tmp_path, case):
    data, words = _bad_files()[case]
    path = tmp_path / f"bad-{case.replace(' ', '_')}.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and words in str(info.value).replace(str(path), "<file>")


def test_read_idx_size_message_says_expected_and_found(tmp_path):
    good = idx_bytes(np.zeros((2, 3, 4), np.uint8))
    (tmp_path / "t.idx").write_bytes(good[:-5])
    with pytest.raises(ValueError, match=r"24 data bytes.*holds 19"):
        read_idx(tmp_path / "t.idx")


# ---------------------------------------------------------------- download path (loopback server)

class MirrorServer:
    """http.server on 127.0.0.1 (port 0) in a thread. Routes: /<mode>/<name> with mode in
    good (the file), corrupt (one byte flipped), short (Content-Length of the full file, half the body)."""

    def __init__(self, files):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                mode, _, name = self.path.strip("/").partition("/")
                if name not in outer.files or mode not in ("good", "corrupt", "short"):
                    self.send_error(404, "Not Found")
                    return
                body = outer.files[name]
                if mode == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) // 2] if mode == "short" else body)
                self.close_connection = True

            def log_message(self, *args):   # keep the test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def tiny():
    return tiny_mnist()


@pytest.fixture
def server(tiny):
    srv = MirrorServer(tiny[0])
    yield srv
    srv.close()


@pytest.fixture
def no_env(monkeypatch):
    """mnist_dir must go past DIYDNN_DATA_DIR to the cache, and may download (from the loopback server)."""
    monkeypatch.delenv("DIYDNN_DATA_DIR", raising=False)
    monkeypatch.delenv("DIYDNN_OFFLINE", raising=False)


@pytest.fixture
def refused_url():
    with socket.socket() as s:      # a port that was free a moment ago: nobody listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def cache_contents(cache):
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_from_a_good_mirror_lands_in_cache_and_loads(tmp_path, tiny, server, no_env):
    files, arrays = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = tmp_path / "cache"
    got = mnist_dir(mirrors=[server.url + "/good/"], cache_dir=cache, checksums=sums, timeout=5)
    assert got == cache and cache_contents(cache) == sorted(MNIST_FILES)
    assert all((cache / n).read_bytes() == files[n] for n in MNIST_FILES)
    (X, y), (Xt, yt) = load_mnist(mirrors=[], cache_dir=cache, checksums=sums)   # from the cache, no request
    assert len(server.requests) == 4
    assert X.shape == (6, 16) and Xt.shape == (3, 16) and X.dtype == np.float32
    assert np.array_equal(X, arrays["train-images-idx3-ubyte.gz"].reshape(6, 16) / np.float32(255))
    assert np.array_equal(y, arrays["train-labels-idx1-ubyte.gz"]) and y.dtype == np.int64
    assert np.array_equal(yt, arrays["t10k-labels-idx1-ubyte.gz"])


def test_falls_back_to_the_next_mirror(tmp_path, tiny, server, no_env, refused_url):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = tmp_path / "cache"
    mirrors = [refused_url, server.url + "/nothing-here/", server.url + "/good"]
    assert mnist_dir(mirrors=mirrors, cache_dir=cache, checksums=sums, timeout=5) == cache
    assert cache_contents(cache) == sorted(MNIST_FILES)
    assert sum(r.startswith("/nothing-here/") for r in server.requests) == 4   # the 404 mirror was tried first


def test_corrupted_file_on_all_mirrors_is_refused_and_nothing_kept(tmp_path, tiny, server, no_env, refused_url):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = tmp_path / "cache"
    with pytest.raises(MNISTDownloadError) as info:
        mnist_dir(mirrors=[refused_url, server.url + "/corrupt/"], cache_dir=cache, checksums=sums, timeout=5)
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "checksum mismatch" in msg and sums["train-images-idx3-ubyte.gz"] in msg
    corrupt = files["train-images-idx3-ubyte.gz"][:-1] + bytes([files["train-images-idx3-ubyte.gz"][-1] ^ 0xFF])
    assert sha(corrupt) in msg                                   # expected AND got
    assert refused_url + MNIST_FILES[0] in msg and "cannot connect" in msg
    assert "DIYDNN_DATA_DIR" in msg and str(cache) in msg        # how to fix it by hand
    assert cache_contents(cache) == []                           # no files, no temporary files


def test_one_bad_file_keeps_the_good_ones_and_no_temp(tmp_path, tiny, server, no_env):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    sums["t10k-labels-idx1-ubyte.gz"] = "0" * 64
    cache = tmp_path / "cache"
    with pytest.raises(MNISTDownloadError) as info:
        mnist_dir(mirrors=[server.url + "/good/"], cache_dir=cache, checksums=sums, timeout=5)
    assert "could not get 1 MNIST file(s)" in str(info.value)
    assert "\n  t10k-labels-idx1-ubyte.gz:\n    " + server.url + "/good/t10k-labels-idx1-ubyte.gz: checksum mismatch" in str(info.value)
    assert cache_contents(cache) == sorted(set(MNIST_FILES) - {"t10k-labels-idx1-ubyte.gz"})


def test_truncated_download_is_refused_and_nothing_kept(tmp_path, tiny, server, no_env):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = tmp_path / "cache"
    with pytest.raises(MNISTDownloadError, match=r"truncated: received \d+ of \d+ bytes") as info:
        mnist_dir(mirrors=[server.url + "/short/"], cache_dir=cache, checksums=sums, timeout=5)
    assert server.url + "/short/" + MNIST_FILES[0] in str(info.value)
    assert cache_contents(cache) == []


def test_shortened_file_with_honest_length_fails_the_checksum(tmp_path, tiny, no_env):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    srv = MirrorServer({n: d[:len(d) // 2] for n, d in files.items()})
    try:
        with pytest.raises(MNISTDownloadError, match="checksum mismatch"):
            mnist_dir(mirrors=[srv.url + "/good/"], cache_dir=tmp_path / "cache", checksums=sums, timeout=5)
    finally:
        srv.close()
    assert cache_contents(tmp_path / "cache") == []


def test_corrupted_cached_file_is_downloaded_again(tmp_path, tiny, server, no_env):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = write_folder(tmp_path / "cache", files)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    with pytest.raises(MNISTDownloadError, match="cached copy has SHA-256"):     # no mirror: reported
        mnist_dir(mirrors=[], cache_dir=cache, checksums=sums)
    mnist_dir(mirrors=[server.url + "/good/"], cache_dir=cache, checksums=sums, timeout=5)
    assert server.requests == ["/good/train-labels-idx1-ubyte.gz"]              # only the bad one
    assert (cache / "train-labels-idx1-ubyte.gz").read_bytes() == files["train-labels-idx1-ubyte.gz"]


def test_checksums_must_cover_every_file(tmp_path, no_env):
    with pytest.raises(ValueError, match="t10k-labels"):
        mnist_dir(mirrors=[], cache_dir=tmp_path, checksums={n: "0" * 64 for n in MNIST_FILES[:3]})


# ---------------------------------------------------------------- precedence

def test_precedence_explicit_then_env_then_cache(tmp_path, tiny, monkeypatch):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    explicit, env, cache = (write_folder(tmp_path / d, files) for d in ("explicit", "env", "cache"))
    monkeypatch.setenv("DIYDNN_DATA_DIR", str(env))
    assert mnist_dir(explicit, mirrors=[], cache_dir=cache, checksums=sums) == explicit
    assert mnist_dir(mirrors=[], cache_dir=cache, checksums=sums) == env
    monkeypatch.delenv("DIYDNN_DATA_DIR")
    assert mnist_dir(mirrors=[], cache_dir=cache, checksums=sums) == cache
    monkeypatch.setenv("DIYDNN_DATA_DIR", "")        # empty counts as unset
    assert mnist_dir(mirrors=[], cache_dir=cache, checksums=sums) == cache


def test_missing_files_in_explicit_or_env_folder(tmp_path, tiny, monkeypatch):
    files, _ = tiny
    folder = write_folder(tmp_path / "partial", {n: files[n] for n in MNIST_FILES[:2]})
    with pytest.raises(FileNotFoundError) as info:
        mnist_dir(folder, mirrors=[])
    assert str(folder) in str(info.value) and "lacks " + ", ".join(MNIST_FILES[2:]) + ";" in str(info.value)
    monkeypatch.setenv("DIYDNN_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere \(from the environment variable DIYDNN_DATA_DIR\) does not exist"):
        mnist_dir(mirrors=[], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()        # an incomplete env folder is an error, not a fall-through


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DIYDNN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "diydnn" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "diydnn" / "mnist"
    monkeypatch.setenv("DIYDNN_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" / "mnist"


def test_cache_dir_default_is_used(monkeypatch, tmp_path, tiny):
    files, _ = tiny
    monkeypatch.delenv("DIYDNN_DATA_DIR", raising=False)
    monkeypatch.setenv("DIYDNN_CACHE_DIR", str(tmp_path))
    write_folder(tmp_path / "mnist", files)
    assert mnist_dir(mirrors=[], checksums={n: sha(d) for n, d in files.items()}) == tmp_path / "mnist"


def test_constants():
    assert len(MNIST_FILES) == 4 and set(MNIST_SHA256) == set(MNIST_FILES)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in MNIST_SHA256.values())
    assert len(MNIST_MIRRORS) >= 2 and all(u.startswith("https://") and u.endswith("/") for u in MNIST_MIRRORS)


# ---------------------------------------------------------------- the real MNIST (from DIYDNN_DATA_DIR)

@pytest.fixture(scope="module")
def real():
    # conftest.py has already found MNIST for this session (or skipped these tests with one message)
    return load_mnist()


@pytest.mark.mnist
def test_real_files_match_the_published_checksums(real):
    folder = mnist_dir()            # wherever this session finds MNIST (conftest), never a hard-coded path
    assert {n: sha((folder / n).read_bytes()) for n in MNIST_FILES} == MNIST_SHA256


@pytest.mark.mnist
def test_full_load_stays_under_a_second(real):
    """Verification by SHA-256 on every load must not make loading slow: the memo skips the hashing.

    Measured in CPU time of this process (median of 5): on a machine shared with other jobs the wall
    time also counts the time the process waited for a core, which says nothing about the loader.
    """
    import time
    cpu, verify = [], []
    for _ in range(5):
        t0 = time.process_time()
        load_mnist()
        cpu.append(time.process_time() - t0)
        t0 = time.process_time()
        mnist_dir()
        verify.append(time.process_time() - t0)
    assert np.median(cpu) < 1.0, f"load_mnist took a median {np.median(cpu):.2f} s CPU over 5 loads: {cpu}"
    assert np.median(verify) < 0.05, f"finding + verifying the files took {np.median(verify):.3f} s: {verify}"


@pytest.mark.mnist
def test_load_mnist_real(real):
    (X, y), (Xt, yt) = real
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784) and y.shape == (60000,) and yt.shape == (10000,)
    assert X.dtype == Xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0 and Xt.min() == 0.0 and Xt.max() == 1.0
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4] and yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.mark.mnist
def test_load_mnist_raw_and_unflattened(real):
    (X8, y8), (Xt8, _) = load_mnist(scale=False, flatten=False)
    assert X8.shape == (60000, 28, 28) and Xt8.shape == (10000, 28, 28) and X8.dtype == np.uint8
    assert np.array_equal(X8.reshape(60000, 784) / np.float32(255), real[0][0])
    assert np.array_equal(y8, real[0][1])


def test_load_mnist_checks_label_count(tmp_path, tiny, no_env):
    files, arrays = tiny
    files = dict(files, **{"t10k-labels-idx1-ubyte.gz": gzip.compress(idx_bytes(np.zeros(2, np.uint8)))})
    folder = write_folder(tmp_path / "d", files)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist(folder, checksums=None, cache_dir=tmp_path / "cache")   # own files: taken unverified


# ---------------------------------------------------------------- train_val_split

def test_train_val_split_reproducible_disjoint_complete():
    m = 101
    X, y = np.arange(m * 2).reshape(m, 2), np.arange(m)
    (Xa, ya), (Xva, yva) = train_val_split(X, y, 30, np.random.default_rng(5))
    (Xb, yb), (Xvb, yvb) = train_val_split(X, y, 30, np.random.default_rng(5))
    _, (_, yvc) = train_val_split(X, y, 30, np.random.default_rng(6))
    assert np.array_equal(ya, yb) and np.array_equal(yva, yvb) and not np.array_equal(yva, yvc)
    assert len(ya) == 71 and len(yva) == 30
    assert not set(ya) & set(yva) and sorted(np.concatenate([ya, yva])) == list(range(m))
    assert np.array_equal(Xa[:, 0] // 2, ya) and np.array_equal(Xva[:, 0] // 2, yva)   # rows stay with their labels
    assert not np.array_equal(yva, np.arange(71, 101))                                   # random, not the tail


@pytest.mark.parametrize("n_val", [0, 10, -1, 2.5, True])
def test_train_val_split_bad_n_val(n_val):
    with pytest.raises(ValueError, match="n_val"):
        train_val_split(np.zeros((10, 2)), np.zeros(10), n_val, np.random.default_rng(0))


def test_train_val_split_needs_generator():
    with pytest.raises(ValueError, match="Generator"):
        train_val_split(np.zeros((10, 2)), np.zeros(10), 3, 42)


# ---------------------------------------------------------------- batches

def _data(m, n=3):
    return np.arange(m * n, dtype=np.float32).reshape(m, n), np.arange(m)


@pytest.mark.parametrize("m,B", [(10, 3), (12, 4), (5, 8), (1, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed", [None, 3])
def test_batches_cover_contiguous_sizes(m, B, drop_last, seed):
    X, y = _data(m)
    rng = None if seed is None else np.random.default_rng(seed)
    order = np.arange(m) if seed is None else np.random.default_rng(seed).permutation(m)
    out = list(batches(X, y, B, rng, drop_last=drop_last))
    n_expected = m // B if drop_last else -(-m // B)
    assert len(out) == n_expected
    for k, (Xb, yb) in enumerate(out):
        assert np.array_equal(yb, order[k * B:(k + 1) * B])           # contiguous slices of the permutation
        assert np.array_equal(Xb, X[yb]) and Xb.shape[1:] == X.shape[1:]
    sizes = [len(yb) for _, yb in out]
    assert all(s == B for s in sizes[:-1]) and (not drop_last or all(s == B for s in sizes))
    seen = np.concatenate([yb for _, yb in out]) if out else np.array([], int)
    if not drop_last:
        assert sorted(seen) == list(range(m))                          # every sample exactly once
    else:
        assert len(set(seen)) == len(seen) == m - m % B


def test_batches_rng_reproducible_and_fresh_per_call():
    X, y = _data(50)
    a = [yb for _, yb in batches(X, y, 7, np.random.default_rng(1))]
    b = [yb for _, yb in batches(X, y, 7, np.random.default_rng(1))]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    rng = np.random.default_rng(1)
    e1 = np.concatenate([yb for _, yb in batches(X, y, 7, rng)])
    e2 = np.concatenate([yb for _, yb in batches(X, y, 7, rng)])
    assert not np.array_equal(e1, e2) and sorted(e1) == sorted(e2)


def test_batches_multidim_X_and_onehot_y():
    X, y = np.zeros((9, 2, 2)), np.eye(3)[np.arange(9) % 3]
    out = list(batches(X, y, 4))
    assert [b[0].shape for b in out] == [(4, 2, 2), (4, 2, 2), (1, 2, 2)] and out[0][1].shape == (4, 3)


@pytest.mark.parametrize("X,y,B,words", [
    (np.zeros(5), np.zeros(5), 2, "(5,)"),
    (np.zeros((5, 2)), np.zeros(4), 2, "(4,)"),
    (np.zeros((0, 2)), np.zeros(0), 2, "(0, 2)"),
    (np.zeros((5, 2)), np.zeros(5), 0, "batch_size"),
    (np.zeros((5, 2)), np.zeros(5), 2.5, "batch_size"),
    (np.zeros((5, 2)), np.zeros(5), -3, "-3"),
])
def test_batches_validate_at_call_time(X, y, B, words):
    with pytest.raises(ValueError) as info:
        batches(X, y, B)          # no next(): the error comes at once
    assert words in str(info.value)


# ---------------------------------------------------------------- BatchStream

def test_stream_epochs_positions_and_coverage():
    X, y = _data(10)
    stream = BatchStream(X, y, 3, np.random.default_rng(0))
    assert stream.batches_per_epoch == 3 and (stream.epoch, stream.position) == (0, 0)
    rng = np.random.default_rng(0)
    for epoch in range(4):
        perm = rng.permutation(10)
        got = [next(stream)[1] for _ in range(3)]
        assert all(np.array_equal(g, perm[3 * k:3 * k + 3]) for k, g in enumerate(got))
        assert stream.epoch == epoch + 1 and stream.position == 0
    stream_keep = BatchStream(X, y, 4, np.random.default_rng(0), drop_last=False)
    sizes = [len(next(stream_keep)[1]) for _ in range(6)]
    assert sizes == [4, 4, 2, 4, 4, 2] and stream_keep.batches_per_epoch == 3 and stream_keep.epoch == 2
    assert iter(stream) is stream


def test_stream_state_dict_roundtrip_is_bitwise(tmp_path):
    X = np.random.default_rng(9).standard_normal((103, 5)).astype(np.float32)
    y = np.arange(103)
    original = BatchStream(X, y, 8, np.random.default_rng(2024))
    for _ in range(17):
        next(original)
    np.savez(tmp_path / "s.npz", **original.state_dict())
    with np.load(tmp_path / "s.npz", allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}
    restored = BatchStream(X, y, 8, np.random.default_rng(1))
    restored.load_state_dict(saved)
    assert (restored.epoch, restored.position) == (original.epoch, original.position)
    for _ in range(40):                    # crosses several epoch boundaries (12 batches per epoch)
        (Xa, ya), (Xb, yb) = next(original), next(restored)
        assert np.array_equal(ya, yb) and Xa.tobytes() == Xb.tobytes()
    assert original.epoch == restored.epoch >= 4


def test_stream_state_with_another_bit_generator():
    X, y = _data(20)
    original = BatchStream(X, y, 3, np.random.Generator(np.random.MT19937(5)))
    next(original)
    restored = BatchStream(X, y, 3, np.random.Generator(np.random.MT19937(0)))
    restored.load_state_dict(original.state_dict())
    assert all(np.array_equal(next(original)[1], next(restored)[1]) for _ in range(30))


def test_stream_state_is_a_snapshot():
    X, y = _data(20)
    stream = BatchStream(X, y, 3, np.random.default_rng(5))
    state = stream.state_dict()
    first = [next(stream)[1] for _ in range(10)]
    stream.load_state_dict(state)          # rewind to the snapshot
    assert all(np.array_equal(a, next(stream)[1]) for a in first)


def test_stream_load_state_rejects_mismatch():
    X, y = _data(20)
    state = BatchStream(X, y, 3, np.random.default_rng(0)).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        BatchStream(X, y, 4, np.random.default_rng(0)).load_state_dict(state)
    with pytest.raises(ValueError, match="permutation"):
        BatchStream(*_data(21), 3, np.random.default_rng(0)).load_state_dict(state)
    with pytest.raises(ValueError, match="PCG64|MT19937|generator"):
        BatchStream(X, y, 3, np.random.Generator(np.random.MT19937(0))).load_state_dict(state)


def test_stream_validation():
    X, y = _data(5)
    with pytest.raises(ValueError, match="batch_size 8"):
        BatchStream(X, y, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Generator"):
        BatchStream(X, y, 2, None)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        BatchStream(X, y[:4], 2, np.random.default_rng(0))


def test_stream_folds_a_one_sample_remainder_into_the_last_batch():
    X, y = _data(129)
    stream = BatchStream(X, y, 128, np.random.default_rng(0), drop_last=False)
    assert stream.batches_per_epoch == 1
    for epoch in range(3):
        Xb, yb = next(stream)
        assert len(yb) == 129 and sorted(yb) == list(range(129)) and stream.epoch == epoch + 1
    stream = BatchStream(*_data(10), 3, np.random.default_rng(1), drop_last=False)
    sizes = [len(next(stream)[1]) for _ in range(6)]
    assert sizes == [3, 3, 4, 3, 3, 4] and stream.batches_per_epoch == 3
    # other remainders are kept as they are, and drop_last=True still drops
    assert [len(next(BatchStream(*_data(11), 3, np.random.default_rng(1), drop_last=False))[1]) for _ in range(1)] == [3]
    keep = BatchStream(*_data(11), 3, np.random.default_rng(1), drop_last=False)
    assert [len(next(keep)[1]) for _ in range(4)] == [3, 3, 3, 2]
    drop = BatchStream(*_data(10), 3, np.random.default_rng(1))
    assert [len(next(drop)[1]) for _ in range(3)] == [3, 3, 3] and drop.batches_per_epoch == 3


def test_stream_with_fold_resumes_bit_exactly():
    X, y = _data(25)
    original = BatchStream(X, y, 8, np.random.default_rng(3), drop_last=False)   # 8, 8, 9
    for _ in range(4):
        next(original)
    restored = BatchStream(X, y, 8, np.random.default_rng(0), drop_last=False)
    restored.load_state_dict(original.state_dict())
    assert all(np.array_equal(next(original)[1], next(restored)[1]) for _ in range(10))


# ---------------------------------------------------------------- verification of named folders, the memo

def test_a_wrong_file_in_a_named_folder_is_refused(tmp_path, tiny, monkeypatch):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    folder = write_folder(tmp_path / "mine", files)
    bad = folder / "t10k-images-idx3-ubyte.gz"
    good = files["t10k-images-idx3-ubyte.gz"]
    bad.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))          # one bit pattern flipped
    with pytest.raises(MNISTChecksumError) as info:
        mnist_dir(folder, cache_dir=tmp_path / "cache", checksums=sums)
    msg = str(info.value)
    assert str(bad) in msg and sums[bad.name] in msg and sha(bad.read_bytes()) in msg
    assert "data_dir argument" in msg and "checksums=None" in msg and isinstance(info.value, ValueError)
    monkeypatch.setenv("DIYDNN_DATA_DIR", str(folder))
    with pytest.raises(MNISTChecksumError, match="environment variable DIYDNN_DATA_DIR"):
        mnist_dir(cache_dir=tmp_path / "cache", checksums=sums)
    # the real checksums refuse these tiny files too; checksums=None takes your own files as they are
    with pytest.raises(MNISTChecksumError, match=MNIST_SHA256["train-images-idx3-ubyte.gz"]):
        mnist_dir(cache_dir=tmp_path / "cache")
    assert mnist_dir(cache_dir=tmp_path / "cache", checksums=None) == folder


def test_checksums_none_never_applies_to_the_cache(tmp_path, no_env):
    with pytest.raises(ValueError, match="always verified"):
        mnist_dir(mirrors=[], cache_dir=tmp_path / "cache", checksums=None)


def test_verified_files_are_remembered_by_path_size_and_mtime(tmp_path, tiny, monkeypatch):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    folder, cache = write_folder(tmp_path / "mine", files), tmp_path / "cache"
    hashed = []
    real_sha256 = ch08._sha256
    monkeypatch.setattr(ch08, "_sha256", lambda path: hashed.append(Path(path).name) or real_sha256(path))
    mnist_dir(folder, cache_dir=cache, checksums=sums)
    assert sorted(hashed) == sorted(MNIST_FILES)
    memo = json.loads((cache / VERIFIED_MEMO).read_text())
    entry = memo[str((folder / MNIST_FILES[0]).resolve())]
    assert entry["sha256"] == sums[MNIST_FILES[0]] and entry["size"] == len(files[MNIST_FILES[0]])
    assert sorted(p.name for p in cache.iterdir()) == [VERIFIED_MEMO]          # written atomically: no temp file
    hashed.clear()
    mnist_dir(folder, cache_dir=cache, checksums=sums)
    assert hashed == []                                                         # remembered: nothing re-read
    st = (folder / MNIST_FILES[1]).stat()
    os.utime(folder / MNIST_FILES[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # "touched": hashed again
    mnist_dir(folder, cache_dir=cache, checksums=sums)
    assert hashed == [MNIST_FILES[1]]
    # a changed file with a new mtime is caught even though the memo knew the old one
    (folder / MNIST_FILES[2]).write_bytes(files[MNIST_FILES[2]] + b"x")
    with pytest.raises(MNISTChecksumError, match=MNIST_FILES[2]):
        mnist_dir(folder, cache_dir=cache, checksums=sums)
    # a corrupt memo is only a cache: it is rebuilt
    (folder / MNIST_FILES[2]).write_bytes(files[MNIST_FILES[2]])
    (cache / VERIFIED_MEMO).write_text("{not json")
    hashed.clear()
    assert mnist_dir(folder, cache_dir=cache, checksums=sums) == folder and sorted(hashed) == sorted(MNIST_FILES)
    assert json.loads((cache / VERIFIED_MEMO).read_text())


def test_offline_mode_never_downloads(tmp_path, tiny, server, no_env, monkeypatch):
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    monkeypatch.setenv("DIYDNN_OFFLINE", "1")
    with pytest.raises(MNISTDownloadError) as info:
        mnist_dir(mirrors=[server.url + "/good/"], cache_dir=tmp_path / "cache", checksums=sums, timeout=5)
    assert server.requests == [] and "DIYDNN_OFFLINE" in str(info.value) and "DIYDNN_DATA_DIR" in str(info.value)
    monkeypatch.setenv("DIYDNN_OFFLINE", "0")
    assert mnist_dir(mirrors=[server.url + "/good/"], cache_dir=tmp_path / "cache", checksums=sums, timeout=5)


def test_leftover_part_files_of_a_killed_download_are_removed_only_those(tmp_path, tiny, server, no_env):
    import subprocess
    import sys
    files, _ = tiny
    sums = {n: sha(d) for n, d in files.items()}
    cache = tmp_path / "cache"
    cache.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                              # its pid is now free: a killed download's leftover
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        name = "train-labels-idx1-ubyte.gz"
        stale = cache / f".{name}.{dead.pid}.abc123.part"
        legacy = cache / f".{name}.x7f3k2q.part"             # the old naming, without a pid
        running = cache / f".{name}.{alive.pid}.def456.part"  # another process downloading right now
        other_target = cache / f".t10k-labels-idx1-ubyte.gz.{dead.pid}.zzz.part"
        users = [cache / "notes.part", cache / f"{name}.part", cache / "my.tmp"]
        for p in [stale, legacy, running, other_target, *users]:
            p.write_bytes(b"half")
        write_folder(cache, {n: d for n, d in files.items() if n != name})
        (cache / "t10k-labels-idx1-ubyte.gz").unlink()        # this one is downloaded too, its leftover goes
        mnist_dir(mirrors=[server.url + "/good/"], cache_dir=cache, checksums=sums, timeout=5)
        left = {p.name for p in cache.iterdir()}
        assert stale.name not in left and legacy.name not in left and other_target.name not in left
        assert running.name in left and all(p.name in left for p in users)
        assert (cache / name).read_bytes() == files[name]
    finally:
        alive.kill()
        alive.wait()
