"""DORI distances from resolution and field of view (IEC 62676-4 densities)."""

from __future__ import annotations

import pytest

from agent.quality.dori import dori_distances


@pytest.mark.parametrize(
    ("width", "fov", "identify_m", "detect_m"),
    [
        (1920, 90, 3.8, 38.4),  # 1080p, wide lens: identifies a face only up close
        (1280, 90, 2.6, 25.6),
        (3840, 90, 7.7, 76.8),
        (1920, 30, 14.3, 143.3),  # a narrow lens reaches much further
    ],
)
def test_distances_follow_the_pixel_densities(
    width: int, fov: float, identify_m: float, detect_m: float
) -> None:
    distances = dori_distances(width, fov)
    assert distances["identify"] == pytest.approx(identify_m, abs=0.1)
    assert distances["detect"] == pytest.approx(detect_m, abs=0.1)
    assert (
        distances["detect"] > distances["observe"] > distances["recognise"] > distances["identify"]
    )


@pytest.mark.parametrize(("width", "fov"), [(0, 90), (1920, 0), (1920, 180), (-5, 60)])
def test_impossible_inputs_are_refused(width: int, fov: float) -> None:
    with pytest.raises(ValueError):
        dori_distances(width, fov)
