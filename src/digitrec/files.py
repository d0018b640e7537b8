"""Where digitrec keeps its files, and atomic file writes: a reader sees the old file or the
whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def user_folder(kind: str) -> Path:
    """digitrec's folder under $XDG_CACHE_HOME (kind "cache", default ~/.cache) or
    $XDG_DATA_HOME (kind "data", default ~/.local/share)."""
    variable, default = {
        "cache": ("XDG_CACHE_HOME", Path.home() / ".cache"),
        "data": ("XDG_DATA_HOME", Path.home() / ".local" / "share"),
    }[kind]
    return Path(os.environ.get(variable) or default) / "digitrec"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary name beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, blob: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(blob)
