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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import REPO_ROOT
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.registry_proc import RegistryProcess, wait_for

ACL = (REPO_ROOT / "docs" / "mosquitto" / "acl").read_text()
REGISTRY_PASSWORD = "registry-broker-secret"
OFFICER_PASSWORD = "officer password 1"
FLOW_TIMEOUT_S = 90.0


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


def test_an_order_signed_off_the_server_ends_verified_at_the_registry(
    tmp_path: Path,
    registry: RegistryProcess,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
) -> None:
    # The operator makes an officer and an enrolment code; police make their key.
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
    code = registry.cli("enrol-code", "--agent", "shop-42", "--by", "olga").stdout.splitlines()[0]
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

    # The owner's agent: enrol, then configure the broker login it was given.
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    clip = tmp_h264(4, width=320, height=180, fps=10)
    camera = {
        "id": "front",
        "url": str(clip),
        "analysis_interval": "2s",
        "recording": {"segment": "2s"},
        "location": {
            "lat": 52.9925,
            "lon": 6.5649,
            "bearing_deg": 180,
            "fov_deg": 90,
            "range_m": 25,
        },
    }
    police = {
        "keys": [{"file": str(police_dir / "police-test.pem")}],
        "upload_allow": [registry.url + "/files/"],
        "max_window": "10m",
    }
    config = write_config(
        agent_dir / "config.yaml", broker_url=broker.url, cameras=[camera], police=police
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
        police=police,
        registry={"username": "shop-42", "password_file": str(password_file)},
    )
    agent = AgentProcess(config).start()
    agents.append(agent)

    # The registry sees the camera, its position and its footage.
    def camera_with_footage() -> dict[str, Any] | None:
        rows = registry.api(token, "GET", "/api/v1/cameras")["cameras"]
        ready = [r for r in rows if r["camera"] == "front" and r["footage_newest"]]
        return ready[0] if ready else None

    row = wait_for(
        "the camera's footage at the registry",
        camera_with_footage,
        60,
        lambda: agent.log,
        lambda: registry.log,
    )
    # (pending: working, its picture not judged yet: the footage comes before the warm-up ends)
    assert row["status"] in ("ok", "degraded", "pending") and row["lat"] == 52.9925

    # Police find it, prepare an order for the last 5 minutes, sign it on their own machine.
    time.sleep(3)  # a few segments into the window
    now = datetime.now(UTC)
    found = registry.api(
        token,
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
    prepared = registry.api(
        token,
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
            "start": (now - timedelta(minutes=5)).isoformat(),
            "end": now.isoformat(),
        },
    )
    request_id = prepared["request_id"]
    claims_file = tmp_path / "claims.json"
    claims_file.write_bytes(
        requests.get(
            f"{registry.url}/api/v1/requests/{request_id}/claims.json",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
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
            str(police_dir / "police-test.key"),
            "--yes",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    registry.api(
        token, "POST", f"/api/v1/requests/{request_id}/token", {"token": signed.stdout.strip()}
    )

    # The agent checks it, uploads, and the registry verifies what arrived.
    def finished() -> dict[str, Any] | None:
        rows = registry.api(token, "GET", "/api/v1/requests")["requests"]
        done = [r for r in rows if r["state"] in ("completed", "failed", "rejected", "declined")]
        return done[0] if done else None

    outcome = wait_for(
        "the request to finish", finished, FLOW_TIMEOUT_S, lambda: agent.log, lambda: registry.log
    )
    assert outcome["state"] == "completed", outcome

    def package() -> dict[str, Any] | None:
        packages = registry.api(token, "GET", "/api/v1/evidence")["packages"]
        checked = [p for p in packages if p["request_id"] == request_id and p["checked"]]
        return checked[0] if checked else None

    evidence = wait_for("the package check", package, 30, lambda: registry.log)
    assert evidence["verified"], evidence["verdict"]
    manifest = evidence["manifest"]
    assert manifest["request_id"] == request_id and manifest["agent"] == "shop-42"
    assert len(manifest["files"]) >= 2
    # A download is byte for byte what the agent recorded and hashed.
    first = manifest["files"][0]
    body = requests.get(
        f"{registry.url}/evidence/{request_id}/{first['name']}",
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
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
