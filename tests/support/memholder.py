"""A DataHolder that keeps rows in memory, for erasure tests (a second, independent holder)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from likeness_platform.dataholder import ExportItem, Retention, add_dataholder
from likeness_platform.server import RunningServer, start_server
from likeness_platform.settings import ServiceSettings
from tests.support.services import settings_for


class MemoryHolder:
    name = "notes"

    def __init__(self) -> None:
        self.rows: dict[str, list[str]] = {}
        self.erase_calls = 0

    def add(self, subject_id: str, note: str) -> None:
        self.rows.setdefault(subject_id, []).append(note)

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {"notes": len(self.rows.get(subject_id, []))}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        for i, note in enumerate(self.rows.get(subject_id, [])):
            yield ExportItem("notes", f"note-{i}.txt", "text/plain", note.encode())

    async def export_size(self, subject_id: str) -> int:
        return sum(len(note.encode()) for note in self.rows.get(subject_id, []))

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        self.erase_calls += 1
        erased = len(self.rows.pop(subject_id, []))
        return {"notes": erased}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {"notes": 0}

    async def retention(self) -> list[Retention]:
        return [Retention("notes", sum(len(v) for v in self.rows.values()), 0.0, 86400.0)]


async def serve_holder(holder: Any, port: int = 0) -> RunningServer:
    return await start_server("notes", settings_for(ServiceSettings, "gateway"), lambda server: [add_dataholder(server, holder)], port=port)
