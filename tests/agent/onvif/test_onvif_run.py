"""`camera-agent run` with a camera that names only its ONVIF device: the agent asks the
device for its main stream, opens it with the camera's credentials and reports it over MQTT.
A real broker, a real RTSP camera behind a password, the test ONVIF device, the agent as a
process."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli import main as agent_main
from agent.clock import TEST_CLOCK_ENV
from registry.cli import main as registry_main
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.onvif_device import OnvifDevice
from tests.support.rtsp import RtspCamera

HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
BACK_HEALTH = "camreg/v1/agents/shop-42/cameras/back/health"
STATE = "camreg/v1/agents/shop-42/state"
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


def test_a_camera_clock_a_minute_and_a_half_off_is_clock_drift_and_in_the_package(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 18's test: `front`'s device clock is 90 s ahead, `back`'s 2 s; both stream
    from a real RTSP camera and name their ONVIF device only for its clock."""
    rtsp = make_rtsp_camera()
    uris = {"main": rtsp.url, "sub": rtsp.url}
    ahead = OnvifDevice(uris, clock_offset=dt.timedelta(seconds=90))
    close = OnvifDevice(uris, clock_offset=dt.timedelta(seconds=2))
    synced = tmp_path / "clock"
    synced.write_text("synced\n")
    with ahead, close:
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": name,
                    "url": rtsp.url,
                    "onvif": {"url": device.url},
                    "analysis_interval": "1s",
                    "recording": {"segment": "2s"},
                }
                for name, device in (("front", ahead), ("back", close))
            ],
        )
        agent = AgentProcess(config, env={TEST_CLOCK_ENV: str(synced)})
        agents.append(agent)
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent.start()
            drift = watch.wait_for(
                lambda m: m.topic == HEALTH and "clock_drift" in m.json()["problems"],
                timeout=30,
            ).json()
            fine = watch.wait_for(
                lambda m: (
                    m.topic == BACK_HEALTH
                    and (m.json().get("camera_clock") or {}).get("offset_s") is not None
                ),
                timeout=30,
            ).json()
            birth = watch.wait_for(
                lambda m: m.topic == STATE and len(m.json().get("camera_clocks", {})) == 2,
                timeout=30,
            ).json()
            # Recorded footage to export: a closed segment of each camera.
            eventually(
                lambda: len(list((tmp_path / "footage").rglob("*.ts"))) >= 4,
                "segments recorded",
                30,
                context=lambda: agent.log,
            )
        assert agent.terminate()[0] == 0
    assert drift["status"] == "degraded"
    clock = drift["camera_clock"]
    assert clock["source"] == "onvif" and clock["stale"] is False and clock["error"] is None
    assert abs(clock["offset_s"] - 90) <= clock["uncertainty_s"] < 1.5
    assert "clock_drift" not in fine["problems"]
    assert abs(fine["camera_clock"]["offset_s"] - 2) <= fine["camera_clock"]["uncertainty_s"]
    assert abs(birth["camera_clocks"]["front"]["offset_s"] - 90) < 1.5

    # The owner's export (the path a police request's export takes too) records the offset.
    package = tmp_path / "package"
    start = "2020-01-01T00:00:00Z"
    end = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    code = agent_main(
        ["footage", "export", "front", start, end, str(package), "--config", str(config)]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((package / "manifest.json").read_text())
    assert manifest["schema"] == "camreg.evidence.v2"
    (reading,) = manifest["clocks"]["cameras"]["front"]
    assert abs(reading["offset_s"] - 90) <= reading["uncertainty_s"]
    key = tmp_path / "state" / "keys" / "device.pub"
    capsys.readouterr()
    assert registry_main(["evidence", "verify", str(package), "--key", str(key)]) == 0
    out = capsys.readouterr().out
    said = re.search(
        r"clock    camera front: its own clock \(the time in its picture\) was ([\d.]+) s "
        r"ahead of the agent's synchronised clock",
        out,
    )
    assert said is not None, out
    assert abs(float(said[1]) - 90) < 1.5


def test_a_device_that_never_answers_leaves_the_stream_alone_and_its_clock_unmeasured(
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    """The device's port takes connections and never replies: each reading waits out its
    deadline in the clock thread while the camera streams and reports as usual."""
    rtsp = make_rtsp_camera()
    synced = tmp_path / "clock"
    synced.write_text("synced\n")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts
        port = silent.getsockname()[1]
        config = write_config(
            tmp_path / "config.yaml",
            broker_url=broker.url,
            cameras=[
                {
                    "id": "front",
                    "url": rtsp.url,
                    "onvif": {"url": f"http://127.0.0.1:{port}/onvif/device_service"},
                    "analysis_interval": "1s",
                }
            ],
        )
        agent = AgentProcess(config, env={TEST_CLOCK_ENV: str(synced)})
        agents.append(agent)
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent.start()
            health = watch.wait_for(
                lambda m: (
                    m.topic == HEALTH
                    and (m.json().get("camera_clock") or {}).get("error") == "no_answer"
                ),
                timeout=30,
            ).json()
            # And it goes on streaming: a later report still has the stream, no drift.
            after = watch.wait_for(
                lambda m: m.topic == HEALTH and m.json()["seq"] > health["seq"], timeout=15
            ).json()
    for report in (health, after):
        assert report["status"] == "ok", report
        assert report["stream"]["codec"] == "h264"
        assert report["camera_clock"]["stale"] is True
        assert report["camera_clock"]["offset_s"] is None
        assert "clock_drift" not in report["problems"]
    assert "its clock cannot be read" in agent.log
