"""Tests for digitrec.data: IDX files, MNIST loading and checking, downloads, folder datasets."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec import data
from digitrec.data import (
    download_mnist,
    list_folder_dataset,
    load_mnist,
    read_idx,
    read_idx_bytes,
    resolve_data_dir,
    write_idx,
)
from digitrec.errors import DataError

N_TRAIN = 50
N_TEST = 20
NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# ---------------------------------------------------------------- helpers


def idx_blob(array: np.ndarray) -> bytes:
    """An IDX file's bytes, built here independently of write_idx."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def make_fake_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": ((np.arange(N_TEST) * 3) % 10).astype(np.uint8),
    }


FAKE_ARRAYS = make_fake_arrays()
FAKE_BLOBS = {name: idx_blob(a) for name, a in FAKE_ARRAYS.items()}
FAKE_GZ = {name: gzip.compress(blob, mtime=0) for name, blob in FAKE_BLOBS.items()}
ZEROS_GZ = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)  # 64 MiB in 64 KiB


def write_fake_mnist(folder: Path, gz: bool, skip: tuple[str, ...] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in FAKE_BLOBS.items():
        if name in skip:
            continue
        if gz:
            (folder / f"{name}.gz").write_bytes(FAKE_GZ[name])
        else:
            (folder / name).write_bytes(blob)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def fake_mnist(monkeypatch):
    """Make digitrec.data expect the small fake files instead of the real MNIST."""
    monkeypatch.setattr(data, "MNIST_FILES", {name: sha256(b) for name, b in FAKE_BLOBS.items()})
    monkeypatch.setattr(
        data,
        "SPLITS",
        {
            "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", N_TRAIN),
            "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", N_TEST),
        },
    )
    return FAKE_ARRAYS


# ---------------------------------------------------------------- local HTTP mirrors


class MirrorServer:
    """Mirrors under /<mirror>/<file>.gz: good, missing (404), wrong, short, half, garbage."""

    def __init__(self):
        self.requests: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                with server.lock:
                    server.requests.append(self.path)
                server.respond(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, mirror: str) -> str:
        return f"{self.base}/{mirror}/"

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        parts = handler.path.strip("/").split("/")
        name = parts[-1].removesuffix(".gz") if parts[-1].endswith(".gz") else None
        if len(parts) != 2 or name not in FAKE_GZ:
            handler.send_error(404)
            return
        mirror, good = parts[0], FAKE_GZ[name]
        if mirror == "good":
            body, length = good, len(good)
        elif mirror == "wrong":  # valid gzip, but of other content
            body = gzip.compress(FAKE_BLOBS[name][:-1] + b"\x01", mtime=0)
            length = len(body)
        elif mirror == "short":  # promises more bytes than it sends
            body, length = good, len(good) + 1000
        elif mirror == "half":  # a gzip file cut in half, honestly announced
            body = good[: len(good) // 2]
            length = len(body)
        elif mirror == "garbage":
            body = b"this is not gzip at all" * 10
            length = len(body)
        elif mirror == "bomb":  # the right file, then 64 MiB of zeros in 64 KiB more
            body = good + ZEROS_GZ
            length = len(body)
        elif mirror == "huge":  # offers a terabyte (and would send a few bytes)
            body, length = good, 1 << 40
        else:
            handler.send_error(404)
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "application/gzip")
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        handler.wfile.write(body)

    def count(self, name: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.endswith(f"/{name}.gz"))


@pytest.fixture
def mirror_server(monkeypatch, fake_mnist):
    # Never send these requests to a proxy.
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = MirrorServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


# ---------------------------------------------------------------- IDX round trip


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (0,)])
def test_idx_round_trip(tmp_path, suffix, shape):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"thing-idx{len(shape)}-ubyte{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    if suffix == ".gz":
        assert raw[:2] == b"\x1f\x8b"  # really gzip-compressed
        raw = gzip.decompress(raw)
    assert raw == idx_blob(array)
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert leftovers(tmp_path) == [path.name]  # no temporary file left behind


def test_write_idx_converts_to_uint8(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.array([0, 9, 255], dtype=np.int64))
    back = read_idx(path)
    assert back.dtype == np.uint8
    assert back.tolist() == [0, 9, 255]


def test_read_idx_bytes_matches_mnist_header():
    # The real MNIST label-file header: magic 0x00000801, then the count.
    raw = bytes.fromhex("00000801") + struct.pack(">I", 3) + bytes([5, 0, 4])
    assert read_idx_bytes(raw).tolist() == [5, 0, 4]


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x00\x08"])
def test_read_idx_bytes_too_short(raw):
    with pytest.raises(DataError, match="truncated") as info:
        read_idx_bytes(raw, "short-file")
    assert "short-file" in str(info.value)


def test_read_idx_bytes_truncated_inside_header():
    raw = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">I", 2)  # 3 dims promised, 1 given
    with pytest.raises(DataError, match="truncated inside its header"):
        read_idx_bytes(raw, "hdr-file")


@pytest.mark.parametrize(
    "header",
    [
        struct.pack(">HBB", 0, 0x0D, 1),  # float data
        struct.pack(">HBB", 0, 0x09, 1),  # signed bytes
        struct.pack(">HBB", 0x1F8B, 0x08, 1),  # nonzero first bytes (e.g. gzip not undone)
        struct.pack(">HBB", 1, 0x08, 1),
        struct.pack(">HBB", 0, 0x08, 0),  # no dimensions
    ],
)
def test_read_idx_bytes_bad_header(header):
    raw = header + struct.pack(">I", 2) + b"\x01\x02"
    with pytest.raises(DataError, match="not an IDX file") as info:
        read_idx_bytes(raw, "bad-file")
    assert "bad-file" in str(info.value)
    assert raw[:4].hex() in str(info.value)


def test_read_idx_bytes_truncated_data():
    raw = idx_blob(np.zeros((4, 5), np.uint8))[:-3]
    with pytest.raises(DataError) as info:
        read_idx_bytes(raw, "my-images-file")
    message = str(info.value)
    assert "truncated" in message
    assert "my-images-file" in message
    assert "4x5" in message and "20" in message and "17" in message


def test_read_idx_bytes_too_long():
    raw = idx_blob(np.zeros((4, 5), np.uint8)) + b"\x00\x00"
    with pytest.raises(DataError, match="too long") as info:
        read_idx_bytes(raw, "long-file")
    assert "long-file" in str(info.value)


def test_read_idx_truncated_file_names_path(tmp_path):
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(idx_blob(np.ones((2, 3, 3), np.uint8))[:-5])
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "blob",
    [
        b"definitely not gzip data" * 4,
        gzip.compress(idx_blob(np.ones((10, 10), np.uint8)), mtime=0)[:20],  # cut short
    ],
    ids=["garbage", "cut"],
)
def test_read_idx_corrupted_gz(tmp_path, blob):
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(blob)
    with pytest.raises(DataError, match="corrupted") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="unreadable"):
        read_idx(tmp_path / "nope-idx1-ubyte")


# ---------------------------------------------------------------- bounded reading


def peak_memory(work) -> int:
    """The most memory Python held while `work` ran, above what it held before."""
    tracemalloc.start()
    try:
        work()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_gzip_bomb_is_refused_holding_no_more_than_its_promise(tmp_path):
    # MNIST's test labels (10,008 bytes), then 6.4 GB of zeros in 6.5 MB: gzip members
    # one after another, as gzip allows
    labels = idx_blob(np.arange(10000) % 10)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(labels, mtime=0))
        for _ in range(100):
            f.write(ZEROS_GZ)

    def read():
        with pytest.raises(DataError, match="too long") as info:
            read_idx(path)
        assert str(path) in str(info.value) and "10,008 bytes" in str(info.value)

    # the promise, a chunk of compressed input and one of output: a few MB, not gigabytes
    assert peak_memory(read) < 4 << 20


def test_a_header_promising_more_than_mnist_holds_is_refused_unread(tmp_path):
    header = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 1 << 20, 28, 28)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + bytes(1000), mtime=0))

    def read():
        with pytest.raises(DataError, match="promises 822,083,600 bytes, more than the 7,840,016"):
            read_idx(path)

    assert peak_memory(read) < 4 << 20


def test_an_idx_file_of_another_name_is_bounded_too(tmp_path):
    header = struct.pack(">HBB", 0, 0x08, 2) + struct.pack(">2I", 1 << 16, 1 << 16)
    path = tmp_path / "mine-idx2-ubyte.gz"
    path.write_bytes(gzip.compress(header, mtime=0))
    with pytest.raises(DataError, match=f"more than the {data.MAX_IDX_BYTES:,}"):
        read_idx(path)


def test_a_plain_file_cut_short_is_read_as_far_as_it_goes(tmp_path):
    # a promise of 200 MB in a file of 12 bytes: no room is made for the 200 MB
    path = tmp_path / "cut-idx1-ubyte"
    path.write_bytes(struct.pack(">HBB", 0, 0x08, 1) + struct.pack(">I", 200_000_000) + b"abcd")

    def read():
        with pytest.raises(DataError, match="truncated"):
            read_idx(path)

    assert peak_memory(read) < 1 << 20


def test_a_gzip_file_of_several_members_is_read_whole(tmp_path):
    array = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    blob = idx_blob(array)
    path = tmp_path / "parts-idx3-ubyte.gz"
    path.write_bytes(
        b"".join(gzip.compress(blob[i : i + 500], mtime=0) for i in range(0, len(blob), 500))
    )
    np.testing.assert_array_equal(read_idx(path), array)


def test_mnist_sizes_are_those_of_the_splits():
    for images, labels, n in data.SPLITS.values():
        assert data.MNIST_SIZES[images] == 16 + n * 28 * 28
        assert data.MNIST_SIZES[labels] == 8 + n
    assert set(data.MNIST_SIZES) == set(data.MNIST_FILES)


# ---------------------------------------------------------------- load_mnist on local folders


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_good_folder(tmp_path, fake_mnist, gz, split):
    write_fake_mnist(tmp_path, gz=gz)
    got = load_mnist(split, data_dir=tmp_path, download=False)
    image_name, label_name, n = data.SPLITS[split]
    assert got.images.shape == (n, 28, 28) and got.images.dtype == np.uint8
    assert got.labels.shape == (n,) and got.labels.dtype == np.int64
    np.testing.assert_array_equal(got.images, fake_mnist[image_name])
    np.testing.assert_array_equal(got.labels, fake_mnist[label_name])
    assert got.sha256 == {
        image_name: sha256(FAKE_BLOBS[image_name]),
        label_name: sha256(FAKE_BLOBS[label_name]),
    }


def test_load_mnist_unknown_split(tmp_path, fake_mnist):
    write_fake_mnist(tmp_path, gz=False)
    with pytest.raises(DataError, match="unknown MNIST split 'valid'"):
        load_mnist("valid", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("missing", ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_load_mnist_missing_file(tmp_path, monkeypatch, fake_mnist, missing):
    monkeypatch.setenv("DIGITREC_MNIST_MIRRORS", "http://127.0.0.1:9/")  # never the network
    write_fake_mnist(tmp_path, gz=True, skip=(missing,))
    with pytest.raises(DataError) as info:
        load_mnist("test", data_dir=tmp_path, download=True)  # some files present: no download
    message = str(info.value)
    assert missing in message
    assert str(tmp_path) in message
    assert "--data-dir" in message
    # The other split is still usable.
    assert load_mnist("train", data_dir=tmp_path, download=False).labels.shape == (N_TRAIN,)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_load_mnist_wrong_sha(tmp_path, fake_mnist, gz):
    write_fake_mnist(tmp_path, gz=gz)
    name = "t10k-images-idx3-ubyte"
    bad = bytearray(FAKE_BLOBS[name])
    bad[-1] ^= 0xFF  # same size and header, one pixel changed
    path = tmp_path / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(bytes(bad)) if gz else bytes(bad))
    with pytest.raises(DataError, match="corrupted") as info:
        load_mnist("test", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)
    assert data.MNIST_FILES[name][:16] in str(info.value)


def test_load_mnist_truncated_plain_file(tmp_path, fake_mnist):
    write_fake_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(FAKE_BLOBS["t10k-labels-idx1-ubyte"][:-4])
    with pytest.raises(DataError, match="corrupted") as info:
        load_mnist("test", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)


def test_load_mnist_truncated_gz_file(tmp_path, fake_mnist):
    write_fake_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(FAKE_GZ["train-images-idx3-ubyte"][:200])
    with pytest.raises(DataError, match="corrupted") as info:
        load_mnist("train", data_dir=tmp_path, download=False)
    assert str(path) in str(info.value)


def test_load_mnist_truncated_idx_with_matching_sha(tmp_path, monkeypatch, fake_mnist):
    # A file whose checksum is "right" but whose IDX data is short still fails, naming the file.
    name = "t10k-labels-idx1-ubyte"
    write_fake_mnist(tmp_path, gz=False)
    short = FAKE_BLOBS[name][:-4]
    (tmp_path / name).write_bytes(short)
    monkeypatch.setitem(data.MNIST_FILES, name, sha256(short))
    with pytest.raises(DataError, match="truncated") as info:
        load_mnist("test", data_dir=tmp_path, download=False)
    assert str(tmp_path / name) in str(info.value)


def test_load_mnist_wrong_shapes(tmp_path, monkeypatch, fake_mnist):
    write_fake_mnist(tmp_path, gz=False)
    image_name, label_name, _ = data.SPLITS["test"]
    monkeypatch.setitem(data.SPLITS, "test", (image_name, label_name, N_TEST + 1))
    with pytest.raises(DataError, match="shapes"):
        load_mnist("test", data_dir=tmp_path, download=False)


@pytest.mark.parametrize("exists", [True, False])
def test_load_mnist_empty_folder_no_download(tmp_path, fake_mnist, exists):
    folder = tmp_path / "mnist"
    if exists:
        folder.mkdir()
    with pytest.raises(DataError) as info:
        load_mnist("test", data_dir=folder, download=False)
    message = str(info.value)
    assert "no MNIST test files" in message
    assert str(folder) in message
    assert "--data-dir" in message and "DIGITREC_DATA" in message
    assert folder.exists() == exists  # nothing created when not downloading


# ---------------------------------------------------------------- resolve_data_dir


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
    explicit, env_dir, cache = tmp_path / "explicit", tmp_path / "env", tmp_path / "cache"
    monkeypatch.setenv("DIGITREC_DATA", str(env_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert resolve_data_dir(explicit) == explicit
    assert resolve_data_dir(str(explicit)) == explicit
    assert resolve_data_dir() == env_dir
    assert resolve_data_dir(None) == env_dir
    monkeypatch.delenv("DIGITREC_DATA")
    assert resolve_data_dir() == cache / "digitrec" / "mnist"
    assert resolve_data_dir(explicit) == explicit


def test_resolve_data_dir_empty_env_falls_through(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert resolve_data_dir() == tmp_path / "digitrec" / "mnist"


def test_resolve_data_dir_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir() == tmp_path / ".cache" / "digitrec" / "mnist"


def test_resolve_data_dir_expands_user(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_data_dir("~/mnist") == tmp_path / "mnist"


def test_mirrors_from_env(monkeypatch):
    monkeypatch.delenv("DIGITREC_MNIST_MIRRORS", raising=False)
    assert data.mirrors_from_env() == data.DEFAULT_MIRRORS
    monkeypatch.setenv("DIGITREC_MNIST_MIRRORS", " http://a/ , ,http://b/x/ ")
    assert data.mirrors_from_env() == ("http://a/", "http://b/x/")


# ---------------------------------------------------------------- downloads


def test_download_good_mirror(tmp_path, mirror_server):
    folder = tmp_path / "new" / "mnist"  # created by download_mnist
    got = download_mnist(folder, mirrors=[mirror_server.url("good")], progress=False, timeout=5)
    assert got == folder
    assert leftovers(folder) == sorted(f"{name}.gz" for name in NAMES)
    for name in NAMES:
        assert (folder / f"{name}.gz").read_bytes() == FAKE_GZ[name]
        assert mirror_server.count(name) == 1
    split = load_mnist("test", data_dir=folder, download=False)
    np.testing.assert_array_equal(split.images, FAKE_ARRAYS["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(split.labels, FAKE_ARRAYS["t10k-labels-idx1-ubyte"])


def test_download_mirror_without_trailing_slash(tmp_path, mirror_server):
    mirror = mirror_server.url("good").rstrip("/")
    download_mnist(tmp_path, mirrors=[mirror], progress=False, timeout=5)
    assert load_mnist("train", data_dir=tmp_path, download=False).images.shape == (N_TRAIN, 28, 28)


@pytest.mark.parametrize("bad", ["missing", "wrong", "short", "half", "garbage", "bomb", "huge"])
def test_download_falls_back_to_next_mirror(tmp_path, mirror_server, bad):
    mirrors = [mirror_server.url(bad), mirror_server.url("good")]
    download_mnist(tmp_path, mirrors=mirrors, progress=False, timeout=5)
    assert leftovers(tmp_path) == sorted(f"{name}.gz" for name in NAMES)
    for name in NAMES:
        assert (tmp_path / f"{name}.gz").read_bytes() == FAKE_GZ[name]
        assert f"/{bad}/{name}.gz" in mirror_server.requests  # the bad one was tried first
        assert f"/good/{name}.gz" in mirror_server.requests
    assert load_mnist("train", data_dir=tmp_path, download=False).labels.shape == (N_TRAIN,)


def test_download_all_mirrors_bad(tmp_path, mirror_server):
    bad = ["missing", "wrong", "short", "half"]
    mirrors = [mirror_server.url(m) for m in bad]
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=mirrors, progress=False, timeout=5)
    message = str(info.value)
    first = NAMES[0]
    assert f"could not download {first}" in message
    for m in bad:
        assert f"{mirror_server.url(m)}{first}.gz" in message
    assert "Not Found" in message  # the 404
    assert "wrong content" in message
    assert "connection closed" in message  # the short response
    assert "--data-dir" in message and "DIGITREC_DATA" in message
    # Atomic: no temporary or partial file, no target file.
    assert leftovers(tmp_path) == []
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*"))


def test_download_unreachable_mirror(tmp_path, mirror_server):
    # A port with nothing listening: connection refused, reported, no file left.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/mnist/"
    with pytest.raises(DataError) as info:
        download_mnist(tmp_path, mirrors=[dead], progress=False, timeout=5)
    assert f"{dead}{NAMES[0]}.gz" in str(info.value)
    assert leftovers(tmp_path) == []


def test_download_skips_files_already_correct(tmp_path, mirror_server):
    present = "train-images-idx3-ubyte"
    (tmp_path / present).write_bytes(FAKE_BLOBS[present])  # plain file, correct content
    download_mnist(tmp_path, mirrors=[mirror_server.url("good")], progress=False, timeout=5)
    assert mirror_server.count(present) == 0
    for name in NAMES[1:]:
        assert mirror_server.count(name) == 1
    assert (tmp_path / present).read_bytes() == FAKE_BLOBS[present]  # untouched
    assert not (tmp_path / f"{present}.gz").exists()
    # A second run fetches nothing.
    before = len(mirror_server.requests)
    download_mnist(tmp_path, mirrors=[mirror_server.url("good")], progress=False, timeout=5)
    assert len(mirror_server.requests) == before


def test_download_replaces_wrong_gz_file(tmp_path, mirror_server):
    name = "t10k-labels-idx1-ubyte"
    (tmp_path / f"{name}.gz").write_bytes(gzip.compress(b"stale content", mtime=0))
    download_mnist(tmp_path, mirrors=[mirror_server.url("good")], progress=False, timeout=5)
    assert mirror_server.count(name) == 1
    assert (tmp_path / f"{name}.gz").read_bytes() == FAKE_GZ[name]
    assert load_mnist("test", data_dir=tmp_path, download=False).labels.shape == (N_TEST,)


def test_load_mnist_downloads_with_env_mirrors(tmp_path, monkeypatch, mirror_server):
    monkeypatch.setenv(
        "DIGITREC_MNIST_MIRRORS", f"{mirror_server.url('missing')},{mirror_server.url('good')}"
    )
    folder = tmp_path / "cache"
    split = load_mnist("test", data_dir=folder, download=True, progress=False)
    np.testing.assert_array_equal(split.images, FAKE_ARRAYS["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(split.labels, FAKE_ARRAYS["t10k-labels-idx1-ubyte"])
    test_files = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    assert leftovers(folder) == sorted(f"{name}.gz" for name in test_files)  # only the split's
    for name in test_files:
        assert mirror_server.count(name) == 2  # the 404 mirror, then the good one
    load_mnist("train", data_dir=folder, download=True, progress=False)  # fetched when needed
    assert leftovers(folder) == sorted(f"{name}.gz" for name in NAMES)


def test_load_mnist_downloads_into_env_data_dir(tmp_path, monkeypatch, mirror_server):
    folder = tmp_path / "from-env"
    monkeypatch.setenv("DIGITREC_DATA", str(folder))
    monkeypatch.setenv("DIGITREC_MNIST_MIRRORS", mirror_server.url("good"))
    split = load_mnist("train", progress=False)
    assert split.images.shape == (N_TRAIN, 28, 28)
    assert (folder / "train-images-idx3-ubyte.gz").is_file()


# ---------------------------------------------------------------- folder datasets


def test_list_folder_dataset(tmp_path):
    root = tmp_path / "digits"
    (root / "3").mkdir(parents=True)
    (root / "7").mkdir()
    (root / "notadigit").mkdir()
    Image.new("L", (28, 28), 0).save(root / "3" / "a.png")
    Image.new("L", (28, 28), 255).save(root / "3" / "B.PNG")
    Image.new("RGB", (20, 20), (255, 255, 255)).save(root / "7" / "b.jpg")
    Image.new("L", (28, 28), 0).save(root / "notadigit" / "c.png")  # not in a digit folder
    (root / "3" / "notes.txt").write_text("not a picture")
    (root / "7" / "README").write_text("not a picture either")
    Image.new("L", (28, 28), 0).save(root / "d.png")  # not in a digit folder
    items = list_folder_dataset(root)
    assert items == [
        (root / "3" / "B.PNG", 3),
        (root / "3" / "a.png", 3),
        (root / "7" / "b.jpg", 7),
    ]
    assert all(isinstance(p, Path) and isinstance(label, int) for p, label in items)
    assert list_folder_dataset(str(root)) == items


def test_list_folder_dataset_empty(tmp_path):
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "x.txt").write_text("no pictures here")
    with pytest.raises(DataError, match="no pictures") as info:
        list_folder_dataset(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_list_folder_dataset_missing(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="not a folder") as info:
        list_folder_dataset(missing)
    assert str(missing) in str(info.value)


def test_list_folder_dataset_file_not_folder(tmp_path):
    f = tmp_path / "a.png"
    Image.new("L", (4, 4), 0).save(f)
    with pytest.raises(DataError, match="not a folder"):
        list_folder_dataset(f)


# ---------------------------------------------------------------- the real MNIST


def real_mnist_dir() -> Path:
    env = os.environ.get("DIGITREC_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


def test_real_mnist_test_split():
    folder = real_mnist_dir()
    split = load_mnist("test", data_dir=folder, download=False, progress=False)
    assert split.images.shape == (10000, 28, 28)
    assert split.images.dtype == np.uint8
    assert split.labels.shape == (10000,)
    assert split.labels.min() == 0 and split.labels.max() == 9
    assert set(np.unique(split.labels).tolist()) == set(range(10))
    assert 0 < split.images.mean() < 128  # white ink on black: mostly dark
    assert split.sha256 == {
        "t10k-images-idx3-ubyte": data.MNIST_FILES["t10k-images-idx3-ubyte"],
        "t10k-labels-idx1-ubyte": data.MNIST_FILES["t10k-labels-idx1-ubyte"],
    }
    assert split.sha256["t10k-images-idx3-ubyte"].startswith("0fa7898d")
    assert split.sha256["t10k-labels-idx1-ubyte"].startswith("ff7bcfd4")
