"""Helpers for the repository tests: fresh subscriptions, deliveries, and raw SQL on the test schema."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import LiteralString

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain.purchases import Notification, NotificationOutcome, Transaction
from likeness_billing.domain.quotas import QuotaPolicy
from likeness_billing.domain.subscriptions import Subscription, fold, snapshot_from_notification, snapshot_from_transaction

from .applechain import new_transaction_id
from .domainfactory import day, lifecycle, note, txn

POLICY = QuotaPolicy(free_daily_allowance=3)
TODAY = date(2026, 3, 1)
NO_DATA = {"purchases": 0, "subscriptions": 0, "quota_usage": 0, "pending_notifications": 0}


def fresh_lifecycle() -> tuple[Notification, ...]:
    return lifecycle(
        new_transaction_id(),
        (new_transaction_id(), new_transaction_id(), new_transaction_id()),
        fresh_uuids=True,
    )


async def bound_lifecycle(repo: BillingRepository, subject: str) -> tuple[tuple[Notification, ...], Transaction]:
    """A fresh subscription's notifications, its first purchase already bound to `subject`."""
    notes = fresh_lifecycle()
    first = notes[0].transaction
    assert first is not None
    await repo.bind_transaction(subject, first)
    return notes, first


def unbound_notification(kind: str, subtype: str | None, start: float, token: str) -> Notification:
    """A notification for a purchase nobody presented yet, its app account token naming `token`."""
    purchase = txn(
        new_transaction_id(), original=new_transaction_id(), purchase=day(start), expires=day(start + 30), signed=day(start), token=token
    )
    return note(kind, subtype, day(start), purchase, status=1, notification_uuid=str(uuid.uuid4()))


async def deliver(repo: BillingRepository, n: Notification) -> NotificationOutcome:
    if not await repo.record_notification(n, f"payload-of-{n.notification_uuid}"):
        return NotificationOutcome.DUPLICATE
    return await repo.apply_notification(n)


def expected_state(first: Transaction, notifications: Sequence[Notification]) -> Subscription | None:
    """What the pure reducer says the stored subscription must be."""
    snapshots = [snapshot_from_notification(n) for n in notifications]
    return fold([snapshot_from_transaction(first), *(s for s in snapshots if s is not None)])


async def scalar(pool: AsyncConnectionPool, schema: str, query: LiteralString, *params: object) -> object:
    """The first value of a query's first row, with `{s}` standing for the schema (None without rows)."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), params)
        row = await cur.fetchone() if cur.description else None
        return row[0] if row else None


async def execute(pool: AsyncConnectionPool, schema: str, query: LiteralString, *params: object) -> None:
    """Run a statement on the test schema (`{s}` standing for it)."""
    await scalar(pool, schema, query, *params)
