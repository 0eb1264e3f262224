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
  TRIM_THRESHOLD_BYTES) keep a 1080p picture's buffers in the heap for the next sample.
- After a sample, `release_freed` trims (malloc_trim: about 1 ms, it walks the heap)
  only when the process is more than TRIM_ABOVE_BYTES above what the last trim left:
  one camera's decoder stays resident for its next keyframe, while several cameras
  decoding at once are handed back as before.
Measured on bench/cpu_per_camera.py (bench/README.md). All glibc calls; elsewhere
(musl) they are skipped and malloc does as it does.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import av  # noqa: F401  (maps the libavutil that _libavutil finds into the process)

from agent.libc import libc

log = logging.getLogger(__name__)

# mallopt(3) parameter numbers in glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
# Blocks from this size on get their own mapping (unmapped on free). A 1080p picture's
# planes (the largest 2 MB) stay in the heap for the next sample; anything larger and
# short-lived (probing a stream at connect, a 4K picture) still leaves at once: with 32 MB
# here such blocks were stranded between long-lived ones, and 8 cameras stayed at
# 170-210 MB resident after every trim (139 MB with 4 MB).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
# free() shrinks a heap only past this much free space at its top; below it the
# trimming is release_freed's (setting either threshold also stops glibc from moving
# them by itself).
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
# Resident memory above what the last trim left that stays for the next decode to
# reuse: one 1080p decoder's freed pages (4-6 MB measured) with room to spare, inside
# the 8-camera memory budget (bench/cpu_per_camera.py: 150 MB; 131-137 MB right after
# a trim).
TRIM_ABOVE_BYTES = 10 * 1024 * 1024
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


class _Samples:
    """Shared by the camera threads: how many pictures are being decoded or analysed now,
    and the resident size the last trim left while none was."""

    lock = threading.Lock()
    in_use = 0
    floor: int | None = None


def sample_started() -> None:
    """A keyframe is about to be decoded; `release_freed` ends the sample."""
    with _Samples.lock:
        _Samples.in_use += 1


def release_freed() -> bool:
    """After a picture was decoded and analysed (or failed to decode): return freed heap
    pages to the system if the process is more than TRIM_ABOVE_BYTES above what the last
    trim left. Whether it trimmed.

    The floor is only taken from a trim while no other camera has a picture in use: eight
    cameras on one stream decode the same keyframe at once, and a trim at the end of the
    first sample finds the others' pictures resident; counting them as the floor kept
    them resident for good (183 MB with 8 cameras, measured)."""
    with _Samples.lock:
        _Samples.in_use = max(0, _Samples.in_use - 1)
        alone = _Samples.in_use == 0
    libc = _glibc()
    if libc is None:
        return False
    resident = resident_bytes()
    floor = _Samples.floor
    if resident is not None and floor is not None and resident - floor <= TRIM_ABOVE_BYTES:
        return False
    libc.malloc_trim(0)
    if alone:
        _Samples.floor = resident_bytes()
    return True
