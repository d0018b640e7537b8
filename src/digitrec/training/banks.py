"""Synthetic training banks (non-digits, re-drawn digits, pairs), built once and kept in the
user cache: they are repeatable from their seed, and building them (every picture through
preprocess.to_mnist) takes longer than an epoch of a small net.

A bank's key covers its builder, its arguments (arrays by content) and the source of every
module that draws or preprocesses, so a change to the drawing or the preprocessing builds
it again; a cache that cannot be written is simply not used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import __version__
from ..files import atomic_path, user_folder

_SOURCES = (
    "reading/preprocess.py",
    "training/synthetic.py",
    "training/redraw.py",
    "training/pen.py",
    "training/framed.py",
    "training/banks.py",
)


def cache_dir() -> Path:
    return user_folder("cache") / "banks"


def _key(build: Callable, args: tuple) -> str:
    h = hashlib.sha256(f"{__version__}:{build.__module__}.{build.__qualname__}".encode())
    here = Path(__file__).parents[1]  # the package
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    for a in args:
        if isinstance(a, np.ndarray):
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).data)
        else:
            h.update(repr(a).encode())
    return h.hexdigest()[:24]


def cached(build: Callable, *args):
    """build(*args), an array or a tuple of arrays, from the cache when it is there."""
    path = cache_dir() / f"{build.__name__}-{_key(build, args)}.npz"
    try:
        with np.load(path) as stored:
            arrays = [stored[f"a{i}"] for i in range(len(stored.files))]
        return arrays[0] if len(arrays) == 1 else tuple(arrays)
    except (OSError, ValueError, KeyError):
        pass
    result = build(*args)
    arrays = result if isinstance(result, tuple) else (result,)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **{f"a{i}": a for i, a in enumerate(arrays)})
    except OSError:
        pass  # a read-only home: build it again next time
    return result
