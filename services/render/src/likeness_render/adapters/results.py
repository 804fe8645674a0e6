"""Stored results: a Postgres row per result and an encrypted blob, at most 24 h."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_platform.blobs import BlobNotFound, BlobStore, new_blob_name, remove_orphans
from likeness_platform.crypto import DataKeyCache, open_sealed, seal
from likeness_platform.errors import NotFound
from likeness_render.domain.results import StoredResult


def _row(r: Mapping[str, Any]) -> StoredResult:
    return StoredResult(
        str(r["result_id"]),
        str(r["subject_id"]),
        r["kind"],
        r["content_type"],
        r["width"],
        r["height"],
        r["size_bytes"],
        r["dpi"],
        r["spec_id"],
        r["created_at"],
        r["expires_at"],
        True,
        r["meta"],
        r["blob_name"],
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


class ResultNotFound(NotFound):
    default_code = "RESULT_NOT_FOUND"


class ResultStore:
    """Writes blob then row (a crash leaves at worst an orphan blob for Sweep)."""

    def __init__(self, pool: AsyncConnectionPool, blobs: BlobStore, keys: DataKeyCache, ttl: timedelta) -> None:
        self.pool = pool
        self.blobs = blobs
        self.keys = keys
        self.ttl = ttl

    async def save(
        self,
        subject_id: str,
        kind: str,
        data: bytes,
        content_type: str,
        width: int,
        height: int,
        dpi: int = 0,
        spec_id: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> StoredResult:
        now = datetime.now(UTC)
        result = StoredResult(
            str(uuid.uuid4()),
            subject_id,
            kind,
            content_type,
            width,
            height,
            len(data),
            dpi,
            spec_id,
            now,
            now + self.ttl,
            True,
            dict(meta or {}),
            new_blob_name(),
        )
        key = await self.keys.get(subject_id)
        await self.blobs.put(result.blob_name, seal(key.key, data, key.key_id, result.blob_name.encode()))
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO results (result_id, subject_id, kind, blob_name, content_type, width, height, size_bytes, dpi, spec_id, meta,"
                " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    uuid.UUID(result.result_id),
                    uuid.UUID(subject_id),
                    kind,
                    result.blob_name,
                    content_type,
                    width,
                    height,
                    len(data),
                    dpi,
                    spec_id,
                    json.dumps(result.meta),
                    now,
                    result.expires_at,
                ),
            )
        return result

    async def update_meta(self, result_id: str, meta: Mapping[str, Any]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE results SET meta = meta || %s::jsonb WHERE result_id = %s", (json.dumps(dict(meta)), uuid.UUID(result_id))
            )

    async def get(self, result_id: str, subject_id: str) -> StoredResult:
        rid, sid = _uuid(result_id), _uuid(subject_id)
        if rid is None or sid is None:
            raise ResultNotFound("no such result")
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM results WHERE result_id = %s AND subject_id = %s AND expires_at > now()", (rid, sid)
            )
            r = await cur.fetchone()
        if r is None:
            raise ResultNotFound("no such result")
        return _row(r)

    async def read(self, result: StoredResult) -> bytes:
        key = await self.keys.get(result.subject_id)
        try:
            sealed = await self.blobs.get(result.blob_name)
        except BlobNotFound:
            raise ResultNotFound("no such result") from None
        return open_sealed(key.key, sealed, result.blob_name.encode())

    async def of_subject(self, subject_id: str) -> list[StoredResult]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute("SELECT * FROM results WHERE subject_id = %s ORDER BY created_at", (sid,))
            return [_row(r) for r in await cur.fetchall()]

    async def count(self, subject_id: str) -> int:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            r = await (await conn.execute("SELECT count(*) FROM results WHERE subject_id = %s", (sid,))).fetchone()
        return int(r[0]) if r else 0

    async def erase(self, subject_id: str) -> int:
        self.keys.forget(subject_id)
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            rows = await (await conn.execute("DELETE FROM results WHERE subject_id = %s RETURNING blob_name", (sid,))).fetchall()
        for (name,) in rows:
            await self.blobs.delete(name)
        return len(rows)

    async def sweep(self, cutoff: datetime | None, orphan_grace: timedelta = timedelta(minutes=10)) -> dict[str, int]:
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "DELETE FROM results WHERE expires_at <= now() OR (%s::timestamptz IS NOT NULL AND created_at < %s) RETURNING blob_name",
                    (cutoff, cutoff),
                )
            ).fetchall()
        for (name,) in rows:
            await self.blobs.delete(name)
        orphans = await remove_orphans(self.blobs, self._known, orphan_grace)
        return {"results": len(rows), "orphan_blobs": orphans}

    async def _known(self, names: list[str]) -> set[str]:
        async with self.pool.connection() as conn:
            found = await (await conn.execute("SELECT blob_name FROM results WHERE blob_name = ANY(%s)", (names,))).fetchall()
        return {r[0] for r in found}

    async def oldest(self) -> tuple[int, float]:
        async with self.pool.connection() as conn:
            r = await (
                await conn.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM results")
            ).fetchone()
        assert r is not None
        return int(r[0]), float(r[1])
