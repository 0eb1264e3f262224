"""What the web app's handlers share: config, database, the request relay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from registry.config import ServerConfig


class Relay(Protocol):
    """Sends a signed request token to an agent's requests topic (registry/link.py)."""

    def publish_request(self, agent_id: str, token: str) -> None: ...


@dataclass(frozen=True)
class AppState:
    config: ServerConfig
    engine: Engine
    relay: Relay | None
