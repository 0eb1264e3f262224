"""Pure image metrics on small grey (luma) pictures; no state, no I/O."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GreyImage = npt.NDArray[np.uint8]

# Analysis works on a picture about this wide: enough detail for every metric we use,
# and small enough that one analysis costs well under a millisecond on a Pi.
ANALYSIS_WIDTH = 320


def subsample(luma: GreyImage, width: int = ANALYSIS_WIDTH) -> GreyImage:
    """Every n-th pixel of every n-th row, so the picture is about `width` wide.

    Plain subsampling, not averaging: it keeps each pixel's own sensor noise, which is
    what tells a live static scene from a frozen one.
    """
    step = max(1, luma.shape[1] // width)
    return np.ascontiguousarray(luma[::step, ::step])


def frame_change(previous: GreyImage, current: GreyImage) -> float:
    """Mean absolute difference in grey levels (0-255) between two pictures of one size."""
    if previous.shape != current.shape:
        return 255.0
    diff = np.abs(previous.astype(np.int16) - current.astype(np.int16))
    return float(diff.mean())


def brightness(picture: GreyImage) -> float:
    """Mean grey level, 0-255."""
    return float(picture.mean())
