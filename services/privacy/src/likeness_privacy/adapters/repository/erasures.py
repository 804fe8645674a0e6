"""Erasures, their receipts and re-verifications, and the erasure ledger."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from likeness_platform.db import as_uuid as _uuid
from likeness_privacy.adapters.repository._common import RepositoryBase, _link_to_chain
from likeness_privacy.domain import chain, checkpoints
from likeness_privacy.domain.records import ErasureRow, ReceiptRow


class ErasuresRepository(RepositoryBase):
    async def start_erasure(self, subject_id: str, pseudonym: str, reason: str, holders: list[str]) -> tuple[ErasureRow, bool]:
        """Mark the subject erasing and create the erasure, or return the one already running."""
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT state FROM subjects WHERE subject_id = %s FOR UPDATE", (sid,))
            row = await cur.fetchone()
            if row is not None and row[0] == "erasing":
                cur = await conn.execute("SELECT erasure_id FROM erasures WHERE subject_id = %s AND status = 'in_progress'", (sid,))
                existing = await cur.fetchone()
                if existing:
                    found = await self._load_erasure(conn, existing[0])
                    assert found is not None
                    return found, False
            await conn.execute("UPDATE subjects SET state = 'erasing' WHERE subject_id = %s", (sid,))
            erasure_id = uuid.uuid4()
            now = datetime.now(UTC)
            await conn.execute(
                "INSERT INTO erasures (erasure_id, subject_id, subject_pseudonym, reason, status, requested_at, deadline)"
                " VALUES (%s, %s, %s, %s, 'in_progress', %s, %s)",
                (erasure_id, sid, pseudonym, reason, now, now + timedelta(hours=24)),
            )
            for holder in holders:
                await conn.execute("INSERT INTO erasure_receipts (erasure_id, holder) VALUES (%s, %s)", (erasure_id, holder))
            created = await self._load_erasure(conn, erasure_id)
            assert created is not None
            return created, True

    async def latest_erasure_for_pseudonym(self, pseudonym: str) -> ErasureRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT erasure_id FROM erasures WHERE subject_pseudonym = %s ORDER BY requested_at DESC LIMIT 1", (pseudonym,)
            )
            row = await cur.fetchone()
            return await self._load_erasure(conn, row[0]) if row else None

    async def get_erasure(self, erasure_id: str) -> ErasureRow | None:
        eid = _uuid(erasure_id)
        if eid is None:
            return None
        async with self.pool.connection() as conn:
            return await self._load_erasure(conn, eid)

    async def open_erasures(self) -> list[ErasureRow]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT erasure_id FROM erasures WHERE status = 'in_progress' ORDER BY requested_at")
            ids = [r[0] for r in await cur.fetchall()]
            out = []
            for eid in ids:
                row = await self._load_erasure(conn, eid)
                if row:
                    out.append(row)
            return out

    async def _load_erasure(self, conn: Any, erasure_id: uuid.UUID) -> ErasureRow | None:
        cur = await conn.cursor(row_factory=dict_row).execute("SELECT * FROM erasures WHERE erasure_id = %s", (erasure_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        cur = await conn.cursor(row_factory=dict_row).execute(
            "SELECT * FROM erasure_receipts WHERE erasure_id = %s ORDER BY holder", (erasure_id,)
        )
        receipts = [
            ReceiptRow(r["holder"], r["erased"], r["remaining"], r["completed_at"], r["attempts"], r["last_error"], r["next_attempt_at"])
            for r in await cur.fetchall()
        ]
        return ErasureRow(
            erasure_id=str(row["erasure_id"]),
            subject_id=str(row["subject_id"]) if row["subject_id"] else None,
            subject_pseudonym=row["subject_pseudonym"],
            reason=row["reason"],
            status=row["status"],
            requested_at=row["requested_at"],
            deadline=row["deadline"],
            completed_at=row["completed_at"],
            ledger_hash=row["ledger_hash"],
            deadline_breached=row["deadline_breached"],
            receipts=receipts,
        )

    async def record_receipt(self, erasure_id: str, holder: str, erased: Mapping[str, int], remaining: Mapping[str, int]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE erasure_receipts SET erased = %s, remaining = %s, completed_at = now(), attempts = attempts + 1,"
                " last_error = '' WHERE erasure_id = %s AND holder = %s",
                (json.dumps(dict(erased)), json.dumps(dict(remaining)), uuid.UUID(erasure_id), holder),
            )

    async def record_failure(self, erasure_id: str, holder: str, error: str, retry_in: float) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE erasure_receipts SET attempts = attempts + 1, last_error = %s,"
                " next_attempt_at = now() + make_interval(secs => %s) WHERE erasure_id = %s AND holder = %s",
                (error[:500], retry_in, uuid.UUID(erasure_id), holder),
            )

    async def reopen_receipt(self, erasure_id: str, holder: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE erasure_receipts SET completed_at = NULL, next_attempt_at = now() WHERE erasure_id = %s AND holder = %s",
                (uuid.UUID(erasure_id), holder),
            )

    async def mark_deadline_breached(self, erasure_id: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE erasures SET deadline_breached = true WHERE erasure_id = %s AND NOT deadline_breached",
                (uuid.UUID(erasure_id),),
            )
            return cur.rowcount == 1

    async def complete_erasure(self, erasure: ErasureRow, body: dict[str, Any], reverify: tuple[bytes, datetime] | None = None) -> str:
        """Append the ledger entry, close the erasure, drop the subject row and schedule the re-verification, atomically."""
        async with self.pool.connection() as conn, conn.transaction():
            if reverify is not None:
                await conn.execute(
                    "INSERT INTO erasure_reverifications (erasure_id, sealed_subject, due_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (erasure_id) DO NOTHING",
                    (uuid.UUID(erasure.erasure_id), reverify[0], reverify[1]),
                )
            prev, entry_hash = await _link_to_chain(conn, "erasure_ledger", body)
            await conn.execute(
                "INSERT INTO erasure_ledger (erasure_id, body, prev_hash, hash) VALUES (%s, %s, %s, %s)",
                (uuid.UUID(erasure.erasure_id), json.dumps(body), prev, entry_hash),
            )
            await conn.execute(
                "UPDATE erasures SET status = 'completed', completed_at = now(), ledger_hash = %s, subject_id = NULL WHERE erasure_id = %s",
                (entry_hash, uuid.UUID(erasure.erasure_id)),
            )
            if erasure.subject_id:
                await conn.execute("DELETE FROM subjects WHERE subject_id = %s", (uuid.UUID(erasure.subject_id),))
        return entry_hash

    async def due_reverifications(self) -> list[tuple[str, bytes, int]]:
        """(erasure id, sealed subject id, attempts) of the re-verifications due now."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT erasure_id, sealed_subject, attempts FROM erasure_reverifications WHERE due_at <= now() ORDER BY due_at"
            )
            return [(str(r[0]), bytes(r[1]), int(r[2])) for r in await cur.fetchall()]

    async def finish_reverification(self, erasure_id: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM erasure_reverifications WHERE erasure_id = %s", (uuid.UUID(erasure_id),))

    async def postpone_reverification(self, erasure_id: str, seconds: float) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE erasure_reverifications SET due_at = now() + make_interval(secs => %s), attempts = attempts + 1"
                " WHERE erasure_id = %s",
                (seconds, uuid.UUID(erasure_id)),
            )

    async def ledger_entries(self) -> list[chain.ChainEntry]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT seq, body, prev_hash, hash FROM erasure_ledger ORDER BY seq")
            return [chain.ChainEntry(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]

    async def chain_heads(self) -> dict[str, checkpoints.Head | None]:
        """The newest entry (seq, hash) of each hash chain, None for an empty one."""
        heads: dict[str, checkpoints.Head | None] = {}
        async with self.pool.connection() as conn:
            for table in checkpoints.CHAINS:
                cur = await conn.execute(sql.SQL("SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1").format(sql.Identifier(table)))
                row = await cur.fetchone()
                heads[table] = checkpoints.Head(int(row[0]), row[1]) if row else None
        return heads

    async def chain_entry(self, table: str, seq: int) -> tuple[str | None, int | None]:
        """(the hash of that chain's entry `seq` or None when it is not there, the chain's first seq or None)."""
        if table not in checkpoints.CHAINS:
            raise ValueError(f"not a hash chain: {table}")
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("SELECT (SELECT hash FROM {t} WHERE seq = %s), (SELECT min(seq) FROM {t})").format(t=sql.Identifier(table)),
                (seq,),
            )
            row = await cur.fetchone()
        assert row is not None
        return row[0], (int(row[1]) if row[1] is not None else None)
