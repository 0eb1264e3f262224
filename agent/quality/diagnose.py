"""From one analysed picture to its metrics and the problems it shows on its own.

`measure` is arithmetic on the picture; `diagnose` is the rule table. Neither keeps
state: persistence (a problem must last before it is raised) lives in assess.py.
Every threshold is a named constant, chosen on the labelled corpus of the tests
(tests/support/corpus.py) on one set of seeds and scored on another
(bench/quality_report.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from agent.quality import metrics
from agent.quality.metrics import FloatImage, Prepared

# covered: almost nothing to see (a hand, tape or cap over the lens, or a black frame).
COVERED_DETAIL_MAX = 0.004  # fraction of the picture with edges
COVERED_CONTRAST_MAX = 40.0  # grey levels between the 2nd and 98th percentile
# too_dark: dark overall and no bright parts either (lamps and lit windows keep a
# night scene out of this).
DARK_BRIGHTNESS_MAX = 75.0
DARK_HIGHLIGHTS_MAX = 130.0  # 98th percentile
# ... and little detail left to see: dusk before the infrared switches on is dim but
# still shows the scene.
DARK_DETAIL_MAX = 0.15
# too_bright: washed out: bright overall and no dark parts left.
BRIGHT_BRIGHTNESS_MIN = 200.0
BRIGHT_SHADOWS_MIN = 130.0  # 2nd percentile
# low_contrast: fog, haze, a dirty dome: the whole picture within a narrow range.
LOW_CONTRAST_MAX = 80.0
# blurred: detail relative to the picture's own contrast, against the reference view
# when there is one (the scene decides how much detail is normal) ...
BLUR_RATIO_MAX = 0.5
# ... or in absolute terms when there is none yet.
BLUR_ABSOLUTE_MAX = 0.004
# noisy: sensor noise (standard deviation, grey levels) far above a camera at night.
NOISE_MAX = 6.5
# colour_cast: the mean colour far from grey and the colours bunched around it.
CAST_OFFSET_MIN = 13.0
CAST_RATIO_MIN = 0.6
# scene_changed: the camera was turned (its old view is still there, displaced by at
# least VIEW_SHIFT_MIN of the picture width, and lines up far better displaced than
# in place) or points somewhere else entirely (nothing of the old view lines up).
# Light changes and traffic lower the similarity but never displace the view.
VIEW_SHIFT_MIN = 0.03
SHIFTED_SIMILARITY_MIN = 0.6
SHIFT_GAIN_MIN = 0.15
OTHER_VIEW_MAX = 0.2
# frozen: two samples differ by less than this share of the picture's own noise floor
# (a live picture's noise alone changes it by about 1.1 times the noise level; a
# re-encoded still picture by its coding noise only), or by less than
# FROZEN_CHANGE_FLOOR grey levels when the picture is clean. The noise level counts up
# to FROZEN_NOISE_CAP: fine texture (a hedge, gravel) reads as noise in one picture.
FROZEN_NOISE_SHARE = 0.5
FROZEN_NOISE_CAP = 2.0
FROZEN_CHANGE_FLOOR = 0.5


# A picture whose colours all sit this close to grey is an infrared (night) picture.
INFRARED_CHROMA_MAX = 3.0

Lighting = Literal["colour", "infrared"]


def lighting_of(p: Prepared) -> Lighting:
    """Colour by day, infrared at night: the two look different enough that each gets
    its own reference view."""
    if p.chroma is None:
        return "infrared"
    mean_u, mean_v, std_u, std_v = p.chroma
    offset = max(abs(mean_u - metrics.NEUTRAL_CHROMA), abs(mean_v - metrics.NEUTRAL_CHROMA))
    spread = max(std_u, std_v)
    return "infrared" if offset < INFRARED_CHROMA_MAX and spread < INFRARED_CHROMA_MAX else "colour"


@dataclass(frozen=True)
class Reference:
    """The camera's accepted view: its structure and how much detail it normally has."""

    structure: FloatImage
    detail_level: float


@dataclass(frozen=True)
class PictureMetrics:
    brightness: float
    shadows: float  # 2nd percentile grey level
    highlights: float  # 98th percentile grey level
    contrast: float
    sharpness: float  # detail relative to contrast
    detail: float
    noise: float
    cast_offset: float
    cast_ratio: float
    frame_change: float | None
    similarity: float | None
    sharpness_ratio: float | None
    view_shift: float | None = None  # fraction of the picture width
    shifted_similarity: float | None = None

    def as_payload(self) -> dict[str, float | None]:
        """The health `metrics` entries (names and units in docs/schemas/health)."""
        return {
            "brightness": round(self.brightness, 1),
            "contrast": round(self.contrast, 1),
            "sharpness": round(self.sharpness, 4),
            "sharpness_ratio": rounded(self.sharpness_ratio, 3),
            "detail": round(self.detail, 4),
            "noise": round(self.noise, 2),
            "colour_cast": round(self.cast_offset, 1),
            "colour_cast_ratio": round(self.cast_ratio, 2),
            "frame_change": rounded(self.frame_change, 3),
            "reference_similarity": rounded(self.similarity, 3),
            "view_shift": rounded(self.view_shift, 3),
        }


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def detail_level(p: Prepared) -> float:
    """Sharpness that does not change with exposure: fine detail per grey level of range."""
    return metrics.sharpness(p) / max(metrics.contrast(p), 10.0)


def measure(p: Prepared, previous: Prepared | None, reference: Reference | None) -> PictureMetrics:
    shadows, highlights = metrics.percentiles(p)
    sharp = detail_level(p)
    offset, ratio = metrics.colour_cast(p)
    similarity = shifted = view_shift = sharpness_ratio = None
    if reference is not None:
        structure = metrics.structure(p)
        similarity = metrics.similarity(structure, reference.structure)
        dx, dy, shifted = metrics.alignment(structure, reference.structure)
        view_shift = math.hypot(dx, dy) / structure.shape[1]
        sharpness_ratio = sharp / max(reference.detail_level, 1e-6)
    return PictureMetrics(
        brightness=metrics.brightness(p),
        shadows=shadows,
        highlights=highlights,
        contrast=highlights - shadows,
        sharpness=sharp,
        detail=metrics.detail(p),
        noise=metrics.noise(p),
        cast_offset=offset,
        cast_ratio=ratio,
        frame_change=metrics.frame_change(previous, p) if previous is not None else None,
        similarity=similarity,
        sharpness_ratio=sharpness_ratio,
        view_shift=view_shift,
        shifted_similarity=shifted,
    )


def reference_of(p: Prepared) -> Reference:
    return Reference(metrics.structure(p), detail_level(p))


def _moved(m: PictureMetrics) -> bool:
    if m.similarity is None:
        return False
    if m.similarity <= OTHER_VIEW_MAX:
        return True
    return (
        m.view_shift is not None
        and m.shifted_similarity is not None
        and m.view_shift >= VIEW_SHIFT_MIN
        and m.shifted_similarity >= SHIFTED_SIMILARITY_MIN
        and m.shifted_similarity >= m.similarity + SHIFT_GAIN_MIN
    )


def diagnose(m: PictureMetrics) -> frozenset[str]:
    """The problems this one picture shows. A covered lens masks everything else (a
    hand is skin-coloured, a cap shows no change); exposure problems mask the
    detail-based ones: a black picture is not also 'blurred'."""
    if m.detail <= COVERED_DETAIL_MAX and m.contrast <= COVERED_CONTRAST_MAX:
        return frozenset({"covered"})
    found: set[str] = set()
    if (
        m.brightness <= DARK_BRIGHTNESS_MAX
        and m.highlights <= DARK_HIGHLIGHTS_MAX
        and m.detail <= DARK_DETAIL_MAX
    ):
        found.add("too_dark")
    elif m.brightness >= BRIGHT_BRIGHTNESS_MIN and m.shadows >= BRIGHT_SHADOWS_MIN:
        found.add("too_bright")
    elif m.contrast <= LOW_CONTRAST_MAX:
        found.add("low_contrast")
    else:
        if m.sharpness_ratio is not None:
            if m.sharpness_ratio <= BLUR_RATIO_MAX:
                found.add("blurred")
        elif m.sharpness <= BLUR_ABSOLUTE_MAX:
            found.add("blurred")
        if _moved(m):
            found.add("scene_changed")
    if m.noise >= NOISE_MAX:
        found.add("noisy")
    if m.cast_offset >= CAST_OFFSET_MIN and m.cast_ratio >= CAST_RATIO_MIN:
        found.add("colour_cast")
    if m.frame_change is not None and m.frame_change < max(
        FROZEN_CHANGE_FLOOR, FROZEN_NOISE_SHARE * min(m.noise, FROZEN_NOISE_CAP)
    ):
        found.add("frozen")
    return frozenset(found)
