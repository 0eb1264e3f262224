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

import av  # noqa: F401  (maps the libavutil that _libavutil finds into the process)

from agent.libc import libc

log = logging.getLogger(__name__)

# mallopt(3) parameter number of M_ARENA_MAX in glibc's malloc.h.
_M_ARENA_MAX = -8
ARENAS = 2
# The largest block FFmpeg may allocate at once. The largest it needs here is one
# decoded picture: 8K YUV 4:2:0 is 50 MB, 1080p 3 MB.
MAX_FFMPEG_BLOCK_BYTES = 64 * 1024 * 1024


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


def cap_ffmpeg_blocks() -> None:
    """Make FFmpeg refuse any single allocation above MAX_FFMPEG_BLOCK_BYTES.

    FFmpeg allocates an RTSP reply body of whatever size its Content-Length claims and
    fills it as fast as the camera sends: a camera answering DESCRIBE with a gigabyte
    of garbage took the agent to 1 GB resident within its open deadline, enough for the
    kernel to kill the agent and every good camera with it. With the cap the open fails
    at once. Process-wide (libavutil's own setting); call before the camera threads start.
    """
    lib = _libavutil()
    if lib is None:
        log.warning("libavutil not found; FFmpeg allocations are not capped")
        return
    lib.av_max_alloc(MAX_FFMPEG_BLOCK_BYTES)


def _libavutil() -> ctypes.CDLL | None:
    """The libavutil PyAV loaded (its wheel bundles one under a hashed name), by the
    path the process mapped; loading that path again returns the same library."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libavutil" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "av_max_alloc"):
            lib.av_max_alloc.argtypes = [ctypes.c_size_t]
            lib.av_max_alloc.restype = None
            return lib
    return None


def release_freed() -> None:
    """Return freed heap pages to the system (after a picture was decoded and analysed)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
