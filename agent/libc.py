"""The C library, loaded once for the few calls Python does not wrap (adjtimex, mallopt)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def libc() -> ctypes.CDLL | None:
    """None where there is no loadable C library. Cached: find_library runs
    `ldconfig -p` in a child process on every call."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
