"""Keeping the resident memory of a many-camera agent small (glibc malloc tuning).

Each camera thread that decodes a keyframe would get its own malloc arena, which keeps
the freed buffers of a full-size picture (several MB at 1080p) resident between
samples. Two arenas are plenty for a few threads that decode once every few seconds,
and trimming after each decode hands the freed pages back to the system. Both are
glibc calls; elsewhere (musl) they are skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

# mallopt(3) parameter number of M_ARENA_MAX in glibc's malloc.h.
_M_ARENA_MAX = -8
ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


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
