"""The owner's list of accepted problems on disk, and which problems may be on it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agent.i18n import translator
from agent.quality.accepted import (
    ACCEPTED_FILE,
    AcceptedProblems,
    AcceptedProblemsError,
    why_not_acceptable,
)

EN = translator("en")


@pytest.mark.parametrize(
    ("problem", "why"),
    [
        ("blurred", None),
        ("too_dark", None),
        ("too_bright", None),
        ("low_contrast", None),
        ("colour_cast", None),
        ("noisy", None),
        ("no_signal", "not working"),
        ("frozen", "not working"),
        ("covered", "not working"),
        ("scene_changed", "reference reset"),
        ("low_fps", "cameras[].expect"),
        ("low_resolution", "cameras[].expect"),
        ("storage_low", "storage, recording or clock"),
        ("recording_stopped", "storage, recording or clock"),
        ("storage_failed", "storage, recording or clock"),
        ("clock_unsynced", "storage, recording or clock"),
        ("dusty", "there is no problem 'dusty'"),
    ],
)
def test_only_problems_that_depend_on_the_scene_can_be_accepted(
    problem: str, why: str | None
) -> None:
    said = why_not_acceptable(problem, EN)
    if why is None:
        assert said is None
    else:
        assert said is not None and why in said


def test_accepted_problems_are_kept_across_a_restart(tmp_path: Path) -> None:
    store = AcceptedProblems(tmp_path)
    assert store.change("front", "noisy", accept=True)
    assert not store.change("front", "noisy", accept=True)  # already
    assert store.change("front", "too_dark", accept=True)
    with pytest.raises(ValueError):
        store.change("front", "covered", accept=True)
    again = AcceptedProblems(tmp_path)
    assert again.of("front") == {"noisy", "too_dark"} and again.of("yard") == frozenset()
    assert again.change("front", "noisy", accept=False)
    assert AcceptedProblems(tmp_path).of("front") == {"too_dark"}
    assert [p.name for p in tmp_path.iterdir()] == [ACCEPTED_FILE]  # no temporary left
    assert (tmp_path / ACCEPTED_FILE).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        "[]",
        '{"schema": "camera-agent.accepted-problems.v1"}',
        '{"schema": "camera-agent.accepted-problems.v1", "cameras": {"front": {"covered": "x"}}}',
        '{"schema": "camera-agent.accepted-problems.v1", "cameras": {"../x": {}}}',
    ],
)
def test_a_broken_list_is_moved_aside_and_none_is_accepted(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ACCEPTED_FILE).write_text(text)
    with caplog.at_level(logging.ERROR):
        store = AcceptedProblems(tmp_path)
    assert store.of("front") == frozenset()
    assert store.reset is not None and store.reset.kept_as is not None
    assert (tmp_path / store.reset.kept_as).read_text() == text
    assert "accepted problems" in caplog.text and store.reset.kept_as in caplog.text
    caplog.clear()
    assert store.change("front", "noisy", accept=True)  # a new list starts
    assert json.loads((tmp_path / ACCEPTED_FILE).read_text())["cameras"] == {
        "front": {"noisy": store.since("front")["noisy"]}
    }


def test_a_list_that_cannot_be_read_is_left_alone_and_not_overwritten(tmp_path: Path) -> None:
    """Not broken but unreadable (here a directory where the file should be; permissions or
    a failing disk alike): it may be fine, so it is neither moved nor replaced."""
    path = tmp_path / ACCEPTED_FILE
    path.mkdir()
    store = AcceptedProblems(tmp_path)
    assert store.of("front") == frozenset() and store.reset is None
    with pytest.raises(AcceptedProblemsError, match="cannot read"):
        store.change("front", "too_dark", accept=True)
    assert path.is_dir() and list(tmp_path.iterdir()) == [path]
