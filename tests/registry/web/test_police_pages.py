"""The police pages in a real Chromium: search on the map, prepare a request, sign it with the
real `camera-registry police sign`, send it through a real broker and follow the agent's
status; received evidence, verified or not; and who may open which page."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy import Engine, update
from starlette.routing import Mount

from agent.evidence.export import Package
from contract import jws
from registry.db.engine import open_engine
from registry.db.schema import agents, cameras
from registry.evidence.intake import EvidenceIntake, package
from registry.ingest.service import IngestService
from registry.web import evidence_pages, user_audit
from registry.web.auth import Role
from tests.registry.evidence.test_evidence_verify import export_package
from tests.registry.evidence.test_intake import CHECK_WAIT_S
from tests.registry.ingest.test_ingest import Publisher
from tests.registry.web.test_dashboard import _camera
from tests.support import eventually
from tests.support.broker import Broker
from tests.support.browser import chromium
from tests.support.delivery import send_package, uploading_request
from tests.support.registry_rows import add_prepared_request
from tests.support.registry_web import PASSWORD, RegistryWeb, registry_web, server_config

CAMERA_REGISTRY = Path(sys.executable).parent / "camera-registry"
PHONE: ViewportSize = {"width": 390, "height": 844}
WAIT_MS = 15_000
# The camera "front" of shop-42 (test_dashboard._camera): at 52.9925, 6.5649, looking south
# (bearing 180, field of view 90, range 25 m), footage from a day ago until now.
FRONT = (52.9925, 6.5649)
METRES_PER_DEGREE_LAT = 111_195.0


@dataclass(frozen=True)
class Registry:
    web: RegistryWeb
    broker: Broker
    intake: EvidenceIntake
    engine: Engine  # the ingest's and the intake's own connection to the same database


@pytest.fixture
def registry(tmp_path: Path, broker: Broker) -> Iterator[Registry]:
    """The web app with police pages and evidence intake, the ingest running against a real
    broker and relaying requests over its connection, one shop with two cameras."""
    config = server_config(tmp_path / "registry", broker_port=broker.port)
    engine = open_engine(config.database_url)
    ingest = IngestService(config, engine, client_id="registry-under-test")
    stop = threading.Event()
    ingest.start(stop)
    intake = EvidenceIntake(engine, config.evidence_dir, config.evidence.max_file_bytes)
    routes = [*evidence_pages.routes(intake), Mount("/files", routes=intake.routes())]
    try:
        assert ingest.worker.connection.wait_connected(10), "the ingest did not connect"
        with registry_web(config, relay=ingest.relay, extra=routes) as web:
            web.add_user("piet", Role.POLICE)
            web.add_user("olga", Role.OPERATOR)
            with web.engine.begin() as db:
                db.execute(agents.insert().values(agent_id="shop-42", audit_entries=0))
                db.execute(
                    cameras.insert(),
                    # "yard" is 110 m north of "front": never a match here.
                    [_camera("front", "ok", [], FRONT[0]), _camera("yard", "ok", [], 52.9935)],
                )
            yield Registry(web, broker, intake, engine)
    finally:
        stop.set()
        ingest.join()
        engine.dispose()


def log_in(page: Page, web: RegistryWeb, name: str) -> None:
    page.goto(web.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(web.url + "/")


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / METRES_PER_DEGREE_LAT, point[1]


def click_map(page: Page, where: tuple[float, float]) -> None:
    """Click the map where `where` is drawn (the page's Leaflet map is the global `map`)."""
    xy = page.evaluate("([lat, lon]) => map.latLngToContainerPoint([lat, lon])", list(where))
    page.locator("#map").click(position={"x": xy["x"], "y": xy["y"]})


def local_input(moment: datetime) -> str:
    """What a datetime-local input holds for a UTC moment (the pages work in UTC). The
    browser leaves out zero seconds: on the minute it holds 2026-11-28T04:28."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def search(page: Page, where: tuple[float, float], at: datetime, reason: str) -> None:
    click_map(page, where)
    page.get_by_label("Time (UTC)").fill(local_input(at))
    page.get_by_label(re.compile(r"^Why")).fill(reason)
    page.get_by_role("button", name="Search").click()


# --- (a) search ---------------------------------------------------------------------------


def test_search_on_the_map_finds_the_camera_that_saw_the_point_on_a_phone(
    registry: Registry,
) -> None:
    web = registry.web
    at = datetime.now(UTC) - timedelta(hours=1)
    # Its agent has just started: ok, but the picture is not judged yet (issue 16).
    pending = {"state": "pending", "waiting_for": ["samples"], "samples": 1}
    with web.engine.begin() as db:
        db.execute(
            update(cameras)
            .where(cameras.c.camera_id == "front")
            .values(health_json=json.dumps({"judgement": pending, "accepted": []}))
        )
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE)
        log_in(page, web, "piet")
        page.goto(web.url + "/search")
        expect(page.locator("#map .leaflet-pane")).not_to_have_count(0)

        # 12 m south of the camera: in front of it, within its 25 m range.
        search(page, north_of(FRONT, -12), at, "2026-ZZ-0042 burglary Voordeur")
        rows = page.locator("#results tbody tr")
        expect(rows).to_have_count(1)
        front = page.locator('#results tr[data-camera="shop-42/front"]')
        expect(front).to_contain_text("Front (shop-42/front)")
        distance = front.locator("td").nth(1).inner_text()
        assert re.fullmatch(r"\d+(\.\d)? m", distance), distance
        assert 8 <= float(distance.split()[0]) <= 16  # a pixel of the map is about 3 m
        expect(front).to_contain_text("4 m")  # identifies a person within 4 m
        expect(front.locator("td.status")).to_have_text("not yet judged")  # not "ok"
        # What it was like then, and what it could make of a person at that distance.
        expect(front.locator("td.state")).to_have_text("unknown")  # no intervals stored here
        expect(front.locator("td.dori-level")).to_have_text(re.compile(r"^(observe|detect) only"))
        expect(front.locator("td.held")).to_have_text("yes")
        expect(page.locator("#outcome")).to_have_text(re.compile(r"^1 camera\(s\) could have"))
        # Its view cone and the four DORI arcs are drawn (no tile server needed).
        expect(page.locator("path.cone")).to_have_count(1)
        expect(page.locator("path.dori")).to_have_count(4)
        expect(page.locator("path.dori-identify")).to_have_count(1)

        # On a phone the map and the table are there, and the page does not scroll sideways.
        expect(page.locator("#map")).to_be_visible()
        front.scroll_into_view_if_needed()
        expect(page.locator("#results")).to_be_in_viewport()
        assert no_horizontal_scroll(page)
        page.locator("#map").scroll_into_view_if_needed()

        # Behind the camera (12 m north of it): nobody saw it.
        search(page, north_of(FRONT, 12), at, "2026-ZZ-0042 second look")
        expect(page.locator("#outcome")).to_have_text(re.compile(r"^0 camera\(s\) could have"))
        expect(rows).to_have_count(0)
        expect(page.locator("path.cone")).to_have_count(0)
        expect(page.locator("path.dori")).to_have_count(0)

    # Both searches are in the registry's audit trail, with who, where, when and why.
    found = sorted(user_audit.recent(web.engine, action="search"), key=lambda r: r.ts)
    assert [(r.username, r.detail["reason"], r.detail["found"]) for r in found] == [
        ("piet", "2026-ZZ-0042 burglary Voordeur", 1),
        ("piet", "2026-ZZ-0042 second look", 0),
    ]
    assert found[0].detail["lat"] == pytest.approx(FRONT[0] - 12 / METRES_PER_DEGREE_LAT, abs=5e-5)
    assert found[0].detail["at"] == at.replace(microsecond=0).isoformat()


# --- (b) request, sign, relay, follow ---------------------------------------------------------


class RequestsTopic:
    """A subscriber on one agent's requests topic, as the agent would be."""

    def __init__(self, broker: Broker, agent: str) -> None:
        self.payloads: list[bytes] = []
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{agent}-listener", protocol=paho.MQTTv5
        )
        self.client.on_message = self._received
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"camreg/v1/agents/{agent}/requests", qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    def _received(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self.payloads.append(bytes(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CAMERA_REGISTRY), *args], capture_output=True, text=True, timeout=60, check=False
    )


def status_message(request_id: str, state: str, **fields: Any) -> bytes:
    """A request status as an agent publishes it (docs/schemas/request-status.schema.json)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {
        "request_id": request_id,
        "state": state,
        "reason": None,
        "progress": None,
        "manifest_sha256": None,
        "ts": now,
        **fields,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def test_a_request_is_prepared_signed_off_the_server_relayed_and_followed(
    registry: Registry, tmp_path: Path
) -> None:
    web = registry.web
    keys = tmp_path / "officer"
    made = run_cli("police", "keygen", "--out", str(keys), "--name", "police")
    assert made.returncode == 0, made.stderr
    at = datetime.now(UTC) - timedelta(hours=1)
    listener = RequestsTopic(registry.broker, "shop-42")
    agent = Publisher(registry.broker, "shop-42")
    try:
        with chromium() as browser:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            log_in(page, web, "piet")
            # From the search result straight to a request for that camera.
            page.goto(web.url + "/search")
            search(page, north_of(FRONT, -12), at, "2026-ZZ-0042 burglary Voordeur")
            page.get_by_role("link", name="Request footage").click()
            expect(page).to_have_url(re.compile(r"/requests\?agent=shop-42&camera=front"))
            expect(page.get_by_label("Agent")).to_have_value("shop-42")
            expect(page.get_by_label("Cameras (comma separated)")).to_have_value("front")
            expect(page.get_by_label("From (UTC)")).to_have_value(
                local_input(at.replace(microsecond=0) - timedelta(seconds=150))
            )
            page.get_by_label("Case").fill("2026-ZZ-0042")
            page.get_by_label("Legal basis").fill("Sv 126nd")
            page.get_by_label(re.compile(r"^Why")).fill("burglary at Voordeur, 14:10")
            page.get_by_role("button", name="Prepare claims").click()

            expect(page.locator("#prepared")).to_contain_text("Prepared ")
            with page.expect_download() as download_info:
                page.get_by_role("link", name="Download claims.json").click()
            download = download_info.value
            claims_file = tmp_path / download.suggested_filename
            download.save_as(claims_file)
            claims = json.loads(claims_file.read_text())
            request_id = claims["jti"]
            assert download.suggested_filename == f"{request_id}.claims.json"
            assert (claims["aud"], claims["cameras"], claims["case"]) == (
                "shop-42",
                ["front"],
                "2026-ZZ-0042",
            )
            assert claims["upload"]["url"] == web.url + "/files/"
            row = page.locator(f'#requests tr[data-request="{request_id}"]')
            expect(row.locator(".state")).to_have_text("prepared")

            # The officer signs on their own machine, with the real CLI.
            signed = run_cli(
                "police", "sign", str(claims_file), "--yes", "--key", str(keys / "police.key")
            )
            assert signed.returncode == 0, signed.stderr
            token = signed.stdout.strip()
            assert token.count(".") == 2
            # Back on the page later (a reload): the prepared request is chosen from the list.
            page.reload()
            row.get_by_role("button", name="Submit token").click()
            expect(page.locator("#prepared")).to_contain_text(f"Selected {request_id}.")
            page.get_by_label("Token").fill(token)
            page.get_by_role("button", name="Send to the agent").click()
            expect(page.locator("#submitted")).to_have_text(f"Sent {request_id} to the agent.")
            expect(row.locator(".state")).to_have_text("sent", timeout=WAIT_MS)

            # The agent's requests topic got exactly the token, once.
            eventually(
                lambda: bool(listener.payloads), "the token on the requests topic", CHECK_WAIT_S
            )
            time.sleep(0.3)  # time for a second copy to show
            assert listener.payloads == [token.encode("ascii")]

            # The agent reports; the page follows without a reload.
            status_topic = f"camreg/v1/agents/shop-42/requests/{request_id}/status"
            agent.publish(
                status_topic,
                status_message(
                    request_id, "uploading", progress={"bytes_sent": 250, "bytes_total": 1000}
                ),
                retain=True,
            )
            expect(row.locator(".state")).to_have_text("uploading 25 %", timeout=WAIT_MS)
            agent.publish(
                status_topic,
                status_message(
                    request_id,
                    "completed",
                    progress={"bytes_sent": 1000, "bytes_total": 1000},
                    manifest_sha256="ab" * 32,
                ),
                retain=True,
            )
            expect(row.locator(".state")).to_have_text("completed", timeout=WAIT_MS)
            page.set_viewport_size(PHONE)
            expect(row).to_be_visible()
            assert no_horizontal_scroll(page)
            context.close()
    finally:
        agent.close()
        listener.close()

    actions = [(r.username, r.action) for r in user_audit.recent(web.engine)]
    assert ("piet", "request_prepare") in actions and ("piet", "request_submit") in actions
    [prepared] = user_audit.recent(web.engine, action="request_prepare")
    assert prepared.detail["reason"] == "burglary at Voordeur, 14:10"


def test_a_token_that_is_not_the_prepared_one_is_refused_on_the_page(
    registry: Registry, tmp_path: Path
) -> None:
    """Claims edited before signing: the page says so and nothing reaches the agent."""
    web = registry.web
    keys = tmp_path / "officer"
    assert run_cli("police", "keygen", "--out", str(keys), "--name", "police").returncode == 0
    at = datetime.now(UTC) - timedelta(hours=1)
    listener = RequestsTopic(registry.broker, "shop-42")
    try:
        with chromium() as browser:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            log_in(page, web, "piet")
            page.goto(web.url + "/requests")
            page.get_by_label("Agent").fill("shop-42")
            page.get_by_label("Cameras (comma separated)").fill("front")
            page.get_by_label("From (UTC)").fill(local_input(at))
            page.get_by_label("To (UTC)").fill(local_input(at + timedelta(minutes=5)))
            page.get_by_label("Case").fill("2026-ZZ-0043")
            page.get_by_label("Legal basis").fill("Sv 126nd")
            page.get_by_label(re.compile(r"^Why")).fill("street fight")
            page.get_by_role("button", name="Prepare claims").click()
            with page.expect_download() as download_info:
                page.get_by_role("link", name="Download claims.json").click()
            claims_file = tmp_path / "claims.json"
            download_info.value.save_as(claims_file)
            claims = json.loads(claims_file.read_text())
            claims["cameras"] = ["front", "yard"]  # more than was prepared
            claims_file.write_text(json.dumps(claims))
            signed = run_cli(
                "police", "sign", str(claims_file), "--yes", "--key", str(keys / "police.key")
            )
            assert signed.returncode == 0, signed.stderr
            page.get_by_label("Token").fill(signed.stdout.strip())
            page.get_by_role("button", name="Send to the agent").click()
            expect(page.locator("#submitted")).to_contain_text(
                "Not sent: token: its claims differ from the ones prepared"
            )
            row = page.locator(f'#requests tr[data-request="{claims["jti"]}"]')
            expect(row.locator(".state")).to_have_text("prepared")
            context.close()
        time.sleep(0.3)  # time for a token sent anyway to show
        assert listener.payloads == []
    finally:
        listener.close()


# --- (c) evidence -----------------------------------------------------------------------------


def deliver(registry: Registry, request_id: str, token: str, pkg: Package, root: Path) -> None:
    """The agent's own delivery (Delivery + tus Uploader) to the registry's intake."""
    endpoint = registry.web.url + "/files/"
    send_package(root, uploading_request(request_id, endpoint, token, case="c"), pkg)

    def checked() -> bool:
        record = package(registry.engine, request_id)
        return record is not None and record.checked

    eventually(checked, f"the check of {request_id}", CHECK_WAIT_S)


def test_evidence_shows_verified_and_altered_packages_and_downloads_originals(
    registry: Registry, tmp_path: Path
) -> None:
    web = registry.web
    device = Ed25519PrivateKey.generate()
    with web.engine.begin() as db:
        db.execute(
            agents.update()
            .where(agents.c.agent_id == "shop-42")
            .values(
                public_key=jws.public_jwk(device.public_key())["x"],
                key_thumbprint=jws.thumbprint(device.public_key()),
                enrolled_at=time.time(),
            )
        )
    good_token, bad_token = "upload-" + "g" * 40, "upload-" + "b" * 40
    add_prepared_request(web.engine, "req-good", good_token, "2026-ZZ-0042", prepared_by="piet")
    add_prepared_request(web.engine, "req-bad", bad_token, "2026-ZZ-0044", prepared_by="piet")
    good = export_package(tmp_path / "good", device, request_id="req-good")
    deliver(registry, "req-good", good_token, good, tmp_path / "good")
    bad = export_package(tmp_path / "bad", device, request_id="req-bad")
    victim = bad.directory / bad.files[1].name
    data = bytearray(victim.read_bytes())
    data[10] ^= 1
    victim.write_bytes(bytes(data))  # after signing: the manifest holds the old hash
    deliver(registry, "req-bad", bad_token, bad, tmp_path / "bad")

    with chromium() as browser:
        context = browser.new_context(accept_downloads=True, viewport=PHONE)
        page = context.new_page()
        log_in(page, web, "piet")
        page.get_by_role("link", name="Evidence").click()
        verified = page.locator('section.package[data-request="req-good"]')
        expect(verified.locator(".verified")).to_have_text("Verified")
        expect(verified.locator(".unverified")).to_have_count(0)
        expect(verified.get_by_role("link", name="download")).to_have_count(3)
        # In plain words: the segment chain, the device's clock, the (absent) time stamp.
        verdict = verified.locator(".verdict")
        expect(verdict).to_contain_text(f"chain: camera front: 2 files from {good.files[0].name}")
        expect(verdict).to_contain_text("nothing recorded between them is missing")
        expect(verdict).to_contain_text("device clock: when the package was made the agent's")
        expect(verdict).to_contain_text("time stamp: no RFC 3161 time stamp")

        first = good.files[0]
        link = verified.locator("tr", has_text=first.name).get_by_role("link", name="download")
        with page.expect_download() as download_info:
            link.click()
        saved = tmp_path / "downloaded"
        download_info.value.save_as(saved)
        assert download_info.value.suggested_filename == first.name
        assert saved.read_bytes() == (good.directory / first.name).read_bytes()
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == first.sha256

        altered = page.locator('section.package[data-request="req-bad"]')
        expect(altered.locator(".unverified")).to_have_text("NOT verified")
        expect(altered.locator(".verdict")).to_contain_text(
            f"{victim.name}: SHA-256 differs from the manifest (file altered?)"
        )
        assert no_horizontal_scroll(page)
        context.close()

    [download] = user_audit.recent(web.engine, action="evidence_download")
    assert (download.username, download.detail) == (
        "piet",
        {"request_id": "req-good", "file": first.name},
    )


# --- (d) roles --------------------------------------------------------------------------------


def test_each_role_sees_only_its_own_pages(registry: Registry) -> None:
    web = registry.web
    with chromium() as browser:
        police = browser.new_page()
        log_in(police, web, "piet")
        expect(police.get_by_role("link", name="Enrolment")).to_have_count(0)
        police.goto(web.url + "/enrolment")
        expect(police.get_by_role("heading", level=1)).to_have_text("403")
        expect(police.get_by_role("alert")).to_have_text("this needs the role operator")

        operator = browser.new_context().new_page()
        log_in(operator, web, "olga")
        for link in ("Search", "Requests", "Evidence"):
            expect(operator.get_by_role("link", name=link)).to_have_count(0)
        for path in ("/search", "/requests", "/evidence"):
            operator.goto(web.url + path)
            expect(operator.get_by_role("heading", level=1)).to_have_text("403")
            expect(operator.get_by_role("alert")).to_have_text("this needs the role police")
            expect(operator.locator("#map, #search, #prepare")).to_have_count(0)
