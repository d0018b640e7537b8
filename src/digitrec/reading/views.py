"""Other views of digits already in MNIST form: turned a little, zoomed, squashed, widened,
thinner and thicker. A model unsure of a digit reads it again in each view and averages
what it reads (a second look: calibrate.second_look), as a person tilts a page to read a
word. Numpy and SciPy only."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

# the views besides the picture as it is, by name: (degrees turned, horizontal scale,
# vertical scale) about the centre, or a 2x2 grey erosion ("thin") or dilation ("thick")
VIEWS: dict[str, tuple[float, float, float] | str] = {
    "r+8": (8.0, 1.0, 1.0),
    "r-8": (-8.0, 1.0, 1.0),
    "sq0.8": (0.0, 0.8, 1.0),
    "wide1.2": (0.0, 1.2, 1.0),
    "z0.9": (0.0, 0.9, 0.9),
    "z1.1": (0.0, 1.1, 1.1),
    "thin": "erode",
    "thick": "dilate",
}


def view(x: np.ndarray, name: str) -> np.ndarray:
    """One view (VIEWS[name]) of pictures (N, 28, 28), float32."""
    x = np.asarray(x, np.float32)
    how = VIEWS[name]
    if how == "erode":
        return ndi.grey_erosion(x, size=(1, 2, 2))
    if how == "dilate":
        return ndi.grey_dilation(x, size=(1, 2, 2))
    degrees, sx, sy = how
    a = np.deg2rad(degrees)
    # output pixel (row, col) samples the input at m @ (row, col) about the centre
    m = np.array([[np.cos(a) / sy, -np.sin(a) / sx], [np.sin(a) / sy, np.cos(a) / sx]])
    centre = (np.array(x.shape[1:]) - 1) / 2
    full = np.eye(3)
    full[1:, 1:] = m
    offset = np.concatenate([[0.0], centre - m @ centre])
    return ndi.affine_transform(x, full, offset=offset, order=1)


def views(x: np.ndarray, names: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
    """Each view of pictures (N, 28, 28), the named ones or all: (views, N, 28, 28)."""
    names = list(VIEWS) if names is None else names
    return np.stack([view(x, name) for name in names])
