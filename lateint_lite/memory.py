"""Give the memory a build freed back to the operating system.

A build allocates its training sample, codec tables and re-encode chunks (hundreds of MB on
SciFact) and frees them when it returns; glibc keeps most of that freed memory in the
process's heap, so an application that builds once and keeps running carries it. On SciFact,
after `build()`, private memory was 416 MB and `malloc_trim(0)` brought it to 150 MB
(docs/benchmarks.md "Peak memory per phase"). Elsewhere (musl, macOS, Windows) nothing happens.
"""

from __future__ import annotations

import ctypes
import sys


def return_freed_memory() -> bool:
    """Ask glibc to release free heap memory to the OS; True when it was asked."""
    if not sys.platform.startswith("linux"):
        return False
    try:  # the C library already loaded into this process (no search for it, no subprocess)
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True
