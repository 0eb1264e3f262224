"""Wall-clock steps while recording: the agent's wall clock is stepped forward and back by
hours and days (tests/support/wall_clock.py), as NTP's first sync does on a Pi without a
real-time clock, while it records a real RTSP camera with a one-hour retention.

Survived means: no segment was pruned (each is younger than the retention by the agent's
own clock, whatever the wall clock says), no segment is longer than a few cuts, every step
is in the audit log, in the health (`clock.last_step`), in the gaps (`clock_step`) and
marks a segment, and no health report's `footage.newest` lies after its own `ts`.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from agent.audit import AuditLog
from agent.recording.index import SegmentIndex
from bench import harness
from bench.fault_scenarios import Outcome
from tests.support.mqtt_watch import Watcher
from tests.support.wall_clock import ShifterUnavailable, WallClockShift

NAME = "clock_step"
WHAT = "the wall clock is stepped forward and back by hours and days while recording"

SEGMENT_S = 2.0
HOUR_S = 3600.0
DAY_S = 86400.0
# (seconds after recording began, step in seconds): a day forward (NTP's first sync after
# a day off), back again (a wrong sync corrected), hours either way (a hand-set date).
FULL_STEPS = [
    (30, DAY_S),
    (60, -DAY_S),
    (90, 2 * HOUR_S),
    (120, -HOUR_S / 2),
    (150, 3 * DAY_S),
    (180, -3 * DAY_S - 1.5 * HOUR_S),
]
FULL_END_S = 240
SHORT_STEPS = [(6, DAY_S), (12, -DAY_S)]
SHORT_END_S = 18
# A segment the step fell in is cut at the next keyframe after SEGMENT_S (every 2 s).
LONGEST_S = 3 * SEGMENT_S


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run(work: Path, *, short: bool) -> Outcome:
    harness.check_system_binaries()
    try:
        shift = WallClockShift(work / "wall-shift")
        env = shift.env
    except ShifterUnavailable as exc:
        raise harness.SetupError(str(exc)) from None
    steps, end_s = (SHORT_STEPS, SHORT_END_S) if short else (FULL_STEPS, FULL_END_S)
    clock_file = work / "clock"
    clock_file.write_text("synced")
    procs = harness.Processes(work)
    try:
        port = harness.start_broker(procs, work)
        url, camera = harness.start_camera(
            procs, harness.free_port(), ["--width", "640", "--height", "360"]
        )
        config = harness.write_agent_config(
            work / "agent.yaml",
            data_dir=work / "state",
            broker_port=port,
            health_interval="2s",
            cameras=[
                {
                    "id": "front",
                    "url": url,
                    "recording": {"segment": f"{SEGMENT_S}s", "retention": "1h"},
                }
            ],
        )
        agent_env = {"CAMERA_AGENT_TEST_CLOCK_FILE": str(clock_file), **env}
        with Watcher("127.0.0.1", port, f"camreg/v1/agents/{harness.AGENT_ID}/#") as watch:
            agent = harness.start_agent(procs, config, extra_env=agent_env)
            watch.wait_for(lambda m: m.topic.endswith("/health"), timeout=30)
            began = time.monotonic()
            for at, seconds in steps:
                harness.sleep_until(began + at, procs, {"agent": agent, "camera": camera})
                shift.step(seconds)
            harness.sleep_until(began + end_s, procs, {"agent": agent, "camera": camera})
            code = procs.stop(agent)
            reports = [m.json() for m in watch.messages() if m.topic.endswith("/health")]
    finally:
        procs.close()
    return _outcome(work, steps, code, reports, procs.log("agent"))


def _outcome(
    work: Path,
    steps: list[tuple[int, float]],
    code: int,
    reports: list[dict[str, object]],
    log: str,
) -> Outcome:
    index = SegmentIndex(work / "state" / "footage.sqlite")
    segments = [s for s in index.segments("front") if s.end is not None]
    lengths = [(s.end - s.start).total_seconds() for s in segments if s.end is not None]
    gaps = [g for g in index.gaps("front") if g.reason == "clock_step"]
    marked = sum(s.clock_step for s in segments)
    index.close_db()
    audited = [e for e in AuditLog(work / "state" / "audit.jsonl").entries()]
    audited = [e for e in audited if e.event == "clock_stepped"]
    pruned = log.count(": pruned ")
    future = 0
    shown: set[float] = set()
    for body in reports:
        footage = body["footage"]
        clock = body["clock"]
        assert isinstance(footage, dict) and isinstance(clock, dict)
        newest = footage.get("newest")
        if isinstance(newest, str) and _time(newest) > _time(str(body["ts"])):
            future += 1
        last = clock.get("last_step")
        if isinstance(last, dict):
            shown.add(round(float(last["seconds"])))
    wanted = {round(seconds) for _, seconds in steps}
    survived = (
        code == 0
        and pruned == 0
        and bool(lengths)
        and max(lengths) < LONGEST_S
        and len(audited) == len(steps)
        and len(gaps) == len(steps)
        and marked == len(steps)
        and future == 0
        and wanted <= shown
    )
    said = ", ".join(f"{seconds / 3600:+.1f} h" for _, seconds in steps)
    return Outcome(
        survived,
        [
            f"steps: {len(steps)} ({said})",
            f"segments kept: {len(segments)}, pruned: {pruned} (retention 1 h)",
            f"segment lengths: {min(lengths, default=0):.2f} to {max(lengths, default=0):.2f} s "
            f"(segment {SEGMENT_S:.0f} s, cut at keyframes)",
            f"flagged: {len(audited)} clock_stepped audit entries, {len(gaps)} clock_step gaps, "
            f"{marked} marked segments, {len(shown & wanted)} of {len(wanted)} steps seen in "
            "health clock.last_step",
            f"health reports: {len(reports)}, with footage.newest after their ts: {future}",
            f"agent exit: {code}",
        ],
    )
