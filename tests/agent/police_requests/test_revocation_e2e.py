"""A request accepted under a police key that is revoked afterwards goes no further: through
the real broker, a running agent and a real tus server, a key set revoking the key stops a
request that waits for the owner and one whose footage is being uploaded, each rejected
under its own id with `revoked_key`, audited, its hold released, and nothing more sent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from agent.recording.index import SegmentIndex
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.schemas import assert_valid
from tests.support.tokens import Police, PoliceRoot
from tests.support.tus_server import TusServer

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
AUDIT = f"{BASE}/audit"
KEYSET = "camreg/v1/police/keyset"


def state(request_id: str, wanted: str) -> Callable[[Received], bool]:
    topic = f"{BASE}/requests/{request_id}/status"
    return lambda m: m.topic == topic and m.json()["state"] == wanted


def audited(watch: Watcher, request_id: str) -> list[dict[str, Any]]:
    return [m.json() for m in watch.messages(AUDIT) if m.json()["request_id"] == request_id]


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


def root_config(
    tmp_path: Path, broker: Broker, clip: Path, root: PoliceRoot, tus: TusServer
) -> Path:
    """An agent whose owner pinned only the police root: request keys come from key sets."""
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(
        root.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": str(clip), "recording": {"segment": "2s"}}],
        police={
            "root_keys": [{"file": str(root_pem)}],
            "upload_allow": [tus.endpoint],
            "max_window": "10m",
            # Slow enough that the upload is still running when the key set arrives.
            "upload_rate_limit": "100kB",
        },
    )


def test_a_key_revoked_after_acceptance_stops_a_waiting_and_an_uploading_request(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    root, old, new = PoliceRoot(), Police(upload=tus.endpoint), Police(upload=tus.endpoint)
    config = root_config(tmp_path, broker, tmp_h264(4, width=640, height=360, fps=15), root, tus)
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        watch.publish(KEYSET, root.keyset(root.claims(1, [old])), retain=True)
        eventually(
            lambda: "police key set version 1 accepted" in agent.log,
            "the agent taking key set 1",
            20,
            context=lambda: agent.log,
        )
        watch.wait_for(
            lambda m: bool(
                m.topic.endswith("/front/health") and (m.json().get("footage") or {}).get("oldest")
            ),
            timeout=30,
        )
        time.sleep(4)  # footage must reach past the window's end (5 s before now)
        watch.publish(REQUESTS, old.token(old.claims(jti="waits", kind="voluntary")))
        watch.publish(REQUESTS, old.token(old.claims(jti="sends")))
        watch.wait_for(state("waits", "awaiting_owner"), timeout=15)
        moving = watch.wait_for(
            lambda m: state("sends", "uploading")(m) and m.json()["progress"]["bytes_sent"] > 0,
            timeout=30,
        ).json()
        assert moving["progress"]["bytes_sent"] < moving["progress"]["bytes_total"]

        # The police revoke the key that signed both.
        watch.publish(KEYSET, root.keyset(root.claims(2, [new], revoked=(old.kid,))), retain=True)
        for request_id in ("waits", "sends"):
            stopped = watch.wait_for(state(request_id, "rejected"), timeout=30).json()
            assert stopped["reason"] == "revoked_key"
            assert_valid("request-status", stopped)
        time.sleep(3)  # time for an upload that was not stopped to go on (it must not)
        sends = [m.json() for m in watch.messages() if state("sends", "uploading")(m)]
        last_sent = sends[-1]["progress"]["bytes_sent"]
        assert last_sent < moving["progress"]["bytes_total"]
        stored = sum(u["stored"] for u in tus.stats()["uploads"].values())
        assert stored < moving["progress"]["bytes_total"]  # the package never arrived whole
        assert not [m for m in watch.messages() if state("sends", "completed")(m)]

        for request_id in ("waits", "sends"):
            entries = audited(watch, request_id)
            rejected = [e for e in entries if e["event"] == "rejected"]
            assert [e["detail"]["reason"] for e in rejected] == ["revoked_key"], entries
            assert old.kid in rejected[0]["detail"]["detail"]

        # Each key set taken is in the audit log the registry holds, with its keys and root.
        taken = [m.json() for m in watch.messages(AUDIT) if m.json()["event"] == "keyset_accepted"]
        assert [(e["detail"]["version"], e["detail"]["revoked"]) for e in taken] == [
            (1, []),
            (2, [old.kid]),
        ]
        assert taken[1]["detail"]["root_kid"] == root.kid
        for entry in taken:
            assert_valid("audit-entry", entry)

        # The owner can no longer approve what the police's revoked key asked for.
        approve = cli(config, "requests", "approve", "waits")
        assert approve.returncode == 64 and "request waits is rejected" in approve.stderr
        assert agent.terminate()[0] == 0

    index = SegmentIndex(config.parent / "state" / "footage.sqlite")
    holds = {h.reason for h in index.holds(datetime.now(UTC))}
    assert not holds & {"request waits", "request sends"}, holds
    shown = cli(config, "requests", "show", "sends")
    assert "rejected (revoked_key)" in shown.stdout, shown.stdout
    assert "revoked" in shown.stdout  # the audit line in words
    audit = cli(config, "audit", "show").stdout
    assert "police key set version 2 accepted" in audit and "1 revoked" in audit, audit
    verify = cli(config, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
