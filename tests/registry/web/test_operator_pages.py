"""The operator's enrolment page in a real Chromium: make a one-time code, run the exact
command it shows with the real `camera-agent enroll`, and see the agent listed."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, ViewportSize, expect

from registry.db.engine import open_engine
from registry.enrolment.codes import code_sha256, normalise_code
from registry.enrolment.operator_api import operator_routes
from registry.enrolment.service import enrolment_routes
from registry.web import auth, user_audit
from registry.web.auth import Role
from tests.registry.enrolment.test_enrolment import CAMERA_AGENT, agent_config, enroll, keys_show
from tests.support.browser import chromium
from tests.support.registry_web import PASSWORD, RegistryWeb, registry_web, server_config

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RegistryWeb]:
    config = server_config(tmp_path / "registry")
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # The enrolment endpoint the agent calls: no broker passwords (certificate deployments).
    engine = open_engine(config.database_url)
    try:
        extra = [*operator_routes(), *enrolment_routes(engine, config)]
        with registry_web(config, extra=extra) as web:
            web.add_user("olga", Role.OPERATOR)
            web.add_user("piet", Role.POLICE)
            yield web
    finally:
        engine.dispose()


def log_in(page: Page, web: RegistryWeb, name: str, then: str) -> None:
    page.goto(web.url + then)
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(web.url + "/")
    page.goto(web.url + then)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_operator_makes_a_code_the_owner_enrols_with_it_and_the_agent_is_listed(
    web: RegistryWeb, tmp_path: Path
) -> None:
    owner = tmp_path / "owner"
    owner.mkdir()
    owner_config = agent_config(owner)
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        log_in(page, web, "olga", "/enrolment")
        expect(page.locator("#codes tbody")).to_contain_text("No open codes.")
        expect(page.locator("#agents tbody")).to_contain_text("No agent has enrolled yet.")

        page.get_by_label("Agent id").fill("shop-42")
        page.get_by_label("Valid for").select_option("4h")
        page.get_by_role("button", name="Make a code").click()
        expect(page.locator("#new-code")).to_be_visible()
        expect(page.locator("#code-agent")).to_have_text("shop-42")
        expect(page.locator("#replaces")).to_be_hidden()
        code = page.locator("#code").inner_text()
        assert normalise_code(code) is not None
        expires = page.locator("#expires").inner_text()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", expires)
        command = page.locator("#command").inner_text()
        assert command == f"camera-agent enroll --registry {web.url} --code {code}"
        # Only its fingerprint is listed: the text is in the code and the command alone.
        fingerprint = code_sha256(code)[:12]
        expect(page.locator("#codes tbody tr")).to_have_count(1)
        expect(page.locator("#codes tbody tr").first).to_contain_text(fingerprint)
        expect(page.locator("#codes tbody tr").first).to_contain_text("olga")
        expect(page.locator("#codes tbody tr .agent")).to_have_text("shop-42")
        expect(page.locator("#codes tbody tr .replaces")).to_have_text("no: first enrolment")
        assert page.content().count(code) == 2
        assert no_horizontal_scroll(page)

        # The owner runs exactly the command shown (with their config file).
        argv = shlex.split(command)
        assert argv[0] == "camera-agent"
        result = subprocess.run(
            [str(CAMERA_AGENT), *argv[1:], "--config", str(owner_config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr

        # The page follows without a reload: the code is spent, the agent is listed.
        shown = keys_show(owner_config)
        agent = page.locator('#agents tbody tr[data-agent="shop-42"]')
        expect(agent).to_be_visible(timeout=15_000)
        expect(agent.locator(".thumbprint")).to_have_text(shown["kid"])
        expect(agent.locator(".cameras")).to_have_text("2")
        expect(agent).to_contain_text(re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"))
        expect(page.locator("#codes tbody")).to_contain_text("No open codes.")
        assert no_horizontal_scroll(page)

        # A reload shows the code no more.
        page.reload()
        expect(page.locator('#agents tbody tr[data-agent="shop-42"]')).to_be_visible()
        expect(page.locator("#new-code")).to_be_hidden()
        assert code not in page.content()

    audit = user_audit.recent(web.engine, action="enrol_code_create")
    assert [(r.username, r.action) for r in audit] == [("olga", "enrol_code_create")]


def test_code_validity_is_what_the_operator_chose(web: RegistryWeb) -> None:
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, web, "olga", "/enrolment")
        # The config's default (24 h) is preselected.
        expect(page.get_by_label("Valid for")).to_have_value("24h")
        page.get_by_label("Agent id").fill("shop-7")
        page.get_by_label("Valid for").select_option("7d")
        page.get_by_role("button", name="Make a code").click()
        expect(page.locator("#new-code")).to_be_visible()
        operator = {"Authorization": f"Bearer {auth.add_api_token(web.engine, 'olga', 't')}"}
        listing = requests.get(web.url + "/api/v1/enrol-codes", headers=operator, timeout=10)
        [listed] = listing.json()
        assert listed["expires_at"] == page.locator("#expires").inner_text()
        made = datetime.fromisoformat(listed["created_at"])
        expires = datetime.fromisoformat(listed["expires_at"])
        assert (expires - made).total_seconds() == pytest.approx(7 * 86400, abs=2)


def test_the_enrolment_page_and_agent_list_are_for_operators_only(web: RegistryWeb) -> None:
    police = {"Authorization": f"Bearer {auth.add_api_token(web.engine, 'piet', 't')}"}
    agents_url = web.url + "/api/v1/enrolled-agents"
    assert requests.get(agents_url, headers=police, timeout=10).status_code == 403
    assert requests.get(agents_url, timeout=10).status_code == 401
    anonymous = requests.get(web.url + "/enrolment", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, web, "piet", "/")
        expect(page.get_by_role("link", name="Enrolment")).to_have_count(0)
        page.goto(web.url + "/enrolment")
        expect(page.get_by_role("heading", level=1)).to_have_text("403")
        expect(page.get_by_role("alert")).to_contain_text("this needs the role operator")
        expect(page.locator("#make-code")).to_have_count(0)


def test_a_refused_page_answers_with_its_http_status(web: RegistryWeb) -> None:
    session = requests.Session()
    session.post(web.url + "/login", data={"username": "piet", "password": PASSWORD}, timeout=10)
    assert session.get(web.url + "/enrolment", timeout=10).status_code == 403


def test_a_re_enrolment_code_shows_the_key_it_replaces(web: RegistryWeb, tmp_path: Path) -> None:
    owner = tmp_path / "owner"
    owner.mkdir()
    owner_config = agent_config(owner)
    operator = {"Authorization": f"Bearer {auth.add_api_token(web.engine, 'olga', 't')}"}
    first = requests.post(
        web.url + "/api/v1/enrol-codes", json={"agent": "shop-42"}, headers=operator, timeout=10
    )
    enrolled = enroll(owner_config, web.url, first.json()["code"])
    assert enrolled.returncode == 0, enrolled.stderr
    kid = keys_show(owner_config)["kid"]
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        log_in(page, web, "olga", "/enrolment")
        # A plain code for an enrolled agent is refused, and the page says why.
        page.get_by_label("Agent id").fill("shop-42")
        page.get_by_role("button", name="Make a code").click()
        expect(page.locator("#outcome")).to_contain_text("shop-42 is enrolled already")
        expect(page.locator("#outcome")).to_contain_text("--replace")
        expect(page.locator("#new-code")).to_be_hidden()
        # So is a code for the registry's own broker user.
        page.get_by_label("Agent id").fill("camera-registry-2")
        page.get_by_role("button", name="Make a code").click()
        expect(page.locator("#outcome")).to_contain_text("registry's own broker user")
        expect(page.locator("#codes tbody")).to_contain_text("No open codes.")

        page.get_by_label("Agent id").fill("shop-42")
        page.get_by_label("Re-enrolment").check()
        page.get_by_role("button", name="Make a code").click()
        expect(page.locator("#replaces")).to_be_visible()
        expect(page.locator("#replaces")).to_contain_text(f"replaces the device key {kid}")
        expect(page.locator("#replaced-agent")).to_have_text("shop-42")
        row = page.locator("#codes tbody tr").first
        expect(row.locator(".agent")).to_have_text("shop-42")
        expect(row.locator(".replaces")).to_have_text(kid)
        assert no_horizontal_scroll(page)
    audit = user_audit.recent(web.engine, action="enrol_code_create")
    assert [r.detail["replaces_key"] for r in audit] == [kid, None]
