"""What the request flow and the audit log send to the registry: a request's status on
its own topic and each audit entry on the agent's audit topic, both through the link's
outbox. The desk and the audit log know nothing of MQTT; these are what they are handed
(`publish_status`, `on_append`)."""

from __future__ import annotations

from typing import Any, Protocol

from agent.audit import REQUEST_ID_RE, AuditEntry
from agent.mqtt import payloads
from agent.mqtt.outbox import REJECTED_STATUS_KEY
from contract.topics import Topics


class Outgoing(Protocol):
    """What these need of the link (RegistryLink in production)."""

    def send(
        self, topic: str, payload: bytes, *, retain: bool, kind: str, key: str | None = None
    ) -> None: ...


class StatusSender:
    """The request desk's `publish_status`: a request's status, retained unless rejected."""

    def __init__(self, link: Outgoing, topics: Topics) -> None:
        self._link = link
        self._topics = topics

    def __call__(self, request_id: str, body: dict[str, Any], retain: bool) -> None:
        # The id comes from a token: a `/`, `+` or `#` would make another topic, or
        # one paho cannot publish. The token check refuses such ids; this holds anyway.
        if not REQUEST_ID_RE.fullmatch(request_id):
            raise ValueError(f"{request_id!r} is not a request id; no status topic for it")
        topic = self._topics.request_status(request_id)
        if not retain:
            # A rejected token's: the broker would keep every junk token's answer for ever.
            # The outbox keeps only the newest MAX_REJECTED_STATUSES of them.
            self._link.send(
                topic,
                payloads.encode(body),
                retain=False,
                kind="status",
                key=REJECTED_STATUS_KEY,
            )
            return
        self._link.send(topic, payloads.encode(body), retain=True, kind="status")


class AuditSender:
    """The audit log's `on_append`: each entry as written, not retained."""

    def __init__(self, link: Outgoing, topics: Topics) -> None:
        self._link = link
        self._topics = topics

    def __call__(self, entry: AuditEntry) -> None:
        self._link.send(self._topics.audit, entry.line(), retain=False, kind="audit")
