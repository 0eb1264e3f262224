"""The owner's receipt of a delivery, through the real owner page over HTTP: an order
exported and delivered by the real request desk to a real tus server, then the receipt
downloaded and checked against what the server received and the audit log."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.agent.owner_page.support import OwnerPageUnderTest, owner_page
from tests.agent.owner_page.test_owner_page import _session, _voluntary
from tests.support.delivery import fast_uploader
from tests.support.tokens import Police
from tests.support.tus_server import TusServer, tus_server


@pytest.fixture
def tus() -> Iterator[TusServer]:
    with tus_server() as server:
        yield server


@pytest.fixture
def delivering(tmp_path: Path, tus: TusServer) -> Iterator[OwnerPageUnderTest]:
    police = Police(upload=tus.endpoint)
    with owner_page(
        tmp_path,
        police=police,
        device_key=Ed25519PrivateKey.generate(),
        uploader=fast_uploader(),
    ) as under_test:
        yield under_test


def record(under_test: OwnerPageUnderTest, start: datetime, count: int) -> None:
    """`count` 5 s segments of camera front from `start`, hashed as the recorder does."""
    for number in range(count):
        begin = start + timedelta(seconds=5 * number)
        path = under_test.data_dir / f"front-{number}.ts"
        data = random.Random(number).randbytes(40_000 + number)
        path.write_bytes(data)
        segment = under_test.index.begin("front", path, begin)
        under_test.index.close(
            segment, begin + timedelta(seconds=5), len(data), hashlib.sha256(data).hexdigest()
        )


def test_after_a_delivery_the_owner_downloads_a_receipt_that_matches_what_left(
    delivering: OwnerPageUnderTest, tus: TusServer
) -> None:
    under_test = delivering
    now = datetime.now(UTC)
    record(under_test, now - timedelta(seconds=30), 5)
    police = under_test.police
    claims = police.claims(
        jti="ord-7",
        case="2026-0815",
        basis="Sv 126nd",
        requester="agent Jansen",
        upload={"url": tus.endpoint, "token": tus.token},
    )
    under_test.submit(police.token(claims), "ord-7", "completed")

    client, _csrf = _session(under_test.url)
    page = client.get(under_test.url + "/requests", timeout=10)
    assert 'href="/requests/ord-7/receipt"' in page.text
    answer = client.get(under_test.url + "/requests/ord-7/receipt", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="receipt-ord-7.json"'
    receipt = json.loads(answer.content)
    assert receipt["schema"] == "camreg.owner-receipt.v1" and receipt["agent"] == "shop-42"
    assert {k: receipt["request"][k] for k in ("id", "kind", "case", "basis", "requester")} == {
        "id": "ord-7",
        "kind": "order",
        "case": "2026-0815",
        "basis": "Sv 126nd",
        "requester": "agent Jansen",
    }
    assert receipt["request"]["state"] == "completed"
    assert receipt["sent_to"] == tus.endpoint
    assert [d["event"] for d in receipt["decision"]] == ["approved"]

    # What left is what the evidence server holds: every file, hash and size.
    stored = under_test.store.get("ord-7")
    sent = {f["name"]: f for f in receipt["files"]}
    assert "manifest.jws" in sent and len(sent) >= 3
    for name, facts in sent.items():
        kept = under_test.store.upload_of("ord-7", name)
        assert kept is not None and kept[1], name
        data = tus.stored_bytes(kept[0])
        assert facts["sha256"] == hashlib.sha256(data).hexdigest()
        assert facts["bytes"] == len(data)
    assert receipt["manifest_sha256"] == stored.manifest_sha256 == sent["manifest.jws"]["sha256"]
    assert receipt["completed"] is not None

    # Every entry quoted is the audit log's own, with its place and hash in the chain.
    logged = {e.seq: e for e in under_test.audit.entries("ord-7")}
    assert [e["seq"] for e in receipt["audit"]] == sorted(logged)
    for quoted in receipt["audit"]:
        assert quoted["hash"] == logged[quoted["seq"]].hash
    assert under_test.audit.verify().intact


def test_no_receipt_without_a_login_or_before_anything_left(
    delivering: OwnerPageUnderTest,
) -> None:
    under_test = delivering
    request_id = _voluntary(under_test)  # waits for the owner: nothing has left
    anonymous = requests.get(
        under_test.url + f"/requests/{request_id}/receipt", timeout=10, allow_redirects=False
    )
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    client, _csrf = _session(under_test.url)
    page = client.get(under_test.url + "/requests", timeout=10)
    assert f"/requests/{request_id}/receipt" not in page.text
    answer = client.get(under_test.url + f"/requests/{request_id}/receipt", timeout=10)
    assert answer.status_code == 404
    assert f"nothing of request {request_id} has left this device" in answer.text
    for other in ("nope", "..%2F..%2Fetc", "vol-1%00"):
        answer = client.get(under_test.url + f"/requests/{other}/receipt", timeout=10)
        assert answer.status_code == 404, other
        # No such request (or, with the slash decoded, no such page): never a receipt.
        assert re.search("no such request|Not Found", answer.text), other
        assert "owner-receipt" not in answer.text
