"""The contract documents themselves: well-formed, and strict where receivers rely on them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.clock import ClockState
from agent.mqtt import payloads
from agent.quality.assess import Health, StreamFacts
from contract.request_states import RequestState
from tests.support.schemas import SCHEMAS, assert_valid

HEALTH = payloads.health(
    agent="shop-42",
    camera="front",
    bdseq=3,
    seq=17,
    snapshot=Health(
        "ok",
        (),
        {"fps": 15.0, "reconnects_1h": 0},
        StreamFacts("h264", 1280, 720, "rtsp", 15.0, 2000.0),
    ),
    clock=ClockState(True, "chrony"),
)


def test_what_the_agent_builds_is_valid() -> None:
    assert_valid("health", HEALTH)
    birth = payloads.birth(
        "shop-42",
        3,
        "0.1.0",
        ClockState(False, "none"),
        [
            payloads.CameraDescription(
                "front", "Voordeur", {"lat": 52.1, "lon": 6.5, "fov_deg": 90.0}, 1920
            )
        ],
    )
    assert_valid("state", birth)
    assert_valid("state", payloads.death("shop-42", 3, "connection_lost"))
    held = {"version": 7, "expires": "2026-12-31T12:00:00.000Z", "stale": True}
    assert_valid("state", {**birth, "police_keyset": held})
    with pytest.raises(AssertionError):
        assert_valid("state", {**birth, "police_keyset": {**held, "version": 0}})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "broken"),
        ("problems", ["on_fire"]),
        ("ts", "2026-11-27 10:00:00"),
        ("camera", "Front Door"),
        ("password", "x"),
    ],
)
def test_a_wrong_health_object_is_refused(key: str, value: Any) -> None:
    wrong = copy.deepcopy(HEALTH)
    wrong[key] = value
    with pytest.raises(AssertionError):
        assert_valid("health", wrong)


STATUS: dict[str, Any] = {
    "request_id": "2026-0042-a",
    "state": "uploading",
    "reason": None,
    "progress": {"bytes_sent": 1000, "bytes_total": 5000},
    "manifest_sha256": "ab" * 32,
    "ts": "2026-11-27T10:05:00.000Z",
}


@pytest.mark.parametrize(
    "changes",
    [
        {"state": "rejected", "reason": "expired", "progress": None, "manifest_sha256": None},
        {"state": "rejected", "reason": "revoked_key", "progress": None, "manifest_sha256": None},
        {"state": "declined", "reason": "owner_timeout"},
        {"state": "failed", "reason": "footage_altered"},
        {"state": "waiting_clock", "progress": None, "manifest_sha256": None},
        {"state": "completed", "progress": {"bytes_sent": 5000, "bytes_total": 5000}},
        {
            "request_id": "3f2a9c0d41b7e815",
            "state": "rejected",
            "reason": "replayed",
            "progress": None,
        },
    ],
)
def test_request_statuses_of_the_contract_are_valid(changes: dict[str, Any]) -> None:
    assert_valid("request-status", {**STATUS, **changes})


def test_the_status_the_desk_publishes_is_the_contracts_to_the_byte() -> None:
    body = payloads.request_status(
        "2026-0042-a",
        RequestState.UPLOADING,
        None,
        datetime(2026, 11, 27, 10, 5, tzinfo=UTC),
        bytes_sent=1000,
        bytes_total=5000,
        manifest_sha256="ab" * 32,
    )
    assert body == STATUS
    assert payloads.encode(body) == (
        b'{"request_id":"2026-0042-a","state":"uploading","reason":null,'
        b'"progress":{"bytes_sent":1000,"bytes_total":5000},'
        b'"manifest_sha256":"' + b"ab" * 32 + b'","ts":"2026-11-27T10:05:00.000Z"}'
    )
    rejected = payloads.request_status(
        "3f2a9c0d41b7e815", RequestState.REJECTED, "replayed", datetime(2026, 11, 27, tzinfo=UTC)
    )
    assert_valid("request-status", rejected)


def test_the_request_states_are_the_schemas() -> None:
    schema = json.loads((SCHEMAS / "request-status.schema.json").read_text())
    assert [state.value for state in RequestState] == schema["properties"]["state"]["enum"]
    finals = {"rejected", "declined", "completed", "failed", "withdrawn", "lapsed"}
    assert {state for state in RequestState if state.final} == finals


@pytest.mark.parametrize(
    "changes",
    [
        {"state": "rejected", "reason": None},  # a rejection always says why
        {"state": "rejected", "reason": "owner_declined"},  # a declined reason
        {"state": "declined", "reason": "expired"},
        {"state": "failed", "reason": "bad_signature"},
        {"state": "uploading", "reason": "upload_failed"},  # no reason while in progress
        {"state": "completed", "manifest_sha256": None},
        {"state": "completed", "progress": None},
        {"state": "cancelled"},
        {"request_id": "../other"},
        {"manifest_sha256": "AB" * 32},
        {"progress": {"bytes_sent": -1, "bytes_total": 5000}},
        {"token": "eyJ.eyJ.sig"},  # never the token itself
    ],
)
def test_a_wrong_request_status_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        assert_valid("request-status", {**STATUS, **changes})


AUDIT: dict[str, Any] = {
    "seq": 1,
    "ts": "2026-11-27T10:02:00.000Z",
    "event": "received",
    "request_id": "2026-0042-a",
    "detail": {"kind": "order"},
    "prev": "0" * 64,
    "hash": "c" * 64,
}


def test_an_audit_entry_is_valid() -> None:
    assert_valid("audit-entry", AUDIT)
    assert_valid("audit-entry", {**AUDIT, "request_id": None, "event": "key_created"})


@pytest.mark.parametrize(
    "changes",
    [
        {"seq": 0},
        {"prev": None},
        {"hash": "xyz"},
        {"event": "Received"},
        {"detail": "text"},
        {"token": "eyJ.eyJ.sig"},
    ],
)
def test_a_wrong_audit_entry_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        assert_valid("audit-entry", {**AUDIT, **changes})
