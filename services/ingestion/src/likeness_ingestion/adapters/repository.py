"""Postgres rows of uploads (the blobs live in the blob store)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_ingestion.domain.uploads import UploadRow


def _row(r: Mapping[str, Any]) -> UploadRow:
    return UploadRow(
        str(r["upload_id"]),
        str(r["subject_id"]),
        r["blob_name"],
        r["sha256"],
        r["size_bytes"],
        r["format"],
        r["width"],
        r["height"],
        r["purpose"],
        r["retention_class"],
        r["created_at"],
        r["expires_at"],
    )


def as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


class UploadRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def insert(self, row: UploadRow) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO uploads (upload_id, subject_id, blob_name, sha256, size_bytes, format, width, height, purpose,"
                " retention_class, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    uuid.UUID(row.upload_id),
                    uuid.UUID(row.subject_id),
                    row.blob_name,
                    row.sha256,
                    row.size_bytes,
                    row.format,
                    row.width,
                    row.height,
                    row.purpose,
                    row.retention_class,
                    row.created_at,
                    row.expires_at,
                ),
            )

    async def get(self, upload_id: str, subject_id: str) -> UploadRow | None:
        """The subject's unexpired upload; None for missing, foreign and expired ids alike."""
        uid, sid = as_uuid(upload_id), as_uuid(subject_id)
        if uid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM uploads WHERE upload_id = %s AND subject_id = %s AND expires_at > now()", (uid, sid)
            )
            r = await cur.fetchone()
        return _row(r) if r else None

    async def delete(self, upload_id: str, subject_id: str) -> UploadRow | None:
        uid, sid = as_uuid(upload_id), as_uuid(subject_id)
        if uid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                "DELETE FROM uploads WHERE upload_id = %s AND subject_id = %s RETURNING *", (uid, sid)
            )
            r = await cur.fetchone()
        return _row(r) if r else None

    async def of_subject(self, subject_id: str) -> list[UploadRow]:
        sid = as_uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute("SELECT * FROM uploads WHERE subject_id = %s ORDER BY created_at", (sid,))
            return [_row(r) for r in await cur.fetchall()]

    async def delete_subject(self, subject_id: str) -> list[str]:
        sid = as_uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM uploads WHERE subject_id = %s RETURNING blob_name", (sid,))
            return [r[0] for r in await cur.fetchall()]

    async def count_subject(self, subject_id: str) -> int:
        sid = as_uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM uploads WHERE subject_id = %s", (sid,))
            r = await cur.fetchone()
        return int(r[0]) if r else 0

    async def delete_expired(self, cutoff: datetime | None) -> list[str]:
        """Delete rows past expiry (or created before the cutoff); return their blob names."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM uploads WHERE expires_at <= now() OR (%s::timestamptz IS NOT NULL AND created_at < %s) RETURNING blob_name",
                (cutoff, cutoff),
            )
            return [r[0] for r in await cur.fetchall()]

    async def known_blobs(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT blob_name FROM uploads WHERE blob_name = ANY(%s)", (names,))
            return {r[0] for r in await cur.fetchall()}

    async def oldest(self) -> tuple[int, float]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM uploads")
            r = await cur.fetchone()
        assert r is not None
        return int(r[0]), float(r[1])
