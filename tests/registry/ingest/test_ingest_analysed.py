"""The registry's ingest takes health with `stream.analysed` (issue 18: which of a
camera's streams was analysed), and refuses one that breaks its documented shape."""

from __future__ import annotations

import json
from typing import Any

import yaml

from registry.ingest.validate import Accepted, MessageValidator, Rejected
from tests.support import REPO_ROOT

TOPIC = "camreg/v1/agents/shop-42/cameras/front/health"


def documented_example(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO_ROOT / "docs" / "asyncapi.yaml").read_text())
    examples = doc["components"]["messages"]["health"]["examples"]
    payload: dict[str, Any] = next(e["payload"] for e in examples if e["name"] == name)
    return payload


def test_health_analysed_on_the_sub_stream_is_accepted() -> None:
    payload = documented_example("analysed on the sub-stream, recorded from the main stream")
    result = MessageValidator("camreg/v1").check(TOPIC, json.dumps(payload).encode())
    assert isinstance(result, Accepted), result
    assert result.payload["stream"]["analysed"]["stream"] == "sub"


def test_health_naming_an_unknown_stream_is_rejected_with_the_place() -> None:
    payload = documented_example("the sub-stream lost, the main stream analysed meanwhile")
    payload["stream"]["analysed"]["stream"] = "third"
    result = MessageValidator("camreg/v1").check(TOPIC, json.dumps(payload).encode())
    assert isinstance(result, Rejected), result
    assert result.reason == (
        'health schema: stream/analysed/stream: "third" is not one of "main" or "sub"'
    )
