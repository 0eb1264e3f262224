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
)


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({}, set()),
        ({"detail": 0.0, "contrast": 10, "frame_change": 0.0, "cast_offset": 30}, {"covered"}),
        ({"brightness": 20, "highlights": 40, "contrast": 30, "detail": 0.05}, {"too_dark"}),
        # a night street: dark on average, but lamps and detail
        ({"brightness": 45, "highlights": 230, "detail": 0.25}, set()),
        ({"brightness": 225, "shadows": 190, "highlights": 255, "contrast": 65}, {"too_bright"}),
        ({"contrast": 40, "shadows": 130, "highlights": 170}, {"low_contrast"}),
        ({"sharpness_ratio": 0.3}, {"blurred"}),
        ({"sharpness_ratio": None, "similarity": None, "sharpness": 0.002}, {"blurred"}),
        ({"noise": 15, "frame_change": 18}, {"noisy"}),
        ({"cast_offset": 30, "cast_ratio": 2.0}, {"colour_cast"}),
        ({"cast_offset": 15, "cast_ratio": 0.3}, set()),  # colourful, not tinted
        ({"frame_change": 0.2}, {"frozen"}),
        ({"frame_change": 0.8, "noise": 1.0}, set()),
        # turned: the old view lines up well once displaced
        ({"similarity": 0.3, "view_shift": 0.2, "shifted_similarity": 0.95}, {"scene_changed"}),
        ({"similarity": 0.1, "view_shift": 0.0, "shifted_similarity": 0.1}, {"scene_changed"}),
        # lamps switched on or heavy traffic: less alike, but nothing displaced
        ({"similarity": 0.3, "view_shift": 0.0, "shifted_similarity": 0.3}, set()),
        # exposure problems mask the detail-based ones
        (
            {"brightness": 20, "highlights": 40, "detail": 0.05, "sharpness_ratio": 0.2},
            {"too_dark"},
        ),
    ],
)
def test_rules(changes: dict[str, float | None], found: set[str]) -> None:
    assert diagnose(replace(HEALTHY, **changes)) == found  # type: ignore[arg-type]
