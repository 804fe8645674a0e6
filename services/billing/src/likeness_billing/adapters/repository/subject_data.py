"""Billing's data about one subject, as the DataHolder contract needs it: counted, exported, erased.

Erasure keeps only keyed-hash ledger rows (for accounting) and tombstones (so later
notifications for an erased purchase recreate nothing).
"""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from likeness_billing.domain.purchases import NotificationOutcome, canonical_subject_id
from likeness_billing.domain.retention import PENDING_NOTIFICATIONS, PURCHASES, QUOTA_USAGE, SUBJECT_CATEGORIES, SUBSCRIPTIONS

from . import rows
from .notifications import FORGET_NOTIFICATIONS
from .store import Store, consistent_read

# The table holding each category, by a `subject_id` column.
_SUBJECT_TABLES: dict[str, LiteralString] = {
    PURCHASES: "purchases",
    SUBSCRIPTIONS: "subscriptions",
    QUOTA_USAGE: "quota_usage",
    PENDING_NOTIFICATIONS: "processed_notifications",
}
_EXPORTS: dict[str, LiteralString] = {
    PURCHASES: "SELECT " + rows.PURCHASE_COLUMNS + ", created_at FROM {s}.purchases "
    "WHERE subject_id = %s ORDER BY purchase_date, transaction_id",
    SUBSCRIPTIONS: "SELECT original_transaction_id, environment, product_id, status, will_renew, "
    "expires_date, grace_expires_date, last_signed_date, created_at, updated_at "
    "FROM {s}.subscriptions WHERE subject_id = %s ORDER BY original_transaction_id",
    QUOTA_USAGE: "SELECT request_id, day, free, created_at FROM {s}.quota_usage WHERE subject_id = %s ORDER BY created_at, request_id",
    PENDING_NOTIFICATIONS: "SELECT notification_uuid, notification_type, subtype, signed_date, "
    "environment, received_at, outcome, payload FROM {s}.processed_notifications "
    "WHERE subject_id = %s ORDER BY received_at",
}
_LEDGER_COLUMNS: tuple[LiteralString, ...] = (
    "product_id",
    "product_type",
    "environment",
    "purchase_date",
    "expires_date",
    "revocation_date",
)


class SubjectDataStore(Store):
    async def inventory(self, subject_id: str) -> dict[str, int]:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        counts = await self._counts(
            ["(SELECT count(*) FROM {s}." + _SUBJECT_TABLES[c] + " WHERE subject_id = %(s)s)" for c in SUBJECT_CATEGORIES],
            {"s": subject},
        )
        return dict(zip(SUBJECT_CATEGORIES, (int(v) for v in counts), strict=True))

    async def export(self, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        """Everything held about the subject, as JSON-compatible values."""
        subject = uuid.UUID(canonical_subject_id(subject_id))
        out: dict[str, list[dict[str, Any]]] = {}
        async with self._pool.connection() as conn, conn.transaction():
            await consistent_read(conn)
            for category, query in _EXPORTS.items():
                cur = await conn.cursor(row_factory=dict_row).execute(self._q(query), (subject,))
                out[category] = [{k: rows.jsonable(v) for k, v in row.items()} for row in await cur.fetchall()]
        return out

    async def erase(self, subject_id: str) -> tuple[dict[str, int], dict[str, int]]:
        """Delete the subject's data; keep only keyed-hash ledger rows and tombstones.

        Returns the counts erased and the counts still found when reading back afterwards.
        Idempotent: a second call erases nothing and reports zeros.
        """
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                self._q(
                    "SELECT original_transaction_id FROM {s}.purchases WHERE subject_id = %(s)s "
                    "UNION SELECT original_transaction_id FROM {s}.subscriptions WHERE subject_id = %(s)s"
                ),
                {"s": subject},
            )
            originals = sorted(row[0] for row in await cur.fetchall())
            # Wait out any notification or verification in flight for these subscriptions;
            # once they commit, the tombstones below make later ones drop.
            for original in originals:
                await self._lock(conn, "original", original)
            deleted = await self._delete_purchases(conn, subject)
            hashes = [self._hash(o) for o in sorted(set(originals) | {r["original_transaction_id"] for r in deleted})]
            async with conn.cursor() as c:
                await c.executemany(
                    self._q("INSERT INTO {s}.tombstones (original_transaction_hash) VALUES (%s) ON CONFLICT DO NOTHING"),
                    [(h,) for h in hashes],
                )
            erased = {
                PURCHASES: len(deleted),
                SUBSCRIPTIONS: await self._rowcount(conn, "DELETE FROM {s}.subscriptions WHERE subject_id = %s", (subject,)),
                QUOTA_USAGE: await self._rowcount(conn, "DELETE FROM {s}.quota_usage WHERE subject_id = %s", (subject,)),
                PENDING_NOTIFICATIONS: await self._rowcount(
                    conn,
                    FORGET_NOTIFICATIONS + "subject_id = %s OR (payload IS NOT NULL AND original_transaction_hash = ANY(%s))",
                    (NotificationOutcome.DROPPED.value, subject, hashes),
                ),
            }
        return erased, await self.inventory(str(subject))

    async def ledger_entries(self, transaction_id: str) -> list[dict[str, Any]]:
        """Ledger rows for a transaction id, found by its keyed hash (accounting look-ups)."""
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                self._q("SELECT * FROM {s}.ledger WHERE transaction_hash = %s"),
                (self._hash(transaction_id),),
            )
            return list(await cur.fetchall())

    async def _delete_purchases(self, conn: AsyncConnection[Any], subject: uuid.UUID) -> list[dict[str, Any]]:
        """Delete the subject's purchases, keeping each in the ledger under keyed hashes."""
        columns = ", ".join(_LEDGER_COLUMNS)
        cur = await conn.cursor(row_factory=dict_row).execute(
            self._q("DELETE FROM {s}.purchases WHERE subject_id = %s RETURNING transaction_id, original_transaction_id, " + columns),
            (subject,),
        )
        deleted = await cur.fetchall()
        if deleted:
            async with conn.cursor() as c:
                await c.executemany(
                    self._q(
                        "INSERT INTO {s}.ledger (transaction_hash, original_transaction_hash, " + columns + ") "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                    ),
                    [
                        (self._hash(r["transaction_id"]), self._hash(r["original_transaction_id"]), *(r[k] for k in _LEDGER_COLUMNS))
                        for r in deleted
                    ],
                )
        return deleted
