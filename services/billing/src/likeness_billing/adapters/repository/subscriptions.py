"""Purchases and subscriptions: binding verified transactions to subjects, and reading them back.

Every read-modify-write of one subscription or purchase runs in one transaction under an
advisory lock on its original transaction id, so concurrent deliveries of notifications and
purchase verifications serialise per subscription and the domain reducer sees a stable state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from likeness_billing.domain.errors import TransactionBoundElsewhere
from likeness_billing.domain.purchases import ProductType, Transaction, canonical_subject_id, newer_copy
from likeness_billing.domain.subscriptions import Subscription, reduce, snapshot_from_transaction

from . import rows
from .store import Store, consistent_read


class SubscriptionStore(Store):
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
            await consistent_read(conn)
            cur = await conn.cursor(row_factory=dict_row).execute(
                self._q("SELECT * FROM {s}.subscriptions WHERE subject_id = %s ORDER BY original_transaction_id"),
                (subject,),
            )
            found = await cur.fetchall()
            purchases = await self._purchases_where(
                conn, "original_transaction_id = ANY(%s)", ([r["original_transaction_id"] for r in found],)
            )
        by_original: dict[str, list[Transaction]] = {}
        for t in purchases:
            by_original.setdefault(t.original_transaction_id, []).append(t)
        return [rows.subscription(r, by_original.get(r["original_transaction_id"], [])) for r in found]

    async def load_subscription(self, original_transaction_id: str) -> Subscription | None:
        async with self._pool.connection() as conn, conn.transaction():
            await consistent_read(conn)
            return await self._load_subscription(conn, original_transaction_id)

    async def load_one_time_purchases(self, subject_id: str) -> list[Transaction]:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn:
            return await self._purchases_where(conn, "subject_id = %s AND product_type <> %s", (subject, ProductType.AUTO_RENEWABLE.value))

    async def _owner(self, conn: AsyncConnection[Any], original: str, transaction_id: str | None) -> str | None:
        row = await self._row(
            conn,
            "SELECT subject_id FROM {s}.subscriptions WHERE original_transaction_id = %(o)s "
            "UNION ALL SELECT subject_id FROM {s}.purchases "
            "WHERE original_transaction_id = %(o)s OR transaction_id = %(t)s LIMIT 1",
            {"o": original, "t": transaction_id},
        )
        return str(row[0]) if row else None

    async def _purchases_where(self, conn: AsyncConnection[Any], where: LiteralString, params: tuple[Any, ...]) -> list[Transaction]:
        cur = await conn.cursor(row_factory=dict_row).execute(
            self._q("SELECT " + rows.PURCHASE_COLUMNS + " FROM {s}.purchases WHERE " + where + " ORDER BY transaction_id"),
            params,
        )
        return [rows.transaction(row) for row in await cur.fetchall()]

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
        return rows.subscription(row, transactions)

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
            rows.subscription_params(subject, after),
        )

    async def _merge_purchase(self, conn: AsyncConnection[Any], subject: str, transaction: Transaction) -> None:
        found = await self._purchases_where(conn, "transaction_id = %s", (transaction.transaction_id,))
        current = found[0] if found else None
        chosen = newer_copy(current, transaction)
        if chosen is not current:
            await self._upsert_purchases(conn, subject, [chosen])

    async def _upsert_purchases(self, conn: AsyncConnection[Any], subject: str, transactions: Iterable[Transaction]) -> None:
        params = [rows.purchase_params(subject, t) for t in transactions]
        if not params:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                self._q(
                    "INSERT INTO {s}.purchases (" + rows.PURCHASE_COLUMNS + ") VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (transaction_id) DO UPDATE SET product_id = excluded.product_id, "
                    "expires_date = excluded.expires_date, offer_type = excluded.offer_type, "
                    "offer_discount_type = excluded.offer_discount_type, "
                    "revocation_date = excluded.revocation_date, "
                    "revocation_reason = excluded.revocation_reason, signed_date = excluded.signed_date, "
                    "app_account_token = excluded.app_account_token, "
                    "signed_transaction = excluded.signed_transaction"
                ),
                params,
            )
