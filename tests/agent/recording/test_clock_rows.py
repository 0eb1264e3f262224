"""Camera clock readings in the footage index: the span a package needs, and pruning them
with the footage they describe. A real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.recording.index import ClockRow, SegmentIndex

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def reading(camera: str, minutes: int, offset_s: float = 90.0) -> ClockRow:
    return ClockRow(camera, T0 + minutes * MINUTE, offset_s, 0.5, "onvif")


def test_the_readings_of_a_window_run_from_the_last_before_to_the_first_after(
    tmp_path: Path,
) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    for minutes in (-30, -20, -10, 5, 12, 20, 30):
        index.add_clock_reading(reading("front", minutes, 90.0 + minutes / 100))
    index.add_clock_reading(reading("back", 0, 3.0))
    found = index.clock_readings("front", T0, T0 + 10 * MINUTE)
    assert [r.at for r in found] == [T0 - 10 * MINUTE, T0 + 5 * MINUTE, T0 + 12 * MINUTE]
    assert found[0] == ClockRow("front", T0 - 10 * MINUTE, 89.9, 0.5, "onvif")
    assert index.clock_readings("side", T0, T0 + MINUTE) == []
    # Nothing before the window, nothing after it: only what there is.
    assert [r.at for r in index.clock_readings("back", T0 - MINUTE, T0 + MINUTE)] == [T0]


def test_readings_are_pruned_with_the_footage_keeping_the_last_before_it(
    tmp_path: Path,
) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    path = tmp_path / "front-1.ts"
    path.write_bytes(b"x")
    segment = index.begin("front", path, T0)
    index.close(segment, T0 + MINUTE, 1, "0" * 64)
    for minutes in (-30, -20, -10, 5):
        index.add_clock_reading(reading("front", minutes))
    for minutes in (-30, -20):
        index.add_clock_reading(reading("gone", minutes))  # a camera without footage now
    assert index.prune_clock_readings() == 3
    assert [r.at for r in index.clock_readings("front", T0 - 60 * MINUTE, T0 + 60 * MINUTE)] == [
        T0 - 10 * MINUTE,
        T0 + 5 * MINUTE,
    ]
    assert [r.at for r in index.clock_readings("gone", T0 - 60 * MINUTE, T0)] == [T0 - 20 * MINUTE]
    assert index.prune_clock_readings() == 0
