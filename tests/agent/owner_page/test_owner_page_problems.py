"""The owner page's "this is normal for this camera" button, in a real Chromium, on a real
agent process (mosquitto, a synthetic RTSP camera made too dark): the problem leaves the
camera's health, the registry is told it was accepted, the audit log says who; and back."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from agent.audit import AUDIT_FILE, AuditLog
from agent.owner_page.auth import set_owner_password
from tests.support import free_port
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.browser import chromium
from tests.support.mqtt_watch import Received, Watcher
from tests.support.rtsp import RtspCamera

PASSWORD = "lamp post number 7"
HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"


def _dark(accepted: bool) -> Callable[[Received], bool]:
    def match(m: Received) -> bool:
        body = m.json()
        if accepted:
            return "too_dark" in body["accepted"] and "too_dark" not in body["problems"]
        return "too_dark" in body["problems"]

    return match


def test_the_owner_accepts_a_problem_on_the_page_and_takes_it_back(
    tmp_path: Path,
    broker: Broker,
    make_rtsp_camera: Callable[..., RtspCamera],
    agents: list[AgentProcess],
) -> None:
    camera = make_rtsp_camera(scene="synthetic", fps=10)
    port = free_port()
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[{"id": "front", "name": "Steeg", "url": camera.url, "analysis_interval": "2s"}],
        owner_page={"enabled": True, "listen": f"127.0.0.1:{port}"},
    )
    set_owner_password(tmp_path / "state", PASSWORD)
    url = f"http://127.0.0.1:{port}"
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent = AgentProcess(config).start()
        agents.append(agent)
        watch.wait_for(HEALTH, timeout=20)
        camera.inject("too_dark")
        raised = watch.wait_for(_dark(accepted=False), timeout=30)
        with chromium() as browser:
            page = browser.new_page()
            page.goto(url + "/")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            card = page.locator('[data-camera="front"]')
            problem = card.locator('[data-problem="too_dark"]')
            expect(problem).to_contain_text("The picture is too dark.")
            problem.get_by_role("button", name="This is normal for this camera").click()
            expect(page).to_have_url(re.compile(r"/#camera-front$"))
            accepted = card.locator('[data-accepted="too_dark"]')
            expect(accepted).to_contain_text("Accepted as normal for this camera")
            told = watch.wait_for(_dark(accepted=True), timeout=10, after=raised.at)
            page.reload()
            expect(card.locator('[data-problem="too_dark"]')).to_have_count(0)
            expect(accepted).to_contain_text("seen now, not reported")

            accepted.get_by_role("button", name="Report it again").click()
            expect(card.locator('[data-accepted="too_dark"]')).to_have_count(0)
            watch.wait_for(_dark(accepted=False), timeout=10, after=told.at)
    entries = AuditLog(tmp_path / "state" / AUDIT_FILE).entries()
    assert [e.detail for e in entries if e.event == "problem_acceptance"] == [
        {"camera": "front", "problem": "too_dark", "accepted": True, "via": "owner_page"},
        {"camera": "front", "problem": "too_dark", "accepted": False, "via": "owner_page"},
    ]
    assert "camera front: too_dark accepted as normal by the owner (owner_page)" in agent.log
