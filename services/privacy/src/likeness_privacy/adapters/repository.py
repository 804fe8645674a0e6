"""Postgres repository of the privacy schema."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_platform.categories import Category
from likeness_platform.db import as_uuid as _uuid
from likeness_platform.db import fetch_row, from_row, oldest_age
from likeness_platform.errors import SubjectErasing
from likeness_privacy.domain import chain, checkpoints
from likeness_privacy.domain.pseudonyms import salted_commit
from likeness_privacy.domain.records import ErasureRow, ReceiptRow, SubjectRow

# Tables the runtime role may only read and append to (no UPDATE/DELETE grant); the SECURITY DEFINER
# functions of migrations/003_privacy_append_only.sql are the only way rows leave or lose their subject.
APPEND_ONLY = ("erasure_ledger", "access_log", "security_events", "generation_records")


class PrivacyRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    # subjects and keys -------------------------------------------------------------
    async def create_subject(self, kind: str, minor: bool, key_id: str, wrapped_for: Any, kek_id: str = "") -> SubjectRow:
        subject_id = uuid.uuid4()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.cursor(row_factory=dict_row).execute(
                "INSERT INTO subjects (subject_id, kind, minor) VALUES (%s, %s, %s) RETURNING *", (subject_id, kind, minor)
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO data_keys (subject_id, key_id, wrapped, kek_id) VALUES (%s, %s, %s, %s)",
                (subject_id, key_id, wrapped_for(str(subject_id)), kek_id),
            )
        return _subject(row)

    async def get_subject(self, subject_id: str) -> SubjectRow | None:
        sid = _uuid(subject_id)
        row = await fetch_row(self.pool, "SELECT * FROM subjects WHERE subject_id = %s", (sid,)) if sid else None
        return _subject(row) if row else None

    async def get_wrapped_key(self, subject_id: str) -> tuple[str, bytes, str] | None:
        """(key id, wrapped key, id of the KEK that wrapped it), None when there is no key."""
        sid = _uuid(subject_id)
        if sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT key_id, wrapped, kek_id FROM data_keys WHERE subject_id = %s", (sid,))
            row = await cur.fetchone()
        return (row[0], bytes(row[1]), row[2]) if row else None

    async def rewrap(self, current_kek_id: str, rewrap: Any, batch: int = 500) -> int:
        """Move up to `batch` keys not under the current KEK to it; `rewrap(subject_id, kek_id, wrapped)` gives
        the new wrapping (or None when the old KEK is gone). How many were moved."""
        moved = 0
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT subject_id, kek_id, wrapped FROM data_keys WHERE kek_id <> %s LIMIT %s FOR UPDATE SKIP LOCKED",
                (current_kek_id, batch),
            )
            for sid, kek_id, wrapped in await cur.fetchall():
                new = rewrap(str(sid), kek_id, bytes(wrapped))
                if new is None:
                    continue
                await conn.execute("UPDATE data_keys SET wrapped = %s, kek_id = %s WHERE subject_id = %s", (new, current_kek_id, sid))
                moved += 1
        return moved

    async def destroy_key(self, subject_id: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM data_keys WHERE subject_id = %s", (uuid.UUID(subject_id),))
            return cur.rowcount

    # erasures -----------------------------------------------------------------------
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

    # records --------------------------------------------------------------------------
    async def add_generation(
        self, subject_id: str, pseudonym: str, interface: str, parameters: Mapping[str, str], status: str, latency_ms: float
    ) -> str:
        """Record a generation of an active subject; SubjectErasing once its erasure has started (checked in this transaction)."""
        record_id = uuid.uuid4()
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            await conn.execute(
                "INSERT INTO generation_records (record_id, subject_pseudonym, interface, parameters, status, latency_ms)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (record_id, pseudonym, interface, json.dumps(dict(parameters)), status, latency_ms),
            )
        return str(record_id)

    async def add_security_event(
        self,
        pseudonym: str | None,
        event_type: str,
        ip_hash: str,
        ip_prefix: str,
        caller: str = "",
        method: str = "",
        subject_id: str = "",
    ) -> None:
        """A security event stays (it is about the service's safety), but is linked to a subject only while it is active."""
        async with self.pool.connection() as conn, conn.transaction():
            if subject_id and not await _is_active(conn, subject_id):
                pseudonym = None
            await conn.execute(
                "INSERT INTO security_events (event_id, subject_pseudonym, event_type, ip_hash, ip_prefix, caller, method)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), pseudonym, event_type, ip_hash, ip_prefix, caller, method),
            )

    async def add_access(self, subject_id: str, actor: str, resource: str, purpose: str) -> str:
        """Chain an access of an active subject's data; SubjectErasing once its erasure has started.

        The chained body names only the kind of resource; the full resource (ids the subject's export
        contains) is kept beside it in resource_ref, committed to with the subject id, and unlinked with them.
        """
        salt = os.urandom(16)
        commit = salted_commit(salt, subject_id + "\n" + resource)
        kind = resource_kind(resource)
        now = datetime.now(UTC)
        body = {"subject_commit": commit, "actor": actor, "resource": kind, "purpose": purpose, "at": now.isoformat()}
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            prev, entry_hash = await _link_to_chain(conn, "access_log", body)
            await conn.execute(
                "INSERT INTO access_log (subject_id, salt, subject_commit, actor, resource, resource_ref, purpose, created_at, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (_uuid(subject_id), salt, commit, actor, kind, resource, purpose, now, prev, entry_hash),
            )
        return entry_hash

    async def access_entries(self) -> list[chain.ChainEntry]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT seq, subject_commit, actor, resource, purpose, created_at, prev_hash, hash FROM access_log ORDER BY seq"
            )
            return [
                chain.ChainEntry(
                    r[0],
                    {"subject_commit": r[1], "actor": r[2], "resource": r[3], "purpose": r[4], "at": r[5].astimezone(UTC).isoformat()},
                    r[6],
                    r[7],
                )
                for r in await cur.fetchall()
            ]

    # exports ----------------------------------------------------------------------------
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

    # holder view of privacy's own data -------------------------------------------------------
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


async def _count(conn: Any, query: str | sql.Composable, params: tuple[Any, ...]) -> int:
    """The row count one of the schema's functions returns."""
    row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row else 0


async def _is_active(conn: Any, subject_id: str) -> bool:
    """Inside a transaction: whether the subject is active, holding its row (FOR SHARE) so erasure cannot start meanwhile."""
    sid = _uuid(subject_id)
    if sid is None:
        return False
    row = await (await conn.execute("SELECT state FROM subjects WHERE subject_id = %s FOR SHARE", (sid,))).fetchone()
    return row is not None and row[0] == "active"


async def _require_active(conn: Any, subject_id: str) -> None:
    if not await _is_active(conn, subject_id):
        raise SubjectErasing("the subject is unknown, being erased or erased; nothing more is recorded about it")


def resource_kind(resource: str) -> str:
    """What the chained access log keeps of a resource: its first two path segments (``ingestion/upload``), no ids."""
    return "/".join(resource.split("/")[:2])


def _subject(row: Mapping[str, Any]) -> SubjectRow:
    return from_row(SubjectRow, row)


# The advisory lock of each hash chain: one writer at a time extends it.
_CHAIN_LOCKS = {"erasure_ledger": "likeness-erasure-ledger", "access_log": "likeness-access-log"}


async def _link_to_chain(conn: Any, table: str, body: dict[str, Any]) -> tuple[str, str]:
    """Inside a transaction: lock the chain kept in `table` and link `body` to its last entry; (prev_hash, hash)."""
    await conn.execute(sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(_CHAIN_LOCKS[table])))
    cur = await conn.execute(sql.SQL("SELECT hash FROM {} ORDER BY seq DESC LIMIT 1").format(sql.Identifier(table)))
    last = await cur.fetchone()
    prev = last[0] if last else chain.GENESIS
    return prev, chain.link(prev, body)
