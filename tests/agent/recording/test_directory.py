"""Recording mode `directory`: the owner's recorder writes real H.264 files into a folder,
the agent indexes them and never changes a byte there."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from pydantic import ValidationError

from agent.config import AgentConfig, DirectorySettings, load_config
from agent.evidence.export import ExportError, export_window
from agent.recording import directory
from agent.recording.directory import GAP_REASON, DirectoryScanner
from agent.recording.index import Gap, SegmentIndex
from agent.recording.recorder_files import gaps_between, start_from_name
from agent.recording.storage import Storage
from tests.support import REPO_ROOT, eventually
from tests.support.agent_proc import AgentProcess, write_config
from tests.support.broker import Broker
from tests.support.media import write_h264
from tests.support.mqtt_watch import Watcher
from tests.support.schemas import assert_valid

PATTERN = "%Y%m%d_%H%M%S.mp4"
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
HEALTH = "camreg/v1/agents/shop-42/cameras/front/health"


def recorder_file(
    folder: Path, start: datetime, seconds: float = 2.0, pattern: str = PATTERN
) -> Path:
    """What the owner's recorder leaves behind: a finished H.264 file named by its start in
    the machine's local time, last written when its footage ends."""
    path = folder / start.astimezone().strftime(pattern)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A different keyframe interval per file: no two files have the same bytes.
    gop = 5 + int(start.timestamp()) % 20
    if path.suffix == ".ts":
        mp4 = write_h264(path.with_suffix(".tmp.mp4"), seconds, width=320, height=180, gop=gop)
        _remux_to_ts(mp4, path)
        mp4.unlink()
    else:
        write_h264(path, seconds, width=320, height=180, gop=gop)
    end = (start + timedelta(seconds=seconds)).timestamp()
    os.utime(path, (end, end))
    return path


def _remux_to_ts(source: Path, target: Path) -> None:
    with av.open(str(source)) as src, av.open(str(target), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def scanner_for(folder: Path, index: SegmentIndex, pattern: str = PATTERN) -> DirectoryScanner:
    return DirectoryScanner(
        "front", DirectorySettings(mode="directory", path=folder, pattern=pattern), index
    )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every entry under `folder`: its bytes (files), mtime and mode."""
    seen: dict[str, tuple[bytes, int, int]] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() else b""
        seen[str(path.relative_to(folder))] = (data, info.st_mtime_ns, info.st_mode)
    return seen


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_with(
    tmp_path: Path, folder: Path, pattern: str = PATTERN, **sections: Any
) -> AgentConfig:
    clip = write_h264(tmp_path / "stream.mp4", 4, width=320, height=180)
    cameras = [
        {
            "id": "front",
            "url": str(clip),
            "recording": {"mode": "directory", "path": str(folder), "pattern": pattern},
        },
        *sections.pop("cameras", []),
    ]
    path = write_config(
        tmp_path / "config.yaml", broker_url="mqtt://127.0.0.1:1", cameras=cameras, **sections
    )
    return load_config(path)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    idx = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    yield idx
    idx.close_db()


@pytest.fixture
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is Dutch time (CET/CEST) for the test."""
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- pure functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([], []),
        ([(0, 2), (2, 4)], []),
        ([(0, 2), (4, 6)], []),  # exactly the tolerance: no gap
        ([(0, 2), (4.5, 6)], [(2, 4.5)]),
        ([(10, 12), (0, 2)], [(2, 10)]),  # any order
        ([(0, 10), (2, 4), (11, 12)], []),  # a long file covers a short one inside it
        ([(0, 2), (3, 3), (9, 10)], [(3, 9)]),  # a zero-length file still marks its instant
    ],
)
def test_gaps_between(
    spans: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    holes = gaps_between([(at(a), at(b)) for a, b in spans], tolerance_s=2.0)
    assert holes == [(at(a), at(b)) for a, b in expected]


@pytest.mark.parametrize(
    ("name", "pattern", "mtime", "start"),
    [
        # Local time: CEST (UTC+2) in May.
        ("20240501_120000.mp4", PATTERN, "2024-05-01T10:01:00Z", "2024-05-01T10:00:00Z"),
        ("2024/05/01/120000.ts", "%Y/%m/%d/%H%M%S.ts", "2024-05-01T10:01Z", "2024-05-01T10:00Z"),
        # An offset in the name wins over local time.
        (
            "20240501_120000+0000.mp4",
            "%Y%m%d_%H%M%S%z.mp4",
            "2024-05-01T12:01:00Z",
            "2024-05-01T12:00:00Z",
        ),
        # 27 October 2024: 02:00-03:00 happens twice (CEST, then CET); the mtime decides.
        ("20241027_023000.mp4", PATTERN, "2024-10-27T00:31:00Z", "2024-10-27T00:30:00Z"),
        ("20241027_023000.mp4", PATTERN, "2024-10-27T01:31:00Z", "2024-10-27T01:30:00Z"),
        # Case does not matter, like on the recorders that write .MP4.
        ("20240501_120000.MP4", PATTERN, "2024-05-01T10:01:00Z", "2024-05-01T10:00:00Z"),
        ("clip-0001.mp4", PATTERN, "2024-05-01T10:01:00Z", None),
        ("20240501_120000 (1).mp4", PATTERN, "2024-05-01T10:01:00Z", None),
    ],
)
def test_start_from_name(
    amsterdam: None, name: str, pattern: str, mtime: str, start: str | None
) -> None:
    found = start_from_name(name, pattern, datetime.fromisoformat(mtime))
    assert found == (None if start is None else datetime.fromisoformat(start))


@pytest.mark.parametrize(
    "pattern",
    ["%Y%m%d_%H%M%S.mp4", "%Y/%m/%d/%H%M%S.ts", "cam1_%Y-%m-%dT%H-%M-%S%z.mkv", "%y%m%d%H%M.mp4"],
)
def test_patterns_that_name_a_moment_are_accepted(tmp_path: Path, pattern: str) -> None:
    assert DirectorySettings(mode="directory", path=tmp_path, pattern=pattern).pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("front.mp4", "must contain strftime fields"),
        ("%H%M%S.mp4", "must name the date and the time"),
        ("%Y%m%d.mp4", "must name the date and the time"),
        ("%Y%m%d_%I%M%S.mp4", "must name the date and the time"),  # 12-hour clock, no AM/PM
        ("%s.mp4", "cannot be read back as a time"),
        ("/srv/nvr/%Y%m%d_%H%M%S.mp4", "relative to path"),
        ("../%Y%m%d_%H%M%S.mp4", "relative to path"),
        ("%Y//%m%d_%H%M%S.mp4", "relative to path"),
    ],
)
def test_patterns_that_cannot_say_when_are_refused(
    tmp_path: Path, pattern: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        DirectorySettings(mode="directory", path=tmp_path, pattern=pattern)


# -- the scanner on real files ---------------------------------------------------------------


def test_files_are_indexed_with_their_hashes_times_and_the_gaps_between_them(
    tmp_path: Path, index: SegmentIndex
) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + offset * S) for offset in (0, 2, 4, 20)]

    result = scanner_for(nvr, index).scan()

    assert result.added == 4
    segments = index.segments("front")
    assert [s.path for s in segments] == files
    for segment, offset in zip(segments, (0, 2, 4, 20), strict=True):
        assert (segment.start, segment.end) == (T0 + offset * S, T0 + (offset + 2) * S)
        assert segment.sha256 == sha256(segment.path)
        assert segment.bytes == segment.path.stat().st_size
        assert (segment.state, segment.origin) == ("closed", "external")
    assert index.gaps("front") == [Gap("front", T0 + 6 * S, T0 + 20 * S, GAP_REASON)]
    summary = index.summary("front")
    assert (summary.oldest, summary.newest) == (T0, T0 + 22 * S)
    assert (summary.gap_count, summary.gap_seconds) == (1, 14.0)


def test_subfolders_by_date_and_mpeg_ts_files(tmp_path: Path, index: SegmentIndex) -> None:
    pattern = "%Y/%m/%d/%H%M%S.ts"
    nvr = tmp_path / "nvr"
    # Across midnight, so two day folders.
    midnight = datetime(2024, 5, 1, 23, 59, 58).astimezone(UTC)
    files = [recorder_file(nvr, midnight + i * 2 * S, pattern=pattern) for i in range(3)]
    # What the pattern does not describe is left alone: other depths, other suffixes,
    # hidden temporary files.
    shutil.copy(files[0], nvr / "loose.ts")
    shutil.copy(files[0], files[0].parent / "snapshot.jpg")
    shutil.copy(files[0], files[0].parent / ".235959.ts.part")

    scanner_for(nvr, index, pattern).scan()

    segments = index.segments("front")
    assert [s.path for s in segments] == files
    assert [s.start for s in segments] == [midnight + i * 2 * S for i in range(3)]
    assert all(s.end == s.start + 2 * S for s in segments)
    assert index.gaps("front") == []


def test_names_are_the_machines_local_time(
    amsterdam: None, tmp_path: Path, index: SegmentIndex
) -> None:
    nvr = tmp_path / "nvr"
    path = recorder_file(nvr, T0)
    assert path.name == "20240501_120000.mp4"  # 10:00 UTC is 12:00 in Amsterdam in May

    scanner_for(nvr, index).scan()

    [segment] = index.segments("front")
    assert segment.start == T0


def test_a_name_outside_the_pattern_is_timed_by_its_mtime_and_container(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    named = recorder_file(nvr, T0)
    odd = nvr / "manual-export.mp4"
    write_h264(odd, 3, width=320, height=180)
    end = (T0 + 60 * S).timestamp()
    os.utime(odd, (end, end))
    scanner = scanner_for(nvr, index)

    with caplog.at_level(logging.DEBUG, logger="agent.recording.directory"):
        scanner.scan()
        scanner.scan()

    assert [(s.path, s.start, s.end) for s in index.segments("front")] == [
        (named, T0, T0 + 2 * S),
        (odd, T0 + 57 * S, T0 + 60 * S),
    ]
    unmatched = [r for r in caplog.records if "does not match the pattern" in r.getMessage()]
    assert len(unmatched) == 1 and unmatched[0].levelno == logging.DEBUG
    assert str(odd) in unmatched[0].getMessage()


def test_a_stream_without_a_duration_ends_where_the_next_file_starts(
    tmp_path: Path, index: SegmentIndex
) -> None:
    # A raw H.264 elementary stream has no container to say how long it is.
    pattern = "%Y%m%d_%H%M%S.h264"
    nvr = tmp_path / "nvr"
    paths = []
    for i, last_write in enumerate((40, 70)):  # written until 40 s and 70 s after T0
        mp4 = recorder_file(tmp_path / "src", T0 + i * 30 * S)
        path = nvr / (T0 + i * 30 * S).astimezone().strftime(pattern)
        path.parent.mkdir(exist_ok=True)
        with av.open(str(mp4)) as src, av.open(str(path), "w", format="h264") as out:
            stream = out.add_stream_from_template(src.streams.video[0])
            for packet in src.demux(src.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
        moment = (T0 + last_write * S).timestamp()
        os.utime(path, (moment, moment))
        paths.append(path)

    scanner_for(nvr, index, pattern).scan()

    # The first runs until the second starts (before its own last write); the last one
    # until it was last written.
    assert [(s.path, s.start, s.end) for s in index.segments("front")] == [
        (paths[0], T0, T0 + 30 * S),
        (paths[1], T0 + 30 * S, T0 + 70 * S),
    ]


def test_a_file_is_indexed_only_once_it_stops_changing(tmp_path: Path, index: SegmentIndex) -> None:
    nvr = tmp_path / "nvr"
    path = recorder_file(nvr, T0)
    scanner = scanner_for(nvr, index)
    written = path.stat().st_mtime

    # Last written 3 s ago: the recorder may still be at it.
    assert scanner.scan(now=T0 + 5 * S).pending == 1
    assert index.segments() == []
    # Grown since the last scan, although its mtime looks old (a recorder on a share with
    # a lagging clock): still not finished.
    with open(path, "ab") as fh:
        fh.write(b"\0" * 10)
    os.utime(path, (written, written))
    assert scanner.scan(now=T0 + 30 * S).pending == 1
    assert index.segments() == []
    # Unchanged since then and quiet for long enough.
    assert scanner.scan(now=T0 + 60 * S).added == 1
    [segment] = index.segments("front")
    assert (segment.bytes, segment.sha256) == (path.stat().st_size, sha256(path))


def test_a_rescan_with_nothing_new_opens_and_hashes_nothing(
    tmp_path: Path, index: SegmentIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    nvr = tmp_path / "nvr"
    for i in range(5):
        recorder_file(nvr, T0 + i * 2 * S)
    scanner_for(nvr, index).scan()
    calls: list[Path] = []
    # Patched where the scanner looks them up, so read from there too.
    real_hash, real_probe = directory.sha256_file, directory.container_seconds  # type: ignore[attr-defined]

    def counting_hash(path: Path, stop: threading.Event | None = None) -> tuple[int, str]:
        calls.append(path)
        return real_hash(path, stop)

    def counting_probe(path: Path) -> float | None:
        calls.append(path)
        return real_probe(path)

    monkeypatch.setattr(directory, "sha256_file", counting_hash)
    monkeypatch.setattr(directory, "container_seconds", counting_probe)

    # A new scanner too: after a restart, the index's size and mtime are enough.
    for scanner in (scanner_for(nvr, index), scanner_for(nvr, index)):
        assert not scanner.scan().changed
    assert calls == []
    assert len(index.segments("front")) == 5


def test_a_file_that_is_not_video_is_skipped_with_one_warning(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    good = recorder_file(nvr, T0)
    garbage = nvr / (T0 + 60 * S).astimezone().strftime(PATTERN)
    # Fixed noise: random bytes now and then look enough like a container to open, and
    # then the warning says "no video stream" instead; both are right, one is tested.
    garbage.write_bytes(random.Random(7).randbytes(50_000))
    os.utime(garbage, (T0.timestamp() + 62, T0.timestamp() + 62))
    empty = nvr / (T0 + 120 * S).astimezone().strftime(PATTERN)
    empty.write_bytes(b"")
    os.utime(empty, (T0.timestamp() + 122, T0.timestamp() + 122))
    scanner = scanner_for(nvr, index)

    with caplog.at_level(logging.WARNING, logger="agent.recording.directory"):
        first = scanner.scan()
        second = scanner.scan()

    assert (first.added, first.skipped, second.skipped) == (1, 2, 2)
    assert [s.path for s in index.segments("front")] == [good]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert any(str(garbage) in w and "not a video" in w for w in warnings), warnings
    assert any(str(empty) in w for w in warnings)


def test_rotated_files_leave_the_index_and_held_ones_become_missing(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(4)]
    scanner = scanner_for(nvr, index)
    scanner.scan()
    index.hold("front", T0 + 2.5 * S, T0 + 3 * S, datetime.now(UTC) + timedelta(days=1), "r-1")

    # The recorder rotates away its two oldest files; the second is held by a request.
    files[0].unlink()
    files[1].unlink()
    with caplog.at_level(logging.INFO, logger="agent.recording.directory"):
        result = scanner.scan()

    assert (result.removed, result.missing) == (1, 1)
    assert [(s.path, s.state) for s in index.segments("front")] == [
        (files[1], "missing"),
        (files[2], "closed"),
        (files[3], "closed"),
    ]
    [rotated] = [r for r in caplog.records if str(files[0]) in r.getMessage()]
    assert rotated.levelno == logging.INFO and "no longer indexed" in rotated.getMessage()
    [lost] = [r for r in caplog.records if str(files[1]) in r.getMessage()]
    assert lost.levelno == logging.WARNING and "marked missing" in lost.getMessage()
    summary = index.summary("front")
    assert (summary.oldest, summary.newest) == (T0 + 4 * S, T0 + 8 * S)
    # A held file that went missing is not exported as if it were there.
    with pytest.raises(ExportError) as caught:
        export_window(index, "shop-42", "front", T0 + 2 * S, T0 + 3 * S, tmp_path / "out")
    assert caught.value.reason == "footage_missing"


def test_a_file_changed_after_indexing_is_altered_and_not_exported(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(2)]
    scanner = scanner_for(nvr, index)
    scanner.scan()
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[0].write_bytes(bytes(data))
    # Touching a file without changing it is not an alteration.
    os.utime(files[1], None)

    with caplog.at_level(logging.WARNING, logger="agent.recording.directory"):
        assert scanner.scan().altered == 1
        assert scanner.scan().altered == 0  # said once

    assert [s.state for s in index.segments("front")] == ["altered", "closed"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert str(files[0]) in warning and "altered" in warning
    with pytest.raises(ExportError) as caught:
        export_window(index, "shop-42", "front", T0, T0 + 4 * S, tmp_path / "out")
    assert caught.value.reason == "footage_altered" and str(files[0]) in str(caught.value)
    # The untouched one still exports byte-identical.
    manifest = export_window(index, "shop-42", "front", T0 + 2 * S, T0 + 4 * S, tmp_path / "b")
    [entry] = json.loads(manifest.read_text())["files"]
    assert entry["sha256"] == sha256(files[1])


def test_symlinks_out_of_the_folder_are_not_indexed_and_named_once(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever writes the recorder's folder (the recorder, over SMB or NFS) must not make
    the agent index and export another camera's file, or any file it can read, as this
    camera's footage."""
    pattern = "%Y%m%d/%H%M%S.mp4"
    nvr, other = tmp_path / "nvr", tmp_path / "back"
    mine = recorder_file(nvr, T0, pattern=pattern)
    theirs = recorder_file(other, T0 + 4 * S, pattern=pattern)
    later = recorder_file(other, T0 + 86400 * S, pattern=pattern)
    day = mine.parent
    to_file = day / (T0 + 4 * S).astimezone().strftime("%H%M%S.mp4")
    to_file.symlink_to(theirs)
    to_secret = day / (T0 + 8 * S).astimezone().strftime("%H%M%S.mp4")
    to_secret.symlink_to("/etc/passwd")
    to_folder = nvr / later.parent.name  # the next day's folder: the other camera's
    to_folder.symlink_to(later.parent, target_is_directory=True)
    scanner = scanner_for(nvr, index, pattern)

    with caplog.at_level(logging.WARNING, logger="agent.recording.directory"):
        scanner.scan()
        scanner.scan()

    assert [s.path for s in index.segments("front")] == [mine]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for link, target in ((to_file, theirs), (to_secret, "/etc/passwd"), (to_folder, later.parent)):
        said = [w for w in warnings if str(link) in w]
        assert len(said) == 1, (link, warnings)  # named, once
        assert "symbolic link" in said[0] and str(target) in said[0], said
    manifest = export_window(index, "shop-42", "front", T0, T0 + 86402 * S, tmp_path / "out")
    assert [f["sha256"] for f in json.loads(manifest.read_text())["files"]] == [sha256(mine)]


@pytest.mark.parametrize("target", ["other camera", "/dev/zero"])
def test_a_file_replaced_by_a_symlink_after_indexing_is_not_exported(
    tmp_path: Path, index: SegmentIndex, target: str
) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(2)]
    scanner_for(nvr, index).scan()
    # Between two scans (the daemon scans every minute) the file becomes a symlink: to a
    # file elsewhere (here with the very bytes recorded, which the hash check alone would
    # pass), or to an endless device that would fill the export's disk.
    elsewhere = Path(target)
    if target == "other camera":
        elsewhere = recorder_file(tmp_path / "back", T0)
    files[0].unlink()
    files[0].symlink_to(elsewhere)

    with pytest.raises(ExportError) as caught:
        export_window(index, "shop-42", "front", T0, T0 + 4 * S, tmp_path / "out")

    assert caught.value.reason == "footage_altered"
    assert str(files[0]) in str(caught.value) and "symbolic link" in str(caught.value)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_an_emptied_mount_point_keeps_the_index(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(3)]
    scanner = scanner_for(nvr, index)
    scanner.scan()
    stash = tmp_path / "elsewhere"
    nvr.rename(stash)
    nvr.mkdir()  # the bare mount point of an unmounted disk

    with caplog.at_level(logging.WARNING, logger="agent.recording.directory"):
        assert not scanner.scan().changed
    assert [s.path for s in index.segments("front")] == files
    assert "unmounted" in caplog.text

    nvr.rmdir()
    stash.rename(nvr)  # mounted again
    assert not scanner.scan().changed
    assert [s.state for s in index.segments("front")] == ["closed"] * 3


def test_a_missing_folder_is_a_warning_and_the_run_goes_on(
    tmp_path: Path, index: SegmentIndex, caplog: pytest.LogCaptureFixture
) -> None:
    nvr = tmp_path / "nvr"
    scanner = scanner_for(nvr, index)
    with caplog.at_level(logging.WARNING, logger="agent.recording.directory"):
        scanner.scan()
        scanner.scan()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "cannot read recording.path" in warning and str(nvr) in warning
    assert scanner.stopped(datetime.now(UTC))

    recorder_file(nvr, datetime.now(UTC) - 15 * S)
    assert scanner.scan().added == 1
    assert not scanner.stopped(datetime.now(UTC))


def test_recording_stopped_when_the_newest_file_is_three_file_lengths_old(
    tmp_path: Path, index: SegmentIndex
) -> None:
    nvr = tmp_path / "nvr"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    for i in range(3):
        recorder_file(nvr, start + i * 2 * S)
    scanner = scanner_for(nvr, index)
    last_write = start + 6 * S
    assert not scanner.stopped(last_write + timedelta(days=1))  # no verdict before a scan
    scanner.scan()
    assert scanner.typical_s == 2.0
    limit = 3 * 2.0 + directory.STOPPED_SLACK_S
    assert not scanner.stopped(last_write + timedelta(seconds=limit - 1))
    assert scanner.stopped(last_write + timedelta(seconds=limit + 1))


# -- Storage: pruning, health, the scan thread -------------------------------------------------


def test_the_owners_folder_is_only_ever_read(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in (0, 1, 2, 10)]
    config = config_with(
        tmp_path,
        nvr,
        storage={"max_bytes": "1kB", "min_free_bytes": 0},
        cameras=[{"id": "back", "url": str(tmp_path / "stream.mp4")}],
    )
    for path in files:
        path.chmod(0o444)
    nvr.chmod(0o555)
    try:
        before = snapshot(nvr)
        storage = Storage(config)
        # Footage the agent recorded itself, five times over the 1 kB budget.
        own = tmp_path / "footage" / "back" / "own.ts"
        own.parent.mkdir(parents=True)
        own.write_bytes(b"\x47" * 5000)
        own_id = storage.index.begin("back", own, T0)
        storage.index.close(own_id, T0 + 60 * S, 5000, sha256(own))
        storage.index.hold("front", T0, T0 + S, datetime.now(UTC) + timedelta(days=1), "r-1")

        storage.scan()
        freed = storage.prune()
        manifest = export_window(
            storage.index, "shop-42", "front", T0 - S, T0 + 30 * S, tmp_path / "export"
        )
        storage.scan()
        storage.prune()

        assert freed == 5000 and not own.exists()  # pruning ran, and took only our own
        assert [s.path for s in storage.index.segments("front")] == files
        assert {s.state for s in storage.index.segments("front")} == {"closed"}
        exported = json.loads(manifest.read_text())["files"]
        assert [e["sha256"] for e in exported] == [sha256(p) for p in files]
        for entry, original in zip(exported, files, strict=True):
            assert (tmp_path / "export" / entry["name"]).read_bytes() == original.read_bytes()
        assert snapshot(nvr) == before
        footage, problems = storage.report("front", receiving=True)
        assert footage is not None and footage["gaps"] == {"count": 1, "seconds": 14.0}
        # The owner's disk is the owner's: its size never makes the agent's storage low.
        assert "storage_low" not in problems
        storage.close()
    finally:
        nvr.chmod(0o755)


def test_health_reports_directory_footage_and_a_stopped_recorder(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    for i in (0, 1, 2, 10):
        recorder_file(nvr, T0 + i * 2 * S)
    storage = Storage(config_with(tmp_path, nvr))
    storage.scan()
    storage.prune()

    footage, problems = storage.report("front", receiving=True)

    assert footage is not None
    assert footage["oldest"] == "2024-05-01T10:00:00.000Z"
    assert footage["newest"] == "2024-05-01T10:00:22.000Z"
    assert footage["gaps"] == {"count": 1, "seconds": 14.0}
    assert footage["bytes"] == sum(p.stat().st_size for p in nvr.iterdir())
    assert problems == ("recording_stopped",)  # its newest file is from 2024
    # While the camera itself is down, that is the problem, not the recorder.
    assert storage.report("front", receiving=False)[1] == ()
    storage.close()


def test_the_scan_runs_off_the_main_loop_and_stops_with_storage(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    for i in range(3):
        recorder_file(nvr, T0 + i * 2 * S)
    storage = Storage(config_with(tmp_path, nvr))
    stop = threading.Event()
    storage.start(stop)

    storage.tick(time.monotonic())
    try:
        eventually(lambda: len(storage.index.segments("front")) >= 3, "three files indexed", 10)
    finally:
        stop.set()
        storage.close()

    assert "footage-scan" not in {t.name for t in threading.enumerate()}
    reopened = SegmentIndex(tmp_path / "state" / "footage.sqlite")
    assert len(reopened.segments("front")) == 3
    reopened.close_db()


def test_rows_of_a_camera_no_longer_in_directory_mode_are_forgotten(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(2)]
    storage = Storage(config_with(tmp_path, nvr))
    storage.scan()
    storage.close()
    (tmp_path / "stream.mp4").unlink()
    recording = tmp_path / "config.yaml"
    text = recording.read_text().replace("mode: directory", "mode: record")
    text = text.replace(f"path: {nvr}\n", "").replace("pattern: '%Y%m%d_%H%M%S.mp4'\n", "")
    recording.write_text(text)
    write_h264(tmp_path / "stream.mp4", 1, width=320, height=180)

    storage = Storage(load_config(recording))
    assert storage.index.segments("front") == []
    storage.close()
    assert all(path.exists() for path in files)


# -- the command line ------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_footage_and_export_on_the_command_line(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in (0, 1, 2, 10)]
    garbage = nvr / (T0 + 60 * S).astimezone().strftime(PATTERN)
    garbage.write_bytes(b"not a video, named like one\n" * 100)
    os.utime(garbage, (T0.timestamp() + 62, T0.timestamp() + 62))
    config_with(tmp_path, nvr)
    config = tmp_path / "config.yaml"
    for path in (*files, garbage):
        path.chmod(0o444)
    nvr.chmod(0o555)
    try:
        before = snapshot(nvr)

        listing = cli("footage", "--config", str(config))
        export = cli(
            "footage",
            "export",
            "front",
            "2024-05-01T10:00:01Z",
            "2024-05-01T10:00:21Z",
            str(tmp_path / "export"),
            "--config",
            str(config),
        )
        again = cli("footage", "--camera", "front", "--config", str(config))

        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.splitlines() == [
            "front: 2024-05-01T10:00:00.000Z to 2024-05-01T10:00:22.000Z, 4 files, "
            f"{sum(p.stat().st_size for p in files) / 1e6:.1f} MB, 1 gap (14 s)",
            "  gap 2024-05-01T10:00:06.000Z to 2024-05-01T10:00:20.000Z (recorder_gap)",
        ]
        assert str(garbage) in listing.stderr and "not a video" in listing.stderr
        assert export.returncode == 0, export.stderr
        manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
        assert len(manifest["files"]) == 4
        for entry, original in zip(manifest["files"], files, strict=True):
            copy = tmp_path / "export" / entry["name"]
            assert copy.read_bytes() == original.read_bytes()
            assert entry["sha256"] == sha256(original) and entry["bytes"] == copy.stat().st_size
        assert manifest["gaps"] == [
            {
                "camera": "front",
                "start": "2024-05-01T10:00:06.000Z",
                "end": "2024-05-01T10:00:20.000Z",
            }
        ]
        assert again.stdout == listing.stdout
        assert snapshot(nvr) == before
    finally:
        nvr.chmod(0o755)


def test_the_command_line_skips_symlinks_and_names_them(tmp_path: Path) -> None:
    nvr, other = tmp_path / "nvr", tmp_path / "back"
    files = [recorder_file(nvr, T0 + i * 2 * S) for i in range(2)]
    theirs = recorder_file(other, T0 + 4 * S)
    link = nvr / theirs.name
    link.symlink_to(theirs)
    config_with(tmp_path, nvr)
    config = str(tmp_path / "config.yaml")

    listing = cli("footage", "--config", config)
    export = cli(
        "footage",
        "export",
        "front",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:06Z",
        str(tmp_path / "export"),
        "--config",
        config,
    )

    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith(
        "front: 2024-05-01T10:00:00.000Z to 2024-05-01T10:00:04.000Z, 2 files"
    )
    assert str(link) in listing.stderr and "symbolic link" in listing.stderr
    assert export.returncode == 0, export.stderr
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert [f["sha256"] for f in manifest["files"]] == [sha256(p) for p in files]
    assert sha256(theirs) not in {sha256(p) for p in (tmp_path / "export").iterdir()}


@pytest.mark.parametrize("problem", ["missing", "a file"])
def test_check_names_a_recording_path_that_is_not_a_folder(tmp_path: Path, problem: str) -> None:
    nvr = tmp_path / "nvr"
    if problem == "a file":
        nvr.write_text("not a folder")
    config_with(tmp_path, nvr)
    config = tmp_path / "config.yaml"

    result = cli("check", "--config", str(config))

    assert result.returncode == 78
    expected = "no such folder" if problem == "missing" else "not a folder"
    [line] = [line for line in result.stderr.splitlines() if "recording.path" in line]
    assert line.strip().startswith(f"cameras[0].recording.path: {expected}")
    assert str(nvr) in line and "(line " in line
    # The daemon does not refuse to start over it: the folder may be a disk mounted later.
    assert load_config(config).cameras[0].recording.mode == "directory"


def test_check_accepts_a_readable_folder(tmp_path: Path) -> None:
    nvr = tmp_path / "nvr"
    nvr.mkdir()
    config_with(tmp_path, nvr)
    result = cli("check", "--config", str(tmp_path / "config.yaml"))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


# -- the agent as a process ---------------------------------------------------------------------


def test_the_running_agent_reports_the_recorders_footage_and_gaps(
    tmp_path: Path, broker: Broker
) -> None:
    nvr = tmp_path / "nvr"
    for i in (0, 1, 2, 10):
        recorder_file(nvr, T0 + i * 2 * S)
    clip = write_h264(tmp_path / "stream.mp4", 6, width=640, height=360)
    config = write_config(
        tmp_path / "config.yaml",
        broker_url=broker.url,
        cameras=[
            {
                "id": "front",
                "url": str(clip),
                "analysis_interval": "1s",
                "recording": {"mode": "directory", "path": str(nvr), "pattern": PATTERN},
            }
        ],
    )
    agent = AgentProcess(config)
    with Watcher.for_broker(broker, HEALTH) as watch:
        agent.start()
        try:
            message = watch.wait_for(
                lambda m: (
                    m.json()["footage"] is not None and m.json()["footage"]["gaps"]["count"] == 1
                ),
                timeout=30,
            )
        finally:
            code = agent.terminate()[0] if agent.proc and agent.proc.poll() is None else None
            agent.close()
    health = message.json()
    assert_valid("health", health)
    assert health["footage"]["oldest"] == "2024-05-01T10:00:00.000Z"
    assert health["footage"]["newest"] == "2024-05-01T10:00:22.000Z"
    assert health["footage"]["gaps"] == {"count": 1, "seconds": 14.0}
    assert "recording_stopped" in health["problems"]  # the files are from 2024
    assert code == 0, agent.log
    assert "Traceback" not in agent.log
    assert stat.S_IMODE(nvr.stat().st_mode) == 0o755


def test_names_at_the_edge_of_the_calendar_are_timed_by_their_mtime(
    tmp_path: Path, index: SegmentIndex, amsterdam: None
) -> None:
    """Found by fuzzing (bench/fuzz/directory.py): a file named for year 1 or 9999 made
    every scan of the folder fail (its start in UTC lies outside what datetime holds), so
    no new footage was indexed again."""
    nvr = tmp_path / "nvr"
    named = recorder_file(nvr, T0)
    end = (T0 + 60 * S).timestamp()
    edges = [nvr / "00010101_000000.mp4", nvr / "99991231_235959.mp4"]
    for path in edges:
        write_h264(path, 3, width=320, height=180)
        os.utime(path, (end, end))

    result = directory.DirectoryScanner(
        "front", DirectorySettings(mode="directory", path=nvr, pattern=PATTERN), index
    ).scan()

    assert result.added == 3
    assert sorted((s.start, s.end, s.path) for s in index.segments("front")) == [
        (T0, T0 + 2 * S, named),
        *((T0 + 57 * S, T0 + 60 * S, path) for path in edges),
    ]
