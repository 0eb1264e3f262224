"""The contract's one RFC 3339 formatter and its file helpers, which the agent and the
registry both use in place of the copies each kept (issue 17)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract.common.files import HASH_CHUNK, HashStopped, sha256_file, sha256_of, write_all
from contract.timestamps import Precision, rfc3339, rfc3339_epoch

AMSTERDAM = timezone(timedelta(hours=1))
MOMENT = datetime(2026, 11, 27, 13, 0, 5, 123456, tzinfo=AMSTERDAM)


@pytest.mark.parametrize(
    ("moment", "precision", "text"),
    [
        (MOMENT, "milliseconds", "2026-11-27T12:00:05.123Z"),
        (MOMENT, "seconds", "2026-11-27T12:00:05Z"),
        (MOMENT, "auto", "2026-11-27T12:00:05.123Z"),
        (MOMENT.replace(microsecond=0), "auto", "2026-11-27T12:00:05Z"),
        (MOMENT.replace(microsecond=999999), "seconds", "2026-11-27T12:00:05Z"),
    ],
)
def test_one_formatter_writes_each_precision(
    moment: datetime, precision: Precision, text: str
) -> None:
    assert rfc3339(moment, precision) == text


def test_a_missing_time_stays_missing() -> None:
    assert rfc3339(None) is None
    assert rfc3339_epoch(None, "seconds") is None


def test_epoch_seconds_are_utc() -> None:
    epoch = datetime(2026, 11, 27, 12, 0, 5, 500000, tzinfo=UTC).timestamp()
    assert rfc3339_epoch(epoch) == "2026-11-27T12:00:05.500Z"
    assert rfc3339_epoch(epoch, "seconds") == "2026-11-27T12:00:05Z"


def test_a_file_is_hashed_whole(tmp_path: Path) -> None:
    data = os.urandom(2 * HASH_CHUNK + 17)
    path = tmp_path / "segment.ts"
    path.write_bytes(data)
    assert sha256_file(path) == (len(data), hashlib.sha256(data).hexdigest())


def test_hashing_stops_between_chunks_once_asked() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(HashStopped):
        sha256_of(io.BytesIO(b"x" * (HASH_CHUNK + 1)), stop)


def test_write_all_writes_at_the_offset_or_at_a_position(tmp_path: Path) -> None:
    path = tmp_path / "upload.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        write_all(fd, b"hello ")
        write_all(fd, b"world")
        write_all(fd, b"W", position=6)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"hello World"
