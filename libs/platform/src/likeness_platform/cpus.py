"""How many cores this process may run on, for sizing its worker threads."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores the scheduler lets this process use (honours taskset and cpusets, unlike
    os.cpu_count); os.cpu_count where the platform cannot say."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
