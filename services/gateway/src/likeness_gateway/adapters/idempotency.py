"""Idempotency keys in PostgreSQL: one row per (subject, key), holding what the first call answered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

# A key counts for this long; an older row is deleted when the key comes again.
KEY_LIFETIME = "24 hours"
# A first call still unfinished after this long is taken to have died (generations take seconds, upstream deadlines minutes).
ABANDONED = "10 minutes"


@dataclass(frozen=True)
class StoredKey:
    interface: str
    body_hash: str
    # None while the first call is still running.
    status_code: int | None
    response: Any


class IdempotencyKeys:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def claim(self, subject_id: str, key: str, interface: str, body_hash: str) -> StoredKey | None:
        """Take the key for a new call (None), or return what it already holds."""
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn, conn.transaction():
            # An expired key, or a first call abandoned mid-work (its process died), no longer holds the key.
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE subject_id = %s AND key = %s AND"
                " (created_at < now() - %s::interval OR (status_code IS NULL AND created_at < now() - %s::interval))",
                (sid, key, KEY_LIFETIME, ABANDONED),
            )
            cur = await conn.execute(
                "INSERT INTO idempotency_keys (subject_id, key, interface, body_hash) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (subject_id, key) DO NOTHING",
                (sid, key, interface, body_hash),
            )
            if cur.rowcount == 1:
                return None
            row = await (
                await conn.execute(
                    "SELECT interface, body_hash, status_code, response FROM idempotency_keys WHERE subject_id = %s AND key = %s",
                    (sid, key),
                )
            ).fetchone()
        assert row is not None
        return StoredKey(*row)

    async def complete(self, subject_id: str, key: str, status_code: int, response: Any) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE idempotency_keys SET status_code = %s, response = %s WHERE subject_id = %s AND key = %s",
                (status_code, Jsonb(response), uuid.UUID(subject_id), key),
            )

    async def release(self, subject_id: str, key: str) -> None:
        """The call failed and did nothing: the key may be used again (a retry runs the work)."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM idempotency_keys WHERE subject_id = %s AND key = %s", (uuid.UUID(subject_id), key))

    async def forget_subject(self, subject_id: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM idempotency_keys WHERE subject_id = %s", (uuid.UUID(subject_id),))
            return cur.rowcount

    async def sweep(self) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - %s::interval", (KEY_LIFETIME,))
            return cur.rowcount
