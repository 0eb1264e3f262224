"""Cameras with odd packet timestamps (issue 15.4): every pattern of
tests/support/rtp_camera.py (parameter sets out of band, repeated and backwards DTS,
B-frames, RTP timestamp wrap, a restarting clock, a resolution change...) served over RTSP
to one agent, one camera per pattern, for minutes. Survived: every camera kept being
recorded (no recording_stopped, no hole between segments after the first, no muxer
refusal), and every segment decodes with timestamps that only rise."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from agent.recording.index import SegmentIndex
from bench import harness
from bench.fault_scenarios import Outcome
from tests.support.mqtt_watch import Watcher
from tests.support.rtp_camera import PATTERNS, RtpCamera
from tests.support.segment_check import segment_facts

NAME = "odd_streams"
WHAT = (
    "one camera per odd-timestamp pattern (out-of-band SPS/PPS, repeated/backwards DTS, "
    "B-frames, wrap, restarting clock, resolution change) recorded by one agent"
)
FULL_S, SHORT_S = 300.0, 14.0
FULL_SEGMENT_S, SHORT_SEGMENT_S = 10, 2
# A hole between two consecutive segments longer than this is footage lost (segments
# start where the previous one ended; a reconnect's gap is longer).
HOLE_S = 1.0


def run(work: Path, *, short: bool) -> Outcome:
    harness.check_system_binaries()
    seconds = SHORT_S if short else FULL_S
    segment_s = SHORT_SEGMENT_S if short else FULL_SEGMENT_S
    procs = harness.Processes(work)
    camera = RtpCamera().start()
    try:
        port = harness.start_broker(procs, work)
        config = harness.write_agent_config(
            work / "config.yaml",
            data_dir=work / "state",
            broker_port=port,
            health_interval="2s",
            cameras=[
                {
                    "id": pattern,
                    "url": camera.url(pattern),
                    "analysis_interval": "10s",
                    "expect": {"min_width": 160},
                    "recording": {"mode": "record", "segment": f"{segment_s}s"},
                }
                for pattern in PATTERNS
            ],
        )
        health = f"camreg/v1/agents/{harness.AGENT_ID}/cameras/+/health"
        with Watcher("127.0.0.1", port, health) as watch:
            agent = harness.start_agent(procs, config)
            harness.sleep_until(time.monotonic() + seconds, procs, {"agent": agent})
            reports = [m.json() for m in watch.messages()]
            procs.stop(agent)
        return _judge(work, reports, seconds, segment_s, camera.sessions)
    finally:
        camera.close()
        procs.close()


def _judge(
    work: Path,
    reports: list[dict[str, object]],
    seconds: float,
    segment_s: int,
    sessions: dict[str, int],
) -> Outcome:
    index = SegmentIndex(work / "state" / "footage.sqlite")
    facts: list[str] = []
    survived = True
    # Keyframes come every second and the first segment starts at the second one.
    expected = int((seconds - 4) // segment_s)
    for pattern in PATTERNS:
        mine = [r for r in reports if r.get("camera") == pattern]
        stopped = sum("recording_stopped" in r["problems"] for r in mine)  # type: ignore[operator]
        stream = mine[-1].get("stream") if mine else None
        packets = stream.get("packets") if isinstance(stream, dict) else None
        segments = index.segments(pattern)
        holes = [
            (b.start - a.end).total_seconds()
            for a, b in itertools.pairwise(segments)
            if a.end is not None
        ]
        gaps = sum(1 for h in holes if h > HOLE_S)
        bad = 0
        for segment in segments:
            read = segment_facts(segment.path)
            bad += not read.ordered or read.pictures == 0 or segment.state != "closed"
        ok = (
            len(segments) >= expected
            and not stopped
            and not gaps
            and not bad
            and isinstance(packets, dict)
            and packets.get("mux_errors") == 0
            and sessions.get(pattern) == 1
        )
        survived &= ok
        facts.append(
            f"{pattern}: {len(segments)} segments (>= {expected} expected), {gaps} holes "
            f"> {HOLE_S:.0f} s, {bad} unplayable or unordered, recording_stopped in {stopped} "
            f"reports, reconnects {max(0, sessions.get(pattern, 0) - 1)}, packets {packets}"
            + ("" if ok else "  <-- FAILED")
        )
    return Outcome(survived, facts)
