"""PostgreSQL storage for billing (psycopg 3, async), schema `billing` by default.

Every read-modify-write of one subscription or purchase runs in one transaction under an
advisory lock on its original transaction id, so concurrent deliveries of notifications and
purchase verifications serialise per subscription and the domain reducer sees a stable state.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_billing.domain.errors import TransactionBoundElsewhere
from likeness_billing.domain.pseudonyms import check_key, transaction_hash
from likeness_billing.domain.purchases import (
    Notification,
    NotificationOutcome,
    ProductType,
    StoreEnvironment,
    Transaction,
    canonical_subject_id,
    claimed_subject,
    newer_copy,
)
from likeness_billing.domain.quotas import CreditConsumption, QuotaPolicy
from likeness_billing.domain.retention import (
    NOTIFICATION_LINKS,
    PENDING_NOTIFICATIONS,
    PURCHASES,
    QUOTA_USAGE,
    SUBJECT_CATEGORIES,
    SUBSCRIPTIONS,
    SWEPT_CATEGORIES,
    CategoryAge,
)
from likeness_billing.domain.subscriptions import (
    StatusClaim,
    Subscription,
    SubscriptionStatus,
    reduce,
    snapshot_from_notification,
    snapshot_from_transaction,
)

# Applied by likeness_platform.db.apply_migrations; the package sits beside it in a checkout
# and in the image (editable install).
MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
DEFAULT_SCHEMA = "billing"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_PURCHASE_COLUMNS = (
    "transaction_id, original_transaction_id, subject_id, product_id, product_type, purchase_date, "
    "expires_date, offer_type, offer_discount_type, environment, revocation_date, revocation_reason, "
    "signed_date, app_account_token, signed_transaction"
)


def _check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError("schema must be a lower-case SQL identifier")
    return schema


class BillingRepository:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        ledger_key: bytes,
        schema: str = DEFAULT_SCHEMA,
    ) -> None:
        self._pool = pool
        self._key = check_key(ledger_key)
        self._schema = _check_schema(schema)

    # -- purchases and subscriptions -----------------------------------------------------

    async def bind_transaction(self, subject_id: str, transaction: Transaction) -> None:
        """Record a verified transaction for a subject, merging it into its subscription.

        Refuses a transaction whose original transaction is held by another subject. A
        tombstone left by an erasure is lifted: the person presented the purchase again.
        """
        subject = canonical_subject_id(subject_id)
        original = transaction.original_transaction_id
        async with self._pool.connection() as conn, conn.transaction():
            await self._lock(conn, "original", original)
            owner = await self._owner(conn, original, transaction.transaction_id)
            if owner is not None and owner != subject:
                raise TransactionBoundElsewhere("this App Store purchase is already linked to another account")
            await conn.execute(
                self._q("DELETE FROM {s}.tombstones WHERE original_transaction_hash = %s"),
                (self._hash(original),),
            )
            if transaction.is_subscription:
                state = await self._load_subscription(conn, original)
                await self._save_subscription(conn, subject, state, reduce(state, snapshot_from_transaction(transaction)))
            else:
                await self._merge_purchase(conn, subject, transaction)

    async def load_subscriptions(self, subject_id: str) -> list[Subscription]:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn, conn.transaction():
            await _consistent_read(conn)
            cur = await conn.cursor(row_factory=dict_row).execute(
                self._q("SELECT * FROM {s}.subscriptions WHERE subject_id = %s ORDER BY original_transaction_id"),
                (subject,),
            )
            rows = await cur.fetchall()
            purchases = await self._purchases_where(
                conn, "original_transaction_id = ANY(%s)", ([r["original_transaction_id"] for r in rows],)
            )
        by_original: dict[str, list[Transaction]] = {}
        for t in purchases:
            by_original.setdefault(t.original_transaction_id, []).append(t)
        return [_subscription(r, by_original.get(r["original_transaction_id"], [])) for r in rows]

    async def load_subscription(self, original_transaction_id: str) -> Subscription | None:
        async with self._pool.connection() as conn, conn.transaction():
            await _consistent_read(conn)
            return await self._load_subscription(conn, original_transaction_id)

    async def load_one_time_purchases(self, subject_id: str) -> list[Transaction]:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn:
            return await self._purchases_where(conn, "subject_id = %s AND product_type <> %s", (subject, ProductType.AUTO_RENEWABLE.value))

    # -- notifications ---------------------------------------------------------------------

    async def record_notification(self, notification: Notification, signed_payload: str) -> bool:
        """Store a verified notification before applying it; False when it needs no work.

        A notification already stored but never applied (the process died in between) is
        reported as needing work, so Apple's retry completes it.
        """
        original = notification.original_transaction_id
        claimed = claimed_subject(notification.transaction)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q(
                    "INSERT INTO {s}.processed_notifications (notification_uuid, notification_type, "
                    "subtype, signed_date, environment, outcome, original_transaction_hash, subject_id, "
                    "payload) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s) "
                    "ON CONFLICT (notification_uuid) DO NOTHING RETURNING 1"
                ),
                (
                    uuid.UUID(notification.notification_uuid),
                    notification.notification_type,
                    notification.subtype,
                    notification.signed_date,
                    notification.environment.value if notification.environment else None,
                    self._hash(original) if original else None,
                    uuid.UUID(claimed) if claimed else None,
                    signed_payload,
                ),
            )
            if await cur.fetchone() is not None:
                return True
            cur = await conn.execute(
                self._q("SELECT outcome FROM {s}.processed_notifications WHERE notification_uuid = %s"),
                (uuid.UUID(notification.notification_uuid),),
            )
            row = await cur.fetchone()
            return row is not None and row[0] == "pending"

    async def apply_notification(self, notification: Notification) -> NotificationOutcome:
        """Apply a recorded notification to the stored state, atomically with its outcome."""
        original = notification.original_transaction_id
        transaction = notification.transaction
        async with self._pool.connection() as conn, conn.transaction():
            if original is None:
                return await self._mark(conn, notification, NotificationOutcome.IGNORED)
            await self._lock(conn, "original", original)
            tombstone = await conn.execute(
                self._q("SELECT 1 FROM {s}.tombstones WHERE original_transaction_hash = %s"),
                (self._hash(original),),
            )
            if await tombstone.fetchone() is not None:
                return await self._mark(conn, notification, NotificationOutcome.DROPPED)
            owner = await self._owner(conn, original, transaction.transaction_id if transaction else None)
            if owner is None:
                return await self._mark(conn, notification, NotificationOutcome.PARKED)
            if transaction is not None and not transaction.is_subscription:
                await self._merge_purchase(conn, owner, transaction)
                return await self._mark(conn, notification, NotificationOutcome.APPLIED)
            snapshot = snapshot_from_notification(notification)
            if snapshot is None:
                return await self._mark(conn, notification, NotificationOutcome.IGNORED)
            state = await self._load_subscription(conn, original)
            await self._save_subscription(conn, owner, state, reduce(state, snapshot))
            return await self._mark(conn, notification, NotificationOutcome.APPLIED)

    async def parked_notifications(self, original_transaction_id: str) -> list[tuple[str, str]]:
        """Signed payloads that waited for someone to present this original transaction."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q(
                    "SELECT notification_uuid, payload FROM {s}.processed_notifications "
                    "WHERE original_transaction_hash = %s "
                    "AND outcome = 'parked' AND payload IS NOT NULL ORDER BY signed_date, notification_uuid"
                ),
                (self._hash(original_transaction_id),),
            )
            return [(str(row[0]), row[1]) for row in await cur.fetchall()]

    async def pending_notifications(self, received_before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """Payloads recorded but never applied (a crash between the two steps)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q(
                    "SELECT notification_uuid, payload FROM {s}.processed_notifications "
                    "WHERE outcome = 'pending' "
                    "AND payload IS NOT NULL AND received_at < %s ORDER BY received_at LIMIT %s"
                ),
                (received_before, limit),
            )
            return [(str(row[0]), row[1]) for row in await cur.fetchall()]

    async def drop_notification(self, notification_uuid: str) -> None:
        """Give up on a stored notification (its payload no longer verifies)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                self._q(
                    "UPDATE {s}.processed_notifications SET outcome = 'dropped', payload = NULL, "
                    "subject_id = NULL WHERE notification_uuid = %s"
                ),
                (uuid.UUID(notification_uuid),),
            )

    async def notification_outcome(self, notification_uuid: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q("SELECT outcome FROM {s}.processed_notifications WHERE notification_uuid = %s"),
                (uuid.UUID(notification_uuid),),
            )
            row = await cur.fetchone()
            return row[0] if row else None

    # -- quotas ----------------------------------------------------------------------------

    async def consume_credit(
        self,
        subject_id: str,
        request_id: str,
        day: date,
        policy: QuotaPolicy,
        unlimited: bool,
    ) -> CreditConsumption:
        """Take one generation credit for `request_id`, at most once per request id."""
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn, conn.transaction():
            # One subject's concurrent requests must not both see the last free credit.
            await self._lock(conn, "quota", str(subject))
            cur = await conn.execute(
                self._q("SELECT day FROM {s}.quota_usage WHERE subject_id = %s AND request_id = %s"),
                (subject, request_id),
            )
            existing = await cur.fetchone()
            used = await self._free_used(conn, subject, day)
            if existing is not None:
                return CreditConsumption(request_id, existing[0], True, unlimited, used, policy.remaining(used, unlimited))
            policy.check(used, unlimited)
            await conn.execute(
                self._q("INSERT INTO {s}.quota_usage (subject_id, request_id, day, free) VALUES (%s, %s, %s, %s)"),
                (subject, request_id, day, not unlimited),
            )
            if not unlimited:
                used += 1
            return CreditConsumption(request_id, day, False, unlimited, used, policy.remaining(used, unlimited))

    async def free_credits_used(self, subject_id: str, day: date) -> int:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn:
            return await self._free_used(conn, subject, day)

    # -- DataHolder ------------------------------------------------------------------------

    async def inventory(self, subject_id: str) -> dict[str, int]:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q(
                    "SELECT (SELECT count(*) FROM {s}.purchases WHERE subject_id = %(s)s), "
                    "(SELECT count(*) FROM {s}.subscriptions WHERE subject_id = %(s)s), "
                    "(SELECT count(*) FROM {s}.quota_usage WHERE subject_id = %(s)s), "
                    "(SELECT count(*) FROM {s}.processed_notifications WHERE subject_id = %(s)s)"
                ),
                {"s": subject},
            )
            row = await cur.fetchone()
        if row is None:
            raise RuntimeError("an aggregate query returned no row")
        return dict(zip(SUBJECT_CATEGORIES, (int(v) for v in row), strict=True))

    async def export(self, subject_id: str) -> dict[str, list[dict[str, Any]]]:
        """Everything held about the subject, as JSON-compatible values."""
        subject = uuid.UUID(canonical_subject_id(subject_id))
        queries: dict[str, LiteralString] = {
            PURCHASES: "SELECT " + _PURCHASE_COLUMNS + ", created_at FROM {s}.purchases "
            "WHERE subject_id = %s ORDER BY purchase_date, transaction_id",
            SUBSCRIPTIONS: "SELECT original_transaction_id, environment, product_id, status, will_renew, "
            "expires_date, grace_expires_date, last_signed_date, created_at, updated_at "
            "FROM {s}.subscriptions WHERE subject_id = %s ORDER BY original_transaction_id",
            QUOTA_USAGE: "SELECT request_id, day, free, created_at FROM {s}.quota_usage "
            "WHERE subject_id = %s ORDER BY created_at, request_id",
            PENDING_NOTIFICATIONS: "SELECT notification_uuid, notification_type, subtype, signed_date, "
            "environment, received_at, outcome, payload FROM {s}.processed_notifications "
            "WHERE subject_id = %s ORDER BY received_at",
        }
        out: dict[str, list[dict[str, Any]]] = {}
        async with self._pool.connection() as conn, conn.transaction():
            await _consistent_read(conn)
            for category, query in queries.items():
                cur = await conn.cursor(row_factory=dict_row).execute(self._q(query), (subject,))
                out[category] = [{k: _jsonable(v) for k, v in row.items()} for row in await cur.fetchall()]
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
            cur = await conn.cursor(row_factory=dict_row).execute(
                self._q(
                    "DELETE FROM {s}.purchases WHERE subject_id = %s RETURNING transaction_id, "
                    "original_transaction_id, product_id, product_type, environment, purchase_date, "
                    "expires_date, revocation_date"
                ),
                (subject,),
            )
            deleted = await cur.fetchall()
            await self._write_ledger(conn, deleted)
            all_originals = sorted(set(originals) | {r["original_transaction_id"] for r in deleted})
            hashes = [self._hash(o) for o in all_originals]
            async with conn.cursor() as c:
                await c.executemany(
                    self._q("INSERT INTO {s}.tombstones (original_transaction_hash) VALUES (%s) ON CONFLICT DO NOTHING"),
                    [(h,) for h in hashes],
                )
            subs = await conn.execute(self._q("DELETE FROM {s}.subscriptions WHERE subject_id = %s"), (subject,))
            usage = await conn.execute(self._q("DELETE FROM {s}.quota_usage WHERE subject_id = %s"), (subject,))
            waiting = await conn.execute(
                self._q(
                    "UPDATE {s}.processed_notifications SET outcome = 'dropped', payload = NULL, "
                    "subject_id = NULL WHERE subject_id = %s "
                    "OR (payload IS NOT NULL AND original_transaction_hash = ANY(%s))"
                ),
                (subject, hashes),
            )
            erased = {
                PURCHASES: len(deleted),
                SUBSCRIPTIONS: subs.rowcount,
                QUOTA_USAGE: usage.rowcount,
                PENDING_NOTIFICATIONS: waiting.rowcount,
            }
        return erased, await self.inventory(str(subject))

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        """Retention, per category: remove what was created before that category's cutoff.

        - quota_usage: usage rows are deleted;
        - pending_notifications: payloads still waiting (unbound or never applied) are dropped;
        - notification_links: processed notifications lose their keyed transaction hash.
        The notification UUID rows themselves stay: they are the deduplication key and hold
        nothing about anyone once unlinked. Re-deliveries of even older notifications stay
        harmless because a subscription ignores snapshots older than its newest.
        Categories without a cutoff are left alone.
        """
        unknown = set(cutoffs) - set(SWEPT_CATEGORIES) - {PURCHASES, SUBSCRIPTIONS}
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
        removed = dict.fromkeys(SWEPT_CATEGORIES, 0)
        async with self._pool.connection() as conn, conn.transaction():
            if QUOTA_USAGE in cutoffs:
                cur = await conn.execute(self._q("DELETE FROM {s}.quota_usage WHERE created_at < %s"), (cutoffs[QUOTA_USAGE],))
                removed[QUOTA_USAGE] = cur.rowcount
            if PENDING_NOTIFICATIONS in cutoffs:
                cur = await conn.execute(
                    self._q(
                        "UPDATE {s}.processed_notifications SET outcome = 'expired', payload = NULL, "
                        "subject_id = NULL WHERE payload IS NOT NULL AND received_at < %s"
                    ),
                    (cutoffs[PENDING_NOTIFICATIONS],),
                )
                removed[PENDING_NOTIFICATIONS] = cur.rowcount
            if NOTIFICATION_LINKS in cutoffs:
                cur = await conn.execute(
                    self._q(
                        "UPDATE {s}.processed_notifications SET original_transaction_hash = NULL "
                        "WHERE original_transaction_hash IS NOT NULL AND received_at < %s"
                    ),
                    (cutoffs[NOTIFICATION_LINKS],),
                )
                removed[NOTIFICATION_LINKS] = cur.rowcount
        return removed

    async def retention_status(self) -> dict[str, CategoryAge]:
        """Count and oldest creation time of each category with a retention limit."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q(
                    "SELECT (SELECT count(*) FROM {s}.quota_usage), "
                    "(SELECT min(created_at) FROM {s}.quota_usage), "
                    "(SELECT count(*) FROM {s}.processed_notifications WHERE payload IS NOT NULL), "
                    "(SELECT min(received_at) FROM {s}.processed_notifications WHERE payload IS NOT NULL), "
                    "(SELECT count(*) FROM {s}.processed_notifications "
                    "WHERE original_transaction_hash IS NOT NULL), "
                    "(SELECT min(received_at) FROM {s}.processed_notifications "
                    "WHERE original_transaction_hash IS NOT NULL)"
                )
            )
            row = await cur.fetchone()
        if row is None:
            raise RuntimeError("an aggregate query returned no row")
        return {
            QUOTA_USAGE: CategoryAge(int(row[0]), row[1]),
            PENDING_NOTIFICATIONS: CategoryAge(int(row[2]), row[3]),
            NOTIFICATION_LINKS: CategoryAge(int(row[4]), row[5]),
        }

    async def is_tombstoned(self, original_transaction_id: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                self._q("SELECT 1 FROM {s}.tombstones WHERE original_transaction_hash = %s"),
                (self._hash(original_transaction_id),),
            )
            return await cur.fetchone() is not None

    async def ledger_entries(self, transaction_id: str) -> list[dict[str, Any]]:
        """Ledger rows for a transaction id, found by its keyed hash (accounting look-ups)."""
        async with self._pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(
                self._q("SELECT * FROM {s}.ledger WHERE transaction_hash = %s"),
                (self._hash(transaction_id),),
            )
            return list(await cur.fetchall())

    # -- internals -------------------------------------------------------------------------

    def _q(self, text: LiteralString) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self._schema))

    def _hash(self, transaction_id: str) -> bytes:
        return transaction_hash(self._key, transaction_id)

    async def _lock(self, conn: AsyncConnection[Any], kind: str, key: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self._schema}:{kind}:{key}",))

    async def _owner(self, conn: AsyncConnection[Any], original: str, transaction_id: str | None) -> str | None:
        cur = await conn.execute(
            self._q(
                "SELECT subject_id FROM {s}.subscriptions WHERE original_transaction_id = %(o)s "
                "UNION ALL SELECT subject_id FROM {s}.purchases "
                "WHERE original_transaction_id = %(o)s OR transaction_id = %(t)s LIMIT 1"
            ),
            {"o": original, "t": transaction_id},
        )
        row = await cur.fetchone()
        return str(row[0]) if row else None

    async def _mark(self, conn: AsyncConnection[Any], notification: Notification, outcome: NotificationOutcome) -> NotificationOutcome:
        # A parked notification keeps its payload (and claimed subject) until a binding or
        # the sweep; every other outcome ends what was kept about it.
        if outcome is NotificationOutcome.PARKED:
            query = self._q("UPDATE {s}.processed_notifications SET outcome = 'parked' WHERE notification_uuid = %s")
        else:
            query = self._q(
                "UPDATE {s}.processed_notifications SET outcome = %s, payload = NULL, subject_id = NULL WHERE notification_uuid = %s"
            )
        params: tuple[Any, ...] = (uuid.UUID(notification.notification_uuid),)
        if outcome is not NotificationOutcome.PARKED:
            params = (outcome.value, *params)
        await conn.execute(query, params)
        return outcome

    async def _free_used(self, conn: AsyncConnection[Any], subject: uuid.UUID, day: date) -> int:
        cur = await conn.execute(
            self._q("SELECT count(*) FROM {s}.quota_usage WHERE subject_id = %s AND day = %s AND free"),
            (subject, day),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _purchases_where(self, conn: AsyncConnection[Any], where: LiteralString, params: tuple[Any, ...]) -> list[Transaction]:
        cur = await conn.cursor(row_factory=dict_row).execute(
            self._q("SELECT " + _PURCHASE_COLUMNS + " FROM {s}.purchases WHERE " + where + " ORDER BY transaction_id"),
            params,
        )
        return [_transaction(row) for row in await cur.fetchall()]

    async def _load_subscription(self, conn: AsyncConnection[Any], original: str) -> Subscription | None:
        cur = await conn.cursor(row_factory=dict_row).execute(
            self._q("SELECT * FROM {s}.subscriptions WHERE original_transaction_id = %s"), (original,)
        )
        row = await cur.fetchone()
        transactions = await self._purchases_where(
            conn,
            "original_transaction_id = %s AND product_type = %s",
            (original, ProductType.AUTO_RENEWABLE.value),
        )
        if row is None:
            if not transactions:
                return None
            # Rows without a subscription row cannot be written by this module; refuse to guess.
            raise RuntimeError("subscription purchases exist without their subscription row")
        return _subscription(row, transactions)

    async def _save_subscription(
        self,
        conn: AsyncConnection[Any],
        subject: str,
        before: Subscription | None,
        after: Subscription,
    ) -> None:
        old = {t.transaction_id: t for t in (before.transactions if before else ())}
        changed = [t for t in after.transactions if old.get(t.transaction_id) != t]
        await self._upsert_purchases(conn, subject, changed)
        claim = after.claim
        await conn.execute(
            self._q(
                "INSERT INTO {s}.subscriptions (original_transaction_id, subject_id, environment, "
                "product_id, status, will_renew, expires_date, grace_expires_date, last_signed_date, "
                "last_event_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (original_transaction_id) DO UPDATE SET product_id = excluded.product_id, "
                "status = excluded.status, will_renew = excluded.will_renew, "
                "expires_date = excluded.expires_date, grace_expires_date = excluded.grace_expires_date, "
                "last_signed_date = excluded.last_signed_date, last_event_key = excluded.last_event_key, "
                "updated_at = now()"
            ),
            (
                after.original_transaction_id,
                uuid.UUID(subject),
                after.environment.value,
                after.product_id,
                after.status.value,
                after.will_renew,
                after.expires_date,
                claim.grace_expires_date if claim else None,
                claim.signed_date if claim else None,
                claim.event_key if claim else None,
            ),
        )

    async def _merge_purchase(self, conn: AsyncConnection[Any], subject: str, transaction: Transaction) -> None:
        found = await self._purchases_where(conn, "transaction_id = %s", (transaction.transaction_id,))
        current = found[0] if found else None
        chosen = newer_copy(current, transaction)
        if chosen is not current:
            await self._upsert_purchases(conn, subject, [chosen])

    async def _upsert_purchases(self, conn: AsyncConnection[Any], subject: str, transactions: Iterable[Transaction]) -> None:
        rows = [_purchase_params(subject, t) for t in transactions]
        if not rows:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                self._q(
                    "INSERT INTO {s}.purchases (" + _PURCHASE_COLUMNS + ") VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (transaction_id) DO UPDATE SET product_id = excluded.product_id, "
                    "expires_date = excluded.expires_date, offer_type = excluded.offer_type, "
                    "offer_discount_type = excluded.offer_discount_type, "
                    "revocation_date = excluded.revocation_date, "
                    "revocation_reason = excluded.revocation_reason, signed_date = excluded.signed_date, "
                    "app_account_token = excluded.app_account_token, "
                    "signed_transaction = excluded.signed_transaction"
                ),
                rows,
            )

    async def _write_ledger(self, conn: AsyncConnection[Any], deleted: list[dict[str, Any]]) -> None:
        if not deleted:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                self._q(
                    "INSERT INTO {s}.ledger (transaction_hash, original_transaction_hash, product_id, "
                    "product_type, environment, purchase_date, expires_date, revocation_date) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                [
                    (
                        self._hash(r["transaction_id"]),
                        self._hash(r["original_transaction_id"]),
                        r["product_id"],
                        r["product_type"],
                        r["environment"],
                        r["purchase_date"],
                        r["expires_date"],
                        r["revocation_date"],
                    )
                    for r in deleted
                ],
            )


async def _consistent_read(conn: AsyncConnection[Any]) -> None:
    # A subscription row and its purchases are written together; read them at one snapshot.
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def _purchase_params(subject: str, t: Transaction) -> tuple[Any, ...]:
    return (
        t.transaction_id,
        t.original_transaction_id,
        uuid.UUID(subject),
        t.product_id,
        t.product_type.value,
        t.purchase_date,
        t.expires_date,
        t.offer_type,
        t.offer_discount_type,
        t.environment.value,
        t.revocation_date,
        t.revocation_reason,
        t.signed_date,
        t.app_account_token,
        t.signed_transaction,
    )


def _transaction(row: Mapping[str, Any]) -> Transaction:
    return Transaction(
        transaction_id=row["transaction_id"],
        original_transaction_id=row["original_transaction_id"],
        product_id=row["product_id"],
        product_type=ProductType(row["product_type"]),
        purchase_date=row["purchase_date"],
        expires_date=row["expires_date"],
        offer_type=row["offer_type"],
        offer_discount_type=row["offer_discount_type"],
        environment=StoreEnvironment(row["environment"]),
        revocation_date=row["revocation_date"],
        revocation_reason=row["revocation_reason"],
        signed_date=row["signed_date"],
        app_account_token=row["app_account_token"],
        signed_transaction=row["signed_transaction"],
    )


def _subscription(row: Mapping[str, Any], transactions: list[Transaction]) -> Subscription:
    claim = None
    if row["last_signed_date"] is not None:
        claim = StatusClaim(
            signed_date=row["last_signed_date"],
            event_key=row["last_event_key"],
            status=SubscriptionStatus(row["status"]),
            will_renew=row["will_renew"],
            grace_expires_date=row["grace_expires_date"],
        )
    return Subscription(
        original_transaction_id=row["original_transaction_id"],
        environment=StoreEnvironment(row["environment"]),
        claim=claim,
        transactions=tuple(sorted(transactions, key=lambda t: t.transaction_id)),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value
