"""A request its agent says it withdrew is marked withdrawn in the registry (on SQLite and
PostgreSQL), and the evidence intake, served by a real uvicorn, takes nothing more for it:
no new upload, no further byte of one begun. Another agent's status cannot mark it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.routing import Mount

from registry.db.schema import requests as requests_table
from registry.evidence.intake import EvidenceIntake
from registry.ingest.store import IngestStore
from registry.ingest.validate import MessageValidator
from tests.registry.evidence.test_intake import CASE, MAX_FILE_BYTES, TOKEN, Intake
from tests.support.asgi_server import serve_asgi
from tests.support.registry_rows import add_enrolled_agent, add_prepared_request

PREFIX = "camreg/v1"


def said(engine: Engine, agent: str, state: str, ts: str = "2026-03-01T10:00:05.000Z") -> None:
    """The agent's retained status of req-1, through the ingest's validation and store."""
    status = {
        "request_id": "req-1",
        "state": state,
        "reason": None,
        "progress": None,
        "manifest_sha256": None,
        "ts": ts,
    }
    topic = f"{PREFIX}/agents/{agent}/requests/req-1/status"
    payload = json.dumps(status).encode()
    IngestStore(engine).apply([MessageValidator(PREFIX).check(topic, payload)])


def withdrawn_at(engine: Engine) -> float | None:
    with engine.connect() as db:
        value: float | None = db.execute(
            select(requests_table.c.withdrawn_at).where(requests_table.c.request_id == "req-1")
        ).scalar_one()
    return value


@pytest.fixture
def env(engine: Engine, tmp_path: Path) -> Iterator[Intake]:
    device = Ed25519PrivateKey.generate()
    add_enrolled_agent(engine, device.public_key())
    add_prepared_request(engine, "req-1", TOKEN, CASE)
    evidence = EvidenceIntake(engine, tmp_path / "evidence", MAX_FILE_BYTES)
    app = Starlette(routes=[Mount("/files", routes=evidence.routes())])
    with serve_asgi(app) as base:
        yield Intake(engine, evidence, f"{base}/files/", device, tmp_path)


def test_a_withdrawn_request_takes_no_more_evidence(env: Intake) -> None:
    begun = env.create("front-1.ts", b"0123456789")
    assert begun.status_code == 201
    url = begun.headers["Location"]
    assert env.patch(url, 0, b"01234").status_code == 204

    said(env.engine, "shop-43", "withdrawn")  # another agent cannot withdraw shop-42's
    assert withdrawn_at(env.engine) is None
    said(env.engine, "shop-42", "withdrawn")
    assert withdrawn_at(env.engine) is not None

    more = env.patch(url, 5, b"56789")
    assert more.status_code == 410 and "withdrawn by the police" in more.text
    again = env.create("front-2.ts", b"abc")
    assert again.status_code == 410 and "withdrawn by the police" in again.text
    assert [u["offset"] for u in env.uploads()] == [5]  # nothing more was kept
