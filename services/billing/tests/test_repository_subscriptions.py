"""The repository's purchases, subscriptions and notifications, against PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.repository import MIGRATIONS_DIR, BillingRepository
from likeness_billing.domain.errors import TransactionBoundElsewhere
from likeness_billing.domain.purchases import NotificationOutcome
from likeness_billing.domain.subscriptions import SubscriptionStatus

from .applechain import new_transaction_id
from .domainfactory import day, note, one_time
from .repotools import (
    NO_DATA,
    bound_lifecycle,
    deliver,
    expected_state,
    fresh_lifecycle,
    scalar,
    unbound_notification,
)


def test_migration_is_idempotent_and_lands_in_the_given_schema(database_url: str) -> None:
    name = f"billing_mig_{uuid.uuid4().hex[:12]}"
    script = (MIGRATIONS_DIR / "001_billing.sql").read_bytes()
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
            for _ in range(2):
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(name)))
                    conn.execute(script)
            tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", (name,)).fetchall()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    assert [t[0] for t in tables] == [
        "ledger",
        "processed_notifications",
        "purchases",
        "quota_usage",
        "subscriptions",
        "tombstones",
    ]


@pytest.mark.asyncio
async def test_bound_subscription_round_trips_through_the_database(repo: BillingRepository, subject: str) -> None:
    notes, first = await bound_lifecycle(repo, subject)
    for n in notes[:3]:
        assert await deliver(repo, n) is NotificationOutcome.APPLIED

    stored = await repo.load_subscriptions(subject)

    expected = expected_state(first, notes[:3])
    assert stored == [expected]
    assert stored[0].status is SubscriptionStatus.GRACE
    assert await repo.inventory(subject) == {
        "purchases": 2,
        "subscriptions": 1,
        "quota_usage": 0,
        "pending_notifications": 0,
    }


@pytest.mark.asyncio
async def test_any_delivery_order_gives_the_same_stored_state(repo: BillingRepository) -> None:
    for seed in range(8):
        rng = random.Random(seed)
        notes = fresh_lifecycle()
        subject = str(uuid.uuid4())
        first = notes[0].transaction
        assert first is not None
        await repo.bind_transaction(subject, first)
        chosen = rng.sample(notes, rng.randint(1, len(notes)))
        deliveries = chosen + rng.choices(chosen, k=rng.randint(0, 4))
        rng.shuffle(deliveries)

        outcomes = [await deliver(repo, n) for n in deliveries]

        assert outcomes.count(NotificationOutcome.APPLIED) == len(chosen)
        assert outcomes.count(NotificationOutcome.DUPLICATE) == len(deliveries) - len(chosen)
        assert await repo.load_subscription(first.original_transaction_id) == expected_state(first, chosen), seed


@pytest.mark.asyncio
async def test_concurrent_deliveries_serialise_per_subscription(repo: BillingRepository, subject: str) -> None:
    notes, first = await bound_lifecycle(repo, subject)

    await asyncio.gather(*(deliver(repo, n) for n in reversed(notes)))

    expected = expected_state(first, notes)
    assert await repo.load_subscription(first.original_transaction_id) == expected


@pytest.mark.asyncio
async def test_notification_is_deduplicated_and_its_payload_not_kept(
    repo: BillingRepository, pool: AsyncConnectionPool, schema: str, subject: str
) -> None:
    notes = fresh_lifecycle()
    assert notes[0].transaction is not None
    await repo.bind_transaction(subject, notes[0].transaction)
    n = notes[1]

    assert await repo.record_notification(n, "payload") is True
    # Stored but not applied (a crash in between): the retry must still do the work.
    assert await repo.record_notification(n, "payload") is True
    assert await repo.apply_notification(n) is NotificationOutcome.APPLIED
    assert await repo.record_notification(n, "payload") is False

    assert await repo.notification_outcome(n.notification_uuid) == "applied"
    payload = await scalar(
        pool,
        schema,
        "SELECT payload FROM {s}.processed_notifications WHERE notification_uuid = %s",
        uuid.UUID(n.notification_uuid),
    )
    assert payload is None


@pytest.mark.asyncio
async def test_transaction_bound_to_another_subject_is_refused(repo: BillingRepository, subject: str) -> None:
    notes = fresh_lifecycle()
    first, renewal = notes[0].transaction, notes[1].transaction
    assert first is not None and renewal is not None
    await repo.bind_transaction(subject, first)
    await repo.bind_transaction(subject, first)  # the owner may present it again

    intruder = str(uuid.uuid4())
    for t in (first, renewal):
        with pytest.raises(TransactionBoundElsewhere):
            await repo.bind_transaction(intruder, t)
    assert await repo.inventory(intruder) == NO_DATA


@pytest.mark.asyncio
async def test_unbound_notifications_park_until_the_purchase_is_presented(repo: BillingRepository, subject: str) -> None:
    notes = fresh_lifecycle()
    claimed = unbound_notification("DID_RENEW", None, 30, token=subject)

    assert await deliver(repo, notes[1]) is NotificationOutcome.PARKED
    assert await deliver(repo, notes[1]) is NotificationOutcome.DUPLICATE
    assert await deliver(repo, claimed) is NotificationOutcome.PARKED

    parked = await repo.parked_notifications(notes[1].original_transaction_id or "")
    assert parked == [(notes[1].notification_uuid, f"payload-of-{notes[1].notification_uuid}")]
    # The token names the subject, so the waiting payload is counted as theirs.
    assert (await repo.inventory(subject))["pending_notifications"] == 1
    assert await repo.load_subscription(notes[1].original_transaction_id or "") is None


@pytest.mark.asyncio
async def test_one_time_purchase_refund_is_applied_and_kept(repo: BillingRepository, subject: str) -> None:
    tid = new_transaction_id()
    unlock = one_time(tid, "likeness.lifetime")
    refunded = one_time(tid, "likeness.lifetime", signed=day(5), revoked_at=day(5))
    await repo.bind_transaction(subject, unlock)

    refund = note("REFUND", None, day(5), refunded, status=None, auto_renew=None, notification_uuid=str(uuid.uuid4()))
    assert await deliver(repo, refund) is NotificationOutcome.APPLIED
    # An older copy presented later does not undo the refund.
    await repo.bind_transaction(subject, unlock)

    [stored] = await repo.load_one_time_purchases(subject)
    assert stored.revoked
    assert await repo.load_subscriptions(subject) == []
