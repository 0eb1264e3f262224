"""The footage index's SQLite schema and its upgrades, one numbered migration per version.

Applied by `IndexDatabase` (database.py) when it opens the file, in its first transaction.
"""

from __future__ import annotations

SCHEMA_VERSION = 3

_SCHEMA_V1 = """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    path TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER,
    bytes INTEGER NOT NULL DEFAULT 0,
    sha256 TEXT,
    state TEXT NOT NULL
        CHECK (state IN ('writing', 'closed', 'partial', 'missing', 'altered')),
    -- 'closed' or 'partial' as sealed, so a file that verifies again gets its state back
    sealed_as TEXT
);
CREATE INDEX segments_camera_start ON segments (camera, start_us);
CREATE INDEX segments_state ON segments (state);
CREATE TABLE gaps (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX gaps_camera_start ON gaps (camera, start_us);
CREATE TABLE holds (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    until_us INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"""

# Migrations are split on ';', so their comments must not contain one.
_SCHEMA_V2 = """
ALTER TABLE segments ADD COLUMN origin TEXT NOT NULL DEFAULT 'recorded'
    CHECK (origin IN ('recorded', 'external'));
-- The owner's file's mtime when it was last hashed: a rescan that finds the same size
-- and mtime skips the file instead of hashing it again.
ALTER TABLE segments ADD COLUMN mtime_ns INTEGER;
-- One row per file of the owner's recorder, even when the daemon and the CLI scan at once.
CREATE UNIQUE INDEX segments_external_path ON segments (camera, path)
    WHERE origin = 'external';
"""

# What the agent's own clock knew of a segment (agent/clock_step.py): the boot it was
# recorded in and CLOCK_BOOTTIME at its end, so retention ages it by elapsed time, not by
# a wall clock that may have been stepped; and whether a wall-clock step fell inside it
# (its times are on the clock as it was before the step).
_SCHEMA_V3_CLOCK = """
ALTER TABLE segments ADD COLUMN boot_id TEXT;
ALTER TABLE segments ADD COLUMN boot_end_us INTEGER;
ALTER TABLE segments ADD COLUMN clock_step INTEGER NOT NULL DEFAULT 0;
"""
# Rows rebuilt from the files on disk (recording/rebuild.py) say so: their hash was taken
# at the rebuild, not when the file was written. Added by a column check rather than a
# numbered migration, so it composes with any other schema change.
_REBUILT_COLUMN = "ALTER TABLE segments ADD COLUMN rebuilt INTEGER NOT NULL DEFAULT 0"

# Camera clock readings (index/clock_rows.py). Not a numbered migration: made if absent
# when the index opens, so it composes with any other schema change (as `rebuilt` does).
CAMERA_CLOCKS_TABLE = """
CREATE TABLE IF NOT EXISTS camera_clocks (
    id INTEGER PRIMARY KEY,
    camera TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    offset_us INTEGER NOT NULL,
    uncertainty_us INTEGER NOT NULL,
    source TEXT NOT NULL
)"""
CAMERA_CLOCKS_INDEX = (
    "CREATE INDEX IF NOT EXISTS camera_clocks_camera_at ON camera_clocks (camera, at_us)"
)

# Index i takes the schema from version i to i + 1.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3_CLOCK)
