"""Recording mode `onvif`: a window fetched from the owner's recorder by ONVIF replay from
GStreamer's ONVIF RTSP server, copied without re-encoding, hashed as it arrives, indexed, and
exported as a package the registry's verifier accepts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.evidence.export import export_evidence
from agent.recording.index import ClockRow, SegmentIndex
from agent.recording.recorder_fetch import FetchError, fetch_window
from registry.evidence.verify import Asked, verify_package
from tests.support.replay_recorder import ReplayRecorder, record_h264

# When the emulated recorder's file begins, by its clock.
REC_START = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_h264(tmp_path_factory.mktemp("nvr") / "front.mkv", 60)


@pytest.fixture(scope="module")
def recorder(recording: Path) -> Iterator[ReplayRecorder]:
    with ReplayRecorder(recording, REC_START) as server:
        yield server


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    db = SegmentIndex(tmp_path / "footage.sqlite")
    yield db
    db.close_db()


def frames_and_span(path: Path) -> tuple[int, float]:
    """What a viewer of the copy sees: how many pictures decode, over how many seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [f.time for f in container.decode(stream) if f.time is not None]
    return len(times), max(times) - min(times)


def test_a_window_is_fetched_from_the_recorder_hashed_as_it_arrived(
    recorder: ReplayRecorder, index: SegmentIndex, tmp_path: Path
) -> None:
    start, end = REC_START + 10 * S, REC_START + 20 * S
    fetched = fetch_window(index, "front", recorder.url, start, end, tmp_path / "footage")
    # The hash taken while writing is the hash of the file on disk.
    assert fetched.sha256 == hashlib.sha256(fetched.path.read_bytes()).hexdigest()
    assert fetched.bytes == fetched.path.stat().st_size
    # Ten seconds at 10 fps, decodable, nothing from outside the window.
    frames, span = frames_and_span(fetched.path)
    assert 95 <= frames <= 101 and 9.0 <= span <= 10.0
    assert fetched.start == start and end - S <= fetched.end <= end + S
    [segment] = index.segments("front", start, end)
    assert (segment.path, segment.sha256, segment.start) == (fetched.path, fetched.sha256, start)


def test_the_fetched_window_makes_a_package_the_registry_verifies(
    recorder: ReplayRecorder, index: SegmentIndex, tmp_path: Path
) -> None:
    start, end = REC_START + 30 * S, REC_START + 35 * S
    index.add_clock_reading(ClockRow("front", start - 60 * S, 0.0, 0.2, "onvif"))
    fetch_window(index, "front", recorder.url, start, end, tmp_path / "footage")
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
    manifest = json.loads(package.manifest.read_text())
    assert manifest["clocks"]["cameras"]["front"][0]["source"] == "onvif"


def test_the_recorder_clock_offset_shifts_the_asked_range(
    recorder: ReplayRecorder, index: SegmentIndex, tmp_path: Path
) -> None:
    # The recorder's clock runs 30 s ahead of the agent's: the agent's 08:00:10 is the
    # recorder's 08:00:40, and that is the footage fetched.
    start, end = REC_START + 10 * S, REC_START + 15 * S  # the agent's clock
    shifted = fetch_window(
        index, "front", recorder.url, start, end, tmp_path / "a", clock_offset_s=30.0
    )
    assert shifted.start == start  # indexed on the agent's clock
    other = SegmentIndex(tmp_path / "other.sqlite")
    try:
        direct = fetch_window(other, "front", recorder.url, start + 30 * S, end + 30 * S, tmp_path)
    finally:
        other.close_db()
    assert shifted.sha256 == direct.sha256  # the same pictures
    assert shifted.sha256 != fetch_window(index, "back", recorder.url, start, end, tmp_path).sha256


def test_a_recorder_that_replays_another_time_is_refused(
    recording: Path, index: SegmentIndex, tmp_path: Path
) -> None:
    with (
        ReplayRecorder(recording, REC_START, mode="wrong-start") as liar,
        pytest.raises(FetchError, match=r"replays from .* not the asked"),
    ):
        fetch_window(index, "front", liar.url, REC_START, REC_START + 5 * S, tmp_path)
    assert index.segments("front") == []
    assert list((tmp_path / "fetched" / "front").iterdir()) == []


def test_footage_past_the_window_is_cut_off(
    recording: Path, index: SegmentIndex, tmp_path: Path
) -> None:
    with ReplayRecorder(recording, REC_START, mode="ignore-end") as endless:
        start, end = REC_START + 5 * S, REC_START + 10 * S
        fetched = fetch_window(index, "front", endless.url, start, end, tmp_path)
    frames, span = frames_and_span(fetched.path)
    assert frames <= 51 and span <= 5.0
    assert fetched.end <= end + S


def test_a_replay_larger_than_allowed_is_cut_off_and_left_nowhere(
    recorder: ReplayRecorder, index: SegmentIndex, tmp_path: Path
) -> None:
    with pytest.raises(FetchError, match="passed 20000 bytes"):
        fetch_window(
            index, "front", recorder.url, REC_START, REC_START + 30 * S, tmp_path,
            max_bytes=20000,
        )  # fmt: skip
    assert index.segments("front") == []
    assert list((tmp_path / "fetched" / "front").iterdir()) == []


def test_a_recorder_asking_for_digest_credentials_gets_them(
    recording: Path, index: SegmentIndex, tmp_path: Path
) -> None:
    with ReplayRecorder(recording, REC_START, user="viewer", password="s3cr:et@") as guarded:
        start, end = REC_START + 2 * S, REC_START + 4 * S
        with pytest.raises(FetchError, match="refused the credentials"):
            fetch_window(
                index, "front", guarded.url, start, end, tmp_path, username="viewer",
                password="wrong",
            )  # fmt: skip
        fetched = fetch_window(
            index, "front", guarded.url, start, end, tmp_path, username="viewer",
            password="s3cr:et@",
        )  # fmt: skip
    assert 15 <= frames_and_span(fetched.path)[0] <= 21
