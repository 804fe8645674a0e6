"""Render's stored results seen through the DataHolder contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from datetime import datetime

from likeness_platform.dataholder import ExportItem, Retention
from likeness_render.adapters.results import ResultNotFound, ResultStore


class RenderHolder:
    name = "render"

    def __init__(self, results: ResultStore) -> None:
        self._results = results

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {"results": await self._results.count(subject_id)}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        rows = await self._results.of_subject(subject_id)
        listing = [{k: v for k, v in asdict(r).items() if k not in ("blob_name", "subject_id")} for r in rows]
        yield ExportItem("results", "results.json", "application/json", json.dumps(listing, indent=2, default=str).encode())
        for row in rows:
            try:
                data = await self._results.read(row)
            except ResultNotFound:
                continue
            ext = "png" if row.content_type == "image/png" else "jpg"
            yield ExportItem("results", f"results/{row.kind}-{row.result_id}.{ext}", row.content_type, data)

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        erased = await self._results.erase(subject_id)
        return {"results": erased}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return await self._results.sweep(cutoffs.get("results"))

    async def retention(self) -> list[Retention]:
        count, age = await self._results.oldest()
        return [Retention("results", count, age, self._results.ttl.total_seconds())]
