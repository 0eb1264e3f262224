"""The footage index on real SQLite files: what recording, pruning and export will read back."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.recording.index import (
    SCHEMA_VERSION,
    FootageIndexError,
    FootageSummary,
    Gap,
    HashCancelled,
    SegmentIndex,
    sha256_file,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    idx = SegmentIndex(tmp_path / "footage.sqlite")
    yield idx
    idx.close_db()


def _record(
    index: SegmentIndex,
    tmp_path: Path,
    camera: str,
    start: datetime,
    data: bytes,
    length: timedelta = MIN,
) -> int:
    path = tmp_path / camera / f"{start:%H%M%S%f}.ts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    seg_id = index.begin(camera, path, start)
    size, digest = sha256_file(path)
    index.close(seg_id, start + length, size, digest)
    return seg_id


def test_sha256_file_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * 9000  # > 2 MiB: several chunks, one short
    path = tmp_path / "f"
    path.write_bytes(data)
    assert sha256_file(path) == (len(data), hashlib.sha256(data).hexdigest())


def test_round_trip_keeps_every_field_and_exact_utc_times(
    index: SegmentIndex, tmp_path: Path
) -> None:
    path = tmp_path / "a.ts"
    path.write_bytes(b"x" * 10)
    # A non-UTC offset comes back as the same instant, in UTC.
    start = datetime(2024, 5, 1, 14, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2)))
    seg_id = index.begin("front", path, start)
    [writing] = index.segments()
    assert (writing.id, writing.state, writing.end, writing.sha256) == (
        seg_id,
        "writing",
        None,
        None,
    )
    assert writing.start == start and writing.start.tzinfo == UTC
    assert writing.start.utcoffset() == timedelta(0)

    size, digest = sha256_file(path)
    end = start + timedelta(seconds=60, microseconds=1)
    index.close(seg_id, end, size, digest)
    [seg] = index.segments("front")
    assert seg.path == path and seg.camera == "front"
    assert seg.start == start and seg.end == end and seg.end.tzinfo == UTC
    assert (seg.bytes, seg.sha256, seg.state) == (10, digest, "closed")


def test_partial_close_and_double_close(index: SegmentIndex, tmp_path: Path) -> None:
    seg_id = index.begin("front", tmp_path / "a.ts", T0)
    index.close(seg_id, T0 + MIN, 5, "ab" * 32, partial=True)
    assert index.segments()[0].state == "partial"
    with pytest.raises(FootageIndexError, match="not writing"):
        index.close(seg_id, T0 + MIN, 5, "ab" * 32)


def test_naive_datetimes_are_refused(index: SegmentIndex, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        index.begin("front", tmp_path / "a.ts", datetime(2024, 5, 1, 12))


def test_window_queries_return_overlapping_segments_by_start(
    index: SegmentIndex, tmp_path: Path
) -> None:
    # front: [0,1) [1,2) [2,3) minutes; back: [0.5,1.5); front also one still writing at 3.
    ids = [_record(index, tmp_path, "front", T0 + i * MIN, b"f%d" % i) for i in range(3)]
    back = _record(index, tmp_path, "back", T0 + MIN / 2, b"b")
    writing = index.begin("front", tmp_path / "w.ts", T0 + 3 * MIN)

    def found(camera: str | None, start: datetime | None, end: datetime | None) -> list[int]:
        return [s.id for s in index.segments(camera, start, end)]

    assert found(None, None, None) == [ids[0], back, ids[1], ids[2], writing]
    assert found("front", None, None) == [*ids, writing]
    assert found("back", None, None) == [back]
    assert found("nobody", None, None) == []
    # Inside one segment.
    assert found("front", T0 + MIN / 4, T0 + MIN / 2) == [ids[0]]
    # Touching edges do not overlap: [1,2) is exactly one segment.
    assert found("front", T0 + MIN, T0 + 2 * MIN) == [ids[1]]
    # Straddling a boundary.
    assert found("front", T0 + 1.5 * MIN, T0 + 2.5 * MIN) == [ids[1], ids[2]]
    # The open-ended segment being written reaches any later window.
    assert found("front", T0 + 10 * MIN, T0 + 11 * MIN) == [writing]
    assert found(None, T0 + MIN, None) == [back, ids[1], ids[2], writing]
    assert found(None, None, T0 + MIN) == [ids[0], back]
    assert found(None, T0 - 5 * MIN, T0 - MIN) == []


def test_gaps_are_rows_with_reasons(index: SegmentIndex) -> None:
    index.add_gap("front", T0, T0 + timedelta(seconds=30), "camera unreachable")
    index.add_gap("back", T0 + MIN, T0 + 2 * MIN, "agent stopped")
    assert index.gaps("front") == [
        Gap("front", T0, T0 + timedelta(seconds=30), "camera unreachable")
    ]
    assert [g.camera for g in index.gaps()] == ["front", "back"]
    assert [g.camera for g in index.gaps(None, T0 + timedelta(seconds=31), None)] == ["back"]
    assert index.gaps(None, T0 + 2 * MIN, None) == []
    with pytest.raises(ValueError):
        index.add_gap("front", T0, T0 - MIN, "backwards")


def test_summary_counts_watchable_footage_and_the_gaps_inside_it(
    index: SegmentIndex, tmp_path: Path
) -> None:
    assert index.summary("front") == FootageSummary(None, None, 0, 0.0, 0)
    assert index.summary("front").as_payload(0.0) == {
        "oldest": None,
        "newest": None,
        "gaps": {"count": 0, "seconds": 0.0},
        "bytes": 0,
        "retention_days_effective": 0.0,
    }
    _record(index, tmp_path, "front", T0, b"a" * 100)
    _record(index, tmp_path, "front", T0 + 2 * MIN, b"b" * 50)
    missing = _record(index, tmp_path, "front", T0 + 3 * MIN, b"c" * 999)
    index.mark(missing, "missing")
    index.begin("front", tmp_path / "w.ts", T0 + 4 * MIN)  # writing: not counted yet
    _record(index, tmp_path, "back", T0 - MIN, b"other camera")
    index.add_gap("front", T0 - 10 * MIN, T0 - 5 * MIN, "before the oldest kept footage")
    index.add_gap("front", T0 + MIN, T0 + 2 * MIN, "camera unreachable")
    # Clipped at the newest footage: only 30 s of this one lies inside the span.
    index.add_gap("front", T0 + 2.5 * MIN, T0 + 10 * MIN, "agent stopped")

    summary = index.summary("front")
    assert summary == FootageSummary(T0, T0 + 3 * MIN, 2, 90.0, 150)
    assert summary.as_payload(1.23456) == {
        "oldest": "2024-05-01T12:00:00.123Z",
        "newest": "2024-05-01T12:03:00.123Z",
        "gaps": {"count": 2, "seconds": 90.0},
        "bytes": 150,
        "retention_days_effective": 1.235,
    }


def test_newest_is_where_the_last_recorded_footage_ends_never_ahead_of_now(
    index: SegmentIndex, tmp_path: Path
) -> None:
    # Recorded until the wall clock was stepped back by a day, then recorded on.
    _record(index, tmp_path, "front", T0 + timedelta(days=1), b"before the step")
    _record(index, tmp_path, "front", T0, b"after the step")
    assert index.summary("front").newest == T0 + MIN
    # Stepped back while the last segment was written: it ends ahead of the clock.
    _record(index, tmp_path, "back", T0 + 10 * MIN, b"a")
    assert index.summary("back", now=T0 + 5 * MIN).newest == T0 + 5 * MIN
    # The owner's recorder's files count by their times, whatever order a scan found them.
    index.add_external("back", tmp_path / "nvr.mp4", T0 + 20 * MIN, T0 + 21 * MIN, 1, "0" * 64, 1)
    assert index.summary("back").newest == T0 + 21 * MIN


def test_holds_until_expired_or_released(index: SegmentIndex) -> None:
    first = index.hold("front", T0, T0 + MIN, T0 + timedelta(days=30), "request r-1")
    second = index.hold("back", T0, T0 + MIN, T0 + timedelta(days=1), "request r-2")
    assert [h.id for h in index.holds(T0)] == [first, second]
    [h] = index.holds(T0 + timedelta(days=1))  # until is exclusive: expired at that instant
    assert (h.id, h.camera, h.start, h.end, h.until, h.reason) == (
        first,
        "front",
        T0,
        T0 + MIN,
        T0 + timedelta(days=30),
        "request r-1",
    )
    index.release(first)
    assert [h.id for h in index.holds(T0)] == [second]
    with pytest.raises(FootageIndexError, match=f"no hold {first}"):
        index.release(first)


def test_verify_detects_a_changed_byte_and_a_missing_file(
    index: SegmentIndex, tmp_path: Path
) -> None:
    seg_id = _record(index, tmp_path, "front", T0, b"original footage")
    [seg] = index.segments()
    assert index.verify(seg_id, sha256_file) == "ok"
    assert index.segments()[0].state == "closed"

    data = bytearray(seg.path.read_bytes())
    data[3] ^= 1
    seg.path.write_bytes(bytes(data))
    assert index.verify(seg_id, sha256_file) == "altered"
    assert index.segments()[0].state == "altered"

    # The original bytes back (say from the owner's copy): the seal holds again.
    seg.path.write_bytes(b"original footage")
    assert index.verify(seg_id, sha256_file) == "ok"
    assert index.segments()[0].state == "closed"

    seg.path.unlink()
    assert index.verify(seg_id, sha256_file) == "missing"
    assert index.segments()[0].state == "missing"


def test_verify_of_a_partial_segment_keeps_it_partial(index: SegmentIndex, tmp_path: Path) -> None:
    path = tmp_path / "p.ts"
    path.write_bytes(b"cut short")
    seg_id = index.begin("front", path, T0)
    index.close(seg_id, T0 + MIN, *sha256_file(path), partial=True)
    assert index.verify(seg_id, sha256_file) == "ok"
    assert index.segments()[0].state == "partial"


def test_verify_refuses_a_segment_still_being_written(index: SegmentIndex, tmp_path: Path) -> None:
    seg_id = index.begin("front", tmp_path / "w.ts", T0)
    with pytest.raises(FootageIndexError, match="no hash"):
        index.verify(seg_id, sha256_file)
    with pytest.raises(FootageIndexError, match="no segment 999"):
        index.verify(999, sha256_file)


def test_mark_and_remove(index: SegmentIndex, tmp_path: Path) -> None:
    seg_id = index.begin("front", tmp_path / "w.ts", T0)
    index.mark(seg_id, "missing")
    [seg] = index.segments()
    assert (seg.state, seg.end) == ("missing", T0)  # no longer open-ended
    with pytest.raises(ValueError, match="unknown segment state"):
        index.mark(seg_id, "lost")
    index.remove(seg_id)
    assert index.segments() == []
    index.remove(seg_id)  # already gone: nothing to do


def test_recover_after_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "footage.sqlite"
    crashed = SegmentIndex(db)
    done = _record(crashed, tmp_path, "front", T0, b"closed before the crash")
    present, empty, absent = (tmp_path / n for n in ("present.ts", "empty.ts", "absent.ts"))
    present.write_bytes(b"half a segment")
    empty.write_bytes(b"")
    ids = [crashed.begin("front", p, T0 + (i + 1) * MIN) for i, p in enumerate((present, empty))]
    ids.append(crashed.begin("back", absent, T0))
    # kill -9: the connection is never closed; the next process opens the same file.
    restarted = SegmentIndex(db)
    end_of_present = T0 + MIN + timedelta(seconds=42)
    recovered = restarted.recover(sha256_file, lambda p: end_of_present if p == present else None)

    assert [s.id for s in recovered] == ids
    by_id = {s.id: s for s in restarted.segments()}
    p, e, a = (by_id[i] for i in ids)
    assert (p.state, p.end, p.bytes, p.sha256) == (
        "partial",
        end_of_present,
        *sha256_file(present),
    )
    assert (e.state, e.end, e.bytes) == ("missing", e.start, 0)
    assert not empty.exists()
    assert (a.state, a.end) == ("missing", a.start)
    assert by_id[done].state == "closed"
    assert recovered == [p, e, a]
    assert restarted.verify(p.id, sha256_file) == "ok"
    # Nothing left to recover the second time.
    assert restarted.recover(sha256_file, lambda p: None) == []
    restarted.close_db()
    crashed.close_db()


def test_recover_without_an_end_uses_the_start(index: SegmentIndex, tmp_path: Path) -> None:
    path = tmp_path / "unreadable-end.ts"
    path.write_bytes(b"data")
    seg_id = index.begin("front", path, T0)
    [seg] = index.recover(sha256_file, lambda p: None)
    assert (seg.id, seg.state, seg.end) == (seg_id, "partial", T0)


def test_a_second_index_on_the_same_file_sees_the_data(tmp_path: Path) -> None:
    db = tmp_path / "footage.sqlite"
    writer = SegmentIndex(db)
    reader = SegmentIndex(db)
    seg_id = _record(writer, tmp_path, "front", T0, b"seen by the CLI")
    hold = writer.hold("front", T0, T0 + MIN, T0 + timedelta(days=2), "request r-1")
    assert [s.id for s in reader.segments()] == [seg_id]
    assert [h.id for h in reader.holds(T0)] == [hold]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    reader.close_db()
    writer.close_db()
    # Reopened after a clean close: same data, schema not recreated.
    again = SegmentIndex(db)
    assert [s.id for s in again.segments()] == [seg_id]
    again.close_db()


def test_threads_share_one_index(index: SegmentIndex, tmp_path: Path) -> None:
    def record(camera: str) -> None:
        for i in range(25):
            seg_id = index.begin(camera, tmp_path / f"{camera}{i}.ts", T0 + i * MIN)
            index.close(seg_id, T0 + (i + 1) * MIN, i, "00" * 32)

    threads = [threading.Thread(target=record, args=(f"cam{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    segments = index.segments()
    assert len(segments) == 100 and {s.state for s in segments} == {"closed"}


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a database, it is a note the owner left here\n" * 20,
        b"SQLite format 3\x00" + b"\xff" * 2000,
    ],
    ids=["text", "damaged-header"],
)
def test_a_corrupt_file_is_reported_by_name_and_left_alone(tmp_path: Path, content: bytes) -> None:
    db = tmp_path / "footage.sqlite"
    db.write_bytes(content)
    with pytest.raises(FootageIndexError) as caught:
        SegmentIndex(db)
    assert str(db) in str(caught.value)
    assert db.read_bytes() == content


def test_an_index_from_a_newer_agent_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "footage.sqlite"
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(FootageIndexError, match="newer") as caught:
        SegmentIndex(db)
    assert str(db) in str(caught.value)


# What version 1 of the agent created; an index written by it must open and keep its rows.
_V1_SCHEMA = """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, path TEXT NOT NULL,
    start_us INTEGER NOT NULL, end_us INTEGER, bytes INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('writing', 'closed', 'partial', 'missing', 'altered')),
    sealed_as TEXT
);
CREATE INDEX segments_camera_start ON segments (camera, start_us);
CREATE INDEX segments_state ON segments (state);
CREATE TABLE gaps (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX gaps_camera_start ON gaps (camera, start_us);
CREATE TABLE holds (
    id INTEGER PRIMARY KEY, camera TEXT NOT NULL, start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL, until_us INTEGER NOT NULL, reason TEXT NOT NULL
);
PRAGMA user_version = 1;
"""


def test_a_version_1_index_is_migrated_and_its_segments_are_the_agents_own(
    tmp_path: Path,
) -> None:
    db = tmp_path / "footage.sqlite"
    start_us = int(T0.timestamp() * 1_000_000)
    with sqlite3.connect(db) as raw:
        raw.executescript(_V1_SCHEMA)
        raw.execute(
            "INSERT INTO segments (camera, path, start_us, end_us, bytes, sha256, state,"
            " sealed_as) VALUES ('front', '/f/a.ts', ?, ?, 10, ?, 'closed', 'closed')",
            (start_us, start_us + 60_000_000, "ab" * 32),
        )
    raw.close()

    index = SegmentIndex(db)
    [seg] = index.segments()
    assert (seg.camera, seg.start, seg.end, seg.bytes) == ("front", T0, T0 + MIN, 10)
    assert (seg.origin, seg.mtime_ns) == ("recorded", None)
    assert index.segments(origin="external") == []
    index.close_db()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()
    SegmentIndex(db).close_db()  # opening again migrates nothing


def test_external_files_are_indexed_once_and_recover_leaves_them_alone(
    index: SegmentIndex, tmp_path: Path
) -> None:
    path = tmp_path / "nvr" / "20240501_120000.mp4"
    path.parent.mkdir()
    path.write_bytes(b"the owner's footage")
    size, digest = sha256_file(path)
    first = index.add_external("front", path, T0, T0 + MIN, size, digest, 123)
    # A second process scanning the same folder finds it indexed already.
    assert index.add_external("front", path, T0, T0 + MIN, size, digest, 123) is None
    [seg] = index.segments(origin="external")
    assert (seg.id, seg.state, seg.origin, seg.mtime_ns) == (first, "closed", "external", 123)
    assert index.segments(origin="recorded") == []
    with pytest.raises(ValueError, match="unknown segment origin"):
        index.segments(origin="ours")

    assert index.recover(sha256_file, lambda p: None) == []
    assert path.read_bytes() == b"the owner's footage"


def test_hashing_stops_when_the_agent_stops(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"\0" * (3 * 1024 * 1024))
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashCancelled, match=str(path)):
        sha256_file(path, stop)
    assert sha256_file(path, threading.Event())[0] == 3 * 1024 * 1024
