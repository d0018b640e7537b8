"""Tests for digitrec.reading.preprocess.to_mnist: pictures people send in, MNIST form out."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage as ndi

from digitrec.data import load_mnist
from digitrec.errors import BadImageError, DigitrecError, EmptyImageError
from digitrec.reading.preprocess import MAX_PIXELS, to_mnist, to_mnist_many

# ---------------------------------------------------------------- drawing helpers

Stroke = list[tuple[float, float]]


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 48) -> Stroke:
    return [
        (cx + rx * math.cos(2 * math.pi * i / n), cy + ry * math.sin(2 * math.pi * i / n))
        for i in range(n + 1)
    ]


# Strokes in a unit box (x right, y down).
SEVEN: list[Stroke] = [[(0.12, 0.06), (0.88, 0.05), (0.62, 0.45), (0.42, 0.96)]]
ZERO: list[Stroke] = [ellipse(0.5, 0.5, 0.34, 0.46)]
ONE: list[Stroke] = [[(0.5, 0.04), (0.5, 0.96)]]
DASH: list[Stroke] = [[(0.05, 0.5), (0.95, 0.5)]]


def draw(
    strokes: list[Stroke] = SEVEN,
    size: int | tuple[int, int] = 280,
    box: tuple[float, float, float, float] = (0.25, 0.12, 0.75, 0.88),
    pen: float = 0.065,
) -> np.ndarray:
    """Ink strength in [0, 1] (1 = full ink) of pen strokes on a blank canvas.

    `box` (x0, y0, x1, y1) places the unit box, as fractions of the canvas; `pen` is the pen
    width as a fraction of the canvas's larger side."""
    w, h = (size, size) if isinstance(size, int) else size
    x0, y0, x1, y1 = box
    width = max(1, round(pen * max(w, h)))
    canvas = Image.new("L", (w, h), 0)
    pen_draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        pts = [(w * (x0 + x * (x1 - x0)), h * (y0 + y * (y1 - y0))) for x, y in stroke]
        pen_draw.line(pts, fill=255, width=width, joint="curve")
        for px, py in (pts[0], pts[-1]):
            r = width / 2
            pen_draw.ellipse([px - r, py - r, px + r, py + r], fill=255)
    canvas = canvas.filter(ImageFilter.GaussianBlur(max(0.5, width / 20)))
    return np.asarray(canvas, dtype=np.float32) / 255.0


def dark_on_light(ink: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8), "L")


def light_on_dark(ink: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(255 * ink).astype(np.uint8), "L")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = a.sum()
    return (
        float(a.sum(axis=1) @ np.arange(a.shape[0]) / total),
        float(a.sum(axis=0) @ np.arange(a.shape[1]) / total),
    )


def ink_box(a: np.ndarray, level: float = 0.1) -> tuple[int, int]:
    """Height and width of the box around the pixels brighter than `level`."""
    rows = np.flatnonzero((a > level).any(axis=1))
    cols = np.flatnonzero((a > level).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def shifted_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Best correlation over shifts of up to one pixel: a digit whose centre of mass falls
    exactly between two pixels may be placed either way."""
    return max(
        correlation(np.roll(a, (dy, dx), axis=(0, 1)), b) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
    )


@pytest.fixture(scope="module")
def seven() -> np.ndarray:
    return draw(SEVEN)


@pytest.fixture(scope="module")
def reference(seven) -> np.ndarray:
    """The plain grey version: dark ink on white paper."""
    return to_mnist(dark_on_light(seven))


# ---------------------------------------------------------------- the output's form


def test_output_shape_dtype_range_and_white_ink_on_black(reference):
    zero = to_mnist(dark_on_light(draw(ZERO)))
    for out in (reference, zero):
        assert out.shape == (28, 28)
        assert out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert out.max() > 0.9  # the strongest ink is near full scale
        # white ink on black: the background is black, the ink a minority of bright pixels
        assert np.median(out) == 0.0
        assert 0.05 < np.mean(out > 0.5) < 0.4
        assert out[:3, :3].max() == out[-3:, -3:].max() == 0.0  # corners
    # the 20x20 box of a centred 0 leaves a black frame all round
    frame = np.concatenate(
        [zero[:3].ravel(), zero[-3:].ravel(), zero[:, :3].ravel(), zero[:, -3:].ravel()]
    )
    assert frame.max() == 0.0
    # the ink is the drawing: a 0 is a ring, dark in its middle; a 7 is heaviest at the top
    assert zero[12:16, 12:16].max() < 0.1
    assert zero[14, 9:12].max() > 0.5 and zero[14, 17:20].max() > 0.5
    assert reference[:12].sum() > reference[16:].sum()


def test_polarity_is_read_from_the_picture(seven, reference):
    white_on_black = to_mnist(light_on_dark(seven))
    assert np.abs(white_on_black - reference).max() < 0.02


def test_colour_ink_on_coloured_paper(seven, reference):
    paper = np.array([235, 222, 170], dtype=np.float32)  # yellowish
    ink_colour = np.array([25, 35, 150], dtype=np.float32)  # blue
    rgb = paper * (1 - seven[..., None]) + ink_colour * seven[..., None]
    out = to_mnist(Image.fromarray(np.round(rgb).astype(np.uint8), "RGB"))
    assert np.abs(out - reference).max() < 0.05


@pytest.mark.parametrize("background_rgb", [(0, 0, 0), (255, 255, 255)])
def test_transparent_canvas_with_dark_strokes(seven, reference, background_rgb):
    rgba = np.zeros(seven.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = background_rgb
    stroke = seven > 0.01
    rgba[stroke, :3] = (20, 20, 60)  # dark blue ink
    rgba[..., 3] = np.round(255 * seven).astype(np.uint8)
    out = to_mnist(Image.fromarray(rgba, "RGBA"))
    assert np.abs(out - reference).max() < 0.05


def test_transparent_canvas_with_light_strokes_on_black_rgb(seven, reference):
    rgba = np.zeros(seven.shape + (4,), dtype=np.uint8)  # transparent, and black under it
    rgba[seven > 0.01, :3] = 250  # white chalk
    rgba[..., 3] = np.round(255 * seven).astype(np.uint8)
    out = to_mnist(Image.fromarray(rgba, "RGBA"))
    assert np.abs(out - reference).max() < 0.05


def test_transparent_png_file_and_la_mode(tmp_path, seven, reference):
    la = np.zeros(seven.shape + (2,), dtype=np.uint8)
    la[..., 1] = np.round(255 * seven).astype(np.uint8)  # black strokes, alpha = ink
    path = tmp_path / "drawn.png"
    Image.fromarray(la, "LA").save(path)
    assert np.abs(to_mnist(path) - reference).max() < 0.05


def test_photo_like_jpeg(seven, reference):
    rng = np.random.default_rng(0)
    h, w = seven.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 0.78 + 0.18 * (1 - xx) * (0.6 + 0.4 * yy)  # uneven light across the page
    paper = np.stack([light * 0.97, light * 0.95, light * 0.86], -1)
    ink_colour = np.array([0.12, 0.14, 0.3])
    rgb = paper * (1 - seven[..., None]) + ink_colour * seven[..., None]
    rgb += rng.normal(0, 0.025, rgb.shape)
    photo = Image.fromarray((255 * np.clip(rgb, 0, 1)).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=80)
    out = to_mnist(buf.getvalue())
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert correlation(out, reference) > 0.9
    assert np.abs(out - reference).mean() < 0.06
    assert out[0].max() == 0.0 and out[:, 0].max() == 0.0


def test_a_marker_on_unevenly_lit_paper_keeps_its_strokes_whole():
    """Ink wider than the window that follows the light must not be taken for paper: a
    marker's 5 whose bar and loop run into one blob a third of the picture wide."""
    from digitrec.reading.preprocess import ink_map
    from digitrec.training.synthetic import draw_strokes

    size = 270
    five = [[(0.85, 0.05), (0.2, 0.05), (0.15, 0.45)], ZERO[0][: len(ZERO[0]) // 2]]
    ink = draw_strokes(five, size, 0.12 * size, (50, 30, 220, 240))
    ink[40:130, 60:150] = 1.0  # the blob
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 0.95 - 0.3 * xx  # darker towards one side
    grey = light * (1 - ink) + 0.15 * ink
    found = ink_map(grey.astype(np.float32))
    solid = ink > 0.99
    assert np.percentile(found[solid], 1) > 0.7  # no hollow in the blob
    paper = found[ink < 0.01]
    assert paper.mean() < 0.03 and np.percentile(paper, 95) < 0.2


def test_a_digit_filling_its_frame_is_not_taken_for_uneven_light():
    """optdigits-style: a binary digit touching every side of a small picture."""
    from digitrec.reading.preprocess import ink_map

    pic = np.zeros((32, 32), np.float32)
    pic[:, 12:22] = 1.0  # a thick stroke from top to bottom edge
    pic[0:6, 4:22] = 1.0  # and a bar along the top edge
    found = ink_map(pic)
    assert found[pic == 1].min() > 0.95 and found[pic == 0].max() == 0.0


# ---------------------------------------------------------------- size, position, aspect

# The digit is fitted into 20x20; a thin pen is then thickened to MNIST's width around its
# middle, which can widen the ink box by a pixel on each side.
PEN_BOX = range(19, 23)


@pytest.mark.parametrize("strokes", [ZERO, SEVEN], ids=["zero", "seven"])
def test_canvas_size_does_not_matter(strokes):
    outs = [to_mnist(dark_on_light(draw(strokes, size=s))) for s in (56, 280, 1000)]
    for out in outs:
        assert ink_box(out)[0] in PEN_BOX
        cy, cx = centre_of_mass(out)
        assert abs(cy - 14.0) <= 0.501 and abs(cx - 14.0) <= 0.501
    for a, b in [(outs[0], outs[1]), (outs[1], outs[2]), (outs[0], outs[2])]:
        assert shifted_correlation(a, b) > 0.9
        assert abs(a.sum() - b.sum()) < 0.4 * b.sum()  # pen widths round to whole pixels
    assert shifted_correlation(outs[1], outs[2]) > 0.97


@pytest.mark.parametrize(
    ("size", "box", "pen"),
    [
        (400, (10 / 400, 10 / 400, 30 / 400, 30 / 400), 3 / 400),  # 20x20 px in a corner
        (300, (0.62, 0.55, 0.9, 0.95), 0.03),  # off centre, bottom right
        (300, (0.02, 0.02, 0.3, 0.4), 0.03),  # off centre, top left
    ],
)
def test_small_or_off_centre_digit_is_fitted_and_centred(size, box, pen):
    ink = draw(SEVEN, size=size, box=box, pen=pen)
    out = to_mnist(dark_on_light(ink))
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14.0) <= 1.0 and abs(cx - 14.0) <= 1.0
    assert max(ink_box(out)) in PEN_BOX
    # the same drawing in the middle of the canvas gives the same digit
    x0, y0, x1, y1 = box
    dx, dy = 0.5 - (x0 + x1) / 2, 0.5 - (y0 + y1) / 2
    centred = draw(SEVEN, size=size, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), pen=pen)
    assert shifted_correlation(out, to_mnist(dark_on_light(centred))) > 0.95


def test_centred_digits_have_mass_at_14(reference):
    for out in (reference, to_mnist(dark_on_light(draw(ZERO)))):
        cy, cx = centre_of_mass(out)  # rounded to whole pixels: off by half a pixel at most
        assert abs(cy - 14.0) <= 0.501 and abs(cx - 14.0) <= 0.501


def test_tall_thin_digit_stays_tall_and_thin():
    out = to_mnist(dark_on_light(draw(ONE, size=300, pen=0.03)))
    h, w = ink_box(out)
    assert h in PEN_BOX
    assert w <= 5


def test_wide_shape_stays_wide():
    ink = draw([ellipse(0.5, 0.5, 0.45, 0.45)], size=300, box=(0.1, 0.35, 0.9, 0.65), pen=0.03)
    out = to_mnist(dark_on_light(ink))
    h, w = ink_box(out)
    assert w in PEN_BOX
    assert 5 <= h <= 12  # an ellipse about 2.7 times wider than tall
    dash = to_mnist(dark_on_light(draw(DASH, size=300, pen=0.05)))
    h, w = ink_box(dash)
    assert w in PEN_BOX and h <= 5


def test_non_square_canvas():
    ink = draw(SEVEN, size=(500, 200), box=(0.4, 0.1, 0.6, 0.9), pen=0.02)
    out = to_mnist(dark_on_light(ink))
    h, w = ink_box(out)
    assert h in PEN_BOX and w < h
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14.0) <= 1.0 and abs(cx - 14.0) <= 1.0


# ---------------------------------------------------------------- the kinds of input


def test_every_kind_of_input_gives_the_same_digit(tmp_path, seven, reference):
    grey = np.asarray(dark_on_light(seven))  # uint8 HxW, dark on light
    path = tmp_path / "seven.png"
    dark_on_light(seven).save(path)
    data = path.read_bytes()

    from_path = to_mnist(str(path))
    np.testing.assert_array_equal(to_mnist(path), from_path)
    np.testing.assert_array_equal(to_mnist(data), from_path)  # bytes and path agree exactly
    np.testing.assert_array_equal(to_mnist(bytearray(data)), from_path)
    np.testing.assert_array_equal(to_mnist(Image.open(path)), from_path)
    np.testing.assert_allclose(from_path, reference, atol=1e-6)

    arrays = {
        "uint8 HxW": grey,
        "uint8 HxWx3": np.repeat(grey[..., None], 3, axis=-1),
        "uint8 HxWx1": grey[..., None],
        "uint8 HxWx4": np.dstack([np.repeat(grey[..., None], 3, axis=-1), np.full_like(grey, 255)]),
        "float32 [0,1]": grey.astype(np.float32) / 255,
        "float64 [0,1]": grey.astype(np.float64) / 255,
        "float [0,255]": grey.astype(np.float64),
        "int64 [0,255]": grey.astype(np.int64),
    }
    for what, array in arrays.items():
        out = to_mnist(array)
        assert out.shape == (28, 28) and out.dtype == np.float32, what
        assert np.abs(out - reference).max() < 0.02, what


def test_bool_array_is_a_picture():
    mask = draw(ONE, size=100, pen=0.1) > 0.5
    out = to_mnist(mask)
    assert ink_box(out)[0] in PEN_BOX
    assert out.max() > 0.9


def test_input_image_is_left_alone(seven):
    image = dark_on_light(seven)
    before = np.asarray(image).copy()
    to_mnist(image)
    assert image.mode == "L" and image.size == (280, 280)
    np.testing.assert_array_equal(np.asarray(image), before)


def test_real_mnist_digits_pass_through_nearly_unchanged(mnist_dir):
    images = load_mnist("test", mnist_dir, download=False, progress=False).images[:100]
    diffs = np.array([np.abs(to_mnist(im) - im / 255.0).mean() for im in images])
    # digits whose pen is outside MNIST's usual range get it normalised; the rest stay
    assert diffs.mean() < 0.025
    assert np.mean(diffs < 0.01) >= 0.5
    for im in images[:5]:
        assert correlation(to_mnist(im), im / 255.0) > 0.9


def test_most_mnist_pen_widths_are_left_alone(mnist_dir, monkeypatch):
    """Only pens outside the usual range are thinned or thickened: MNIST's own digits
    mostly keep theirs (all but its boldest sixth or so)."""
    from digitrec.reading import preprocess as preprocess

    images = load_mnist("train", mnist_dir, download=False, progress=False).images[:400]
    changed = []
    original = preprocess.normalise_stroke
    monkeypatch.setattr(
        preprocess,
        "normalise_stroke",
        lambda fine: changed.append(original(fine) is not fine) or original(fine),
    )
    for im in images:
        preprocess.fit_and_centre(im / 255.0)
    assert len(changed) == 400 and 0.02 <= np.mean(changed) <= 0.25


def _ring(size: int, outer: float, inner: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    return ((r <= outer) & (r >= inner)).astype(np.float32)


def test_a_marker_is_thinned_without_breaking_a_stroke():
    from digitrec.reading.preprocess import _pieces_and_holes, normalise_stroke, stroke_width

    # two heavy blobs joined by a thin stroke: thinned all the way, the stroke would go
    ink = np.zeros((120, 200), np.float32)
    ink[20:100, 10:90] = 1.0
    ink[20:100, 110:190] = 1.0
    ink[56:64, 90:110] = 1.0
    thinned = normalise_stroke(ink)
    assert stroke_width(thinned) < stroke_width(ink)
    assert _pieces_and_holes(thinned > 0.5) == (1, 0)


def test_a_thin_pen_is_thickened_without_filling_a_loop():
    from digitrec.reading.preprocess import _pieces_and_holes, normalise_stroke, stroke_width

    ring = _ring(41, 4, 3)  # a thin, tiny loop: thickened all the way, it would fill in
    thick = normalise_stroke(ring)
    assert stroke_width(thick) > stroke_width(ring)
    assert _pieces_and_holes(thick > 0.5) == (1, 1)


@pytest.mark.parametrize("height", [50, 60, 150])
def test_a_small_digit_drawn_with_a_broad_pen_is_as_tall_as_mnists(height):
    """A 7 drawn 50-60 px high with a canvas's 20 px pen: thinned to MNIST's pen, it must
    still fill MNIST's 20 px box (it came out 18 px high), as the same 7 drawn large does."""
    picture = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(picture)
    path = [(100, 100), (100 + 0.7 * height, 100), (100 + 0.25 * height, 100 + height)]
    draw.line(path, fill=0, width=20, joint="curve")
    for x, y in path:
        draw.ellipse([x - 10, y - 10, x + 10, y + 10], fill=0)
    rows = np.flatnonzero((to_mnist(picture) > 0.2).any(axis=1))
    assert rows[-1] - rows[0] + 1 == 20


def _box_of(x: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero((x > 0.2).any(axis=1)), np.flatnonzero((x > 0.2).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def _stretched_one(side: int = 16) -> np.ndarray:
    """A slanted 1 with an entry flag, cut out and stretched to fill a square box, binary:
    the band runs corner to corner, as wide as the box."""
    picture = Image.new("L", (60, 200), 0)
    draw = ImageDraw.Draw(picture)
    draw.line([(8, 60), (45, 8), (15, 192)], fill=255, width=14)
    cut = picture.crop(picture.getbbox()).resize((side, side), Image.Resampling.BILINEAR)
    return np.where(np.asarray(cut) > 127, 255, 0)


@pytest.mark.parametrize("side", [16, 32])
def test_a_binary_digit_stretched_to_fill_its_box_is_read_at_a_digits_width(side):
    stretched = _stretched_one(side).astype(np.uint8)
    height, width = _box_of(to_mnist(stretched))
    assert height == 20 and width <= 0.7 * height
    for black_ink in (True, False):
        picture = 255 - stretched if black_ink else stretched
        assert _box_of(to_mnist(picture)) == (height, width)


def test_a_square_digit_short_of_an_edge_or_in_grey_keeps_its_shape():
    stretched = _stretched_one().astype(np.uint8)
    with_margin = np.pad(stretched, 2)  # a box it does not fill
    grey = stretched.copy()
    grey[0, 0] = 128  # grey levels: a scan, not a form reader's bits
    for picture in (with_margin, grey):
        height, width = _box_of(to_mnist(picture))
        assert height == 20 and width >= 0.9 * height


def _seven_on(page_size: tuple[int, int], at: tuple[int, int]) -> Image.Image:
    page, pen = _paper(page_size)
    x, y = at
    pen.line([(x, y), (x + 60, y), (x + 20, y + 100)], fill=0, width=10, joint="curve")
    return page


def test_part_of_a_neighbour_cut_by_the_edge_goes():
    """A digit cut from a line of writing with the end of its neighbour along the left
    edge: the neighbour's part goes, and the digit reads as it does alone."""
    alone = _seven_on((160, 140), (60, 20))
    crop = alone.copy()
    ImageDraw.Draw(crop).arc([-60, 40, 16, 100], -45, 45, fill=0, width=10)  # a 3's end
    assert not np.array_equal(np.asarray(crop), np.asarray(alone))
    assert np.abs(to_mnist(crop) - to_mnist(alone)).max() < 1e-6


@pytest.mark.parametrize("gap", [4, 30])
def test_two_whole_digits_cropped_close_are_both_kept(gap):
    """A 1 beside a 7, the picture cut close to both (each meets an edge): neither is taken
    for a neighbour's part, so the picture is not read as the 7 alone."""
    page, pen = _paper((100 + gap, 120))
    pen.line([(5, 10), (5, 110)], fill=0, width=10)  # the 1, along the left edge
    x = 10 + gap
    pen.line([(x, 10), (x + 60, 10), (x + 20, 110)], fill=0, width=10, joint="curve")
    seven = page.crop((x - 5, 0, page.width, page.height))
    assert not np.allclose(to_mnist(page), to_mnist(seven))


def test_a_whole_digit_cropped_close_on_one_side_only_is_kept():
    """A 1 beside a 7, the picture cut close to the 1 alone: the 1 meets the edge with its
    pen's faint rim, where a neighbour's part cut by the edge meets it at full strength."""
    k = 4  # drawn finer and box-reduced: anti-aliased, as a canvas or a scan is
    page, pen = _paper((180 * k, 240 * k))  # tall: the 1 is no line along the edge
    x = 3 * k  # the 1's side meets the edge column, covering about 3/4 of it
    pen.line([(x, 25 * k), (x, 125 * k)], fill=0, width=6 * k)  # a third of the 7's ink
    pen.line([(50 * k, 30 * k), (110 * k, 30 * k), (70 * k, 130 * k)], fill=0, width=10 * k)
    page = page.reduce(k)
    seven = page.crop((40, 0, page.width, page.height))
    assert 30 < np.asarray(page)[:, 0].min() < 225  # the 1 meets the edge with a faint rim
    assert not np.allclose(to_mnist(page), to_mnist(seven))


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(BadImageError, match="no such file") as err:
        to_mnist(path)
    assert "nowhere.png" in str(err.value)
    with pytest.raises(BadImageError, match="nowhere.png"):
        to_mnist(str(path))


def test_directory_is_not_a_picture(tmp_path):
    with pytest.raises(BadImageError, match=r"not a regular file \(a folder\)") as err:
        to_mnist(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_file_that_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not the pixels you are looking for\n" * 20)
    with pytest.raises(BadImageError, match="not a picture we can read") as err:
        to_mnist(path)
    assert "notes.png" in str(err.value)
    with pytest.raises(BadImageError, match="uploaded data.*not a picture"):
        to_mnist(b"GIF? no, just text")
    with pytest.raises(BadImageError):
        to_mnist(b"")


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8), "L")
    data = png_bytes(noisy)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="damaged or cut short") as err:
        to_mnist(path)
    assert "cut.png" in str(err.value)
    assert not isinstance(err.value, EmptyImageError)
    with pytest.raises(BadImageError, match="uploaded data"):
        to_mnist(data[: len(data) // 2])


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("L", (100, 100), 255),  # white page
        Image.new("L", (100, 100), 0),  # black page
        Image.new("RGB", (100, 100), (200, 30, 30)),  # a red page
        Image.new("RGBA", (100, 100), (0, 0, 0, 0)),  # fully transparent
    ],
    ids=["white", "black", "red", "transparent"],
)
def test_blank_picture(picture):
    with pytest.raises(EmptyImageError, match="blank"):
        to_mnist(picture)


def test_low_contrast_picture_is_blank():
    ink = draw(SEVEN, size=100)
    faint = np.round(180 - 15 * ink).astype(np.uint8)  # 15/255 = 0.06 < 0.08
    with pytest.raises(EmptyImageError, match="no ink stands out"):
        to_mnist(faint)
    with pytest.raises(BadImageError):  # EmptyImageError is a BadImageError
        to_mnist(np.full((30, 30), 0.5))
    visible = np.round(180 - 40 * ink).astype(np.uint8)  # 40/255 = 0.16: readable
    assert to_mnist(visible).max() > 0.9


def test_many_pictures_leave_out_the_blank_and_unreadable_saying_why(seven, reference):
    white = Image.new("L", (60, 60), 255)
    read = to_mnist_many([white, dark_on_light(seven), b"not a picture", dark_on_light(seven)])
    assert read.kept == [1, 3]
    assert read.inputs.shape == (2, 28, 28) and read.inputs.dtype == np.float32
    assert np.array_equal(read.inputs[0], reference) and np.array_equal(read.inputs[1], reference)
    blank, unreadable = read.left_out
    assert (blank.index, blank.reason) == (0, "blank") and "blank" in blank.message
    assert (unreadable.index, unreadable.reason) == (2, "unreadable")
    assert "not a picture we can read" in unreadable.message


def test_many_pictures_may_stop_at_an_unreadable_one_but_never_a_blank_one(seven):
    white = Image.new("L", (60, 60), 255)
    read = to_mnist_many([white, dark_on_light(seven)], raise_unreadable=True)
    assert read.kept == [1] and [out.reason for out in read.left_out] == ["blank"]
    with pytest.raises(BadImageError, match="uploaded data") as err:
        to_mnist_many([white, b"not a picture", dark_on_light(seven)], raise_unreadable=True)
    assert not isinstance(err.value, EmptyImageError)


def test_no_pictures_make_no_inputs():
    read = to_mnist_many([])
    assert read.inputs.shape == (0, 28, 28) and read.kept == [] and read.left_out == []


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (8-bit grey) but whose data is a stub:
    decoding it would fail, so only a check made before decoding gives 'too large'."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def test_huge_picture_is_refused_before_decoding(tmp_path):
    assert MAX_PIXELS < 6000 * 6000
    path = tmp_path / "huge.png"
    path.write_bytes(_png_declaring(6000, 6000))
    with pytest.raises(BadImageError, match="6000x6000 is too large") as err:
        to_mnist(path)
    assert "huge.png" in str(err.value)
    with pytest.raises(BadImageError, match="too large"):
        to_mnist(_png_declaring(6000, 6000))
    # a complete, valid 6000x6000 PNG (mode '1' compresses to a few kB) is refused too
    big = Image.new("1", (6000, 6000), 1)
    ImageDraw.Draw(big).line([(3000, 1000), (3000, 5000)], fill=0, width=300)
    with pytest.raises(BadImageError, match="too large"):
        to_mnist(png_bytes(big))
    # just under the limit is fine as far as size goes (a blank page: empty, not too large)
    with pytest.raises(EmptyImageError):
        to_mnist(png_bytes(Image.new("1", (4000, 4000), 1)))


@pytest.mark.parametrize("side", [10_000, 20_000])
def test_decompression_bombs_are_bad_images(side):
    with pytest.raises(BadImageError):
        to_mnist(_png_declaring(side, side))


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros(10, dtype=np.uint8), "shape"),
        (np.zeros((2, 5, 5), dtype=np.uint8), "shape"),
        (np.zeros((5, 5, 2), dtype=np.uint8), "shape"),
        (np.zeros((4, 5, 5, 3), dtype=np.uint8), "shape"),
        (np.zeros((0, 0), dtype=np.uint8), "shape"),
        (np.full((10, 10), np.nan), "NaN"),
        (np.where(np.eye(10) > 0, np.inf, 0.0), "infinite"),
        (np.full((10, 10), "a"), "type"),
        (np.empty((10, 10), dtype=object), "type"),
    ],
    ids=["1d", "channels-first", "2-channels", "4d", "empty", "nan", "inf", "str", "object"],
)
def test_bad_arrays(array, fragment):
    with pytest.raises(BadImageError, match=fragment):
        to_mnist(array)


def test_errors_are_project_errors(tmp_path):
    with pytest.raises(DigitrecError):
        to_mnist(tmp_path / "missing.png")
    assert issubclass(EmptyImageError, BadImageError)
    assert issubclass(BadImageError, DigitrecError)


def test_path_object_of_the_working_directory_kind(tmp_path, monkeypatch, seven, reference):
    monkeypatch.chdir(tmp_path)
    dark_on_light(seven).save("relative.png")
    np.testing.assert_allclose(to_mnist("relative.png"), reference, atol=1e-6)
    np.testing.assert_allclose(to_mnist(Path("relative.png")), reference, atol=1e-6)


def test_pictures_beyond_pillows_own_limit_are_called_too_large():
    with pytest.raises(BadImageError, match="too large"):
        to_mnist(_png_declaring(20_000, 20_000))


def test_sixteen_bit_grey_pictures_are_scaled_not_clipped(seven, reference):
    deep = np.round(65535 * (1 - seven)).astype(np.uint16)
    image = Image.fromarray(deep)
    assert image.mode.startswith("I;16")
    assert correlation(to_mnist(Image.open(io.BytesIO(png_bytes(image)))), reference) > 0.98
    assert correlation(to_mnist(deep), reference) > 0.98


def test_phone_photos_are_turned_upright_by_their_exif_orientation(reference, seven):
    # stored rotated a quarter turn, with EXIF orientation 6 ("rotate 90 clockwise to view")
    stored = dark_on_light(seven).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif, quality=95)
    assert correlation(to_mnist(buf.getvalue()), reference) > 0.95


# ---------------------------------------------------------------- digits as people crop them


@pytest.fixture(scope="module")
def predictor():
    from digitrec import Predictor

    return Predictor()


def _reads(predictor, picture) -> int | None:
    """The bundled model's answer, or None when it refuses."""
    p = predictor.predict(picture)
    return None if p.refused else p.digit


def _paper(size: tuple[int, int], fill: int = 255) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    page = Image.new("L", size, fill)
    return page, ImageDraw.Draw(page)


def test_a_seven_whose_stroke_runs_from_corner_to_corner_is_kept(predictor):
    """Cropped close, a thin 7 touches all four edges, and a speck of dust made it a second
    piece: the 7 was taken for a frame round the picture and the speck blown up instead.
    (Black and white and about square, it is also read narrowed, as a digit stretched to
    fill its box is.)"""
    page, pen = _paper((200, 200))
    pen.line([(0, 3), (199, 3), (0, 199)], fill=0, width=6, joint="curve")
    pen.ellipse([170, 170, 176, 176], fill=0)  # the speck
    out = to_mnist(page)
    assert np.mean(out > 0.5) < 0.3  # a pen's stroke, not a solid square
    rows = (out > 0.5).sum(axis=1)
    width = np.count_nonzero((out > 0.5).any(axis=0))
    assert width >= 10 and rows.max() >= width - 1 and np.argmax(rows) < 14  # a bar on top
    assert _reads(predictor, page) == 7


@pytest.mark.parametrize("width", [6, 14])
def test_a_seven_in_two_strokes_keeps_its_corner_to_corner_stroke_and_its_bar(predictor, width):
    """The bar along the top edge and the stroke from corner to corner are two pieces; each
    touches edges, and neither is a ruled line or a frame: the rest of the 7 spans them."""
    page, pen = _paper((200, 200))
    pen.line([(0, width // 2), (170, width // 2)], fill=0, width=width)
    pen.line([(199, 0), (0, 199)], fill=0, width=width)
    assert _reads(predictor, page) == 7


def _overflowing_zero(size=(160, 220), pen=40, over=20, ink=0, paper=255) -> Image.Image:
    """A 0 drawn bigger than its picture: its thick ring covers most of every edge."""
    w, h = size
    page, draw = _paper(size, paper)
    draw.ellipse([-over, -over, w - 1 + over, h - 1 + over], outline=ink, width=pen)
    return page


@pytest.mark.parametrize(
    ("pen", "over", "dark_ink"),
    [(40, 20, True), (40, 20, False), (60, 20, True), (50, 30, True), (25, 15, False)],
)
def test_a_zero_filling_its_picture_is_a_ring_not_a_blob(predictor, pen, over, dark_ink):
    """Most of the border is ink, so the border alone says the ink is the paper and the
    inside of the 0 is read as a filled blob."""
    ink, paper = (0, 255) if dark_ink else (255, 0)
    page = _overflowing_zero(pen=pen, over=over, ink=ink, paper=paper)
    border = np.concatenate(
        [np.asarray(page)[[0, -1]].ravel(), np.asarray(page)[:, [0, -1]].ravel()]
    )
    assert np.mean(border == ink) > 0.5  # the case: ink is the border's main level
    out = to_mnist(page)
    assert out[12:16, 12:16].max() < 0.1  # the loop's inside is paper
    reading = predictor.predict(page)
    if over > pen / 2:
        # cut so close its ring is nearly a box: a 0, or (a model that learned what boxes
        # and frames are) no digit, but never another digit
        assert reading.digit == 0 or reading.reason == "not_a_digit", reading
    else:
        assert _reads(predictor, page) == 0


def _tilted_frame(pen: ImageDraw.ImageDraw, degrees: float, side: int = 300) -> None:
    """A box drawn round the page just inside its edges, the page scanned a little askew:
    its lines run along the picture's edges, in and out of them."""
    c, turn = (side - 1) / 2, math.radians(degrees)
    corners = [(3, 3), (side - 4, 3), (side - 4, side - 4), (3, side - 4)]
    tilted = [
        (c + (x - c) * math.cos(turn) - (y - c) * math.sin(turn),
         c + (x - c) * math.sin(turn) + (y - c) * math.cos(turn))
        for x, y in corners
    ]  # fmt: skip
    pen.line([*tilted, tilted[0]], fill=30, width=3, joint="curve")


def _digit_on_a_scan(extra) -> tuple[Image.Image, Image.Image]:
    """A 3 in the middle of a scanned page, without and with `extra` drawn on the page."""
    ink = draw([[(0.1, 0.1), (0.9, 0.15), (0.4, 0.5), (0.9, 0.75), (0.1, 0.95)]], 300)
    plain = dark_on_light(ink)
    marked = plain.copy()
    extra(ImageDraw.Draw(marked))
    return plain, marked


@pytest.mark.parametrize(
    "extra",
    [
        lambda d: d.line([(0, 2), (299, 2)], fill=40, width=4),  # a ruled line at the top
        lambda d: d.line([(0, 296), (299, 296)], fill=40, width=3),  # ... at the bottom
        lambda d: _tilted_frame(d, 1.5),  # a frame round it all, one piece
        lambda d: _tilted_frame(d, 2.5),  # ... cut by the picture's edges into four lines
        lambda d: d.rectangle([0, 0, 8, 299], fill=60),  # the dark edge of the paper
        # a form's box cropped at its lines: the whole border is ink, the paper inside
        lambda d: d.rectangle([0, 0, 299, 299], outline=30, width=3),
        lambda d: d.rectangle([0, 0, 299, 299], outline=30, width=12),
        # a box drawn round the digit, apart from it, with paper round the box
        lambda d: d.rectangle([12, 12, 287, 287], outline=30, width=3),
    ],
    ids=[
        "ruled-top",
        "ruled-bottom",
        "frame",
        "frame-in-pieces",
        "paper-edge",
        "frame-on-the-edges",
        "thick-frame-on-the-edges",
        "box-round-the-digit",
    ],
)
def test_lines_along_the_edges_of_a_scan_still_go(predictor, extra):
    plain, marked = _digit_on_a_scan(extra)
    assert shifted_correlation(to_mnist(marked), to_mnist(plain)) > 0.98
    assert _reads(predictor, marked) == _reads(predictor, plain) == 3


@pytest.mark.parametrize(
    "lines, cropped",
    [
        ((52, 258, 70, 230, 3), False),
        ((52, 258, 70, 230, 3), True),
        ((62, 248, 70, 230, 2), False),  # (cropped at its lines, an eighth of this 3 is gone)
        ((40, 250, 60, 240, 4), False),
        ((40, 250, 60, 240, 4), True),
        ((52, 258, 70, 230, 3, 3), False),
        ((50, 262, 66, 234, 2, -5), False),
        ((22, 278, 40, 260, 3, 5), False),
    ],
    ids=[
        "touching",
        "touching-cropped",
        "crossing",
        "crossing-below",
        "crossing-below-cropped",
        "touching-tilted",
        "touching-tilted-the-other-way",
        "apart-tilted",
    ],
)
def test_a_digit_that_touches_or_crosses_its_box_reads(predictor, lines, cropped):
    """A form's cell round a digit whose strokes touch or cross its lines: one piece with
    the digit. Its four lines go (a square 0 is all lines, and stays), and the digit reads
    as it does without them, alone (predict) and as a number (read_number); before, predict
    refused it as no digit and read_number read the box's sides as 1s. So too for a box
    turned by a few degrees, as a photo turns it, whether the digit touches it or not."""
    top, bottom, left, right, width, *turn = lines
    plain, marked = _digit_on_a_scan(lambda d: _box(d, (left, top, right, bottom), width, *turn))
    if cropped:
        marked = marked.crop((left, top, right + 1, bottom + 1))
    pieces = ndi.label(np.asarray(marked) < 128, structure=np.ones((3, 3)))[1]
    assert pieces == (2 if top < 30 else 1)  # the digit and its box are one piece, or apart
    # (a stroke along a line goes with it, and cropping at the lines cuts what crosses them)
    assert shifted_correlation(to_mnist(marked), to_mnist(plain)) > 0.8
    assert _reads(predictor, marked) == _reads(predictor, plain) == 3
    assert predictor.read_number(marked).text == "3"


def _box(pen: ImageDraw.ImageDraw, box: tuple, width: int, degrees: float = 0.0) -> None:
    """A box drawn with the pen, turned by `degrees` about its middle."""
    left, top, right, bottom = box
    cx, cy, turn = (left + right) / 2, (top + bottom) / 2, math.radians(degrees)
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    turned = [
        (cx + (x - cx) * math.cos(turn) - (y - cy) * math.sin(turn),
         cy + (x - cx) * math.sin(turn) + (y - cy) * math.cos(turn))
        for x, y in corners
    ]  # fmt: skip
    pen.line([*turned, turned[0]], fill=30, width=width, joint="curve")


def test_every_generated_non_digit_goes_into_mnist_form():
    """Training's non-digit bank puts thousands of scribbles and shapes through to_mnist.
    Among the first 4,200 of seed 0 is a hand-drawn square, a little askew, whose lines a
    first version of the turned-box search took out whole, leaving no ink and raising from
    inside cleaning (`digitrec train --dry-run` failed); a box that is all its lines stays."""
    from digitrec.training.synthetic import TRAIN_FONTS, non_digit

    rng = np.random.default_rng(0)
    for _ in range(4200):
        try:
            out = to_mnist(non_digit(rng, TRAIN_FONTS))
        except EmptyImageError:
            continue  # (the bank skips the few too faint to see, as it should)
        assert out.max() > 0.5


def test_a_square_0_is_no_box(predictor):
    """A 0 drawn as a square has four straight sides, as a box has; nothing stands inside
    it, so it is no box round a digit, and reads as a 0 (or is refused), never as nothing."""
    page, pen = _paper((300, 300))
    pen.rectangle([90, 50, 210, 250], outline=20, width=18)
    reading = predictor.predict(page)
    assert reading.digit == 0 or reading.reason == "not_a_digit", reading
    assert to_mnist(page)[4:24, 4:24].max() > 0.9  # the square, not nothing


# ---------------------------------------------------------------- the fast paths are the plain sums


def test_the_3x3_median_and_its_extremes_are_scipys():
    """median3 sorts columns once and works rows end to end; median3_range skips the
    filter where a stroke or open paper settles an extreme. Both must be SciPy's median
    filter exactly, ties, edges and tiny pictures included."""
    from scipy import ndimage as ndi

    from digitrec.reading.preprocess import median3, median3_range

    rng = np.random.default_rng(5)
    for i in range(600):
        h, w = rng.integers(1, 20, 2)
        if i % 3 == 0:
            a = rng.integers(0, rng.integers(2, 5), (h, w)).astype(np.uint8)  # many ties
        elif i % 3 == 1:
            a = rng.random((h, w), dtype=np.float32)
        else:
            a = (rng.random((h, w)) < 0.7).astype(np.float32) * 0.9  # strokes and paper
        expected = ndi.median_filter(a, size=3)
        np.testing.assert_array_equal(median3(a), expected)
        assert median3_range(a) == (expected.min(), expected.max())
    big = rng.integers(0, 256, (300, 700)).astype(np.uint8)  # several bands
    expected = ndi.median_filter(big, size=3)
    assert median3_range(big) == (expected.min(), expected.max())


def test_the_pen_width_is_the_mean_distance_scipy_measures():
    from scipy import ndimage as ndi

    from digitrec.reading.preprocess import stroke_width

    rng = np.random.default_rng(6)
    for _ in range(300):
        h, w = rng.integers(2, 60, 2)
        ink = ndi.gaussian_filter(rng.random((h, w)), rng.uniform(0.5, 4)).astype(np.float32)
        ink = (ink - ink.min()) / (np.ptp(ink) + 1e-6)  # blobs and strokes, some at the edges
        mask = ink > 0.5
        assert stroke_width(ink) == float(ndi.distance_transform_edt(mask)[mask].mean())


def test_8_bit_levels_give_the_ink_of_their_grey():
    """ink_map reads uint8 levels through tables of 256 entries (and only the box of
    the ink): the same map as the grey levels / 255 give, for paper even or uneven, and a
    digit filling its frame."""
    from digitrec.reading.preprocess import ink_map

    even = np.asarray(dark_on_light(draw(SEVEN, 200)))
    yy, xx = np.mgrid[0:200, 0:200]
    uneven = np.clip(even * (0.6 + 0.4 * xx / 200) + 20 * (yy > 100), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:60, 0:50]
    ring = np.hypot((xx - 24.5) / 24, (yy - 29.5) / 29)
    framed = np.where((ring > 0.55) & (ring < 1.2), 20, 230).astype(np.uint8)  # a thick 0
    for levels in (even, 255 - even, uneven, framed):
        np.testing.assert_array_equal(ink_map(levels), ink_map(levels.astype(np.float32) / 255.0))


def test_pieces_labelled_in_the_box_of_the_ink_are_the_whole_pictures():
    from scipy import ndimage as ndi

    from digitrec.reading.preprocess import STROKE_LEVEL, ink_components

    rng = np.random.default_rng(7)
    ink = np.zeros((300, 200), np.float32)
    ink[40:260, 30:170] = ndi.gaussian_filter(rng.random((220, 140)), 2) > 0.5
    labels, pieces = ink_components(ink)
    expected, n = ndi.label(ink > STROKE_LEVEL, structure=np.ones((3, 3)))
    np.testing.assert_array_equal(labels, expected)
    assert len(pieces) == n > 1
    for p, box in zip(pieces, ndi.find_objects(expected), strict=True):
        assert p["box"] == (box[0].start, box[1].start, box[0].stop, box[1].stop)
        assert p["mass"] == pytest.approx(float(ink[expected == p["label"]].sum()))
