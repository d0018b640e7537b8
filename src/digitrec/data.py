"""MNIST's IDX files (read, write, check, download into a cache) and folder datasets."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import struct
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError
from .files import user_folder, write_atomic

# SHA-256 of each file's decompressed content: the .gz bytes differ between mirrors.
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}
# Tried in turn; each serves the four files gzip-compressed under these names.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# The size of each file's content (header and data): MNIST's own, whatever a header says.
MNIST_SIZES = {
    "train-images-idx3-ubyte": 16 + 60000 * 28 * 28,
    "train-labels-idx1-ubyte": 8 + 60000,
    "t10k-images-idx3-ubyte": 16 + 10000 * 28 * 28,
    "t10k-labels-idx1-ubyte": 8 + 10000,
}
# The most an IDX file of another name may hold: five times MNIST's largest.
MAX_IDX_BYTES = 256 << 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_IDX_TYPES = {0x08: np.uint8}
_CHUNK = 1 << 20  # read and decompress this much at a time
_GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip header and trailer
_POINT_AT_DATA = (
    "point --data-dir (or $DIGITREC_DATA) at a folder holding the four MNIST files "
    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte, each plain or .gz)"
)


def default_cache_dir() -> Path:
    return user_folder("cache") / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $DIGITREC_DATA, else the user cache."""
    chosen = data_dir or os.environ.get("DIGITREC_DATA") or default_cache_dir()
    return Path(chosen).expanduser()


# ---------------------------------------------------------------- IDX files


def read_idx_bytes(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse an IDX blob (unsigned-byte data only, as MNIST uses)."""
    if len(raw) < 4:
        raise DataError(f"{name} is truncated: it has {len(raw)} bytes, not even an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{name} is not an IDX file of unsigned bytes (header {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims)
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "too long"
        raise DataError(
            f"{name} is {what}: its header promises {'x'.join(map(str, dims))} = "
            f"{expected:,} bytes of data, the file holds {found:,}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


class _Content:
    """The content of a file, plain or gzip-compressed, handed out in bounded pieces: a
    small .gz file can hold gigabytes, so nothing here decompresses more than is asked for."""

    def __init__(self, f: BinaryIO, gz: bool):
        self.f = f
        self.inflate = zlib.decompressobj(_GZIP) if gz else None

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only where the content ends. EOFError if a gzip stream is
        cut short, zlib.error if it is not one."""
        if self.inflate is None:
            return self.f.read(n)
        pieces, got = [], 0
        while got < n:
            if self.inflate.eof:  # a member ended: another may follow (as gzip allows)
                data = self.inflate.unused_data or self.f.read(_CHUNK)
                if not data:
                    break
                self.inflate = zlib.decompressobj(_GZIP)
            else:
                data = self.inflate.unconsumed_tail or self.f.read(_CHUNK)
            piece = self.inflate.decompress(data, n - got)
            if not data and not piece and not self.inflate.eof:
                raise EOFError("the file ends inside its gzip stream")
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)


def _idx_limit(name: str) -> int:
    return MNIST_SIZES.get(name.removesuffix(".gz"), MAX_IDX_BYTES)


def _read_content(f: BinaryIO, gz: bool, where: str, limit: int, size: int | None) -> bytearray:
    """The content of an IDX file, never more than its header promises. A header that is
    not IDX's stops the reading (callers' checks then say what is wrong); a promise over
    `limit`, or content past the promise, is DataError. `size`: a plain file's size."""
    content = _Content(f, gz)
    raw = bytearray(content.read(4))
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        return raw
    raw += content.read(4 * raw[3])
    if len(raw) < 4 + 4 * raw[3]:
        return raw
    promised = len(raw) + math.prod(struct.unpack(f">{raw[3]}I", raw[4:]))
    if promised > limit:
        raise DataError(
            f"{where} is corrupted: its IDX header promises {promised:,} bytes, more than "
            f"the {limit:,} such a file holds; delete it and download again"
        )
    # a plain file cut short holds less than its promise: no room is made for the rest
    buffer = bytearray(promised if size is None else min(promised, size))
    buffer[: len(raw)] = raw
    filled = len(raw)
    while filled < len(buffer):
        piece = content.read(min(_CHUNK, len(buffer) - filled))
        if not piece:
            break
        buffer[filled : filled + len(piece)] = piece
        filled += len(piece)
    del buffer[filled:]  # in place: a short file's content, for the callers to judge
    if filled == promised and content.read(1):
        raise DataError(
            f"{where} is corrupted: it is too long, its content running past the "
            f"{promised:,} bytes its IDX header promises; delete it and download again"
        )
    return buffer


def _decompressed(path: Path) -> bytearray:
    """The content of an IDX file (.gz or plain), read in bounded pieces (_read_content)."""
    try:
        with open(path, "rb") as f:
            size = None if path.suffix == ".gz" else os.fstat(f.fileno()).st_size
            return _read_content(f, path.suffix == ".gz", str(path), _idx_limit(path.name), size)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path} is corrupted or unreadable ({e}); delete it and download again")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    return read_idx_bytes(_decompressed(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an unsigned-byte array as IDX (gzip-compressed when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.tobytes()
    path = Path(path)
    write_atomic(path, gzip.compress(blob, mtime=0) if path.suffix == ".gz" else blob)


# ---------------------------------------------------------------- MNIST


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_checked(folder: Path, name: str) -> tuple[np.ndarray, str]:
    path = _find(folder, name)
    if path is None:
        raise DataError(f"{folder} has no {name} (or {name}.gz); {_POINT_AT_DATA}")
    raw = _decompressed(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_FILES[name]:
        raise DataError(
            f"{path} is corrupted: the SHA-256 of its content is {digest[:16]}..., "
            f"expected {MNIST_FILES[name][:16]}...; delete it and run `digitrec data download`"
        )
    return read_idx_bytes(raw, str(path)), digest


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8, white ink on black
    labels: np.ndarray  # (N,) int64
    sha256: dict[str, str]  # file name -> SHA-256 of its content


def load_mnist(split: str, data_dir=None, download: bool = True, progress: bool = True) -> Split:
    """One MNIST split, checked; downloads into the folder only when it holds none of the files."""
    if split not in SPLITS:
        raise DataError(f"unknown MNIST split {split!r}: use 'train' or 'test'")
    folder = resolve_data_dir(data_dir)
    image_name, label_name, n = SPLITS[split]
    if not (_find(folder, image_name) or _find(folder, label_name)):
        if not download:
            raise DataError(f"no MNIST {split} files in {folder}; {_POINT_AT_DATA}")
        download_mnist(folder, names=(image_name, label_name), progress=progress)
    images, image_sha = _load_checked(folder, image_name)
    labels, label_sha = _load_checked(folder, label_name)
    if images.shape != (n, 28, 28) or labels.shape != (n,):
        raise DataError(f"{folder}: MNIST {split} files have shapes {images.shape}, {labels.shape}")
    return Split(images, labels.astype(np.int64), {image_name: image_sha, label_name: label_sha})


def mirrors_from_env() -> tuple[str, ...]:
    env = os.environ.get("DIGITREC_MNIST_MIRRORS")
    return tuple(m.strip() for m in env.split(",") if m.strip()) if env else DEFAULT_MIRRORS


def download_mnist(
    folder=None, mirrors=None, progress: bool = True, timeout: float = 30, names=None
) -> Path:
    """Fetch the files (all four unless `names` says) into `folder`, checking each one's
    content before it is kept."""
    folder = resolve_data_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mirrors = tuple(mirrors or mirrors_from_env())
    for name in names or MNIST_FILES:
        sha = MNIST_FILES[name]
        present = _find(folder, name)
        if present is not None:
            try:
                if hashlib.sha256(_decompressed(present)).hexdigest() == sha:
                    continue
            except DataError:
                pass  # unreadable: fetch a good copy below
        _download_one(folder, name, sha, mirrors, progress, timeout)
        if present is not None and present != folder / f"{name}.gz":
            present.unlink(missing_ok=True)  # the bad plain copy would hide the new .gz
    return folder


def _download_one(folder, name, sha, mirrors, progress, timeout) -> None:
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + f"/{name}.gz"
        try:
            # compressed, a file is never much larger than its content
            blob = _fetch(url, progress, timeout, limit=2 * MNIST_SIZES[name] + (1 << 20))
            content = _read_content(io.BytesIO(blob), True, url, _idx_limit(name), None)
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            OSError,
            EOFError,
            zlib.error,
            ValueError,
            DataError,
        ) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest != sha:
            failures.append(
                f"{url}: wrong content (SHA-256 {digest[:16]}..., expected {sha[:16]}...)"
            )
            continue
        write_atomic(folder / f"{name}.gz", blob)
        return
    raise DataError(
        f"could not download {name} from any mirror ({'; '.join(failures)}); "
        f"with no network, {_POINT_AT_DATA}"
    )


def _fetch(url: str, progress: bool, timeout: float, limit: int) -> bytes:
    """The body at `url`; OSError for one over `limit` bytes or cut short."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        if total is not None and total > limit:
            raise OSError(f"it offers {total:,} bytes, more than the file can hold")
        chunks = []
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=url.rsplit("/", 1)[-1],
            disable=not progress,
            file=sys.stderr,
        ) as bar:
            got = 0
            while chunk := response.read(1 << 16):
                got += len(chunk)
                if got > limit:
                    raise OSError(f"it sends more than the {limit:,} bytes the file can hold")
                chunks.append(chunk)
                bar.update(len(chunk))
    blob = b"".join(chunks)
    if total is not None and len(blob) != total:
        raise OSError(f"connection closed after {len(blob):,} of {total:,} bytes")
    return blob


# ---------------------------------------------------------------- folder datasets


def folder_pictures(root: Path) -> list[tuple[Path, int]]:
    """(path, label) for every picture file in root/<digit>/, sorted; [] when there are none."""
    items = []
    for digit in range(10):
        sub = root / str(digit)
        if sub.is_dir():
            items += [
                (p, digit)
                for p in sorted(sub.iterdir())
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            ]
    return items


def list_folder_dataset(root: str | os.PathLike) -> list[tuple[Path, int]]:
    """(path, label) for every picture in root/<digit>/, sorted for repeatability."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected a folder laid out as DIR/<digit>/*.png")
    items = folder_pictures(root)
    if not items:
        raise DataError(
            f"{root} holds no pictures in digit folders; expected {root}/<digit>/*.png "
            "(or .jpg, .bmp, .webp) with <digit> from 0 to 9"
        )
    return items
