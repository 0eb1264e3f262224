"""Retention arithmetic: which footage goes, in what order, and what never does."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.clock_step import BootTime
from agent.recording.index import Hold, Segment, SegmentIndex, sha256_file
from agent.recording.retention import (
    RETENTION_CAP_S,
    effective_retention_days,
    old_enough,
    plan_pruning,
    prune,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
DAY = 86400.0
BIG = 10**15  # a budget or free space that never forces pruning


def seg(
    seg_id: int,
    age_days: float,
    size: int = 100,
    state: str = "closed",
    camera: str = "front",
    length_s: float = 60.0,
) -> Segment:
    """A segment that started `age_days` before NOW and lasted `length_s`."""
    start = NOW - timedelta(days=age_days)
    end = None if state == "writing" else start + timedelta(seconds=length_s)
    sha = None if state == "writing" else "00" * 32
    return Segment(seg_id, camera, Path(f"/f/{seg_id}.ts"), start, end, size, sha, state)


def hold(age_from: float, age_to: float, camera: str = "front", until_days: float = 10.0) -> Hold:
    """A hold over [NOW - age_from days, NOW - age_to days] lasting until NOW + until_days."""
    return Hold(
        1,
        camera,
        NOW - timedelta(days=age_from),
        NOW - timedelta(days=age_to),
        NOW + timedelta(days=until_days),
        "request r-1",
    )


# Five one-minute segments of 100 bytes, 10, 8, 6, 4 and 2 days old (ids 1..5).
AGES = [seg(i + 1, age) for i, age in enumerate([10, 8, 6, 4, 2])]

CASES: list[tuple[str, list[Segment], list[Hold], dict[str, float], list[int]]] = [
    # name, segments, holds, settings, ids pruned (in order)
    ("nothing to do", AGES, [], {"retention_s": 30 * DAY}, []),
    ("empty index", [], [], {"retention_s": 7 * DAY}, []),
    ("age: older than 7 days", AGES, [], {"retention_s": 7 * DAY}, [1, 2]),
    ("age: older than 5 days", AGES, [], {"retention_s": 5 * DAY}, [1, 2, 3]),
    ("age: zero keeps nothing finished", AGES, [], {"retention_s": 0}, [1, 2, 3, 4, 5]),
    # The segment ends 60 s after its start: 7 days + 30 s old is not yet past 7 days.
    ("age: judged by the end", [seg(1, 7 + 30 / DAY)], [], {"retention_s": 7 * DAY}, []),
    ("age: just past by the end", [seg(1, 7 + 61 / DAY)], [], {"retention_s": 7 * DAY}, [1]),
    ("cap: 60 days asked, 28 kept", [seg(1, 29), seg(2, 27)], [], {"retention_s": 60 * DAY}, [1]),
    ("cap: infinite asked, 28 kept", [seg(1, 29)], [], {"retention_s": float("inf")}, [1]),
    ("budget: 500 bytes, 300 allowed", AGES, [], {"max_bytes": 300}, [1, 2]),
    ("budget: exactly met", AGES, [], {"max_bytes": 500}, []),
    ("budget: zero", AGES, [], {"max_bytes": 0}, [1, 2, 3, 4, 5]),
    ("budget after age", AGES, [], {"retention_s": 7 * DAY, "max_bytes": 200}, [1, 2, 3]),
    ("floor: 150 short", AGES, [], {"free_bytes": 50, "min_free_bytes": 200}, [1, 2]),
    ("floor: exactly met", AGES, [], {"free_bytes": 200, "min_free_bytes": 200}, []),
    (
        "floor: unreachable, all go",
        AGES,
        [],
        {"free_bytes": 0, "min_free_bytes": 10**6},
        [1, 2, 3, 4, 5],
    ),
    (
        "budget and floor: the stricter wins",
        AGES,
        [],
        {"max_bytes": 400, "free_bytes": 0, "min_free_bytes": 250},
        [1, 2, 3],
    ),
    (
        "held footage counts against the budget but stays",
        AGES,
        [hold(10.5, 9)],
        {"max_bytes": 300},
        [2, 3],
    ),
    ("held: never pruned by age", AGES, [hold(10.5, 7)], {"retention_s": 0}, [3, 4, 5]),
    ("held: beyond the 28-day cap too", [seg(1, 40)], [hold(41, 39)], {"retention_s": 7 * DAY}, []),
    (
        "held: a hold touching the segment's end keeps it",
        [seg(1, 10)],
        [hold(10 - 60 / DAY, 9)],
        {"retention_s": 0},
        [],
    ),
    (
        "held: a hold ending just before the segment does not",
        [seg(1, 10)],
        [hold(11, 10 + 1 / DAY)],
        {"retention_s": 0},
        [1],
    ),
    (
        "held: another camera's hold",
        AGES,
        [hold(11, 0, camera="back")],
        {"retention_s": 0},
        [1, 2, 3, 4, 5],
    ),
    (
        "held: an expired hold",
        AGES,
        [hold(11, 0, until_days=0)],
        {"retention_s": 0},
        [1, 2, 3, 4, 5],
    ),
    (
        "held: one that just expired",
        AGES,
        [hold(11, 0, until_days=-1)],
        {"max_bytes": 0},
        [1, 2, 3, 4, 5],
    ),
    (
        "writing: never pruned, but counts against the budget",
        [seg(1, 40, state="writing"), seg(2, 1), seg(3, 0.5)],
        [],
        {"retention_s": 0, "max_bytes": 100},
        [2, 3],
    ),
    (
        "states: partial, missing and altered go by age like closed",
        [
            seg(1, 9, state="partial"),
            seg(2, 9, state="missing", size=0),
            seg(3, 9, state="altered"),
        ],
        [],
        {"retention_s": 7 * DAY},
        [1, 2, 3],
    ),
    (
        "oldest first across cameras",
        [
            seg(1, 3, camera="a"),
            seg(2, 5, camera="b"),
            seg(3, 4, camera="a"),
            seg(4, 1, camera="b"),
        ],
        [],
        {"max_bytes": 200},
        [2, 3],
    ),
    (
        "a large old segment frees the budget alone",
        [seg(1, 5, size=1000), seg(2, 4), seg(3, 3)],
        [],
        {"max_bytes": 300},
        [1],
    ),
    (
        "same start: by id",
        [seg(2, 5), seg(1, 5), seg(3, 5)],
        [],
        {"max_bytes": 100},
        [1, 2],
    ),
]


@pytest.mark.parametrize(
    ("segments", "holds", "settings", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan_pruning(
    segments: list[Segment], holds: list[Hold], settings: dict[str, float], expected: list[int]
) -> None:
    options = {
        "retention_s": float(settings.get("retention_s", RETENTION_CAP_S)),
        "max_bytes": int(settings.get("max_bytes", BIG)),
        "free_bytes": int(settings.get("free_bytes", BIG)),
        "min_free_bytes": int(settings.get("min_free_bytes", 0)),
    }
    plan = plan_pruning(segments, holds, NOW, **options)  # type: ignore[arg-type]
    assert [s.id for s in plan] == expected


STATES = st.sampled_from(["writing", "closed", "partial", "missing", "altered"])


@st.composite
def segment_lists(draw: st.DrawFn) -> list[Segment]:
    specs = draw(
        st.lists(
            st.tuples(
                st.floats(0, 60),
                st.integers(0, 10**6),
                STATES,
                st.sampled_from(["a", "b"]),
                st.floats(0, 600),
            ),
            max_size=30,
        )
    )
    return [
        seg(i, age, size, state, cam, length)
        for i, (age, size, state, cam, length) in enumerate(specs)
    ]


@st.composite
def hold_lists(draw: st.DrawFn) -> list[Hold]:
    holds = []
    for age_from, span, cam, until in draw(
        st.lists(
            st.tuples(
                st.floats(0, 60), st.floats(0, 5), st.sampled_from(["a", "b"]), st.floats(-5, 30)
            ),
            max_size=4,
        )
    ):
        holds.append(hold(age_from, age_from - span, cam, until))
    return holds


@given(
    segments=segment_lists(),
    holds=hold_lists(),
    retention_days=st.floats(0, 100),
    max_bytes=st.integers(0, 10**7),
    free_bytes=st.integers(0, 10**7),
    min_free_bytes=st.integers(0, 10**7),
)
def test_plan_pruning_never_takes_held_or_writing_footage_and_goes_oldest_first(
    segments: list[Segment],
    holds: list[Hold],
    retention_days: float,
    max_bytes: int,
    free_bytes: int,
    min_free_bytes: int,
) -> None:
    plan = plan_pruning(
        segments,
        holds,
        NOW,
        retention_s=retention_days * DAY,
        max_bytes=max_bytes,
        free_bytes=free_bytes,
        min_free_bytes=min_free_bytes,
    )
    for s in plan:
        assert s.state != "writing"
        end = s.end or s.start
        for h in holds:
            if h.camera == s.camera and h.until > NOW:
                assert s.end is None or end < h.start or s.start > h.end, (s, h)
    assert [(s.start, s.id) for s in plan] == sorted((s.start, s.id) for s in plan)
    assert len({s.id for s in plan}) == len(plan)
    # Past the (capped) retention and unheld: always in the plan.
    cutoff = NOW - timedelta(days=min(retention_days, 28))
    planned = {s.id for s in plan}
    held = {
        s.id
        for s in segments
        for h in holds
        if h.until > NOW
        and h.camera == s.camera
        and s.start <= h.end
        and (s.end or s.start) >= h.start
    }
    for s in segments:
        if s.state != "writing" and s.id not in held and (s.end or s.start) < cutoff:
            assert s.id in planned
    # Pruning stops as soon as both limits hold: the last one taken was needed.
    if plan:
        kept = sum(s.bytes for s in segments) - sum(s.bytes for s in plan)
        last = plan[-1]
        if (last.end or last.start) >= cutoff:
            before_last_kept = kept + last.bytes
            before_last_free = free_bytes + sum(s.bytes for s in plan) - last.bytes
            assert before_last_kept > max_bytes or before_last_free < min_free_bytes


EFFECTIVE = [
    ("none", [], 0.0),
    ("one", [seg(1, 3.5)], 3.5),
    ("oldest of several", [seg(1, 2), seg(2, 6), seg(3, 1)], 6.0),
    ("partial counts", [seg(1, 4, state="partial")], 4.0),
    (
        "missing, altered and writing do not",
        [
            seg(1, 9, state="missing"),
            seg(2, 8, state="altered"),
            seg(3, 7, state="writing"),
            seg(4, 1),
        ],
        1.0,
    ),
    ("from the future clamps to zero", [seg(1, -1)], 0.0),
]


@pytest.mark.parametrize(
    ("segments", "days"), [c[1:] for c in EFFECTIVE], ids=[c[0] for c in EFFECTIVE]
)
def test_effective_retention_days(segments: list[Segment], days: float) -> None:
    assert effective_retention_days(segments, NOW) == pytest.approx(days)


def test_prune_deletes_files_then_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    start = NOW - timedelta(days=10)
    ids = []
    for i, data in enumerate([b"a" * 10, b"b" * 20, b"c" * 30]):
        path = tmp_path / f"{i}.ts"
        path.write_bytes(data)
        seg_id = index.begin("front", path, start + timedelta(minutes=i))
        index.close(seg_id, start + timedelta(minutes=i + 1), *sha256_file(path))
        ids.append(seg_id)
    (tmp_path / "1.ts").unlink()  # already gone: frees nothing, row still removed
    plan = plan_pruning(
        index.segments(),
        index.holds(NOW),
        NOW,
        retention_s=7 * DAY,
        max_bytes=BIG,
        free_bytes=BIG,
        min_free_bytes=0,
    )
    assert [s.id for s in plan[:2]] == ids[:2]
    with caplog.at_level(logging.INFO, logger="agent.recording.retention"):
        freed = prune(index, plan[:2])
    assert freed == 10
    assert [s.id for s in index.segments()] == [ids[2]]
    assert not (tmp_path / "0.ts").exists() and (tmp_path / "2.ts").exists()
    assert len([r for r in caplog.records if "pruned" in r.getMessage()]) == 2
    assert prune(index, []) == 0
    index.close_db()


def test_prune_keeps_the_row_when_the_file_cannot_be_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    # A directory where the file should be: unlink fails the way a permission error would.
    path = tmp_path / "stuck.ts"
    path.mkdir()
    seg_id = index.begin("front", path, NOW - timedelta(days=30))
    index.close(seg_id, NOW - timedelta(days=30) + timedelta(minutes=1), 5, "00" * 32)
    with caplog.at_level(logging.WARNING, logger="agent.recording.retention"):
        assert prune(index, index.segments()) == 0
    assert [s.id for s in index.segments()] == [seg_id]
    assert "cannot prune" in caplog.text
    index.close_db()


def test_the_owners_files_are_never_planned_and_never_count_against_the_budget() -> None:
    def external(seg_id: int, age_days: float, size: int) -> Segment:
        return replace(seg(seg_id, age_days, size), origin="external")

    # A year old and a terabyte: neither age, budget nor free space takes them.
    owners = [external(1, 365, 10**12), external(2, 40, 10**12)]
    ours = [seg(3, 2, 100), seg(4, 1, 100)]
    plan = plan_pruning(
        [*owners, *ours],
        [],
        NOW,
        retention_s=7 * DAY,
        max_bytes=150,
        free_bytes=0,
        min_free_bytes=50,
    )
    assert [s.id for s in plan] == [3]


def test_prune_refuses_a_file_of_the_owners_recorder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    path = tmp_path / "nvr" / "20240501_120000.mp4"
    path.parent.mkdir()
    path.write_bytes(b"the owner's footage")
    size, digest = sha256_file(path)
    seg_id = index.add_external("front", path, NOW, NOW + timedelta(minutes=1), size, digest, 1)
    [segment] = index.segments()

    with caplog.at_level(logging.ERROR):
        assert prune(index, [segment]) == 0

    assert path.read_bytes() == b"the owner's footage"
    assert [s.id for s in index.segments()] == [seg_id]
    assert "refusing to prune" in caplog.text and str(path) in caplog.text
    index.close_db()


HOUR = 3600.0


def booted(age_days: float, boot_id: str, boot_end_s: float) -> Segment:
    """A one-minute segment `age_days` old by the wall clock, ended at `boot_end_s` of a boot."""
    return replace(seg(1, age_days), boot_id=boot_id, boot_end_us=round(boot_end_s * 1e6))


AGE_CASES: list[tuple[str, Segment, float, bool, dict[str, int], bool]] = [
    # name, segment, seconds this boot ("this-boot") is up, clock synchronised now,
    # boots' last boot times (us), pruned (retention 1 h)
    ("no boot time: the wall clock's age", seg(1, 2.0), 5000, False, {}, True),
    ("no boot time, young by the wall", seg(1, 0.01), 5000, True, {}, False),
    # The wall clock was stepped a day ahead: 2 days by the wall, 20 minutes by the boot.
    (
        "this boot, old by the wall, young by elapsed",
        booted(2, "this-boot", 3800),
        5000,
        True,
        {},
        False,
    ),
    # Stepped back: in the future by the wall, 80 minutes by the boot.
    (
        "this boot, future by the wall, old by elapsed",
        booted(-1, "this-boot", 200),
        5000,
        True,
        {},
        True,
    ),
    (
        "earlier boot, synchronised: the wall decides",
        booted(2, "old-boot", 100),
        60,
        True,
        {},
        True,
    ),
    ("earlier boot, synchronised, young", booted(0.01, "old-boot", 100), 60, True, {}, False),
    # Not synchronised: the wall's 2 days count only as far as the boots prove.
    (
        "earlier boot, unsynchronised, proven young",
        booted(2, "old-boot", 100),
        60,
        False,
        {"old-boot": round(1000 * 1e6)},  # 900 s of that boot after it + 60 s of this one
        False,
    ),
    (
        "earlier boot, unsynchronised, proven old",
        booted(2, "old-boot", 100),
        1000,
        False,
        {"old-boot": round(3000 * 1e6)},  # 2900 s of that boot after it + 1000 s of this
        True,
    ),
]


@pytest.mark.parametrize(
    ("segment", "up_s", "synced", "boot_ends", "pruned"),
    [case[1:] for case in AGE_CASES],
    ids=[case[0] for case in AGE_CASES],
)
def test_age_is_the_agents_own_elapsed_time_where_known(
    segment: Segment, up_s: float, synced: bool, boot_ends: dict[str, int], pruned: bool
) -> None:
    boot = BootTime("this-boot", up_s)
    assert old_enough(segment, NOW, HOUR, boot, synced, boot_ends) is pruned
    # The same through the planner, which learns each boot's last time from its segments.
    others = [
        replace(seg(9, 0.0), id=9, boot_id=boot_id, boot_end_us=end)
        for boot_id, end in boot_ends.items()
    ]
    plan = plan_pruning(
        [segment, *others],
        [],
        NOW,
        retention_s=HOUR,
        max_bytes=BIG,
        free_bytes=BIG,
        min_free_bytes=0,
        boot=boot,
        synced=synced,
    )
    assert [s.id for s in plan] == ([1] if pruned else [])
