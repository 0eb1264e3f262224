"""The segment chain in the footage index (agent/recording/index/chain.py): links made when
a segment is sealed, through the index's own calls, kept across reopening the file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.recording.index import ChainLink, SegmentIndex, sha256_file
from agent.recording.segments import end_of_segment

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
S = timedelta(seconds=10)


def seal(index: SegmentIndex, folder: Path, start: datetime, end: datetime, data: bytes) -> int:
    path = folder / f"{start:%H%M%S}.ts"
    path.write_bytes(data)
    segment = index.begin("front", path, start)
    index.close(segment, end, len(data), hashlib.sha256(data).hexdigest())
    return segment


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_links_follow_name_gaps_and_survive_reopening(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    first = seal(index, tmp_path, T0, T0 + S, b"one")
    second = seal(index, tmp_path, T0 + S, T0 + 2 * S, b"two")
    # The head outlives the row: pruning the second does not cut the chain.
    index.remove(second)
    index.close_db()
    index = SegmentIndex(tmp_path / "footage.sqlite")  # the agent restarted
    third = seal(index, tmp_path, T0 + 5 * S, T0 + 6 * S, b"three")
    fourth = seal(index, tmp_path, T0 + 6 * S + timedelta(seconds=1), T0 + 7 * S, b"four")
    links = index.chain_links([first, third, fourth, 999])
    assert links[first] == ChainLink("start", None)
    assert links[third] == ChainLink("gap", digest(b"two"), T0 + 2 * S, T0 + 5 * S)
    # One second late: within the tolerance, not a gap.
    assert links[fourth] == ChainLink("follows", digest(b"three"))
    assert links[999] == ChainLink("none", None)


def test_a_segment_cut_off_by_a_crash_is_linked_when_recovered(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    seal(index, tmp_path, T0, T0 + S, b"before")
    cut = tmp_path / "cut.ts"
    cut.write_bytes(b"half a segment")
    segment = index.begin("front", cut, T0 + S)  # the agent dies while writing it
    index.close_db()
    index = SegmentIndex(tmp_path / "footage.sqlite")
    (recovered,) = index.recover(sha256_file, end_of_segment)
    assert recovered.state == "partial"
    assert index.chain_links([segment])[segment] == ChainLink("follows", digest(b"before"))
    after = seal(index, tmp_path, T0 + S + S, T0 + 3 * S, b"after")
    assert index.chain_links([after])[after].prev_sha256 == digest(b"half a segment")


def test_rebuilt_rows_link_nothing(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "footage.sqlite")
    path = tmp_path / "found.ts"
    path.write_bytes(b"found")
    assert index.add_rebuilt("front", path, T0, T0 + S, 5, digest(b"found"))
    (row,) = index.segments("front")
    assert index.chain_links([row.id])[row.id] == ChainLink("rebuilt", None)
    # The first segment recorded after a rebuild starts the chain again.
    later = seal(index, tmp_path, T0 + S, T0 + 2 * S, b"later")
    assert index.chain_links([later])[later] == ChainLink("start", None)
