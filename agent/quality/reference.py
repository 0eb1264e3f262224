"""Reference views on disk: per camera and lighting, a small grey PNG of the view and a
JSON of what the camera learnt is normal for itself in that lighting."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
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


# The learnt values kept beside the view (the view itself gives structure and detail).
LEARNT = ("edge_width", "relative_contrast", "clipped", "brightness", "noise")


def _learnt_json(reference: Reference) -> str:
    values: dict[str, object] = {name: getattr(reference, name) for name in LEARNT}
    blocks = reference.chroma_blocks
    values["chroma_blocks"] = None if blocks is None else np.round(blocks, 2).tolist()
    return json.dumps(values, indent=1)


def _with_learnt(reference: Reference, text: str) -> Reference:
    """`reference` with the values of a learnt-normals JSON; ValueError if it is not one."""
    values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    learnt: dict[str, float | None] = {}
    for name in LEARNT:
        value = values.get(name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} is {value!r}, not a number")
        learnt[name] = None if value is None else float(value)
    blocks = values.get("chroma_blocks")
    chroma = None
    if blocks is not None:
        chroma = np.asarray(blocks, np.float32)
        if chroma.shape != (*metrics.CHROMA_GRID, 2) or not np.isfinite(chroma).all():
            raise ValueError(f"chroma_blocks is not a {metrics.CHROMA_GRID} grid of pairs")
    return dataclasses.replace(
        reference,
        edge_width=learnt["edge_width"],
        relative_contrast=learnt["relative_contrast"],
        clipped=learnt["clipped"],
        brightness=learnt["brightness"],
        noise=learnt["noise"],
        chroma_blocks=chroma,
    )


class ReferenceStore:
    """`<data_dir>/references/<camera>.<lighting>.png` and `.json`, written atomically.

    The view is stored as the grey analysis picture: all a reference needs, and no colour
    image of the owner's premises lies around on disk. Its colour is kept only as the mean
    chroma of a 16x9 grid of blocks in the JSON, with the other learnt values. A missing or
    unreadable JSON (an older agent's reference) leaves those values unknown: the rules
    that need them fall back to the absolute ones.
    """

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "references"

    def path(self, camera: str, lighting: Lighting) -> Path:
        return self._dir / f"{camera}.{lighting}.png"

    def learnt_path(self, camera: str, lighting: Lighting) -> Path:
        return self._dir / f"{camera}.{lighting}.json"

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
            # The stored grey view was averaged: its own noise says nothing of the camera's.
            reference = dataclasses.replace(
                diagnose.reference_of(metrics.prepare(planes)), noise=None
            )
            learnt = self._learnt(camera, lighting, reference)
            if learnt is not None:
                found[lighting] = learnt
        return found

    def _learnt(self, camera: str, lighting: Lighting, reference: Reference) -> Reference | None:
        """`reference` with what the camera learnt in this lighting; as it is when an older
        agent kept none (what the grey view shows is still known); None when the file is
        not readable: it is set aside and a new reference view taken."""
        path = self.learnt_path(camera, lighting)
        try:
            return _with_learnt(reference, path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return reference
        except (OSError, UnicodeError, ValueError) as exc:
            kept = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(path, kept)
            log.error(
                "camera %s: %s is not readable (%s); kept it as %s and taking a new reference view",
                camera,
                path,
                exc,
                kept.name,
            )
            return None

    def save(
        self, camera: str, lighting: Lighting, picture: Prepared, reference: Reference
    ) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        learnt = self.learnt_path(camera, lighting)
        partial = learnt.with_suffix(".tmp.json")
        try:
            with open(partial, "w", encoding="utf-8") as fh:
                fh.write(_learnt_json(reference))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, learnt)
        except OSError as exc:
            log.error("camera %s: could not write %s: %s", camera, learnt, exc)
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
            self.learnt_path(camera, lighting).unlink(missing_ok=True)
        return had
