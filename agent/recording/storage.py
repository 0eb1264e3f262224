"""All cameras' recordings on one disk: the index, one recorder per camera, pruning by
rule, and what the health reports say about it."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime

from agent.config import AgentConfig, RecordSettings
from agent.recording import retention
from agent.recording.index import SegmentIndex, sha256_file
from agent.recording.recorder import CameraRecorder
from agent.recording.segments import end_of_segment

log = logging.getLogger(__name__)

INDEX_FILE = "footage.sqlite"
# How often pruning runs: a few SQL queries and a statvfs. Ten seconds of 4 Mbit/s
# video is 5 MB, nothing next to a free-space floor of a few GB.
PRUNE_EVERY_S = 10.0


class Storage:
    def __init__(self, config: AgentConfig) -> None:
        self._config = config
        self._root = config.footage_dir
        self._root.mkdir(parents=True, exist_ok=True)
        self.index = SegmentIndex(config.agent.data_dir / INDEX_FILE)
        recovered = self.index.recover(sha256_file, end_of_segment)
        for segment in recovered:
            log.warning(
                "camera %s: segment %s was cut off by the last stop; kept as %s",
                segment.camera,
                segment.path,
                segment.state,
            )
        self.recorders: dict[str, CameraRecorder] = {}
        self._retention: dict[str, float] = {}
        for camera in config.cameras:
            settings = camera.recording
            if isinstance(settings, RecordSettings):
                self.recorders[camera.id] = CameraRecorder(
                    camera.id, self._root, self.index, settings.segment
                )
                self._retention[camera.id] = settings.retention
            else:
                log.warning(
                    "camera %s: recording mode 'directory' is not built yet; nothing is "
                    "recorded or indexed for this camera",
                    camera.id,
                )
        self._next_prune = 0.0
        self._storage_low = False
        self._footage: dict[str, dict[str, object]] = {}

    def tick(self, now_mono: float) -> None:
        """Prune when due (called from the main loop)."""
        if now_mono < self._next_prune:
            return
        self._next_prune = now_mono + PRUNE_EVERY_S
        self.prune()

    def free_bytes(self) -> int:
        return shutil.disk_usage(self._root).free

    def prune(self) -> int:
        now = datetime.now(UTC)
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
            )
            freed += retention.prune(self.index, old)
        storage = self._config.storage
        segments = self.index.segments()
        free = self.free_bytes()
        plan = retention.plan_pruning(
            segments,
            holds,
            now,
            retention_s=float("inf"),
            max_bytes=storage.max_bytes,
            free_bytes=free,
            min_free_bytes=storage.min_free_bytes,
        )
        freed += retention.prune(self.index, plan)
        kept = sum(s.bytes for s in self.index.segments())
        free = self.free_bytes()
        # Low: space, not age, decided what was removed (the owner keeps less than the
        # retention asked for), or even pruning cannot meet the budget or the floor.
        low = bool(plan) or free < storage.min_free_bytes or kept > storage.max_bytes
        if low and not self._storage_low:
            log.warning(
                "storage low: %d bytes free (floor %d), %d bytes of footage (budget %d); "
                "the oldest footage goes first, held footage never",
                free,
                storage.min_free_bytes,
                kept,
                storage.max_bytes,
            )
        elif self._storage_low and not low:
            log.info("storage no longer low")
        self._storage_low = low
        self._summarise()
        return freed

    def _summarise(self) -> None:
        """The footage objects of the health reports, refreshed with each pruning pass
        rather than queried on every publisher tick."""
        now = datetime.now(UTC)
        for camera in self.recorders:
            days = retention.effective_retention_days(self.index.segments(camera), now)
            self._footage[camera] = self.index.summary(camera).as_payload(days)

    def report(
        self, camera: str, receiving: bool
    ) -> tuple[dict[str, object] | None, tuple[str, ...]]:
        """The health `footage` object of a camera and the recording's problems."""
        recorder = self.recorders.get(camera)
        if recorder is None:
            return None, ()
        problems: list[str] = []
        if self._storage_low:
            problems.append("storage_low")
        if recorder.stalled(receiving):
            problems.append("recording_stopped")
        return self._footage.get(camera), tuple(problems)

    def close(self) -> None:
        self.index.close_db()
