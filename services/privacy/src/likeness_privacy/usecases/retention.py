"""Retention: sweep every holder with the class cutoffs, then raise an alarm where something is kept too long."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from likeness_platform.metrics import RETENTION_BREACHES, SWEEP_LAG
from likeness_privacy.domain.errors import describe_error
from likeness_privacy.usecases.ports import Holders, PrivacyConfig

log = structlog.get_logger("likeness.privacy")


class RetentionSweeper:
    def __init__(self, holders: Holders, config: PrivacyConfig) -> None:
        self._holders = holders
        self._config = config

    async def sweep_all(self) -> dict[str, dict[str, int]]:
        """One retention pass: Sweep every holder with its class cutoffs, then check RetentionStatus."""
        now = datetime.now(UTC)
        cutoffs = {category: now - age for category, age in self._config.retention.items()}
        report: dict[str, dict[str, int]] = {}
        for name in self._holders.names:
            holder = self._holders.get(name)
            try:
                report[name] = dict(await holder.sweep(cutoffs))
                for row in await holder.retention():
                    SWEEP_LAG.labels(name, row.category).set(row.oldest_age_seconds)
                    if row.max_age_seconds and row.oldest_age_seconds > row.max_age_seconds:
                        RETENTION_BREACHES.labels(name, row.category).inc()
                        log.error(
                            "retention_breach",
                            holder=name,
                            category=row.category,
                            oldest_age_seconds=row.oldest_age_seconds,
                            max_age_seconds=row.max_age_seconds,
                        )
            except Exception as exc:
                log.warning("sweep_failed", holder=name, error=describe_error(exc))
        return report

    async def run(self, interval_seconds: float) -> None:
        """Background loop; the first pass waits one interval so holders starting alongside are up."""
        while True:
            await asyncio.sleep(interval_seconds)
            await self.sweep_all()
