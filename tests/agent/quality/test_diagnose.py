"""The rule table: which problems one picture's metrics show (pure; no pictures needed)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agent.quality.diagnose import PictureMetrics, diagnose

HEALTHY = PictureMetrics(
    brightness=120,
    shadows=20,
    highlights=200,
    contrast=180,
    sharpness=0.12,
    detail=0.4,
    noise=1.5,
    cast_offset=2,
    cast_ratio=0.1,
    frame_change=4.0,
    similarity=0.9,
    sharpness_ratio=1.0,
    view_shift=0.0,
    shifted_similarity=0.9,
    clipped=0.0,
    relative_contrast=0.82,
    edge_width=3.0,
    edge_ratio=1.0,
    colour_shift=1.0,
    tint=0.0,
    coded_change=8.0,
    reference_noise=1.5,
    reference_brightness=120,
    reference_contrast=0.8,
    reference_clipped=0.0,
)
# The same picture with no reference view for its lighting yet.
UNREFERENCED = {
    "similarity": None,
    "sharpness_ratio": None,
    "view_shift": None,
    "shifted_similarity": None,
    "edge_ratio": None,
    "colour_shift": None,
    "reference_noise": None,
    "reference_brightness": None,
    "reference_contrast": None,
    "reference_clipped": None,
}
# A colour camera at night against its day view: darker, only half alike.
AT_NIGHT = {"brightness": 45, "highlights": 230, "similarity": 0.5, "shifted_similarity": 0.5}


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({}, set()),
        ({"detail": 0.0, "contrast": 10, "frame_change": 0.0, "similarity": 0.1}, {"covered"}),
        # as dark, but the scene's layout still shows: underexposed, not covered
        ({"brightness": 20, "contrast": 10, "detail": 0.0, "similarity": 0.9}, {"too_dark"}),
        ({"brightness": 20, "highlights": 40, "contrast": 30, "detail": 0.05}, {"too_dark"}),
        # a night street: dark on average, but lamps and detail
        ({**AT_NIGHT, "detail": 0.25}, set()),
        # ... even with a day view's sharpness and colour far off
        ({**AT_NIGHT, "sharpness_ratio": 0.3, "edge_ratio": 1.6, "colour_shift": 14}, set()),
        # ... and nothing of the day view lining up: not moved, just dark
        ({**AT_NIGHT, "similarity": 0.05, "shifted_similarity": 0.05}, set()),
        # white all over: overexposed, not covered
        ({"brightness": 235, "clipped": 1.0, "contrast": 0, "detail": 0.0}, {"too_bright"}),
        ({"brightness": 190, "clipped": 0.4, "relative_contrast": 0.3}, {"too_bright"}),
        # a white wall that is always there is this camera's normal
        ({"brightness": 190, "clipped": 0.4, "reference_clipped": 0.35}, set()),
        # washed out: far brighter than the reference view, little contrast left
        ({"brightness": 185, "relative_contrast": 0.3}, {"too_bright"}),
        ({"relative_contrast": 0.1, "brightness": 150}, {"low_contrast"}),
        # half the reference's contrast
        ({"relative_contrast": 0.28}, {"low_contrast"}),
        # a dim scene: a small range in grey levels, but dark darks
        ({"brightness": 40, "contrast": 60, "relative_contrast": 0.7, **UNREFERENCED}, set()),
        ({"sharpness_ratio": 0.3}, {"blurred"}),
        ({"edge_ratio": 1.6}, {"blurred"}),
        ({**UNREFERENCED, "edge_width": 6.0}, {"blurred"}),
        ({**UNREFERENCED, "edge_width": 3.0}, set()),
        # a dim picture's edges are soft from glare: not judged without a reference
        ({**UNREFERENCED, "edge_width": 6.0, "brightness": 40}, set()),
        ({"noise": 15, "frame_change": 18}, {"noisy"}),
        # a hedge's texture reads as noise; so did it in the reference view
        ({"noise": 8, "reference_noise": 7}, set()),
        ({"colour_shift": 12}, {"colour_cast"}),
        # colourful but as it always is: its mean colour does not matter
        ({"cast_offset": 30, "cast_ratio": 2.0}, set()),
        ({**UNREFERENCED, "tint": 25}, {"colour_cast"}),
        ({**UNREFERENCED, "tint": 8, "cast_offset": 30}, set()),
        ({"frame_change": 0.2, "coded_change": 0.3}, {"frozen"}),
        ({"frame_change": 0.2, "coded_change": None}, {"frozen"}),  # an all-keyframe stream
        # a foggy street barely changes, but its encoder still codes the traffic
        ({"frame_change": 0.2, "coded_change": 9.0}, set()),
        ({"frame_change": 0.8, "noise": 1.0, "coded_change": 0.3}, set()),
        # a still forest: its texture reads as noise, its keyframes are quantised afresh
        # each time, and every block between them is skipped
        (
            {"frame_change": 1.3, "noise": 10, "reference_noise": 10, "coded_change": 0.07},
            {"frozen"},
        ),
        # the same forest live: the encoder codes its changes
        ({"frame_change": 1.3, "noise": 10, "reference_noise": 10, "coded_change": 0.3}, set()),
        ({"frame_change": 2.2, "noise": 10, "reference_noise": 10, "coded_change": 0.07}, set()),
        # turned: the old view lines up well once displaced
        ({"similarity": 0.3, "view_shift": 0.2, "shifted_similarity": 0.95}, {"scene_changed"}),
        ({"similarity": 0.1, "view_shift": 0.0, "shifted_similarity": 0.1}, {"scene_changed"}),
        # lamps switched on or heavy traffic: less alike, but nothing displaced
        ({"similarity": 0.3, "view_shift": 0.0, "shifted_similarity": 0.3}, set()),
        # turned from a dark coat to the bright sky behind it: nothing lines up in place
        # and the light is not the reference's, but the old view is there, displaced
        (
            {"brightness": 195, "similarity": 0.0, "view_shift": 0.35, "shifted_similarity": 0.99},
            {"scene_changed"},
        ),
        # ... and turned into shade
        (
            {"brightness": 60, "similarity": 0.3, "view_shift": 0.2, "shifted_similarity": 0.95},
            {"scene_changed"},
        ),
        # night against the day view: lamps and noise line up a little somewhere else
        ({**AT_NIGHT, "similarity": -0.1, "view_shift": 0.3, "shifted_similarity": 0.3}, set()),
        # exposure problems mask the detail-based ones
        (
            {"brightness": 20, "contrast": 30, "detail": 0.05, "sharpness_ratio": 0.2},
            {"too_dark"},
        ),
        # a dark, flat scene that always is so (a black shop window) is this camera's normal
        (
            {
                "brightness": 46,
                "relative_contrast": 0.13,
                "reference_contrast": 0.13,
                "reference_brightness": 46,
            },
            set(),
        ),
        # ... but without a reference it is low in contrast
        ({**UNREFERENCED, "brightness": 46, "relative_contrast": 0.13}, {"low_contrast"}),
        # flat and white: overexposed, not fog (haze is never this bright)
        ({"brightness": 230, "relative_contrast": 0.16, "clipped": 0.2}, {"too_bright"}),
        # a scene that is always soft: wide edges are its normal ...
        ({"edge_width": 5.8, "edge_ratio": 1.0}, set()),
        # ... but wider still is a defocus
        ({"edge_width": 5.8, "edge_ratio": 1.15}, {"blurred"}),
        # white all over: nothing left that could change, so not judged frozen
        ({"frame_change": None, "coded_change": 0.1, "clipped": 0.95}, {"too_bright"}),
        # a frozen picture's focus says nothing of the camera now
        ({"frame_change": 0.1, "coded_change": 0.3, "edge_ratio": 1.6}, {"frozen"}),
        # and a foggy picture's colour is the fog's
        ({"relative_contrast": 0.1, "colour_shift": 20}, {"low_contrast"}),
    ],
)
def test_rules(changes: dict[str, float | None], found: set[str]) -> None:
    assert diagnose(replace(HEALTHY, **changes)) == found  # type: ignore[arg-type]
