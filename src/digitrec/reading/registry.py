"""The models folder: trained and fine-tuned models kept by name, beside the bundled one.

A model there is NAME.onnx (read with ONNX Runtime) and/or NAME.safetensors (read with
PyTorch), with its card NAME.json beside it. `--model NAME` picks one anywhere a model is
taken. Torch-free and numpy-free: listing reads cards and file headers only.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..errors import ModelError
from ..files import file_kind, user_folder
from .cards import (
    CARD_KEY,
    MAX_HEADER_BYTES,
    check_card,
    check_model_file,
    read_card,
    read_json_card,
)

BUNDLED = "bundled"
MODEL_SUFFIXES = (".onnx", ".safetensors")  # the served file first: ONNX needs no torch
CARD_SUFFIX = ".json"
BUNDLED_FILE = "default.onnx"  # the bundled model, in the package's weights folder


def models_dir() -> Path:
    """$DIGITREC_MODELS, else models/ in digitrec's user data folder (files.user_folder)."""
    chosen = os.environ.get("DIGITREC_MODELS")
    if chosen:
        return Path(chosen).expanduser()
    return user_folder("data") / "models"


def bundled_path(name: str = BUNDLED_FILE) -> Path:
    """A file of the package's weights folder: the bundled model unless named."""
    return Path(str(resources.files("digitrec") / "weights" / name))


# ---------------------------------------------------------------- file checks


def _varint(f) -> int:
    value = shift = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise ValueError("cut short")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a malformed number")


def _string_pairs(blob: bytes) -> tuple[str | None, str | None]:
    """key and value of an ONNX StringStringEntryProto (fields 1 and 2)."""
    f, out = io.BytesIO(blob), {}
    while f.tell() < len(blob):
        tag = _varint(f)
        if tag & 7 != 2:
            raise ValueError("a malformed metadata entry")
        out[tag >> 3] = f.read(_varint(f)).decode("utf-8")
    return out.get(1), out.get(2)


def onnx_metadata(path: Path) -> dict[str, str]:
    """The metadata of an ONNX file, walking only the top level of its protobuf: every field
    must fit the file exactly and a graph must be there, which a cut-short or foreign file
    almost never does. Cheap: the graph itself is skipped, not parsed. Raises ValueError."""
    size = path.stat().st_size
    metadata, seen = {}, set()
    with open(path, "rb") as f:
        while f.tell() < size:
            tag = _varint(f)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise ValueError("not ONNX")
            if wire == 0:
                _varint(f)
            elif wire == 1 or wire == 5:
                f.seek(8 if wire == 1 else 4, os.SEEK_CUR)
            elif wire == 2:
                length = _varint(f)
                if f.tell() + length > size:
                    raise ValueError("cut short")
                if number == 14:  # ModelProto.metadata_props
                    key, value = _string_pairs(f.read(length))
                    if key is not None:
                        metadata[key] = value
                else:
                    f.seek(length, os.SEEK_CUR)
            else:
                raise ValueError("not ONNX")
            seen.add(number)
        if f.tell() != size:
            raise ValueError("cut short")
    if 7 not in seen:  # ModelProto.graph
        raise ValueError("no graph in it")
    return metadata


def check_safetensors(path: Path) -> None:
    """The header is JSON and its tensors end exactly where the file does. Raises ValueError."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("cut short")
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            raise ValueError("its header is larger than the file")
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"its header has {length:,} bytes, far more than a model's")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("its header is not a table of tensors")
    ends = [
        t["data_offsets"][1]
        for k, t in header.items()
        if k != "__metadata__" and isinstance(t, dict) and "data_offsets" in t
    ]
    if 8 + length + max(ends, default=0) != size:
        raise ValueError("cut short or padded: its tensors do not end where the file does")


# ---------------------------------------------------------------- listing


@dataclass
class ModelEntry:
    """One model (or one thing in the folder that is not a usable model: `problem` says why)."""

    name: str
    path: Path | None  # the file that is read: NAME.onnx, else NAME.safetensors
    files: list[Path] = field(default_factory=list)
    card: dict | None = None
    problem: str | None = None
    bundled: bool = False

    @property
    def formats(self) -> list[str]:
        return [f.suffix[1:] for f in self.files if f.suffix in MODEL_SUFFIXES]

    @property
    def parent(self) -> str | None:
        parent = (self.card or {}).get("parent")
        return str(parent.get("name")) if isinstance(parent, dict) and parent.get("name") else None

    @property
    def date(self) -> str | None:
        date = (self.card or {}).get("date")
        return str(date) if date else None

    @property
    def accuracies(self) -> dict[str, float]:
        """Every accuracy the card records under `metrics` (a fine-tune's card also has its
        parent's, as `*_accuracy_before`), MNIST test first."""
        metrics = (self.card or {}).get("metrics")
        if not isinstance(metrics, dict):
            return {}
        found = {
            k: float(v)
            for k, v in metrics.items()
            if "accuracy" in k and isinstance(v, int | float) and not isinstance(v, bool)
        }
        return dict(sorted(found.items(), key=lambda kv: (kv[0] != "test_accuracy", kv[0])))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "formats": self.formats,
            "files": [str(f) for f in self.files],
            "bundled": self.bundled,
            "parent": self.parent,
            "date": self.date,
            "accuracies": self.accuracies,
            "problem": self.problem,
        }


def _check_model_file(path: Path) -> dict[str, str]:
    """ONNX metadata (empty for safetensors) after a header check; ModelError if damaged."""
    try:
        if path.suffix == ".onnx":
            return onnx_metadata(path)
        check_safetensors(path)
        return {}
    except (
        ValueError,
        OSError,
        struct.error,
        TypeError,
        KeyError,
        IndexError,
        RecursionError,
    ) as e:
        kind = "ONNX" if path.suffix == ".onnx" else "safetensors"
        raise ModelError(f"{path} is damaged: not a readable {kind} file ({e})")


def read_entry(name: str, files: list[Path], bundled: bool = False) -> ModelEntry:
    """One model from its files (NAME.onnx, NAME.safetensors, NAME.json); never raises."""
    files = sorted(files, key=lambda f: (MODEL_SUFFIXES + (CARD_SUFFIX,)).index(f.suffix))
    served = [f for f in files if f.suffix in MODEL_SUFFIXES]
    entry = ModelEntry(name, served[0] if served else None, files, bundled=bundled)
    try:
        if not served:
            card = check_card(read_json_card(files[0]), str(files[0]))
            entry.card = card
            entry.problem = f"a card without its model file ({name}.onnx or {name}.safetensors)"
            return entry
        embedded = None
        for f in served:
            embedded = _check_model_file(f).get(CARD_KEY, embedded)
        entry.card = read_card(served[0], embedded=embedded)
    except ModelError as e:
        entry.problem = str(e)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError) as e:
        entry.problem = f"{files[0]} is not a digitrec card ({e})"
    return entry


def list_models(folder: str | os.PathLike | None = None, bundled: bool = True) -> list[ModelEntry]:
    """The bundled model first, then every model in the folder by name; files that are not
    models (or are damaged) are listed too, with their `problem`."""
    folder = Path(folder) if folder is not None else models_dir()
    entries = [read_entry(BUNDLED, _bundled_files(), bundled=True)] if bundled else []
    groups: dict[str, list[Path]] = {}
    others: list[ModelEntry] = []
    try:
        children = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as e:
        raise ModelError(f"cannot read the models folder {folder}: {e.strerror or e}")
    for child in children:
        if child.name.startswith("."):  # half-written files (files.atomic_path) and the like
            continue
        if child.is_file() and child.suffix in (*MODEL_SUFFIXES, CARD_SUFFIX):
            groups.setdefault(child.stem, []).append(child)
        else:
            what = "a folder" if child.is_dir() else "not a model file"
            others.append(
                ModelEntry(
                    child.name,
                    None,
                    [child],
                    problem=f"{what}: a model here is NAME.onnx or NAME.safetensors "
                    "with its card NAME.json",
                )
            )
    for name, files in sorted(groups.items()):
        entry = read_entry(name, files)
        if name == BUNDLED and bundled:
            entry.problem = (
                "'bundled' names the shipped model, so this one cannot be used: rename it"
            )
        entries.append(entry)
    return entries + others


def _bundled_files() -> list[Path]:
    main = bundled_path()
    return [p for p in (main, main.with_suffix(".safetensors"), main.with_suffix(".json"))
            if p.is_file()]  # fmt: skip


# ---------------------------------------------------------------- names


def looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.startswith(("~", "."))
        or Path(value).suffix.lower() in (*MODEL_SUFFIXES, CARD_SUFFIX)
    )


def find_model(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The file of the model called `name`: 'bundled', or NAME.onnx (else NAME.safetensors)
    in the models folder. ModelError, listing the names there are, when there is none."""
    if name == BUNDLED:
        path = bundled_path()
        if not path.is_file():
            raise ModelError(f"the bundled model {path} does not exist")
        return path
    folder = Path(folder) if folder is not None else models_dir()
    for suffix in MODEL_SUFFIXES:
        if file_kind(folder / (name + suffix)) != "missing":
            return check_model_file(folder / (name + suffix))
    known = [e.name for e in list_models(folder) if e.problem is None]
    raise ModelError(
        f"no model named {name!r} (and no such file): the models are {', '.join(known)} "
        f"(models folder: {folder}; set $DIGITREC_MODELS for another)"
    )


RUN_FILES = ("model.onnx", "model.safetensors")  # what a training run folder holds, served first


def run_model(folder: Path) -> Path:
    """The model of a training run's folder (`digitrec train --out DIR`)."""
    for name in RUN_FILES:
        if file_kind(folder / name) != "missing":
            return check_model_file(folder / name)
    raise ModelError(
        f"{folder} is a folder with no model in it: a training run's folder holds "
        f"{' or '.join(RUN_FILES)}; give one of those, or a model file"
    )


def resolve(value: str | os.PathLike) -> Path:
    """A model file from what --model (or $DIGITREC_MODEL) says: a path (a training run's
    folder gives its model), 'bundled', or the name of a model in the models folder."""
    path = Path(value).expanduser()
    kind = file_kind(path)
    if kind == "folder":  # as a file there wins over a name, so does a folder
        return run_model(path)
    # anything there (a FIFO, a link loop...) is what was meant, and is named as what it is
    if not isinstance(value, str) or looks_like_path(value) or kind != "missing":
        return check_model_file(path)
    return find_model(value)


def served_name(path: Path, card: dict) -> str:
    """The name to show for a loaded model: its name in the models folder (what --model and
    the admin route call it), else the name in its card."""
    if path.suffix in MODEL_SUFFIXES and path.parent.resolve() == models_dir().resolve():
        return path.stem
    return str(card.get("name", path.stem))
