"""Counters that must survive restarts: the boot counter `bdseq` and each camera's `seq`."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from agent.errors import AgentError
from agent.space_reserve import OnFull, is_disk_full

log = logging.getLogger(__name__)

STATE_FILE = "counters.json"


class StateError(AgentError):
    """The state directory cannot be used."""


class Counters:
    """bdseq and per-camera seq, written atomically (temp file, fsync, rename) on each change.

    If the file is lost or unreadable the counters restart from the current Unix time,
    which is larger than any count a device reaches, so they still never go back.
    """

    def __init__(self, data_dir: Path, *, on_full: OnFull | None = None) -> None:
        self._path = data_dir / STATE_FILE
        self._lock = threading.Lock()
        # A full disk: release the space reserve (agent.space_reserve) and write again.
        self._on_full = on_full
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create data directory {data_dir}: {exc}") from exc
        self._bdseq, self._seq = self._load()

    def _load(self) -> tuple[int, dict[str, int]]:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return 0, {}
        except OSError as exc:
            raise StateError(f"cannot read {self._path}: {exc}") from exc
        try:
            data = json.loads(raw)
            bdseq = data["bdseq"]
            seq = data["seq"]
            if not isinstance(bdseq, int) or not isinstance(seq, dict):
                raise ValueError("bdseq must be an integer and seq an object")
            if not all(isinstance(k, str) and isinstance(v, int) for k, v in seq.items()):
                raise ValueError("seq values must be integers")
        except (ValueError, KeyError, TypeError) as exc:
            floor = int(time.time())
            kept = self._path.with_name(f"{STATE_FILE}.corrupt-{floor}")
            os.replace(self._path, kept)
            log.error(
                "%s is unreadable (%s); kept it as %s and restarted the counters at %d",
                self._path,
                exc,
                kept.name,
                floor,
            )
            return floor, {"*": floor}
        return bdseq, seq

    def _save(self) -> None:
        payload = json.dumps({"bdseq": self._bdseq, "seq": self._seq}).encode()
        try:
            self._write(payload)
        except OSError as exc:
            if not is_disk_full(exc):
                raise StateError(f"cannot write {self._path}: {exc}") from exc
        else:
            return
        if self._on_full is not None and self._on_full():
            try:
                self._write(payload)
                return
            except OSError as again:
                if not is_disk_full(again):
                    raise StateError(f"cannot write {self._path}: {again}") from again
        try:
            self._overwrite(payload)
        except OSError as last:
            raise StateError(f"cannot write {self._path}: {last}") from last

    def _overwrite(self, payload: bytes) -> None:
        """The last resort on a full disk with no reserve left: rewrite the file in place,
        in the block it already has (a temp file needs a new one). A power cut during it
        can tear the file; a torn file restarts the counters from the current time (see
        the class), so they still never go back."""
        fd = os.open(self._path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.pwrite(fd, payload, 0)
            os.ftruncate(fd, len(payload))
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write(self, payload: bytes) -> None:
        tmp = self._path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a half-written temp file holds the space we lack
            raise

    def next_boot(self) -> int:
        """Count one agent start and return the new bdseq."""
        with self._lock:
            self._bdseq += 1
            try:
                self._save()
            except StateError:
                self._bdseq -= 1  # never used unsaved: a restart would use it again
                raise
            return self._bdseq

    @property
    def bdseq(self) -> int:
        return self._bdseq

    def next_seq(self, camera: str) -> int:
        """The next report number of a camera, persisted before it is used."""
        with self._lock:
            before = self._seq.get(camera)
            value = max(self._seq.get(camera, 0), self._seq.get("*", 0)) + 1
            self._seq[camera] = value
            try:
                self._save()
            except StateError:
                # Never used unsaved: a restart would number another report the same.
                if before is None:
                    del self._seq[camera]
                else:
                    self._seq[camera] = before
                raise
            return value
