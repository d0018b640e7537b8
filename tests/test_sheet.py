"""digitrec dataset from-sheet: a photographed sheet (one digit per row) becomes a folder
dataset of cut-out digits, labelled by row, with a contact sheet to check by eye."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from digitrec.cli import main
from digitrec.data import list_folder_dataset, load_mnist
from digitrec.evaluate import evaluate_folder
from digitrec.reading.predictor import Predictor
from digitrec.sheet import (
    CONTACT_SHEET,
    contact_sheet,
    read_sheet,
    sheet_to_dataset,
    write_sheet_dataset,
)

ROWS = "0123456789"
PER_ROW = 6
SIDE = 56  # a 28x28 MNIST digit drawn twice as large, as a pen on paper would be


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return load_mnist("test", mnist_dir, download=False, progress=False)


@pytest.fixture(scope="module")
def predictor():
    return Predictor()


def render_sheet(split, rows: str, per_row: list[int], seed: int = 0) -> bytes:
    """A phone photo of a sheet: row k holds per_row[k] MNIST test digits of label rows[k]
    (the first ones of that label in the test set, none used twice), dark ink of uneven
    pressure on paper lit unevenly, with noise, turned 1.5 degrees, saved as JPEG."""
    rng = np.random.default_rng(seed)
    step_x, step_y, margin = SIDE + 14, SIDE + 20, 40
    h, w = 2 * margin + len(rows) * step_y, 2 * margin + max(per_row) * step_x
    ink = np.zeros((h, w), np.float32)
    used: Counter[str] = Counter()
    for r, (label, n) in enumerate(zip(rows, per_row, strict=True)):
        picked = np.flatnonzero(split.labels == int(label))[used[label] : used[label] + n]
        used[label] += n
        for c, i in enumerate(picked):
            digit = Image.fromarray(split.images[i]).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
            y = margin + r * step_y + int(rng.integers(-4, 5))
            x = margin + c * step_x + int(rng.integers(-4, 5))
            pressure = rng.uniform(0.7, 1.0)
            ink[y : y + SIDE, x : x + SIDE] = pressure * np.asarray(digit, np.float32) / 255
    ink = np.asarray(Image.fromarray(ink).rotate(1.5, Image.Resampling.BILINEAR))
    return photo_of(ink, rng)


def photo_of(ink: np.ndarray, rng: np.random.Generator) -> bytes:
    """Ink (white on black, [0, 1]) as dark ink on cream paper in a JPEG photo."""
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 0.93 - 0.12 * xx / w - 0.1 * yy / h  # lit from the top left
    grey = paper * (1 - 0.8 * np.clip(ink, 0, 1)) + rng.normal(0, 0.02, (h, w))
    rgb = np.stack([grey, 0.97 * grey, 0.9 * grey], -1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(255 * rgb, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def sheet_photo(mnist_test, tmp_path_factory):
    path = tmp_path_factory.mktemp("sheet") / "sheet.jpg"
    path.write_bytes(render_sheet(mnist_test, ROWS, [PER_ROW] * len(ROWS)))
    return path


@pytest.fixture(scope="module")
def short_row_photo(mnist_test, tmp_path_factory):
    """Three rows, the middle one with far fewer digits than the others."""
    path = tmp_path_factory.mktemp("short") / "short.jpg"
    path.write_bytes(render_sheet(mnist_test, "345", [6, 2, 6], seed=1))
    return path


@pytest.fixture(scope="module")
def digits(sheet_photo, predictor):
    return read_sheet(sheet_photo, ROWS, predictor)


def test_every_digit_is_cut_out_and_labelled_by_its_row(digits):
    found = Counter(d.label for d in digits)
    # A digit the model reads poorly may be taken for two touching ones and cut in two
    # (segment's search for touching digits); the contact sheet marks such pieces. One
    # such piece per label at most, two in all.
    assert all(abs(found[int(c)] - PER_ROW) <= 1 for c in ROWS), found
    assert abs(len(digits) - PER_ROW * len(ROWS)) <= 2, found
    assert [d.row for d in digits] == sorted(d.row for d in digits)
    assert all(d.label == int(ROWS[d.row]) for d in digits)
    # rows top to bottom, digits left to right, boxes in the photo's pixels
    row_tops = [np.median([d.box[1] for d in digits if d.row == r]) for r in range(len(ROWS))]
    assert row_tops == sorted(row_tops)
    for r in range(len(ROWS)):
        lefts = [d.box[0] for d in digits if d.row == r]
        assert lefts == sorted(lefts)


def test_crops_are_the_ink_as_found_not_mnist_form(digits):
    for d in digits:
        crop = d.crop
        left, top, right, bottom = d.box
        assert crop.dtype == np.uint8
        assert crop.shape[0] > bottom - top and crop.shape[1] > right - left  # a margin
        # white ink on black with a black margin
        edge = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
        assert edge.max() == 0 and crop.max() == 255
    heights = [d.box[3] - d.box[1] for d in digits]
    assert np.median(heights) > 28  # the photo's own size, not 28x28


def test_crops_read_back_as_their_label(digits, predictor):
    readings = predictor.predict_many([d.crop for d in digits])
    right = sum(p.digit == d.label and not p.refused for p, d in zip(readings, digits, strict=True))
    assert right >= 0.9 * len(digits), right


def test_the_library_writes_a_folder_dataset_and_a_contact_sheet(digits, predictor, tmp_path):
    out = tmp_path / "mine"
    result = write_sheet_dataset(digits, out, photo_name="sheet.jpg")
    items = list_folder_dataset(out)
    assert Counter(label for _, label in items) == Counter(d.label for d in digits)
    assert result.counts == dict(Counter(d.label for d in digits))
    for path, label in items:
        assert path.parent.name == str(label) and path.stem.isdigit()
    # what `digitrec evaluate --images` does with the folder: to_mnist, then the model
    assert evaluate_folder(predictor, out, progress=False).accuracy >= 0.9
    with Image.open(result.contact_sheet) as sheet:
        assert sheet.format == "PNG" and sheet.height > 10 * SIDE
    assert result.contact_sheet == out / CONTACT_SHEET
    assert str(out) in result.summary() and "\n" not in result.summary()


def red_pixels(image: Image.Image) -> int:
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 180) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)).sum())


def test_digits_read_as_another_digit_are_marked(digits):
    """A row given the wrong label (its 8s called 3s) reads confidently as another digit:
    those digits are doubted and framed in red on the contact sheet."""
    wrong = [dataclasses.replace(d, label=3) if d.label == 8 else d for d in digits]
    doubted = [d for d in wrong if d.doubt == "misread"]
    assert len(doubted) >= 0.8 * sum(d.label == 8 for d in digits)
    assert red_pixels(contact_sheet(wrong)) > red_pixels(contact_sheet(digits)) + 1000


def test_a_row_with_far_fewer_digits_is_marked(short_row_photo, predictor, tmp_path):
    result = sheet_to_dataset(short_row_photo, "345", tmp_path / "out", predictor)
    assert result.counts == {3: 6, 4: 2, 5: 6}
    assert result.odd_rows == [1] and "row 2 marked" in result.summary()


def test_from_sheet_end_to_end(sheet_photo, predictor, tmp_path):
    out = tmp_path / "dataset"
    result = run_cli("dataset", "from-sheet", sheet_photo, "--rows", ROWS, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and CONTACT_SHEET in lines[0]
    items = list_folder_dataset(out)
    found = Counter(label for _, label in items)
    assert all(abs(found[int(c)] - PER_ROW) <= 1 for c in ROWS), found
    for label, n in found.items():
        assert f"{label}: {n}" in lines[0]
    readings = predictor.predict_many([path for path, _ in items])
    right = sum(p.digit == label for p, (_, label) in zip(readings, items, strict=True))
    assert right >= 0.9 * len(items)
    assert (out / CONTACT_SHEET).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def one_clear_error(capsys, argv, *fragments):
    """Exit status 2 and one `digitrec: error:` line holding every fragment."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error:") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def from_sheet(photo, rows, out, *more):
    return ["dataset", "from-sheet", str(photo), "--rows", rows, "--out", str(out), *more]


def test_rows_that_are_not_digits(capsys, sheet_photo, tmp_path):
    for rows in ("01a3", "", "0,1,2"):
        one_clear_error(capsys, from_sheet(sheet_photo, rows, tmp_path / "o"), "--rows", "0123")
    assert not (tmp_path / "o").exists()


def test_rows_found_differ_from_rows_given(capsys, short_row_photo, tmp_path):
    fewer = from_sheet(short_row_photo, "3456", tmp_path / "o")
    err = one_clear_error(capsys, fewer, "found 3 rows", "4 labels", "photograph the sheet level")
    assert "6, 2, 6" in err  # what it found, so the user sees which rows went wrong
    more = from_sheet(short_row_photo, "34", tmp_path / "o")
    one_clear_error(capsys, more, "found 3 rows", "2 labels", "crop them away")
    assert not (tmp_path / "o").exists()


def test_unreadable_and_blank_photos(capsys, tmp_path):
    not_a_picture = tmp_path / "notes.jpg"
    not_a_picture.write_text("shopping list")
    one_clear_error(capsys, from_sheet(not_a_picture, "01", tmp_path / "o"), "notes.jpg", "read")
    one_clear_error(capsys, from_sheet(tmp_path / "none.jpg", "01", tmp_path / "o"), "no such file")
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(photo_of(np.zeros((600, 450), np.float32), np.random.default_rng(0)))
    one_clear_error(capsys, from_sheet(blank, "01", tmp_path / "o"), "blank.jpg", "blank")
    assert not (tmp_path / "o").exists()


def test_an_existing_dataset_is_kept_unless_forced(capsys, short_row_photo, tmp_path):
    out = tmp_path / "mine"
    (out / "3").mkdir(parents=True)
    old = out / "3" / "99.png"
    Image.new("L", (20, 20), 255).save(old)
    notes = out / "notes.txt"
    notes.write_text("my own file")
    before = old.read_bytes()
    one_clear_error(capsys, from_sheet(short_row_photo, "345", out), str(out), "--force")
    assert old.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        "3",
        "notes.txt",
    ]
    assert main(from_sheet(short_row_photo, "345", out, "--force")) == 0
    assert "wrote 14 digits" in capsys.readouterr().out
    # the earlier dataset's pictures are gone (none mixed in); other files stay
    assert not old.exists() and notes.read_text() == "my own file"
    assert Counter(label for _, label in list_folder_dataset(out)) == {3: 6, 4: 2, 5: 6}
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    one_clear_error(capsys, from_sheet(short_row_photo, "345", a_file), "not a folder")
