"""User-corrected samples: the pictures people said were misread, with their true digit.

They live in one SQLite file (WAL mode, so several server workers can write while an export
reads) and leave it as a folder dataset, `DIR/<digit>/<id>.png`, which `digitrec evaluate
--images` and training read like any other.
"""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError, DataError
from .files import user_folder, write_atomic
from .reading.preprocess import ImageInput, load_image

DB_NAME = "feedback.sqlite3"
SCHEMA_VERSION = 1
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    created   TEXT    NOT NULL,                              -- UTC, ISO 8601
    label     INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9), -- the true digit
    predicted INTEGER CHECK (predicted BETWEEN 0 AND 9),     -- what the model said, if any
    model     TEXT,                                          -- the model that said it
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    png       BLOB    NOT NULL
)
"""


def default_db_path() -> Path:
    """feedback.sqlite3 in digitrec's user data folder (files.user_folder)."""
    return user_folder("data") / DB_NAME


@dataclass(frozen=True)
class Sample:
    id: int
    created: str
    label: int
    predicted: int | None
    model: str | None
    width: int
    height: int
    png: bytes


def _digit(value, what: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ConfigError(f"{what} must be a digit from 0 to 9, not {value!r}")
    return value


def as_png(picture: ImageInput) -> tuple[bytes, int, int]:
    """The picture as PNG bytes and its size. It is decoded (and so checked, with the same
    size guard as every other picture); PNG bytes are kept as they came."""
    image = load_image(picture)
    try:
        if isinstance(picture, bytes | bytearray) and bytes(picture[:8]) == PNG_SIGNATURE:
            return bytes(picture), image.width, image.height
        if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
            image = image.convert("RGB")  # CMYK JPEGs and the like have no PNG form
        out = io.BytesIO()
        image.save(out, "PNG")
        return out.getvalue(), image.width, image.height
    finally:
        if image is not picture:
            image.close()


class FeedbackStore:
    """One SQLite file of corrected samples. Safe to share between threads; several
    processes may open the same file (WAL)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path).expanduser() if path else default_db_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit: every statement is its own transaction, which is all we need
            self._db = sqlite3.connect(
                self.path, timeout=10, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise DataError(
                    f"{self.path} was written by a newer digitrec (feedback schema {version})"
                )
        except (OSError, sqlite3.Error) as e:
            raise DataError(f"cannot open the feedback database {self.path}: {e}")
        self._lock = threading.Lock()

    def add(
        self,
        picture: ImageInput,
        label: int,
        predicted: int | None = None,
        model: str | None = None,
    ) -> int:
        """Store a picture with its true digit; returns its id."""
        label = _digit(label, "the label")
        predicted = _digit(predicted, "the predicted digit", optional=True)
        png, width, height = as_png(picture)
        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT INTO feedback (created, label, predicted, model, width, height, png)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (created, label, predicted, model, width, height, png),
                )
            except sqlite3.Error as e:
                raise DataError(f"cannot write to the feedback database {self.path}: {e}")
        return int(cursor.lastrowid)

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def get(self, sample_id: int) -> Sample | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, created, label, predicted, model, width, height, png"
                " FROM feedback WHERE id = ?",
                (sample_id,),
            ).fetchone()
        return Sample(*row) if row else None

    def samples(self) -> Iterator[Sample]:
        """Every sample, oldest first (read in pages, so a large store is not held in memory)."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, created, label, predicted, model, width, height, png"
                    " FROM feedback WHERE id > ? ORDER BY id LIMIT 256",
                    (last,),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Sample(*row)
            last = rows[-1][0]

    def export(self, folder: str | os.PathLike) -> int:
        """Write every sample as `folder/<label>/<id>.png`; returns how many. Files already
        there are replaced, so exporting again brings the folder up to date."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise DataError(f"{folder} exists and is not a folder")
        n = 0
        for sample in self.samples():
            try:
                write_atomic(folder / str(sample.label) / f"{sample.id}.png", sample.png)
            except OSError as e:
                raise DataError(f"cannot write {folder}: {e}")
            n += 1
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def export_feedback(db: str | os.PathLike | None, folder: str | os.PathLike) -> int:
    """Export the store at `db` (the default one if None) without creating it if absent."""
    path = Path(db).expanduser() if db else default_db_path()
    if not path.is_file():
        raise DataError(f"no feedback database at {path} (serve with --db to choose one)")
    with FeedbackStore(path) as store:
        return store.export(folder)
