"""Devices that answer GetSystemDateAndTime with nonsense, read by the agent as a process:
each camera's health says its clock is unknown and why (health `camera_clock.error`), never
an offset of decades, and the agent neither crashes nor stops streaming. Real parts: the
test ONVIF device answering with hand-written replies, a real RTSP camera, a broker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from agent.clock import TEST_CLOCK_ENV
from agent.onvif.transport import MAX_REPLY_BYTES
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.onvif_device import OnvifDevice
from tests.support.rtsp import RtspCamera


def reply(utc: str) -> bytes:
    """A GetSystemDateAndTimeResponse whose UTCDateTime is `utc` (XML of Date and Time)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
        'xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body>'
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        f"<tt:UTCDateTime>{utc}</tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        "</env:Body></env:Envelope>"
    ).encode()


def stamp(year: int, month: int = 1, day: int = 1) -> str:
    return (
        "<tt:Time><tt:Hour>0</tt:Hour><tt:Minute>5</tt:Minute><tt:Second>0</tt:Second>"
        f"</tt:Time><tt:Date><tt:Year>{year}</tt:Year><tt:Month>{month}</tt:Month>"
        f"<tt:Day>{day}</tt:Day></tt:Date>"
    )


# camera id -> (its device's reply, the health `camera_clock.error` it must give, whether
# that is clock_drift: a date decades off is a clock that is not set, which the owner must
# fix like a drifting one; an answer without a usable date says nothing about the clock).
CASES: dict[str, tuple[bytes, str, bool]] = {
    "year1970": (reply(stamp(1970)), "implausible_time", True),
    "year9999": (reply(stamp(9999, 12, 31)), "implausible_time", True),
    "month13": (reply(stamp(2026, 13)), "bad_answer", False),
    "notime": (
        reply("<tt:Date><tt:Year>2026</tt:Year><tt:Month>1</tt:Month><tt:Day>1</tt:Day></tt:Date>"),
        "bad_answer",
        False,
    ),
    "huge": (
        reply(stamp(2026)).replace(b"<env:Body>", b"<env:Body>" + b" " * (2 * MAX_REPLY_BYTES)),
        "bad_answer",
        False,
    ),
    "notxml": (b"\x00\xff" * 64, "bad_answer", False),
}


def clock_unknown(topic: str) -> Callable[[Received], bool]:
    """A health message of `topic` that says why the clock is unknown, with a stream."""

    def wanted(message: Received) -> bool:
        if message.topic != topic:
            return False
        health = message.json()
        return (health.get("camera_clock") or {}).get("error") is not None and health[
            "stream"
        ] is not None

    return wanted


@pytest.fixture
def devices() -> Iterator[dict[str, OnvifDevice]]:
    with ExitStack() as stack:
        yield {
            camera: stack.enter_context(
                OnvifDevice(
                    {"main": "rtsp://127.0.0.1:1/a", "sub": "rtsp://127.0.0.1:1/b"},
                    clock_reply=body,
                )
            )
            for camera, (body, _error, _drift) in CASES.items()
        }


def test_nonsense_clocks_are_reported_unknown_with_why_and_never_as_decades_of_drift(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
    devices: dict[str, OnvifDevice],
) -> None:
    rtsp = make_rtsp_camera()
    synced = tmp_path / "clock"
    synced.write_text("synced\n")
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {"id": camera, "url": rtsp.url, "onvif": {"url": device.url}, "analysis_interval": "1s"}
            for camera, device in devices.items()
        ],
    )
    agent = AgentProcess(config, env={TEST_CLOCK_ENV: str(synced)})
    agents.append(agent)
    seen: dict[str, Any] = {}
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent.start()
        for camera in CASES:
            topic = f"camreg/v1/agents/shop-42/cameras/{camera}/health"
            seen[camera] = watch.wait_for(clock_unknown(topic), timeout=30).json()
        # (the watcher checks every message against docs/schemas on leaving)
    assert agent.terminate()[0] == 0
    for camera, (_body, error, drift) in CASES.items():
        health = seen[camera]
        clock = health["camera_clock"]
        assert clock["error"] == error, (camera, clock)
        assert clock["offset_s"] is None and clock["stale"] is True, (camera, clock)
        assert ("clock_drift" in health["problems"]) is drift, (camera, health["problems"])
        assert health["stream"]["codec"] == "h264", camera  # streaming all along
    log = agent.log
    assert "Traceback" not in log
    assert "year1970: its clock says 1970-01-01T00:05:00Z" in log
    assert "not set" in log
