"""Every MQTT topic of the contract (DESIGN.md), in one place: built (`Topics`) and parsed
back into its parts (`parse`, `filters`).

Both the agent, which publishes on these topics, and the registry, which subscribes to
them and reads whose a message is, depend on this module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache


@dataclass(frozen=True)
class Topics:
    prefix: str
    agent: str

    @property
    def _base(self) -> str:
        return f"{self.prefix}/agents/{self.agent}"

    @property
    def state(self) -> str:
        """Retained birth / last will of the agent."""
        return f"{self._base}/state"

    def health(self, camera: str) -> str:
        """Retained health object of one camera."""
        return f"{self._base}/cameras/{camera}/health"

    @property
    def requests(self) -> str:
        """Signed police requests arrive here (registry to agent)."""
        return f"{self._base}/requests"

    def request_status(self, request_id: str) -> str:
        return f"{self._base}/requests/{request_id}/status"

    @property
    def audit(self) -> str:
        return f"{self._base}/audit"

    @property
    def police_keyset(self) -> str:
        """The police key set (contract/keyset.py), retained, relayed by the registry for
        every agent alike: not under the agent's own topics."""
        return police_keyset_topic(self.prefix)


def police_keyset_topic(prefix: str) -> str:
    """Where the registry relays the current police key set, retained."""
    return f"{prefix}/police/keyset"


# Parsing: the agent topics the registry reads, back into their parts.

# DESIGN.md conventions: agent and camera ids lower case, request ids any case.
AGENT_ID = re.compile(r"[a-z0-9_-]{1,64}")
CAMERA_ID = AGENT_ID
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Kind(StrEnum):
    STATE = "state"
    HEALTH = "health"
    STATUS = "status"
    AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class TopicParts:
    """One agent topic: what it carries and whose it is."""

    kind: Kind
    agent: str
    camera: str | None = None
    request_id: str | None = None


class TopicError(ValueError):
    """A topic that is not one of the contract's agent topics."""


def filters(prefix: str) -> dict[Kind, str]:
    """The subscription filter of each kind, for every agent."""
    every = Topics(prefix, "+")
    return {
        Kind.STATE: every.state,
        Kind.HEALTH: every.health("+"),
        Kind.STATUS: every.request_status("+"),
        Kind.AUDIT: every.audit,
    }


@cache
def _health_topic(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"{re.escape(prefix)}/agents/({AGENT_ID.pattern})/cameras/({CAMERA_ID.pattern})/health"
    )


def parse(prefix: str, topic: str) -> TopicParts:
    """Split `{prefix}/agents/{agent}/...`; TopicError says what is wrong with it."""
    # Health, nearly all the traffic, in one match (~1 µs instead of ~5); anything it
    # does not match goes the long way, which says what is wrong.
    health = _health_topic(prefix).fullmatch(topic)
    if health is not None:
        return TopicParts(Kind.HEALTH, health[1], camera=health[2])
    head = f"{prefix}/agents/"
    if not topic.startswith(head):
        raise TopicError(f"not under {head}")
    levels = topic[len(head) :].split("/")
    agent = levels[0]
    if not AGENT_ID.fullmatch(agent):
        raise TopicError(f"agent id {agent[:80]!r} in the topic is not a valid id")
    rest = levels[1:]
    if rest == ["state"]:
        return TopicParts(Kind.STATE, agent)
    if rest == ["audit"]:
        return TopicParts(Kind.AUDIT, agent)
    if len(rest) == 3 and rest[0] == "cameras" and rest[2] == "health":
        if not CAMERA_ID.fullmatch(rest[1]):
            raise TopicError(f"camera id {rest[1][:80]!r} in the topic is not a valid id")
        return TopicParts(Kind.HEALTH, agent, camera=rest[1])
    if len(rest) == 3 and rest[0] == "requests" and rest[2] == "status":
        if not REQUEST_ID.fullmatch(rest[1]):
            raise TopicError(f"request id {rest[1][:80]!r} in the topic is not a valid id")
        return TopicParts(Kind.STATUS, agent, request_id=rest[1])
    raise TopicError("not an agent topic of the contract")
