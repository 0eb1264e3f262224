"""Pure picture metrics on one small analysed picture; no state, no I/O.

Every function here takes the planes of one decoded keyframe, reduced once by
`prepare`: a grey picture about ANALYSIS_WIDTH wide (area-averaged, so sensor noise
is mostly averaged away and the scene's structure remains), the same luma merely
subsampled (every n-th pixel keeps its own noise, which is what tells a live static
scene from a frozen one), and the chroma statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

GreyImage = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

# Analysis works on a picture about this wide: enough detail for every metric, small
# enough that one analysis costs about a millisecond on a Pi.
ANALYSIS_WIDTH = 320
# Scene similarity compares structure at this width: coarse enough that people,
# cars and sensor noise matter little, fine enough that a turned camera shows.
STRUCTURE_WIDTH = 80
# Correlation peaks checked when aligning a view with its reference.
ALIGNMENT_CANDIDATES = 5
# Neutral chroma (Cb, Cr) in 8-bit video, limited and full range alike.
NEUTRAL_CHROMA = 128.0
# The colour of a picture is kept as the mean chroma of a coarse grid of blocks: enough to
# tell a tint of the whole picture from a red bus, too coarse to show anything of the scene.
CHROMA_GRID = (9, 16)  # rows, columns
# A grey level at or above this is clipped white: limited-range video tops out at 235,
# full-range at 255, and a sensor's white is never quite flat.
CLIPPED_LEVEL = 230.0
# Edge width is measured where the local tonal step is at least this share of the
# picture's range, and at least EDGE_STEP_FLOOR grey levels: a real edge, not texture or
# noise, in a dim or flat scene as in a bright one.
EDGE_STEP_SHARE = 0.2
EDGE_STEP_FLOOR = 12.0
# A frame difference needs this share of the picture unclipped in both pictures: where
# a picture is clipped white nothing can change.
UNCLIPPED_MIN = 0.1


@dataclass(frozen=True)
class Planes:
    """The decoded planes of one picture: luma, and chroma where the format has it."""

    luma: GreyImage
    u: GreyImage | None = None
    v: GreyImage | None = None


@dataclass(frozen=True)
class Prepared:
    """One picture reduced for analysis (see the module docstring)."""

    grey: FloatImage  # area-averaged, ~ANALYSIS_WIDTH wide, grey levels 0-255
    raw: GreyImage  # subsampled luma, noise kept
    chroma: tuple[float, float, float, float] | None  # mean U, mean V, std U, std V
    # Mean (U, V) minus neutral per block of CHROMA_GRID, shape (rows, cols, 2)
    chroma_blocks: FloatImage | None = None


def _subsample(plane: GreyImage, width: int) -> GreyImage:
    step = max(1, plane.shape[1] // width)
    return np.ascontiguousarray(plane[::step, ::step])


def prepare(planes: Planes) -> Prepared:
    luma = planes.luma
    height, width = luma.shape
    scale = min(1.0, ANALYSIS_WIDTH / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = cv2.resize(luma, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    chroma = blocks = None
    if planes.u is not None and planes.v is not None:
        u = _subsample(planes.u, ANALYSIS_WIDTH // 2).astype(np.float32)
        v = _subsample(planes.v, ANALYSIS_WIDTH // 2).astype(np.float32)
        chroma = (float(u.mean()), float(v.mean()), float(u.std()), float(v.std()))
        rows, cols = CHROMA_GRID
        blocks = np.asarray(
            np.dstack([cv2.resize(c, (cols, rows), interpolation=cv2.INTER_AREA) for c in (u, v)])
            - NEUTRAL_CHROMA,
            np.float32,
        )
    return Prepared(grey, _subsample(luma, ANALYSIS_WIDTH), chroma, blocks)


def brightness(p: Prepared) -> float:
    """Mean grey level, 0-255."""
    return float(p.grey.mean())


def percentiles(p: Prepared) -> tuple[float, float]:
    """The 2nd and 98th percentile grey levels: the picture's range without outliers."""
    low, high = np.percentile(p.grey, (2, 98))
    return float(low), float(high)


def contrast(p: Prepared) -> float:
    """Robust tonal range: 98th minus 2nd percentile grey level, 0-255."""
    low, high = percentiles(p)
    return high - low


def clipped(p: Prepared) -> float:
    """Share of the picture (0-1) clipped white: what overexposure destroys for good."""
    return float((p.grey >= CLIPPED_LEVEL).mean())


def relative_contrast(p: Prepared) -> float:
    """Tonal range relative to brightness, 0-1: (p98 - p2) / (p98 + p2).

    Fog and a dirty dome lift the darks towards the lights, so this falls; a dim night
    scene has a small range in grey levels but dark darks, so it stays high.
    """
    low, high = percentiles(p)
    return (high - low) / max(high + low, 1.0)


def edge_width(p: Prepared, tonal_range: float | None = None) -> float | None:
    """Median width (analysis pixels) of the picture's real edges; None without any.

    At each pixel the local tonal step (max minus min over 7x7) is divided by the steepest
    gradient there: a sharp edge climbs its step within about a pixel, a defocused one over
    many. The ratio does not depend on how much the scene shows (busy or empty) or on its
    contrast, only on how the edges are drawn; only the steepest part of each edge, where
    the step is large, counts, so noise and texture do not.
    """
    kernel = np.ones((7, 7), np.uint8)
    step = np.asarray(cv2.dilate(p.grey, kernel) - cv2.erode(p.grey, kernel), np.float32)
    gx = cv2.Sobel(p.grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(p.grey, cv2.CV_32F, 0, 1, ksize=3)
    slope = np.asarray(cv2.magnitude(gx, gy) / 8.0, np.float32)  # levels a pixel; Sobel weighs 8
    # The steepest point across each edge: its slope is the 3x3 neighbourhood's maximum.
    if tonal_range is None:
        low, high = percentiles(p)
        tonal_range = high - low
    step_min = max(EDGE_STEP_FLOOR, EDGE_STEP_SHARE * tonal_range)
    steepest = (slope >= cv2.dilate(slope, np.ones((3, 3), np.uint8))) & (step >= step_min)
    if int(steepest.sum()) < EDGE_POINTS_MIN:
        return None
    widths = step[steepest] / np.maximum(slope[steepest], 1e-3)
    return float(np.median(widths))


# Fewer edge points than this and the picture has no edges to judge focus by.
EDGE_POINTS_MIN = 50


def colour_shift(p: Prepared, reference: FloatImage | None) -> float | None:
    """How far the picture's colour moved from the reference view's, in chroma levels.

    The median over blocks of each block's chroma change: a tint (a stuck IR-cut filter,
    a failed white balance) moves every block the same way; a red bus or a green hedge
    in the wind moves a few. None without colour in either.
    """
    if p.chroma_blocks is None or reference is None or reference.shape != p.chroma_blocks.shape:
        return None
    change = (p.chroma_blocks - reference).reshape(-1, 2)
    return float(math.hypot(*np.median(change, axis=0)))


def tint(p: Prepared) -> float:
    """How much the whole picture leans to one colour, in chroma levels, without a reference.

    The mean colour's direction, and how far along it the least tinted tenth of the
    blocks still lies: a colourful scene has blocks of every colour, some grey, so this is
    near 0 even when its mean colour is strong; a tinted picture has none left.
    """
    if p.chroma_blocks is None:
        return 0.0
    blocks = p.chroma_blocks.reshape(-1, 2)
    mean = blocks.mean(axis=0)
    norm = float(np.hypot(*mean))
    if norm < 1e-6:
        return 0.0
    along = blocks @ (mean / norm)
    return max(0.0, float(np.percentile(along, 10)))


def sharpness(p: Prepared) -> float:
    """Mean absolute Laplacian of the analysis picture: fine detail, lost when blurred."""
    laplacian = cv2.Laplacian(p.grey, cv2.CV_32F, ksize=1)
    return float(np.abs(laplacian).mean())


def detail(p: Prepared) -> float:
    """Fraction of the picture (0-1) with visible local structure (edges, texture).

    A covered lens or a black frame has almost none; a dark but lit night scene keeps
    some around its lights and windows.
    """
    gx = cv2.Sobel(p.grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(p.grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.magnitude(gx, gy)
    return float((magnitude > DETAIL_EDGE).mean())


# A gradient (Sobel, grey levels) above this is an edge a person would notice.
DETAIL_EDGE = 24.0


def noise(p: Prepared) -> float:
    """Sensor noise, as the standard deviation in grey levels (Immerkær's estimator).

    The 3x3 kernel cancels smooth shading and straight edges and leaves pixel noise;
    strong edges are masked out so texture does not count as noise.
    """
    raw = p.raw.astype(np.float32)
    if raw.shape[0] < 3 or raw.shape[1] < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(raw, cv2.CV_32F, kernel)[1:-1, 1:-1])
    gx = cv2.Sobel(raw, cv2.CV_32F, 1, 0, ksize=3)[1:-1, 1:-1]
    gy = cv2.Sobel(raw, cv2.CV_32F, 0, 1, ksize=3)[1:-1, 1:-1]
    # Clipped white has no noise left to measure: counting it would hide a grainy
    # picture with a white background.
    unclipped = raw[1:-1, 1:-1] < CLIPPED_LEVEL
    if not unclipped.any():
        return 0.0
    magnitude = cv2.magnitude(gx, gy)
    flat = unclipped & (magnitude < np.percentile(magnitude[unclipped], 50))
    if not flat.any():
        return 0.0
    return float(math.sqrt(math.pi / 2) * response[flat].mean() / 6)


def colour_cast(p: Prepared) -> tuple[float, float]:
    """(offset, ratio): how far the mean colour sits from grey, and that offset over the
    spread of colours in the picture.

    A tinted picture has its colours bunched around one non-grey point (high ratio); a
    colourful scene spreads them (low ratio); an infrared picture has no colour at all
    (tiny offset). Both are 0 for a format without chroma.
    """
    if p.chroma is None:
        return 0.0, 0.0
    mean_u, mean_v, std_u, std_v = p.chroma
    offset = math.hypot(mean_u - NEUTRAL_CHROMA, mean_v - NEUTRAL_CHROMA)
    spread = math.hypot(std_u, std_v)
    return offset, offset / max(spread, 1.0)


def structure(p: Prepared) -> FloatImage:
    """The scene's layout, independent of lighting: local contrast at coarse scale.

    Each pixel minus its neighbourhood mean, divided by the neighbourhood's spread;
    gain, offset and slow light changes cancel, edges and shapes remain.
    """
    height, width = p.grey.shape
    scale = STRUCTURE_WIDTH / width
    small = cv2.resize(
        p.grey, (STRUCTURE_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    mean = cv2.GaussianBlur(small, (0, 0), 3)
    centred = small - mean
    spread = np.sqrt(cv2.GaussianBlur(centred * centred, (0, 0), 3)) + 4.0
    result: FloatImage = (centred / spread).astype(np.float32)
    return result


def similarity(a: FloatImage, b: FloatImage) -> float:
    """Normalised cross-correlation of two structure maps, -1 to 1 (1 = same view)."""
    if a.shape != b.shape:
        return 0.0
    a0 = a - a.mean()
    b0 = b - b.mean()
    denominator = float(np.sqrt((a0 * a0).sum() * (b0 * b0).sum()))
    if denominator < 1e-6:
        return 0.0
    return float((a0 * b0).sum() / denominator)


def alignment(current: FloatImage, reference: FloatImage) -> tuple[int, int, float]:
    """The shift (dx, dy, in structure pixels) that best lines `current` up with
    `reference`, and how well they correlate once shifted (on their overlap).

    A camera that was turned still shows much of its old view, displaced; a change of
    light or passing traffic leaves the best alignment where it was.
    """
    if current.shape != reference.shape:
        return 0, 0, 0.0
    # Phase correlation by hand: cv2.phaseCorrelate's sub-pixel estimate is off by half
    # a pixel even for identical pictures, and whole pixels are all this needs.
    window = np.outer(np.hanning(current.shape[0]), np.hanning(current.shape[1]))
    spectrum = np.fft.fft2(current * window) * np.conj(np.fft.fft2(reference * window))
    peak = np.fft.ifft2(spectrum / np.maximum(np.abs(spectrum), 1e-9)).real
    height, width = current.shape
    best = (0, 0, similarity(current, reference))
    # Repetitive scenes (parking bays, fences, windows) give several peaks: the
    # strongest few are each checked by correlating the overlap.
    for index in np.argsort(peak, axis=None)[-ALIGNMENT_CANDIDATES:]:
        y, x = np.unravel_index(int(index), peak.shape)
        dy = int(y) if y <= height // 2 else int(y) - height
        dx = int(x) if x <= width // 2 else int(x) - width
        if abs(dx) >= width // 2 or abs(dy) >= height // 2 or (dx, dy) == (0, 0):
            continue
        # current[y, x] shows what reference shows at [y - dy, x - dx]
        cur = current[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)]
        ref = reference[max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
        shifted = similarity(cur, ref)
        if shifted > best[2]:
            best = (dx, dy, shifted)
    return best


def frame_change(previous: Prepared, current: Prepared) -> float | None:
    """Mean absolute difference in grey levels between two subsampled pictures, where
    either is not clipped white; None when almost all of both is."""
    if previous.raw.shape != current.raw.shape:
        return 255.0
    live = (previous.raw < CLIPPED_LEVEL) | (current.raw < CLIPPED_LEVEL)
    if live.mean() < UNCLIPPED_MIN:
        return None
    diff = np.abs(previous.raw.astype(np.int16) - current.raw.astype(np.int16))
    return float(diff[live].mean())
