"""The registry link with TLS and authentication, and secrets that never leak."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.rtsp import RtspCamera

STATE = "camreg/v1/agents/shop-42/state"
HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"
CAMERA_PASSWORD = "s3cret-Camera!pw"
BROKER_PASSWORD = "broker-pass-77"


def run_agent(
    agents: list[AgentProcess], tmp_path: Path, broker: Broker, camera_url: str, **sections: Any
) -> AgentProcess:
    camera = {
        "id": "front",
        "url": camera_url,
        "analysis_interval": "1s",
        **sections.pop("camera", {}),
    }
    config = write_config(
        tmp_path / "config.yaml", broker_url=broker.url, cameras=[camera], **sections
    )
    agent = AgentProcess(config).start()
    agents.append(agent)
    return agent


def test_tls_with_a_pinned_ca_and_a_password(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker(tls=True, users={"shop-42": BROKER_PASSWORD, "registry": "r"})
    (tmp_path / "broker.pass").write_text(BROKER_PASSWORD + "\n")
    run_agent(
        agents,
        tmp_path,
        broker,
        rtsp_camera.url,
        registry={
            "ca_file": str(broker.ca_file),
            "username": "shop-42",
            "password_file": str(tmp_path / "broker.pass"),
        },
    )
    with Watcher.for_broker(broker, "camreg/#", username="registry", password="r") as watch:
        watch.wait_for(lambda m: m.topic == HEALTH and m.json()["status"] == "ok", timeout=15)


def test_a_client_certificate_is_the_identity(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker(tls=True, require_client_cert=True)
    cert = broker.make_client_cert("shop-42")
    run_agent(
        agents,
        tmp_path,
        broker,
        rtsp_camera.url,
        registry={
            "ca_file": str(broker.ca_file),
            "client_cert": str(cert.cert_file),
            "client_key": str(cert.key_file),
        },
    )
    watcher_cert = broker.make_client_cert("registry")
    with Watcher.for_broker(broker, STATE, client_cert=watcher_cert) as watch:
        assert watch.wait_for(STATE, timeout=10).json()["state"] == "online"


def test_a_wrong_password_is_logged_clearly_and_nothing_is_published(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker(users={"shop-42": BROKER_PASSWORD, "registry": "r"})
    (tmp_path / "broker.pass").write_text("not-the-password\n")
    agent = run_agent(
        agents,
        tmp_path,
        broker,
        rtsp_camera.url,
        registry={"username": "shop-42", "password_file": str(tmp_path / "broker.pass")},
    )
    with Watcher.for_broker(broker, "#", username="registry", password="r") as watch:
        eventually(
            lambda: "refused the connection" in agent.log,
            "the refusal logged",
            10,
            context=lambda: agent.log,
        )
        assert watch.messages() == []
    assert "registry broker refused the connection: Not authorized" in agent.log
    assert "not-the-password" not in agent.log


def test_an_untrusted_broker_certificate_is_a_clear_error(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker(tls=True)
    other = make_broker(tls=True)  # a CA that did not sign this broker's certificate
    agent = run_agent(
        agents, tmp_path, broker, rtsp_camera.url, registry={"ca_file": str(other.ca_file)}
    )

    eventually(
        lambda: "TLS certificate not trusted" in agent.log,
        "the TLS error logged",
        10,
        context=lambda: agent.log,
    )


def test_camera_password_works_and_never_appears_anywhere(
    make_broker: Callable[..., Broker],
    make_rtsp_camera: Callable[..., RtspCamera],
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker()
    camera = make_rtsp_camera(user="admin", password=CAMERA_PASSWORD)
    (tmp_path / "front.pass").write_text(CAMERA_PASSWORD + "\n")
    plain_url = f"rtsp://127.0.0.1:{camera.port}{camera.path}"
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = run_agent(
            agents,
            tmp_path,
            broker,
            plain_url,
            camera={"username": "admin", "password_file": str(tmp_path / "front.pass")},
        )
        watch.wait_for(lambda m: m.topic == HEALTH and m.json()["status"] == "ok", timeout=15)
        camera.stop()  # errors on a lost stream are logged too: they must not leak either
        watch.wait_for(lambda m: m.topic == HEALTH and m.json()["status"] == "offline", timeout=10)
        # A failed reconnect: FFmpeg's error names the URL it had.
        eventually(
            lambda: "cannot open" in agent.log,
            "a failed reconnect logged",
            10,
            context=lambda: agent.log,
        )
        everything = b"".join(m.payload for m in watch.messages())
    assert CAMERA_PASSWORD.encode() not in everything
    assert CAMERA_PASSWORD not in agent.log
    assert "camera front: connected" in agent.log


def test_an_expired_client_certificate_is_a_clear_error(
    make_broker: Callable[..., Broker],
    rtsp_camera: RtspCamera,
    tmp_path: Path,
    agents: list[AgentProcess],
) -> None:
    broker = make_broker(tls=True, require_client_cert=True)
    cert = broker.make_client_cert("shop-42", expired=True)
    agent = run_agent(
        agents,
        tmp_path,
        broker,
        rtsp_camera.url,
        registry={
            "ca_file": str(broker.ca_file),
            "client_cert": str(cert.cert_file),
            "client_key": str(cert.key_file),
        },
    )
    # The error's own words: the test's directory (in every path the agent logs) and the
    # certificate's file name say "expired" too, and waiting for that word alone ended the
    # wait at the agent's first line, red in CI whenever that line came alone.
    said = "expired on"
    eventually(
        lambda: said in agent.log, f"{said!r} in the agent's log", 15, context=lambda: agent.log
    )
    assert f"{cert.cert_file.name} {said}" in agent.log, agent.post_mortem()
    assert "the broker will refuse this agent until it is renewed" in agent.log
