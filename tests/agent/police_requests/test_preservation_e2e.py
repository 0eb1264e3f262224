"""Preservations through the real broker, a running agent that records two cameras with a
short retention, and a real tus server: a preservation holds its window past the normal
retention without sending anything, a later order for the same window still finds the
footage and delivers it, and a preservation lapses by itself, after which its footage is
pruned as usual. A preservation that carries an upload, or asks for too long, is refused."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.police_requests.token import status_id
from agent.recording.index import SegmentIndex
from contract.timestamps import rfc3339
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Received, Watcher
from tests.support.schemas import assert_valid
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
AUDIT = f"{BASE}/audit"
# Footage older than this (plus the agent's 10 s pruning interval) is deleted unless held.
RETENTION_S = 10


def state(request_id: str, wanted: str) -> Callable[[Received], bool]:
    topic = f"{BASE}/requests/{request_id}/status"
    return lambda m: m.topic == topic and m.json()["state"] == wanted


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def footage_files(config: Path, camera: str, start: datetime, end: datetime) -> list[Path]:
    index = SegmentIndex(config.parent / "state" / "footage.sqlite")
    return [s.path for s in index.segments(camera, start, end) if s.path.exists()]


def test_a_preservation_holds_past_retention_serves_a_later_order_and_lapses(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    police = Police(upload=tus.endpoint)
    clip = tmp_h264(4, width=320, height=180, fps=10)
    recording = {"segment": "2s", "retention": f"{RETENTION_S}s"}
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {"id": "front", "url": str(clip), "recording": recording},
            {"id": "back", "url": str(clip), "recording": recording},
        ],
        police={"keys": [{"jwk": police.jwk}], "upload_allow": [tus.endpoint]},
    )
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        watch.wait_for(
            lambda m: bool(
                m.topic.endswith("/back/health") and (m.json().get("footage") or {}).get("oldest")
            ),
            timeout=30,
        )
        time.sleep(4)  # footage must reach past the window's end
        now = datetime.now(UTC)
        start, end = now - timedelta(seconds=5), now - timedelta(seconds=3)
        window = {"start": rfc3339(start), "end": rfc3339(end)}
        iat = int(now.timestamp()) - 1

        def preservation(jti: str, camera: str, lasts_s: int) -> bytes:
            claims = police.claims(
                jti=jti, kind="preserve", cameras=[camera], window=window, upload=None
            )
            return police.token({**claims, "iat": iat, "exp": iat + lasts_s})

        watch.publish(REQUESTS, preservation("keep-front", "front", 120))
        watch.publish(REQUESTS, preservation("keep-back", "back", 12))
        # Refused: a preservation is no request in disguise, and it does not last for ever.
        with_upload = police.token(
            {**police.claims(jti="p-up", kind="preserve", window=window), "exp": iat + 60}
        )
        too_long = preservation("p-long", "front", 91 * 86400)
        for token in (with_upload, too_long):
            watch.publish(REQUESTS, token)
            refused = watch.wait_for(
                lambda m, t=token: m.topic == f"{BASE}/requests/{status_id(t)}/status",  # type: ignore[misc]
                timeout=15,
            ).json()
            assert (refused["state"], refused["reason"]) == ("rejected", "claims_invalid")

        for request_id in ("keep-front", "keep-back"):
            held = watch.wait_for(state(request_id, "preserved"), timeout=15).json()
            assert held["reason"] is None
            assert held["progress"] == {"bytes_sent": 0, "bytes_total": 0}
            assert_valid("request-status", held)
        shown = cli(config, "requests", "show", "keep-front").stdout
        assert "footage kept for the police" in shown and "nothing is sent" in shown, shown

        # The short one lapses by itself; its footage is then pruned like any other.
        lapsed = watch.wait_for(state("keep-back", "lapsed"), timeout=30).json()
        assert_valid("request-status", lapsed)
        eventually(
            lambda: not footage_files(config, "back", start, end),
            "the lapsed preservation's footage pruned",
            30,
            context=lambda: agent.log,
        )
        # Let the normal retention (and a pruning pass) go by for the held window too.
        time.sleep(max(0.0, RETENTION_S + 12 - (datetime.now(UTC) - end).total_seconds()))
        # Well past the normal retention, the held window is still there...
        assert footage_files(config, "front", start, end)
        # ... and a later order for it is served in full.
        watch.publish(REQUESTS, police.token(police.claims(jti="order", window=window)))
        done = watch.wait_for(state("order", "completed"), timeout=60).json()
        assert done["progress"]["bytes_sent"] == done["progress"]["bytes_total"] > 0
        assert tus.stats()["uploads"]
        # The preservation itself sent nothing and still holds.
        front = [
            m.json()["state"] for m in watch.messages() if m.topic.endswith("/keep-front/status")
        ]
        assert front == ["received", "preserved"], front
        assert agent.terminate()[0] == 0

    events = [
        (m.json()["request_id"], m.json()["event"])
        for m in watch.messages(AUDIT)
        if m.json()["request_id"] in ("keep-front", "keep-back")
    ]
    assert ("keep-front", "preserved") in events and ("keep-back", "lapsed") in events
    assert not [e for e in events if e[1] in ("exported", "file_uploaded", "completed")]
    audit = cli(config, "audit", "show", "--request", "keep-back").stdout
    assert "the preservation lapsed" in audit, audit
