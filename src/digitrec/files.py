"""Where digitrec keeps its files, and atomic file writes: a reader sees the old file or the
whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platformdirs import PlatformDirs, PlatformDirsABC


def user_folder(kind: str, dirs: type[PlatformDirsABC] = PlatformDirs) -> Path:
    """digitrec's own folder of `kind` "cache" or "data", by the system's conventions: on
    Linux $XDG_CACHE_HOME or $XDG_DATA_HOME (else ~/.cache, ~/.local/share), on macOS
    ~/Library/Caches or ~/Library/Application Support, on Windows %LOCALAPPDATA%."""
    found = dirs("digitrec", appauthor=False)
    return Path(found.user_cache_dir if kind == "cache" else found.user_data_dir)


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
