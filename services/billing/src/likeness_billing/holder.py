"""Billing's data seen through the DataHolder contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_billing import service
from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain.retention import PURCHASES
from likeness_platform.dataholder import ExportItem, Retention


class BillingHolder:
    name = "billing"

    def __init__(self, repo: BillingRepository) -> None:
        self._repo = repo

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return await self._repo.inventory(subject_id)

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        data = await self._repo.export(subject_id)
        yield ExportItem(PURCHASES, "billing.json", "application/json", json.dumps(data, indent=2, default=str).encode())

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        return await self._repo.erase(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return await service.sweep(self._repo, cutoffs)

    async def retention(self) -> list[Retention]:
        return [Retention(i.category, i.count, i.oldest_age_seconds, i.max_age_seconds) for i in await service.retention_report(self._repo)]
