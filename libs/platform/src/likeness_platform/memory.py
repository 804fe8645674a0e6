"""glibc's allocator set for services that allocate and free many large buffers (image arrays, photo bytes).

By default glibc serves a block over M_MMAP_THRESHOLD (128 KiB at start, raised as large blocks are freed, at
most 32 MiB) with a fresh mmap and unmaps it on free, gives the top of a heap back to the kernel past
M_TRIM_THRESHOLD, and opens up to eight heaps (arenas) per core for its threads. How a process behaves then
depends on what it happened to free first: render's ID-photo step run alone on small photos took about 10,000
page faults and 15-23 ms of kernel time per photo, where the same step in the running service (whose start-up
had already pushed the threshold up) took none of them. And every worker thread's arena keeps its own free
memory: under bench/load's 8 users render peaked at 706-808 MB, privacy grew by 42-51 MiB building a 500 MB
export.

Fixed thresholds make the reuse certain: blocks up to MMAP_THRESHOLD come from the heaps, and a heap keeps up to
TRIM_THRESHOLD free at its top. At most ARENA_MAX arenas bound what is kept but not in use to about
ARENA_MAX x TRIM_THRESHOLD, and share it between threads: render peaked at 619-667 MB in the same runs, privacy
grew by 33-34 MiB, at the same CPU per photo.

An operator's own MALLOC_* or GLIBC_TUNABLES settings win: nothing is changed when any is set.
"""

from __future__ import annotations

import ctypes
import os

MiB = 1024 * 1024
MMAP_THRESHOLD = 32 * MiB  # glibc's own ceiling for its moving threshold
TRIM_THRESHOLD = 64 * MiB
ARENA_MAX = 2

# mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

_OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def tune_allocator(environ: dict[str, str] | None = None) -> dict[str, int]:
    """Set the thresholds and arena cap (at start, before the service's work); what was set, {} when nothing was
    (not glibc, or the operator set the allocator up)."""
    env = os.environ if environ is None else environ
    if any(name in env for name in _OPERATOR_SETTINGS) or not _glibc():
        return {}
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    wanted = {
        "mmap_threshold": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        "trim_threshold": (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        "arena_max": (_M_ARENA_MAX, ARENA_MAX),
    }
    return {name: value for name, (param, value) in wanted.items() if mallopt(param, value) == 1}


def _glibc() -> bool:
    """Whether this process runs on glibc (asked of the C library, not read from the executable's bytes)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False
