"""Model cards: the JSON that travels with every model file. Torch-free, so the Predictor and
`models`-style listings can read cards without the training extra."""

from __future__ import annotations

import json
import numbers
import os
import struct
from pathlib import Path

from ..errors import ConfigError, ModelError
from ..files import file_kind
from .views import VIEWS

CARD_FORMAT = "digitrec-model/1"
CARD_KEY = "digitrec_card"  # metadata key inside .safetensors and .onnx files
# A card is a few kilobytes; one far larger is not a card, and reading it whole would cost
# memory a stranger chooses.
MAX_CARD_BYTES = 4 << 20
# A safetensors header holds the card and a line per tensor: a few hundred kilobytes for the
# largest ensemble. The format allows 100 MB, which Python's JSON would make gigabytes of.
MAX_HEADER_BYTES = 16 << 20
DEFAULT_THRESHOLD = 0.5  # for models whose card holds no calibrated threshold


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


_NOT_A_FILE = {
    "folder": "is a folder, not a model file",
    "loop": "is a loop of symbolic links that never reaches a file",
    "dangling": "is a symbolic link to nothing: its target is gone",
    "fifo": "is a named pipe (FIFO), not a model file: give the file itself",
    "device": "is a device, not a model file",
    "socket": "is a socket, not a model file",
    "unreadable": "cannot be looked at (permission denied, or a part of its path is not a folder)",
    "other": "is not a regular file",
}


def check_model_file(path: Path) -> Path:
    """`path` if it is a regular file; else ModelError saying what is there instead."""
    kind = file_kind(path)
    if kind == "file":
        return path
    if kind == "missing":
        raise ModelError(f"model file {path} does not exist")
    raise ModelError(f"{path} {_NOT_A_FILE[kind]}")


def read_json_card(path: Path) -> object:
    """The JSON in a card file, refusing one too large to be a card."""
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise ModelError(
            f"{path} is not a digitrec card: {size:,} bytes, where a card has a few thousand"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def check_card(card: object, where: str) -> dict:
    if (
        not isinstance(card, dict)
        or card.get("format") != CARD_FORMAT
        or not isinstance(card.get("model"), dict)
    ):
        raise ModelError(
            f"{where} is not a digitrec model (no digitrec card in it or beside it); "
            "give a .onnx or .safetensors file written by `digitrec train` or `digitrec export`"
        )
    return card


def _number(value: object) -> float | None:
    """`value` as a float when it is a real number (not a bool, not a string), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def check_threshold(value: object, name: str = "threshold") -> float:
    """A refusal threshold: a number from 0 (refuse nothing) to 1 (keep only answers the
    model is certain of); ConfigError for anything else, NaN included (it refuses nothing,
    silently, since no comparison with NaN is true)."""
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:
        shown = repr(value) if number is None else f"{number:g}"
        raise ConfigError(
            f"{name} {shown}: give a number from 0 to 1 (answers less confident than "
            "it are refused)"
        )
    return number


def calibration(card: dict, path: Path) -> tuple[float, float]:
    """(temperature, threshold) from a card's calibration (1 and DEFAULT_THRESHOLD where it
    has none); ModelError for values no calibration gives."""
    given = card.get("calibration", {})
    if not isinstance(given, dict):
        raise ModelError(f"{path} is damaged: its card's calibration is not a table")
    temperature = _number(given.get("temperature", 1.0))
    threshold = _number(given.get("threshold", DEFAULT_THRESHOLD))
    # softmax divides by the temperature: zero, negative or huge ones turn answers around
    if temperature is None or not 1e-3 <= temperature <= 1e3:
        raise ModelError(
            f"{path} is damaged: its card's calibration temperature "
            f"{given.get('temperature')!r} is not a number from 0.001 to 1000"
        )
    if threshold is None or not 0.0 <= threshold <= 1.0:
        raise ModelError(
            f"{path} is damaged: its card's refusal threshold {given.get('threshold')!r} "
            "is not a number from 0 to 1"
        )
    return temperature, threshold


def calibrated_level(card: dict, path: Path, name: str, default: float) -> float:
    """A level from 0 to 1 of the card's calibration (`unsure_top_two`: what the top two
    digits of an answer refused for want of confidence hold when it is unsure between them
    rather than no digit; `tie_margin`: the lead of the top digit under which an answer is
    refused as unsure), else `default`; ModelError for a value no calibration gives."""
    given = card.get("calibration", {})
    level = _number(given.get(name, default)) if isinstance(given, dict) else None
    if level is None or not 0.0 <= level <= 1.0:
        raise ModelError(
            f"{path} is damaged: its card's calibration {name} {given.get(name)!r} is not a "
            "number from 0 to 1"
        )
    return level


def second_look_setting(card: dict, path: Path) -> tuple[float, list[str]] | None:
    """Below what confidence the model reads an answer again, and in which views
    (calibrate.second_look, views.VIEWS), as its card's calibration says; None when it
    reads once. ModelError for a setting no calibration gives."""
    given = card.get("calibration", {})
    look = given.get("second_look") if isinstance(given, dict) else None
    if look is None:
        return None
    below = _number(look.get("below")) if isinstance(look, dict) else None
    names = look.get("views") if isinstance(look, dict) else None
    if (
        below is None
        or not 0.0 <= below <= 1.0
        or not isinstance(names, list)
        or not all(isinstance(n, str) and n in VIEWS for n in names)
    ):
        raise ModelError(
            f"{path} is damaged: its card's calibration second_look {look!r} is not a level "
            f"from 0 to 1 and a list of views from {', '.join(VIEWS)}"
        )
    return below, names


def _safetensors_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return {}
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER_BYTES:
            return {}
        header = json.loads(f.read(size))
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def read_card(model_path: str | os.PathLike, embedded: str | None = None) -> dict:
    """The card beside a model file, else the one embedded in it (`embedded` for ONNX)."""
    path = check_model_file(Path(model_path))
    try:
        if path.suffix == ".json":
            return check_card(read_json_card(path), str(path))
        side = card_path(path)
        if side.is_file():
            return check_card(read_json_card(side), str(path))
        if embedded is None and path.suffix == ".safetensors":
            embedded = _safetensors_metadata(path).get(CARD_KEY)
        found = json.loads(embedded) if isinstance(embedded, str) and embedded else None
        return check_card(found, str(path))
    # RecursionError: JSON nested deeper than Python's parser goes
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, struct.error, RecursionError) as e:
        raise ModelError(f"{path} is not a digitrec model: its card cannot be read ({e})")


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else "?"


def _table(value) -> dict:
    """`value` if it is a JSON object, else an empty one: a card from a stranger's file may
    hold anything under any key, and describing it must not fail."""
    return value if isinstance(value, dict) else {}


def _percent(value) -> str:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{100 * value:.2f}%" if ok else "?"


def _number_text(value) -> str:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:.3f}" if ok else "?"


def _times(arch, n) -> str:
    return str(arch) if n == 1 else f"{arch} x {n}"


def _arch(model: dict) -> str:
    """'bncnn', 'bncnn x 4' (an ensemble of one net), 'ensemble: bncnn x 4, deep x 2'."""
    given = model.get("parts")
    parts = [str(_table(p).get("arch", "?")) for p in given] if isinstance(given, list) else []
    if parts:
        return "ensemble: " + ", ".join(_times(a, parts.count(a)) for a in dict.fromkeys(parts))
    return _times(model.get("arch"), model.get("members", 1))


def summary(card: dict) -> str:
    """A few human lines about a model, for `digitrec predict` and friends."""
    m = _table(card.get("metrics"))
    lines = [
        f"model      {card.get('name', '?')} (digitrec {card.get('version', '?')}, "
        f"{str(card.get('date', '?'))[:10]})",
        f"arch       {_arch(_table(card.get('model')))} "
        f"({_count(card.get('parameters'))} parameters)",
    ]
    if isinstance(card.get("ensemble"), list):
        given = [
            str(e.get("name") or e.get("path") or "?")
            + (f" ({_times(e['arch'], e.get('members', 1))})" if "arch" in e else "")
            for e in map(_table, card["ensemble"])
        ]
        lines.append(f"ensemble   averages {', '.join(given)}")
    if "train" in card:
        lines.append(
            f"recipe     preset {_table(card['train']).get('preset', '?')}, "
            f"{m.get('epochs', '?')} epochs, seed {card.get('seed', '?')}"
        )
    teacher = _table(card.get("teacher"))
    if "sha256" in teacher:
        lines.append(
            f"teacher    {teacher.get('file', '?')} (SHA-256 {str(teacher['sha256'])[:12]}...)"
        )
    if "test_accuracy" in m:
        looked = m.get("test_accuracy_second_look")
        lines.append(
            f"accuracy   MNIST test {_percent(m['test_accuracy'])}"
            + ("" if looked is None else f", {_percent(looked)} with a second look")
            + f" (validation {_percent(m.get('val_accuracy'))})"
        )
    sources = _table(card.get("data")).get("sources")
    if isinstance(sources, list) and sources:
        named = [
            f"{str(s.get('name', '?')).split(' (')[0].split(',')[0]} ({s.get('licence', '?')})"
            for s in map(_table, sources)
        ]
        lines.append(f"data       {'; '.join(named)}")
    cal = _table(card.get("calibration"))
    if "threshold" in cal:
        rule = f"refusal    under {_number_text(cal['threshold'])} confident"
        if cal.get("tie_margin"):
            rule += f", or the top two digits within {_number_text(cal['tie_margin'])}"
        lines.append(rule + f" (refuses {_percent(cal.get('val_refused'))} of validation digits)")
    look = _table(cal.get("second_look"))
    if "below" in look:
        lines.append(
            f"second look under {_number_text(look['below'])} confident: reads "
            f"{len(look.get('views') or [])} more views of the digit and averages"
        )
    return "\n".join(lines)
