"""Picture metrics on pictures with known properties."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agent.quality import metrics
from agent.quality.diagnose import detail_level
from agent.quality.metrics import Planes, Prepared

H, W = 360, 640


def textured(seed: int = 0) -> np.ndarray:
    """A scene-like luma picture: blocks, edges and texture, no noise."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((H, W), np.float32) + 100
    for _ in range(40):
        x, y = int(rng.integers(0, W - 60)), int(rng.integers(0, H - 40))
        picture[y : y + int(rng.integers(10, 80)), x : x + int(rng.integers(10, 120))] = float(
            rng.integers(20, 230)
        )
    picture += 8 * np.sin(np.arange(W) / 3.0)[None, :]
    return picture


def prepared(luma: np.ndarray, u: float = 128, v: float = 128, chroma_noise: float = 0) -> Prepared:
    rng = np.random.default_rng(1)
    cu = np.clip(u + rng.normal(0, chroma_noise, (H // 2, W // 2)), 0, 255).astype(np.uint8)
    cv = np.clip(v + rng.normal(0, chroma_noise, (H // 2, W // 2)), 0, 255).astype(np.uint8)
    return metrics.prepare(Planes(np.clip(luma, 0, 255).astype(np.uint8), cu, cv))


@pytest.mark.parametrize("sigma", [0.0, 2.0, 5.0, 10.0, 20.0])
def test_noise_estimate_follows_the_added_noise(sigma: float) -> None:
    rng = np.random.default_rng(3)
    noisy = textured() + rng.normal(0, sigma, (H, W))
    estimate = metrics.noise(prepared(noisy))
    assert estimate == pytest.approx(sigma, abs=1.0 + 0.15 * sigma)


def test_blur_lowers_sharpness_whatever_the_exposure() -> None:
    sharp = prepared(textured())
    blurred = prepared(cv2.GaussianBlur(textured(), (0, 0), 3))
    darker = prepared(textured() * 0.4)
    assert detail_level(blurred) < 0.5 * detail_level(sharp)
    assert detail_level(darker) == pytest.approx(detail_level(sharp), rel=0.15)


def test_a_uniform_picture_has_no_detail_and_a_textured_one_has() -> None:
    assert metrics.detail(prepared(np.full((H, W), 30.0))) == 0.0
    assert metrics.detail(prepared(textured())) > 0.02


def test_colour_cast_tinted_versus_grey_versus_colourful() -> None:
    grey_offset, _ = metrics.colour_cast(prepared(textured()))
    tint_offset, tint_ratio = metrics.colour_cast(
        prepared(textured(), u=100, v=160, chroma_noise=3)
    )
    _lively_offset, lively_ratio = metrics.colour_cast(
        prepared(textured(), u=120, v=136, chroma_noise=25)
    )
    assert grey_offset < 1
    assert tint_offset > 40 and tint_ratio > 5
    assert lively_ratio < 1


def test_structure_ignores_light_but_sees_a_turned_camera() -> None:
    base = metrics.structure(prepared(textured()))
    dimmer = metrics.structure(prepared(textured() * 0.5 + 10))
    wide = np.hstack([textured(), textured(seed=5)])
    turned = metrics.structure(prepared(wide[:, W // 3 : W // 3 + W]))
    assert metrics.similarity(base, dimmer) > 0.9
    assert metrics.similarity(base, turned) < 0.3


def test_frame_change_is_zero_for_the_same_picture() -> None:
    picture = prepared(textured())
    assert metrics.frame_change(picture, picture) == 0.0
    assert metrics.frame_change(picture, prepared(textured() + 10)) == pytest.approx(10, abs=0.5)


def test_alignment_finds_how_far_a_turned_camera_moved() -> None:
    wide = np.hstack([textured(), textured(seed=5)])
    reference = metrics.structure(prepared(wide[:, :W]))
    turned = metrics.structure(prepared(wide[:, W // 5 : W // 5 + W]))
    dx, dy, shifted = metrics.alignment(turned, reference)
    assert dx == pytest.approx(-metrics.STRUCTURE_WIDTH / 5, abs=1) and abs(dy) <= 1
    assert shifted > 0.8 > metrics.similarity(turned, reference)
    # approx compares equal to a float; mypy only sees a tuple of other types
    assert metrics.alignment(reference, reference) == (0, 0, pytest.approx(1.0))  # type: ignore[comparison-overlap]


def test_a_white_background_neither_hides_noise_nor_looks_frozen() -> None:
    rng = np.random.default_rng(3)
    picture = np.full((360, 640), 240, np.uint8)  # white, clipped
    picture[100:260, 200:440] = 90  # one dark object
    grainy = np.clip(picture + rng.normal(0, 12, picture.shape), 0, 255).astype(np.uint8)
    grainy[picture == 240] = 240  # the white stays clipped, as a sensor's does
    assert metrics.noise(metrics.prepare(Planes(grainy))) > 6.5
    white = metrics.prepare(Planes(np.full((360, 640), 240, np.uint8)))
    assert metrics.frame_change(white, white) is None  # nothing there could change
    still = metrics.prepare(Planes(picture))
    assert metrics.frame_change(still, still) == 0.0
