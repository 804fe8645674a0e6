"""Fixed retention periods of what privacy and the holders keep."""

from __future__ import annotations

from datetime import timedelta

# Images and rendered results: the 24 h promise. Records: what the policies state.
RETENTION = {
    "uploads": timedelta(hours=24),
    "results": timedelta(hours=24),
    "generation_records": timedelta(days=90),
    "security_events": timedelta(days=30),
    "access_log": timedelta(days=365),
    "exports": timedelta(hours=1),
}


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff for retrying an unreachable holder."""
    return min(cap, base * (2 ** max(0, attempts - 1)))
