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
from agent.quality.diagnose import Lighting, Reference
from agent.quality.metrics import Prepared

log = logging.getLogger(__name__)


LIGHTINGS: tuple[Lighting, ...] = ("colour", "infrared")


class ReferenceImageError(AgentError):
    """A reference image could not be read."""


def from_image(path: Path) -> tuple[Lighting, Reference]:
    """A reference from any image file (PNG, JPEG...), e.g. for `probe --reference`,
    with the lighting it shows (a grey image is an infrared view)."""
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        raise ReferenceImageError(f"{path}: not a readable image")
    yuv = cv2.cvtColor(picture, cv2.COLOR_BGR2YUV_I420)
    height, width = picture.shape[:2]
    y = yuv[:height]
    chroma = yuv[height:].reshape(-1)
    quarter = (height // 2) * (width // 2)
    u = np.asarray(chroma[:quarter], np.uint8).reshape(height // 2, width // 2)
    v = np.asarray(chroma[quarter : 2 * quarter], np.uint8).reshape(height // 2, width // 2)
    prepared = metrics.prepare(metrics.Planes(np.ascontiguousarray(y), u, v))
    return diagnose.lighting_of(prepared), diagnose.reference_of(prepared)


class ReferenceStore:
    """`<data_dir>/references/<camera>.<lighting>.png`, written atomically.

    Stored as the grey analysis picture: all a reference needs, and no colour image of
    the owner's premises lies around on disk.
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "references"

    def path(self, camera: str, lighting: Lighting) -> Path:
        return self._dir / f"{camera}.{lighting}.png"

    def load(self, camera: str) -> dict[Lighting, Reference]:
        """The stored references (unreadable files are set aside with an error)."""
        found: dict[Lighting, Reference] = {}
        for lighting in LIGHTINGS:
            path = self.path(camera, lighting)
            if not path.exists():
                continue
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                kept = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
                os.replace(path, kept)
                log.error(
                    "camera %s: %s is not a readable image; kept it as %s and taking a new "
                    "reference view",
                    camera,
                    path,
                    kept.name,
                )
                continue
            planes = metrics.Planes(np.ascontiguousarray(grey))
            found[lighting] = diagnose.reference_of(metrics.prepare(planes))
        return found

    def save(self, camera: str, lighting: Lighting, picture: Prepared) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self.path(camera, lighting)
        tmp = path.with_suffix(".tmp.png")
        grey = np.clip(picture.grey, 0, 255).astype(np.uint8)
        if not cv2.imwrite(str(tmp), grey):
            log.error("camera %s: could not write the reference view to %s", camera, tmp)
            return
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        log.info("camera %s: %s reference view taken (%s)", camera, lighting, path)

    def reset(self, camera: str) -> bool:
        """Forget the camera's references; True if there was one."""
        had = False
        for lighting in LIGHTINGS:
            try:
                self.path(camera, lighting).unlink()
                had = True
            except FileNotFoundError:
                pass
        return had
