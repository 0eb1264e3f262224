"""All cameras' recordings on one disk: the index, one recorder per camera, pruning by
rule, and what the health reports say about it. Cameras whose owner's recorder writes
the files (mode `directory`) are indexed by a scanner and never pruned.

Its threads (the index rebuild, the folder scan) run from start() until the agent's stop
event is set; close() then waits for them and closes the index."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.clock_step import BootTime, ClockWatch, boot_id
from agent.config import (
    AgentConfig,
    DirectorySettings,
    OnvifRecorderSettings,
    PlaybackSettings,
    RecordSettings,
)
from agent.errors import AgentError
from agent.recording import retention
from agent.recording.directory import DirectoryScanner
from agent.recording.index import (
    ClockRow,
    FootageIndexError,
    HashCancelled,
    SegmentIndex,
    sha256_file,
)
from agent.recording.playback import PlaybackSource
from agent.recording.rebuild import HoldToKeep, has_footage, rebuild
from agent.recording.recorder import CameraRecorder
from agent.recording.recorder_source import RecorderSource
from agent.recording.segments import end_of_segment
from agent.space_reserve import SpaceReserve
from agent.state_files import MovedAside, open_or_move_aside

if TYPE_CHECKING:
    from agent.onvif.camera_clocks import CameraClockReading

log = logging.getLogger(__name__)

INDEX_FILE = "footage.sqlite"
# How often pruning runs: a few SQL queries and a statvfs. Ten seconds of 4 Mbit/s
# video is 5 MB, nothing next to a free-space floor of a few GB.
PRUNE_EVERY_S = 10.0
# How often the owner's recorder folders are scanned. Recorders cut files of minutes, so
# 30 s keeps `newest` current to well within a file, and a pass that finds nothing new
# is one stat per file.
SCAN_EVERY_S = 30.0
# A stop waits this long for a scan; hashing checks the stop between 1 MiB chunks.
SCAN_JOIN_S = 2.0
# Free space pruning keeps for the segments being written, whatever storage.min_free_bytes
# says: each recording camera's next segment (sized as its biggest recent one), and at
# least this. One is enough because a recorder asks for pruning at every keyframe once
# less is free (CameraRecorder), and a segment holds at least one keyframe interval.
MIN_ROOM_BYTES = 1024 * 1024
ROOM_SEGMENTS = 1
# Recent segments of a camera whose size says how big its next one will be.
SIZE_SAMPLE = 3


# Told (low, free bytes, bytes of footage) when storage becomes low or no longer is.
StorageLowChange = Callable[[bool, int, int], None]
# The holds of accepted requests, which a rebuilt index must have again.
HoldSource = Callable[[], list[HoldToKeep]]


class Storage:
    def __init__(
        self,
        config: AgentConfig,
        *,
        on_low_change: StorageLowChange | None = None,
        clock_watch: ClockWatch | None = None,
        holds: HoldSource = list,
        reserve: SpaceReserve | None = None,
    ) -> None:
        self._config = config
        self.clock_watch = clock_watch or ClockWatch()
        self._boot_id = boot_id()
        self._on_low_change = on_low_change
        self._root = config.footage_dir
        self._root.mkdir(parents=True, exist_ok=True)
        # Pruning runs in the main loop and, when a write meets a full disk, at once in that
        # camera's thread (make_room).
        self._prune_lock = threading.RLock()
        # The state directory's space reserve counts as taken on the footage's disk when the
        # two share one: footage must never use what the state writes were promised.
        self._reserve = reserve
        self._shares_disk = reserve is not None and _same_disk(self._root, config.agent.data_dir)
        self._room_bytes = MIN_ROOM_BYTES
        index_path = config.agent.data_dir / INDEX_FILE
        missing = not index_path.exists()
        # A broken index is kept aside and a new one rebuilt from the files; a missing one
        # while footage exists is rebuilt too (else that footage is never listed, exported
        # or pruned again). docs/service.md, "State files".
        self.index, moved = open_or_move_aside(index_path, SegmentIndex, "the footage index")
        if moved is None and missing and has_footage(self._root):
            log.error(
                "the footage index %s is missing but %s holds footage; rebuilding it from "
                "the files",
                index_path,
                self._root,
            )
            moved = MovedAside(INDEX_FILE, None, "missing")
        # Told to the audit log by the caller, once it is open.
        self.index_reset: MovedAside | None = moved
        self._rebuild_from = datetime.now(UTC)
        self._holds = holds
        self._rebuilding = threading.Event()
        if moved is not None:
            self._rebuilding.set()
        recovered = self.index.recover(sha256_file, end_of_segment)
        for segment in recovered:
            log.warning(
                "camera %s: segment %s was cut off by the last stop; kept as %s",
                segment.camera,
                segment.path,
                segment.state,
            )
        self.recorders: dict[str, CameraRecorder] = {}
        self.scanners: dict[str, DirectoryScanner] = {}
        # Cameras whose footage the owner's recorder holds: by ONVIF (recorder_source.py)
        # or the maker's playback URL (playback.py).
        self.nvr_sources: dict[str, RecorderSource | PlaybackSource] = {}
        self._retention: dict[str, float] = {}
        for camera in config.cameras:
            settings = camera.recording
            if isinstance(settings, RecordSettings):
                self.recorders[camera.id] = CameraRecorder(
                    camera.id,
                    self._root,
                    self.index,
                    settings.segment,
                    self.clock_watch,
                    make_room=self.make_room,
                    has_room=self.has_room,
                )
                self._retention[camera.id] = settings.retention
            elif isinstance(settings, DirectorySettings):
                self.scanners[camera.id] = DirectoryScanner(camera.id, settings, self.index)
            elif isinstance(settings, OnvifRecorderSettings):
                self.nvr_sources[camera.id] = RecorderSource(
                    camera, self.index, self._root, now=lambda: datetime.now(UTC)
                )
            elif isinstance(settings, PlaybackSettings):
                self.nvr_sources[camera.id] = PlaybackSource(camera, self.index, self._root)
        self._forget_unwatched()
        self._next_prune = 0.0
        self._steps_seen = self.clock_watch.steps
        self._next_scan = 0.0
        self._storage_low = False
        self._footage: dict[str, dict[str, object]] = {}
        self._stop: threading.Event | None = None  # the agent's, given to start()
        self._scan_due = threading.Event()
        self._scan_thread: threading.Thread | None = None
        self._rebuild_thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> None:
        """Start the rebuild (when the index is being rebuilt) and the folder scans; both
        end when `stop` is set."""
        self._stop = stop
        if self._rebuilding.is_set():
            # Hashing every file may take hours on a full disk: recording and health go on
            # meanwhile, and pruning waits (it must see all footage and every hold first).
            self._rebuild_thread = threading.Thread(
                target=self._rebuild, args=(stop,), name="footage-rebuild", daemon=True
            )
            self._rebuild_thread.start()
        if self.scanners or self.nvr_sources:
            # The main loop must never wait for a scan: the first one may hash hundreds of
            # GB. tick() says when one is due.
            self._scan_thread = threading.Thread(
                target=self._scan_loop, args=(stop,), name="footage-scan", daemon=True
            )
            self._scan_thread.start()

    @property
    def rebuilding(self) -> bool:
        return self._rebuilding.is_set()

    def _rebuild(self, stop: threading.Event) -> None:
        try:
            done = rebuild(
                self.index,
                self._root,
                self._holds(),
                before=self._rebuild_from,
                stop=stop,
            )
        except HashCancelled:
            log.warning("footage rebuild stopped with the agent; the next start goes on")
            return
        except Exception:
            log.exception("footage rebuild failed; `camera-agent footage rebuild` retries it")
            return
        log.warning(
            "footage index rebuilt from %s: %d segment(s), %.1f MB, re-hashed and marked "
            "rebuilt; %d hold(s) from the request store, %d gap(s), %d file(s) skipped",
            self._root,
            done.segments,
            done.bytes / 1e6,
            done.holds,
            done.gaps,
            done.skipped,
        )
        self._rebuilding.clear()
        self._summarise()

    def _forget_unwatched(self) -> None:
        """Drop index rows of owner's files that no scanner watches any more (the camera
        left directory mode or the config); held ones stay for the request that holds them."""
        now = datetime.now(UTC)
        holds = self.index.holds(now)
        for segment in self.index.segments(origin="external"):
            if segment.camera in self.scanners or retention.is_held(segment, holds, now):
                continue
            if segment.camera in self.nvr_sources:
                continue  # a window fetched from the owner's recorder: kept with its request
            self.index.remove(segment.id)
            log.info(
                "camera %s: no longer indexing %s (the camera is not in recording mode "
                "'directory' any more)",
                segment.camera,
                segment.path,
            )

    def tick(self, now_mono: float) -> None:
        """Scan and prune when due (called from the main loop; scans run on their own
        thread, started by start())."""
        if (self.scanners or self.nvr_sources) and now_mono >= self._next_scan:
            self._next_scan = now_mono + SCAN_EVERY_S
            self._scan_due.set()
        steps = self.clock_watch.steps
        # A released state reserve (agent/space_reserve.py) wants its space back now.
        wanted = self._reserve is not None and not self._reserve.held
        if now_mono < self._next_prune and steps == self._steps_seen and not wanted:
            return
        # After a wall-clock step at once: the footage summary's times (`newest`) are on
        # the old clock until they are read again.
        self._steps_seen = steps
        self._next_prune = now_mono + PRUNE_EVERY_S
        if self._rebuilding.is_set():
            self._summarise()  # what is rebuilt so far shows in health; pruning waits
            return
        self.prune()

    def scan(self) -> None:
        """One pass over every directory-mode camera's folder (the scan thread, tests)."""
        stop = self._stop
        changed = False
        for camera, scanner in self.scanners.items():
            if stop is not None and stop.is_set():
                return
            try:
                changed |= scanner.scan(stop=stop).changed
            except FootageIndexError as exc:
                log.warning("camera %s: scanning %s: %s", camera, scanner.folder, exc)
        if changed:
            self._summarise()  # health shows new files now, not at the next pruning pass
        for source in self.nvr_sources.values():
            if stop is not None and stop.is_set():
                return
            source.poll()

    def oldest_footage(self) -> datetime | None:
        """Where the oldest footage of any camera begins: indexed, or on an ONVIF recorder."""
        found = [self.index.oldest_start(), *(s.oldest() for s in self.nvr_sources.values())]
        return min((t for t in found if t is not None), default=None)

    def fetch_from_recorders(
        self, cameras: Sequence[str], start: datetime, end: datetime, stop: threading.Event
    ) -> None:
        """Fetch the window of every camera among `cameras` whose footage the owner's ONVIF
        recorder holds into the index, so the export finds it (the request desk, before an
        export). FetchError names the first that failed."""
        for camera in cameras:
            source = self.nvr_sources.get(camera)
            if source is not None:
                source.fetch(start, end, stop)

    def _scan_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._scan_due.wait()
            self._scan_due.clear()
            if stop.is_set():
                return
            try:
                self.scan()
            except Exception:
                log.exception("footage scan failed; trying again at the next one")

    def free_bytes(self) -> int:
        """Free space on the footage's disk that footage may use (not the state reserve's)."""
        free = shutil.disk_usage(self._root).free
        if self._shares_disk and self._reserve is not None:
            free -= self._reserve.missing_bytes()
        return max(0, free)

    def has_room(self) -> bool:
        """True when a camera stopped by a full disk may record again (its threads ask)."""
        try:
            return self.free_bytes() >= self._room_bytes
        except OSError:
            return False

    def make_room(self) -> None:
        """Footage is short of space (a write failed, or the next may): prune now, not at
        the next tick. Not while the index is being rebuilt: pruning waits for it (the
        camera stays storage_failed until then)."""
        if self._rebuilding.is_set():
            return
        try:
            self.prune()
        except Exception:  # called from a camera's thread, which must go on
            log.exception("pruning after a full disk failed; trying again at the next tick")

    def _room_for_next_segments(self) -> int:
        room = 0
        for camera in self.recorders:
            recent = self.index.newest(camera, SIZE_SAMPLE, origin="recorded")
            room += ROOM_SEGMENTS * max((s.bytes for s in recent), default=0)
        return max(MIN_ROOM_BYTES, room)

    def keep_clock_reading(self, reading: CameraClockReading) -> None:
        """Keep a camera's clock reading with its footage, for evidence packages."""
        row = ClockRow(
            reading.camera, reading.at, reading.offset_s, reading.uncertainty_s, reading.source
        )
        try:
            self.index.add_clock_reading(row)
        except AgentError as exc:  # health still says it; only packages lack it
            log.error("camera %s: its clock reading could not be kept: %s", reading.camera, exc)

    def prune(self) -> int:
        with self._prune_lock:
            return self._prune()

    def _prune(self) -> int:
        self.clock_watch.check()  # a step since the last look is seen before ages are
        now = datetime.now(UTC)
        boot = BootTime.now(self._boot_id)
        holds = self.index.holds(now)
        freed = 0
        for camera, keep_s in self._retention.items():
            old = retention.plan_pruning(
                self.index.segments(camera),
                holds,
                now,
                retention_s=keep_s,
                max_bytes=2**62,
                free_bytes=2**62,
                min_free_bytes=0,
                boot=boot,
                synced=self.clock_watch.synced,
            )
            freed += retention.prune(self.index, old)
        storage = self._config.storage
        # Only the agent's own segments: the owner's files are never the agent's to prune.
        segments = self.index.segments(origin="recorded")
        free = self.free_bytes()
        self._room_bytes = self._room_for_next_segments()
        floor = max(storage.min_free_bytes, self._room_bytes)
        plan = retention.plan_pruning(
            segments,
            holds,
            now,
            retention_s=float("inf"),
            max_bytes=storage.max_bytes,
            free_bytes=free,
            min_free_bytes=floor,
            boot=boot,
            synced=self.clock_watch.synced,
        )
        freed += retention.prune(self.index, plan)
        self.index.prune_clock_readings()  # the cameras' clocks, with their footage
        kept = sum(s.bytes for s in self.index.segments(origin="recorded"))
        free = self.free_bytes()
        if self._reserve is not None:
            # Pruning may have made the room the released reserve waits for.
            self._reserve.tick()
        # Low: space, not age, decided what was removed (the owner keeps less than the
        # retention asked for), or even pruning cannot meet the budget or the floor.
        # And the state directory's disk is full when its space reserve is spent.
        low = (
            bool(plan)
            or free < floor
            or kept > storage.max_bytes
            or (self._reserve is not None and not self._reserve.held)
        )
        if low and not self._storage_low:
            log.warning(
                "storage low: %d bytes free (floor %d: storage.min_free_bytes, or room for "
                "the next segments), %d bytes of footage (budget %d); the oldest footage goes "
                "first, held footage never",
                free,
                floor,
                kept,
                storage.max_bytes,
            )
        elif self._storage_low and not low:
            log.info("storage no longer low")
        if low != self._storage_low and self._on_low_change is not None:
            self._on_low_change(low, free, kept)
        self._storage_low = low
        self._summarise()
        return freed

    def _summarise(self) -> None:
        """The footage objects of the health reports, refreshed with each pruning pass
        rather than queried on every publisher tick."""
        now = datetime.now(UTC)
        for camera in [*self.recorders, *self.scanners]:
            days = retention.effective_retention_days(self.index.segments(camera), now)
            self._footage[camera] = self.index.summary(camera, now).as_payload(days)

    def report(
        self, camera: str, receiving: bool
    ) -> tuple[dict[str, object] | None, tuple[str, ...]]:
        """The health `footage` object of a camera and the recording's problems."""
        source = self.nvr_sources.get(camera)
        if source is not None:
            return source.report(receiving)
        scanner = self.scanners.get(camera)
        if scanner is not None:
            # The owner's recorder keeps its files on its own disk: storage_low is not ours
            # to report, a recorder that stopped writing while the camera streams is.
            stopped = receiving and scanner.stopped(datetime.now(UTC))
            return self._footage.get(camera), ("recording_stopped",) if stopped else ()
        recorder = self.recorders.get(camera)
        if recorder is None:
            return None, ()
        problems: list[str] = []
        if self._storage_low:
            problems.append("storage_low")
        if recorder.storage_failed:
            # Says why the recording stopped, and that it resumes by itself once there is
            # room: recording_stopped's advice (check the recorder, restart) does not apply.
            problems.append("storage_failed")
        elif recorder.stalled(receiving):
            problems.append("recording_stopped")
        return self._footage.get(camera), tuple(problems)

    def packet_counts(self, camera: str) -> dict[str, int] | None:
        """The health `stream.packets` object of a camera the agent records."""
        recorder = self.recorders.get(camera)
        return recorder.counts.as_payload() if recorder is not None else None

    def close(self) -> None:
        """Once the stop event is set: wait for the rebuild and the scan, close the index."""
        self._scan_due.set()  # a scan thread waiting for its next pass sees the stop
        if self._rebuild_thread is not None:
            self._rebuild_thread.join(SCAN_JOIN_S)
            if self._rebuild_thread.is_alive():
                log.warning("the footage rebuild did not stop within %.0f s", SCAN_JOIN_S)
                return
        if self._scan_thread is not None:
            self._scan_thread.join(SCAN_JOIN_S)
            if self._scan_thread.is_alive():
                # Leave the index open for it: closing under a writer would corrupt nothing
                # but would raise in that thread. The process is exiting anyway.
                log.warning("the footage scan did not stop within %.0f s", SCAN_JOIN_S)
                return
        self.index.close_db()


def _same_disk(one: Path, other: Path) -> bool:
    try:
        return one.stat().st_dev == other.stat().st_dev
    except OSError:
        return True  # unknown: count the reserve, which only makes footage more careful
