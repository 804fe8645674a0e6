"""Sealed exports of a subject's data: their progress while built, their chunks, downloaded once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from likeness_platform.db import as_uuid as _uuid
from likeness_privacy.adapters.repository._common import RepositoryBase
from likeness_privacy.domain.exports import ExportProgress

_PROGRESS = (
    "SELECT export_id, state, bytes_written, bytes_gathered, bytes_expected, parts_written, parts_expected, created_at, updated_at,"
    " expires_at, error_code FROM exports"
)
_FIELDS = {"bytes_written", "bytes_gathered", "parts_written"}


def _progress(row: dict[str, Any]) -> ExportProgress:
    return ExportProgress(**{**row, "export_id": str(row["export_id"])})


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

    async def start_export_once(
        self, subject_id: str, ttl: timedelta, parts_expected: int, bytes_expected: int, reuse: tuple[str, ...]
    ) -> tuple[ExportProgress, bool]:
        """The subject's latest unexpired export when its state is in `reuse` (False), else a new one, building
        (True). Checked and started under a lock on the subject, so concurrent requests start one build."""
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('likeness:export:' || %s::text, 0))", (sid,))
            cur = await conn.cursor(row_factory=dict_row).execute(
                _PROGRESS + " WHERE subject_id = %s AND expires_at > now() ORDER BY created_at DESC LIMIT 1", (sid,)
            )
            row = await cur.fetchone()
            # A build that stopped moving (its process died) counts as failed, and does not hold the next back.
            latest = _progress(row).as_seen_at(datetime.now(UTC)) if row else None
            if latest is not None and latest.state in reuse:
                return latest, False
            cur = await conn.cursor(row_factory=dict_row).execute(
                "INSERT INTO exports (export_id, subject_id, sealed, expires_at, state, parts_expected, bytes_expected)"
                " VALUES (%s, %s, '', now() + %s, 'building', %s, %s)"
                " RETURNING export_id, state, bytes_written, bytes_gathered, bytes_expected, parts_written, parts_expected,"
                " created_at, updated_at, expires_at, error_code",
                (uuid.uuid4(), sid, ttl, parts_expected, bytes_expected),
            )
            row = await cur.fetchone()
        assert row is not None
        return _progress(row), True

    async def export_progressed(self, export_id: str, **fields: int) -> None:
        """Record how far a build has got (bytes_written, bytes_gathered, parts_written)."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ValueError(f"not progress fields: {sorted(unknown)}")
        assignments = sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in fields)
        async with self.pool.connection() as conn:
            await conn.execute(
                sql.SQL("UPDATE exports SET {}, updated_at = now() WHERE export_id = %(export_id)s AND state = 'building'").format(
                    assignments
                ),
                {**fields, "export_id": uuid.UUID(export_id)},
            )

    async def store_export_chunks(self, export_id: str, size: int, chunks: Any) -> None:
        """Store a built export as sealed chunks (`chunks(export_id)` yields them in order) and mark it ready."""
        eid = uuid.UUID(export_id)
        async with self.pool.connection() as conn, conn.transaction():
            idx = 0
            async for sealed in chunks(export_id):
                await conn.execute("INSERT INTO export_chunks (export_id, idx, sealed) VALUES (%s, %s, %s)", (eid, idx, sealed))
                idx += 1
            await conn.execute(
                "UPDATE exports SET state = 'ready', bytes_written = %s, updated_at = now() WHERE export_id = %s", (size, eid)
            )

    async def fail_export(self, export_id: str, error_code: str) -> None:
        """A build that stopped: its chunks go, its row stays (until it expires) to say why."""
        eid = uuid.UUID(export_id)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM export_chunks WHERE export_id = %s", (eid,))
            await conn.execute(
                "UPDATE exports SET state = 'failed', error_code = %s, updated_at = now() WHERE export_id = %s", (error_code, eid)
            )

    async def latest_export(self, subject_id: str) -> ExportProgress | None:
        """The subject's newest unexpired export, in whatever state."""
        sid = _uuid(subject_id)
        if sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                _PROGRESS + " WHERE subject_id = %s AND expires_at > now() ORDER BY created_at DESC LIMIT 1", (sid,)
            )
            row = await cur.fetchone()
        return _progress(row) if row else None

    async def claim_export(self, export_id: str, subject_id: str) -> int | None:
        """Claim a ready, unexpired export of that subject for its one download; its number of chunks, None when there is none."""
        eid, sid = _uuid(export_id), _uuid(subject_id)
        if eid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE exports SET state = 'downloading', updated_at = now()"
                " WHERE export_id = %s AND subject_id = %s AND expires_at > now() AND state = 'ready'"
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

    async def claim_interrupted_exports(self, stale_after: timedelta, max_restarts: int, limit: int = 20) -> list[tuple[str, str]]:
        """Interrupted builds to start again, claimed once across replicas: (export id, subject id) each.

        Interrupted: cancelled by a shutdown (failed, EXPORT_INTERRUPTED), or still 'building' but not moved for
        `stale_after` (its process died). Only a subject's newest export, unexpired, and only while the subject has
        had fewer than `max_restarts` restarts within the export's lifetime (a build that kills privacy every time
        is not restarted forever). A claimed row is marked failed with EXPORT_RESTARTED and its chunks go.
        """
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "WITH claimed AS ("
                "  SELECT e.export_id FROM exports e"
                "  WHERE e.expires_at > now()"
                "    AND ((e.state = 'building' AND e.updated_at < now() - %(stale)s)"
                "      OR (e.state = 'failed' AND e.error_code = 'EXPORT_INTERRUPTED'))"
                "    AND NOT EXISTS (SELECT 1 FROM exports n WHERE n.subject_id = e.subject_id AND n.created_at > e.created_at)"
                "    AND (SELECT count(*) FROM exports r WHERE r.subject_id = e.subject_id AND r.expires_at > now()"
                "         AND r.error_code = 'EXPORT_RESTARTED') < %(max)s"
                "  ORDER BY e.created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " UPDATE exports x SET state = 'failed', error_code = 'EXPORT_RESTARTED', updated_at = now()"
                " FROM claimed WHERE x.export_id = claimed.export_id RETURNING x.export_id, x.subject_id",
                {"stale": stale_after, "max": max_restarts, "limit": limit},
            )
            rows = await cur.fetchall()
            for export_id, _ in rows:
                await conn.execute("DELETE FROM export_chunks WHERE export_id = %s", (export_id,))
        return [(str(r[0]), str(r[1])) for r in rows]

    async def unclaim_export(self, export_id: str) -> None:
        """A claimed restart that could not start: the export reads as interrupted again."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE exports SET error_code = 'EXPORT_INTERRUPTED', updated_at = now() WHERE export_id = %s AND error_code = 'EXPORT_RESTARTED'",
                (uuid.UUID(export_id),),
            )
