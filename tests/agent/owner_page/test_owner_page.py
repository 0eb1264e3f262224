"""The owner page in a real Chromium, on real parts (request desk, store, audit log, footage
index): login, cameras with problems and advice, snapshot, footage, DORI, a voluntary request
approved on the page, the audit log, a phone screen; and every refusal logged, nothing changed."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, ViewportSize, expect

from agent.owner_page.auth import set_owner_password
from agent.quality.assess import Health
from tests.agent.owner_page.support import PASSWORD, OwnerPageUnderTest, owner_page
from tests.support.browser import chromium

PHONE: ViewportSize = {"width": 360, "height": 740}


@pytest.fixture
def page_under_test(tmp_path: Path) -> Iterator[OwnerPageUnderTest]:
    with owner_page(tmp_path) as under_test:
        yield under_test


def _voluntary(under_test: OwnerPageUnderTest, request_id: str = "vol-1") -> str:
    police = under_test.police
    token = police.token(
        police.claims(jti=request_id, kind="voluntary", case="2026-0815", requester="agent Jansen")
    )
    under_test.submit(token, request_id)
    return request_id


def _log_in(page: Page, url: str, password: str = PASSWORD) -> None:
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _no_horizontal_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px on a phone"


def test_the_owner_sees_cameras_and_approves_a_request_on_a_phone(
    page_under_test: OwnerPageUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    under_test = page_under_test
    request_id = _voluntary(under_test)
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        caplog.set_level(logging.INFO, logger="agent.owner_page")

        _log_in(page, under_test.url, "not the password")
        expect(page.get_by_role("alert")).to_contain_text("Wrong password")
        assert "login refused from 127.0.0.1: wrong password" in caplog.text

        _log_in(page, under_test.url)
        expect(page).to_have_url(under_test.url + "/")
        front = page.locator('[data-camera="front"]')
        expect(front.locator(".status")).to_have_text("no usable picture")
        covered = front.locator('[data-problem="covered"]')
        expect(covered).to_contain_text("Something blocks the lens")
        expect(covered).to_contain_text("What to do: Check the camera")
        yard = page.locator('[data-camera="yard"]')
        expect(yard.locator(".status")).to_have_text("offline")
        expect(yard.locator('[data-problem="no_signal"]')).to_contain_text("has power")
        # The snapshot really loads (a decoded JPEG, not a broken image).
        snapshot = front.locator("img.snapshot")
        expect(snapshot).to_be_visible()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=snapshot.element_handle()
        )
        expect(front.locator(".footage")).to_contain_text("1 gap, 300 seconds missing in all.")
        front.locator("details.gaps summary").click()
        expect(front.locator("details.gaps li")).to_contain_text("no_signal")
        expect(front.locator(".dori")).to_contain_text("identify a person: up to 3.8 m")
        _no_horizontal_scroll(page)

        page.get_by_role("link", name="Requests").click()
        card = page.locator(f'[data-request="{request_id}"]')
        expect(card).to_contain_text("voluntary request")
        expect(card).to_contain_text("2026-0815")
        expect(card).to_contain_text("agent Jansen")
        expect(card).to_contain_text("Sv 126nd")
        expect(card.locator(".state")).to_have_text("waits for your decision")
        _no_horizontal_scroll(page)
        card.get_by_role("button", name="Approve").click()
        # The desk acts on the decision; without evidence files the export then fails,
        # which is not this test's business: it was approved, by the owner.
        expect(card.locator(".state")).not_to_have_text("waits for your decision")
        assert "request vol-1: approve by the owner from 127.0.0.1" in caplog.text
        approved = [e for e in under_test.audit.entries(request_id) if e.event == "approved"]
        assert [e.detail for e in approved] == [{"by": "owner"}]

        page.get_by_role("link", name="Audit log").click()
        entries = page.locator("ol.audit li")
        expect(entries.filter(has_text="Approved")).to_contain_text("approved by you")
        expect(entries.filter(has_text="Request received")).to_contain_text("case 2026-0815")
        _no_horizontal_scroll(page)


def test_the_page_speaks_dutch_when_the_browser_asks(
    page_under_test: OwnerPageUnderTest,
) -> None:
    _voluntary(page_under_test)
    with chromium() as browser:
        page = browser.new_page(locale="nl-NL", viewport=PHONE)
        page.goto(page_under_test.url + "/")
        page.get_by_label("Wachtwoord").fill(PASSWORD)
        page.get_by_role("button", name="Inloggen").click()
        front = page.locator('[data-camera="front"]')
        expect(front.locator('[data-problem="covered"]')).to_contain_text(
            "Er zit iets voor de lens"
        )
        page.get_by_role("link", name="Verzoeken").click()
        expect(page.locator(".request .state")).to_have_text("wacht op uw beslissing")
        expect(page.get_by_role("button", name="Goedkeuren")).to_be_visible()


def _session(url: str, password: str = PASSWORD) -> tuple[requests.Session, str]:
    """A logged-in client session and its CSRF token."""
    client = requests.Session()
    answer = client.post(url + "/login", data={"password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    match = re.search(r'name="csrf" value="([^"]+)"', answer.text)
    assert match is not None
    return client, match.group(1)


def test_a_decision_without_the_csrf_token_is_refused_and_changes_nothing(
    page_under_test: OwnerPageUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = _voluntary(page_under_test)
    client, csrf = _session(page_under_test.url)
    decide = f"{page_under_test.url}/requests/{request_id}/decision"
    for form in ({"decision": "approve"}, {"decision": "approve", "csrf": "forged"}):
        answer = client.post(decide, data=form, timeout=10, allow_redirects=False)
        assert answer.status_code == 403
    # A form posted from another site, even with a token, is refused too.
    answer = client.post(
        decide,
        data={"decision": "approve", "csrf": csrf},
        headers={"Origin": "http://evil.example"},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 403
    assert page_under_test.store.get(request_id).state == "awaiting_owner"
    assert [e.event for e in page_under_test.audit.entries(request_id)] == [
        "received",
        "held",
        "awaiting_owner",
    ]
    assert caplog.text.count("missing or wrong CSRF token") == 2
    assert "sent from another site (http://evil.example)" in caplog.text
    # The same form with its token goes through.
    answer = client.post(decide, data={"decision": "decline", "csrf": csrf}, timeout=10)
    assert answer.status_code == 200
    assert page_under_test.store.get(request_id).state == "declined"


def test_nothing_is_shown_without_a_login(
    page_under_test: OwnerPageUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = _voluntary(page_under_test)
    url = page_under_test.url
    for path in ("/", "/requests", "/audit", "/cameras/front/snapshot.jpg"):
        answer = requests.get(url + path, allow_redirects=False, timeout=10)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path
    answer = requests.post(
        f"{url}/requests/{request_id}/decision", data={"decision": "approve"}, timeout=10
    )
    assert answer.status_code == 401
    assert "refused POST /requests/vol-1/decision from 127.0.0.1: not logged in" in caplog.text
    assert page_under_test.store.get(request_id).state == "awaiting_owner"
    client, _ = _session(url)
    snapshot = client.get(url + "/cameras/front/snapshot.jpg", timeout=10)
    assert snapshot.headers["content-type"] == "image/jpeg"
    assert snapshot.content[:3] == b"\xff\xd8\xff"
    assert snapshot.headers["cache-control"] == "no-store"
    assert client.get(url + "/cameras/yard/snapshot.jpg", timeout=10).status_code == 404


def test_wrong_passwords_lock_the_address_out(
    page_under_test: OwnerPageUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    url = page_under_test.url
    for _ in range(5):
        answer = requests.post(url + "/login", data={"password": "guess guess"}, timeout=10)
        assert answer.status_code == 401
        assert "camera_agent_owner" not in answer.cookies
    assert "locked out for 300 s" in caplog.text
    # Now even the right password waits, and is told how long.
    answer = requests.post(url + "/login", data={"password": PASSWORD}, timeout=10)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "300"
    assert "wait 5 minutes" in answer.text
    assert "locked out for" in caplog.text.splitlines()[-1]


def test_a_new_password_ends_the_old_sessions(page_under_test: OwnerPageUnderTest) -> None:
    client, _ = _session(page_under_test.url)
    assert client.get(page_under_test.url + "/", timeout=10).url.endswith("/")
    set_owner_password(page_under_test.data_dir, "a brand new password")
    assert client.get(page_under_test.url + "/", timeout=10).url.endswith("/login")
    _session(page_under_test.url, "a brand new password")


def test_an_address_outside_the_allowed_networks_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with owner_page(tmp_path, allow=["10.0.0.0/8", "192.168.0.0/16"]) as under_test:
        request_id = _voluntary(under_test)
        for method, path in (("GET", "/login"), ("POST", "/login"), ("GET", "/static/owner.css")):
            answer = requests.request(
                method, under_test.url + path, data={"password": PASSWORD}, timeout=10
            )
            assert answer.status_code == 403
            assert "local network" in answer.text
            assert "camera_agent_owner" not in answer.cookies
        answer = requests.post(
            f"{under_test.url}/requests/{request_id}/decision",
            data={"decision": "approve"},
            timeout=10,
        )
        assert answer.status_code == 403
        assert under_test.store.get(request_id).state == "awaiting_owner"
    assert "refused GET /login from 127.0.0.1: not in owner_page.allow" in caplog.text
    assert "refused POST /requests/vol-1/decision from 127.0.0.1" in caplog.text


def test_without_a_password_nobody_gets_in(tmp_path: Path) -> None:
    with owner_page(tmp_path, password=None) as under_test:
        form = requests.get(under_test.url + "/login", timeout=10)
        assert "sudo camera-agent owner-password" in form.text
        answer = requests.post(under_test.url + "/login", data={"password": ""}, timeout=10)
        assert answer.status_code == 401


def test_only_scene_problems_can_be_accepted_and_a_camera_not_yet_judged_says_so(
    page_under_test: OwnerPageUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """A covered lens has no "this is normal" button, and a hand-made form for it is refused
    with the reason and changes nothing; so is one without the CSRF token. A camera that
    says ok before its picture was judged says it is still being checked."""
    under_test = page_under_test
    front = under_test.channels["front"]
    client, csrf = _session(under_test.url)
    cameras = client.get(under_test.url + "/", timeout=10).text
    assert 'data-problem="covered"' in cameras
    assert "This is normal for this camera" not in cameras
    accept = f"{under_test.url}/cameras/front/accepted"
    answer = client.post(accept, data={"problem": "covered", "accept": "yes", "csrf": csrf})
    assert answer.status_code == 409
    assert "means the camera is not working" in answer.text
    answer = client.post(accept, data={"problem": "noisy", "accept": "yes"}, timeout=10)
    assert answer.status_code == 403
    assert [e for e in under_test.audit.entries() if e.event == "problem_acceptance"] == []
    assert not (under_test.data_dir / "accepted-problems.json").exists()

    judgement = front.assessor.judgement()  # one picture analysed, no reference view yet
    assert judgement.state == "pending"
    front.last = Health("ok", (), {}, None, judgement=judgement)
    cameras = client.get(under_test.url + "/", timeout=10).text
    assert 'data-judgement="pending"' in cameras
    assert "the picture is still being checked" in cameras
