"""The footage index: every segment, gap and preservation hold, in one SQLite file (WAL).

This is the package's public face: import index names from `agent.recording.index`, not
from its modules. Inside, one job per module: the schema and its upgrades (schema.py), the
row types and their time encoding (rows.py), the connection and its transactions
(database.py), and one part of `SegmentIndex` per kind of row: the segments the agent
records (segment_rows.py), files found on disk (found_files.py), gaps (gaps.py), the
footage summary (summary.py) and holds (holds.py); the segment chain's links are
made and read in chain.py and segment_rows.py. The parts are mixins of one class, not
separate objects, because segments, gaps and holds share one file, one lock and its
transactions. The SHA-256 segments are sealed with is in file_hash.py.
"""

from agent.recording.index.chain import CHAIN_GAP_TOLERANCE_S, LINK_KINDS, ChainLink
from agent.recording.index.clock_rows import ClockRow, ClockRows
from agent.recording.index.database import FootageIndexError
from agent.recording.index.file_hash import HASH_CHUNK, HashCancelled, sha256_file
from agent.recording.index.found_files import FoundFileRows
from agent.recording.index.gaps import GapRows
from agent.recording.index.holds import HoldRows
from agent.recording.index.rows import ORIGINS, STATES, FileStamp, Gap, Hold, Segment
from agent.recording.index.schema import SCHEMA_VERSION
from agent.recording.index.segment_rows import SegmentRows
from agent.recording.index.summary import FootageQueries, FootageSummary


class SegmentIndex(SegmentRows, FoundFileRows, GapRows, FootageQueries, HoldRows, ClockRows):
    """The SQLite index of recorded footage; safe to share between threads."""


__all__ = [
    "CHAIN_GAP_TOLERANCE_S",
    "HASH_CHUNK",
    "LINK_KINDS",
    "ORIGINS",
    "SCHEMA_VERSION",
    "STATES",
    "ChainLink",
    "ClockRow",
    "FileStamp",
    "FootageIndexError",
    "FootageSummary",
    "Gap",
    "HashCancelled",
    "Hold",
    "Segment",
    "SegmentIndex",
    "sha256_file",
]
