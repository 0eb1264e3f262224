"""What a camera was like at a moment, from its intervals (pure, no database)."""

from __future__ import annotations

import pytest

from registry.ingest.intervals import REPORT_SILENCE_S, STATUS_CODES, problem_mask
from registry.police.history import CameraHistory, judge_range, verdict_at

NOW = 1_800_000_000.0
OK, FAILED = STATUS_CODES["ok"], STATUS_CODES["failed"]


def history(**changes: object) -> CameraHistory:
    """Covered from NOW-900 to NOW-600; a gap NOW-400..NOW-380; ok since NOW-600, last report
    NOW-20 with footage to NOW-70."""
    h = CameraHistory(
        states=[
            (NOW - 3000, NOW - 900, OK, 0),
            (NOW - 900, NOW - 600, FAILED, problem_mask(["covered"])),
        ],
        runs=[(NOW - 3000, NOW - 400)],
        gaps=[(NOW - 400, NOW - 380)],
        state_start=NOW - 600,
        state_end=NOW - 20,
        state_code=OK,
        state_problems=0,
        run_start=NOW - 380,
        run_end=NOW - 70,
        footage_oldest=NOW - 3000,
        footage_newest=NOW - 70,
    )
    for name, value in changes.items():
        setattr(h, name, value)
    return h


@pytest.mark.parametrize(
    ("t", "state", "footage"),
    [
        (NOW - 1000, "usable", "recorded"),
        (NOW - 900, "failed", "recorded"),  # at the change: the new state
        (NOW - 700, "failed", "recorded"),
        (NOW - 500, "usable", "recorded"),
        (NOW - 390, "gap", "gap"),
        (NOW - 200, "usable", "recorded"),
        (NOW - 30, "usable", "live"),  # past the newest footage, the camera reporting now
        (NOW + 30, "usable", "live"),  # the officer's clock a little ahead
        (NOW - 3100, "offline", "none"),  # before anything the registry kept
    ],
)
def test_verdict_at(t: float, state: str, footage: str) -> None:
    verdict = verdict_at(history(), t, NOW)
    assert (verdict.state, verdict.footage) == (state, footage)


def test_a_camera_silent_since_its_last_report_is_offline_after_it() -> None:
    stale = history(state_end=NOW - REPORT_SILENCE_S - 60, run_end=NOW - REPORT_SILENCE_S - 90)
    assert verdict_at(stale, NOW - 30, NOW).state == "offline"


def test_recording_stopped_is_not_live() -> None:
    stopped = history(state_problems=problem_mask(["recording_stopped"]))
    verdict = verdict_at(stopped, NOW - 30, NOW)
    assert (verdict.state, verdict.footage) == ("not_recording", "none")


def test_without_intervals_the_footage_times_decide() -> None:
    legacy = CameraHistory(footage_oldest=NOW - 3600, footage_newest=NOW - 60)
    assert verdict_at(legacy, NOW - 600, NOW).state == "unknown"
    assert verdict_at(legacy, NOW - 7200, NOW).state == "not_recording"


def test_a_range_is_cut_where_the_state_changes() -> None:
    pieces = judge_range(history(), NOW - 1200, NOW - 300, NOW)
    assert [(p.start, p.end, p.verdict.state) for p in pieces] == [
        (NOW - 1200, NOW - 900, "usable"),
        (NOW - 900, NOW - 600, "failed"),
        (NOW - 600, NOW - 400, "usable"),
        (NOW - 400, NOW - 380, "gap"),
        (NOW - 380, NOW - 300, "usable"),
    ]
