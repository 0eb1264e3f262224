"""A camera that names only its ONVIF device, without `analysis_url`: the agent picks the
device's smaller profile as the sub-stream to analyse and records its largest. Real parts:
the test ONVIF device (main 1920x1080 and sub 640x360 profiles), two RTSP cameras behind a
password for the two profiles' streams, a broker, the agent as a process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.agent.streams.test_sub_stream import picture_size, segments
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.onvif_device import OnvifDevice
from tests.support.rtsp import RtspCamera

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
USER = "viewer"
PASSWORD = "Cam:pass/42"
# The main stream's camera sends a picture size of its own, not the profile's 1920x1080:
# what the recording holds then shows which camera (profile) was recorded.
MAIN_SIZE = (960, 540)
SUB = {"stream": "sub", "width": 640, "height": 360, "fallback": False}


def analysed(message: Received) -> Any:
    return (message.json()["stream"] or {}).get("analysed")


def test_the_smaller_profile_is_analysed_and_the_largest_recorded(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
) -> None:
    main = make_rtsp_camera(
        user=USER, password=PASSWORD, width=MAIN_SIZE[0], height=MAIN_SIZE[1], path="/ch/101"
    )
    sub = make_rtsp_camera(user=USER, password=PASSWORD, width=640, height=360, path="/ch/102")
    device = OnvifDevice(
        {
            "main": f"rtsp://127.0.0.1:{main.port}/ch/101",
            "sub": f"rtsp://127.0.0.1:{sub.port}/ch/102",
        },
        username=USER,
        password=PASSWORD,
    )
    (tmp_path / "front.pass").write_text(PASSWORD + "\n")
    with device:
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "onvif": {"url": device.url},
                    "username": USER,
                    "password_file": str(tmp_path / "front.pass"),
                    "analysis_interval": "1s",
                    "recording": {"segment": "2s"},
                }
            ],
        )
        agent = AgentProcess(config)
        agents.append(agent)
        with Watcher.for_broker(broker, HEALTH) as watch:
            agent.start()
            ok = watch.wait_for(
                lambda m: m.json()["status"] == "ok" and analysed(m) == SUB, timeout=30
            )
        # Two segments closed: the recording is under way.
        eventually(
            lambda: len(segments(tmp_path / "footage")) >= 3,
            "three segments recorded",
            30,
            context=lambda: agent.log,
        )
        assert agent.terminate()[0] == 0
    stream = ok.json()["stream"]
    assert (stream["width"], stream["height"]) == MAIN_SIZE  # what is recorded
    recorded = [p for p in segments(tmp_path / "footage") if p.stat().st_size > 0]
    assert recorded and {picture_size(p) for p in recorded} == {MAIN_SIZE}
    assert "gives the sub-stream rtsp://127.0.0.1:" in agent.log
    assert "(profile sub, 640x360)" in agent.log
    assert PASSWORD not in agent.log and PASSWORD not in ok.payload.decode()


def test_a_device_with_one_profile_is_analysed_on_it_and_says_why(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
) -> None:
    main = make_rtsp_camera(path="/ch/101")
    device = OnvifDevice(
        {"main": f"rtsp://127.0.0.1:{main.port}/ch/101", "sub": "rtsp://127.0.0.1:1/none"},
        sub_profile=False,
    )
    (tmp_path / "front.pass").write_text(device.password + "\n")
    with device:
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "onvif": {"url": device.url},
                    "username": device.username,
                    "password_file": str(tmp_path / "front.pass"),
                    "analysis_interval": "1s",
                }
            ],
        )
        agent = AgentProcess(config)
        agents.append(agent)
        with Watcher.for_broker(broker, HEALTH) as watch:
            agent.start()
            ok = watch.wait_for(
                lambda m: m.json()["status"] == "ok" and analysed(m) is not None, timeout=30
            )
        assert agent.terminate()[0] == 0
    assert analysed(ok) == {"stream": "main", "width": 640, "height": 360, "fallback": True}
    said = "the device has no smaller H.264 or H.265 profile at least 320 pixels wide"
    assert said in agent.log
