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


def test_the_kernels_estimate_is_read_with_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctypes

    from agent.clock import _Timex, clock_estimate

    assert ctypes.sizeof(_Timex) == 208  # struct timex on 64-bit Linux
    monkeypatch.delenv(TEST_CLOCK_ENV, raising=False)
    estimate = clock_estimate()
    assert estimate.state == clock_state()
    # Read from the kernel here (adjtimex works unprivileged): numbers, within its bounds.
    assert estimate.offset_s is not None and abs(estimate.offset_s) < 16
    assert estimate.estimated_error_s is not None and 0 <= estimate.estimated_error_s <= 16
    assert estimate.max_error_s is None or 0 <= estimate.max_error_s < 16
    said = estimate.as_manifest()
    assert said["synced"] == estimate.state.synced and said["read_by"] == "adjtimex"
    # The test clock file decides the state; the kernel's numbers are still its own.
    status = tmp_path / "clock"
    status.write_text("synced")
    monkeypatch.setenv(TEST_CLOCK_ENV, str(status))
    assert clock_estimate().state == ClockState(True, TEST_CLOCK_SOURCE)
