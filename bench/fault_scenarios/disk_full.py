"""A full disk, again and again: filled by footage alone and from outside, a restart on it
full to the last byte, then a footage disk of its own whose footage is all held (nothing the
agent may prune).

Real parts: tmpfs disks (mounted here, so root), mosquitto, the simulated RTSP camera at
8 Mbit/s and the agent as a process. A persistent-session subscriber counts health reports
by seq. What is measured: reports lost or duplicated (by seq), whether the agent ever
exited, recording gaps (the index's gap rows) and how long recording takes to resume once
space returns on a footage disk the agent could not prune.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _pytest.outcomes import Failed

from agent.audit import AUDIT_FILE, AuditLog
from agent.recording.index import SegmentIndex
from agent.space_reserve import RESERVE_BYTES
from bench import harness
from bench.fault_scenarios import Outcome
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.rtsp import RtspCamera
from tests.support.seq_counter import SeqCounter
from tests.support.tmpfs import fill, tmpfs

NAME = "disk_full"
WHAT = (
    "fills the disk by footage alone and from outside, repeatedly, restarts the agent on it "
    "full, then fills a footage disk of its own whose footage is all held"
)

MIB = 1024 * 1024


def _health(agent_id: str) -> str:
    return f"camreg/v1/agents/{agent_id}/cameras/front/health"


def _requests(agent_id: str) -> str:
    return f"camreg/v1/agents/{agent_id}/requests"


# One agent id per part, so that one part's retained report does not count in the next.
SAME_DISK_AGENT, OWN_DISK_AGENT = "bench-same-disk", "bench-own-disk"
BITRATE_KBPS = 8000
# Recording is back within this long after space returns: a keyframe interval of the
# camera (2 s) plus the pruning pass and a health interval.
TARGET_RESUME_S = 10.0


def _config(
    work: Path, broker: Broker, camera: RtspCamera, agent_id: str, state: Path, footage: Path
) -> Path:
    config = write_config(
        work / f"{agent_id}.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": camera.url,
                "analysis_interval": "2s",
                "recording": {"mode": "record", "segment": "2s", "retention": "7d"},
            }
        ],
        agent={"id": agent_id, "data_dir": str(state)},
        registry={"health_interval": "1s"},
        storage={"path": str(footage), "min_free_bytes": 0},
    )
    return config


def _running(agent: AgentProcess, facts: list[str], what: str) -> bool:
    assert agent.proc is not None
    if agent.proc.poll() is None:
        return True
    facts.append(f"the agent exited with {agent.proc.returncode} {what}")
    return False


def _gaps(state: Path) -> tuple[int, float, set[str]]:
    index = SegmentIndex(state / "footage.sqlite")
    try:
        gaps = index.gaps("front")
    finally:
        index.close_db()
    seconds = sum((g.end - g.start).total_seconds() for g in gaps)
    return len(gaps), seconds, {g.reason for g in gaps}


def _newest_start(state: Path) -> datetime | None:
    index = SegmentIndex(state / "footage.sqlite")
    try:
        starts = [s.start for s in index.segments("front") if s.state in ("closed", "partial")]
    finally:
        index.close_db()
    return max(starts, default=None)


def _hold_everything(state: Path) -> int:
    """A hold over all the camera's footage, as a preservation request makes (written into
    the running agent's index, which takes a second writer)."""
    index = SegmentIndex(state / "footage.sqlite")
    try:
        now = datetime.now(UTC)
        day = timedelta(days=1)
        return index.hold("front", now - day, now + day, now + day, "bench: held footage")
    finally:
        index.close_db()


def _release(state: Path, hold: int) -> None:
    index = SegmentIndex(state / "footage.sqlite")
    try:
        index.release(hold)
    finally:
        index.close_db()


def _same_disk(work: Path, broker: Broker, camera: RtspCamera, short: bool) -> Outcome:
    """Footage and state on one tmpfs: footage fills it, then another program does, over and
    over; then a restart on the disk full to the last byte."""
    facts: list[str] = []
    cycles, hold_s = (1, 4.0) if short else (8, 20.0)
    with tmpfs(work / "disk", (64 if short else 160) * MIB) as disk:
        state = disk / "state"
        fill(disk / "ballast-0", leave=RESERVE_BYTES + (8 if short else 40) * MIB)
        config = _config(work, broker, camera, SAME_DISK_AGENT, state, disk / "footage")
        junk = 0
        restart = "same disk: no restart"
        requests = _requests(SAME_DISK_AGENT)
        with (
            SeqCounter(broker, _health(SAME_DISK_AGENT)) as counter,
            Watcher.for_broker(broker, requests) as pub,
        ):
            agent = AgentProcess(config).start()
            survived = True
            try:
                counter.wait_for_seq("front", 3, timeout=30)
                # Footage alone reaches the ballast's edge first.
                time.sleep((8 if short else 40) * MIB / (BITRATE_KBPS * 125) + 2)
                for cycle in range(cycles):
                    ballast = disk / f"ballast-{cycle + 1}"
                    fill(ballast)
                    # A malformed request while the disk is full: its audit entry must stay.
                    junk += 1
                    pub.publish(requests, b"junk-while-full-%d" % junk)
                    time.sleep(hold_s)
                    ballast.unlink()
                    time.sleep(hold_s / 2)
                    survived &= _running(agent, facts, f"in cycle {cycle + 1}")
                code, _ = agent.terminate()
                time.sleep(1.0)  # its last reports reach the subscriber
                stopped_at = counter.highest("front")
                fill(disk / "ballast-restart")
                restarted = AgentProcess(config).start()
                began = time.monotonic()
                counter.wait_for_seq("front", stopped_at + 1, timeout=30)
                restart = (
                    f"same disk, restarted on it full to the last byte: first report after "
                    f"{time.monotonic() - began:.1f} s (exit code of the stop before: {code})"
                )
                time.sleep(hold_s)
                survived &= _running(restarted, facts, "after the restart on a full disk")
                restarted.terminate()
            except (AssertionError, Failed) as exc:
                facts.append(f"same disk: {exc}")
                survived = False
            finally:
                agent.close()
            lost, dup = counter.missing("front"), counter.duplicates("front")
        # Reading the index makes its WAL files again: room for them.
        for ballast in disk.glob("ballast-*"):
            ballast.unlink()
        count, seconds, reasons = _gaps(state)
        audit = AuditLog(state / AUDIT_FILE)
        rejected = sum(1 for e in audit.entries() if e.event == "rejected")
        verified = audit.verify().intact and rejected == junk
    facts.append(
        f"same disk, {cycles} fill(s) from outside of {hold_s:.0f} s after footage filled it: "
        f"{counter.highest('front')} health reports, {len(lost)} lost, {dup} duplicated"
    )
    facts.append(
        f"same disk: {count} recording gap(s), {seconds:.1f} s in all "
        f"({', '.join(sorted(reasons)) or 'none'}); audit entries made while full: "
        f"{rejected} of {junk} kept, chain intact: {audit.verify().intact}"
    )
    facts.append(restart)
    return Outcome(survived and not lost and not dup and verified, facts)


def _own_footage_disk(work: Path, broker: Broker, camera: RtspCamera, short: bool) -> Outcome:
    """Footage on a small tmpfs of its own that another program fills completely: nothing
    to prune, so `storage_failed`; recording must resume soon after the space returns."""
    facts: list[str] = []
    cycles, hold_s = (1, 4.0) if short else (6, 20.0)
    resumes: list[float] = []
    with (
        tmpfs(work / "state-disk", 32 * MIB) as state_disk,
        tmpfs(work / "footage-disk", 24 * MIB) as footage_disk,
    ):
        state = state_disk / "state"
        config = _config(work, broker, camera, OWN_DISK_AGENT, state, footage_disk / "footage")
        with SeqCounter(broker, _health(OWN_DISK_AGENT)) as counter:
            agent = AgentProcess(config).start()
            survived = True
            try:
                counter.wait_for_seq("front", 3, timeout=30)
                for cycle in range(cycles):
                    # Footage held for a request: the agent may prune none of it.
                    hold = _hold_everything(state)
                    ballast = footage_disk / f"ballast-{cycle}"
                    fill(ballast)
                    time.sleep(hold_s)
                    ballast.unlink()
                    freed = datetime.now(UTC)
                    deadline = time.monotonic() + 3 * TARGET_RESUME_S
                    while time.monotonic() < deadline:
                        newest = _newest_start(state)
                        if newest is not None and newest > freed:
                            resumes.append((newest - freed).total_seconds())
                            break
                        time.sleep(0.5)
                    else:
                        facts.append(f"own footage disk: no recording after cycle {cycle + 1}")
                        survived = False
                    _release(state, hold)
                    survived &= _running(agent, facts, f"in cycle {cycle + 1}")
                agent.terminate()
            except (AssertionError, Failed) as exc:
                facts.append(f"own footage disk: {exc}")
                survived = False
            finally:
                agent.close()
            lost, dup = counter.missing("front"), counter.duplicates("front")
        count, seconds, reasons = _gaps(state)
    worst = max(resumes, default=float("nan"))
    facts.append(
        f"own footage disk, {cycles} fill(s) of {hold_s:.0f} s, its footage all held: "
        f"{counter.highest('front')} health reports, {len(lost)} lost, {dup} duplicated; "
        f"recording resumed {len(resumes)} time(s), at most {worst:.1f} s after space returned "
        f"(target {TARGET_RESUME_S:.0f} s)"
    )
    facts.append(
        f"own footage disk: {count} recording gap(s), {seconds:.1f} s in all "
        f"({', '.join(sorted(reasons)) or 'none'})"
    )
    resumed = len(resumes) == cycles and worst <= TARGET_RESUME_S
    return Outcome(survived and resumed and not lost and not dup, facts)


def run(work: Path, *, short: bool) -> Outcome:
    harness.check_system_binaries()
    broker = Broker(directory=work / "broker")
    camera = RtspCamera(bitrate_kbps=BITRATE_KBPS)
    try:
        broker.start()
        camera.start()
    except Failed as exc:
        raise harness.SetupError(str(exc)) from None
    try:
        first = _same_disk(work, broker, camera, short)
        second = _own_footage_disk(work, broker, camera, short)
    finally:
        camera.close()
        broker.close()
    return Outcome(first.survived and second.survived, first.facts + second.facts)
