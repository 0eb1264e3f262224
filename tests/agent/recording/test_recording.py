"""Recording end to end: the agent as a process, a real RTSP camera, real segment files."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import av

from agent.recording.index import SegmentIndex, sha256_file
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.rtsp import RtspCamera
from tests.support.segment_check import indexed_segments

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
SEGMENT_S = 3


def config_for(tmp_path: Path, broker: Broker, camera: RtspCamera, **extra: Any) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": camera.url,
                "analysis_interval": "2s",
                "recording": {"mode": "record", "segment": f"{SEGMENT_S}s", "retention": "7d"},
            }
        ],
        **extra,
    )


def index_of(tmp_path: Path) -> SegmentIndex:
    return SegmentIndex(tmp_path / "state" / "footage.sqlite")


def segment_rows(tmp_path: Path) -> int:
    """Segments the running agent has begun."""
    return indexed_segments(tmp_path / "state" / "footage.sqlite", "camera = 'front'")


def wait_for_segments(
    tmp_path: Path, more_than: int, at_least_s: float, agent: AgentProcess
) -> int:
    """Wait `at_least_s`, and on a loaded machine longer (up to 30 s more), until the
    agent has begun more than `more_than` segments."""
    time.sleep(at_least_s)
    return eventually(
        lambda: (n := segment_rows(tmp_path)) > more_than and n,
        f"a segment after the first {more_than}",
        30,
        context=lambda: agent.log,
    )


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        rate = float(stream.average_rate or stream.guessed_rate or 15)
    return frames / rate


def test_segments_are_playable_hashed_and_add_up_to_the_time_recorded(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    config = config_for(tmp_path, broker, rtsp_camera)
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        time.sleep(14)
        # The footage object is refreshed with each pruning pass (every 10 s): on a busy
        # machine the first report that carries it can come a little after the 14 s.
        footage = watch.wait_for(
            lambda m: m.json()["footage"]["oldest"] is not None, timeout=30
        ).json()["footage"]
        assert agent.terminate()[0] == 0
    index = index_of(tmp_path)
    segments = index.segments("front")
    assert len(segments) >= 3, segments
    assert all(s.state == "closed" for s in segments), segments
    for segment in segments:
        assert sha256_file(segment.path) == (segment.bytes, segment.sha256)
        assert segment.end is not None
        span = (segment.end - segment.start).total_seconds()
        assert abs(decoded_seconds(segment.path) - span) < 1.0, segment
    recorded = sum((s.end - s.start).total_seconds() for s in segments if s.end)
    wall = (segments[-1].end - segments[0].start).total_seconds()  # type: ignore[operator]
    assert abs(wall - recorded) <= SEGMENT_S, (wall, recorded)
    assert footage["oldest"] is not None and footage["bytes"] > 0


def test_kill_9_leaves_a_consistent_index_and_recording_goes_on(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    config = config_for(tmp_path, broker, rtsp_camera)
    first = AgentProcess(config).start()
    agents.append(first)
    # Footage before the kill (under load the first segment can take longer than 8 s).
    wait_for_segments(tmp_path, 0, 8, first)
    first.kill()
    before = segment_rows(tmp_path)
    second = AgentProcess(config).start()
    agents.append(second)
    wait_for_segments(tmp_path, before, 9, second)
    assert second.terminate()[0] == 0
    index = index_of(tmp_path)
    segments = index.segments("front")
    states = [s.state for s in segments]
    assert "writing" not in states
    # the segment being written at the kill: kept up to the kill, or nothing had reached disk
    assert states.count("partial") + states.count("missing") <= 1, states
    for segment in segments:
        if segment.state == "missing":
            assert not segment.path.exists() and segment.bytes == 0
        else:
            assert sha256_file(segment.path) == (segment.bytes, segment.sha256)
            assert decoded_seconds(segment.path) > 0
    gaps = index.gaps("front")
    assert [g.reason for g in gaps] == ["agent_stopped"], gaps
    after = [s for s in segments if s.start >= gaps[0].end - timedelta(seconds=0.01)]
    assert after, "recording did not continue after the restart"


def test_a_camera_drop_is_a_gap_row_and_recording_resumes(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    config = config_for(tmp_path, broker, rtsp_camera)
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        time.sleep(6)  # recording before the drop
        rtsp_camera.stop()
        time.sleep(5)  # the drop: its gap is measured below
        rtsp_camera.start()
        watch.wait_for(lambda m: m.json()["status"] == "ok", timeout=20, after=time.monotonic())
        time.sleep(5)  # recording after it
        assert agent.terminate()[0] == 0
    index = index_of(tmp_path)
    [gap] = index.gaps("front")
    assert gap.reason == "no_signal"
    assert 4 <= (gap.end - gap.start).total_seconds() <= 20
    assert any(s.start >= gap.end for s in index.segments("front"))


def test_a_segment_changed_after_closing_is_detected(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    config = config_for(tmp_path, broker, rtsp_camera)
    agent = AgentProcess(config).start()
    agents.append(agent)
    # Two closed segments are needed (8 s here); on a busy machine the camera can take
    # longer to come up.
    db = tmp_path / "state" / "footage.sqlite"
    eventually(
        lambda: indexed_segments(db, "state = 'closed'") >= 2,
        "two closed segments",
        38,
        context=lambda: agent.log,
    )
    assert agent.terminate()[0] == 0
    index = index_of(tmp_path)
    first = index.segments("front")[0]
    data = bytearray(first.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.path.write_bytes(bytes(data))
    assert index.verify(first.id, sha256_file) == "altered"
    assert index.verify(index.segments("front")[1].id, sha256_file) == "ok"


def test_the_disk_budget_prunes_the_oldest_unheld_footage_and_reports_storage_low(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    # 1 Mbit/s: a 3 s segment is about 0.4 MB, so 1.5 MB holds three or four of them
    config = config_for(tmp_path, broker, rtsp_camera, storage={"max_bytes": "1.5MB"})
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        db = tmp_path / "state" / "footage.sqlite"
        eventually(
            lambda: indexed_segments(db, "state = 'closed'") >= 1,
            "a closed segment",
            30,
            context=lambda: agent.log,
        )
        index = index_of(tmp_path)
        first = index.segments("front")[0]
        held = index.hold(
            "front",
            first.start,
            first.start + timedelta(seconds=1),
            first.start + timedelta(days=1),
            "test: a request for this minute",
        )
        low = watch.wait_for(lambda m: "storage_low" in m.json()["problems"], timeout=40)
        time.sleep(SEGMENT_S + 1)  # recording goes on
        assert agent.terminate()[0] == 0
    assert low.json()["status"] == "degraded"
    segments = index.segments("front")
    assert segments[0].id == first.id and first.path.exists()  # held: untouched
    assert segments[1].id > first.id + 1  # the oldest unheld ones were pruned
    kept = [s for s in segments if s.id != first.id and s.state in ("closed", "partial")]
    assert sum(s.bytes for s in kept) <= 1_500_000
    assert segments[-1].start > first.start + timedelta(seconds=3 * SEGMENT_S)
    assert held > 0
