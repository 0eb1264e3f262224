"""A flood of junk tokens through the real broker must not fill the agent's disk.

Anyone who can publish on the requests topic (a compromised registry, a broker with a
weak ACL) can send tokens by the thousand. Each rejection used to be an audit line, a
retained status on the broker and two outbox rows; now a burst is answered one by one,
the rest counted into one summary entry, rejection statuses are not retained, and a valid
request after the flood is still served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.audit import REJECTIONS_SUMMARISED
from agent.police_requests.rejections import DETAILED_BURST, NOT_CHECKED
from agent.police_requests.token import status_id
from tests.agent.police_requests.test_requests_e2e import (
    AUDIT,
    BASE,
    REQUESTS,
    started,
    state,
    status_of,
)
from tests.support import REPO_ROOT
from tests.support.agent_proc import AgentProcess, request_config
from tests.support.broker import Broker
from tests.support.mqtt_watch import Watcher
from tests.support.tokens import Police
from tests.support.tus_server import TusServer

FLOOD = 2000
# What the flood may add, whatever its size: the burst answered one by one (an entry is
# under 400 bytes) and the summary (under 2 kB); far below the ~700 kB of 2000 entries.
AUDIT_GROWTH_MAX = 32 * 1024
# The state directory without the exported evidence of the valid request: the audit log,
# the outbox (SQLite and its WAL) and the request store. 2000 rejections used to write
# 8000 outbox transactions, a WAL of several MB.
DATA_DIR_GROWTH_MAX = 1024 * 1024


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with TusServer(token="bearer-123", checksum=True) as server:
        yield server


@pytest.fixture
def police(tus: TusServer) -> Police:
    return Police(upload=tus.endpoint)


def tree_bytes(root: Path, *, skip: str) -> int:
    total = 0
    for path in root.rglob("*"):
        if skip in path.relative_to(root).parts:
            continue
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def audit_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "audit", *args, "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def junk(police: Police, other: Police, number: int) -> tuple[bytes, str]:
    """Distinct tokens, three kinds of junk: garbage, a forged signature, no such key."""
    match number % 3:
        case 0:
            return b"junk-%d" % number, "malformed"
        case 1:
            return police.token(police.claims(jti=f"j-{number}"), key=other.key), "bad_signature"
        case _:
            header = police.header(kid=f"nokey{number}")
            return police.token(police.claims(jti=f"k-{number}"), header=header), "unknown_key"


def test_a_flood_of_junk_tokens_grows_the_disk_by_a_bounded_amount(
    tmp_path: Path,
    broker: Broker,
    tmp_h264: Callable[..., Path],
    police: Police,
    agents: list[AgentProcess],
    tus: TusServer,
) -> None:
    clip = tmp_h264(4, width=320, height=180, fps=10)
    config = request_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        clip=clip,
        police_jwk=police.jwk,
        upload_allow=tus.endpoint,
    )
    state_dir = tmp_path / "state"
    audit_file = state_dir / "audit.jsonl"
    other = Police()
    flood = [junk(police, other, n) for n in range(FLOOD)]
    with Watcher.for_broker(broker, "camreg/#") as watch:
        agent = started(config, agents, watch)
        audit_before = audit_file.stat().st_size if audit_file.exists() else 0
        data_before = tree_bytes(state_dir, skip="evidence")
        for raw, _ in flood:
            watch.publish(REQUESTS, raw)
        # The desk works through its queue in order: the valid order after the flood is
        # served once every junk token was looked at.
        watch.publish(REQUESTS, police.token(police.claims(jti="after-flood")))
        watch.wait_for(state("after-flood", "completed"), timeout=90)

        # The burst was answered one by one, with the reason, as before.
        first_raw, first_reason = flood[0]
        answered = watch.wait_for(status_of(status_id(first_raw)), timeout=10)
        assert (answered.json()["state"], answered.json()["reason"]) == (
            "rejected",
            first_reason,
        )
        statuses = watch.messages(f"{BASE}/requests/+/status")
        rejected = [m for m in statuses if m.json()["state"] == "rejected"]
        assert len(rejected) == DETAILED_BURST

        # A fresh subscriber gets the valid request's retained status, and no rejection.
        with Watcher.for_broker(broker, f"{BASE}/requests/+/status") as fresh:
            fresh.wait_for(status_of("after-flood"), timeout=10)
            retained = [m.json()["state"] for m in fresh.messages()]
        assert "rejected" not in retained, retained

        assert agent.terminate()[0] == 0
        # The summary is written at the latest when the agent stops, and published.
        summary = watch.wait_for(
            lambda m: m.topic == AUDIT and m.json()["event"] == REJECTIONS_SUMMARISED,
            timeout=10,
        ).json()

    audit_growth = audit_file.stat().st_size - audit_before
    assert audit_growth < AUDIT_GROWTH_MAX, audit_growth
    data_growth = tree_bytes(state_dir, skip="evidence") - data_before
    assert data_growth < DATA_DIR_GROWTH_MAX, data_growth

    entries = [json.loads(line) for line in audit_file.read_text().splitlines()]
    detailed = [e for e in entries if e["event"] == "rejected"]
    summaries = [e for e in entries if e["event"] == REJECTIONS_SUMMARISED]
    assert summaries[-1] == summary
    assert len(detailed) == DETAILED_BURST
    counted = sum(s["detail"]["count"] for s in summaries)
    assert len(detailed) + counted == FLOOD
    by_reason: dict[str, int] = {}
    for _, reason in flood[DETAILED_BURST:]:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    reasons = dict(summary["detail"]["reasons"])
    # Tokens that arrive while MAX_WAITING_TOKENS already wait are dropped unchecked: on a
    # slow machine the desk may fall that far behind the flood.
    unchecked = reasons.pop(NOT_CHECKED, 0)
    assert all(reasons.get(r, 0) <= n for r, n in by_reason.items()), (reasons, by_reason)
    assert sum(reasons.values()) + unchecked == FLOOD - DETAILED_BURST
    # The first suppressed tokens are named, as on the status topic, so police can find them.
    named = summary["detail"]["first_ids"]
    counted_first = flood[DETAILED_BURST : DETAILED_BURST + len(named)]
    if not unchecked:
        assert reasons == by_reason
        assert named == [status_id(raw) for raw, _ in counted_first]
    assert set(named) <= {status_id(raw) for raw, _ in flood[DETAILED_BURST:]}
    assert named and summary["request_id"] is None

    verified = audit_cli(config, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = audit_cli(config, "show")
    assert f"{FLOOD - DETAILED_BURST} more rejected tokens" in shown.stdout, shown.stdout
    assert os.stat(audit_file).st_mode & 0o777 == 0o600
