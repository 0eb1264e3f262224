"""The health dashboard in a real Chromium: login, map and table coloured by health, filter,
live updates; and what happens without a login, with the wrong role or without CSRF."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy import update

from registry.db.schema import agents, cameras, user_audit
from registry.web.auth import Role
from tests.support.browser import chromium
from tests.support.registry_web import PASSWORD, RegistryWeb, registry_web, server_config


def _camera(
    camera_id: str, status: str, problems: list[str], lat: float, **extra: Any
) -> dict[str, Any]:
    now = time.time()
    return {
        "agent_id": "shop-42",
        "camera_id": camera_id,
        "name": camera_id.title(),
        "lat": lat,
        "lon": 6.5649,
        "bearing_deg": 180.0,
        "fov_deg": 90.0,
        "range_m": 25.0,
        "dori_json": json.dumps({"detect": 40, "observe": 16, "recognise": 8, "identify": 4}),
        "status": status,
        "problems_json": json.dumps(problems),
        "report_ts": now,
        "footage_oldest": now - 86400,
        "footage_newest": now,
        "received": 10,
        "missing": 0,
        **extra,
    }


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RegistryWeb]:
    with registry_web(server_config(tmp_path)) as web:
        web.add_user("olga", Role.OPERATOR)
        web.add_user("piet", Role.POLICE)
        with web.engine.begin() as db:
            db.execute(agents.insert().values(agent_id="shop-42", state="online", audit_entries=0))
            db.execute(
                cameras.insert(),
                [
                    _camera("front", "ok", [], 52.9925),
                    _camera("yard", "failed", ["covered"], 52.9930),
                    _camera("alley", "degraded", ["blurred", "too_dark"], 52.9935),
                ],
            )
        yield web


def _log_in(page: Page, web: RegistryWeb, name: str, password: str = PASSWORD) -> None:
    page.goto(web.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_dashboard_shows_every_camera_by_health_and_updates_live(web: RegistryWeb) -> None:
    with chromium() as browser:
        page = browser.new_page()
        _log_in(page, web, "olga")
        rows = page.locator("#cameras tbody tr")
        expect(rows).to_have_count(3)
        expect(page.locator("#summary")).to_have_text(re.compile(r"^3 cameras, 2 with a problem"))
        yard = page.locator('tr[data-camera="shop-42/yard"]')
        expect(yard).to_contain_text("failed")
        expect(yard).to_contain_text("covered")
        # On the map: a marker and a view cone per camera, with no tile server reachable.
        expect(page.locator("path.marker")).to_have_count(3)
        expect(page.locator("path.cone")).to_have_count(3)
        expect(page.locator("path.marker.status-failed")).to_have_count(1)

        page.locator("#filter").select_option("problem:covered")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Yard")

        # The owner uncovers the camera; the page follows without a reload.
        page.locator("#filter").select_option("")
        with web.engine.begin() as db:
            db.execute(
                update(cameras)
                .where(cameras.c.camera_id == "yard")
                .values(status="ok", problems_json="[]")
            )
        expect(yard).to_contain_text("ok", timeout=10_000)
        expect(page.locator("path.marker.status-failed")).to_have_count(0)
        expect(page.locator("#summary")).to_have_text(re.compile(r"^3 cameras, 1 with a problem"))


def test_nothing_is_public(web: RegistryWeb) -> None:
    page = requests.get(web.url + "/", allow_redirects=False, timeout=5)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    api = requests.get(web.url + "/api/v1/cameras", timeout=5)
    assert api.status_code == 401
    assert "log in first" in api.json()["error"]
    forged = requests.get(
        web.url + "/api/v1/cameras", headers={"Authorization": "Bearer crt_nope"}, timeout=5
    )
    assert forged.status_code == 401


def _login(web: RegistryWeb, name: str, password: str = PASSWORD) -> tuple[requests.Session, str]:
    """A client session after a login attempt, and the page the attempt ended on."""
    session = requests.Session()
    answer = session.post(
        web.url + "/login", data={"username": name, "password": password}, timeout=10
    )
    answer.raise_for_status()
    return session, answer.text


def _session(web: RegistryWeb, name: str, password: str = PASSWORD) -> requests.Session:
    return _login(web, name, password)[0]


def test_lock_out_after_repeated_failures_even_with_the_right_password(web: RegistryWeb) -> None:
    for _ in range(web.config.login.lockout_after):
        _, text = _login(web, "olga", "wrong password!!")
        assert "wrong user name or password" in text
    locked, text = _login(web, "olga")
    assert "wrong user name or password" in text
    assert locked.get(web.url + "/api/v1/cameras", timeout=5).status_code == 401
    with web.engine.connect() as db:
        reasons = [json.loads(r.detail)["reason"] for r in db.execute(user_audit.select()).all()]
    assert any("locked for" in reason for reason in reasons)
    assert sum("wrong password for olga" in reason for reason in reasons) == 5


def test_state_change_without_csrf_token_is_refused_and_changes_nothing(
    web: RegistryWeb,
) -> None:
    session = _session(web, "olga")
    refused = session.post(web.url + "/logout", allow_redirects=False, timeout=5)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    # Still logged in: the forged logout did nothing.
    assert session.get(web.url + "/api/v1/cameras", timeout=5).status_code == 200


def test_a_camera_name_from_an_agent_is_shown_as_text_never_run(web: RegistryWeb) -> None:
    hostile = '<img id="injected" src="x" onerror="document.title=\'owned\'">'
    with web.engine.begin() as db:
        db.execute(update(cameras).where(cameras.c.camera_id == "front").values(name=hostile))
    with chromium() as browser:
        page = browser.new_page()
        _log_in(page, web, "olga")
        front = page.locator('tr[data-camera="shop-42/front"]')
        expect(front).to_contain_text(hostile)
        page.locator("path.marker.status-ok").click()
        expect(page.locator(".leaflet-popup-content")).to_contain_text(hostile)
        expect(page.locator("#injected")).to_have_count(0)
        assert page.title() != "owned"


def test_pages_carry_a_content_security_policy(web: RegistryWeb) -> None:
    policy = requests.get(web.url + "/login", timeout=5).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def _health(state: str, accepted: list[str]) -> str:
    """The stored health object's fields the dashboard reads beside the status."""
    return json.dumps(
        {
            "judgement": {
                "state": state,
                "waiting_for": ["reference"] if state == "pending" else [],
                "samples": 4,
                "samples_needed": 3,
                "lighting": "colour",
            },
            "accepted": accepted,
        }
    )


def test_a_camera_not_yet_judged_is_shown_as_such_not_as_ok(web: RegistryWeb) -> None:
    """Front says ok, but its picture is not judged yet: the table, the map and the summary
    say "not yet judged"; once judged it is ok, with the problem its owner accepted."""
    with web.engine.begin() as db:
        db.execute(
            update(cameras)
            .where(cameras.c.camera_id == "front")
            .values(health_json=_health("pending", []))
        )
    with chromium() as browser:
        page = browser.new_page()
        _log_in(page, web, "olga")
        front = page.locator('tr[data-camera="shop-42/front"]')
        expect(front.locator("td.status")).to_have_text("not yet judged")
        expect(page.locator("path.marker.status-pending")).to_have_count(1)
        expect(page.locator("path.marker.status-ok")).to_have_count(0)
        expect(page.locator("#summary")).to_contain_text("2 with a problem, 1 not yet judged")
        page.locator("#filter").select_option("pending")
        expect(page.locator("#cameras tbody tr")).to_have_count(1)
        page.locator("#filter").select_option("")
        with web.engine.begin() as db:
            db.execute(
                update(cameras)
                .where(cameras.c.camera_id == "front")
                .values(health_json=_health("judged", ["noisy"]))
            )
        expect(front.locator("td.status")).to_have_text("ok", timeout=10_000)
        expect(front).to_contain_text("none (accepted as normal: noisy)")
        expect(page.locator("path.marker.status-ok")).to_have_count(1)
    police = _session(web, "piet")
    with web.engine.begin() as db:
        db.execute(
            update(cameras)
            .where(cameras.c.camera_id == "front")
            .values(health_json=_health("pending", []))
        )
    listed = police.get(web.url + "/api/v1/cameras", timeout=5).json()["cameras"]
    front_row = next(c for c in listed if c["camera"] == "front")
    assert (front_row["status"], front_row["judgement"]) == ("pending", "pending")
