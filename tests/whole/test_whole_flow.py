"""The whole system as operators, owners and police run it: mosquitto with the documented
ACL and passwords, `camera-registry serve`, an agent that enrols with a one-time code, a
police order signed off the server with `camera-registry police sign`, relayed through the
broker, uploaded to the registry's own tus intake and verified there."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from agent.clock import TEST_CLOCK_ENV
from tests.support import REPO_ROOT
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.onvif_recorder import OnvifRecorder, Recording
from tests.support.registry_proc import RegistryProcess, wait_for
from tests.support.replay_recorder import ReplayRecorder, record_h264

ACL = (REPO_ROOT / "docs" / "mosquitto" / "acl").read_text()
REGISTRY_PASSWORD = "registry-broker-secret"
OFFICER_PASSWORD = "officer password 1"
FLOW_TIMEOUT_S = 90.0
S = timedelta(seconds=1)
LOCATION = {"lat": 52.9925, "lon": 6.5649, "bearing_deg": 180, "fov_deg": 90, "range_m": 25}


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker(users={"camera-registry": REGISTRY_PASSWORD}, acl=ACL)


@pytest.fixture
def registry(tmp_path: Path, broker: Broker) -> Iterator[RegistryProcess]:
    (tmp_path / "registry").mkdir()
    secret = tmp_path / "registry" / "broker.pass"
    secret.write_text(REGISTRY_PASSWORD)
    process = RegistryProcess(
        tmp_path / "registry",
        mqtt={"broker": broker.url, "username": "camera-registry", "password_file": str(secret)},
        enrolment={
            "password_file": str(broker.directory / "passwords"),
            "reload_command": ["kill", "-HUP", str(broker.pid)],
        },
    )
    try:
        yield process.start()
    finally:
        process.close()


@dataclass
class Police:
    """An officer's API token and the police's signing key, as the registry's operator and
    the police set them up."""

    token: str
    keys: Path


def police_with_a_key(tmp_path: Path, registry: RegistryProcess) -> Police:
    """The operator makes an officer; the police make their signing key off the server."""
    (tmp_path / "officer.pass").write_text(OFFICER_PASSWORD)
    registry.cli(
        "users",
        "add",
        "piet",
        "--role",
        "police",
        "--password-file",
        str(tmp_path / "officer.pass"),
    )
    token = registry.cli("tokens", "add", "piet", "--label", "test").stdout.strip()
    police_dir = tmp_path / "police"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "police",
            "keygen",
            "--out",
            str(police_dir),
            "--name",
            "police-test",
        ],
        check=True,
        capture_output=True,
        cwd=REPO_ROOT,
    )
    return Police(token, police_dir)


def enrolled_agent(
    agent_dir: Path,
    registry: RegistryProcess,
    broker: Broker,
    police: Police,
    camera: dict[str, Any],
    env: dict[str, str] | None = None,
) -> AgentProcess:
    """The owner's agent: enrolled with a one-time code, then configured with the broker
    login it was given, trusting the police key, and started."""
    code = registry.cli("enrol-code", "--agent", "shop-42", "--by", "olga").stdout.splitlines()[0]
    agent_police = {
        "keys": [{"file": str(police.keys / "police-test.pem")}],
        "upload_allow": [registry.url + "/files/"],
        "max_window": "10m",
    }
    config = write_config(
        agent_dir / "config.yaml", broker_url=broker.url, cameras=[camera], police=agent_police
    )
    enrolled = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "enroll",
            "--registry",
            registry.url,
            "--code",
            code,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    password_file = agent_dir / "state" / "keys" / "broker.pass"
    assert password_file.is_file(), enrolled.stdout
    write_config(
        agent_dir / "config.yaml",
        broker_url=broker.url,
        cameras=[camera],
        police=agent_police,
        registry={"username": "shop-42", "password_file": str(password_file)},
    )
    return AgentProcess(config, env).start()


def camera_with_footage(
    registry: RegistryProcess, police: Police, agent: AgentProcess
) -> dict[str, Any]:
    """The registry's row of camera `front` once it reports footage."""

    def ready() -> dict[str, Any] | None:
        rows = registry.api(police.token, "GET", "/api/v1/cameras")["cameras"]
        found = [r for r in rows if r["camera"] == "front" and r["footage_newest"]]
        return found[0] if found else None

    row: dict[str, Any] = wait_for(
        "the camera's footage at the registry", ready, 60, lambda: agent.log, lambda: registry.log
    )
    return row


def signed_order(
    tmp_path: Path, registry: RegistryProcess, police: Police, start: datetime, end: datetime
) -> str:
    """An order for `front` prepared at the registry, signed on the police's own machine
    and handed back to the registry to relay; its request id."""
    prepared = registry.api(
        police.token,
        "POST",
        "/api/v1/requests",
        {
            "agent": "shop-42",
            "cameras": ["front"],
            "kind": "order",
            "case": "2026-0042",
            "basis": "art. 126nd Sv",
            "requester": "Officer Piet",
            "reason": "burglary at no. 5",
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    request_id: str = prepared["request_id"]
    claims_file = tmp_path / "claims.json"
    claims_file.write_bytes(
        requests.get(
            f"{registry.url}/api/v1/requests/{request_id}/claims.json",
            timeout=10,
            headers={"Authorization": f"Bearer {police.token}"},
        ).content
    )
    signed = subprocess.run(
        [
            sys.executable,
            "-m",
            "registry",
            "police",
            "sign",
            str(claims_file),
            "--key",
            str(police.keys / "police-test.key"),
            "--yes",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    registry.api(
        police.token,
        "POST",
        f"/api/v1/requests/{request_id}/token",
        {"token": signed.stdout.strip()},
    )
    return request_id


def verified_package(
    registry: RegistryProcess, police: Police, agent: AgentProcess, request_id: str
) -> dict[str, Any]:
    """The agent checks the order and uploads; the registry's verdict on what arrived."""

    def finished() -> dict[str, Any] | None:
        rows = registry.api(police.token, "GET", "/api/v1/requests")["requests"]
        done = [r for r in rows if r["state"] in ("completed", "failed", "rejected", "declined")]
        return done[0] if done else None

    outcome = wait_for(
        "the request to finish", finished, FLOW_TIMEOUT_S, lambda: agent.log, lambda: registry.log
    )
    assert outcome["state"] == "completed", outcome

    def package() -> dict[str, Any] | None:
        packages = registry.api(police.token, "GET", "/api/v1/evidence")["packages"]
        checked = [p for p in packages if p["request_id"] == request_id and p["checked"]]
        return checked[0] if checked else None

    evidence: dict[str, Any] = wait_for("the package check", package, 30, lambda: registry.log)
    assert evidence["verified"], evidence["verdict"]
    return evidence


def test_an_order_signed_off_the_server_ends_verified_at_the_registry(
    tmp_path: Path,
    registry: RegistryProcess,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
) -> None:
    police = police_with_a_key(tmp_path, registry)
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    clip = tmp_h264(4, width=320, height=180, fps=10)
    camera = {
        "id": "front",
        "url": str(clip),
        "analysis_interval": "2s",
        "recording": {"segment": "2s"},
        "location": LOCATION,
    }
    agent = enrolled_agent(agent_dir, registry, broker, police, camera)
    agents.append(agent)

    # The registry sees the camera, its position and its footage.
    row = camera_with_footage(registry, police, agent)
    # (pending: working, its picture not judged yet: the footage comes before the warm-up ends)
    assert row["status"] in ("ok", "degraded", "pending") and row["lat"] == 52.9925

    # Police find it, prepare an order for the last 5 minutes, sign it on their own machine.
    time.sleep(3)  # a few segments into the window
    now = datetime.now(UTC)
    found = registry.api(
        police.token,
        "POST",
        "/api/v1/search",
        {
            "lat": 52.99240,
            "lon": 6.5649,
            # Within what the agent last reported holding (health lags the recording).
            "at": row["footage_newest"],
            "reason": "case 2026-0042 burglary",
        },
    )
    assert [c["camera"] for c in found["cameras"]] == ["front"]
    request_id = signed_order(tmp_path, registry, police, now - timedelta(minutes=5), now)

    # The agent checks it, uploads, and the registry verifies what arrived.
    evidence = verified_package(registry, police, agent, request_id)
    manifest = evidence["manifest"]
    assert manifest["request_id"] == request_id and manifest["agent"] == "shop-42"
    assert len(manifest["files"]) >= 2
    # A download is byte for byte what the agent recorded and hashed.
    first = manifest["files"][0]
    body = requests.get(
        f"{registry.url}/evidence/{request_id}/{first['name']}",
        timeout=10,
        headers={"Authorization": f"Bearer {police.token}"},
    ).content
    assert hashlib.sha256(body).hexdigest() == first["sha256"]
    # front_20261128T005628.533676Z.ts was recorded as front/2026-11-28/005628.533676Z.ts
    camera_id, stamp = first["name"].split("_", 1)
    day = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    recorded = agent_dir / "footage" / camera_id / day / stamp[9:]
    assert recorded.read_bytes() == body
    # And the package checks offline, as it would for a court.
    package_dir = tmp_path / "registry" / "data" / "evidence" / request_id
    offline = subprocess.run(
        [sys.executable, "-m", "registry", "evidence", "verify", str(package_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr


def test_an_order_for_footage_only_the_owners_recorder_holds_ends_verified(
    tmp_path: Path,
    registry: RegistryProcess,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
) -> None:
    """Issue 18, item 4: the footage lives on the owner's NVR (ONVIF Profile G, emulated by
    the test ONVIF device's search and replay services and GStreamer's ONVIF RTSP server).
    The NVR's clock runs 30 s ahead of the agent's; the agent records nothing itself."""
    police = police_with_a_key(tmp_path, registry)
    offset = timedelta(seconds=30)
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=65)  # agent clock
    recording = record_h264(tmp_path / "nvr-front.mkv", 60)
    synced = tmp_path / "clock"
    synced.write_text("synced\n")
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "nvr.pass").write_text("onvif-pass")
    live = tmp_h264(4, width=320, height=180, fps=10)
    with ReplayRecorder(recording, began + offset) as replay:
        nvr = OnvifRecorder(
            {"main": replay.url, "sub": replay.url},
            clock_offset=offset,
            recordings=[
                Recording("rec-front", "cam-1", began + offset, began + offset + 60 * S, replay.url)
            ],
        )
        with nvr:
            camera = {
                "id": "front",
                "url": str(live),
                "onvif": {"url": nvr.url},
                "username": "onvif",
                "password_file": str(agent_dir / "nvr.pass"),
                "analysis_interval": "2s",
                "recording": {"mode": "onvif", "source": "cam-1"},
                "location": LOCATION,
            }
            agent = enrolled_agent(
                agent_dir, registry, broker, police, camera, env={TEST_CLOCK_ENV: str(synced)}
            )
            agents.append(agent)
            # What the recorder holds shows at the registry as the agent's own recording would.
            row = camera_with_footage(registry, police, agent)
            assert abs(_instant(row["footage_newest"]) - (began + 60 * S)) < 2 * S
            start, end = began + 20 * S, began + 30 * S
            request_id = signed_order(tmp_path, registry, police, start, end)
            evidence = verified_package(registry, police, agent, request_id)
    manifest = evidence["manifest"]
    assert manifest["schema"] == "camreg.evidence.v2"
    [entry] = manifest["files"]
    assert abs(_instant(entry["start"]) - start) <= S and abs(_instant(entry["end"]) - end) <= S
    [reading, *_] = manifest["clocks"]["cameras"]["front"]
    assert abs(reading["offset_s"] - 30) <= reading["uncertainty_s"] + 0.5
    assert "GetReplayUri" in nvr.requests and "FindRecordings" in nvr.requests
    # The copy is the recorder's H.264 as it was sent, not re-encoded: ten seconds at 10 fps,
    # from the keyframe at or before the window's start (a keyframe a second).
    body = requests.get(
        f"{registry.url}/evidence/{request_id}/{entry['name']}",
        timeout=10,
        headers={"Authorization": f"Bearer {police.token}"},
    ).content
    (tmp_path / "copy.ts").write_bytes(body)
    with av.open(str(tmp_path / "copy.ts")) as container:
        frames = len(list(container.decode(container.streams.video[0])))
    assert 95 <= frames <= 111


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
