"""Police key sets through the real broker, the registry's CLI and a running agent: the
police sign a set offline, the registry publishes it retained, the agent takes it only
when it is newer and root-signed, and a token by a key it revokes is rejected while a
token by the new key is served. Whatever a compromised registry writes on the key set
topic changes nothing. A set that goes stale while the agent runs is said in its birth,
and its keys sign nothing accepted any more."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.police_requests.token import status_id
from contract import jws
from tests.support import eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.registry_proc import registry_cli
from tests.support.schemas import assert_valid
from tests.support.tokens import Police, PoliceRoot
from tests.support.tus_server import TusServer

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
STATE = f"{BASE}/state"
KEYSET = "camreg/v1/police/keyset"
# Long enough for the agent to take the set before it expires, short enough to wait for.
LIFETIME_S = 8


def status(request_id: str, wanted: str) -> Callable[[Received], bool]:
    topic = f"{BASE}/requests/{request_id}/status"
    return lambda m: m.topic == topic and m.json()["state"] == wanted


def held_version(watch: Watcher) -> object:
    """The key set version in the agent's latest birth (None: none held, or no birth)."""
    births = [
        m.json() for m in watch.messages(STATE) if m.payload and m.json()["state"] == "online"
    ]
    if not births:
        return "no birth"
    held = births[-1].get("police_keyset")
    return None if held is None else held["version"]


def births(watch: Watcher) -> list[dict[str, Any]]:
    return [m.json() for m in watch.messages(STATE) if m.payload and m.json()["state"] == "online"]


def public_pem(police: Police, path: Path) -> Path:
    path.write_bytes(
        police.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


def test_a_revoking_key_set_rejects_the_old_key_serves_the_new_and_survives_a_restart(
    broker: Broker,
    tmp_path: Path,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    old, new = Police(upload=tus.endpoint), Police(upload=tus.endpoint)
    # The police's offline machine: a root key (made with the registry's own keygen) and
    # the request keys' public halves.
    police_dir = tmp_path / "police"
    police_dir.mkdir()
    registry_cli("police", "keygen", "--out", str(police_dir), "--name", "root")
    root_key, root_pem = police_dir / "root.key", police_dir / "root.pem"
    old_pem, new_pem = (
        public_pem(old, police_dir / "old.pem"),
        public_pem(new, police_dir / "new.pem"),
    )

    def sign(name: str, *args: str) -> Path:
        out = police_dir / name
        registry_cli(
            "police", "keyset", "sign", "--root-key", str(root_key), *args, "--out", str(out)
        )
        return out

    v1 = sign("v1.jws", "--keys", str(old_pem), "--version", "1", "--expires", "1d")
    v2 = sign("v2.jws", "--keys", str(new_pem), "--revoke", old.kid, "--version", "2")
    shown = registry_cli("police", "keyset", "show", str(v2), "--root", str(root_pem)).stdout
    assert f"revoked: {old.kid}" in shown and f"valid key: {new.kid}" in shown

    # The registry: only its broker settings, to publish.
    registry_config = tmp_path / "registry.yaml"
    registry_config.write_text(
        json.dumps({"data_dir": str(tmp_path / "registry"), "mqtt": {"broker": broker.url}})
    )

    def publish(keyset: Path) -> None:
        registry_cli("police", "keyset", "publish", str(keyset), "--config", str(registry_config))

    # The owner pinned the root only: request keys come from the police's key sets.
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": str(tmp_h264(4, width=320, height=180, fps=10)),
                "recording": {"segment": "2s"},
            }
        ],
        police={
            "root_keys": [{"file": str(root_pem)}],
            "upload_allow": [tus.endpoint],
            "max_window": "10m",
        },
    )
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        eventually(
            lambda: held_version(watch) is None,
            "a birth holding no key set",
            20,
            context=lambda: agent.log,
        )
        publish(v1)
        eventually(
            lambda: held_version(watch) == 1,
            "a birth holding key set 1",
            15,
            context=lambda: agent.log,
        )
        publish(v2)
        eventually(
            lambda: held_version(watch) == 2,
            "a birth holding key set 2",
            15,
            context=lambda: agent.log,
        )

        # What a compromised registry (or anyone who can write the topic) might send.
        other_root = PoliceRoot()
        claims = {
            "iss": "police.example",
            "version": 99,
            "iat": int(time.time()) - 5,
            "exp": int(time.time()) + 86400,
            "keys": [old.jwk],
            "revoked": [],
        }
        root_private = serialization.load_pem_private_key(root_key.read_bytes(), None)
        assert isinstance(root_private, Ed25519PrivateKey)
        genuine_root = PoliceRoot()
        genuine_root.key = root_private  # only to sign the sets the police would never sign
        forged_header = {"alg": "EdDSA", "typ": "camreg-keyset+jwt", "kid": genuine_root.kid}
        hostile = {
            "unknown_key": other_root.keyset(claims),  # signed by a key the owner never pinned
            "bad_signature": other_root.keyset(claims, header=forged_header),
            "bad_algorithm": b".".join(
                (
                    jws.b64url_encode(
                        json.dumps({**forged_header, "alg": "none"}).encode()
                    ).encode(),
                    jws.b64url_encode(json.dumps(claims).encode()).encode(),
                    b"",
                )
            ),
            "malformed": b'{"keys": []}',
            "too_large": b"e" * 100_000,
            "not_newer": v1.read_bytes().strip(),  # the genuine, older set replayed
            "version_reused": genuine_root.keyset({**claims, "version": 2}),
            "expired": genuine_root.keyset(
                {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
            ),
        }
        for payload in hostile.values():
            watch.publish(KEYSET, payload, retain=True)
        for reason in hostile:
            eventually(
                lambda reason=reason: f"police key set refused: {reason}" in agent.log,  # type: ignore[misc]
                f"the agent logging the refusal {reason}",
                10,
                context=lambda: agent.log,
            )
        assert held_version(watch) == 2

        # A token by the revoked key is rejected with its reason; one by the new key is served.
        time.sleep(2)  # footage must reach past the window's end (5 s before now)
        revoked = old.token(old.claims(jti="by-old"))
        watch.publish(REQUESTS, revoked)
        rejected = watch.wait_for(
            lambda m: m.topic == f"{BASE}/requests/{status_id(revoked)}/status", timeout=15
        )
        assert (rejected.json()["state"], rejected.json()["reason"]) == ("rejected", "revoked_key")
        watch.publish(REQUESTS, new.token(new.claims(jti="by-new")))
        watch.wait_for(status("by-new", "completed"), timeout=60)
        assert agent.terminate()[0] == 0

        # After a restart the set from disk is in force: the registry's retained copy is
        # junk now (the last hostile one), and the old key is still revoked.
        agent = AgentProcess(config).start()
        agents.append(agent)
        births = len(
            [m for m in watch.messages(STATE) if m.payload and m.json()["state"] == "online"]
        )
        eventually(
            lambda: (
                len(
                    [
                        m
                        for m in watch.messages(STATE)
                        if m.payload and m.json()["state"] == "online"
                    ]
                )
                > births
            ),
            "the restarted agent's birth",
            20,
            context=lambda: agent.log,
        )
        assert held_version(watch) == 2
        again = old.token(
            old.claims(jti="by-old-again", iat=int(datetime.now(UTC).timestamp()) - 4)
        )
        watch.publish(REQUESTS, again)
        rejected = watch.wait_for(
            lambda m: m.topic == f"{BASE}/requests/{status_id(again)}/status", timeout=15
        )
        assert rejected.json()["reason"] == "revoked_key"
        assert agent.terminate()[0] == 0
        for message in watch.messages(STATE):  # every birth as the contract says
            if message.payload:
                assert_valid("state", message.json())
    assert tus.stats()["uploads"]  # the new key's request was delivered


def keysets_told(watch: Watcher) -> list[dict[str, Any]]:
    """The police_keyset of each birth that held one, in order."""
    return [b["police_keyset"] for b in births(watch) if b.get("police_keyset")]


def test_a_stale_set_is_said_in_the_birth_and_its_keys_no_longer_sign(
    broker: Broker, tmp_path: Path, tmp_h264: Callable[..., Path], agents: list[AgentProcess]
) -> None:
    root, in_set, pinned = PoliceRoot(), Police(), Police()
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(
        root.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "url": str(tmp_h264(2, width=320, height=180, fps=10))}],
        police={"keys": [{"jwk": pinned.jwk}], "root_keys": [{"file": str(root_pem)}]},
    )
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        eventually(lambda: births(watch), "the agent's birth", 20, context=lambda: agent.log)
        claims = root.claims(1, [in_set])
        claims["exp"] = int(time.time()) + LIFETIME_S
        watch.publish(KEYSET, root.keyset(claims), retain=True)

        told = eventually(
            lambda: [k for k in keysets_told(watch) if k["stale"]],
            "a birth saying the set is stale",
            LIFETIME_S + 10,
            context=lambda: agent.log,
        )
        assert told[0]["version"] == 1
        # Before that, a birth said it was current: the stale one came while it ran.
        assert not keysets_told(watch)[0]["stale"]
        assert "went stale" in agent.log

        # A camera this agent does not have: the token fails after the key check, or at it.
        by_set = in_set.token(in_set.claims(cameras=["nowhere"]))
        by_pin = pinned.token(pinned.claims(cameras=["nowhere"]))
        for token in (by_set, by_pin):
            watch.publish(REQUESTS, token)
        answers = {
            token: watch.wait_for(f"{BASE}/requests/{status_id(token)}/status", timeout=15).json()[
                "reason"
            ]
            for token in (by_set, by_pin)
        }
        assert answers == {by_set: "unknown_key", by_pin: "unknown_camera"}
        assert agent.terminate()[0] == 0
