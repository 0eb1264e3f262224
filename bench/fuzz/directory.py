"""The recorder's file names (agent/recording/recorder_files.py, start_from_name): a path
relative to the recorder's folder read against the camera's `recording.pattern`.

An input's first byte picks a pattern (all valid for the config's check), the next four
the file's mtime, and the rest is the name as the file system gives it (bytes decoded as
os.fsdecode does, undecodable bytes as surrogates). The answer must be None (the name does
not say when) or an aware UTC moment from which a file's length can still be counted
(the scanner adds the container's duration). The machine's time zone is set to one with
daylight saving time, so the readings of a repeated hour are exercised.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from bench.fuzz.target import Target

PATTERNS = (
    "%Y%m%d_%H%M%S.mp4",
    "%Y/%m/%d/%H%M%S.mp4",
    "%Y-%m-%d %H.%M.%S%z.mkv",
    "cam1_%Y%m%d%H%M.avi",
    "%d.%m.%y/%H-%M-%S.ts",
    "%b %d %Y %I%M%S %p.mp4",
    "%Y%j_%H%M%S.mp4",
    "ch01_%y%m%d%H%M%S%f.264",
)
# The standard library's strptime is pure Python: its branches guide the search too.
ALSO_INSTRUMENT = ["_strptime"]
# strptime matches a name with one regex: its comparisons guide the search.
HOOKS = ("RegEx", "str")
TIME_ZONE = "Europe/Amsterdam"
EPOCH_2026 = datetime(2026, 1, 1, tzinfo=UTC)
# The longest file the scanner may meet: a container may declare any duration; a day
# stands for a plausible one.
LONGEST_FILE = timedelta(days=1)


def build() -> Target:
    os.environ["TZ"] = TIME_ZONE
    time.tzset()
    from agent.config import DirectorySettings
    from agent.recording.directory import start_from_name

    for pattern in PATTERNS:  # each one passes the config's check
        DirectorySettings(mode="directory", path="/srv/nvr", pattern=pattern)

    def one_input(data: bytes) -> None:
        if len(data) < 5:
            return
        pattern = PATTERNS[data[0] % len(PATTERNS)]
        mtime = EPOCH_2026 + timedelta(seconds=int.from_bytes(data[1:5], "big", signed=True))
        name = os.fsdecode(data[5:])
        start = start_from_name(name, pattern, mtime)
        if start is None:
            return
        assert start.tzinfo is not None and start.utcoffset() == timedelta(0), start
        assert start + LONGEST_FILE > start

    def seed(index: int, name: str, mtime: int = 86_400) -> bytes:
        return bytes([index]) + mtime.to_bytes(4, "big", signed=True) + os.fsencode(name)

    seeds = [
        seed(0, "20260102_030405.mp4"),
        seed(1, "2026/03/29/023000.mp4"),  # a local time that does not exist (spring forward)
        seed(1, "2026/10/25/023000.mp4", 25_747_200),  # one that exists twice
        seed(2, "2026-01-02 03.04.05+0100.mkv"),
        seed(3, "cam1_202601020304.avi"),
        seed(4, "02.01.26/03-04-05.ts"),
        seed(5, "Jan 02 2026 030405 AM.mp4"),
        seed(6, "2026002_030405.mp4"),
        seed(7, "ch01_260102030405123456.264"),
        seed(0, "20260102_030405.MP4"),
        seed(0, "2026\udcff0102_030405.mp4"),
        # The edges of what datetime holds: a name may say any year from 0001 to 9999.
        seed(0, "00010101_000000.mp4"),
        seed(0, "99991231_235959.mp4"),
        seed(2, "0001-01-01 00.00.00+2359.mkv"),
        seed(2, "9999-12-31 23.59.59-2359.mkv"),
    ]
    return Target(one_input, seeds)
