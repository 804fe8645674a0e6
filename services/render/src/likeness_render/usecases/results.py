"""Opening a stored result: described, or read (and the read access-logged first)."""

from __future__ import annotations

from likeness_render.domain.results import StoredResult
from likeness_render.usecases.ports import AccessLogPort, ResultsPort


class Results:
    def __init__(self, results: ResultsPort, access: AccessLogPort) -> None:
        self.results = results
        self.access = access

    async def open_result(self, subject_id: str, result_id: str, purpose: str) -> tuple[StoredResult, bytes]:
        """A stored result; reading its bytes is access-logged first ("describe" reads none)."""
        stored = await self.results.get(result_id, subject_id)
        if purpose == "describe":
            return stored, b""
        await self.access.record_access(subject_id, f"render/result/{stored.result_id}", purpose or "download")
        return stored, await self.results.read(stored)
