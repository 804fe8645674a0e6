"""Faces keeps nothing: its DataHolder answers with empty inventories so privacy can confirm it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_platform.categories import Category
from likeness_platform.dataholder import ExportItem, Retention


class StatelessHolder:
    name = "faces"

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {Category.ANALYSES: 0}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        for _ in ():
            yield _

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        return {Category.ANALYSES: 0}, {Category.ANALYSES: 0}

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {Category.ANALYSES: 0}

    async def retention(self) -> list[Retention]:
        return [Retention(Category.ANALYSES, 0, 0.0, 0.0)]
