"""Which stream a camera with a sub-stream analyses: the sub-stream while it sends, else
the main stream's keyframes, said once in the log each time it changes."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from agent.quality.assess import Expectations, PictureOrigin, StreamAssessor, StreamFacts
from agent.quality.metrics import Planes
from agent.streams.analysis import SUB_FIRST_WAIT_S, SUB_SILENT_S, SUB_STREAM, AnalysisRoute
from tests.agent.quality.test_assess import scene

START = 100.0


def test_at_start_the_main_stream_waits_for_the_sub_stream_then_analyses_itself() -> None:
    route = AnalysisRoute("front", START)
    assert not route.main_wanted(START + 1.0)
    assert not route.main_wanted(START + SUB_FIRST_WAIT_S - 0.1)
    assert route.main_wanted(START + SUB_FIRST_WAIT_S)


def test_a_sending_sub_stream_keeps_the_main_stream_from_decoding() -> None:
    route = AnalysisRoute("front", START)
    route.sub_packet(START + 1.0)
    for t in (START + 1.0, START + 30.0, START + 300.0):
        route.sub_packet(t)
        assert not route.main_wanted(t + SUB_SILENT_S)


def test_a_silent_sub_stream_hands_the_pictures_to_the_main_stream_and_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    route = AnalysisRoute("front", START)
    route.sub_packet(START + 1.0)
    with caplog.at_level(logging.INFO, logger="agent.streams.analysis"):
        assert not route.main_wanted(START + 2.0)
        assert route.main_wanted(START + 1.0 + SUB_SILENT_S + 0.1)
        assert route.main_wanted(START + 20.0)  # said once, not at every keyframe
        route.sub_packet(START + 21.0)
        assert not route.main_wanted(START + 21.5)
    assert [r.getMessage() for r in caplog.records] == [
        "camera front: the sub-stream sends no pictures; analysing the main stream's "
        "keyframes until it does",
        "camera front: analysing the sub-stream's pictures again",
    ]


def test_a_lost_sub_stream_connection_hands_over_at_once() -> None:
    route = AnalysisRoute("front", START)
    route.sub_packet(START + 10.0)
    route.sub_lost()
    assert route.main_wanted(START + 10.1)


def _picture(seed: int, width: int, height: int) -> Planes:
    rng = np.random.default_rng(seed)
    luma = rng.integers(40, 200, (height, width), dtype=np.uint8)
    chroma = np.full((height // 2, width // 2), 128, np.uint8)
    return Planes(luma, chroma, chroma.copy())


def test_health_says_which_stream_was_analysed_and_at_what_size() -> None:
    assessor = StreamAssessor(Expectations(), 0.0)
    assessor.connected(0.0, StreamFacts("h264", 1920, 1080, "rtsp"))
    assessor.packet(0.5, 50_000, True)
    facts = assessor.assess(1.0).stream
    assert facts is not None and "analysed" not in facts.as_payload()  # nothing analysed yet

    assessor.picture(1.0, _picture(1, 640, 360), SUB_STREAM)
    facts = assessor.assess(1.0).stream
    assert facts is not None
    payload = facts.as_payload()
    assert (payload["width"], payload["height"]) == (1920, 1080)  # the recorded stream
    assert payload["analysed"] == {"stream": "sub", "width": 640, "height": 360, "fallback": False}

    assessor.picture(2.0, _picture(2, 1920, 1080), PictureOrigin("main", fallback=True))
    facts = assessor.assess(2.0).stream
    assert facts is not None
    assert facts.as_payload()["analysed"] == {
        "stream": "main",
        "width": 1920,
        "height": 1080,
        "fallback": True,
    }


def test_frozen_is_not_judged_across_the_two_streams() -> None:
    """The same still picture from the main stream after the sub-stream's is no evidence
    of a frozen camera: the first picture of a stream has nothing of its own to compare."""
    assessor = StreamAssessor(Expectations(), 0.0)
    assessor.connected(0.0, StreamFacts("h264", 640, 360, "rtsp"))
    still = _picture(3, 640, 360)
    assessor.picture(1.0, still, SUB_STREAM)
    assessor.picture(2.0, still, PictureOrigin("main", fallback=True))
    assert assessor.assess(2.0).metrics.get("frame_change") is None
    assessor.picture(3.0, still, PictureOrigin("main", fallback=True))
    assert assessor.assess(3.0).metrics.get("frame_change") is not None


def test_the_main_stream_standing_in_never_becomes_the_reference() -> None:
    """References are the sub-stream's: pictures from the main stream while the sub-stream
    is away would otherwise become the view the sub-stream is judged against later."""
    saved: list[str] = []
    assessor = StreamAssessor(
        Expectations(), 0.0, warmup_samples=2, on_reference=lambda light, *_: saved.append(light)
    )
    assessor.connected(0.0, StreamFacts("h264", 1920, 1080, "rtsp"))
    for t in range(1, 6):
        assessor.picture(float(t), scene(t, (1080, 1920)), PictureOrigin("main", fallback=True))
    assert saved == [] and "reference" in assessor.judgement().waiting_for

    for t in range(6, 9):
        assessor.picture(float(t), scene(t, (360, 640)), SUB_STREAM)
    assert len(saved) == 1  # the sub-stream's view, in its lighting
    assert assessor.judgement().state == "judged"
