"""One event loop serves every page, API call and evidence upload of the registry: a slow
database (a long search, a locked SQLite file) must hold up only the request that waits for
it. So no query may run in the server's event-loop thread; every route is called here
through real HTTP and the database's own statement hook says where each query ran."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import event
from starlette.routing import Mount

from registry.db.engine import open_engine
from registry.evidence.intake import EvidenceIntake
from registry.web import auth, evidence_pages
from registry.web.auth import Role
from tests.registry.web.test_police_api import HERE, _prepare
from tests.support.registry_web import PASSWORD, RegistryWeb, registry_web, server_config


@pytest.fixture
def web(tmp_path: Path) -> Iterator[RegistryWeb]:
    config = server_config(tmp_path)
    intake_engine = open_engine(config.database_url)
    intake = EvidenceIntake(intake_engine, tmp_path / "evidence", 10**6)
    routes = [*evidence_pages.routes(intake), Mount("/files", routes=intake.routes())]
    with registry_web(config, extra=routes) as web:
        web.add_user("piet", Role.POLICE)
        web.add_user("olga", Role.OPERATOR)
        yield web
    intake_engine.dispose()


def _session(web: RegistryWeb, name: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    answer = session.post(
        web.url + "/login", data={"username": name, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200 and answer.url.endswith("/"), answer.text
    return session, session.cookies.get("camreg_session") or ""


def test_no_database_query_runs_in_the_event_loop(web: RegistryWeb) -> None:
    loop_thread = f"uvicorn:{urlsplit(web.url).port}"
    threads: list[str] = []

    def seen(*_: Any) -> None:
        threads.append(threading.current_thread().name)

    event.listen(web.engine, "before_cursor_execute", seen)
    try:
        police, _ = _session(web, "piet")
        operator, _ = _session(web, "olga")
        token = {"Authorization": "Bearer " + auth.add_api_token(web.engine, "piet", "test")}
        prepared = _prepare(web, token)
        assert prepared.status_code == 201, prepared.text
        request_id = prepared.json()["request_id"]
        base = web.url
        calls: list[tuple[requests.Session | None, str, str, dict[str, Any]]] = [
            (police, "GET", "/login", {}),
            (police, "GET", "/", {}),
            (police, "GET", "/api/v1/cameras", {}),
            (police, "GET", "/search", {}),
            (police, "GET", "/requests", {}),
            (police, "GET", "/evidence", {}),
            (police, "GET", "/api/v1/evidence", {}),
            (police, "GET", f"/evidence/{request_id}/nothing.mp4", {}),
            (police, "GET", "/no-such-page", {}),
            (None, "GET", "/api/v1/requests", {"headers": token}),
            (None, "GET", f"/api/v1/requests/{request_id}/claims.json", {"headers": token}),
            (
                None,
                "POST",
                "/api/v1/search",
                {
                    "headers": token,
                    "json": {
                        "lat": HERE[0],
                        "lon": HERE[1],
                        "at": "2026-01-01T00:00:00Z",
                        "reason": "x",
                    },
                },
            ),
            (
                None,
                "POST",
                f"/api/v1/requests/{request_id}/token",
                {"headers": token, "json": {"token": "a.b.c"}},
            ),
            (operator, "GET", "/enrolment", {}),
            (operator, "GET", "/api/v1/enrolled-agents", {}),
            (None, "GET", "/api/v1/cameras", {"headers": token}),
        ]
        for client, method, path, options in calls:
            answer = (client or requests).request(method, base + path, timeout=30, **options)
            assert answer.status_code < 500, (path, answer.status_code, answer.text)
        csrf = police.get(base + "/", timeout=30).text.split('name="csrf" value="')[1]
        csrf = csrf.split('"', 1)[0]
        assert police.post(base + "/logout", data={"csrf": csrf}, timeout=30).status_code == 200
    finally:
        event.remove(web.engine, "before_cursor_execute", seen)
    assert threads, "no query seen at all"
    assert loop_thread not in threads
