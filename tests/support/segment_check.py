"""What a recorded segment holds, read back with PyAV: for tests and benches that check
footage plays and its timeline is sound; and how many segments a running agent's index
lists."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class SegmentFacts:
    pictures: int  # decoded
    span_s: float  # from its lowest to its highest PTS
    ordered: bool  # DTS only ever rose, and no PTS was below its DTS


def segment_facts(path: Path) -> SegmentFacts:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        base = float(stream.time_base)
        last_dts: int | None = None
        low = high = None
        ordered = True
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            ordered &= last_dts is None or packet.dts > last_dts
            ordered &= packet.pts is not None and packet.pts >= packet.dts
            last_dts = packet.dts
            pts = packet.pts if packet.pts is not None else packet.dts
            low = pts if low is None else min(low, pts)
            high = pts if high is None else max(high, pts)
        container.seek(0)
        pictures = sum(1 for _ in container.decode(stream))
    span = (high - low) * base if low is not None and high is not None else 0.0
    return SegmentFacts(pictures, span, ordered)


def indexed_segments(index: Path, where: str = "1") -> int:
    """Segment rows matching `where` in a running agent's footage index, read beside it
    (read-only); 0 before the index has its tables (the file exists a moment before)."""
    if not index.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5)) as db:
            (count,) = db.execute(f"SELECT count(*) FROM segments WHERE {where}").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(count)
