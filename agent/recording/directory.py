"""Recording mode `directory`: the owner's own recorder writes video files into a folder;
the agent indexes them and never writes, renames or deletes anything there.

A file's start comes from its name (`recording.pattern`, strftime fields, local time
unless the pattern has %z), its end from the container's duration, and its SHA-256 is
taken once, when the file is finished. A rescan compares path, size and mtime only, so
it costs one stat per file when nothing changed. Files the recorder rotates away leave
the index (unless a hold keeps them: then they are 'missing'); a file whose bytes change
after indexing is 'altered'. Holes between consecutive files are gap rows.

This module is the folder scan; what a single file's name and container say is
recorder_files.py.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from agent.config import DirectorySettings
from agent.recording import retention
from agent.recording.index import FileStamp, HashCancelled, SegmentIndex, sha256_file
from agent.recording.plain_file import describe_link
from agent.recording.recorder_files import (
    NotAVideo,
    _suffix,
    container_seconds,
    gaps_between,
    start_from_name,
)

log = logging.getLogger(__name__)

GAP_REASON = "recorder_gap"
# A recorder writes a file continuously; ten seconds without a change means it is done
# (or stalled, and then what is there is all there will be).
STABLE_AFTER_S = 10.0
# recording_stopped when the newest file is older than this many typical file lengths plus
# the slack: one length because some recorders move a file in only once it is complete,
# one more for a file that ends late, and the slack covers the scan interval, the
# stability wait and a recorder's start-up.
STOPPED_AFTER_FILES = 3
STOPPED_SLACK_S = 60.0
# The typical file length before one has been measured: NVRs cut files of 1 to 60 minutes.
DEFAULT_FILE_S = 15 * 60.0
# The typical length is the median of this many newest files: robust to a short last file.
TYPICAL_OF_NEWEST = 20


class _Stat(NamedTuple):
    """What a scan compares: a tuple, since a scan makes one per file in the folder."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Stat:
        return cls(st.st_size, st.st_mtime_ns)

    @property
    def mtime(self) -> datetime:
        return _moment(self.mtime_ns)


def _moment(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


@dataclass(frozen=True)
class ScanResult:
    """What one pass over the folder changed; `pending` files are still being written."""

    added: int = 0
    removed: int = 0
    missing: int = 0
    altered: int = 0
    pending: int = 0
    skipped: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.missing or self.altered)


class DirectoryScanner:
    """Keeps one camera's index rows in step with the files in its recorder's folder."""

    def __init__(self, camera: str, settings: DirectorySettings, index: SegmentIndex) -> None:
        self.camera = camera
        self.folder = settings.path
        self.pattern = settings.pattern
        self._index = index
        self._depth = settings.pattern.count("/")
        self._suffix = _suffix(settings.pattern)
        # Paths are plain strings here (as os.scandir gives them): a scan of a week of
        # one-minute files handles 10,000 of them, and Path objects cost tenfold.
        # Files seen still changing, by their stat at that scan.
        self._pending: dict[str, _Stat] = {}
        # Files that are not video (or not readable), so they are not opened every scan.
        self._rejected: dict[str, _Stat] = {}
        self._unnamed: set[str] = set()
        # Indexed files whose changed stat was checked against their hash, at that stat.
        self._verified: dict[int, _Stat] = {}
        self._folder_problem: str | None = None
        self._unreadable: set[str] = set()
        # Symbolic links found in the folder (skipped), so each is named only once.
        self._links: set[str] = set()
        self._looked_unmounted = False
        self._scanned = False
        self.newest_write: datetime | None = None
        self.typical_s = DEFAULT_FILE_S

    # -- health -------------------------------------------------------------------------

    @property
    def readable(self) -> bool:
        return self._folder_problem is None

    def stopped(self, now: datetime) -> bool:
        """True when the recorder has written nothing into the folder for too long (or the
        folder cannot be read, or holds no recording); False before the first scan."""
        if not self._scanned:
            return False
        if not self.readable or self.newest_write is None:
            return True
        limit = STOPPED_AFTER_FILES * self.typical_s + STOPPED_SLACK_S
        return (now - self.newest_write).total_seconds() > limit

    # -- scanning -----------------------------------------------------------------------

    def scan(self, now: datetime | None = None, stop: threading.Event | None = None) -> ScanResult:
        """One pass: index finished new files, drop rotated ones, check changed ones."""
        now = now or datetime.now(UTC)
        try:
            files, root_empty = self._list()
        except OSError as exc:
            problem = f"cannot read recording.path {self.folder}: {exc.strerror or exc}"
            if problem != self._folder_problem:
                log.warning(
                    "camera %s: %s; its footage is not indexed until the agent can read it "
                    "(see docs/service.md for the service's access)",
                    self.camera,
                    problem,
                )
            self._folder_problem = problem
            self._scanned = True
            return ScanResult()
        if self._folder_problem is not None:
            log.info("camera %s: %s can be read again", self.camera, self.folder)
            self._folder_problem = None
        try:
            result = self._reconcile(files, root_empty, now, stop)
        except HashCancelled:
            return ScanResult()
        self._scanned = True
        return result

    def _list(self) -> tuple[dict[str, _Stat], bool]:
        """Candidate files at the pattern's depth, and whether the folder is bare; raises
        OSError if the folder itself cannot be listed. Sub-folders that cannot be listed
        go to `_unreadable`, and their files are neither indexed nor taken as gone."""
        files: dict[str, _Stat] = {}
        unreadable: set[str] = set()
        root = str(self.folder)

        def walk(folder: str, depth: int) -> int:
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as exc:
                if folder == root:
                    raise
                unreadable.add(folder)
                if folder not in self._unreadable:
                    log.warning("camera %s: cannot read %s: %s", self.camera, folder, exc)
                return 0
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # hidden: a recorder's temporary file, or the OS's
                try:
                    if entry.is_symlink():
                        links.add(entry.path)
                        continue
                    if depth < self._depth:
                        if entry.is_dir(follow_symlinks=False):
                            walk(entry.path, depth + 1)
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if self._suffix and not entry.name.lower().endswith(self._suffix):
                        continue
                    files[entry.path] = _Stat.of(entry.stat(follow_symlinks=False))
                except OSError:
                    continue  # gone between listing and stat: the next scan settles it
            return len(entries)

        links: set[str] = set()
        root_entries = walk(root, 0)
        self._unreadable = unreadable
        self._warn_links(links)
        return files, root_entries == 0

    def _warn_links(self, links: set[str]) -> None:
        """Symbolic links in the folder are never followed: one could lead to another
        camera's file or anything the agent may read (plain_file.py). Each is named once."""
        for link in sorted(links - self._links):
            log.warning(
                "camera %s: skipping %s in the recorder's folder: a symbolic link (to %s); "
                "the agent reads only files and folders inside recording.path, not links",
                self.camera,
                link,
                describe_link(link),
            )
        self._links = links

    def _reconcile(
        self,
        files: dict[str, _Stat],
        root_empty: bool,
        now: datetime,
        stop: threading.Event | None,
    ) -> ScanResult:
        known = self._index.external_stamps(self.camera)
        removed, missing = self._settle_gone(files, known, root_empty, now)
        altered = self._check_changed(files, known, stop)
        added, pending, skipped = self._add_new(files, known, now, stop)
        newest_ns = max(
            (st.mtime_ns for path, st in files.items() if path not in self._rejected),
            default=None,
        )
        self.newest_write = None if newest_ns is None else _moment(newest_ns)
        result = ScanResult(added, removed, missing, altered, pending, skipped)
        if result.changed or not self._scanned:
            gaps = self._index.rederive_gaps(self.camera, GAP_REASON, gaps_between)
            self._measure_typical()
            if result.changed:
                log.info(
                    "camera %s: %s: %d new file(s) indexed, %d gone, %d altered; "
                    "%d gap(s) between files",
                    self.camera,
                    self.folder,
                    added,
                    removed + missing,
                    altered,
                    gaps,
                )
        return result

    def _settle_gone(
        self,
        files: dict[str, _Stat],
        known: dict[str, FileStamp],
        root_empty: bool,
        now: datetime,
    ) -> tuple[int, int]:
        """Files no longer in the folder leave the index, or are 'missing' if held."""
        hidden = tuple(folder + os.sep for folder in self._unreadable)
        gone = [
            stamp
            for path, stamp in known.items()
            if path not in files and not (hidden and path.startswith(hidden))
        ]
        present = [stamp for stamp in gone if stamp.state != "missing"]
        if root_empty and present:
            # Every file vanished at once and the folder is bare: far more likely an
            # unmounted disk than a recorder that rotated everything. Keep the index.
            if not self._looked_unmounted:
                log.warning(
                    "camera %s: %s is empty but %d file(s) were indexed from it; "
                    "is the recorder's disk unmounted? The index is kept as it was",
                    self.camera,
                    self.folder,
                    len(present),
                )
            self._looked_unmounted = True
            return 0, 0
        self._looked_unmounted = False
        holds = self._index.holds(now) if gone else []
        removed = missing = 0
        for stamp in gone:
            self._verified.pop(stamp.id, None)
            segment = self._index.segment(stamp.id)
            held = retention.is_held(segment, holds, now)
            if held and segment.state != "missing":
                self._index.mark(segment.id, "missing")
                missing += 1
                log.warning(
                    "camera %s: %s is gone from the recorder's folder although a hold keeps "
                    "footage from %s; marked missing",
                    self.camera,
                    segment.path,
                    segment.start.isoformat(),
                )
            elif not held:
                self._index.remove(segment.id)
                removed += 1
                log.info(
                    "camera %s: %s is gone (rotated by the owner's recorder); no longer indexed",
                    self.camera,
                    segment.path,
                )
        return removed, missing

    def _check_changed(
        self, files: dict[str, _Stat], known: dict[str, FileStamp], stop: threading.Event | None
    ) -> int:
        """Re-hash indexed files whose size or mtime changed (or that came back)."""
        altered = 0
        for path, stamp in known.items():
            stat = files.get(path)
            if stat is None:
                continue
            unchanged = stat == (stamp.bytes, stamp.mtime_ns)
            if (unchanged and stamp.state != "missing") or self._verified.get(stamp.id) == stat:
                continue
            result = self._index.verify(stamp.id, lambda p: sha256_file(p, stop))
            self._verified[stamp.id] = stat
            if result == "ok":
                self._index.note_mtime(stamp.id, stat.mtime_ns)
                if stamp.state != "closed":
                    log.info("camera %s: %s is back, unchanged", self.camera, path)
            elif result == "altered" and stamp.state != "altered":
                altered += 1
                log.warning(
                    "camera %s: %s changed after it was indexed (its SHA-256 differs); "
                    "marked altered, it will not be exported",
                    self.camera,
                    path,
                )
        return altered

    def _add_new(
        self,
        files: dict[str, _Stat],
        known: dict[str, FileStamp],
        now: datetime,
        stop: threading.Event | None,
    ) -> tuple[int, int, int]:
        for gone in [p for p in self._pending if p not in files]:
            del self._pending[gone]
        for gone in [p for p in self._rejected if p not in files]:
            del self._rejected[gone]
        fresh = {Path(p): st for p, st in files.items() if p not in known}
        named = {
            p: start_from_name(p.relative_to(self.folder).as_posix(), self.pattern, st.mtime)
            for p, st in fresh.items()
        }
        # Where the next new file starts bounds one whose container does not say its length.
        starts = sorted(s for s in named.values() if s is not None)
        added = pending = skipped = 0
        for path in sorted(fresh, key=lambda p: (named[p] or fresh[p].mtime, p)):
            if stop is not None and stop.is_set():
                break
            key, stat = str(path), fresh[path]
            if self._rejected.get(key) == stat:
                skipped += 1
                continue
            if not self._stable(key, stat, now):
                pending += 1
                continue
            span = self._span(path, stat, named[path], starts)
            if span is None:
                skipped += 1
                continue
            try:
                size, digest = sha256_file(path, stop)
                after = _Stat.of(path.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue  # rotated away while we looked: nothing to index
            except OSError as exc:
                self._reject(key, stat, f"cannot read it ({exc.strerror or exc})")
                skipped += 1
                continue
            if after != stat or size != stat.size:
                self._pending[key] = after  # written to while hashing: not finished
                pending += 1
                continue
            self._pending.pop(key, None)
            self._rejected.pop(key, None)
            start, end = span
            if self._index.add_external(self.camera, path, start, end, size, digest, stat.mtime_ns):
                added += 1
                log.debug("camera %s: indexed %s (%s to %s)", self.camera, path, start, end)
        return added, pending, skipped

    def _stable(self, key: str, stat: _Stat, now: datetime) -> bool:
        """Finished: not modified for STABLE_AFTER_S and unchanged since the last scan."""
        recent = (now - stat.mtime).total_seconds() < STABLE_AFTER_S
        grew = key in self._pending and self._pending[key] != stat
        if recent or grew:
            self._pending[key] = stat
            return False
        return True

    def _span(
        self, path: Path, stat: _Stat, named: datetime | None, starts: Sequence[datetime]
    ) -> tuple[datetime, datetime] | None:
        """(start, end) of a finished file, or None (logged once) if it is not video."""
        try:
            seconds = container_seconds(path)
        except NotAVideo as exc:
            self._reject(str(path), stat, str(exc))
            return None
        length = timedelta(seconds=seconds) if seconds is not None else None
        if named is None:
            # The name does not say when: the recorder last wrote it at its mtime.
            if str(path) not in self._unnamed:
                self._unnamed.add(str(path))
                log.debug(
                    "camera %s: %s does not match the pattern %r; timed by its mtime",
                    self.camera,
                    path,
                    self.pattern,
                )
            end = stat.mtime
            return (end - length if length is not None else end), end
        if length is not None:
            return named, named + length
        # No duration in the container: until the next file starts or the file was last
        # written, whichever comes first.
        later = [s.start for s in self._index.segments(self.camera, named, origin="external")]
        following = min((s for s in (*starts, *later) if s > named), default=None)
        bounds = [t for t in (following, stat.mtime) if t is not None and t >= named]
        return named, min(bounds, default=named)

    def _reject(self, key: str, stat: _Stat, why: str) -> None:
        self._pending.pop(key, None)
        if key not in self._rejected:
            log.warning(
                "camera %s: skipping %s in the recorder's folder: %s", self.camera, key, why
            )
        self._rejected[key] = stat

    def _measure_typical(self) -> None:
        newest = self._index.newest(self.camera, TYPICAL_OF_NEWEST, origin="external")
        lengths = [
            (s.end - s.start).total_seconds()
            for s in newest
            if s.end is not None and s.end > s.start
        ]
        self.typical_s = statistics.median(lengths) if lengths else DEFAULT_FILE_S
