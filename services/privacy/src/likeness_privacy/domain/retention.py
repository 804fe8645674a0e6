"""Fixed retention periods of what privacy and the holders keep."""

from __future__ import annotations

from datetime import timedelta

from likeness_platform.categories import Category

# Images and rendered results: the 24 h promise. Records: what the policies state.
RETENTION = {
    Category.UPLOADS: timedelta(hours=24),
    Category.RESULTS: timedelta(hours=24),
    Category.GENERATION_RECORDS: timedelta(days=90),
    Category.SECURITY_EVENTS: timedelta(days=30),
    Category.ACCESS_LOG: timedelta(days=365),
    Category.EXPORTS: timedelta(hours=1),
    # Complaints and inquiries (with their answers): LIKENESS_INQUIRY_RETENTION_DAYS overrides.
    Category.INQUIRIES: timedelta(days=365),
}


def backoff_seconds(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff for retrying an unreachable holder."""
    return min(cap, base * (2 ** max(0, attempts - 1)))
