"""The health rules of the first slice, driven with explicit times (no sleeping)."""

from __future__ import annotations

import numpy as np
import pytest

from agent.quality.assess import (
    CLEAR_SAMPLES,
    RAISE_SAMPLES,
    SIGNAL_TIMEOUT_S,
    WARMUP_SAMPLES,
    Debouncer,
    Expectations,
    StreamAssessor,
    StreamFacts,
    status_of,
)
from agent.quality.metrics import Planes, Prepared

FACTS = StreamFacts(codec="h264", width=1280, height=720, source="rtsp")


def feed(assessor: StreamAssessor, start: float, seconds: float, fps: float) -> float:
    """Packets at `fps` for `seconds`, a keyframe every 2 s; returns the last packet time."""
    t = start
    n = 0
    while t < start + seconds:
        assessor.packet(t, 4000, keyframe=n % int(2 * fps) == 0)
        n += 1
        t = start + n / fps
    return t - 1 / fps


def scene(seed: int, shape: tuple[int, int] = (720, 1280), noise: float = 3.0) -> Planes:
    """A textured static view (same layout for every seed) with fresh sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 110 + 60 * np.sign(np.sin(xx / 23.0) * np.sin(yy / 31.0)) + 20 * np.sin(xx / 7.0)
    luma = np.clip(base + rng.normal(0, noise, shape), 0, 255).astype(np.uint8)
    chroma = np.full((shape[0] // 2, shape[1] // 2), 128, np.uint8)
    return Planes(luma, chroma, chroma)


def covered(shape: tuple[int, int] = (720, 1280)) -> Planes:
    return Planes(np.full(shape, 12, np.uint8))


@pytest.mark.parametrize(
    ("problems", "status"),
    [
        ((), "ok"),
        (("low_fps",), "degraded"),
        (("low_resolution", "low_fps"), "degraded"),
        (("frozen",), "failed"),
        (("covered", "low_fps"), "failed"),
        (("no_signal",), "offline"),
        (("no_signal", "frozen"), "offline"),
    ],
)
def test_status_follows_the_worst_problem(problems: tuple[str, ...], status: str) -> None:
    assert status_of(problems) == status


def test_a_healthy_stream_is_ok_with_its_measured_facts() -> None:
    assessor = StreamAssessor(Expectations(min_fps=10, min_width=1280), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 12, fps=15)
    for i in range(4):
        assessor.picture(i * 3.0, scene(i))
    health = assessor.assess(end)
    assert health.status == "ok", health
    assert health.stream is not None
    assert health.stream.fps == pytest.approx(15, abs=0.2)
    assert health.stream.bitrate_kbps == pytest.approx(4000 * 8 * 15 / 1000, rel=0.05)
    assert health.metrics["keyframe_interval_s"] == pytest.approx(2.0, abs=0.01)


def test_no_packets_for_longer_than_the_timeout_is_no_signal() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 6, fps=15)
    assert assessor.assess(end + SIGNAL_TIMEOUT_S - 0.5).status == "ok"
    late = assessor.assess(end + SIGNAL_TIMEOUT_S + 0.5)
    assert (late.status, late.problems) == ("offline", ("no_signal",))


def test_a_dropped_connection_is_no_signal_at_once_and_a_new_one_clears_it() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 6, fps=15)
    assessor.disconnected(end)
    assert assessor.assess(end + 0.1).problems == ("no_signal",)
    assessor.connected(end + 3, FACTS)
    end = feed(assessor, end + 3, 1, fps=15)
    assert assessor.assess(end).status == "ok"
    assert assessor.assess(end).metrics["reconnects_1h"] == 1


def test_never_connected_is_reported_offline_only_after_the_grace_time() -> None:
    assessor = StreamAssessor(Expectations(), started=100.0)
    assert not assessor.settled(101.0)
    assert assessor.settled(100.0 + SIGNAL_TIMEOUT_S)
    assert assessor.assess(100.0 + SIGNAL_TIMEOUT_S).status == "offline"


def test_low_fps_against_the_expectation_once_measured() -> None:
    assessor = StreamAssessor(Expectations(min_fps=10), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 2, fps=5)
    assert "low_fps" not in assessor.assess(end).problems  # too little seen to judge
    end = feed(assessor, end + 0.2, 10, fps=5)
    assert assessor.assess(end).problems == ("low_fps",)


def test_low_resolution_against_the_expectation() -> None:
    assessor = StreamAssessor(Expectations(min_width=1920), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 1, fps=15)
    assert assessor.assess(end).problems == ("low_resolution",)


def test_identical_pictures_become_frozen_and_clear_after_a_while() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 30, fps=15)
    still = scene(1)
    assessor.picture(0.0, still)
    for i in range(1, RAISE_SAMPLES + 1):
        assert "frozen" not in assessor.assess(end).problems
        assessor.picture(float(i), still)
    health = assessor.assess(end)
    assert (health.status, health.problems) == ("failed", ("frozen",))
    assert health.metrics["frame_change"] == 0.0
    for i in range(CLEAR_SAMPLES):
        assert assessor.assess(end).status == "failed"
        assessor.picture(10.0 + i, scene(10 + i))
    assert assessor.assess(end).status == "ok"


def test_a_static_scene_with_live_sensor_noise_is_not_frozen() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 30, fps=15)
    for i in range(10):
        assessor.picture(float(i), scene(i, noise=2.0))
    health = assessor.assess(end)
    assert "frozen" not in health.problems
    assert health.metrics["frame_change"] is not None
    assert health.metrics["frame_change"] > 1.0


def test_a_covered_lens_is_failed_within_two_samples() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 30, fps=15)
    assessor.picture(0.0, scene(0))
    assessor.picture(1.0, covered())
    assert assessor.assess(end).status == "ok"
    assessor.picture(2.0, covered())
    assert assessor.assess(end).problems == ("covered",)


@pytest.mark.parametrize(
    ("samples", "active"),
    [
        (["x"], set()),
        (["x", "x"], {"x"}),
        (["x", "", "x"], set()),
        (["x", "x", "", ""], {"x"}),
        (["x", "x", "", "", ""], set()),
        (["x", "x", "", "x", "", "", ""], set()),
        (["x", "x", "", "", "x", ""], {"x"}),
    ],
)
def test_problems_persist_before_they_raise_and_linger_before_they_clear(
    samples: list[str], active: set[str]
) -> None:
    debounce = Debouncer()
    for sample in samples:
        debounce.update(frozenset({sample} - {""}))
    assert debounce.active == active


def test_the_reference_is_taken_after_a_healthy_warm_up() -> None:
    taken: list[tuple[str, Prepared]] = []
    assessor = StreamAssessor(
        Expectations(),
        started=0.0,
        on_reference=lambda lighting, p, _reference: taken.append((lighting, p)),
    )
    assessor.connected(0.0, FACTS)
    feed(assessor, 0.0, 30, fps=15)
    assessor.picture(0.0, covered())
    for i in range(WARMUP_SAMPLES):
        assessor.picture(float(i + 1), scene(i))
        assert assessor.has_reference == (i == WARMUP_SAMPLES - 1)
    assert [lighting for lighting, _ in taken] == ["infrared"]  # a grey picture
    assessor.reset_references()  # `reference reset`: a new warm-up
    assert not assessor.has_reference


def test_packet_gaps_count_as_stalls() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 3, fps=15)
    end = feed(assessor, end + 3.0, 3, fps=15)
    assert assessor.assess(end).metrics["stalls_1h"] == 1
