"""Broken and missing state files, through the real agent process and a real broker.

One agent run records footage and accepts a voluntary request (awaiting the owner, so its
window is held); each case copies that state, breaks one kind of file for real (garbled
bytes, a deleted file) and starts the agent once: health must flow, the broken file must
be kept aside, and each file's recovery (docs/service.md, "State files") must show.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.police_requests.token import status_id
from contract.timestamps import rfc3339
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.media import write_h264
from tests.support.mqtt_watch import Received, Watcher
from tests.support.segment_check import indexed_segments
from tests.support.tokens import Police

BASE = "camreg/v1/agents/shop-42"
REQUESTS = f"{BASE}/requests"
AUDIT = f"{BASE}/audit"
STATE = f"{BASE}/state"
HELD = "held-1"


@dataclass(frozen=True)
class Seed:
    """A stopped agent's state: footage, an index, an outbox, a request store, a key."""

    root: Path
    police: Police
    token: bytes  # the accepted request's token (jti HELD)
    segments: int


def agent_config(root: Path, broker_url: str, police: Police) -> Path:
    return write_config(
        root / "config.yaml",
        broker_url=broker_url,
        cameras=[
            {
                "id": "front",
                "url": str(root / "clip.mp4"),
                "analysis_interval": "2s",
                "recording": {"segment": "1s"},
            }
        ],
        registry={"health_interval": "1s"},
        police={"keys": [{"jwk": police.jwk}], "upload_allow": [police.upload]},
    )


def health(m: Received) -> bool:
    return m.topic == f"{BASE}/cameras/front/health"


def status(request_id: str, wanted: str) -> Callable[[Received], bool]:
    topic = f"{BASE}/requests/{request_id}/status"
    return lambda m: m.topic == topic and m.json()["state"] == wanted


def audited(event: str, file: str | None = None) -> Callable[[Received], bool]:
    def match(m: Received) -> bool:
        if m.topic != AUDIT:
            return False
        body = m.json()
        return bool(body["event"] == event and (file is None or body["detail"]["file"] == file))

    return match


def closed_segments(state: Path) -> int:
    return indexed_segments(state / "footage.sqlite", "state = 'closed'")


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seed]:
    root = tmp_path_factory.mktemp("seed")
    write_h264(root / "clip.mp4", 3, width=320, height=180, fps=10)
    police = Police()
    broker = Broker(directory=root / "broker")
    broker.start()
    agent = AgentProcess(agent_config(root, broker.url, police))
    try:
        with Watcher.for_broker(broker, "camreg/#") as watch:
            agent.start()
            # Two sealed segments (the health's footage summary lags up to 10 s behind).
            eventually(
                lambda: closed_segments(root / "state") >= 2,
                "two segments recorded",
                30,
                context=lambda: agent.log,
            )
            now = datetime.now(UTC)
            window = {"start": rfc3339(now - timedelta(seconds=30)), "end": rfc3339(now)}
            token = police.token(police.claims(jti=HELD, kind="voluntary", window=window))
            watch.publish(REQUESTS, token)
            watch.wait_for(status(HELD, "awaiting_owner"), timeout=20)
            code, _ = agent.terminate()
            assert code == 0, agent.log
    finally:
        agent.close()
        broker.close()
    yield Seed(root, police, token, closed_segments(root / "state"))


@pytest.fixture
def case(seed: Seed, tmp_path: Path, broker: Broker) -> Path:
    """A copy of the seed's state, its config pointing at this test's broker."""
    for name in ("state", "footage"):
        shutil.copytree(seed.root / name, tmp_path / name, symlinks=True)
    shutil.copy(seed.root / "clip.mp4", tmp_path / "clip.mp4")
    return agent_config(tmp_path, broker.url, seed.police)


def garble(path: Path) -> None:
    """What a power cut on an SD card leaves: the first page overwritten with junk."""
    with open(path, "r+b") as fh:
        fh.write(bytes(range(256)) * 16)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def kept_aside(state: Path, name: str) -> list[Path]:
    """The broken copies of a state file (not their WAL companions)."""
    found = state.glob(f"{name}.corrupt-*")
    return sorted(p for p in found if not p.name.endswith(("-wal", "-shm", "-journal")))


def test_a_garbled_outbox_and_request_store_are_kept_aside_and_a_replay_stays_refused(
    seed: Seed, case: Path, broker: Broker, agents: list[AgentProcess]
) -> None:
    state = case.parent / "state"
    garble(state / "outbox.sqlite")
    garble(state / "requests.sqlite")
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(case).start()
        agents.append(agent)
        watch.wait_for(health, timeout=30)
        outbox = watch.wait_for(audited("state_file_reset", "outbox.sqlite"), timeout=10).json()
        store = watch.wait_for(audited("state_file_reset", "requests.sqlite"), timeout=10).json()
        # The accepted request's token, replayed into the new, empty request store.
        watch.publish(REQUESTS, seed.token)
        replay = watch.wait_for(
            lambda m: m.topic == f"{BASE}/requests/{status_id(seed.token)}/status", timeout=20
        ).json()
        # A new request is taken as before.
        fresh = seed.police.token(seed.police.claims(jti="new-1", kind="voluntary"))
        watch.publish(REQUESTS, fresh)
        watch.wait_for(status("new-1", "awaiting_owner"), timeout=20)
        assert agent.terminate()[0] == 0
    assert (replay["state"], replay["reason"]) == ("rejected", "replayed")
    assert outbox["request_id"] is None and outbox["detail"]["kept_as"].startswith(
        "outbox.sqlite.corrupt-"
    )
    assert store["detail"]["reseeded_request_ids"] == 1
    for name in ("outbox.sqlite", "requests.sqlite"):
        [kept] = kept_aside(state, name)
        assert kept.read_bytes()[:4096] == bytes(range(256)) * 16  # kept as found
    log = agent.log
    assert "Traceback" not in log
    assert sum("is broken" in line for line in log.splitlines()) == 2


def test_a_garbled_footage_index_is_rebuilt_from_the_files_with_its_holds(
    seed: Seed, case: Path, broker: Broker, agents: list[AgentProcess]
) -> None:
    state = case.parent / "state"
    garble(state / "footage.sqlite")
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(case).start()
        agents.append(agent)
        watch.wait_for(health, timeout=30)
        reset = watch.wait_for(audited("state_file_reset", "footage.sqlite"), timeout=10).json()
        # The old footage is back in the health report once the rebuild is done.
        old = watch.wait_for(
            lambda m: (
                health(m)
                and (m.json()["footage"] or {}).get("bytes", 0) > 0
                and "footage index rebuilt" in agent.log
            ),
            timeout=30,
        ).json()
        assert agent.terminate()[0] == 0
    assert reset["detail"]["kept_as"].startswith("footage.sqlite.corrupt-")
    assert old["footage"]["oldest"] is not None
    with sqlite3.connect(state / "footage.sqlite") as db:
        rebuilt = db.execute("SELECT count(*) FROM segments WHERE rebuilt = 1").fetchone()[0]
        holds = [row[0] for row in db.execute("SELECT reason FROM holds")]
    assert rebuilt == seed.segments
    # Pruning cannot delete what the accepted request holds.
    assert holds == [f"request {HELD}"]
    listing = cli("footage", "--config", str(case))
    assert listing.returncode == 0, listing.stderr
    assert f"{seed.segments} segments indexed by a rebuild" in listing.stdout
    assert "Traceback" not in agent.log
    assert len(kept_aside(state, "footage.sqlite")) == 1

    # The owner's own rebuild, with the agent stopped: the index is kept aside again.
    again = cli("footage", "rebuild", "--config", str(case))
    assert again.returncode == 0, again.stderr
    assert len(kept_aside(state, "footage.sqlite")) == 2
    assert "footage index rebuilt" in again.stdout


def test_a_deleted_index_is_rebuilt_and_a_deleted_key_is_not_replaced(
    seed: Seed, case: Path, broker: Broker, agents: list[AgentProcess]
) -> None:
    state = case.parent / "state"
    (state / "footage.sqlite").unlink()
    (state / "keys" / "device.key").unlink()
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(case).start()
        agents.append(agent)
        watch.wait_for(health, timeout=30)
        birth = watch.wait_for(
            lambda m: m.topic == STATE and m.json()["state"] == "online", timeout=10
        ).json()
        reset = watch.wait_for(audited("state_file_reset", "footage.sqlite"), timeout=10).json()
        watch.publish(REQUESTS, seed.police.token(seed.police.claims(jti="nokey-1")))
        failed = watch.wait_for(status("nokey-1", "failed"), timeout=20).json()
        watch.wait_for(lambda m: health(m) and "footage index rebuilt" in agent.log, timeout=30)
        assert agent.terminate()[0] == 0
    assert birth["device_key"] == {"state": "missing", "needs_enrolment": True}
    assert reset["detail"]["kept_as"] is None
    assert failed["reason"] == "device_key_unusable"
    assert not (state / "keys" / "device.key").exists()  # never silently a new one
    assert not (state / "evidence").exists()

    lost = cli("keys", "show", "--config", str(case))
    assert lost.returncode == 69 and "keys init --replace" in lost.stderr
    # The deliberate new key: the owner asks for it, and is told to enrol again.
    made = cli("keys", "init", "--replace", "--config", str(case))
    assert made.returncode == 0, made.stderr
    assert "enrol again" in made.stdout
    shown = cli("keys", "show", "--json", "--config", str(case))
    assert json.loads(shown.stdout)["kid"] == (state / "device-key.kid").read_text().strip()


def test_a_garbled_device_key_keeps_health_flowing_and_refuses_evidence(
    seed: Seed, case: Path, broker: Broker, agents: list[AgentProcess]
) -> None:
    key = case.parent / "state" / "keys" / "device.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = AgentProcess(case).start()
        agents.append(agent)
        watch.wait_for(health, timeout=30)
        birth = watch.wait_for(
            lambda m: m.topic == STATE and m.json()["state"] == "online", timeout=10
        ).json()
        watch.publish(REQUESTS, seed.police.token(seed.police.claims(jti="nokey-2")))
        failed = watch.wait_for(status("nokey-2", "failed"), timeout=20).json()
        assert agent.terminate()[0] == 0
    assert birth["device_key"] == {"state": "unusable", "needs_enrolment": True}
    assert failed["reason"] == "device_key_unusable"
    assert key.read_bytes() == b"-----BEGIN PRIVATE KEY-----\nbroken\n"
    refused = cli("keys", "init", "--config", str(case))
    assert refused.returncode != 0 and "exists already" in refused.stderr


def test_a_state_file_that_cannot_be_opened_stops_the_agent_with_one_line(
    case: Path, agents: list[AgentProcess]
) -> None:
    state = case.parent / "state"
    (state / "outbox.sqlite").unlink()
    (state / "outbox.sqlite").mkdir()  # not a file at all: nothing to keep aside
    agent = AgentProcess(case).start()
    agents.append(agent)
    assert agent.proc is not None
    assert agent.proc.wait(30) == 74  # EX_IOERR, documented in docs/service.md
    assert "Traceback" not in agent.log
    assert "cannot start:" in agent.log
