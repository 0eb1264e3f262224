"""Police withdrawals through the real broker, the registry's CLI, a running agent and a
real tus server: a withdrawal signed with `camera-registry police withdrawal sign` and
relayed with `... send` stops an upload in flight and a request waiting for the owner,
releases their holds, deletes what was exported, and is audited and shown to the owner.
Every withdrawal a compromised registry (or anyone on the broker) could make or replay
is refused with its reason and stops nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from agent.police_requests.token import status_id
from agent.recording.index import SegmentIndex
from contract import jws
from tests.support import REPO_ROOT
from tests.support.agent_proc import AgentProcess, request_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.registry_proc import registry_cli
from tests.support.schemas import assert_valid
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
AUDIT = f"{BASE}/audit"
WITHDRAWAL_TYPE = "camreg-withdrawal+jwt"


def state(request_id: str, wanted: str) -> Callable[[Received], bool]:
    topic = f"{BASE}/requests/{request_id}/status"
    return lambda m: m.topic == topic and m.json()["state"] == wanted


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def withdrawal(
    police: Police, request_id: str, *, key: Any = None, header: Any = None, **changes: Any
) -> bytes:
    """A withdrawal assembled as raw bytes, so that the hostile ones can be made too."""
    now = int(time.time())
    claims = {
        "iss": "police.example",
        "aud": "shop-42",
        "jti": f"wd-{request_id}",
        "withdraws": request_id,
        "iat": now - 5,
        "exp": now + 600,
        **changes,
    }
    return police.token(
        {k: v for k, v in claims.items() if v is not None},
        header=header or police.header(typ=WITHDRAWAL_TYPE),
        key=key,
    )


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


@pytest.fixture
def police(tus: TusServer) -> Police:
    return Police(upload=tus.endpoint)


@pytest.fixture
def config(
    tmp_path: Path, broker: Broker, tmp_h264: Callable[..., Path], police: Police, tus: TusServer
) -> Path:
    return request_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        clip=tmp_h264(4, width=640, height=360, fps=15),
        police_jwk=police.jwk,
        upload_allow=tus.endpoint,
        # Slow enough that the upload is still running when the withdrawal arrives.
        police={"upload_rate_limit": "100kB", "max_window": "10m"},
    )


def started(config: Path, agents: list[AgentProcess], watch: Watcher) -> AgentProcess:
    agent = AgentProcess(config).start()
    agents.append(agent)
    watch.wait_for(
        lambda m: bool(
            m.topic.endswith("/front/health") and (m.json().get("footage") or {}).get("oldest")
        ),
        timeout=30,
    )
    time.sleep(4)  # footage must reach past the window's end (5 s before now)
    return agent


def police_key_file(police: Police, path: Path) -> Path:
    path.write_bytes(
        police.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def test_a_signed_withdrawal_stops_an_upload_in_flight_and_a_waiting_request(
    tmp_path: Path,
    broker: Broker,
    config: Path,
    police: Police,
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    key = police_key_file(police, tmp_path / "police.key")
    registry_config = tmp_path / "registry.yaml"
    registry_config.write_text(
        json.dumps({"data_dir": str(tmp_path / "registry"), "mqtt": {"broker": broker.url}})
    )

    def withdraw(request_id: str) -> None:
        out = tmp_path / f"withdraw-{request_id}.jws"
        registry_cli(
            "police", "withdrawal", "sign", request_id, "--agent", "shop-42", "--key", str(key),
            "--reason", "the suspect was found on other footage", "--out", str(out),
        )  # fmt: skip
        sent = registry_cli(
            "police", "withdrawal", "send", str(out), "--config", str(registry_config)
        )
        assert f"Sent the withdrawal of request {request_id} to agent shop-42" in sent.stdout

    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(config, agents, watch)
        watch.publish(REQUESTS, police.token(police.claims(jti="waits", kind="voluntary")))
        watch.publish(REQUESTS, police.token(police.claims(jti="sends")))
        watch.wait_for(state("waits", "awaiting_owner"), timeout=15)
        moving = watch.wait_for(
            lambda m: state("sends", "uploading")(m) and m.json()["progress"]["bytes_sent"] > 0,
            timeout=30,
        ).json()
        total = moving["progress"]["bytes_total"]
        assert moving["progress"]["bytes_sent"] < total
        assert (config.parent / "state" / "evidence" / "sends").is_dir()

        withdraw("sends")
        stopped = watch.wait_for(state("sends", "withdrawn"), timeout=30).json()
        assert stopped["reason"] is None
        assert_valid("request-status", stopped)
        withdraw("waits")
        watch.wait_for(state("waits", "withdrawn"), timeout=15)

        time.sleep(3)  # time for an upload that was not stopped to go on (it must not)
        assert not [m for m in watch.messages() if state("sends", "completed")(m)]
        stored = sum(u["stored"] for u in tus.stats()["uploads"].values())
        assert stored < total  # the package never arrived whole
        # What was exported for it is gone from the device.
        assert not (config.parent / "state" / "evidence" / "sends").exists()

        for request_id, was in (("sends", "uploading"), ("waits", "awaiting_owner")):
            entries = [
                m.json() for m in watch.messages(AUDIT) if m.json()["request_id"] == request_id
            ]
            withdrawn = [e for e in entries if e["event"] == "withdrawn"]
            assert len(withdrawn) == 1, entries
            assert withdrawn[0]["detail"]["was"] == was
            assert withdrawn[0]["detail"]["kid"] == police.kid
            assert withdrawn[0]["detail"]["note"] == "the suspect was found on other footage"
            assert_valid("audit-entry", withdrawn[0])

        approve = cli(config, "requests", "approve", "waits")
        assert approve.returncode == 64 and "withdrawn by the police" in approve.stderr
        assert agent.terminate()[0] == 0

    index = SegmentIndex(config.parent / "state" / "footage.sqlite")
    holds = {h.reason for h in index.holds(datetime.now(UTC))}
    assert not holds & {"request waits", "request sends"}, holds
    shown = cli(config, "requests", "show", "sends").stdout
    assert "withdrawn by the police" in shown, shown
    assert "the suspect was found on other footage" in shown
    verify = cli(config, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_forged_replayed_stale_and_misdirected_withdrawals_are_refused_and_stop_nothing(
    broker: Broker, config: Path, police: Police, agents: list[AgentProcess]
) -> None:
    registry = Police()  # a compromised registry has keys of its own, never the police's
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(config, agents, watch)
        watch.publish(REQUESTS, police.token(police.claims(jti="keep", kind="voluntary")))
        watch.publish(REQUESTS, police.token(police.claims(jti="other", kind="voluntary")))
        watch.wait_for(state("keep", "awaiting_owner"), timeout=15)
        watch.wait_for(state("other", "awaiting_owner"), timeout=15)
        # A genuine withdrawal of `other`, and its claims re-pointed at `keep`.
        genuine = withdrawal(police, "other")
        head, _, signature = genuine.split(b".")
        claims = json.loads(jws.b64url_decode(genuine.split(b".")[1].decode()))
        repointed = b".".join(
            (
                head,
                jws.b64url_encode(json.dumps({**claims, "withdraws": "keep"}).encode()).encode(),
                signature,
            )
        )
        now = int(time.time())
        hostile = {
            "unknown_key": withdrawal(registry, "keep"),
            # Names the police key, signed by another.
            "bad_signature": withdrawal(police, "keep", key=registry.key),
            "replayed": repointed,
            "wrong_audience": withdrawal(police, "keep", aud="shop-43"),
            "expired": withdrawal(police, "keep", iat=now - 7200, exp=now - 3600),
            "not_yet_valid": withdrawal(police, "keep", iat=now + 3600),
            "claims_invalid": withdrawal(police, "keep", withdraws="../keep"),
            "bad_algorithm": withdrawal(
                police, "keep", header=police.header(typ=WITHDRAWAL_TYPE, alg="none")
            ),
            "malformed": b"eyJhbGciOiJFZERTQSIsInR5cCI6ImNhbXJlZy13aXRoZHJhd2FsK2p3dCJ9.!!.",
            "unknown_request": withdrawal(police, "never-sent"),
        }
        # The re-pointed copy's signature no longer matches what it says.
        reasons = {name: name for name in hostile} | {"replayed": "bad_signature"}
        for payload in hostile.values():
            watch.publish(REQUESTS, payload)
        for name, payload in hostile.items():
            answer = watch.wait_for(
                lambda m, p=payload: m.topic == f"{BASE}/requests/{status_id(p)}/status",  # type: ignore[misc]
                timeout=15,
            ).json()
            assert (name, answer["state"], answer["reason"]) == (name, "rejected", reasons[name])
            assert_valid("request-status", answer)

        # The genuine withdrawal of `other` works; replaying it finds the request ended.
        watch.publish(REQUESTS, genuine)
        watch.wait_for(state("other", "withdrawn"), timeout=15)
        watch.publish(REQUESTS, genuine)
        again = watch.wait_for(
            lambda m: m.topic == f"{BASE}/requests/{status_id(genuine)}/status", timeout=15
        ).json()
        assert (again["state"], again["reason"]) == ("rejected", "request_finished")

        # A request and its withdrawal sent one right after the other: it is withdrawn.
        watch.publish(REQUESTS, police.token(police.claims(jti="at-once", kind="voluntary")))
        watch.publish(REQUESTS, withdrawal(police, "at-once"))
        watch.wait_for(state("at-once", "withdrawn"), timeout=15)

        # None of it touched `keep`: it still waits for the owner, who approves it.
        keep = [m.json()["state"] for m in watch.messages() if m.topic.endswith("/keep/status")]
        assert keep[-1] == "awaiting_owner", keep
        assert cli(config, "requests", "approve", "keep").returncode == 0
        watch.wait_for(state("keep", "completed"), timeout=90)
        assert agent.terminate()[0] == 0
    audit = cli(config, "audit", "show").stdout
    assert "it withdraws a request this agent never accepted" in audit
    assert "it withdraws a request that had already ended" in audit
