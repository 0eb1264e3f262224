"""The timestamp repair on its own: what each camera pattern's packets become."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import pytest

from agent.recording.timestamps import PacketCounts, TimestampRepair

FRAME = 9000  # ticks of 1/90000 s: 10 fps
TIME_BASE = Fraction(1, 90000)


def run(stamps: list[tuple[int | None, int | None]]) -> tuple[list[int | None], PacketCounts]:
    """(dts, pts) per packet, one per frame interval of arrival -> the DTS written."""
    counts = PacketCounts()
    repair = TimestampRepair(counts)
    written: list[int | None] = []
    for number, (dts, pts) in enumerate(stamps):
        raw = SimpleNamespace(dts=dts, pts=pts, time_base=TIME_BASE)
        out = repair.fix(raw, arrival=number * 0.1)
        if out is not None:
            assert raw.dts == out and (raw.pts is None or raw.pts >= raw.dts), raw
        written.append(out)
    return written, counts


def same(*frames: int) -> list[tuple[int | None, int | None]]:
    return [(f * FRAME, f * FRAME) for f in frames]


@pytest.mark.parametrize(
    ("stamps", "written", "repaired", "dropped", "jumps"),
    [
        # A good camera: nothing changes, nothing counted.
        (same(0, 1, 2, 3), [0, 9000, 18000, 27000], 0, 0, 0),
        # No timestamps before the first: dropped; afterwards: one tick on.
        (
            [(None, None), *same(1, 2), (None, None), *same(4)],
            [None, 9000, 18000, 18001, 36000],
            1,
            1,
            0,
        ),
        # A keyframe repeating the DTS before it (SPS/PPS out of band).
        (same(0, 1, 1, 3), [0, 9000, 9001, 27000], 1, 0, 0),
        # A keyframe stamped one frame before 0 (SPS/PPS stamped 0), 5 s in.
        (
            same(*range(50), -1, 51),
            [*(f * FRAME for f in range(50)), 441000 + 9000, 459000],
            1,
            0,
            0,
        ),
        # Jitter: two frames back.
        (same(0, 1, 2, 0, 4), [0, 9000, 18000, 18001, 36000], 1, 0, 0),
        # B-frames' first packets: a PTS but no DTS.
        ([(0, 0), (None, 27000), (None, 9000), (9000, 18000)], [0, 27000, 27001, 27002], 3, 0, 0),
        # The clock restarts 10 hours on: the timeline goes on by arrival time.
        (
            [*same(0, 1), *same(4_000_000, 4_000_001, 4_000_002)],
            [0, 9000, 18000, 27000, 36000],
            1,
            0,
            1,
        ),
        # ...or back by 2.5 s, mid-GOP.
        (
            [*same(*range(25)), *same(-1, 0, 1)],
            [*(f * FRAME for f in range(25)), 225000, 234000, 243000],
            1,
            0,
            1,
        ),
        # ...or back to 0 after 5 s.
        (
            [*same(*range(50)), *same(0, 1)],
            [*(f * FRAME for f in range(50)), 450000, 459000],
            1,
            0,
            1,
        ),
    ],
)
def test_each_pattern_is_repaired_and_counted(
    stamps: list[tuple[int | None, int | None]],
    written: list[int | None],
    repaired: int,
    dropped: int,
    jumps: int,
) -> None:
    out, counts = run(stamps)
    assert out == written
    assert (counts.repaired, counts.dropped, counts.clock_jumps) == (repaired, dropped, jumps)


def test_a_real_pause_keeps_its_timestamps() -> None:
    """A camera that sent nothing for 10 s and says so in its timestamps loses nothing."""
    counts = PacketCounts()
    repair = TimestampRepair(counts)
    for arrival, dts in ((0.0, 0), (0.1, FRAME), (10.1, 101 * FRAME)):
        raw = SimpleNamespace(dts=dts, pts=dts, time_base=TIME_BASE)
        assert repair.fix(raw, arrival) == dts
    assert counts == PacketCounts()
