"""Learning curves as a PNG, drawn with Pillow: a chart for every epoch of a run costs a few
milliseconds, where matplotlib's import alone costs a fast run a twentieth of its time."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PANEL = (480, 340)  # width, height of each chart
PAD = (62, 34, 16, 44)  # left, top, right, bottom: room for the labels
COLOURS = {"train": (31, 119, 180), "validation": (255, 127, 14)}


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.01
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _panel(draw: ImageDraw.ImageDraw, left: int, title: str, ylabel: str, x, series) -> None:
    w, h = PANEL
    x0, y0, x1, y1 = left + PAD[0], PAD[1], left + w - PAD[2], h - PAD[3]
    values = [v for ys in series.values() for v in ys]
    lo, hi = min(values), max(values)
    span = (hi - lo) or (abs(hi) or 1.0) * 0.01
    lo, hi = max(0.0, lo - 0.05 * span) if lo >= 0 else lo - 0.05 * span, hi + 0.05 * span
    first, last = x[0], max(x[-1], x[0] + 1)

    def at(xv: float, yv: float) -> tuple[float, float]:
        return (
            x0 + (xv - first) / (last - first) * (x1 - x0),
            y1 - (yv - lo) / (hi - lo) * (y1 - y0),
        )

    font, small = _font(14), _font(11)
    for t in _ticks(lo, hi):
        _, ty = at(first, t)
        draw.line([x0, ty, x1, ty], fill=(230, 230, 230))
        draw.text((x0 - 6, ty), f"{t:.3g}", fill="black", font=small, anchor="rm")
    for t in sorted({round(v) for v in _ticks(first, last)}):
        tx, _ = at(t, lo)
        draw.text((tx, y1 + 6), str(t), fill="black", font=small, anchor="mt")
    draw.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
    draw.text((x0, 8), f"{title} ({ylabel})", fill="black", font=font)
    draw.text(((x0 + x1) / 2, y1 + 24), "epoch", fill="black", font=small, anchor="mt")
    for k, (name, ys) in enumerate(series.items()):
        points = [at(a, b) for a, b in zip(x, ys, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=COLOURS[name], width=2)
        for px, py in points:
            draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=COLOURS[name])
        lx, ly = x1 - 190 + 95 * k, 16  # beside the title, clear of the data
        draw.line([lx, ly, lx + 18, ly], fill=COLOURS[name], width=2)
        draw.text((lx + 24, ly), name, fill="black", font=small, anchor="lm")


def curves_png(rows: list[dict], path: str | Path) -> None:
    """Loss and accuracy by epoch, training beside validation, from a run's log rows."""
    x = [r["epoch"] for r in rows]
    image = Image.new("RGB", (2 * PANEL[0], PANEL[1]), "white")
    draw = ImageDraw.Draw(image)
    _panel(
        draw,
        0,
        "Loss",
        "cross-entropy",
        x,
        {"train": [r["train_loss"] for r in rows], "validation": [r["val_loss"] for r in rows]},
    )
    _panel(
        draw,
        PANEL[0],
        "Accuracy",
        "%",
        x,
        {
            "train": [100 * r["train_accuracy"] for r in rows],
            "validation": [100 * r["val_accuracy"] for r in rows],
        },
    )
    image.save(path)
