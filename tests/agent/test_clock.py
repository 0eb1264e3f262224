"""The clock state tests can control, and what it reports then."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.clock import TEST_CLOCK_ENV, TEST_CLOCK_SOURCE, ClockState, clock_state


def test_the_test_clock_file_decides_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = tmp_path / "clock"
    monkeypatch.setenv(TEST_CLOCK_ENV, str(status))
    assert clock_state() == ClockState(False, TEST_CLOCK_SOURCE)  # no file: not synced
    status.write_text("synced\n")
    assert clock_state() == ClockState(True, TEST_CLOCK_SOURCE)
    for other in ("unsynced", "SYNCED yes", ""):
        status.write_text(other)
        assert clock_state() == ClockState(False, TEST_CLOCK_SOURCE)


def test_without_it_the_kernel_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TEST_CLOCK_ENV, raising=False)
    assert clock_state().source != TEST_CLOCK_SOURCE
