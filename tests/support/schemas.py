"""The contract documents of docs/schemas/, used to validate what the agent publishes."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from tests.support import REPO_ROOT

SCHEMAS = REPO_ROOT / "docs" / "schemas"


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def assert_valid(name: str, payload: Any) -> None:
    """Fail listing every way `payload` breaks schema `name`."""
    errors = sorted(validator(name).iter_errors(payload), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def assert_topic_valid(topic: str, payload: bytes) -> None:
    """Validate one message by the topic it arrived on."""
    if topic.endswith("/state"):
        assert_valid("state", json.loads(payload))
    elif topic.endswith("/health"):
        assert_valid("health", json.loads(payload))
    elif topic.endswith("/status"):
        assert_valid("request-status", json.loads(payload))
    elif topic.endswith("/audit"):
        assert_valid("audit-entry", json.loads(payload))
    else:
        raise AssertionError(f"no schema for topic {topic}")


# The agent's own topics (not the requests topic: a bare JWS the registry sends).
_AGENT_TOPIC_ENDS = ("/state", "/health", "/status", "/audit")


def contract_problem(topic: str, payload: bytes) -> str | None:
    """Why a message on an agent topic breaks its schema, or None (other topics: None)."""
    if "/agents/" not in topic or not topic.endswith(_AGENT_TOPIC_ENDS):
        return None
    try:
        assert_topic_valid(topic, payload)
    except (AssertionError, ValueError) as exc:
        return f"{topic}: {exc}"
    return None
