"""The contract documents themselves: well-formed, and strict where receivers rely on them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.clock import ClockState
from agent.mqtt import payloads
from agent.quality.assess import Health, StreamFacts
from tests.support.schemas import assert_valid

HEALTH = payloads.health(
    agent="shop-42",
    camera="front",
    bdseq=3,
    seq=17,
    snapshot=Health(
        "ok",
        (),
        {"fps": 15.0, "reconnects_1h": 0},
        StreamFacts("h264", 1280, 720, "rtsp", 15.0, 2000.0),
    ),
    clock=ClockState(True, "chrony"),
)


def test_what_the_agent_builds_is_valid() -> None:
    assert_valid("health", HEALTH)
    birth = payloads.birth(
        "shop-42",
        3,
        "0.1.0",
        ClockState(False, "none"),
        [
            payloads.CameraDescription(
                "front", "Voordeur", {"lat": 52.1, "lon": 6.5, "fov_deg": 90.0}, 1920
            )
        ],
    )
    assert_valid("state", birth)
    assert_valid("state", payloads.death("shop-42", 3, "connection_lost"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("status", "broken"),
        ("problems", ["on_fire"]),
        ("ts", "2026-11-27 10:00:00"),
        ("camera", "Front Door"),
        ("password", "x"),
    ],
)
def test_a_wrong_health_object_is_refused(key: str, value: Any) -> None:
    wrong = copy.deepcopy(HEALTH)
    wrong[key] = value
    with pytest.raises(AssertionError):
        assert_valid("health", wrong)
