from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import LiteralString

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.repository import MIGRATIONS_DIR, BillingRepository
from likeness_billing.domain.errors import QuotaExceeded, TransactionBoundElsewhere
from likeness_billing.domain.pseudonyms import transaction_hash
from likeness_billing.domain.purchases import Notification, NotificationOutcome, ProductType, Transaction
from likeness_billing.domain.quotas import QuotaPolicy
from likeness_billing.domain.subscriptions import (
    Subscription,
    SubscriptionStatus,
    fold,
    snapshot_from_notification,
    snapshot_from_transaction,
)

from .applechain import new_transaction_id
from .domainfactory import day, lifecycle, note, txn

POLICY = QuotaPolicy(free_daily_allowance=3)
TODAY = date(2026, 3, 1)


def fresh_lifecycle() -> tuple[Notification, ...]:
    return lifecycle(
        new_transaction_id(),
        (new_transaction_id(), new_transaction_id(), new_transaction_id()),
        fresh_uuids=True,
    )


async def deliver(repo: BillingRepository, n: Notification) -> NotificationOutcome:
    if not await repo.record_notification(n, f"payload-of-{n.notification_uuid}"):
        return NotificationOutcome.DUPLICATE
    return await repo.apply_notification(n)


def expected_state(first: Transaction, notifications: Sequence[Notification]) -> Subscription | None:
    """What the pure reducer says the stored subscription must be."""
    snapshots = [snapshot_from_notification(n) for n in notifications]
    return fold([snapshot_from_transaction(first), *(s for s in snapshots if s is not None)])


async def execute(pool: AsyncConnectionPool, schema: str, query: LiteralString, *params: object) -> None:
    async with pool.connection() as conn:
        await conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), params)


async def scalar(pool: AsyncConnectionPool, schema: str, query: LiteralString, *params: object) -> object:
    async with pool.connection() as conn:
        cur = await conn.execute(sql.SQL(query).format(s=sql.Identifier(schema)), params)
        row = await cur.fetchone()
        return row[0] if row else None


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
    notes = fresh_lifecycle()
    first = notes[0].transaction
    assert first is not None
    await repo.bind_transaction(subject, first)
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
    notes = fresh_lifecycle()
    first = notes[0].transaction
    assert first is not None
    await repo.bind_transaction(subject, first)

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
    assert await repo.inventory(intruder) == dict.fromkeys(("purchases", "subscriptions", "quota_usage", "pending_notifications"), 0)


@pytest.mark.asyncio
async def test_unbound_notifications_park_until_the_purchase_is_presented(repo: BillingRepository, subject: str) -> None:
    notes = fresh_lifecycle()
    claimed = note(
        "DID_RENEW",
        None,
        day(30),
        txn(new_transaction_id(), original=new_transaction_id(), purchase=day(30), expires=day(60), signed=day(30), token=subject),
        status=1,
        notification_uuid=str(uuid.uuid4()),
    )

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
    unlock = txn(
        tid,
        original=tid,
        purchase=day(1),
        expires=None,
        signed=day(1),
        product_type=ProductType.NON_CONSUMABLE,
        product_id="likeness.lifetime",
    )
    refunded = txn(
        tid,
        original=tid,
        purchase=day(1),
        expires=None,
        signed=day(5),
        revoked_at=day(5),
        product_type=ProductType.NON_CONSUMABLE,
        product_id="likeness.lifetime",
    )
    await repo.bind_transaction(subject, unlock)

    refund = note("REFUND", None, day(5), refunded, status=None, auto_renew=None, notification_uuid=str(uuid.uuid4()))
    assert await deliver(repo, refund) is NotificationOutcome.APPLIED
    # An older copy presented later does not undo the refund.
    await repo.bind_transaction(subject, unlock)

    [stored] = await repo.load_one_time_purchases(subject)
    assert stored.revoked
    assert await repo.load_subscriptions(subject) == []


@pytest.mark.asyncio
async def test_free_quota_is_enforced_and_idempotent(repo: BillingRepository, subject: str) -> None:
    results = [await repo.consume_credit(subject, f"r{i}", TODAY, POLICY, unlimited=False) for i in range(3)]
    assert [r.remaining_today for r in results] == [2, 1, 0]

    replay = await repo.consume_credit(subject, "r1", TODAY, POLICY, unlimited=False)
    assert (replay.replayed, replay.used_today) == (True, 3)
    with pytest.raises(QuotaExceeded) as info:
        await repo.consume_credit(subject, "r3", TODAY, POLICY, unlimited=False)
    assert info.value.code == "QUOTA_EXCEEDED"

    tomorrow = await repo.consume_credit(subject, "r3", TODAY + timedelta(days=1), POLICY, unlimited=False)
    assert (tomorrow.replayed, tomorrow.used_today) == (False, 1)
    # A retry after midnight is still the same request: not taken twice.
    again = await repo.consume_credit(subject, "r3", TODAY + timedelta(days=2), POLICY, unlimited=False)
    assert again.replayed and again.day == TODAY + timedelta(days=1)


@pytest.mark.asyncio
async def test_subscriber_usage_does_not_eat_the_free_allowance(repo: BillingRepository, subject: str) -> None:
    for i in range(5):
        r = await repo.consume_credit(subject, f"s{i}", TODAY, POLICY, unlimited=True)
        assert (r.unlimited, r.remaining_today) == (True, None)
    assert await repo.free_credits_used(subject, TODAY) == 0
    assert (await repo.consume_credit(subject, "f0", TODAY, POLICY, unlimited=False)).remaining_today == 2


@pytest.mark.asyncio
async def test_concurrent_requests_cannot_overspend(database_url: str, schema: str, ledger_key: bytes) -> None:
    # Enough connections that the attempts really run side by side in the database.
    async with AsyncConnectionPool(database_url, min_size=10, max_size=10, open=False) as wide:
        await wide.wait()
        repo = BillingRepository(wide, ledger_key=ledger_key, schema=schema)
        for _ in range(5):
            subject = str(uuid.uuid4())

            async def attempt(i: int, subject: str = subject) -> bool:
                try:
                    await repo.consume_credit(subject, f"c{i}", TODAY, POLICY, unlimited=False)
                except QuotaExceeded:
                    return False
                return True

            outcomes = await asyncio.gather(*(attempt(i) for i in range(10)))
            assert outcomes.count(True) == POLICY.free_daily_allowance
            assert await repo.free_credits_used(subject, TODAY) == POLICY.free_daily_allowance


@pytest.mark.asyncio
async def test_erase_leaves_only_ledger_and_tombstones(
    repo: BillingRepository, pool: AsyncConnectionPool, schema: str, ledger_key: bytes, subject: str
) -> None:
    notes = fresh_lifecycle()
    first = notes[0].transaction
    assert first is not None
    original = first.original_transaction_id
    await repo.bind_transaction(subject, first)
    await deliver(repo, notes[1])
    await repo.consume_credit(subject, "e1", TODAY, POLICY, unlimited=True)
    waiting = note(
        "SUBSCRIBED",
        "INITIAL_BUY",
        day(0),
        txn(new_transaction_id(), original=new_transaction_id(), purchase=day(0), expires=day(30), signed=day(0), token=subject),
        status=1,
        notification_uuid=str(uuid.uuid4()),
    )
    assert await deliver(repo, waiting) is NotificationOutcome.PARKED

    exported = await repo.export(subject)
    assert json.loads(json.dumps(exported)) == exported
    assert {k: len(v) for k, v in exported.items()} == {
        "purchases": 2,
        "subscriptions": 1,
        "quota_usage": 1,
        "pending_notifications": 1,
    }
    assert exported["purchases"][0]["signed_transaction"].startswith("jws:")

    erased, remaining = await repo.erase(subject)

    assert erased == {"purchases": 2, "subscriptions": 1, "quota_usage": 1, "pending_notifications": 1}
    assert remaining == {"purchases": 0, "subscriptions": 0, "quota_usage": 0, "pending_notifications": 0}
    assert await repo.is_tombstoned(original)
    [entry] = await repo.ledger_entries(first.transaction_id)
    assert entry["original_transaction_hash"] == transaction_hash(ledger_key, original)
    assert entry["product_id"] == "likeness.pro.monthly"
    assert "subject_id" not in entry
    leftover = await scalar(
        pool,
        schema,
        "SELECT count(*) FROM {s}.processed_notifications WHERE payload IS NOT NULL AND notification_uuid = %s",
        uuid.UUID(waiting.notification_uuid),
    )
    assert leftover == 0

    # Later notifications for the erased subscription are acknowledged and recreate nothing.
    assert await deliver(repo, notes[2]) is NotificationOutcome.DROPPED
    assert await repo.load_subscription(original) is None
    assert await repo.inventory(subject) == remaining
    assert await repo.erase(subject) == (
        dict.fromkeys(("purchases", "subscriptions", "quota_usage", "pending_notifications"), 0),
        remaining,
    )


@pytest.mark.asyncio
async def test_presenting_an_erased_purchase_again_lifts_its_tombstone(repo: BillingRepository, subject: str) -> None:
    notes = fresh_lifecycle()
    first = notes[0].transaction
    assert first is not None
    await repo.bind_transaction(subject, first)
    await repo.erase(subject)

    newcomer = str(uuid.uuid4())
    await repo.bind_transaction(newcomer, first)

    assert not await repo.is_tombstoned(first.original_transaction_id)
    assert await deliver(repo, notes[1]) is NotificationOutcome.APPLIED
    assert (await repo.inventory(newcomer))["purchases"] == 2


@pytest.mark.asyncio
async def test_sweep_drops_old_usage_and_payloads_but_keeps_dedup_keys(
    repo: BillingRepository, pool: AsyncConnectionPool, schema: str, subject: str
) -> None:
    now = datetime.now(UTC)
    await repo.consume_credit(subject, "old", TODAY, POLICY, unlimited=False)
    await repo.consume_credit(subject, "new", TODAY, POLICY, unlimited=False)
    await execute(
        pool,
        schema,
        "UPDATE {s}.quota_usage SET created_at = %s WHERE subject_id = %s AND request_id = 'old'",
        now - timedelta(days=40),
        uuid.UUID(subject),
    )
    notes = fresh_lifecycle()
    assert await deliver(repo, notes[1]) is NotificationOutcome.PARKED  # unbound: payload waits
    await execute(
        pool,
        schema,
        "UPDATE {s}.processed_notifications SET received_at = %s WHERE notification_uuid = %s",
        now - timedelta(days=200),
        uuid.UUID(notes[1].notification_uuid),
    )
    status = await repo.retention_status()
    oldest_usage, oldest_payload = status["quota_usage"].oldest, status["pending_notifications"].oldest
    assert oldest_usage is not None and oldest_usage <= now - timedelta(days=40)
    assert oldest_payload is not None and oldest_payload <= now - timedelta(days=200)
    assert status["quota_usage"].count >= 2

    swept = await repo.sweep(
        {
            "quota_usage": now - timedelta(days=30),
            "pending_notifications": now - timedelta(days=30),
            "notification_links": now - timedelta(days=180),
        }
    )

    assert swept["quota_usage"] >= 1 and swept["pending_notifications"] >= 1 and swept["notification_links"] >= 1
    assert (await repo.export(subject))["quota_usage"][0]["request_id"] == "new"
    assert await repo.parked_notifications(notes[1].original_transaction_id or "") == []
    assert await repo.notification_outcome(notes[1].notification_uuid) == "expired"
    # The UUID stays: a redelivery is still recognised as a duplicate.
    assert await deliver(repo, notes[1]) is NotificationOutcome.DUPLICATE
    after = await repo.retention_status()
    for category, cutoff in (("quota_usage", 30), ("notification_links", 180)):
        oldest = after[category].oldest
        assert oldest is None or oldest > now - timedelta(days=cutoff)
    with pytest.raises(ValueError, match="unknown"):
        await repo.sweep({"faces": now})


@pytest.mark.asyncio
async def test_sweep_leaves_categories_without_a_cutoff_alone(
    repo: BillingRepository, pool: AsyncConnectionPool, schema: str, subject: str
) -> None:
    await repo.consume_credit(subject, "kept", TODAY, POLICY, unlimited=False)
    await execute(
        pool,
        schema,
        "UPDATE {s}.quota_usage SET created_at = %s WHERE subject_id = %s",
        datetime.now(UTC) - timedelta(days=400),
        uuid.UUID(subject),
    )
    removed = await repo.sweep({"notification_links": datetime.now(UTC) - timedelta(days=180)})
    assert removed["quota_usage"] == 0
    assert (await repo.inventory(subject))["quota_usage"] == 1
