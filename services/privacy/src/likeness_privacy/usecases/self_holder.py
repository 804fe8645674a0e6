"""Privacy's own data seen through the DataHolder contract, so erasure, export and sweeps treat it like any holder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

from likeness_platform.categories import Category
from likeness_platform.dataholder import ExportItem, Retention, clamp_cutoffs
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.usecases.ports import SELF, PrivacyConfig
from likeness_privacy.usecases.rights import RightsData

# What privacy removes by age (subjects and data keys go with erasure only).
_SWEPT = (Category.GENERATION_RECORDS, Category.SECURITY_EVENTS, Category.ACCESS_LOG, Category.EXPORTS)


class SelfHolder:
    name = SELF

    def __init__(self, repo: PrivacyRepository, config: PrivacyConfig, rights: RightsData | None = None) -> None:
        self._repo = repo
        self._config = config
        # Consents, inquiries, notices and contacts (usecases/rights.py); None in tests of the records alone.
        self._rights = rights

    async def inventory(self, subject_id: str) -> dict[str, int]:
        counts = await self._repo.inventory(subject_id, self._config.pseudonym(subject_id))
        if self._rights is not None:
            counts.update(await self._rights.inventory(subject_id))
        return counts

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        records = await self._repo.export_records(subject_id, self._config.pseudonym(subject_id))
        yield ExportItem(Category.RECORDS, "records.json", "application/json", json.dumps(records, indent=2, default=str).encode())
        if self._rights is not None:
            async for item in self._rights.export(subject_id):
                yield item

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        erased = await self._repo.erase_records(subject_id, self._config.pseudonym(subject_id))
        if self._rights is not None:
            erased.update(await self._rights.erase(subject_id))
        remaining = await self.inventory(subject_id)
        # Subject row and key are removed by the erasure itself, at its end.
        remaining.pop(Category.SUBJECTS, None)
        remaining.pop(Category.DATA_KEYS, None)
        return erased, remaining

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        # Privacy's own periods bound every cutoff: a Sweep with cutoff = now cannot empty the access log.
        kept = {c: self._config.retention[c] for c in _SWEPT}
        now = datetime.now(UTC)
        removed = await self._repo.sweep(clamp_cutoffs(cutoffs, kept, now))
        if self._rights is not None:
            removed.update(await self._rights.sweep(now))
        return removed

    async def retention(self) -> list[Retention]:
        rows = await self._repo.oldest()
        found = [
            Retention(category, count, age, self._config.retention[category].total_seconds()) for category, (count, age) in rows.items()
        ]
        if self._rights is not None:
            found += await self._rights.retention()
        return found
