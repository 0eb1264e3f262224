"""The police API: search with its audit trail, preparing claims, and what it refuses."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import jws
from registry.db.schema import agents, cameras, user_audit
from registry.web import auth
from registry.web.auth import Role
from tests.support.registry_web import RegistryWeb, registry_web, server_config

HERE = (52.99250, 6.56490)  # the camera, looking south (180°) with a 90° view, 25 m


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RegistryWeb]:
    with registry_web(server_config(tmp_path)) as web:
        web.add_user("piet", Role.POLICE)
        web.add_user("olga", Role.OPERATOR)
        now = time.time()
        with web.engine.begin() as db:
            db.execute(agents.insert().values(agent_id="shop-42", state="online", audit_entries=0))
            db.execute(
                cameras.insert().values(
                    agent_id="shop-42",
                    camera_id="front",
                    name="Voordeur",
                    lat=HERE[0],
                    lon=HERE[1],
                    bearing_deg=180.0,
                    fov_deg=90.0,
                    range_m=25.0,
                    status="ok",
                    footage_oldest=now - 3600,
                    footage_newest=now,
                    received=1,
                    missing=0,
                )
            )
        yield web


def _token(web: RegistryWeb, name: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + auth.add_api_token(web.engine, name, "test")}


def _search(web: RegistryWeb, headers: dict[str, str], **body: object) -> requests.Response:
    return requests.post(web.url + "/api/v1/search", json=body, headers=headers, timeout=10)


def test_search_finds_the_camera_looking_at_the_point_and_audits_who_why(
    web: RegistryWeb,
) -> None:
    police = _token(web, "piet")
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    south = (HERE[0] - 0.00010, HERE[1])  # 11 m south: in view
    north = (HERE[0] + 0.00010, HERE[1])  # 11 m north: behind the camera
    seen = _search(web, police, lat=south[0], lon=south[1], at=at, reason="case 2026-123")
    assert seen.status_code == 200, seen.text
    [camera] = seen.json()["cameras"]
    assert camera["camera"] == "front" and 10 < camera["distance_m"] < 12
    assert len(camera["cone"]) > 3
    behind = _search(web, police, lat=north[0], lon=north[1], at=at, reason="case 2026-123")
    assert behind.json()["cameras"] == []
    before = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    assert (
        _search(web, police, lat=south[0], lon=south[1], at=before, reason="x").json()["cameras"]
        == []
    )
    with web.engine.connect() as db:
        trail = [r for r in db.execute(user_audit.select()).all() if r.action == "search"]
    assert len(trail) == 3 and trail[0].username == "piet"
    assert json.loads(trail[0].detail)["reason"] == "case 2026-123"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"lat": 91, "lon": 6.5}, "lat"),
        ({"lat": 52.9, "lon": -181}, "lon"),
        ({"lat": "NaN", "lon": 6.5}, "lat"),
        ({"lat": 52.9, "lon": 6.5, "reason": ""}, "reason"),
    ],
)
def test_search_refuses_bad_input_with_reason(
    web: RegistryWeb, body: dict[str, object], words: str
) -> None:
    full = {"at": datetime.now(UTC).isoformat(), "reason": "case 1", **body}
    answer = _search(web, _token(web, "piet"), **full)
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_operator_may_not_search_or_request(web: RegistryWeb) -> None:
    operator = _token(web, "olga")
    answer = _search(web, operator, lat=HERE[0], lon=HERE[1], at="2026-11-27T12:00:00Z", reason="x")
    assert answer.status_code == 403 and "police" in answer.json()["error"]
    listing = requests.get(web.url + "/api/v1/requests", headers=operator, timeout=5)
    assert listing.status_code == 403


def _prepare(web: RegistryWeb, headers: dict[str, str], **changes: object) -> requests.Response:
    end = datetime.now(UTC) - timedelta(minutes=1)
    body = {
        "agent": "shop-42",
        "cameras": ["front"],
        "kind": "order",
        "case": "2026-123",
        "basis": "art. 126nd Sv",
        "requester": "Officer Piet",
        "reason": "burglary at no. 5",
        "start": (end - timedelta(minutes=5)).isoformat(),
        "end": end.isoformat(),
        **changes,
    }
    return requests.post(web.url + "/api/v1/requests", json=body, headers=headers, timeout=10)


def test_prepared_claims_download_and_a_token_for_other_claims_is_refused(
    web: RegistryWeb,
) -> None:
    police = _token(web, "piet")
    prepared = _prepare(web, police)
    assert prepared.status_code == 201, prepared.text
    request_id = prepared.json()["request_id"]
    claims = requests.get(
        f"{web.url}/api/v1/requests/{request_id}/claims.json", headers=police, timeout=5
    ).json()
    assert claims["aud"] == "shop-42" and claims["jti"] == request_id
    assert claims["upload"]["url"] == web.url + "/files/"
    # A token over different claims (here: another window) is not relayed.
    key = Ed25519PrivateKey.generate()
    other = {**claims, "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z"}}
    token = jws.sign(json.dumps(other).encode(), key, "camreg-request+jwt")
    answer = requests.post(
        f"{web.url}/api/v1/requests/{request_id}/token",
        json={"token": token},
        headers=police,
        timeout=5,
    )
    assert answer.status_code == 400 and "differ" in answer.json()["error"]
    listed = requests.get(web.url + "/api/v1/requests", headers=police, timeout=5).json()
    assert [r["state"] for r in listed["requests"]] == ["prepared"]


def test_prepare_refuses_a_window_in_the_future(web: RegistryWeb) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    answer = _prepare(
        web,
        _token(web, "piet"),
        start=later.isoformat(),
        end=(later + timedelta(minutes=5)).isoformat(),
    )
    assert answer.status_code == 400 and "future" in answer.json()["error"]
