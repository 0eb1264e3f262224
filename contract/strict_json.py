"""JSON from outside (request tokens, audit lines) parsed strictly: a key that appears
twice is an error, not silently the last value (two readers could disagree).

Part of the contract: the agent and the registry read each other's JSON with it."""

from __future__ import annotations

from typing import Any


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for json.loads; ValueError naming the repeated key."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result
