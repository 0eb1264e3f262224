"""The segment chain: each segment the agent seals names the hash of the one sealed before
it on that camera, so an evidence package proves that nothing between its first and last
file is missing except the gaps it lists (docs/evidence.md, "The segment chain").

The link is made when a segment is sealed, in the same transaction, from the camera's
chain head: one row per camera holding the last sealed segment's hash and end. The head
outlives its segment (pruning removes the row, not the head) and agent restarts (it is in
the index file). A link is one of:
- `follows`: the segment began where the previous one ended;
- `gap`: it began more than CHAIN_GAP_TOLERANCE_S after the previous one ended, and the
  link names that span (the stream stopped, the agent was not running);
- `start`: no earlier segment of the camera is known to this index (the camera's first
  recording, or the first since the index was rebuilt from the files);
- `rebuilt`: indexed by a rebuild (recording/rebuild.py), which cannot know what was
  between the files it found: it links nothing.
Rows with no link at all (recorded before the chain existed, or the owner's recorder's
files, which the agent does not write) say so in the manifest as `none`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

# Back-to-back segments of one connection: the next starts at the keyframe the last one
# ended at; after a reconnect the recorder's own gap row covers any hole. Two seconds of
# slack (as the rebuild's) keeps timestamp jitter from turning into gap links.
CHAIN_GAP_TOLERANCE_S = 2.0
LINK_KINDS = frozenset({"follows", "gap", "start", "rebuilt", "none"})

# Added when absent (as `rebuilt` is), so it composes with any other schema change.
CHAIN_COLUMNS = (
    ("chain_link", "ALTER TABLE segments ADD COLUMN chain_link TEXT"),
    ("chain_prev", "ALTER TABLE segments ADD COLUMN chain_prev TEXT"),
    ("chain_gap_start_us", "ALTER TABLE segments ADD COLUMN chain_gap_start_us INTEGER"),
    ("chain_gap_end_us", "ALTER TABLE segments ADD COLUMN chain_gap_end_us INTEGER"),
)
CHAIN_HEADS_TABLE = """
CREATE TABLE IF NOT EXISTS chain_heads (
    camera TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    end_us INTEGER NOT NULL
)"""


@dataclass(frozen=True)
class ChainLink:
    """How one segment is tied to the one before it on its camera."""

    kind: str  # one of LINK_KINDS
    prev_sha256: str | None
    gap_start: datetime | None = None
    gap_end: datetime | None = None


def add_chain_schema(conn: sqlite3.Connection, columns: set[str]) -> None:
    """Add the chain's columns and head table where missing (inside the setup transaction)."""
    for name, statement in CHAIN_COLUMNS:
        if name not in columns:
            conn.execute(statement)
    conn.execute(CHAIN_HEADS_TABLE)


def link_sealed(
    conn: sqlite3.Connection, segment_id: int, camera: str, start_us: int, end_us: int, sha256: str
) -> None:
    """Link a segment being sealed to the camera's head and make it the head; call inside
    the transaction that seals it, so a crash leaves both or neither."""
    head = conn.execute(
        "SELECT sha256, end_us FROM chain_heads WHERE camera = ?", (camera,)
    ).fetchone()
    gap_start = gap_end = None
    if head is None:
        kind, prev = "start", None
    else:
        prev = head[0]
        if start_us - head[1] > CHAIN_GAP_TOLERANCE_S * 1e6:
            kind, gap_start, gap_end = "gap", head[1], start_us
        else:
            kind = "follows"
    conn.execute(
        "UPDATE segments SET chain_link = ?, chain_prev = ?, chain_gap_start_us = ?,"
        " chain_gap_end_us = ? WHERE id = ?",
        (kind, prev, gap_start, gap_end, segment_id),
    )
    conn.execute(
        "INSERT INTO chain_heads (camera, sha256, end_us) VALUES (?, ?, ?)"
        " ON CONFLICT (camera) DO UPDATE SET sha256 = excluded.sha256, end_us = excluded.end_us",
        (camera, sha256, max(start_us, end_us)),
    )
