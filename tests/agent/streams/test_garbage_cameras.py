"""Four cameras that send garbage beside a good one (issue 15.5): the agent as a process
under a systemd-style watchdog, real mosquitto, a real RTSP camera and four real TCP
servers that speak broken RTSP. The watchdog pings never pause, the good camera's
footage has no gap, each garbage camera is reported and retried (every blocking call on
a stream has a deadline), and the agent keeps running."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import pytest

from agent.recording.index import SegmentIndex
from agent.streams.source import OPEN_DEADLINE_S, READ_DEADLINE_S
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.garbage_camera import GARBAGE_BYTES_PER_S, GarbageCamera, Mode
from tests.support.mqtt_watch import Watcher
from tests.support.rtsp import RtspCamera

GARBAGE: tuple[Mode, ...] = ("noise", "trickle", "huge_sdp", "interleaved_noise")
# systemd's WatchdogSec for the test (the unit's is 30 s): the agent pings every half.
WATCHDOG_S = 2.0
# The slowest garbage camera to come back for a second try: interleaved_noise opens
# (probing is cut off by the open deadline), then one read runs into the read deadline.
SECOND_TRY_BY_S = OPEN_DEADLINE_S + READ_DEADLINE_S + 3.0
HEALTH = "camreg/v1/agents/shop-42/cameras/+/health"
SLOW, FAST = GARBAGE_BYTES_PER_S, 1e12
# The agent's own peak resident memory is about 120 MB; a gigabyte SDP must not count.
MAX_PEAK_RSS_KB = 400_000


def peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    """A unix datagram socket playing systemd's notify socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def test_garbage_cameras_cost_no_watchdog_ping_and_no_good_footage(
    tmp_path: Path,
    broker: Broker,
    rtsp_camera: RtspCamera,
    notify: socket.socket,
    agents: list[AgentProcess],
) -> None:
    with ExitStack() as stack:
        garbage = {
            # As fast as loopback goes: FFmpeg would fill a gigabyte within its deadline.
            mode: stack.enter_context(
                GarbageCamera(mode, bytes_per_s=FAST if mode == "huge_sdp" else SLOW)
            )
            for mode in GARBAGE
        }
        cameras: list[dict[str, Any]] = [
            {"id": "front", "url": rtsp_camera.url, "recording": {"segment": "2s"}},
            *({"id": mode.replace("_", "-"), "url": g.url} for mode, g in garbage.items()),
        ]
        config = write_config(tmp_path / "config.yaml", broker_url=broker.url, cameras=cameras)
        env = {
            "NOTIFY_SOCKET": str(tmp_path / "notify"),
            "WATCHDOG_USEC": str(round(WATCHDOG_S * 1_000_000)),
        }
        with Watcher.for_broker(broker, HEALTH) as watch:
            agent = AgentProcess(config, env=env).start()
            agents.append(agent)
            give_up = time.monotonic() + 30
            received: list[tuple[float, str]] = []
            ready_at: float | None = None
            end = float("inf")
            while time.monotonic() < end:
                with suppress(TimeoutError):
                    message = notify.recv(4096).decode()
                    received.append((time.monotonic(), message))
                    if message == "READY=1" and ready_at is None:
                        ready_at = time.monotonic()
                        end = ready_at + SECOND_TRY_BY_S
                assert agent.proc is not None and agent.proc.poll() is None, agent.log[-3000:]
                if ready_at is None and time.monotonic() > give_up:
                    pytest.fail(f"no READY=1 from the agent:\n{agent.log[-3000:]}")
            connections = {mode: g.connections for mode, g in garbage.items()}
            assert agent.proc is not None
            peak_kb = peak_rss_kb(agent.proc.pid)
            code, _ = agent.terminate()
        health = {m.topic.split("/")[-2]: m.json() for m in watch.messages(HEALTH)}
    assert ready_at is not None
    timeline = " ".join(f"{t - ready_at:.1f}:{m}" for t, m in received)
    pings = [ready_at] + [t for t, m in received if m == "WATCHDOG=1"]
    assert len(pings) >= SECOND_TRY_BY_S / WATCHDOG_S, timeline
    assert max(b - a for a, b in itertools.pairwise(pings)) < WATCHDOG_S, timeline
    assert code == 0, agent.log[-3000:]
    assert peak_kb < MAX_PEAK_RSS_KB, peak_kb
    # Every garbage camera was given up on and tried again: no call on it hung.
    assert all(n >= 2 for n in connections.values()), connections
    for mode in GARBAGE:
        report = health[mode.replace("_", "-")]
        assert report["status"] == "offline" and "no_signal" in report["problems"], report
    assert health["front"]["status"] != "offline", health["front"]
    index = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    segments = index.segments("front")
    assert len(segments) >= SECOND_TRY_BY_S / 2 - 3, segments
    assert index.gaps("front") == []
    for before, after in itertools.pairwise(segments):
        assert before.end is not None
        assert abs((after.start - before.end).total_seconds()) < 0.1, (before, after)
