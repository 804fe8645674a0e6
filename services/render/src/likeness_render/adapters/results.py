"""Stored results: render's table in the shared sealed store (a Postgres row and an encrypted blob each, at most 24 h)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from likeness_platform.blobs import BlobNotFound, BlobStore, SubjectNames
from likeness_platform.categories import Category
from likeness_platform.crypto import DataKeyCache
from likeness_platform.db import from_row
from likeness_platform.errors import NotFound
from likeness_platform.sealed_store import SealedStore, SealedTable
from likeness_render.domain.results import NewResult, StoredResult


def _row(r: Mapping[str, Any]) -> StoredResult:
    return from_row(StoredResult, r, persisted=True)


def _export_file(result: StoredResult) -> tuple[str, str]:
    ext = {"image/png": "png", "application/pdf": "pdf"}.get(result.content_type, "jpg")
    return f"results/{result.kind}-{result.result_id}.{ext}", result.content_type


RESULTS = SealedTable(
    category=Category.RESULTS,
    table="results",
    id_column="result_id",
    decode=_row,
    export_file=_export_file,
)


class ResultNotFound(NotFound):
    default_code = "RESULT_NOT_FOUND"


class ResultStore:
    """Render's results in the shared sealed store (likeness_platform.sealed_store), each kept `ttl`."""

    def __init__(self, pool: AsyncConnectionPool, blobs: BlobStore, keys: DataKeyCache, ttl: timedelta, names: SubjectNames) -> None:
        self.store = SealedStore(pool, blobs, keys, RESULTS, ttl, names)
        self.ttl = ttl

    async def save(self, subject_id: str, data: bytes, new: NewResult) -> StoredResult:
        columns = {
            "kind": new.kind,
            "content_type": new.content_type,
            "width": new.width,
            "height": new.height,
            "size_bytes": len(data),
            "dpi": new.dpi,
            "spec_id": new.spec_id,
            "meta": Jsonb(dict(new.meta)),
        }
        return await self.store.save(subject_id, data, columns)

    async def update_meta(self, result_id: str, meta: Mapping[str, Any]) -> None:
        async with self.store.pool.connection() as conn:
            await conn.execute(
                "UPDATE results SET meta = meta || %s::jsonb WHERE result_id = %s", (json.dumps(dict(meta)), uuid.UUID(result_id))
            )

    async def get(self, result_id: str, subject_id: str) -> StoredResult:
        result = await self.store.find(result_id, subject_id)
        if result is None:
            raise ResultNotFound("no such result")
        return result

    async def read(self, result: StoredResult) -> bytes:
        try:
            return await self.store.read(result)
        except BlobNotFound:
            raise ResultNotFound("no such result") from None
