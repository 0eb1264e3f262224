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

# Chosen on the tuning parts of both corpora (rendered seeds and real scenes, see
# bench/quality_report.py) and reported on the held-out parts. Problems that are wrong in
# any scene (black, white, nothing to see) have absolute rules; those that depend on the
# scene are judged against what the camera learnt of itself in the same lighting
# (`Reference`), and absolutely only where a picture is wrong in any scene.

# covered: almost nothing to see (a hand, tape or cap over the lens, or a black frame) ...
COVERED_DETAIL_MAX = 0.004  # fraction of the picture with edges
COVERED_CONTRAST_MAX = 40.0  # grey levels between the 2nd and 98th percentile
# ... and nothing of the reference view shows through: an underexposed picture keeps the
# scene's layout (similarity about 0.9), a cover keeps none (below 0.3).
COVERED_SIMILARITY_MAX = 0.5
# too_dark: black, or nearly: dark overall and no lights either. A dim night scene with
# lamps has a range of 70 levels and more.
DARK_BRIGHTNESS_MAX = 32.0
DARK_CONTRAST_MAX = 40.0
# too_bright: a quarter of the picture clipped white (more than the reference has) ...
CLIPPED_MIN = 0.25
CLIPPED_GAIN_MIN = 0.15
# ... or washed out: bright and without darks, and far brighter than the reference view.
WASHED_BRIGHTNESS_MIN = 150.0
WASHED_CONTRAST_MAX = 0.4  # relative contrast
WASHED_GAIN_MIN = 60.0  # grey levels above the reference's brightness (haze adds ~30)
WASHED_ABSOLUTE_MIN = 200.0  # brightness, without a reference
# low_contrast: fog, haze, a dirty dome: the range small relative to the brightness (not
# in grey levels: a dim night scene has a small range but dark darks) ...
LOW_CONTRAST_MAX = 0.15
# ... or half the reference's, in the same lighting.
LOW_CONTRAST_SHARE = 0.5
LOW_CONTRAST_RELATIVE_MAX = 0.3
# The relative rules compare with the reference only in the same light: a colour camera
# keeps its day reference at night, when its picture is much darker, lit by lamps and
# glare, and only half like its day view (similarity 0.4-0.6 at night, above 0.85 for
# a blurred or tinted day picture).
SAME_LIGHT = (0.65, 1.5)  # brightness over the reference's
SAME_LIGHT_SIMILARITY_MIN = 0.75
# blurred: edges twice as wide as in the reference view, or detail halved ...
EDGE_RATIO_MAX = 1.4
BLUR_RATIO_MAX = 0.5
# ... or, without a reference in this light, edges wider than a focused camera draws
# them at the analysis width. Only in a picture with light: at night glare and the
# camera's noise reduction soften edges.
EDGE_WIDTH_MAX = 5.4
EDGE_WIDER_MIN = 1.08  # ... and, with a reference, this much wider than its edges
BLUR_LIGHT_MIN = 60.0  # brightness
# noisy: sensor noise (standard deviation, grey levels) far above a camera at night, and
# well above the camera's own in this lighting (fine texture, a hedge, reads as noise).
NOISE_MAX = 6.5
NOISE_GAIN_MIN = 1.5
# colour_cast: the picture's colour moved from the reference view's in the same light ...
CAST_SHIFT_MIN = 6.0  # chroma levels, median over blocks
# ... or, without one, every part of the picture tinted the same way (a colourful scene
# keeps grey parts).
CAST_TINT_MIN = 18.0
# scene_changed: the camera was turned (its old view is still there, displaced by at
# least VIEW_SHIFT_MIN of the picture width, and lines up far better displaced than
# in place) or points somewhere else entirely (nothing of the old view lines up).
# Light changes and traffic lower the similarity but never displace the view.
VIEW_SHIFT_MIN = 0.03
SHIFTED_SIMILARITY_MIN = 0.6
SHIFT_GAIN_MIN = 0.15
OTHER_VIEW_MAX = 0.2
# The displaced view counts in any light: structure is local contrast, so a camera turned
# towards the bright sky or into shade still finds its old view there, and a change of
# light never displaces it. On the real tuning scenes a turned view lines up at 0.96 and
# more (nine in ten) once displaced; a colour camera's night against its day view, with
# lamps, glare and gain noise, finds a displaced match of 0.30 at most. "Nothing lines
# up" counts only in the reference's light: night lines up at -0.1 in place. Edge
# orientation, which light does not change either, was tried for it in other light and
# not taken: night keeps 0.37 of it on the tuning scenes, and a quarter of turned views
# keep more.
# frozen: two samples differ by less than this share of the picture's own noise floor
# (a live picture's noise alone changes it by about 1.1 times the noise level; a
# re-encoded still picture by its coding noise only), or by less than
# FROZEN_CHANGE_FLOOR grey levels when the picture is clean. The noise level counts up
# to FROZEN_NOISE_CAP: fine texture (a hedge, gravel) reads as noise in one picture.
FROZEN_NOISE_SHARE = 0.5
FROZEN_NOISE_CAP = 2.0
FROZEN_CHANGE_FLOOR = 0.5
# ... and the encoder sent almost nothing between keyframes (bytes per macroblock): it
# is coding the same picture again. Any live picture costs bits, a dim or foggy one too,
# which a picture difference alone cannot tell from a still one.
FROZEN_CODED_MAX = 3.0
# When those frames are next to empty (the encoder skips every block; a live picture,
# even a still textured one, costs at least a few tenths of a byte per block), the
# pictures only have to differ by less than the coding noise of their texture: a
# keyframe of a still, busy picture (a forest, gravel) is quantised afresh each time
# and moves by up to about an eighth of the "noise" its texture reads as, where the
# capped floor above would call it live. Chosen on the real tuning scenes: a still
# forest, hedge and board 0.04-0.16 bytes per block at 0.10-0.16 of their noise; live
# textured pictures after their first second 0.29 bytes per block and up.
FROZEN_CODED_EMPTY = 0.2
FROZEN_TEXTURE_SHARE = 0.2


# A picture whose colours all sit this close to grey is an infrared (night) picture: an
# infrared camera's chroma is flat; a dark colour picture keeps a little.
INFRARED_CHROMA_MAX = 0.4

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
    """The camera's accepted view in one lighting, and what is normal for it there.

    `structure` and `detail_level` come from the view itself; the rest is what the camera
    learnt of itself in that lighting (None where it could not: a reference made from a
    stored grey picture has no colour, and its noise was averaged away)."""

    structure: FloatImage
    detail_level: float
    edge_width: float | None = None
    relative_contrast: float | None = None
    clipped: float | None = None
    brightness: float | None = None
    noise: float | None = None
    chroma_blocks: FloatImage | None = None


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
    clipped: float = 0.0
    relative_contrast: float = 1.0
    edge_width: float | None = None
    edge_ratio: float | None = None  # edge width over the reference's
    colour_shift: float | None = None
    tint: float = 0.0
    coded_change: float | None = None  # bytes per macroblock of the frames in between
    reference_noise: float | None = None
    reference_brightness: float | None = None
    reference_contrast: float | None = None  # relative
    reference_clipped: float | None = None

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
            "clipped": round(self.clipped, 3),
            "relative_contrast": round(self.relative_contrast, 3),
            "edge_width": rounded(self.edge_width, 2),
            "edge_ratio": rounded(self.edge_ratio, 2),
            "colour_shift": rounded(self.colour_shift, 1),
            "tint": round(self.tint, 1),
            "coded_change": rounded(self.coded_change, 2),
        }


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def detail_level(p: Prepared) -> float:
    """Sharpness that does not change with exposure: fine detail per grey level of range."""
    return metrics.sharpness(p) / max(metrics.contrast(p), 10.0)


def measure(
    p: Prepared,
    previous: Prepared | None,
    reference: Reference | None,
    coded_change: float | None = None,
) -> PictureMetrics:
    shadows, highlights = metrics.percentiles(p)
    sharp = detail_level(p)
    offset, ratio = metrics.colour_cast(p)
    width = metrics.edge_width(p, highlights - shadows)  # the percentiles once
    similarity = shifted = view_shift = sharpness_ratio = edge_ratio = shift = None
    if reference is not None:
        structure = metrics.structure(p)
        similarity = metrics.similarity(structure, reference.structure)
        dx, dy, shifted = metrics.alignment(structure, reference.structure)
        view_shift = math.hypot(dx, dy) / structure.shape[1]
        sharpness_ratio = sharp / max(reference.detail_level, 1e-6)
        if width is not None and reference.edge_width is not None:
            edge_ratio = width / max(reference.edge_width, 1e-3)
        shift = metrics.colour_shift(p, reference.chroma_blocks)
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
        frame_change=None if previous is None else metrics.frame_change(previous, p),
        similarity=similarity,
        sharpness_ratio=sharpness_ratio,
        view_shift=view_shift,
        shifted_similarity=shifted,
        clipped=metrics.clipped(p),
        relative_contrast=(highlights - shadows) / max(highlights + shadows, 1.0),
        edge_width=width,
        edge_ratio=edge_ratio,
        colour_shift=shift,
        tint=metrics.tint(p),
        coded_change=coded_change,
        reference_noise=None if reference is None else reference.noise,
        reference_brightness=None if reference is None else reference.brightness,
        reference_contrast=None if reference is None else reference.relative_contrast,
        reference_clipped=None if reference is None else reference.clipped,
    )


def reference_of(p: Prepared, noise: float | None = None) -> Reference:
    """The reference view `p`, with what is normal for the camera in its lighting.

    `noise` is the camera's noise level as learnt over its warm-up (by default `p`'s own,
    which suits a full-resolution picture, not a stored grey one: averaging removed it)."""
    return Reference(
        metrics.structure(p),
        detail_level(p),
        edge_width=metrics.edge_width(p),
        relative_contrast=metrics.relative_contrast(p),
        clipped=metrics.clipped(p),
        brightness=metrics.brightness(p),
        noise=metrics.noise(p) if noise is None else noise,
        chroma_blocks=p.chroma_blocks,
    )


def _moved(m: PictureMetrics) -> bool:
    if m.similarity is None:
        return False
    if m.similarity <= OTHER_VIEW_MAX and _similar_brightness(m):
        # Nothing lines up in the reference's light: another view. In other light the
        # same view may line up no better (a colour camera's night against its day view).
        return True
    return (
        m.view_shift is not None
        and m.shifted_similarity is not None
        and m.view_shift >= VIEW_SHIFT_MIN
        and m.shifted_similarity >= SHIFTED_SIMILARITY_MIN
        and m.shifted_similarity >= m.similarity + SHIFT_GAIN_MIN
    )


def _same_light(m: PictureMetrics) -> bool:
    """Whether the reference view was seen in light like this picture's."""
    if m.similarity is None or m.similarity < SAME_LIGHT_SIMILARITY_MIN:
        return False
    return _similar_brightness(m)


def _similar_brightness(m: PictureMetrics) -> bool:
    if m.reference_brightness is None:
        return False
    ratio = m.brightness / max(m.reference_brightness, 1.0)
    return SAME_LIGHT[0] <= ratio <= SAME_LIGHT[1]


def _covered(m: PictureMetrics) -> bool:
    if m.detail > COVERED_DETAIL_MAX or m.contrast > COVERED_CONTRAST_MAX:
        return False
    if m.clipped >= CLIPPED_MIN:
        return False  # white all over: overexposed, not covered
    return m.similarity is None or m.similarity < COVERED_SIMILARITY_MAX


def _clipped(m: PictureMetrics) -> bool:
    reference_clipped = m.reference_clipped or 0.0
    return m.clipped >= CLIPPED_MIN and m.clipped >= reference_clipped + CLIPPED_GAIN_MIN


def _washed_out(m: PictureMetrics) -> bool:
    if m.brightness < WASHED_BRIGHTNESS_MIN or m.relative_contrast > WASHED_CONTRAST_MAX:
        return False
    if m.reference_brightness is None:
        return m.brightness >= WASHED_ABSOLUTE_MIN
    return m.brightness >= m.reference_brightness + WASHED_GAIN_MIN


def _low_contrast(m: PictureMetrics, same_light: bool) -> bool:
    """Against the reference view in the same light (a dark, flat scene that is always so
    is this camera's normal), absolutely otherwise."""
    if same_light and m.reference_contrast is not None:
        return (
            m.relative_contrast <= LOW_CONTRAST_RELATIVE_MAX
            and m.relative_contrast <= LOW_CONTRAST_SHARE * m.reference_contrast
        )
    return m.relative_contrast <= LOW_CONTRAST_MAX


def _blurred(m: PictureMetrics, same_light: bool) -> bool:
    if m.noise >= NOISE_MAX:
        return False  # noise hides focus both ways
    if same_light and (
        (m.edge_ratio is not None and m.edge_ratio >= EDGE_RATIO_MAX)
        or (m.sharpness_ratio is not None and m.sharpness_ratio <= BLUR_RATIO_MAX)
    ):
        return True
    lit = m.brightness >= BLUR_LIGHT_MIN
    if not lit or m.edge_width is None or m.edge_width < EDGE_WIDTH_MAX:
        return False
    # Wide edges in a scene that is always soft (seen through glass, in motion) are its
    # normal: with a reference they must also be wider than its edges.
    if same_light and m.edge_ratio is not None:
        return m.edge_ratio >= EDGE_WIDER_MIN
    return True


def _colour_cast(m: PictureMetrics, same_light: bool) -> bool:
    if same_light and m.colour_shift is not None:
        return m.colour_shift >= CAST_SHIFT_MIN
    return m.tint >= CAST_TINT_MIN


def _noisy(m: PictureMetrics) -> bool:
    if m.noise < NOISE_MAX:
        return False
    return m.reference_noise is None or m.noise >= NOISE_GAIN_MIN * m.reference_noise


def _frozen(m: PictureMetrics) -> bool:
    if m.frame_change is None:
        return False
    if m.coded_change is not None and m.coded_change > FROZEN_CODED_MAX:
        return False
    floor = max(FROZEN_CHANGE_FLOOR, FROZEN_NOISE_SHARE * min(m.noise, FROZEN_NOISE_CAP))
    if m.coded_change is not None and m.coded_change <= FROZEN_CODED_EMPTY:
        floor = max(floor, FROZEN_TEXTURE_SHARE * m.noise)
    return m.frame_change < floor


def diagnose(m: PictureMetrics) -> frozenset[str]:
    """The problems this one picture shows. A covered lens masks everything else (a
    hand is skin-coloured, a cap shows no change); exposure and contrast problems mask
    the ones judged on detail and colour: a black picture is not also 'blurred', a
    foggy one's colours are the fog's."""
    if _covered(m):
        return frozenset({"covered"})
    found: set[str] = set()
    same_light = _same_light(m)
    if m.brightness <= DARK_BRIGHTNESS_MAX and m.contrast <= DARK_CONTRAST_MAX:
        found.add("too_dark")
    elif _clipped(m):
        found.add("too_bright")
    elif _low_contrast(m, same_light) and m.brightness < WASHED_ABSOLUTE_MIN:
        found.add("low_contrast")  # fog is bright and flat too, but never this bright
    elif _washed_out(m) or _low_contrast(m, same_light):
        found.add("too_bright")
    else:
        if _blurred(m, same_light):
            found.add("blurred")
        if _moved(m):
            found.add("scene_changed")
        elif _colour_cast(m, same_light):
            found.add("colour_cast")
    if _noisy(m):
        found.add("noisy")
    if _frozen(m):
        # A picture that is not live says nothing of the camera now: not its focus, its
        # colour or where it points (its exposure and noise are kept: they were true).
        found -= {"blurred", "colour_cast", "scene_changed"}
        found.add("frozen")
    return frozenset(found)
