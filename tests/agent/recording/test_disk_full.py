"""A full disk (issue 15): health keeps flowing, the agent prunes its own footage first,
recording resumes as soon as there is room, and no report, message or audit entry is lost.

Real parts: tmpfs disks filled to the last byte, mosquitto, the simulated RTSP camera and
the agent as a process. Each test runs one agent through several phases.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.recording.index import SegmentIndex
from agent.space_reserve import RESERVE_BYTES
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera
from tests.support.seq_counter import SeqCounter
from tests.support.tmpfs import fill, free_bytes, tmpfs

AGENT = "camreg/v1/agents/shop-42"
HEALTH = f"{AGENT}/cameras/front/health"
AUDIT = f"{AGENT}/audit"
REQUESTS = f"{AGENT}/requests"
MIB = 1024 * 1024


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """Factory: `disks(name, size)` mounts a tmpfs of that size under tmp_path."""
    mounted: list[Any] = []

    def mount(name: str, size: int) -> Path:
        context = tmpfs(tmp_path / name, size)
        path = context.__enter__()
        mounted.append(context)
        return path

    yield mount
    for context in reversed(mounted):
        context.__exit__(None, None, None)


def config_for(
    tmp_path: Path, broker: Broker, camera: RtspCamera, state: Path, footage: Path
) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": camera.url,
                "analysis_interval": "2s",
                "recording": {"mode": "record", "segment": "2s", "retention": "7d"},
            }
        ],
        agent={"data_dir": str(state)},
        registry={"health_interval": "1s"},
        # The owner's floor is tiny: footage alone would fill the disk.
        storage={"path": str(footage), "min_free_bytes": 0},
    )


def problems(message: Received) -> list[str]:
    return list(message.json()["problems"])


def oldest(message: Received) -> str | None:
    return message.json()["footage"]["oldest"] if message.json()["footage"] else None


def newest(message: Received) -> str | None:
    return message.json()["footage"]["newest"] if message.json()["footage"] else None


def recorded_after(message: Received, moment: datetime) -> bool:
    """The report's footage reaches past `moment`."""
    end = newest(message)
    return end is not None and datetime.fromisoformat(end) > moment


def junk_token_audited(watch: Watcher, number: int, state: Path) -> None:
    """A malformed request token while the disk is full: its `rejected` audit entry is
    written to the log and published."""
    sent = time.monotonic()
    watch.publish(REQUESTS, b"junk-while-full-%d" % number)
    entry = watch.wait_for(
        lambda m: m.topic == AUDIT and m.json()["event"] == "rejected", timeout=15, after=sent
    ).json()
    lines = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert entry in lines


def test_a_disk_filled_by_footage_and_from_outside_keeps_health_and_recording(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
    disks: Callable[[str, int], Path],
) -> None:
    disk = disks("disk", 64 * MIB)
    state, footage = disk / "state", disk / "footage"
    # Leave the reserve and some MiB: footage alone fills them within seconds.
    fill(disk / "ballast-1", leave=RESERVE_BYTES + 8 * MIB)
    camera = make_rtsp_camera(bitrate_kbps=8000)
    config = config_for(tmp_path, broker, camera, state, footage)
    with SeqCounter(broker, HEALTH) as counter, Watcher.for_broker(broker, f"{AGENT}/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        # Footage alone: the agent prunes its own oldest footage and says so.
        first = watch.wait_for(lambda m: m.topic == HEALTH and oldest(m) is not None, timeout=30)
        watch.wait_for(
            lambda m: (
                m.topic == HEALTH
                and "storage_low" in problems(m)
                and (oldest(m) or "") > (oldest(first) or "")
            ),
            timeout=40,
        )
        # Filled from outside, to the last byte.
        fill(disk / "ballast-2")
        filled = datetime.now(UTC)
        junk_token_audited(watch, 1, state)
        # Recording goes on in the space the pruning freed: footage from after the fill.
        watch.wait_for(
            lambda m: m.topic == HEALTH and recorded_after(m, filled + timedelta(seconds=3)),
            timeout=30,
        )
        assert agent.terminate()[0] == 0
        stopped_at = counter.highest("front")

        # A restart on the disk filled to the last byte again: no exit, health flows.
        fill(disk / "ballast-3")
        restarted = AgentProcess(config).start()
        agents.append(restarted)
        counter.wait_for_seq("front", stopped_at + 3, timeout=30)
        assert restarted.proc is not None and restarted.proc.poll() is None, restarted.log
        junk_token_audited(watch, 2, state)
        assert counter.missing("front") == [], counter.summary()
        assert counter.duplicates("front") == 0
        assert len(counter.bdseqs) == 2
        assert restarted.terminate()[0] == 0
    assert "Traceback" not in agent.log + restarted.log


def test_a_full_footage_disk_of_its_own_reports_storage_failed_and_recording_resumes(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
    disks: Callable[[str, int], Path],
) -> None:
    state_disk = disks("state-disk", 32 * MIB)
    footage_disk = disks("footage-disk", 8 * MIB)
    state = state_disk / "state"
    # Another program's files fill the footage disk: the agent has nothing there to prune.
    ballast = footage_disk / "ballast"
    fill(ballast)
    camera = make_rtsp_camera()
    config = config_for(tmp_path, broker, camera, state, footage_disk / "footage")
    with SeqCounter(broker, HEALTH) as counter, Watcher.for_broker(broker, f"{AGENT}/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        failed = watch.wait_for(
            lambda m: m.topic == HEALTH and "storage_failed" in problems(m), timeout=30
        ).json()
        assert failed["status"] == "degraded", failed
        # Now the state disk fills up too, to the last byte: the reserve keeps it going.
        fill(state_disk / "ballast")
        assert free_bytes(state_disk) < MIB
        junk_token_audited(watch, 1, state)
        # Space comes back on the footage disk: recording resumes by itself.
        ballast.unlink()
        freed = datetime.now(UTC)
        watch.wait_for(
            lambda m: (
                m.topic == HEALTH
                and "storage_failed" not in problems(m)
                and recorded_after(m, freed)
            ),
            timeout=30,
        )
        # The time nothing could be written is a gap, with its reason.
        gaps = SegmentIndex(state / "footage.sqlite").gaps("front")
        assert [g.reason for g in gaps] == ["storage_full"], gaps
        assert agent.terminate()[0] == 0
        stopped_at = counter.highest("front")
        # A restart with the state disk full to the last byte (its reserve spent).
        fill(state_disk / "ballast-2")
        restarted = AgentProcess(config).start()
        agents.append(restarted)
        counter.wait_for_seq("front", stopped_at + 3, timeout=30)
        assert counter.missing("front") == [], counter.summary()
        assert counter.duplicates("front") == 0
        assert restarted.terminate()[0] == 0
    assert "Traceback" not in agent.log + restarted.log
