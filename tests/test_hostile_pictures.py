"""Pictures a stranger sends to cost us: a huge mostly-empty picture, formats we do not
document, paths that are not files. Each gets a clear BadImageError (or is read within
memory bounded by the picture it is shrunk to), never a hang, a traceback or a wrong answer."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.errors import BadImageError
from digitrec.reading import preprocess
from digitrec.reading.preprocess import (
    WORK_SIDE,
    fitted_size,
    grey_within,
    load_image,
    shrunk_grey,
    to_grey,
    to_mnist,
)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def seven_on(image: Image.Image, colour) -> Image.Image:
    """A 7 drawn on `image` (in place), in its middle third."""
    w, h = image.size
    pen = ImageDraw.Draw(image)
    a, b = min(w, h) // 3, 2 * min(w, h) // 3
    pen.line([(a, a), (b, a), (a + (b - a) // 3, b)], fill=colour, width=max(2, min(w, h) // 60))
    return image


def alike(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two digits in MNIST form, at the best shift of up to a pixel: the
    centre of mass rounds to a whole pixel, either way when it falls half-way."""
    return max(
        float(np.corrcoef(np.roll(a, (dy, dx), axis=(0, 1)).ravel(), b.ravel())[0, 1])
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def whole_then_shrunk(image: Image.Image, max_side: int = WORK_SIDE) -> np.ndarray:
    """What shrunk_grey stands for: the whole picture in floats, then Pillow's box filter."""
    grey = to_grey(image)
    return np.asarray(Image.fromarray(grey).resize(fitted_size(image.size, max_side), 4))


# ---------------------------------------------------------------- a decompression bomb


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """5000x5000 RGBA, all transparent but a 7: about 100 KB, 25 megapixels (just under
    MAX_PIXELS), 95 MB once decoded."""
    data = encoded(
        seven_on(Image.new("RGBA", (5000, 5000), (0, 0, 0, 0)), (20, 20, 60, 255)), "PNG"
    )
    assert len(data) < 200_000
    return data


def test_a_huge_mostly_empty_picture_costs_the_size_it_is_shrunk_to(bomb):
    """The floats of a picture are made at the size it is shrunk to (WORK_SIDE), never at
    its own: the library's own allocations stay a few times that picture's size (it was
    500 times, 790 MB, when the whole picture was turned into floats first)."""
    bounded = WORK_SIDE * WORK_SIDE * 4  # the shrunk picture, float32
    to_mnist(np.pad(np.eye(20), 4))  # first-call set-up is not the picture's
    tracemalloc.start()
    try:
        out = to_mnist(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 4 * bounded, f"{peak / 2**20:.1f} MB"
    small = to_mnist(seven_on(Image.new("RGBA", (500, 500), (0, 0, 0, 0)), (20, 20, 60, 255)))
    assert alike(out, small) > 0.9  # and it is read as such


@pytest.mark.parametrize(
    ("mode", "size"),
    [
        ("L", (1923, 999)),
        ("RGB", (700, 641)),
        ("RGBA", (1000, 1281)),  # transparency, tall
        ("LA", (4032, 480)),
        ("P", (999, 1000)),
        ("I;16", (960, 700)),
        ("1", (2001, 30)),
        ("L", (25_000, 3)),  # wider than a tile: cut across as well as down
    ],
)
def test_shrinking_a_tile_at_a_time_gives_the_numbers_of_the_whole(mode, size):
    rng = np.random.default_rng(7)
    w, h = size
    pixels = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    image = {
        "L": lambda: Image.fromarray(pixels[..., 0]),
        "RGB": lambda: Image.fromarray(pixels[..., :3]),
        "RGBA": lambda: Image.fromarray(pixels),
        "LA": lambda: Image.fromarray(pixels).convert("LA"),
        "P": lambda: Image.fromarray(pixels[..., :3]).convert("P"),
        "I;16": lambda: Image.fromarray(pixels[..., 0].astype(np.uint16) * 257),
        "1": lambda: Image.fromarray(pixels[..., 0]).convert("1"),
    }[mode]()
    ours = shrunk_grey(image, fitted_size(image.size))
    whole = whole_then_shrunk(image)
    assert ours.shape == whole.shape and ours.dtype == np.float32
    # Pillow sums its two passes in either order, by shape; ours is always across first:
    # the same sums but for the last bit of a float32
    np.testing.assert_allclose(ours, whole, rtol=0, atol=1e-6)


def test_a_transparent_picture_keeps_its_backing_when_shrunk():
    """Dark ink on a transparent canvas is read over white, decided from the whole picture
    even when it is read a tile at a time (a thin stroke is no tile's majority)."""
    canvas = seven_on(Image.new("RGBA", (3000, 2000), (255, 255, 255, 0)), (10, 10, 10, 255))
    grey, scale = grey_within(encoded(canvas, "PNG"))
    assert grey.shape == (427, 640) and scale == pytest.approx(427 / 2000)
    assert np.median(grey) > 0.99 and grey.min() < 0.6  # white paper, dark ink


def test_a_large_jpeg_is_decoded_small_and_read_the_same(tmp_path):
    """libjpeg decodes a large JPEG at 1/2, 1/4 or 1/8 scale, no smaller than the shrunk
    picture: a twelfth of the memory for a phone photo, nearly the same numbers."""
    photo = seven_on(Image.new("RGB", (4000, 3000), (235, 230, 215)), (30, 30, 90))
    data = encoded(photo, "JPEG", quality=90)
    grey, scale = grey_within(data)
    assert grey.shape == (480, 640) and scale == pytest.approx(480 / 3000)
    full = whole_then_shrunk(load_image(data))
    assert np.abs(grey - full).mean() < 0.005
    assert alike(to_mnist(data), to_mnist(load_image(data))) > 0.98


def test_a_sideways_phone_photo_is_turned_upright_before_its_scale_is_given():
    upright = seven_on(Image.new("L", (1200, 2000), 230), 20)
    stored = upright.rotate(90, expand=True)  # 2000 x 1200, EXIF says: turn it back
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(stored, "JPEG", exif=exif, quality=95)
    grey, scale = grey_within(data)
    assert grey.shape == (640, 384) and scale == pytest.approx(640 / 2000)
    expected = whole_then_shrunk(upright)
    assert np.corrcoef(grey.ravel(), expected.ravel())[0, 1] > 0.98


def test_large_pictures_read_at_once_share_a_memory_budget(monkeypatch):
    """However many threads read, the decoded full-size pictures held at once stay within
    the budget: the rest wait their turn, and every answer is the one read alone."""
    pictures = [
        encoded(seven_on(Image.new("L", (2000, 2000), 255), 0), "PNG"),
        encoded(seven_on(Image.new("RGBA", (1500, 2500), (0, 0, 0, 0)), (0, 0, 0, 255)), "PNG"),
    ] * 4
    alone = [to_mnist(p) for p in pictures[:2]]
    budget = preprocess._Budget(5_000_000)  # room for one at a time (4 MB, 15 MB: clipped)
    most = [0]
    hold = budget.hold

    def watched(n):
        with hold(n):
            most[0] = max(most[0], budget.held)
            yield

    monkeypatch.setattr(budget, "hold", contextlib.contextmanager(watched))
    monkeypatch.setattr(preprocess, "_decoding", budget)
    answers: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i: answers.update({i: to_mnist(pictures[i])}))
        for i in range(len(pictures))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(answers) == len(pictures) and budget.held == 0
    assert most[0] <= budget.total
    for i, out in answers.items():
        np.testing.assert_array_equal(out, alone[i % 2])


# ---------------------------------------------------------------- formats we do not document


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}), ("ICO", {}), ("PPM", {})],
)
def test_formats_we_do_not_document_are_refused_by_name(tmp_path, fmt, options):
    picture = seven_on(Image.new("RGB", (64, 64), "white"), "black")
    data = encoded(picture, fmt, **options)
    for source, name in ((data, "the uploaded data"), (tmp_path / f"seven.{fmt.lower()}", None)):
        if name is None:
            source.write_bytes(data)
            name = str(source)
        with pytest.raises(BadImageError, match="PNG, JPEG, WebP or BMP") as err:
            to_mnist(source)
        assert name in str(err.value)
        with pytest.raises(BadImageError, match="PNG, JPEG, WebP or BMP"):
            load_image(source)


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("JPEG", {}), ("WEBP", {}), ("BMP", {})])
def test_the_four_formats_we_document_are_read(fmt, options):
    picture = seven_on(Image.new("RGB", (120, 120), "white"), "black")
    reference = to_mnist(picture)
    out = to_mnist(encoded(picture, fmt, **options))
    assert alike(out, reference) > 0.95


# ---------------------------------------------------------------- paths that are not files


def refused_without_waiting(path, fragment: str) -> None:
    """`to_mnist(path)` raises a BadImageError saying `fragment`, and quickly: a named pipe
    opened for reading would wait for a writer, /dev/zero read would never end."""
    outcome: list[BaseException | None] = []

    def attempt():
        try:
            to_mnist(path)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 (the test looks at what it was)
            outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), f"{path} blocked"
    (error,) = outcome
    assert isinstance(error, BadImageError), repr(error)
    assert str(path) in str(error) and fragment in str(error), str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX thing")
def test_a_named_pipe_is_named_not_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    refused_without_waiting(fifo, "not a regular file (a named pipe (FIFO))")


def test_a_folder_is_not_a_picture(tmp_path):
    refused_without_waiting(tmp_path, "not a regular file (a folder)")


def test_a_loop_of_symbolic_links_is_not_called_missing(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    refused_without_waiting(tmp_path / "a.png", "not a regular file (a loop of symbolic links)")


def test_a_symbolic_link_to_nothing_is_missing_and_says_so(tmp_path):
    (tmp_path / "gone.png").symlink_to(tmp_path / "never-was.png")
    refused_without_waiting(tmp_path / "gone.png", "no such file (a symbolic link to nothing)")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_device_is_not_read():
    refused_without_waiting(Path("/dev/zero"), "not a regular file (a device)")


def test_a_symbolic_link_to_a_picture_is_read(tmp_path):
    picture = seven_on(Image.new("L", (100, 100), 255), 0)
    picture.save(tmp_path / "real.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    np.testing.assert_array_equal(to_mnist(tmp_path / "link.png"), to_mnist(picture))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc")
def test_picture_files_are_closed_after_reading_or_refusing_them(tmp_path):
    good, gif = tmp_path / "seven.png", tmp_path / "seven.gif"
    seven_on(Image.new("L", (100, 100), 255), 0).save(good)
    gif.write_bytes(encoded(Image.new("L", (9, 9)), "GIF"))
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        to_mnist(good)
        load_image(good).close()
        with pytest.raises(BadImageError):
            to_mnist(gif)
    assert len(os.listdir("/proc/self/fd")) <= before
