"""The demo camera's synthetic street can be spoilt on request, as a viewer of the stream sees."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator

import av
import numpy as np
import pytest

from tests.support.rtsp import RtspCamera

# Frames to wait for a command to show: encoder and RTSP latency are a few frames, but a
# client that joined mid-GOP decodes nothing before the next keyframe (every 2 s).
SHOW_WITHIN_S = 6.0


def _frames(camera: RtspCamera) -> Generator[np.ndarray, None, None]:
    """Decoded grey frames from the camera's stream, as they arrive."""
    with av.open(camera.url, options={"rtsp_transport": "tcp"}, timeout=(5, 5)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="gray")


def _wait_for(frames: Iterator[np.ndarray], check: Callable[[np.ndarray], bool]) -> np.ndarray:
    deadline = time.monotonic() + SHOW_WITHIN_S
    seen = []
    for frame in frames:
        if check(frame):
            return frame
        seen.append(round(float(frame.std()), 1))
        if time.monotonic() > deadline:
            break
    pytest.fail(f"no such frame within {SHOW_WITHIN_S}s; grey std of the last: {seen[-10:]}")


def _detailed(frame: np.ndarray) -> bool:
    return float(frame.std()) > 25


def _uniform(frame: np.ndarray) -> bool:
    return float(frame.std()) < 8 and float(frame.mean()) < 70


def test_covered_and_cleared_on_request() -> None:
    with RtspCamera(scene="synthetic", fps=10, width=640, height=360, seed=4) as camera:
        frames = _frames(camera)
        before = _wait_for(frames, _detailed).astype(np.int16)

        camera.inject("covered")
        covered = _wait_for(frames, _uniform)
        camera.inject("clear")
        after = _wait_for(frames, _detailed).astype(np.int16)
        frames.close()

    assert covered.std() < 8
    # Back to the same street: people and cars move, but most of the view is as before.
    assert np.median(np.abs(after - before)) < 12


def test_moved_turns_the_view() -> None:
    with RtspCamera(scene="synthetic", fps=10, width=640, height=360, seed=4) as camera:
        frames = _frames(camera)
        before = _wait_for(frames, _detailed).astype(np.int16)

        camera.inject("moved")
        moved = _wait_for(
            frames, lambda f: float(np.median(np.abs(f.astype(np.int16) - before))) > 20
        )
        frames.close()

    assert _detailed(moved)
