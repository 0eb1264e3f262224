"""docs/asyncapi.yaml describes every topic the agent uses, with schemas that exist and hold."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from contract.topics import Topics
from tests.support import REPO_ROOT
from tests.support.schemas import SCHEMAS, assert_valid

DOCS = REPO_ROOT / "docs"
ASYNCAPI = DOCS / "asyncapi.yaml"
PREFIX = "camreg/v1"  # the default prefix, which the document's addresses show
SAMPLE = {"agent": "shop-42", "camera": "front", "request_id": "2026-0042-a"}

# DESIGN.md's MQTT table, by Topics member: the agent's action and whether it is retained.
CONTRACT = {
    "state": ("send", True),
    "health": ("send", True),
    "requests": ("receive", False),
    "request_status": ("send", True),
    "audit": ("send", False),
    "police_keyset": ("receive", True),
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(ASYNCAPI.read_text())
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (`#/a/b`) until a node that is not one."""
    while isinstance(node, dict) and set(node) == {"$ref"} and node["$ref"].startswith("#/"):
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def agent_topics() -> dict[str, str]:
    """Every topic Topics builds, by member name, for the sample agent, camera and request."""
    topics = Topics(PREFIX, SAMPLE["agent"])
    built: dict[str, str] = {}
    for name, member in inspect.getmembers(Topics):
        if name.startswith("_") or name in ("prefix", "agent"):
            continue
        if isinstance(member, property):
            built[name] = getattr(topics, name)
        elif inspect.isfunction(member):
            params = list(inspect.signature(member).parameters)[1:]
            built[name] = getattr(topics, name)(*(SAMPLE[p] for p in params))
    return built


def address_pattern(address: str) -> re.Pattern[str]:
    """A channel address with `{param}` as a named group matching one topic level."""
    parts = re.split(r"\{(\w+)\}", address)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(regex)


def channel_of(doc: dict[str, Any], topic: str) -> tuple[str, dict[str, str]]:
    matches = [
        (name, found.groupdict())
        for name, channel in doc["channels"].items()
        if (found := address_pattern(channel["address"]).fullmatch(topic))
    ]
    assert len(matches) == 1, f"{topic} matches channels {[m[0] for m in matches]}"
    return matches[0]


def operations_of(doc: dict[str, Any], channel: str) -> list[dict[str, Any]]:
    return [
        op for op in doc["operations"].values() if op["channel"]["$ref"] == f"#/channels/{channel}"
    ]


def messages(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resolve(doc, m) for name, m in doc["components"]["messages"].items()}


def schema_file(message: dict[str, Any]) -> Path | None:
    """The docs/schemas file a message's payload refers to, or None for an inline schema."""
    payload = message["payload"]
    ref = payload.get("schema", {}).get("$ref") if "schema" in payload else None
    return (DOCS / ref).resolve() if ref else None


def test_it_is_an_asyncapi_3_document(doc: dict[str, Any]) -> None:
    assert str(doc["asyncapi"]).startswith("3.")
    assert doc["channels"] and doc["operations"]


def test_every_topic_of_the_agent_is_a_channel_and_no_other(doc: dict[str, Any]) -> None:
    built = agent_topics()
    assert set(built) == set(CONTRACT), "Topics and DESIGN.md's table disagree"
    used: set[str] = set()
    for topic in built.values():
        channel, params = channel_of(doc, topic)
        assert params == {p: SAMPLE[p] for p in params}, (topic, params)
        declared = set(doc["channels"][channel].get("parameters", {}))
        assert declared == set(params), f"channel {channel}: parameters {declared} vs {params}"
        used.add(channel)
    assert used == set(doc["channels"]), "channels without a topic in contract/topics.py"


@pytest.mark.parametrize("member", sorted(CONTRACT))
def test_direction_retain_and_qos_are_the_contracts(doc: dict[str, Any], member: str) -> None:
    action, retain = CONTRACT[member]
    channel, _ = channel_of(doc, agent_topics()[member])
    ops = operations_of(doc, channel)
    assert len(ops) == 1, f"channel {channel} has {len(ops)} operations"
    op = ops[0]
    assert op["action"] == action
    mqtt = resolve(doc, op["bindings"])["mqtt"]
    assert (mqtt["qos"], mqtt["retain"]) == (1, retain)
    # The operation's messages are the channel's.
    channel_messages = {
        resolve(doc, m)["name"] for m in doc["channels"][channel]["messages"].values()
    }
    op_messages = {resolve(doc, m)["name"] for m in op["messages"]}
    assert op_messages == channel_messages


def test_the_last_will_is_the_retained_offline_state(doc: dict[str, Any]) -> None:
    for server in doc["servers"].values():
        will = resolve(doc, server["bindings"])["mqtt"]["lastWill"]
        assert will["topic"] == doc["channels"]["state"]["address"]
        assert (will["qos"], will["retain"]) == (1, True)
        assert '"connection_lost"' in will["message"]


def test_every_schema_is_referenced_exists_and_is_valid_json_schema(doc: dict[str, Any]) -> None:
    referenced = {path for m in messages(doc).values() if (path := schema_file(m)) is not None}
    assert referenced, "no message refers to docs/schemas"
    for path in referenced:
        assert path.parent == SCHEMAS.resolve() and path.is_file(), path
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
        Draft202012Validator.check_schema(schema)
    on_disk = {p.resolve() for p in SCHEMAS.glob("*.schema.json")}
    assert referenced == on_disk, f"schemas no message uses: {on_disk - referenced}"


def test_every_example_is_valid_against_its_payload_schema(doc: dict[str, Any]) -> None:
    checked = 0
    for name, message in messages(doc).items():
        assert message.get("examples"), f"message {name} has no example"
        path = schema_file(message)
        for example in message["examples"]:
            if path is not None:
                assert_valid(path.name.removesuffix(".schema.json"), example["payload"])
            else:
                Draft202012Validator.check_schema(message["payload"])
                validator = Draft202012Validator(message["payload"])
                errors = [e.message for e in validator.iter_errors(example["payload"])]
                assert not errors, (name, errors)
            checked += 1
    assert checked >= len(CONTRACT)


def test_a_request_is_a_bare_compact_jws_not_json(doc: dict[str, Any]) -> None:
    channel, _ = channel_of(doc, agent_topics()["requests"])
    found = [resolve(doc, m) for m in doc["channels"][channel]["messages"].values()]
    assert [m["name"] for m in found] == ["request", "withdrawal"]
    for message in found:  # a withdrawal travels as a request does
        assert message["contentType"] == "application/jose"
        assert schema_file(message) is None
        assert message["payload"]["type"] == "string"
        pattern = re.compile(message["payload"]["pattern"])
        for example in message["examples"]:
            assert pattern.fullmatch(example["payload"])
            with pytest.raises(json.JSONDecodeError):
                json.loads(example["payload"])
        assert not pattern.fullmatch('{"token": "a.b.c"}')
        assert not pattern.fullmatch("a.b.c\n")
