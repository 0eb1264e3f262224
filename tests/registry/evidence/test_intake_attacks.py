"""Attacks on the evidence intake through the real interfaces: the police API prepares and
takes the signed token, the agent's own uploader (or a bare HTTP client, for the attacker)
talks tus to the registry's intake, and the database is read as a thief would read it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from starlette.routing import Mount

from agent.evidence.export import Package
from agent.evidence.upload import encode_metadata
from contract import jws
from registry.db.engine import open_engine
from registry.db.schema import evidence_uploads, metadata
from registry.evidence.admission import upload_budget
from registry.evidence.intake import EvidenceIntake, PackageRecord, package
from registry.police.sign import sign_claims
from registry.web import auth
from registry.web.auth import Role
from tests.registry.evidence.test_evidence_verify import SEGMENT, T0, export_package
from tests.registry.evidence.test_intake import CHECK_WAIT_S
from tests.support import eventually
from tests.support.delivery import send_package, uploading_request
from tests.support.registry_rows import add_enrolled_agent
from tests.support.registry_web import RegistryWeb, registry_web, server_config

CASE = "2026-ZZ-0042"  # what export_package signs
TUS = {"Tus-Resumable": "1.0.0"}
# export_package records two segments of camera front from T0.
PACKAGE_WINDOW = (T0, T0 + 2 * SEGMENT)


@dataclass
class RecordingRelay:
    """Stands in for the broker: what the registry would publish to the agent."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def publish_request(self, agent_id: str, token: str) -> None:
        self.sent.append((agent_id, token))


@dataclass
class Site:
    web: RegistryWeb
    intake: EvidenceIntake
    engine: Engine  # the intake's own connection to the registry's database
    relay: RecordingRelay
    officer: dict[str, str]
    police_key: Ed25519PrivateKey
    device: Ed25519PrivateKey
    root: Path

    @property
    def endpoint(self) -> str:
        return self.web.url + "/files/"

    def prepare(
        self,
        window: tuple[datetime, datetime] = PACKAGE_WINDOW,
        cameras: tuple[str, ...] = ("front",),
    ) -> dict[str, Any]:
        answer = requests.post(
            self.web.url + "/api/v1/requests",
            json={
                "agent": "shop-42",
                "cameras": list(cameras),
                "kind": "order",
                "case": CASE,
                "basis": "art. 126nd Sv",
                "requester": "Officer Piet",
                "reason": "burglary at no. 5",
                "start": window[0].isoformat(),
                "end": window[1].isoformat(),
            },
            headers=self.officer,
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def download_claims(self, request_id: str) -> requests.Response:
        return requests.get(
            f"{self.web.url}/api/v1/requests/{request_id}/claims.json",
            headers=self.officer,
            timeout=10,
        )

    def submit(self, request_id: str, token: str) -> requests.Response:
        return requests.post(
            f"{self.web.url}/api/v1/requests/{request_id}/token",
            json={"token": token},
            headers=self.officer,
            timeout=10,
        )

    def order(self, **prepare: Any) -> Order:
        """Prepared, downloaded, signed off the server, submitted and relayed."""
        request_id = self.prepare(**prepare)["request_id"]
        claims = self.download_claims(request_id)
        assert claims.status_code == 200, claims.text
        signed = sign_claims(claims.json(), self.police_key)
        answer = self.submit(request_id, signed)
        assert answer.status_code == 202, answer.text
        agent_id, relayed = self.relay.sent[-1]
        assert (agent_id, relayed) == ("shop-42", signed)
        # What the agent reads from the token it verified.
        payload = json.loads(jws.b64url_decode(signed.split(".")[1]))
        return Order(request_id, payload["upload"]["token"], signed)

    def create(
        self, order: Order, name: str, data: bytes, length: int | None = None
    ) -> requests.Response:
        return requests.post(
            self.endpoint,
            headers={
                **TUS,
                "Authorization": f"Bearer {order.upload_token}",
                "Upload-Length": str(len(data) if length is None else length),
                "Upload-Metadata": encode_metadata(
                    {
                        "request_id": order.request_id,
                        "filename": name,
                        "sha256": hashlib.sha256(data).hexdigest(),
                    }
                ),
            },
            timeout=10,
        )

    def patch(self, order: Order, url: str, data: bytes, offset: int = 0) -> requests.Response:
        return requests.patch(
            url,
            data=data,
            headers={
                **TUS,
                "Authorization": f"Bearer {order.upload_token}",
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=10,
        )

    def upload(self, order: Order, name: str, data: bytes) -> str:
        """A whole file in one PATCH, as an attacker with the token would send it."""
        created = self.create(order, name, data)
        assert created.status_code == 201, created.text
        url = created.headers["Location"]
        sent = self.patch(order, url, data)
        assert sent.status_code == 204, sent.text
        return url

    def deliver(self, order: Order, pkg: Package, window: tuple[datetime, datetime]) -> None:
        """The agent's own delivery of `pkg` for the order."""
        request = uploading_request(
            order.request_id, self.endpoint, order.upload_token, case=CASE, window=window
        )
        send_package(self.root / order.request_id, request, pkg)

    def package(self, order: Order, request_id: str | None = None) -> Package:
        return export_package(
            self.root / "agent" / order.request_id,
            self.device,
            request_id=request_id or order.request_id,
        )

    def checked(self, order: Order, after: float = 0.0) -> PackageRecord:
        def done() -> bool:
            record = self.record(order)
            return record is not None and record.checked and (record.checked_at or 0) > after

        eventually(done, f"the check of {order.request_id}'s package", CHECK_WAIT_S)
        record = self.record(order)
        assert record is not None
        return record

    def record(self, order: Order) -> PackageRecord | None:
        return package(self.engine, order.request_id, self.intake.evidence_dir)


@dataclass(frozen=True)
class Order:
    request_id: str
    upload_token: str
    signed: str


@pytest.fixture
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    evidence = getattr(request, "param", {})
    config = server_config(tmp_path / "registry", evidence=evidence)
    engine = open_engine(config.database_url)
    intake = EvidenceIntake(engine, config.evidence_dir, config.evidence.max_file_bytes)
    relay = RecordingRelay()
    try:
        with registry_web(
            config, relay=relay, extra=[Mount("/files", routes=intake.routes())]
        ) as web:
            web.add_user("piet", Role.POLICE)
            device = Ed25519PrivateKey.generate()
            add_enrolled_agent(web.engine, device.public_key())
            officer = {"Authorization": "Bearer " + auth.add_api_token(web.engine, "piet", "t")}
            police_key = Ed25519PrivateKey.generate()
            yield Site(web, intake, engine, relay, officer, police_key, device, tmp_path)
    finally:
        engine.dispose()


def everything_stored(engine: Engine) -> str:
    """Every value of every table, as one text: what a copy of the database reveals."""
    values: list[str] = []
    with engine.connect() as db:
        for table in metadata.sorted_tables:
            for row in db.execute(select(table)):
                values += [str(value) for value in row]
    return "\n".join(values)


def database_files(site: Site) -> bytes:
    folder = Path(site.web.config.database_url.removeprefix("sqlite:///")).parent
    return b"".join(path.read_bytes() for path in sorted(folder.glob("*.sqlite*")))


# --- (a) the upload bearer is never at rest ----------------------------------------------------


def test_the_database_never_holds_an_upload_token_or_the_signed_request(site: Site) -> None:
    secrets: list[str] = []

    def assert_none_stored() -> None:
        stored = everything_stored(site.web.engine)
        raw = database_files(site)
        for secret in secrets:
            assert secret not in stored
            assert secret.encode() not in raw

    prepared = site.prepare()
    request_id = prepared["request_id"]
    secrets.append(prepared["claims"]["upload"]["token"])  # handed out once, with the claims
    assert_none_stored()

    downloaded = site.download_claims(request_id).json()
    secrets.append(downloaded["upload"]["token"])
    assert_none_stored()
    # A download hands out a new bearer: the one shown before no longer counts.
    assert secrets[0] != secrets[1]

    signed = sign_claims(downloaded, site.police_key)
    assert site.submit(request_id, signed).status_code == 202
    secrets.append(signed)
    assert_none_stored()

    # Once sent, the claims (and their bearer) are not handed out again.
    again = site.download_claims(request_id)
    assert again.status_code == 409
    assert "sent to its agent already" in again.json()["error"]
    listed = requests.get(site.web.url + "/api/v1/requests", headers=site.officer, timeout=5)
    assert [r["state"] for r in listed.json()["requests"]] == ["sent"]


def test_claims_signed_from_an_older_download_are_refused_naming_the_newer_one(site: Site) -> None:
    request_id = site.prepare()["request_id"]
    older = site.download_claims(request_id).json()
    site.download_claims(request_id)  # an officer downloads again, e.g. on another machine
    answer = site.submit(request_id, sign_claims(older, site.police_key))
    assert answer.status_code == 400
    assert "newest claims.json" in answer.json()["error"]
    assert site.relay.sent == []


# --- (b) a junk file sent first does not block the real delivery ---------------------------------


def test_a_junk_manifest_sent_first_with_a_leaked_token_does_not_block_the_delivery(
    site: Site,
) -> None:
    order = site.order()
    site.upload(order, "manifest.jws", b"not a manifest at all\n")
    assert not site.checked(order).verified  # junk: nothing verifies

    pkg = site.package(order)
    site.deliver(order, pkg, PACKAGE_WINDOW)  # raised 409 before: "already received"

    record = wait_for_verified(site, order)
    assert record.verdict.startswith("verified"), record.verdict
    assert pkg.signed is not None
    folder = site.intake.evidence_dir / order.request_id
    assert (folder / "manifest.jws").read_bytes() == pkg.signed.read_bytes()
    # The junk is kept (received evidence is never destroyed), only set aside.
    received = [f for f in record.files if f.name == "manifest.jws"]
    assert len(received) == 2 and sum(f.set_aside for f in received) == 1


def test_a_crash_between_the_two_renames_of_a_swap_is_repaired_by_the_next_check(
    site: Site,
) -> None:
    order = site.order()
    site.upload(order, "manifest.jws", b"junk")
    pkg = site.package(order)
    site.deliver(order, pkg, PACKAGE_WINDOW)
    wait_for_verified(site, order)
    # The swap's first rename happened (the agent's manifest went back to .partial), the
    # second did not: the name is empty and both manifests are set aside.
    with site.engine.connect() as db:
        agents_upload = db.execute(
            select(evidence_uploads.c.upload_id).where(
                evidence_uploads.c.request_id == order.request_id,
                evidence_uploads.c.filename == "manifest.jws",
                evidence_uploads.c.sha256 == pkg.manifest_sha256,
            )
        ).scalar_one()
    folder = site.intake.evidence_dir / order.request_id
    partial = site.intake.evidence_dir / ".partial"
    (folder / "manifest.jws").rename(partial / f"{agents_upload}.part")

    verdict = site.intake.check_package(order.request_id)  # as at the next start

    assert verdict.verified, verdict.text()
    assert pkg.signed is not None
    assert (folder / "manifest.jws").read_bytes() == pkg.signed.read_bytes()
    assert not (partial / f"{agents_upload}.part").exists()


def test_a_junk_segment_sent_first_is_set_aside_for_the_one_the_manifest_signs(site: Site) -> None:
    order = site.order()
    pkg = site.package(order)
    victim = pkg.files[0]
    site.upload(order, victim.name, b"junk in place of footage")

    site.deliver(order, pkg, PACKAGE_WINDOW)

    record = wait_for_verified(site, order)
    folder = site.intake.evidence_dir / order.request_id
    assert (folder / victim.name).read_bytes() == (pkg.directory / victim.name).read_bytes()
    assert site.intake.file_path(order.request_id, victim.name) == folder / victim.name
    assert record.verified


def wait_for_verified(site: Site, order: Order) -> PackageRecord:
    def verified() -> bool:
        record = site.record(order)
        return record is not None and record.verified

    eventually(verified, f"{order.request_id}'s package to verify", 20)
    record = site.record(order)
    assert record is not None
    return record


# --- (c) only while the request is live --------------------------------------------------------


@pytest.mark.parametrize("site", [{"request_validity": "3s"}], indirect=True)
def test_an_upload_after_the_request_expired_is_refused_with_410(site: Site) -> None:
    order = site.order()
    started = site.create(order, "front_1.ts", b"x" * 10)
    assert started.status_code == 201, started.text  # live: accepted
    url = started.headers["Location"]

    def refused() -> bool:
        return site.create(order, "front_2.ts", b"y" * 10).status_code == 410

    eventually(refused, "the request to expire", 10)
    answer = site.create(order, "front_2.ts", b"y" * 10)
    assert "expired at" in answer.text and order.request_id in answer.text
    late = site.patch(order, url, b"x" * 10)
    assert late.status_code == 410 and "expired at" in late.text
    assert site.intake.evidence_dir.joinpath(order.request_id, "front_1.ts").exists() is False


def test_an_upload_after_the_package_verified_is_refused_but_the_agent_can_still_resume(
    site: Site,
) -> None:
    order = site.order()
    pkg = site.package(order)
    site.deliver(order, pkg, PACKAGE_WINDOW)
    wait_for_verified(site, order)

    extra = site.create(order, "more.ts", b"late junk")
    assert extra.status_code == 410
    assert "verified" in extra.text and "nothing more is accepted" in extra.text
    # An agent that lost its state still learns its files are complete.
    assert pkg.signed is not None
    same = site.create(order, "manifest.jws", pkg.signed.read_bytes())
    assert same.status_code == 201
    head = requests.head(
        same.headers["Location"],
        headers={**TUS, "Authorization": f"Bearer {order.upload_token}"},
        timeout=10,
    )
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"]


def test_an_upload_for_a_request_never_sent_is_refused(site: Site) -> None:
    request_id = site.prepare()["request_id"]
    claims = site.download_claims(request_id).json()  # e.g. a claims.json left lying around
    order = Order(request_id, claims["upload"]["token"], "")
    answer = site.create(order, "front_1.ts", b"x")
    assert answer.status_code == 403
    assert "not been sent to its agent" in answer.text


# --- (d) a byte budget per request ------------------------------------------------------------


def test_uploads_past_the_requests_byte_budget_are_refused_with_413(site: Site) -> None:
    order = site.order()
    budget = upload_budget(120.0, 1)
    per_file = site.intake.max_file_bytes
    accepted = 0
    number = 0
    while accepted + per_file <= budget:
        number += 1
        answer = site.create(order, f"front_{number}.ts", b"", length=per_file)
        assert answer.status_code == 201, answer.text
        accepted += per_file
    over = site.create(order, "front_last.ts", b"", length=per_file)
    assert over.status_code == 413
    assert f"at most {budget} bytes" in over.text and order.request_id in over.text
    # What fits is still accepted.
    assert site.create(order, "front_last.ts", b"", length=budget - accepted).status_code == 201


# --- (e) the manifest must be the request's ---------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "finding"),
    [
        (
            {"window": (T0 + 10 * SEGMENT, T0 + 12 * SEGMENT)},
            "manifest: window is 2026-11-27T12:00:00Z to 2026-11-27T12:02:00Z, the request's "
            "is 2026-11-27T12:10:00Z to 2026-11-27T12:12:00Z",
        ),
        (
            {"cameras": ("front", "yard")},
            "manifest: cameras are front, the request named front, yard",
        ),
    ],
    ids=["window", "cameras"],
)
def test_a_validly_signed_manifest_for_another_window_or_cameras_is_not_verified(
    site: Site, asked: dict[str, Any], finding: str
) -> None:
    order = site.order(**asked)
    pkg = site.package(order)
    site.deliver(order, pkg, asked.get("window", PACKAGE_WINDOW))

    record = site.checked(order)
    assert not record.verified
    assert finding in record.verdict
    assert "manifest signature valid" in record.verdict  # signed by the agent, just not this
