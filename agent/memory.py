"""Keeping the resident memory of a many-camera agent small (glibc malloc tuning).

Each camera thread that decodes a keyframe would get its own malloc arena, which keeps
the freed buffers of a full-size picture (several MB at 1080p) resident between
samples. Two arenas are plenty for a few threads that decode once every few seconds,
and trimming after each decode hands the freed pages back to the system. Both are
glibc calls; elsewhere (musl) they are skipped.
"""

from __future__ import annotations

import ctypes
import logging

from agent.libc import libc

log = logging.getLogger(__name__)

# mallopt(3) parameter number of M_ARENA_MAX in glibc's malloc.h.
_M_ARENA_MAX = -8
ARENAS = 2


def _glibc() -> ctypes.CDLL | None:
    found = libc()
    if found is None or not hasattr(found, "mallopt") or not hasattr(found, "malloc_trim"):
        return None
    return found


def limit_arenas() -> None:
    """Call before the camera threads start."""
    libc = _glibc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused")


def release_freed() -> None:
    """Return freed heap pages to the system (after a picture was decoded and analysed)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
