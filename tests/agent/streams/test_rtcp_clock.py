"""A camera's clock read from its stream's RTCP sender reports: the agent as a process, a
real broker, real GStreamer RTSP cameras whose wall clock (which their sender reports
carry) is shifted with tests/support/wall_clock.py, and no ONVIF device at all."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main as agent_main
from agent.clock import TEST_CLOCK_ENV
from agent.streams.rtcp_clock import RtcpClock
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera
from tests.support.wall_clock import WallClockShift

AGENT = "camreg/v1/agents/shop-42"
# The camera's clock as its sender reports say: 90 s ahead, right, and two clocks that
# were never set: 1970 after a power cut, and 2100 (NTP's 32-bit seconds wrap in 2036, so
# FFmpeg reads it as some other date, decades off all the same).
SHIFTS = {"ahead": 90.0, "right": 0.0, "y1970": -1_700_000_000.0, "y2100": 2_400_000_000.0}


def shifted_camera(
    make_rtsp_camera: Callable[..., RtspCamera], tmp: Path, name: str, seconds: float
) -> RtspCamera:
    shift = WallClockShift(tmp / f"{name}.shift")
    shift.set(seconds)
    return make_rtsp_camera(env=shift.env, width=320, height=180, fps=10, bitrate_kbps=300)


def settled(camera: str) -> Callable[[Received], bool]:
    """A health message of `camera` with a reading, or with its clock called not set."""

    def check(message: Received) -> bool:
        if message.topic != f"{AGENT}/cameras/{camera}/health":
            return False
        clock = message.json().get("camera_clock")
        return isinstance(clock, dict) and (
            clock["stale"] is False or clock["error"] == "implausible_time"
        )

    return check


def test_a_camera_clock_from_rtcp_is_reported_and_one_never_set_is_implausible(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cameras = {n: shifted_camera(make_rtsp_camera, tmp_path, n, s) for n, s in SHIFTS.items()}
    synced = tmp_path / "clock"
    synced.write_text("synced\n")
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": name,
                "url": camera.url,
                "analysis_interval": "1s",
                "recording": {"segment": "2s"},
            }
            for name, camera in cameras.items()
        ],
    )
    agent = AgentProcess(config, env={TEST_CLOCK_ENV: str(synced)})
    agents.append(agent)
    health: dict[str, dict[str, Any]] = {}
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent.start()
        for name in SHIFTS:
            health[name] = watch.wait_for(settled(name), timeout=60).json()
        birth = watch.wait_for(
            lambda m: m.topic == f"{AGENT}/state" and len(m.json().get("camera_clocks", {})) == 2,
            timeout=30,
        ).json()
        eventually(
            lambda: len(list((tmp_path / "footage").rglob("*.ts"))) >= 8,
            "segments recorded",
            30,
            context=lambda: agent.log,
        )
    assert agent.terminate()[0] == 0

    ahead, right = health["ahead"], health["right"]
    clock = ahead["camera_clock"]
    assert isinstance(clock, dict)
    assert clock["source"] == "rtcp" and clock["error"] is None
    assert abs(clock["offset_s"] - 90) <= clock["uncertainty_s"]
    assert "clock_drift" in ahead["problems"] and ahead["status"] == "degraded"
    clock = right["camera_clock"]
    assert isinstance(clock, dict)
    assert clock["source"] == "rtcp" and abs(clock["offset_s"]) <= clock["uncertainty_s"]
    assert "clock_drift" not in right["problems"]
    # Never a decades-long drift: no offset, the clock is called not set, and it must be.
    for name in ("y1970", "y2100"):
        clock = health[name]["camera_clock"]
        assert isinstance(clock, dict)
        assert clock["source"] == "rtcp" and clock["error"] == "implausible_time"
        assert clock["offset_s"] is None and clock["stale"] is True
        assert "clock_drift" in health[name]["problems"]
    # The birth tells the two measured clocks, and not the two unset ones.
    clocks = birth["camera_clocks"]
    assert set(clocks) == {"ahead", "right"}
    assert clocks["ahead"]["source"] == "rtcp" and abs(clocks["ahead"]["offset_s"] - 90) < 0.5
    assert "never set" not in agent.log
    assert "sender reports say" in agent.log

    # The export (a police request's takes the same path) records the stream's reading.
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    package = tmp_path / "package"
    argv = ["footage", "export", "ahead", "2020-01-01T00:00:00Z", end, str(package)]
    assert agent_main([*argv, "--config", str(config)]) == 0, capsys.readouterr().err
    manifest = json.loads((package / "manifest.json").read_text())
    (reading,) = manifest["clocks"]["cameras"]["ahead"]
    assert reading["source"] == "rtcp" and abs(reading["offset_s"] - 90) <= reading["uncertainty_s"]


def test_only_packets_that_arrived_as_read_count_and_the_best_of_a_window_is_the_reading() -> None:
    """Delay only makes a camera look behind: the highest offset of a window is its
    reading; a packet read from a buffer, or before the first sender report, is left out."""
    wall, mono = [1000.0], [0.0]
    said: list[float] = []
    clock = RtcpClock(said.append, window=10, wall=lambda: wall[0], monotonic=lambda: mono[0])
    start_us = 1000 * 1_000_000 + 90_000_000  # the camera is 90 s ahead
    clock.packet(None, 0.0, True)  # no sender report yet
    for step in range(12):
        wall[0], mono[0] = 1000.0 + step, float(step)
        delay = 0.3 if step % 2 else 0.05
        clock.packet(start_us, step - delay, True)
        clock.packet(start_us, step - 5.0, False)  # buffered: read 5 s after it came
    assert said == [pytest.approx(89.95)]
