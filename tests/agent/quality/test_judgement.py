"""The picture judgement (health `judgement`) and the owner's accepted problems, driven
with explicit times on the assessor itself."""

from __future__ import annotations

import numpy as np

from agent.quality.assess import (
    JUDGE_SAMPLES,
    WARMUP_SAMPLES,
    Expectations,
    StreamAssessor,
)
from agent.quality.metrics import Planes
from tests.agent.quality.test_assess import FACTS, feed, scene


def hazy(seed: int, shape: tuple[int, int] = (720, 1280)) -> Planes:
    """The textured view seen through a fogged-up dome, always: `low_contrast` by the
    rules that hold for any camera (a dim view is not: its darks stay dark)."""
    clear = scene(seed, shape, noise=16)
    return Planes((170 + clear.luma // 16).astype(np.uint8), clear.u, clear.v)


def test_pending_until_enough_pictures_and_a_reference_for_the_lighting() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 30, fps=15)
    before = assessor.assess(end).judgement
    assert before is not None and before.state == "pending"
    assert before.waiting_for == ("samples", "reference") and before.lighting is None
    states = []
    for i in range(WARMUP_SAMPLES + 1):
        assessor.picture(float(i), scene(i))
        health = assessor.assess(end)
        assert health.status == "ok"  # the status is what it always was ...
        assert health.judgement is not None
        states.append(health.judgement.waiting_for)
    # ... and the judgement says what it still waits for, picture by picture
    assert states[0] == ("samples", "reference")
    assert states[JUDGE_SAMPLES - 1] == ("reference",)
    assert states[WARMUP_SAMPLES - 1] == ()
    assert assessor.judgement().state == "judged"
    assert assessor.judgement().as_payload()["samples"] == WARMUP_SAMPLES + 1
    assessor.reset_references()  # `reference reset`: pending again until a new one
    assert assessor.judgement().waiting_for == ("reference",)


def test_a_lighting_without_its_own_reference_is_pending() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0, warmup_samples=2)
    assessor.connected(0.0, FACTS)
    for i in range(4):
        assessor.picture(float(i), scene(i))  # grey: an infrared picture
    assert assessor.judgement().state == "judged"
    colour = scene(9)
    assert colour.u is not None and colour.v is not None
    tinted = Planes(colour.luma, colour.u + 20, colour.v - 25)  # a colour picture by day
    assessor.picture(5.0, tinted)
    assert assessor.judgement().waiting_for == ("reference",)
    assert assessor.judgement().lighting == "colour"


def test_an_accepted_problem_leaves_problems_and_status_but_is_listed() -> None:
    assessor = StreamAssessor(Expectations(), started=0.0)
    assessor.connected(0.0, FACTS)
    end = feed(assessor, 0.0, 30, fps=15)
    for i in range(3):
        assessor.picture(float(i), hazy(i))
    assert assessor.assess(end).problems == ("low_contrast",)
    assessor.accept(frozenset({"low_contrast", "covered"}))  # covered is never accepted
    health = assessor.assess(end)
    assert health.problems == () and health.status == "ok"
    assert health.accepted == ("low_contrast",)
    assessor.accept(frozenset())
    assert assessor.assess(end).problems == ("low_contrast",)


def test_an_accepted_problem_does_not_keep_the_camera_from_being_judged() -> None:
    """A camera whose normal is hazy would otherwise never finish its warm-up, so never
    get a reference view, and its blur would never be judged."""
    assessor = StreamAssessor(Expectations(), started=0.0, accepted=frozenset({"low_contrast"}))
    assessor.connected(0.0, FACTS)
    for i in range(WARMUP_SAMPLES + 2):
        assessor.picture(float(i), hazy(i))
    assert assessor.has_reference
    assert assessor.judgement().state == "judged"
