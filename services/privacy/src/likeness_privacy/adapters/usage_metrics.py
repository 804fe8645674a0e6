"""Usage statistics as Prometheus metrics: the last complete day's cells that pass the threshold, nothing finer.

The gauge is set from the same suppressed read as the admin API (usecases.usage): a cell under k never
becomes a time series, and the running day is not shown (a gauge following it live would give every call).
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Gauge

from likeness_privacy.domain.usage import DIMENSIONS
from likeness_privacy.usecases.usage import UsageStats

log = structlog.get_logger("likeness.privacy")

USAGE_LAST_DAY = Gauge(
    "likeness_usage_last_day_calls",
    "Generation calls of the last complete UTC day per cell of dimensions; cells under LIKENESS_STATS_MIN_COUNT are not shown",
    list(DIMENSIONS),
)
USAGE_MIN_COUNT = Gauge("likeness_usage_min_count", "The suppression threshold k of the usage statistics")


async def publish(stats: UsageStats) -> int:
    """Replace the gauge's series with yesterday's shown cells; how many there are."""
    cells = await stats.last_day()
    USAGE_LAST_DAY.clear()
    for dims, count in cells:
        USAGE_LAST_DAY.labels(*(dims[d] for d in DIMENSIONS)).set(count)
    USAGE_MIN_COUNT.set(stats.min_count)
    return len(cells)


async def publish_loop(stats: UsageStats, interval_seconds: float) -> None:
    """Refresh the gauge at start, then every interval (yesterday changes once a day; the interval bounds the lag),
    and drop days older than any query may ask for."""
    while True:
        try:
            await publish(stats)
            await stats.forget_old()
        except Exception as exc:
            log.error("usage_metrics_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_seconds)
