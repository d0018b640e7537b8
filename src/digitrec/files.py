"""Where digitrec keeps its files, and atomic file writes: a reader sees the old file or the
whole new one, never half of it."""

from __future__ import annotations

import errno
import os
import stat
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


def mode_kind(mode: int) -> str:
    """What a stat() mode is: "file", "folder", "fifo", "device", "socket" or "other"."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "socket" if stat.S_ISSOCK(mode) else "other"


def file_kind(path: str | os.PathLike) -> str:
    """What is at `path`: a mode_kind, or "missing", "loop", "dangling" (a symbolic link to
    nothing) or "unreadable". Only stat()s it: opening a FIFO would block until a writer
    came, and reading a device may never end."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "loop"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "dangling" if os.path.islink(path) else "missing"
        return "unreadable"
    except ValueError:  # a NUL byte in the name
        return "missing"
    return mode_kind(mode)
