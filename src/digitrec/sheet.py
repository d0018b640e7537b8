"""A dataset from a photographed sheet: each row of the page holds copies of one digit.

`read_sheet(photo, rows)` cuts every digit out with the segmentation `Predictor.read_number`
uses (lines are the sheet's rows, top to bottom) and labels it by its row;
`write_sheet_dataset(digits, out)` writes them as a folder dataset, `out/<digit>/<n>.png`,
with a contact sheet to check by eye. Each crop is the digit's ink as found in the photo,
white on black with a margin, not MNIST form: `preprocess.to_mnist` stays the one place
that makes that form, when the dataset is read.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data import folder_pictures
from .errors import ConfigError, DataError, EmptyImageError, OutputExistsError
from .files import write_atomic
from .loading import load_predictor
from .reading.predictor import Prediction, Predictor
from .reading.preprocess import WORK_SIDE, ImageInput, picture_ink

# A sheet holds ten rows of digits where a number holds one line: its ink map is made at
# twice preprocess's working side, so a digit on a whole page keeps well over MNIST's 20x20
# pixels in its crop.
SHEET_SIDE = 2 * WORK_SIDE
MARGIN = 0.15  # black left around each crop, as a share of the digit's larger side
MIN_MARGIN = 2  # pixels: to_mnist takes the border of a picture for its paper
FEW = 2 / 3  # a row with fewer digits than this share of the rows' median is marked ...
MANY = 3 / 2  # ... and so is one with more than this share (digits broken, stray marks)
SMALL = 0.5  # a digit shorter than this share of its row's median height is marked
CONTACT_SHEET = "contact-sheet.png"


@dataclass
class SheetDigit:
    """One digit cut from a sheet, labelled by its row."""

    label: int
    row: int  # the sheet's row, top to bottom, from 0
    box: tuple[int, int, int, int]  # left, top, right, bottom in the photo's pixels
    crop: np.ndarray  # uint8, its ink white on black, with a margin; not MNIST form
    reading: Prediction  # how the model reads the crop, as `evaluate --images` will
    small: bool = False  # much shorter than the other digits of its row

    @property
    def doubt(self) -> str | None:
        """Why this digit deserves a look, or None: the model reads it confidently as
        another digit, the model would not read it, or it is a mark smaller than a digit."""
        if not self.reading.refused and self.reading.digit != self.label:
            return "misread"
        if self.reading.refused:
            return "unsure"
        return "small" if self.small else None


@dataclass
class SheetDataset:
    """What write_sheet_dataset wrote."""

    folder: Path
    counts: dict[int, int]  # label -> digits written, for each label on the sheet
    contact_sheet: Path
    doubtful: int  # digits marked on the contact sheet
    odd_rows: list[int]  # rows (from 0) with far fewer or far more digits than the others

    def summary(self) -> str:
        counts = ", ".join(f"{label}: {n}" for label, n in sorted(self.counts.items()))
        marks = []
        if self.doubtful:
            marks.append(f"{self.doubtful} digit{'s' if self.doubtful != 1 else ''}")
        if self.odd_rows:
            rows = ", ".join(str(r + 1) for r in self.odd_rows)
            marks.append(f"row{'s' if len(self.odd_rows) > 1 else ''} {rows}")
        look = f"; check {' and '.join(marks)} marked on" if marks else "; contact sheet"
        total = sum(self.counts.values())
        return f"wrote {total} digits to {self.folder} ({counts}){look} {self.contact_sheet}"


def parse_rows(rows: str) -> list[int]:
    """The digit written in each row of the sheet, top to bottom: '0123456789', '7777'."""
    text = str(rows).strip()
    if not text or not text.isascii() or not text.isdigit():
        raise ConfigError(
            f"--rows must be the digit written in each row of the sheet, top to bottom "
            f"(like 0123456789 or 7777), not {rows!r}"
        )
    return [int(c) for c in text]


def _photo_name(photo: ImageInput) -> str:
    return str(photo) if isinstance(photo, str | os.PathLike) else "the photo"


def read_sheet(
    photo: ImageInput, rows: str, predictor: Predictor | None = None
) -> list[SheetDigit]:
    """Every digit on the sheet, rows top to bottom and left to right within a row, each
    labelled with its row's digit from `rows`. Raises ConfigError when the sheet's rows and
    `rows` differ in number, EmptyImageError for a blank photo, BadImageError for one that
    cannot be read."""
    labels = parse_rows(rows)
    predictor = predictor or load_predictor()
    name = _photo_name(photo)
    blank = f"{name}: the photo is blank: no ink stands out from the paper"
    try:
        ink, scale = picture_ink(photo, SHEET_SIDE)
    except EmptyImageError:
        raise EmptyImageError(blank)

    lines = predictor.segment(ink)
    if not lines:
        raise EmptyImageError(blank)
    if len(lines) != len(labels):
        found = ", ".join(str(len(line)) for line in lines)
        hint = (
            "if rows ran together (a tilted photo, or digits touching the row below), "
            "photograph the sheet level"
            if len(lines) < len(labels)
            else "if marks that are not digits make rows of their own, crop them away"
        )
        raise ConfigError(
            f"{name}: found {len(lines)} row{'s' if len(lines) != 1 else ''} of digits "
            f"(holding {found} digits, top to bottom) but --rows gives {len(labels)} "
            f"label{'s' if len(labels) != 1 else ''} ({''.join(map(str, labels))}); give one "
            f"digit per row as written, top to bottom; {hint}"
        )
    crops = [[_crop(s.ink) for s in line] for line in lines]
    # read as `evaluate --images` will read the files: through to_mnist, one by one
    readings = predictor.predict_many([c for line in crops for c in line])
    digits, i = [], 0
    for row, (label, line, line_crops) in enumerate(zip(labels, lines, crops, strict=True)):
        heights = [s.box[3] - s.box[1] for s in line]
        typical = float(np.median(heights))
        for s, crop, height in zip(line, line_crops, heights, strict=True):
            box = tuple(round(v / scale) for v in s.box)
            small_mark = height < SMALL * typical
            digits.append(SheetDigit(label, row, box, crop, readings[i], small_mark))
            i += 1
    return digits


def _crop(ink: np.ndarray) -> np.ndarray:
    """A digit's ink map as a picture to keep: white on black, with a black margin that
    to_mnist takes for the paper. Its strongest ink is made full white: the sheet's ink
    map is scaled to the darkest ink on the whole page, and a pencil digit beside a marker
    one would otherwise be kept too faint for to_mnist to tell from blank paper."""
    margin = max(MIN_MARGIN, round(MARGIN * max(ink.shape)))
    peak = float(ink.max())
    ink = np.clip(ink / peak if peak > 0 else ink, 0.0, 1.0)
    return np.round(255 * np.pad(ink, margin)).astype(np.uint8)


def existing_dataset(folder: str | os.PathLike) -> list[Path]:
    """The files of a dataset already in `folder`: pictures in its digit folders (what
    list_folder_dataset reads) and a contact sheet."""
    folder = Path(folder)
    found = [folder / CONTACT_SHEET] if (folder / CONTACT_SHEET).is_file() else []
    return found + [path for path, _ in folder_pictures(folder)]


def check_output(folder: str | os.PathLike, force: bool = False) -> None:
    """Refuse, before any work, to write over a dataset already in `folder` unless forced."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder} exists and is not a folder; choose another --out")
    old = existing_dataset(folder)
    if old and not force:
        raise OutputExistsError(
            f"{folder} already holds a dataset ({len(old)} file{'s' if len(old) != 1 else ''}, "
            f"like {old[0]}); use --force to replace it, or choose another --out"
        )


def write_sheet_dataset(
    digits: list[SheetDigit],
    folder: str | os.PathLike,
    force: bool = False,
    photo_name: str | None = None,
) -> SheetDataset:
    """Write `folder/<label>/<n>.png` (n from 1, in reading order) for every digit and
    `folder/contact-sheet.png`. With `force`, the pictures of a dataset already there are
    removed first, so none of an earlier sheet's digits stay mixed in; other files stay."""
    folder = Path(folder)
    check_output(folder, force)
    try:
        for old in existing_dataset(folder):
            old.unlink()
        names = file_names(digits)
        for d, name in zip(digits, names, strict=True):
            write_atomic(folder / f"{name}.png", _png(Image.fromarray(d.crop, "L")))
        sheet_path = folder / CONTACT_SHEET
        odd = odd_rows(digits)
        write_atomic(sheet_path, _png(contact_sheet(digits, names, odd, photo_name)))
    except OSError as e:
        raise DataError(f"cannot write {folder}: {e.strerror or e}") from None
    return SheetDataset(
        folder,
        dict(Counter(d.label for d in digits)),
        sheet_path,
        sum(d.doubt is not None for d in digits),
        odd,
    )


def file_names(digits: list[SheetDigit]) -> list[str]:
    """Each digit's file in the dataset, `label/n` (n from 1 for each label, in reading
    order; `.png` left off)."""
    seen: Counter[int] = Counter()
    names = []
    for d in digits:
        seen[d.label] += 1
        names.append(f"{d.label}/{seen[d.label]}")
    return names


def sheet_to_dataset(
    photo: ImageInput,
    rows: str,
    folder: str | os.PathLike,
    predictor: Predictor | None = None,
    force: bool = False,
) -> SheetDataset:
    """read_sheet, then write_sheet_dataset; an existing dataset or bad `rows` is refused
    before the photo is read."""
    parse_rows(rows)
    check_output(folder, force)
    digits = read_sheet(photo, rows, predictor)
    return write_sheet_dataset(digits, folder, force, _photo_name(photo))


def odd_rows(digits: list[SheetDigit]) -> list[int]:
    """Rows holding far fewer or far more digits than the sheet's rows usually do."""
    per_row = Counter(d.row for d in digits)
    if len(per_row) < 2:
        return []
    typical = float(np.median(list(per_row.values())))
    return sorted(r for r, n in per_row.items() if n < FEW * typical or n > MANY * typical)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


TILE = 60  # a digit's square in the contact sheet
CELL = TILE + 12
TEXT = 14  # a line of text under a digit
HEAD = 64  # the column that names each row's label
COLOURS = {"misread": "#d00000", "unsure": "#e08000", "small": "#7030a0"}


def contact_sheet(
    digits: list[SheetDigit],
    names: list[str] | None = None,
    odd: list[int] | None = None,
    photo_name: str | None = None,
) -> Image.Image:
    """One row per sheet row: its label and count, then every digit as it is kept (white
    on black) with its file (`label/n`); a digit to doubt is framed in colour with what the
    model read, and a row with far fewer or more digits than the others has its label red."""
    names = names or file_names(digits)
    odd = odd_rows(digits) if odd is None else odd
    rows: dict[int, list[int]] = {}
    for i, d in enumerate(digits):
        rows.setdefault(d.row, []).append(i)
    widest = max((len(r) for r in rows.values()), default=0)
    header = 2 * TEXT + 12
    row_h = TILE + 2 * TEXT + 10
    width = max(HEAD + widest * CELL + 8, 760)
    image = Image.new("RGB", (width, header + len(rows) * row_h + 4), "white")
    draw = ImageDraw.Draw(image)
    font, small, big = _font(12), _font(11), _font(28)
    title = f"{photo_name or 'sheet'}: {len(digits)} digits in {len(rows)} rows"
    draw.text((8, 4), title, fill="black", font=font)
    legend = [("read as another digit", "misread"), ("model unsure", "unsure")]
    legend.append(("much smaller than its row", "small"))
    x = 8
    for text, key in legend:
        draw.rectangle([x, TEXT + 8, x + 10, TEXT + 18], outline=COLOURS[key], width=2)
        draw.text((x + 14, TEXT + 6), text, fill=COLOURS[key], font=small)
        x += 24 + round(draw.textlength(text, font=small))
    draw.text((x, TEXT + 6), "red row label: far fewer or more digits", fill="#d00000", font=small)
    for k, (row, members) in enumerate(sorted(rows.items())):
        top = header + k * row_h
        colour = "#d00000" if row in odd else "black"
        label = digits[members[0]].label
        draw.text((10, top + 6), str(label), fill=colour, font=big)
        draw.text((10, top + 40), f"row {row + 1}", fill=colour, font=small)
        count = f"{len(members)} digit{'s' if len(members) != 1 else ''}"
        draw.text((10, top + 40 + TEXT), count, fill=colour, font=small)
        for j, i in enumerate(members):
            d = digits[i]
            x0, y0 = HEAD + j * CELL, top + 4
            image.paste(_tile(d.crop), (x0, y0))
            doubt = d.doubt
            if doubt:
                frame = [x0 - 3, y0 - 3, x0 + TILE + 2, y0 + TILE + 2 * TEXT]
                draw.rectangle(frame, outline=COLOURS[doubt], width=2)
            draw.text((x0 + 2, y0 + TILE + 1), names[i], fill="black", font=small)
            if doubt:
                said = _what_the_model_read(d)
                draw.text((x0 + 2, y0 + TILE + TEXT), said, fill=COLOURS[doubt], font=small)
    return image


def _what_the_model_read(d: SheetDigit) -> str:
    if d.doubt == "misread":
        return f"read {d.reading.digit}, {100 * d.reading.confidence:.0f}%"
    if d.doubt == "unsure":
        return "unsure" if d.reading.digit is None else f"unsure ({d.reading.digit}?)"
    return "small"


def _tile(crop: np.ndarray) -> Image.Image:
    """The crop fitted into a TILE square on black, keeping its aspect ratio."""
    h, w = crop.shape
    scale = TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    fitted = Image.fromarray(crop, "L").resize(size, Image.Resampling.LANCZOS)
    tile = Image.new("L", (TILE, TILE), 0)
    tile.paste(fitted, ((TILE - size[0]) // 2, (TILE - size[1]) // 2))
    return tile.convert("RGB")


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)
