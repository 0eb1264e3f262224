"""Reference views on disk: one small grey PNG per camera in the state directory."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import cv2
import numpy as np

from agent.errors import AgentError
from agent.quality import diagnose, metrics
from agent.quality.diagnose import Reference
from agent.quality.metrics import Prepared

log = logging.getLogger(__name__)


class ReferenceImageError(AgentError):
    """A reference image could not be read."""


def from_image(path: Path) -> Reference:
    """A reference from any image file (PNG, JPEG...), e.g. for `probe --reference`."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ReferenceImageError(f"{path}: not a readable image")
    planes = metrics.Planes(np.ascontiguousarray(grey))
    return diagnose.reference_of(metrics.prepare(planes))


class ReferenceStore:
    """`<data_dir>/references/<camera>.png`, written atomically."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "references"

    def path(self, camera: str) -> Path:
        return self._dir / f"{camera}.png"

    def load(self, camera: str) -> Reference | None:
        """The stored reference, or None (no file yet, or an unreadable one set aside)."""
        path = self.path(camera)
        if not path.exists():
            return None
        try:
            return from_image(path)
        except ReferenceImageError as exc:
            kept = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            os.replace(path, kept)
            log.error("camera %s: %s; kept it as %s and taking a new reference", camera, exc, kept)
            return None

    def save(self, camera: str, picture: Prepared) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self.path(camera)
        tmp = path.with_suffix(".tmp.png")
        grey = np.clip(picture.grey, 0, 255).astype(np.uint8)
        if not cv2.imwrite(str(tmp), grey):
            log.error("camera %s: could not write the reference view to %s", camera, tmp)
            return
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        log.info("camera %s: reference view taken (%s)", camera, path)

    def reset(self, camera: str) -> bool:
        """Forget the reference; True if there was one."""
        try:
            self.path(camera).unlink()
        except FileNotFoundError:
            return False
        return True
