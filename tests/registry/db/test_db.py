"""The registry database opens on both engines and says clearly when it cannot."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from registry.db.engine import open_engine
from registry.db.schema import agents, requests
from registry.errors import RegistryError


def test_tables_are_created_and_usable(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(agents.insert().values(agent_id="shop-42", audit_entries=0))
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(agents)).scalar_one() == 1


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://root@127.0.0.1/test", "'mysql' is not supported"),
        ("not a url", "not a database URL"),
        ("postgresql://nobody@127.0.0.1:1/nothing", r"127\.0\.0\.1:1/nothing: connection failed"),
    ],
)
def test_bad_database_url_is_named(url: str, words: str) -> None:
    with pytest.raises(RegistryError, match=words):
        open_engine(url)


def test_upload_bearers_an_older_registry_kept_are_gone_once_it_opens_again(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bearer = "older-registry-bearer-" + "q" * 30
    claims = {"jti": "req-old", "exp": 2_000_000_000, "upload": {"url": URL, "token": bearer}}
    signed = "eyJhbGciOiJFZERTQSJ9." + "b" * 40 + "." + "c" * 40  # its payload held the bearer
    kept = {**claims, "upload": {"url": URL}}
    older = open_engine(db_url)
    with older.begin() as db:  # rows as registries before this change wrote them
        db.execute(
            requests.insert(),
            [
                _request_row("req-old", json.dumps(claims), signed, bearer),
                _request_row("req-new", json.dumps(kept), None, "other"),
            ],
        )
    older.dispose()

    caplog.set_level(logging.WARNING, logger="registry.db.upgrade")
    engine = open_engine(db_url)
    with engine.connect() as db:
        rows = {r.request_id: r for r in db.execute(select(requests))}
    engine.dispose()
    assert json.loads(rows["req-old"].claims_json) == kept
    assert rows["req-old"].token is None
    assert rows["req-old"].upload_token_sha256 == hashlib.sha256(bearer.encode()).hexdigest()
    assert json.loads(rows["req-new"].claims_json) == kept
    assert "from 1 requests" in caplog.text
    if db_url.startswith("sqlite"):  # nor in the files: freed bytes are overwritten
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("registry.sqlite*"))
        assert bearer.encode() not in raw and signed.encode() not in raw


URL = "https://registry.example/files/"


def _request_row(
    request_id: str, claims_json: str, token: str | None, bearer: str
) -> dict[str, object]:
    return {
        "request_id": request_id,
        "agent_id": "shop-42",
        "cameras_json": '["front"]',
        "window_start": 0.0,
        "window_end": 60.0,
        "kind": "order",
        "case_ref": "2026-1",
        "basis": "b",
        "requester": "r",
        "reason": "why",
        "claims_json": claims_json,
        "upload_token_sha256": hashlib.sha256(bearer.encode()).hexdigest(),
        "prepared_by": "piet",
        "prepared_at": 1.0,
        "token": token,
        "submitted_at": 2.0 if token else None,
    }
