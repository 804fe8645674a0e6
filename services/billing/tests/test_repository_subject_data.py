"""The repository's erasure and retention, against PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain.pseudonyms import transaction_hash
from likeness_billing.domain.purchases import NotificationOutcome

from .repotools import (
    NO_DATA,
    POLICY,
    TODAY,
    bound_lifecycle,
    deliver,
    execute,
    fresh_lifecycle,
    scalar,
    unbound_notification,
)


@pytest.mark.asyncio
async def test_erase_leaves_only_ledger_and_tombstones(
    repo: BillingRepository, pool: AsyncConnectionPool, schema: str, ledger_key: bytes, subject: str
) -> None:
    notes, first = await bound_lifecycle(repo, subject)
    original = first.original_transaction_id
    await deliver(repo, notes[1])
    await repo.consume_credit(subject, "e1", TODAY, POLICY, unlimited=True)
    waiting = unbound_notification("SUBSCRIBED", "INITIAL_BUY", 0, token=subject)
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
    assert remaining == NO_DATA
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
    assert await repo.erase(subject) == (NO_DATA, remaining)


@pytest.mark.asyncio
async def test_presenting_an_erased_purchase_again_lifts_its_tombstone(repo: BillingRepository, subject: str) -> None:
    notes, first = await bound_lifecycle(repo, subject)
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
