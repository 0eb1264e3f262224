"""Relaying a signed request token to an agent: `{p}/agents/{agent}/requests`, QoS 1, not
retained, the bare ASCII compact JWS as payload, and confirmed only by the broker's PUBACK.

The registry cannot sign requests; it only carries the officer's token. The broker queues
it in the agent's session if the agent is offline.
"""

from __future__ import annotations

import os
import socket

from contract.config import BrokerConfig
from contract.keyset import MAX_KEYSET_BYTES
from contract.topics import AGENT_ID, Topics, police_keyset_topic
from registry.errors import RegistryError
from registry.ingest.connection import BrokerConnection

# How long publish_request waits for the broker (connect and PUBACK) before it says so.
PUBLISH_TIMEOUT_S = 10.0
# A compact JWS request token is a few hundred bytes; more is not a token.
MAX_TOKEN_BYTES = 16 * 1024
_JWS_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class RequestRelay:
    """Publishes request tokens to agents, over its own connection or a shared one."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        connection: BrokerConnection | None = None,
        client_id: str | None = None,
        timeout: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self._prefix = config.topic_prefix
        self._timeout = timeout
        self._owned = connection is None
        if connection is None:
            # Only publishes: a clean session, nothing to resume.
            default_id = f"camera-registry-relay-{socket.gethostname()}-{os.getpid()}"
            connection = BrokerConnection(
                config,
                client_id=client_id or default_id[:64],
                persistent_session=False,
                name="relay-mqtt",
            )
        self._connection = connection

    def start(self) -> None:
        if self._owned:
            self._connection.start()

    def stop(self) -> None:
        if self._owned:
            self._connection.stop()

    def publish_request(self, agent_id: str, token: str) -> None:
        """Hand `token` to the broker for `agent_id`; returns once the broker has accepted
        it, RegistryError (saying why) otherwise."""
        if not AGENT_ID.fullmatch(agent_id):
            raise RegistryError(f"not an agent id: {agent_id[:80]!r}")
        payload = token.encode("ascii", errors="replace")
        if not payload or len(payload) > MAX_TOKEN_BYTES or not set(payload) <= _JWS_CHARS:
            raise RegistryError("the request token is not a compact JWS (base64url and dots)")
        topic = Topics(self._prefix, agent_id).requests
        self._connection.publish(topic, payload, timeout=self._timeout)

    def publish_keyset(self, token: str) -> None:
        """Hand a police key set to the broker, retained, for every agent; returns once the
        broker has accepted it. The registry cannot sign one: agents check its root
        signature (contract/keyset.py)."""
        payload = token.encode("ascii", errors="replace")
        if not payload or len(payload) > MAX_KEYSET_BYTES or not set(payload) <= _JWS_CHARS:
            raise RegistryError("the key set is not a compact JWS (base64url and dots)")
        topic = police_keyset_topic(self._prefix)
        self._connection.publish(topic, payload, timeout=self._timeout, retain=True)
