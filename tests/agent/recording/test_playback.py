"""Recording mode `playback`: a window played back from the owner's recorder by the
Hikvision and the Dahua playback URL (GStreamer's RTSP server emulating both), copied
without re-encoding, hashed as it arrives, indexed, and exported as a package the
registry's verifier accepts; a recorder that ignores the start is refused, one that never
ends is cut."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import CameraConfig
from agent.evidence.export import export_evidence
from agent.recording.index import SegmentIndex
from agent.recording.playback import PlaybackSource
from agent.recording.recorder_fetch import FetchError
from registry.evidence.verify import Asked, verify_package
from tests.support.playback_recorder import PlaybackRecorder
from tests.support.replay_recorder import record_h264

REC_START = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_h264(tmp_path_factory.mktemp("nvr") / "front.mkv", 40)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    db = SegmentIndex(tmp_path / "footage.sqlite")
    yield db
    db.close_db()


def source(
    recorder: PlaybackRecorder, index: SegmentIndex, root: Path, **rec: object
) -> PlaybackSource:
    camera = CameraConfig.model_validate(
        {
            "id": "front",
            "url": "rtsp://192.0.2.1/live",
            "recording": {"mode": "playback", "recorder": recorder.url, "channel": 1, **rec},
        }
    )
    return PlaybackSource(camera, index, root)


def frames_and_span(path: Path) -> tuple[int, float]:
    """What a viewer of the copy sees: how many pictures decode, over how many seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [f.time for f in container.decode(stream) if f.time is not None]
    return len(times), max(times) - min(times)


@pytest.mark.parametrize(("maker", "timezone"), [("hikvision", "UTC"), ("dahua", "Europe/Berlin")])
def test_a_window_played_back_by_the_makers_url_is_packed_and_verifies(
    recording: Path, index: SegmentIndex, tmp_path: Path, maker: str, timezone: str
) -> None:
    start, end = REC_START + 10 * S, REC_START + 15 * S
    with PlaybackRecorder(recording, REC_START, timezone=timezone) as recorder:
        nvr = source(recorder, index, tmp_path / "footage", maker=maker, timezone=timezone)
        nvr.fetch(start, end, threading.Event())
    [segment] = index.segments("front", start, end)
    assert segment.sha256 == hashlib.sha256(segment.path.read_bytes()).hexdigest()
    frames, span = frames_and_span(segment.path)
    assert 45 <= frames <= 51 and 4.0 <= span <= 5.0
    assert segment.start == start and segment.end is not None and segment.end >= end - S
    assert nvr.report(receiving=True) == (None, ())  # the recorder's holdings are not known
    key = Ed25519PrivateKey.generate()
    package = export_evidence(
        index, "shop-42", ["front"], start, end, tmp_path / "pkg", request_id="req-1",
        case="2026-77", key=key,
    )  # fmt: skip
    verdict = verify_package(
        package.directory,
        key.public_key(),
        request_id="req-1",
        agent="shop-42",
        asked=Asked("2026-77", ("front",), start, end),
    )
    assert verdict.verified, verdict.findings


def test_a_recorder_that_ignores_the_start_is_refused(
    recording: Path, index: SegmentIndex, tmp_path: Path
) -> None:
    start = REC_START + 2 * 3600 * S  # it sends the file's start: two hours before
    with (
        PlaybackRecorder(recording, REC_START, mode="ignore-start") as liar,
        pytest.raises(FetchError, match=r"plays back from .* not the asked .* ignore"),
    ):
        source(liar, index, tmp_path, maker="hikvision").fetch(
            start, start + 8 * S, threading.Event()
        )
    assert index.segments("front") == []
    assert list((tmp_path / "fetched" / "front").iterdir()) == []


def test_a_recorder_that_never_ends_is_cut_at_the_window(
    recording: Path, index: SegmentIndex, tmp_path: Path
) -> None:
    start, end = REC_START + 5 * S, REC_START + 9 * S
    with PlaybackRecorder(recording, REC_START, mode="ignore-end") as endless:
        source(endless, index, tmp_path, maker="dahua").fetch(start, end, threading.Event())
    [segment] = index.segments("front", start, end)
    frames, span = frames_and_span(segment.path)
    assert frames <= 41 and span <= 4.0
    assert segment.end is not None and segment.end <= end + S
