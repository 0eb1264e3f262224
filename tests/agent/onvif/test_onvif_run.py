"""`camera-agent run` with a camera that names only its ONVIF device: the agent asks the
device for its main stream, opens it with the camera's credentials and reports it over MQTT.
A real broker, a real RTSP camera behind a password, the test ONVIF device, the agent as a
process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.onvif_device import OnvifDevice
from tests.support.rtsp import RtspCamera

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
USER = "viewer"
PASSWORD = "Cam:pass/42"


def test_a_camera_with_only_an_onvif_device_streams(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    rtsp = make_rtsp_camera(user=USER, password=PASSWORD, path="/Streaming/Channels/101")
    plain = f"rtsp://127.0.0.1:{rtsp.port}"
    device = OnvifDevice(
        {"main": f"{plain}/Streaming/Channels/101", "sub": f"{plain}/Streaming/Channels/102"},
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
                }
            ],
        )
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agents.append(AgentProcess(config).start())
            ok = watch.wait_for(
                lambda m: m.topic == HEALTH and m.json()["status"] == "ok", timeout=20
            )
    stream = ok.json()["stream"]
    assert (stream["codec"], stream["width"], stream["height"]) == ("h264", 640, 360)
    # It asked the device (with credentials) for the main profile's stream.
    assert "GetProfiles" in device.requests and "GetStreamUri" in device.requests
    assert PASSWORD not in ok.payload.decode()
