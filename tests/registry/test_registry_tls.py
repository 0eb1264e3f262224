"""The registry outside the local demo: `camera-registry serve` talks to the broker over
`mqtts://` with a private CA, and serves its pages, API and tus intake over HTTPS."""

from __future__ import annotations

import datetime as dt
import hashlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agent.evidence.upload import UNTRUSTED, Uploader, UploadError, session_trusting
from registry.server import GRACEFUL_SHUTDOWN_S
from tests.support import REPO_ROOT, free_port
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker, CertPair, _CertAuthority
from tests.support.registry_proc import RegistryProcess, wait_for
from tests.support.tokens import Police

ACL = (REPO_ROOT / "docs" / "mosquitto" / "acl").read_text()
REGISTRY_PASSWORD = "registry-broker-secret"
AGENT_PASSWORD = "shop-42 broker secret"
OFFICER_PASSWORD = "officer password 1"
TUS = {"Tus-Resumable": "1.0.0"}


def officer_token(registry: RegistryProcess, tmp_path: Path) -> str:
    """An officer `piet` with the police role and an API token."""
    password_file = tmp_path / "officer.pass"
    password_file.write_text(OFFICER_PASSWORD)
    registry.cli("users", "add", "piet", "--role", "police", "--password-file", str(password_file))
    return registry.cli("tokens", "add", "piet", "--label", "test").stdout.strip()


def server_cert(directory: Path) -> tuple[Path, CertPair]:
    """A throwaway CA and a certificate it signed for localhost and 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _CertAuthority(directory)
    now = dt.datetime.now(dt.UTC)
    pair = ca.issue(
        "https",
        "localhost",
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=1),
        server=True,
    )
    return ca.ca_file, pair


# --- MQTT over TLS -----------------------------------------------------------------------------


@pytest.fixture
def tls_broker(make_broker: Callable[..., Broker]) -> Broker:
    return make_broker(
        tls=True,
        users={"camera-registry": REGISTRY_PASSWORD, "shop-42": AGENT_PASSWORD},
        acl=ACL,
    )


def registry_on(broker: Broker, directory: Path, ca_file: Path | None) -> RegistryProcess:
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "broker.pass"
    secret.write_text(REGISTRY_PASSWORD)
    mqtt: dict[str, str] = {
        "broker": broker.url,
        "username": "camera-registry",
        "password_file": str(secret),
    }
    if ca_file is not None:
        mqtt["ca_file"] = str(ca_file)
    return RegistryProcess(directory, mqtt=mqtt)


@pytest.fixture
def tls_registry(tmp_path: Path, tls_broker: Broker) -> Iterator[RegistryProcess]:
    process = registry_on(tls_broker, tmp_path / "registry", tls_broker.ca_file)
    try:
        yield process.start()
    finally:
        process.close()


def test_health_and_requests_travel_over_mqtts_with_a_private_ca(
    tmp_path: Path,
    tls_broker: Broker,
    tls_registry: RegistryProcess,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
) -> None:
    assert tls_broker.url.startswith("mqtts://localhost:")
    token = officer_token(tls_registry, tmp_path)
    police = Police(agent="shop-42", upload=tls_registry.url + "/files/")

    # A real agent, trusting only the broker's private CA.
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (agent_dir / "broker.pass").write_text(AGENT_PASSWORD)
    camera = {
        "id": "front",
        "url": str(tmp_h264(4, width=320, height=180, fps=10)),
        "analysis_interval": "2s",
        "recording": {"segment": "2s"},
        "location": {"lat": 52.9925, "lon": 6.5649, "bearing_deg": 180, "fov_deg": 90},
    }
    config = write_config(
        agent_dir / "config.yaml",
        broker_url=tls_broker.url,
        cameras=[camera],
        registry={
            "ca_file": str(tls_broker.ca_file),
            "username": "shop-42",
            "password_file": str(agent_dir / "broker.pass"),
        },
        police={"keys": [{"jwk": police.jwk}], "upload_allow": [tls_registry.url + "/files/"]},
    )
    agent = AgentProcess(config).start()
    agents.append(agent)

    # Its health, sent over TLS, is stored by the registry's ingest, itself on TLS.
    def camera_row() -> dict[str, Any] | None:
        rows = tls_registry.api(token, "GET", "/api/v1/cameras")["cameras"]
        return next((r for r in rows if r["camera"] == "front" and r["status"]), None)

    row = wait_for(
        "the agent's health at the registry",
        camera_row,
        45,
        lambda: agent.log,
        lambda: tls_registry.log,
    )
    assert row["agent"] == "shop-42" and row["lat"] == 52.9925
    assert "connected to MQTT broker localhost:" in tls_registry.log

    # A voluntary request, relayed over TLS, reaches the agent, which waits for its
    # owner and says so over TLS.
    now = dt.datetime.now(dt.UTC)
    prepared = tls_registry.api(
        token,
        "POST",
        "/api/v1/requests",
        {
            "agent": "shop-42",
            "cameras": ["front"],
            "kind": "voluntary",
            "case": "2026-0042",
            "basis": "art. 126nd Sv",
            "requester": "Officer Piet",
            "reason": "burglary at no. 5",
            "start": (now - dt.timedelta(minutes=2)).isoformat(),
            "end": now.isoformat(),
        },
    )
    request_id = prepared["request_id"]
    signed = police.token(claims=prepared["claims"]).decode("ascii")
    sent = tls_registry.api(
        token, "POST", f"/api/v1/requests/{request_id}/token", {"token": signed}
    )
    assert sent["state"] == "sent"

    def agent_state() -> str | None:
        rows = tls_registry.api(token, "GET", "/api/v1/requests")["requests"]
        state = next(r["state"] for r in rows if r["request_id"] == request_id)
        return None if state in ("prepared", "sent") else str(state)

    state = wait_for(
        "the agent's answer to the relayed request",
        agent_state,
        30,
        lambda: agent.log,
        lambda: tls_registry.log,
    )
    assert state == "awaiting_owner"
    assert "TLS" not in tls_registry.log and "TLS" not in agent.log


# What OpenSSL says: a CA of the same name but another key (a CA made again) fails the
# signature; with no ca_file the system's CAs do not know the broker's private CA.
WRONG_CA = {
    "another_ca": "certificate signature failure",
    "system_cas": "self-signed certificate in certificate chain",
}


@pytest.mark.parametrize("trust", sorted(WRONG_CA))
def test_a_broker_certificate_from_another_ca_is_a_clear_error(
    tmp_path: Path, tls_broker: Broker, trust: str
) -> None:
    other_ca = server_cert(tmp_path / "other-ca")[0] if trust == "another_ca" else None
    process = registry_on(tls_broker, tmp_path / "registry", other_ca)
    try:
        process.start()
        line = wait_for(
            "the TLS error in the registry's log",
            lambda: next((ln for ln in process.log.splitlines() if "TLS" in ln), None),
            15,
            lambda: process.log,
        )
        # The pages still answer: the web side does not need the broker.
        assert requests.get(process.url + "/login", timeout=10).status_code == 200
    finally:
        process.close()
    assert line.split(" registry.ingest.connection: ", 1)[1] == (
        f"MQTT broker localhost:{tls_broker.port}: TLS certificate not trusted: "
        f"{WRONG_CA[trust]} (is mqtt.ca_file the CA that signed the broker's certificate?)"
    ), line
    assert " ERROR " in line
    assert "Traceback" not in process.log
    assert "connected to MQTT broker" not in process.log
    # The handshake failed before any login reached the broker.
    assert "camera-registry" not in tls_broker.log()


# --- HTTPS -------------------------------------------------------------------------------------


@pytest.fixture
def https_registry(
    tmp_path: Path, make_broker: Callable[..., Broker]
) -> Iterator[tuple[RegistryProcess, Path]]:
    ca_file, pair = server_cert(tmp_path / "https-ca")
    broker = make_broker()
    port = free_port()
    (tmp_path / "registry").mkdir()
    process = RegistryProcess(
        tmp_path / "registry",
        mqtt={"broker": broker.url},
        http={
            "listen": f"127.0.0.1:{port}",
            "public_url": f"https://localhost:{port}",
            "tls_cert": str(pair.cert_file),
            "tls_key": str(pair.key_file),
        },
    )
    process.port = port
    process.url = f"https://localhost:{port}"
    try:
        yield process.start(), ca_file
    finally:
        process.close()


def test_pages_api_and_intake_answer_over_https_only(
    tmp_path: Path, https_registry: tuple[RegistryProcess, Path]
) -> None:
    registry, ca_file = https_registry
    token = officer_token(registry, tmp_path)
    verify = str(ca_file)

    page = requests.get(registry.url + "/login", verify=verify, timeout=10)
    assert page.status_code == 200 and "<form" in page.text
    by_ip = f"https://127.0.0.1:{registry.port}"
    cameras = requests.get(
        by_ip + "/api/v1/cameras",
        headers={"Authorization": f"Bearer {token}"},
        verify=verify,
        timeout=10,
    )
    assert cameras.status_code == 200 and cameras.json()["cameras"] == []
    intake = requests.options(
        registry.url + "/files/",
        headers={**TUS, "Authorization": f"Bearer {token}"},
        verify=verify,
        timeout=10,
    )
    assert intake.status_code in (204, 403)  # it answers; an officer's token is no upload's

    # Requests are prepared with an https upload URL.
    now = dt.datetime.now(dt.UTC)
    prepared = requests.post(
        registry.url + "/api/v1/requests",
        json={
            "agent": "shop-42",
            "cameras": ["front"],
            "kind": "order",
            "case": "2026-0042",
            "basis": "art. 126nd Sv",
            "requester": "Officer Piet",
            "reason": "burglary",
            "start": (now - dt.timedelta(minutes=5)).isoformat(),
            "end": now.isoformat(),
        },
        headers={"Authorization": f"Bearer {token}"},
        verify=verify,
        timeout=10,
    )
    assert prepared.status_code == 201, prepared.text
    upload = prepared.json()["claims"]["upload"]
    assert upload["url"] == registry.url + "/files/"

    # The agent's uploader trusts the private CA only when the owner configured it
    # (police.upload_ca_file), and says so at once when it does not.
    evidence = tmp_path / "front_1.ts"
    evidence.write_bytes(b"\x47" * 188 * 100)
    metadata = {
        "request_id": prepared.json()["request_id"],
        "filename": evidence.name,
        "sha256": hashlib.sha256(evidence.read_bytes()).hexdigest(),
    }
    with pytest.raises(UploadError) as refused:
        Uploader(requests.Session()).upload(
            evidence, endpoint=upload["url"], bearer_token=upload["token"], metadata=metadata
        )
    assert refused.value.reason == UNTRUSTED
    assert "certificate is not trusted" in str(refused.value)
    # Trusted, it reaches the intake, which answers over TLS: here that the request was
    # never signed and sent (no broker in this test), so no upload is expected for it.
    with pytest.raises(UploadError) as answered:
        Uploader(session_trusting(ca_file)).upload(
            evidence, endpoint=upload["url"], bearer_token=upload["token"], metadata=metadata
        )
    assert answered.value.status == 403
    assert "has not been sent to its agent" in str(answered.value)

    # Not trusted without the private CA, and no plain HTTP on the TLS port.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(registry.url + "/login", timeout=10)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{registry.port}/login", timeout=10)

    # A login's session cookie only ever travels over TLS.
    login = requests.post(
        registry.url + "/login",
        data={"username": "piet", "password": OFFICER_PASSWORD},
        allow_redirects=False,
        verify=verify,
        timeout=10,
    )
    assert login.status_code == 303, login.text
    cookie = login.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly"} <= attributes, cookie
    assert "samesite=strict" in cookie.lower(), cookie
    dashboard = requests.get(
        registry.url + "/", cookies=login.cookies, allow_redirects=False, verify=verify, timeout=10
    )
    assert dashboard.status_code == 200, dashboard.headers
    assert "Traceback" not in registry.log

    # And it stops on SIGTERM, as systemd asks, even after keep-alive TLS connections.
    assert registry.proc is not None
    started = time.monotonic()
    registry.proc.terminate()
    # uvicorn stops cleanly, then ends itself with the signal it caught (systemd counts
    # death by SIGTERM as a clean stop).
    assert registry.proc.wait(15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < GRACEFUL_SHUTDOWN_S + 3
