"""App Store server notifications: recorded once, applied under the subscription's lock."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection

from likeness_billing.domain.purchases import Notification, NotificationOutcome, claimed_subject
from likeness_billing.domain.subscriptions import reduce, snapshot_from_notification

from .store import Params
from .subscriptions import SubscriptionStore

# Ends what is kept about a notification (its payload and claimed subject), with an outcome
# as the first parameter; the caller appends the WHERE condition.
FORGET_NOTIFICATIONS: LiteralString = "UPDATE {s}.processed_notifications SET outcome = %s, payload = NULL, subject_id = NULL WHERE "
_TOMBSTONED: LiteralString = "SELECT 1 FROM {s}.tombstones WHERE original_transaction_hash = %s"
_OUTCOME: LiteralString = "SELECT outcome FROM {s}.processed_notifications WHERE notification_uuid = %s"


class NotificationStore(SubscriptionStore):
    async def record_notification(self, notification: Notification, signed_payload: str) -> bool:
        """Store a verified notification before applying it; False when it needs no work.

        A notification already stored but never applied (the process died in between) is
        reported as needing work, so Apple's retry completes it.
        """
        original = notification.original_transaction_id
        claimed = claimed_subject(notification.transaction)
        async with self._pool.connection() as conn:
            inserted = await self._row(
                conn,
                "INSERT INTO {s}.processed_notifications (notification_uuid, notification_type, "
                "subtype, signed_date, environment, outcome, original_transaction_hash, subject_id, "
                "payload) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s, %s) "
                "ON CONFLICT (notification_uuid) DO NOTHING RETURNING 1",
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
            if inserted is not None:
                return True
            row = await self._row(conn, _OUTCOME, (uuid.UUID(notification.notification_uuid),))
            return row is not None and row[0] == "pending"

    async def apply_notification(self, notification: Notification) -> NotificationOutcome:
        """Apply a recorded notification to the stored state, atomically with its outcome."""
        async with self._pool.connection() as conn, conn.transaction():
            outcome = await self._apply(conn, notification)
            await self._mark(conn, notification, outcome)
            return outcome

    async def parked_notifications(self, original_transaction_id: str) -> list[tuple[str, str]]:
        """Signed payloads that waited for someone to present this original transaction."""
        return await self._payloads(
            "original_transaction_hash = %s AND outcome = 'parked' AND payload IS NOT NULL ORDER BY signed_date, notification_uuid",
            (self._hash(original_transaction_id),),
        )

    async def pending_notifications(self, received_before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """Payloads recorded but never applied (a crash between the two steps)."""
        return await self._payloads(
            "outcome = 'pending' AND payload IS NOT NULL AND received_at < %s ORDER BY received_at LIMIT %s",
            (received_before, limit),
        )

    async def drop_notification(self, notification_uuid: str) -> None:
        """Give up on a stored notification (its payload no longer verifies)."""
        async with self._pool.connection() as conn:
            await self._rowcount(
                conn,
                FORGET_NOTIFICATIONS + "notification_uuid = %s",
                (NotificationOutcome.DROPPED.value, uuid.UUID(notification_uuid)),
            )

    async def notification_outcome(self, notification_uuid: str) -> str | None:
        row = await self._fetch_row(_OUTCOME, (uuid.UUID(notification_uuid),))
        return row[0] if row else None

    async def is_tombstoned(self, original_transaction_id: str) -> bool:
        return await self._fetch_row(_TOMBSTONED, (self._hash(original_transaction_id),)) is not None

    async def _apply(self, conn: AsyncConnection[Any], notification: Notification) -> NotificationOutcome:
        original = notification.original_transaction_id
        transaction = notification.transaction
        if original is None:
            return NotificationOutcome.IGNORED
        await self._lock(conn, "original", original)
        if await self._row(conn, _TOMBSTONED, (self._hash(original),)) is not None:
            return NotificationOutcome.DROPPED
        owner = await self._owner(conn, original, transaction.transaction_id if transaction else None)
        if owner is None:
            return NotificationOutcome.PARKED
        if transaction is not None and not transaction.is_subscription:
            await self._merge_purchase(conn, owner, transaction)
            return NotificationOutcome.APPLIED
        snapshot = snapshot_from_notification(notification)
        if snapshot is None:
            return NotificationOutcome.IGNORED
        state = await self._load_subscription(conn, original)
        await self._save_subscription(conn, owner, state, reduce(state, snapshot))
        return NotificationOutcome.APPLIED

    async def _mark(self, conn: AsyncConnection[Any], notification: Notification, outcome: NotificationOutcome) -> None:
        # A parked notification keeps its payload (and claimed subject) until a binding or
        # the sweep; every other outcome ends what was kept about it.
        key = uuid.UUID(notification.notification_uuid)
        if outcome is NotificationOutcome.PARKED:
            await self._rowcount(conn, "UPDATE {s}.processed_notifications SET outcome = 'parked' WHERE notification_uuid = %s", (key,))
        else:
            await self._rowcount(conn, FORGET_NOTIFICATIONS + "notification_uuid = %s", (outcome.value, key))

    async def _payloads(self, where_and_order: LiteralString, params: Params) -> list[tuple[str, str]]:
        found = await self._fetch_rows(
            "SELECT notification_uuid, payload FROM {s}.processed_notifications WHERE " + where_and_order, params
        )
        return [(str(row[0]), row[1]) for row in found]
