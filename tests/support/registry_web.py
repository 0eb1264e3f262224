"""The registry's web app served by a real uvicorn on a free port, with its own database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.routing import BaseRoute

from registry.config import ServerConfig
from registry.db.engine import open_engine
from registry.web import auth
from registry.web.app import build_app
from registry.web.auth import Role
from registry.web.state import AppState, Relay
from tests.support import free_port
from tests.support.asgi_server import serve_asgi

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class RegistryWeb:
    url: str
    engine: Engine
    config: ServerConfig

    def add_user(self, name: str, role: Role, password: str = PASSWORD) -> None:
        auth.add_user(self.engine, name, password, role)


def server_config(data_dir: Path, broker_port: int = 1883, **changes: Any) -> ServerConfig:
    return ServerConfig.model_validate(
        {
            "data_dir": str(data_dir),
            "mqtt": {"broker": f"mqtt://127.0.0.1:{broker_port}"},
            # No tile server in tests: the page must work without one.
            "map": {"tile_url": "", "center": [52.99, 6.56], "zoom": 15},
            **changes,
        }
    )


@contextmanager
def registry_web(
    config: ServerConfig,
    relay: Relay | None = None,
    extra: Sequence[BaseRoute] = (),
    database_url: str | None = None,
) -> Iterator[RegistryWeb]:
    from registry.web import operator_pages, police_api, police_pages

    # The server's own address goes into upload URLs: serve on the port the config names.
    port = free_port()
    config = config.model_copy(
        update={"http": config.http.model_copy(update={"listen": f"127.0.0.1:{port}"})}
    )
    engine = open_engine(database_url or config.database_url)
    routes = [*police_api.routes(), *police_pages.routes(), *operator_pages.routes(), *extra]
    app = build_app(AppState(config, engine, relay), routes)
    try:
        with serve_asgi(app, port) as url:
            yield RegistryWeb(url, engine, config)
    finally:
        engine.dispose()
