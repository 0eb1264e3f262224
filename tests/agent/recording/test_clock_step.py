"""Wall-clock steps while recording: the agent as a process with its wall clock shifted
(tests/support/wall_clock.py), a real RTSP camera and mosquitto, real segment files."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.audit import AuditLog
from agent.recording.index import Segment, SegmentIndex
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera
from tests.support.wall_clock import WallClockShift

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
AUDIT = "camreg/v1/agents/shop-42/audit"
DAY_S = 86400.0
# Segments are cut at keyframes, which the simulated camera sends every 2 s.
LONGEST_SEGMENT_S = 6.0
INDEX_POLL_S = 0.2  # the agent writes the index meanwhile: read it now and then


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _closed(index: SegmentIndex) -> list[Segment]:
    return [s for s in index.segments("front") if s.state == "closed"]


def _last_step(message: Received) -> float | None:
    step = message.json()["clock"].get("last_step")
    return None if step is None else float(step["seconds"])


def test_a_day_forward_prunes_nothing_young_is_flagged_and_stepping_back_leaves_no_future(
    tmp_path: Path, broker: Broker, rtsp_camera: RtspCamera, agents: list[AgentProcess]
) -> None:
    clock_file = tmp_path / "clock"
    clock_file.write_text("synced")
    shift = WallClockShift(tmp_path / "wall-shift")
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": rtsp_camera.url,
                "analysis_interval": "2s",
                # An hour: every segment is older than that by the wall clock after a
                # one-day step, and none is by the agent's own clock.
                "recording": {"segment": "1s", "retention": "1h"},
            }
        ],
    )
    # A segment of an earlier boot, two days old by a synchronised clock: still pruned.
    data = tmp_path / "state"
    index = SegmentIndex(data / "footage.sqlite")
    old_file = tmp_path / "footage" / "front" / "old.ts"
    old_file.parent.mkdir(parents=True)
    old_file.write_bytes(b"\0" * 188)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    old = index.begin("front", old_file, two_days_ago)
    index.close(old, two_days_ago + timedelta(seconds=1), 188, "0" * 64, boot=("earlier", 10**6))

    env = {"CAMERA_AGENT_TEST_CLOCK_FILE": str(clock_file), **shift.env}
    with Watcher.for_broker(broker, "camreg/v1/agents/shop-42/#") as watch:
        agent = AgentProcess(config, env=env).start()
        agents.append(agent)
        eventually(lambda: len(_closed(index)) >= 3, "three segments recorded", 30, INDEX_POLL_S)
        assert not old_file.exists(), "an earlier boot's two-day-old segment was not pruned"
        before = {s.id: s.path for s in _closed(index)}

        stepped_at = time.monotonic()
        shift.step(DAY_S)
        # The health shows the step; the summary it carries was read after it.
        forward = watch.wait_for(
            lambda m: m.topic == HEALTH and (_last_step(m) or 0) > DAY_S - 5,
            timeout=15,
            after=stepped_at,
        ).json()
        assert abs(forward["clock"]["last_step"]["seconds"] - DAY_S) < 5, forward["clock"]
        # A pruning pass ran on the new clock before that report was sent.
        assert set(before) <= {s.id for s in index.segments("front")}, (
            "segments younger than the retention were pruned"
        )
        assert all(path.exists() for path in before.values())
        # ...and a segment on the new clock closes after the one the step fell in.
        new_clock = datetime.now(UTC) + timedelta(seconds=DAY_S - 60)
        eventually(
            lambda: any(s.start > new_clock for s in _closed(index)),
            "a segment recorded on the new clock",
            15,
            INDEX_POLL_S,
        )
        assert any(g.reason == "clock_step" for g in index.gaps("front"))

        stepped_back_at = time.monotonic()
        shift.step(-DAY_S)
        back = watch.wait_for(
            lambda m: m.topic == HEALTH and (_last_step(m) or 0) < -(DAY_S - 5),
            timeout=15,
            after=stepped_back_at,
        )
        # Every report after the step back: the footage ends no later than the report.
        reports = [back] + [
            m for m in watch.messages(HEALTH) if m.at > back.at and _last_step(m) is not None
        ]
        for report in reports:
            body = report.json()
            assert _time(body["footage"]["newest"]) <= _time(body["ts"]), body["footage"]
        eventually(
            lambda: sum(g.reason == "clock_step" for g in index.gaps("front")) >= 2,
            "a second clock_step gap",
            15,
            INDEX_POLL_S,
        )
        audit_sent = [m.json() for m in watch.messages(AUDIT)]
        code, _ = agent.terminate()
    assert code == 0, agent.log

    segments = _closed(index)
    assert set(before) <= {s.id for s in segments}
    # No segment is as long as the step: lengths are the monotonic clock's.
    for segment in segments:
        assert segment.end is not None
        assert 0 <= (segment.end - segment.start).total_seconds() < LONGEST_SEGMENT_S, segment
    marked = [s for s in segments if s.clock_step]
    assert len(marked) == 2, segments
    steps = [g for g in index.gaps("front") if g.reason == "clock_step"]
    assert len(steps) == 2, index.gaps("front")
    assert abs((steps[0].end - steps[0].start).total_seconds() - DAY_S) < LONGEST_SEGMENT_S
    back_gaps = [g for g in steps if g.start == g.end]
    assert len(back_gaps) == 1, steps  # a step back misses no time: a seam of zero length

    log = AuditLog(data / "audit.jsonl")
    assert log.verify().intact
    entries = [e for e in log.entries() if e.event == "clock_stepped"]
    assert [round(e.detail["step_ms"] / 1000 / DAY_S) for e in entries] == [1, -1], entries
    assert all(e.request_id is None and e.detail["synced"] is True for e in entries)
    assert [json.loads(e.line())["hash"] for e in entries] == [
        m["hash"] for m in audit_sent if m["event"] == "clock_stepped"
    ]
    assert "the system clock was stepped by +86400" in agent.log
