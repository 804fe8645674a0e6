"""Privacy's own data as a holder sees it (inventory, erase, export) and its retention sweep."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from likeness_platform.categories import Category
from likeness_platform.db import as_uuid as _uuid
from likeness_platform.db import oldest_age
from likeness_privacy.adapters.repository._common import RepositoryBase, _count


class RetentionRepository(RepositoryBase):
    async def inventory(self, subject_id: str, pseudonym: str) -> dict[str, int]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM subjects WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM data_keys WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM generation_records WHERE subject_pseudonym = %(p)s),"
                " (SELECT count(*) FROM security_events WHERE subject_pseudonym = %(p)s),"
                " (SELECT count(*) FROM access_log WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM exports WHERE subject_id = %(s)s)",
                {"s": sid, "p": pseudonym},
            )
            row = await cur.fetchone()
        assert row is not None
        names = [
            Category.SUBJECTS,
            Category.DATA_KEYS,
            Category.GENERATION_RECORDS,
            Category.SECURITY_EVENTS,
            Category.ACCESS_LOG,
            Category.EXPORTS,
        ]
        return dict(zip(names, (int(v) for v in row), strict=True))

    async def erase_records(self, subject_id: str, pseudonym: str) -> dict[str, int]:
        """Erase what privacy holds about a subject apart from the subject row and key (done last)."""
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn, conn.transaction():
            gen = await _count(conn, "SELECT forget_generation_records(%s)", (pseudonym,))
            sec = await _count(conn, "SELECT forget_security_events(%s)", (pseudonym,))
            acc = await _count(conn, "SELECT unlink_access_log(%s)", (sid,))
            exp = (await conn.execute("DELETE FROM exports WHERE subject_id = %s", (sid,))).rowcount
        return {
            Category.GENERATION_RECORDS: gen,
            Category.SECURITY_EVENTS: sec,
            Category.ACCESS_LOG: acc,
            Category.EXPORTS: exp,
        }

    async def export_records(self, subject_id: str, pseudonym: str) -> dict[str, Any]:
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn:
            c = conn.cursor(row_factory=dict_row)
            subject = await (
                await c.execute("SELECT subject_id, kind, state, minor, created_at FROM subjects WHERE subject_id = %s", (sid,))
            ).fetchall()
            gen = await (
                await c.execute(
                    "SELECT interface, parameters, status, latency_ms, created_at FROM generation_records WHERE subject_pseudonym = %s ORDER BY created_at",
                    (pseudonym,),
                )
            ).fetchall()
            sec = await (
                await c.execute(
                    "SELECT event_type, ip_prefix, created_at FROM security_events WHERE subject_pseudonym = %s ORDER BY created_at",
                    (pseudonym,),
                )
            ).fetchall()
            acc = await (
                await c.execute(
                    "SELECT actor, coalesce(resource_ref, resource) AS resource, purpose, created_at FROM access_log"
                    " WHERE subject_id = %s ORDER BY seq",
                    (sid,),
                )
            ).fetchall()
        return {"subject": subject, "generation_records": gen, "security_events": sec, "access_log": acc}

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        """Remove records older than their cutoff; the audit tables' functions never go below their retention."""
        removed: dict[str, int] = {}
        async with self.pool.connection() as conn:
            for category, function in (
                (Category.GENERATION_RECORDS, "sweep_generation_records"),
                (Category.SECURITY_EVENTS, "sweep_security_events"),
                (Category.ACCESS_LOG, "sweep_access_log"),
            ):
                cutoff = cutoffs.get(category)
                if cutoff is None:
                    continue
                removed[category] = await _count(conn, sql.SQL("SELECT {}(%s)").format(sql.Identifier(function)), (cutoff,))
            cur = await conn.execute(
                "DELETE FROM exports WHERE expires_at <= now() OR created_at < %s", (cutoffs.get(Category.EXPORTS, datetime.now(UTC)),)
            )
            removed[Category.EXPORTS] = cur.rowcount
        return removed

    async def oldest(self) -> dict[str, tuple[int, float]]:
        kept = (Category.GENERATION_RECORDS, Category.SECURITY_EVENTS, Category.ACCESS_LOG, Category.EXPORTS)
        return {category: await oldest_age(self.pool, category) for category in kept}
