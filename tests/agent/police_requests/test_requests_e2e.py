"""Requests through the real broker to a running agent: hostile tokens rejected with their
reason on the status topic, a valid order held, approved, exported and signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from agent.clock import TEST_CLOCK_ENV as CLOCK_ENV
from agent.police_requests.token import status_id
from agent.recording.index import SegmentIndex
from contract import jws
from contract.timestamps import rfc3339
from contract.token_rules import CLOCK_SKEW
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import AgentProcess, request_config, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.tcp_proxy import SilentProxy
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
STATUS = f"{BASE}/requests/+/status"
AUDIT = f"{BASE}/audit"


def status_of(request_id: str) -> Callable[[Received], bool]:
    return lambda m: m.topic == f"{BASE}/requests/{request_id}/status"


def state(request_id: str, wanted: str) -> Callable[[Received], bool]:
    return lambda m: status_of(request_id)(m) and m.json()["state"] == wanted


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


@pytest.fixture
def police(tus: TusServer) -> Police:
    return Police(upload=tus.endpoint)


@pytest.fixture
def agent_config(
    tmp_path: Path, broker: Broker, tmp_h264: Callable[..., Path], police: Police, tus: TusServer
) -> Path:
    tus_prefix = tus.endpoint
    clip = tmp_h264(4, width=320, height=180, fps=10)
    return write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": str(clip),
                "analysis_interval": "2s",
                "recording": {"segment": "2s"},
            },
            {"id": "back", "url": str(clip), "analysis_interval": "2s"},
        ],
        registry={"health_interval": "2s"},
        police={
            "keys": [{"jwk": police.jwk}],
            "upload_allow": [tus_prefix],
            "max_window": "10m",
        },
    )


def started(
    config: Path, agents: list[AgentProcess], watch: Watcher, env: dict[str, str] | None = None
) -> AgentProcess:
    agent = AgentProcess(config, env).start()
    agents.append(agent)
    # Footage must exist before a window can be served: wait for a couple of segments.
    watch.wait_for(
        lambda m: bool(
            m.topic.endswith("/front/health") and (m.json().get("footage") or {}).get("oldest")
        ),
        timeout=30,
    )
    # More footage on purpose: the default window ends 5 s before a token is made, and
    # recorded segments must reach past it.
    time.sleep(4)
    return agent


def hostile_tokens(police: Police) -> dict[str, bytes]:
    """Each with the reason DESIGN.md gives it."""
    now = datetime.now(UTC)
    other = Police()
    evil = police.claims(upload={"url": "http://127.0.0.1:9@evil.example/files/", "token": "x"})
    return {
        "expired": police.token(police.claims(jti="r-exp", exp=int(now.timestamp()) - 600)),
        "not_yet_valid": police.token(police.claims(jti="r-nbf", nbf=int(now.timestamp()) + 600)),
        "wrong_audience": police.token(police.claims(jti="r-aud", aud="bakery-7")),
        "bad_algorithm": police.token(header=police.header(alg="none")),
        "bad_type": police.token(header=police.header(typ="JWT")),
        "unknown_key": police.token(header=police.header(kid="../../keys/device.key")),
        "bad_signature": police.token(key=other.key),
        "unknown_camera": police.token(police.claims(jti="r-cam", cameras=["*"])),
        "window_too_long": police.token(
            police.claims(
                jti="r-long",
                window={"start": rfc3339(now - timedelta(hours=2)), "end": rfc3339(now)},
            )
        ),
        "window_invalid": police.token(
            police.claims(
                jti="r-old",
                window={
                    "start": rfc3339(now - timedelta(days=30)),
                    "end": rfc3339(now - timedelta(days=29)),
                },
            )
        ),
        "upload_not_allowed": police.token(evil),
        "malformed": police.token(json.dumps(police.claims())[:-1].encode() + b',"jti":"x"}'),
        "too_large": b"e" * 20000,
    }


def more_hostile_tokens(police: Police) -> list[tuple[bytes, str]]:
    public = police.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = jws.b64url_encode(json.dumps(police.header(alg="HS256")).encode())
    body = jws.b64url_encode(json.dumps(police.claims(jti="r-hs")).encode())
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    deep = police.claims(jti="r-deep", extra=json.loads("[" * 40 + "]" * 40))
    return [
        (f"{head}.{body}.{jws.b64url_encode(mac)}".encode(), "bad_algorithm"),
        (b"eyJhbGciOiJFZERTQSJ9.not*base64.AAAA", "malformed"),
        (police.token(b'{"aud":"\xff\xfe"}'), "malformed"),
        (police.token(deep), "malformed"),
        (police.token(police.claims(jti="r-wild", cameras=["front", "#"])), "unknown_camera"),
    ]


def test_hostile_tokens_are_rejected_with_their_reason_and_audited(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess], tus: TusServer
) -> None:
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        tokens = hostile_tokens(police)
        more = more_hostile_tokens(police)
        for raw in [*tokens.values(), *(raw for raw, _ in more)]:
            watch.publish(REQUESTS, raw)
        for reason, raw in [*tokens.items(), *((reason, raw) for raw, reason in more)]:
            message = watch.wait_for(status_of(status_id(raw)), timeout=15)
            body = message.json()
            assert (body["state"], body["reason"]) == ("rejected", reason), reason
        expected = [*tokens, *(reason for _, reason in more)]

        def rejections_audited() -> list[dict[str, Any]]:
            audited = [m.json() for m in watch.messages(AUDIT) if m.json()["event"] == "rejected"]
            return audited if len(audited) >= len(expected) else []

        # Each audit entry follows its status.
        audited = eventually(rejections_audited, "an audit entry for each rejection", 10)
        assert sorted(e["detail"]["reason"] for e in audited) == sorted(expected)
        assert agent.terminate()[0] == 0
    assert not (agent_config.parent / "state" / "evidence").exists()
    assert tus.stats()["uploads"] == {}  # nothing reached the evidence server


def test_a_valid_order_ends_in_a_verified_evidence_package_and_a_replay_is_refused(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess], tus: TusServer
) -> None:
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        token = police.token(police.claims(jti="order-1"))
        watch.publish(REQUESTS, token)
        for step in ("received", "approved", "exporting", "uploading"):
            watch.wait_for(state("order-1", step), timeout=30)
        done = watch.wait_for(state("order-1", "completed"), timeout=60).json()
        assert done["progress"]["bytes_sent"] == done["progress"]["bytes_total"] > 0
        watch.wait_for(lambda m: m.topic == AUDIT and m.json()["event"] == "completed")
        events = [m.json()["event"] for m in watch.messages(AUDIT)]
        assert events[:4] == ["received", "held", "approved", "exported"]
        assert events[-1] == "completed" and "file_uploaded" in events
        assert agent.terminate()[0] == 0

        # The same token again, after a restart: refused, and the original's status stays.
        again = AgentProcess(agent_config).start()
        agents.append(again)
        watch.publish(REQUESTS, token)
        replay = watch.wait_for(status_of(status_id(token)), timeout=20).json()
        assert (replay["state"], replay["reason"]) == ("rejected", "replayed")

    # The receiver's side: what reached the tus server, checked as police would.
    received: dict[str, bytes] = {}
    for info_file in tus.store.glob("*.json"):
        info = json.loads(info_file.read_text())
        assert info["metadata"]["request_id"] == "order-1"
        data = (tus.store / info_file.stem).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["metadata"]["sha256"]
        received[info["metadata"]["filename"]] = data
    signed = received.pop("manifest.jws")
    assert hashlib.sha256(signed).hexdigest() == done["manifest_sha256"]
    head, body, signature = signed.decode().strip().split(".")
    pub = agent_config.parent / "state" / "keys" / "device.pub"
    device = jws.public_key_from_pem(pub.read_bytes())
    assert json.loads(jws.b64url_decode(head)) == {
        "alg": "EdDSA",
        "typ": "camreg-manifest+jwt",
        "kid": jws.thumbprint(device),
    }
    assert jws.verify_signature(f"{head}.{body}".encode(), jws.b64url_decode(signature), device)
    manifest = json.loads(jws.b64url_decode(body))
    assert manifest["request_id"] == "order-1" and manifest["cameras"] == ["front"]
    assert sorted(received) == sorted(f["name"] for f in manifest["files"])
    for entry in manifest["files"]:
        data = received[entry["name"]]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    # Byte-identical to the originals recorded on the device.
    index = SegmentIndex(agent_config.parent / "state" / "footage.sqlite")
    originals = {s.sha256 for s in index.segments("front")}
    assert {f["sha256"] for f in manifest["files"]} <= originals


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_voluntary_request_waits_for_the_owner_who_approves_it(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess]
) -> None:
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        watch.publish(REQUESTS, police.token(police.claims(jti="vol-1", kind="voluntary")))
        waiting = watch.wait_for(state("vol-1", "awaiting_owner"), timeout=15)
        assert waiting.json()["reason"] is None
        time.sleep(2)  # time for a move nobody made to show
        later = [m.json()["state"] for m in watch.messages() if status_of("vol-1")(m)]
        assert later[-1] == "awaiting_owner", later  # nothing moves without the owner

        listing = cli(agent_config, "requests", "list")
        assert listing.returncode == 0 and "vol-1" in listing.stdout
        assert "waiting for your decision" in listing.stdout
        shown = cli(agent_config, "requests", "show", "vol-1")
        assert "case        2026-1234" in shown.stdout and "officer 4711" in shown.stdout
        assert "decide by" in shown.stdout

        approved = cli(agent_config, "requests", "approve", "vol-1")
        assert approved.returncode == 0, approved.stderr
        assert "request vol-1 approved: its footage is exported and sent" in approved.stdout
        watch.wait_for(state("vol-1", "approved"), timeout=15)
        watch.wait_for(state("vol-1", "exporting"), timeout=15)
        again = cli(agent_config, "requests", "decline", "vol-1")
        assert again.returncode == 64 and "only a request waiting" in again.stderr
        assert agent.terminate()[0] == 0
    audit = cli(agent_config, "audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_decline_without_the_daemon_is_recorded_and_releases_the_hold(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess]
) -> None:
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        watch.publish(REQUESTS, police.token(police.claims(jti="vol-2", kind="voluntary")))
        watch.wait_for(state("vol-2", "awaiting_owner"), timeout=15)
        assert agent.terminate()[0] == 0
    index = SegmentIndex(agent_config.parent / "state" / "footage.sqlite")
    assert any(h.reason == "request vol-2" for h in index.holds(datetime.now(UTC)))
    declined = cli(agent_config, "requests", "decline", "vol-2")
    assert declined.returncode == 0, declined.stderr
    assert not any(h.reason == "request vol-2" for h in index.holds(datetime.now(UTC)))
    shown = cli(agent_config, "requests", "show", "vol-2")
    assert "declined (owner_declined)" in shown.stdout
    keys = cli(agent_config, "keys", "show", "--json")
    assert keys.returncode == 0 and json.loads(keys.stdout)["jwk"]["kty"] == "OKP"


def test_an_agent_killed_mid_upload_resumes_and_resends_at_most_one_chunk(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    police: Police,
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    clip = tmp_h264(4, width=640, height=360, fps=15)
    config = request_config(
        tmp_path / "slow.yaml",
        broker_url=broker.url,
        clip=clip,
        police_jwk=police.jwk,
        upload_allow=tus.endpoint,
        police={"upload_rate_limit": "150kB"},
    )
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(config, agents, watch)
        watch.publish(REQUESTS, police.token(police.claims(jti="slow-1")))
        moving = watch.wait_for(
            lambda m: state("slow-1", "uploading")(m) and m.json()["progress"]["bytes_sent"] > 0,
            timeout=30,
        ).json()
        total = moving["progress"]["bytes_total"]
        agent.kill()  # kill -9 in the middle of the upload
        assert moving["progress"]["bytes_sent"] < total
        again = AgentProcess(config).start()
        agents.append(again)
        done = watch.wait_for(state("slow-1", "completed"), timeout=90).json()
        assert done["progress"]["bytes_sent"] == total
        assert again.terminate()[0] == 0
    stats = tus.stats()["uploads"]
    received = sum(u["received"] for u in stats.values())
    stored = sum(u["stored"] for u in stats.values())
    files = sorted(tus.store.glob("*.json"))
    assert len(files) == len(stats)  # no upload was started twice
    largest = max((tus.store / f.stem).stat().st_size for f in files)
    assert received - stored <= largest  # at most the file (one chunk) in flight again
    assert stored == total


def test_a_segment_altered_before_export_fails_the_request_and_nothing_is_sent(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess], tus: TusServer
) -> None:
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        index = SegmentIndex(agent_config.parent / "state" / "footage.sqlite")
        victim = [s for s in index.segments("front") if s.state == "closed"][-1]
        data = bytearray(victim.path.read_bytes())
        data[200] ^= 0xFF
        victim.path.write_bytes(bytes(data))
        window = {"start": rfc3339(victim.start), "end": rfc3339(victim.end or victim.start)}
        watch.publish(REQUESTS, police.token(police.claims(jti="alt-1", window=window)))
        failed = watch.wait_for(state("alt-1", "failed"), timeout=30).json()
        assert failed["reason"] == "footage_altered"
        audit = watch.wait_for(lambda m: m.topic == AUDIT and m.json()["event"] == "failed")
        assert "no longer matches the hash" in audit.json()["detail"]["detail"]
        assert agent.terminate()[0] == 0
    assert list(tus.store.glob("*")) == []


def test_a_request_sent_while_the_agent_is_cut_off_arrives_after_it_reconnects(
    tmp_path: Path,
    make_broker: Callable[..., Broker],
    tmp_h264: Callable[..., Path],
    police: Police,
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    broker = make_broker(persistence=True)
    proxy = SilentProxy(broker.port)
    try:
        clip = tmp_h264(4, width=320, height=180, fps=10)
        config = request_config(
            tmp_path / "cut.yaml",
            broker_url=proxy.url,
            clip=clip,
            police_jwk=police.jwk,
            upload_allow=tus.endpoint,
            registry={"health_interval": "1s", "keepalive": "2s"},
        )
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent = started(config, agents, watch)
            proxy.go_silent()  # the shop's uplink dies; its connection looks open
            time.sleep(4)  # the silence outlasts the 2 s keepalive
            watch.publish(REQUESTS, police.token(police.claims(jti="away-1")))
            time.sleep(2)  # time for a status to show had the request got through
            assert not any(status_of("away-1")(m) for m in watch.messages())
            proxy.speak_again()
            # The broker kept the agent's session; on reconnect the agent subscribes again
            # and the queued request is delivered.
            watch.wait_for(state("away-1", "completed"), timeout=60)
            assert agent.terminate()[0] == 0
    finally:
        proxy.close()


def other_spelling(token: bytes) -> bytes:
    """The same token with its signature's last base64url character changed in the bits
    that carry no data: lenient decoders read the same 64 bytes."""
    head, body, signature = token.split(b".")
    last = jws.b64url_encode(bytes(63) + b"\x00")[-1]
    assert last == "A"
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(signature[-1:])
    changed = alphabet[value ^ 1 : (value ^ 1) + 1]  # the lowest of the 4 unused bits
    return b".".join([head, body, signature[:-1] + changed])


def test_request_ids_that_are_paths_or_wildcards_are_refused_and_the_device_key_stays(
    broker: Broker, agent_config: Path, police: Police, agents: list[AgentProcess], tus: TusServer
) -> None:
    keys = agent_config.parent / "state" / "keys"
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(agent_config, agents, watch)
        assert (keys / "device.key").is_file()
        now = datetime.now(UTC)
        future_end = {
            "start": rfc3339(now - timedelta(seconds=30)),
            "end": rfc3339(now + timedelta(hours=1)),
        }
        valid = police.token(police.claims(jti="after-1"))
        hostile = [
            (police.token(police.claims(jti="../keys")), "claims_invalid"),
            (police.token(police.claims(jti="a/+/b")), "claims_invalid"),
            (police.token(police.claims(jti="#")), "claims_invalid"),
            (police.token(police.claims(jti="x" * 65)), "claims_invalid"),
            (
                police.token(police.claims(jti="dup-1", cameras=["front", "front"])),
                "claims_invalid",
            ),
            (police.token(police.claims(jti="fut-1", window=future_end)), "window_invalid"),
            (other_spelling(police.token(police.claims(jti="spell-1"))), "malformed"),
        ]
        for raw, _ in hostile:
            watch.publish(REQUESTS, raw)
        watch.publish(REQUESTS, valid)
        for raw, reason in hostile:
            body = watch.wait_for(status_of(status_id(raw)), timeout=15).json()
            assert (body["state"], body["reason"]) == ("rejected", reason), reason
        # The agent still works: a valid request after them is served.
        watch.wait_for(state("after-1", "completed"), timeout=60)
        assert agent.terminate()[0] == 0
    assert (keys / "device.key").is_file() and (keys / "device.pub").is_file()
    assert sorted(p.name for p in (agent_config.parent / "state" / "evidence").iterdir()) == [
        "after-1"
    ]


def test_a_token_that_expired_while_the_clock_was_unsynchronised_is_rejected_once_it_is(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    police: Police,
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    clip = tmp_h264(4, width=320, height=180, fps=10)
    config = request_config(
        tmp_path / "clock.yaml",
        broker_url=broker.url,
        clip=clip,
        police_jwk=police.jwk,
        upload_allow=tus.endpoint,
        clock={"require_sync": True},
    )
    clock = tmp_path / "clock-status"
    clock.write_text("unsynced\n")
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(config, agents, watch, {CLOCK_ENV: str(clock)})
        now = datetime.now(UTC)
        # Valid on arrival only thanks to the 60 s of skew; expired well before the sync.
        expires = int(now.timestamp()) - 52
        late = police.token(police.claims(now, jti="late-1", iat=expires - 60, exp=expires))
        watch.publish(REQUESTS, late)
        watch.publish(REQUESTS, police.token(police.claims(now, jti="fine-1")))
        watch.wait_for(state("late-1", "waiting_clock"), timeout=15)
        watch.wait_for(state("fine-1", "waiting_clock"), timeout=15)
        # Real time passes the token's expiry plus the skew: what a clock that ran behind
        # hid from the first checks.
        time.sleep(max(0.0, expires + CLOCK_SKEW.total_seconds() + 1 - time.time()))
        clock.write_text("synced\n")
        rejected = watch.wait_for(state("late-1", "rejected"), timeout=20).json()
        assert rejected["reason"] == "expired"
        watch.wait_for(state("fine-1", "completed"), timeout=60)
        audit = watch.wait_for(
            lambda m: m.topic == AUDIT and m.json()["event"] == "rejected", timeout=10
        ).json()
        assert (audit["request_id"], audit["detail"]["reason"]) == ("late-1", "expired")
        assert agent.terminate()[0] == 0
    late_states = [m.json()["state"] for m in watch.messages() if status_of("late-1")(m)]
    assert late_states == ["received", "waiting_clock", "rejected"]
    # A stored request's rejection replaces its retained `waiting_clock` (only a junk token's
    # rejection is not retained): whoever looks later sees where it ended.
    with Watcher.for_broker(broker, f"{BASE}/requests/late-1/status") as later:
        kept = later.wait_for(status_of("late-1"), timeout=5)
        assert kept.retain and kept.json()["state"] == "rejected"
    index = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    holds = {h.reason for h in index.holds(datetime.now(UTC))}
    assert "request late-1" not in holds and "request fine-1" in holds
    assert not (tmp_path / "state" / "evidence" / "late-1").exists()
