"""The labelled corpus is what it claims: deterministic scenes, defects that spoil the
picture the intended way, and real H.264 clips with the promised timing."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from demo.scene import DEFECTS, KINDS, STRENGTHS, VARIANTS, Scene, defect
from tests.support.corpus import (
    CLIP_DEFECTS,
    HARD_NEGATIVES,
    LOW_FPS,
    Clip,
    build_corpus,
    day_cycle,
    day_plan,
)
from tests.support.session_cache import session_cache

WIDTH, HEIGHT = 320, 180
FPS = 5
SECONDS = 4.0


def _grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _detail(rgb: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey picture: high-frequency energy."""
    g = _grey(rgb)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.abs(lap).mean())


def _chroma(rgb: np.ndarray) -> float:
    """Distance of the mean colour from grey, in 8-bit levels (mean |channel - grey|)."""
    mean = rgb.reshape(-1, 3).astype(np.float32).mean(axis=0)
    return float(np.abs(mean - mean.mean()).sum())


def _decode(path: Path) -> tuple[list[np.ndarray], list[bool], Fraction | None]:
    """The frames, which are keyframes, and the stream's average rate (read while the
    file is open: PyAV 18.1.1 refuses a closed container's stream properties)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, keys = [], []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            keys.append(bool(frame.key_frame))
        return frames, keys, stream.average_rate


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene("street", 11, WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def clean(scene: Scene) -> np.ndarray:
    return scene.render(5.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Clip]:
    # Built once per session whichever workers run the tests of this module.
    with session_cache(tmp_path_factory, "small-corpus") as directory:
        return build_corpus(directory, [3], seconds=SECONDS, fps=FPS, width=WIDTH, height=HEIGHT)


# --- scenes ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_scene_is_deterministic_per_seed_and_differs_across_seeds(kind: str) -> None:
    a = Scene(kind, 1, WIDTH, HEIGHT).render(3.0, moving=2)
    again = Scene(kind, 1, WIDTH, HEIGHT).render(3.0, moving=2)
    other = Scene(kind, 2, WIDTH, HEIGHT).render(3.0, moving=2)

    assert a.shape == (HEIGHT, WIDTH, 3) and a.dtype == np.uint8
    assert np.array_equal(a, again)
    assert np.abs(a.astype(int) - other.astype(int)).mean() > 10
    # A real picture, not a flat card.
    assert _grey(a).std() > 25 and _detail(a) > 5


def test_noise_differs_every_frame_but_a_static_scene_stays_put(scene: Scene) -> None:
    first, second = (scene.render(t, light=0.0, moving=0) for t in (1.0, 1.1))
    diff = np.abs(first.astype(int) - second.astype(int))

    assert diff.mean() > 1.0  # live sensor noise, not a frozen picture
    assert diff.mean() < 10.0  # ...yet the same view
    assert np.array_equal(first, scene.render(1.0, light=0.0, moving=0))


def test_night_is_dark_but_detailed_and_noisier(scene: Scene, clean: np.ndarray) -> None:
    night = scene.render(5.0, light=0.0)
    flat_day = scene.render(5.0, moving=0).astype(int) - scene.render(5.1, moving=0)
    flat_night = scene.render(5.0, light=0.0, moving=0).astype(int) - scene.render(
        5.1, light=0.0, moving=0
    )

    assert _grey(night).mean() < 0.6 * _grey(clean).mean()
    assert _grey(night).std() > 25  # lamps and lit windows
    assert flat_night.std() > flat_day.std()


def test_infrared_is_grey_and_brighter_than_visible_night(scene: Scene) -> None:
    ir = scene.render(5.0, light=0.0, ir=True)

    assert np.array_equal(ir[..., 0], ir[..., 1]) and np.array_equal(ir[..., 1], ir[..., 2])
    assert _grey(ir).mean() > _grey(scene.render(5.0, light=0.0)).mean()


def test_pan_shows_shifted_content_not_wrapped_pixels(scene: Scene) -> None:
    shift = round(0.25 * WIDTH)
    straight = scene.render(2.0, moving=0).astype(int)
    turned = scene.render(2.0, moving=0, pan=0.25).astype(int)
    far = scene.render(2.0, moving=0, pan=0.6).astype(int)

    # The overlap matches after the shift, up to sensor noise...
    assert np.abs(turned[:, : WIDTH - shift] - straight[:, shift:]).mean() < 5
    assert np.abs(turned - straight).mean() > 15
    # ...and what comes into view is new, not the left edge wrapped round.
    assert np.abs(far[:, -shift:] - straight[:, :shift]).mean() > 15


def test_moving_objects_move_and_none_means_empty(scene: Scene) -> None:
    empty = [scene.render(t, moving=0) for t in (0.0, 2.0)]
    busy = [scene.render(t, moving=8) for t in (0.0, 2.0)]

    assert np.abs(empty[0].astype(int) - empty[1]).mean() < 5
    assert (
        np.abs(busy[0].astype(int) - busy[1]).mean()
        > np.abs(empty[0].astype(int) - empty[1]).mean() + 3
    )


# --- defects ---------------------------------------------------------------------------


def _spoil(name: str, frame: np.ndarray, variant: str | None = None) -> np.ndarray:
    return defect(name, variant)(frame, STRENGTHS["clear"][name], np.random.default_rng(1))


def test_every_defect_has_mild_and_clear_strengths() -> None:
    for level in ("mild", "clear"):
        assert set(STRENGTHS[level]) == set(DEFECTS)
        assert all(0 < s <= 1 for s in STRENGTHS[level].values())
    assert all(STRENGTHS["mild"][d] < STRENGTHS["clear"][d] for d in DEFECTS)


def test_defects_spoil_the_picture_the_intended_way(clean: np.ndarray) -> None:
    grey = _grey(clean)

    assert _detail(_spoil("blurred", clean)) < 0.4 * _detail(clean)
    dark = _grey(_spoil("too_dark", clean))
    assert dark.mean() < 0.2 * grey.mean() and len(np.unique(dark.round())) < 40
    assert _grey(_spoil("too_bright", clean)).mean() > 200
    assert _grey(_spoil("low_contrast", clean)).std() < 0.25 * grey.std()
    for variant in VARIANTS["covered"]:
        cover = _grey(_spoil("covered", clean, variant))
        assert cover.std() < 6 and cover.mean() < 60
    for variant in VARIANTS["colour_cast"]:
        assert _chroma(_spoil("colour_cast", clean, variant)) > _chroma(clean) + 25
    noise = _spoil("noisy", clean).astype(int) - clean
    assert noise.std() > 15


def test_mild_is_milder_than_clear(clean: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    mild = DEFECTS["blurred"](clean, STRENGTHS["mild"]["blurred"], rng)
    clear = DEFECTS["blurred"](clean, STRENGTHS["clear"]["blurred"], rng)
    assert _detail(clear) < _detail(mild) < _detail(clean)
    mild = DEFECTS["too_dark"](clean, STRENGTHS["mild"]["too_dark"], rng)
    clear = DEFECTS["too_dark"](clean, STRENGTHS["clear"]["too_dark"], rng)
    assert _grey(clear).mean() < _grey(mild).mean() < _grey(clean).mean()


# --- the corpus as files ---------------------------------------------------------------


def test_corpus_has_every_label_and_hard_negative(corpus: list[Clip]) -> None:
    labelled = {(c.label, c.strength) for c in corpus}
    for name in DEFECTS:
        assert {(name, "mild"), (name, "clear")} <= labelled
    assert {"frozen", "scene_changed", "low_fps"} <= {c.label for c in corpus}
    assert set(CLIP_DEFECTS) <= {c.label for c in corpus}
    assert {c.case for c in corpus if c.label == "clean"} >= set(HARD_NEGATIVES)
    assert len({c.name for c in corpus}) == len(corpus)
    for clip in corpus:
        assert clip.path.is_file() and clip.reference.is_file()
        reference = cv2.imread(str(clip.reference))
        assert reference is not None and reference.shape == (HEIGHT, WIDTH, 3)


def test_clips_decode_with_duration_fps_and_a_keyframe_a_second(corpus: list[Clip]) -> None:
    for clip in corpus:
        frames, keys, rate = _decode(clip.path)
        expected_fps = LOW_FPS[clip.strength or ""] if clip.label == "low_fps" else FPS
        assert clip.fps == expected_fps, clip.name
        assert len(frames) == round(SECONDS * expected_fps), clip.name
        assert rate == expected_fps, clip.name
        assert frames[0].shape == (HEIGHT, WIDTH, 3)
        assert [i for i, key in enumerate(keys) if key] == list(range(0, len(keys), clip.fps))


def test_frozen_clip_repeats_one_picture_after_onset(corpus: list[Clip]) -> None:
    clip = next(c for c in corpus if c.label == "frozen")
    assert clip.onset_s is not None
    frames, _, _ = _decode(clip.path)
    onset = round(clip.onset_s * clip.fps)

    def changes(run: list[np.ndarray]) -> list[float]:
        return [float(np.abs(a.astype(int) - b).mean()) for a, b in itertools.pairwise(run)]

    frozen = changes(frames[onset + 1 :])
    live = changes(frames[: onset + 1])
    # Re-encoding one picture leaves only coding noise (keyframes at a varying quantiser);
    # a live picture changes by its sensor noise at least.
    assert max(frozen) < 1.5
    assert max(frozen) < min(live)


def test_scene_changed_clip_turns_at_onset(corpus: list[Clip]) -> None:
    clip = next(c for c in corpus if c.label == "scene_changed" and c.strength == "clear")
    frames, _, _ = _decode(clip.path)
    picture = cv2.imread(str(clip.reference))
    assert picture is not None, clip.reference
    reference = cv2.cvtColor(picture, cv2.COLOR_BGR2RGB).astype(int)

    start = np.abs(frames[0].astype(int) - reference).mean()
    end = np.abs(frames[-1].astype(int) - reference).mean()
    assert end > start + 10


def test_ir_clip_stays_grey_through_the_codec(corpus: list[Clip]) -> None:
    clip = next(c for c in corpus if c.case == "ir_night")
    with av.open(str(clip.path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="yuv420p")
    chroma = frame[HEIGHT:].astype(int)
    assert np.abs(chroma - 128).max() <= 2


def test_corpus_reuses_files_already_built(corpus: list[Clip]) -> None:
    directory = corpus[0].path.parent
    stamps = {c.path: c.path.stat().st_mtime_ns for c in corpus}

    again = build_corpus(directory, [3], seconds=SECONDS, fps=FPS, width=WIDTH, height=HEIGHT)

    assert again == corpus
    assert {c.path: c.path.stat().st_mtime_ns for c in again} == stamps


def test_day_cycle_is_all_keyframes_with_night_in_infrared(tmp_path: Path) -> None:
    clip, reference = day_cycle(tmp_path, 5, samples_per_hour=2, width=WIDTH, height=HEIGHT)
    frames, keys, rate = _decode(clip)
    plan = day_plan(5, samples_per_hour=2)

    assert len(frames) == 48 and all(keys) and rate == 1
    assert reference.is_file()
    midnight, noon = frames[0], frames[24]
    assert plan[0].ir and not plan[24].ir
    assert np.abs(midnight[..., 0].astype(int) - midnight[..., 2]).mean() < 1.5
    assert np.abs(noon[..., 0].astype(int) - noon[..., 2]).mean() > 5
    assert _grey(noon).mean() > 80
    # IR switches on once in the evening and off once in the morning.
    switches = sum(a.ir != b.ir for a, b in itertools.pairwise(plan))
    assert switches == 2
