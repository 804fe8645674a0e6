"""Sealed exports of a subject's data, stored whole or as chunks, downloaded once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from likeness_platform.db import as_uuid as _uuid
from likeness_privacy.adapters.repository._common import RepositoryBase


class ExportsRepository(RepositoryBase):
    async def store_export(self, subject_id: str, sealed: bytes, ttl: timedelta) -> tuple[str, datetime]:
        export_id = uuid.uuid4()
        expires = datetime.now(UTC) + ttl
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO exports (export_id, subject_id, sealed, expires_at) VALUES (%s, %s, %s, %s)",
                (export_id, uuid.UUID(subject_id), sealed, expires),
            )
        return str(export_id), expires

    async def store_export_chunks(self, subject_id: str, ttl: timedelta, chunks: Any) -> tuple[str, datetime]:
        """Store an export as sealed chunks; `chunks(export_id)` yields them in order (an async iterator)."""
        export_id = uuid.uuid4()
        expires = datetime.now(UTC) + ttl
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO exports (export_id, subject_id, sealed, expires_at) VALUES (%s, %s, %s, %s)",
                (export_id, uuid.UUID(subject_id), b"", expires),
            )
            idx = 0
            async for sealed in chunks(str(export_id)):
                await conn.execute("INSERT INTO export_chunks (export_id, idx, sealed) VALUES (%s, %s, %s)", (export_id, idx, sealed))
                idx += 1
        return str(export_id), expires

    async def claim_export(self, export_id: str, subject_id: str) -> int | None:
        """Claim an unexpired export of that subject for its one download; its number of chunks, None when there is none."""
        eid, sid = _uuid(export_id), _uuid(subject_id)
        if eid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE exports SET expires_at = now() WHERE export_id = %s AND subject_id = %s AND expires_at > now()"
                " RETURNING (SELECT count(*) FROM export_chunks WHERE export_id = %s)",
                (eid, sid, eid),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else None

    async def export_chunk(self, export_id: str, idx: int) -> bytes:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT sealed FROM export_chunks WHERE export_id = %s AND idx = %s", (uuid.UUID(export_id), idx))
            row = await cur.fetchone()
        if row is None:
            raise LookupError(f"chunk {idx} of export is missing")
        return bytes(row[0])

    async def drop_export(self, export_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM exports WHERE export_id = %s", (uuid.UUID(export_id),))

    async def take_export(self, export_id: str, subject_id: str) -> bytes | None:
        """Remove and return an unexpired export of that subject (download once)."""
        eid, sid = _uuid(export_id), _uuid(subject_id)
        if eid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM exports WHERE export_id = %s AND subject_id = %s AND expires_at > now() RETURNING sealed", (eid, sid)
            )
            row = await cur.fetchone()
        return bytes(row[0]) if row else None
