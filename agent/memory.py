"""Keeping the resident memory of a many-camera agent small, and its samples cheap
(glibc malloc tuning).

Each camera thread that decodes a keyframe would get its own malloc arena, which keeps
the freed buffers of a full-size picture (several MB at 1080p) resident between
samples: two arenas are plenty for a few threads that decode once every few seconds.

What to hand back to the system, and when, is decided here rather than by malloc:
- Left to itself, glibc maps a decoder's large buffers (a 1080p picture is 3 MB) with
  mmap and unmaps them on free, and shrinks a heap whose free top passes its trim
  threshold, so every sample faulted its 5-6 MB in again and the kernel zeroed them
  (about 1,300-1,500 page faults a keyframe). Fixed thresholds (MMAP_THRESHOLD_BYTES,
  TRIM_THRESHOLD_BYTES) keep those buffers in the heap for the next sample.
- After a sample, `release_freed` trims (malloc_trim: about 1 ms, it walks the heap)
  only when the process grew by more than TRIM_ABOVE_BYTES since the last trim: one
  camera's decoder stays resident for its next keyframe, while several cameras
  decoding at once are handed back as before.
Measured on bench/cpu_per_camera.py (bench/README.md). All glibc calls; elsewhere
(musl) they are skipped and malloc does as it does.
"""

from __future__ import annotations

import ctypes
import logging
import os

import av  # noqa: F401  (maps the libavutil that _libavutil finds into the process)

from agent.libc import libc

log = logging.getLogger(__name__)

# mallopt(3) parameter numbers in glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
# Blocks from this size on get their own mapping (unmapped on free). glibc's own ceiling
# for the threshold (half its 64 MB heap): every decoder buffer stays in a heap.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
# free() shrinks a heap only past this much free space at its top; below it the
# trimming is release_freed's (setting either threshold also stops glibc from moving
# them by itself).
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
# Resident growth since the last trim that is left for the next decode to reuse: a bit
# more than one 1080p decoder's freed pages (4 MB measured), well inside the 8-camera
# memory budget (bench/cpu_per_camera.py: 150 MB, 133-137 MB with a trim per sample).
TRIM_ABOVE_BYTES = 8 * 1024 * 1024
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# The largest block FFmpeg may allocate at once. The largest it needs here is one
# decoded picture: 8K YUV 4:2:0 is 50 MB, 1080p 3 MB.
MAX_FFMPEG_BLOCK_BYTES = 64 * 1024 * 1024


def _glibc() -> ctypes.CDLL | None:
    found = libc()
    if found is None or not hasattr(found, "mallopt") or not hasattr(found, "malloc_trim"):
        return None
    return found


def tune_malloc() -> None:
    """Two arenas, fixed thresholds (see the module docstring). Call before the camera
    threads start."""
    libc = _glibc()
    if libc is None:
        return
    for name, param, value in (
        ("M_ARENA_MAX", _M_ARENA_MAX, ARENAS),
        ("M_MMAP_THRESHOLD", _M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
    ):
        if not libc.mallopt(param, value):
            log.debug("mallopt(%s) refused", name)


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


def resident_bytes() -> int | None:
    """This process's resident memory (VmRSS), from /proc/self/statm; None without it."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


class _Trims:
    """The resident size after the last trim, shared by the camera threads (a race
    between two of them costs at most one extra trim)."""

    after_last: int | None = None


def release_freed() -> bool:
    """After a picture was decoded and analysed: return freed heap pages to the system
    if the process grew by more than TRIM_ABOVE_BYTES since the last trim. Whether it did."""
    libc = _glibc()
    if libc is None:
        return False
    resident = resident_bytes()
    last = _Trims.after_last
    if resident is not None and last is not None and resident - last <= TRIM_ABOVE_BYTES:
        return False
    libc.malloc_trim(0)
    _Trims.after_last = resident_bytes()
    return True
