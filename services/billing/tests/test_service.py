from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from appstoreserverlibrary.models.Environment import Environment
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing import service
from likeness_billing.adapters.apple_verifier import AppleVerifier
from likeness_billing.adapters.receipts import AppStoreServerApi, ReceiptResolver
from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain.errors import (
    InvalidArgument,
    QuotaExceeded,
    TransactionBoundElsewhere,
    VerificationFailed,
)
from likeness_billing.domain.purchases import NotificationOutcome
from likeness_billing.domain.quotas import QuotaPolicy
from likeness_billing.domain.retention import CategoryAge
from likeness_billing.domain.subscriptions import SubscriptionStatus

from .applechain import (
    BUNDLE_ID,
    AppleTestChain,
    new_transaction_id,
    notification_payload,
    renewal_payload,
    tamper,
    transaction_payload,
)
from .appstore_api import FakeAppStoreApi, new_api_key, serve
from .legacy_receipt import legacy_receipt

POLICY = QuotaPolicy(free_daily_allowance=2)
EMPTY = {"purchases": 0, "subscriptions": 0, "quota_usage": 0, "pending_notifications": 0}


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Purchase:
    """A subscription bought at `start`, with helpers to sign what Apple would send about it."""

    def __init__(self, chain: AppleTestChain, subject: str | None, start: datetime) -> None:
        self.chain = chain
        self.original = new_transaction_id()
        self.start = start
        self.token = subject

    def transaction(
        self, transaction_id: str | None = None, *, signed: datetime | None = None, revoked: datetime | None = None, period: int = 0
    ) -> str:
        purchase = self.start + timedelta(days=30 * period)
        return self.chain.sign(
            transaction_payload(
                transaction_id=transaction_id or self.original,
                original_transaction_id=self.original,
                purchase_date=purchase,
                expires_date=purchase + timedelta(days=30),
                signed_date=signed or purchase,
                app_account_token=self.token,
                revocation_date=revoked,
            )
        )

    def notification(
        self, kind: str, subtype: str | None, signed: datetime, signed_transaction: str, *, status: int, auto_renew: bool = True
    ) -> str:
        renewal = self.chain.sign(renewal_payload(original_transaction_id=self.original, auto_renew=auto_renew, signed_date=signed))
        return self.chain.sign(
            notification_payload(
                notification_type=kind,
                subtype=subtype,
                signed_date=signed,
                signed_transaction=signed_transaction,
                signed_renewal=renewal,
                status=status,
            )
        )


@dataclass(frozen=True)
class Billing:
    """The billing use cases on the test database and verifier, acting for one subject."""

    repo: BillingRepository
    verifier: AppleVerifier
    chain: AppleTestChain
    subject: str

    def purchase(self, start: datetime, *, for_me: bool = True) -> Purchase:
        """A subscription whose app account token names this subject (or another account)."""
        return Purchase(self.chain, self.subject if for_me else str(uuid.uuid4()), start)

    async def buy(self, signed_transaction: str) -> service.VerifiedPurchase:
        return await service.verify_apple_purchase(self.repo, self.verifier, None, self.subject, signed_transaction=signed_transaction)

    async def notify(self, signed_payload: str) -> NotificationOutcome:
        return await service.handle_notification(self.repo, self.verifier, signed_payload)


@pytest.fixture
def billing(repo: BillingRepository, verifier: AppleVerifier, chain: AppleTestChain, subject: str) -> Billing:
    return Billing(repo, verifier, chain, subject)


@pytest.mark.asyncio
async def test_purchase_entitles_and_lifts_the_quota(billing: Billing) -> None:
    p = billing.purchase(now() - timedelta(days=1))

    result = await billing.buy(p.transaction())

    assert result.transaction.original_transaction_id == p.original
    assert result.entitlements.unlimited
    [item] = result.entitlements.items
    assert (item.product_id, item.status, item.will_renew) == ("likeness.pro.monthly", SubscriptionStatus.ACTIVE, True)
    for i in range(POLICY.free_daily_allowance + 3):
        consumed = await service.consume_credit(billing.repo, POLICY, billing.subject, f"gen-{i}")
        assert consumed.unlimited and consumed.remaining_today is None


@pytest.mark.asyncio
async def test_free_quota_runs_out_for_a_non_subscriber(repo: BillingRepository, subject: str) -> None:
    moment = now()
    first = await service.consume_credit(repo, POLICY, subject, "a", now=moment)
    second = await service.consume_credit(repo, POLICY, subject, "b", now=moment)
    assert (first.remaining_today, second.remaining_today) == (1, 0)

    with pytest.raises(QuotaExceeded) as info:
        await service.consume_credit(repo, POLICY, subject, "c", now=moment)
    assert info.value.code == "QUOTA_EXCEEDED"
    assert (await service.consume_credit(repo, POLICY, subject, "a", now=moment)).replayed
    next_day = await service.consume_credit(repo, POLICY, subject, "c", now=moment + timedelta(days=1))
    assert next_day.remaining_today == 1
    with pytest.raises(InvalidArgument):
        await service.consume_credit(repo, POLICY, subject, "", now=moment)


@pytest.mark.asyncio
async def test_erased_subject_stays_erased_when_notifications_keep_coming(billing: Billing) -> None:
    p = billing.purchase(now() - timedelta(days=1))
    await billing.buy(p.transaction())
    await service.consume_credit(billing.repo, POLICY, billing.subject, "x")

    erased, remaining = await billing.repo.erase(billing.subject)
    assert erased["purchases"] == 1 and erased["subscriptions"] == 1 and erased["quota_usage"] == 1
    assert remaining == EMPTY

    renewed = p.transaction(new_transaction_id(), period=1)
    outcome = await billing.notify(p.notification("DID_RENEW", None, p.start + timedelta(days=30), renewed, status=1))

    assert outcome is NotificationOutcome.DROPPED
    assert await billing.repo.inventory(billing.subject) == EMPTY
    assert (await service.get_entitlements(billing.repo, billing.subject)).items == ()
    assert await billing.repo.load_subscription(p.original) is None


@pytest.mark.asyncio
async def test_forged_notification_is_rejected_and_nothing_stored(billing: Billing) -> None:
    p = billing.purchase(now())
    genuine = p.notification("SUBSCRIBED", "INITIAL_BUY", p.start, p.transaction(), status=1)
    forged = tamper(genuine, notificationType="REFUND")
    with pytest.raises(VerificationFailed):
        await billing.notify(forged)
    assert await billing.repo.parked_notifications(p.original) == []


@pytest.mark.asyncio
async def test_purchase_made_for_another_account_is_refused(billing: Billing) -> None:
    p = billing.purchase(now(), for_me=False)
    with pytest.raises(TransactionBoundElsewhere):
        await billing.buy(p.transaction())
    assert await billing.repo.inventory(billing.subject) == EMPTY


@pytest.mark.asyncio
async def test_notifications_before_the_purchase_call_are_applied_on_binding(billing: Billing) -> None:
    start = now() - timedelta(days=2)
    p = Purchase(billing.chain, None, start)
    first = p.transaction()
    subscribed = p.notification("SUBSCRIBED", "INITIAL_BUY", start, first, status=1)
    auto_off = p.notification(
        "DID_CHANGE_RENEWAL_STATUS",
        "AUTO_RENEW_DISABLED",
        start + timedelta(days=1),
        first,
        status=1,
        auto_renew=False,
    )
    assert await billing.notify(auto_off) is NotificationOutcome.PARKED
    assert await billing.notify(subscribed) is NotificationOutcome.PARKED
    assert await billing.notify(subscribed) is NotificationOutcome.DUPLICATE

    result = await billing.buy(first)

    assert result.applied_notifications == 2
    [item] = result.entitlements.items
    assert item.active and item.will_renew is False
    assert await billing.repo.parked_notifications(p.original) == []


@pytest.mark.asyncio
async def test_refund_notification_ends_the_entitlement(billing: Billing) -> None:
    start = now() - timedelta(days=3)
    p = billing.purchase(start)
    await billing.buy(p.transaction())
    refunded_at = start + timedelta(days=2)
    refunded = p.transaction(signed=refunded_at, revoked=refunded_at)
    outcome = await billing.notify(p.notification("REFUND", None, refunded_at, refunded, status=5, auto_renew=False))
    assert outcome is NotificationOutcome.APPLIED
    entitlements = await service.get_entitlements(billing.repo, billing.subject)
    assert not entitlements.unlimited
    assert entitlements.items[0].status is SubscriptionStatus.REVOKED
    # The app presenting its older, unrevoked copy afterwards changes nothing.
    again = await billing.buy(p.transaction())
    assert not again.entitlements.unlimited


@pytest.mark.asyncio
async def test_stored_but_unapplied_notifications_are_finished_later(billing: Billing, pool: AsyncConnectionPool, schema: str) -> None:
    start = now() - timedelta(days=1)
    p = billing.purchase(start)
    await billing.buy(p.transaction())
    payload = p.notification(
        "DID_CHANGE_RENEWAL_STATUS",
        "AUTO_RENEW_DISABLED",
        start + timedelta(hours=1),
        p.transaction(),
        status=1,
        auto_renew=False,
    )
    notification = billing.verifier.verify_notification(payload)
    # The process dies after storing, before applying.
    assert await billing.repo.record_notification(notification, payload)
    async with pool.connection() as conn:
        await conn.execute(
            sql.SQL("UPDATE {}.processed_notifications SET received_at = %s WHERE notification_uuid = %s").format(sql.Identifier(schema)),
            (now() - timedelta(minutes=5), uuid.UUID(notification.notification_uuid)),
        )

    assert await service.apply_pending_notifications(billing.repo, billing.verifier) >= 1

    assert await billing.repo.notification_outcome(notification.notification_uuid) == "applied"
    assert (await service.get_entitlements(billing.repo, billing.subject)).items[0].will_renew is False


@pytest.mark.asyncio
async def test_legacy_receipt_purchase_end_to_end(billing: Billing) -> None:
    key = new_api_key()
    p = billing.purchase(now() - timedelta(days=1))
    with serve(FakeAppStoreApi(key, BUNDLE_ID, {p.original: p.transaction()})) as api:
        receipts = ReceiptResolver(
            verifier=billing.verifier,
            apis=[AppStoreServerApi(key.p8, key.key_id, key.issuer_id, BUNDLE_ID, Environment.SANDBOX, base_url=api.base_url)],
        )
        try:
            result = await service.verify_apple_purchase(
                billing.repo, billing.verifier, receipts, billing.subject, receipt=legacy_receipt([(p.original, p.original)])
            )
        finally:
            await receipts.aclose()
    assert result.transaction.original_transaction_id == p.original
    assert result.entitlements.unlimited


@pytest.mark.asyncio
async def test_purchase_input_must_be_exactly_one_kind(billing: Billing) -> None:
    repo, verifier, subject = billing.repo, billing.verifier, billing.subject
    signed = billing.purchase(now()).transaction()
    with pytest.raises(InvalidArgument, match="exactly one"):
        await service.verify_apple_purchase(repo, verifier, None, subject)
    with pytest.raises(InvalidArgument, match="exactly one"):
        await service.verify_apple_purchase(repo, verifier, None, subject, signed_transaction=signed, receipt="x")
    with pytest.raises(InvalidArgument, match="legacy receipts"):
        await service.verify_apple_purchase(repo, verifier, None, subject, receipt=legacy_receipt([("1", "1")]))
    with pytest.raises(InvalidArgument, match="UUID"):
        await service.verify_apple_purchase(repo, verifier, None, "alice", signed_transaction=signed)


class RetentionStore:
    def __init__(self, status: dict[str, CategoryAge]) -> None:
        self.status = status
        self.swept: list[dict[str, datetime]] = []

    async def sweep(self, cutoffs: dict[str, datetime]) -> dict[str, int]:
        self.swept.append(dict(cutoffs))
        return {}

    async def retention_status(self) -> dict[str, CategoryAge]:
        return self.status


@pytest.mark.asyncio
async def test_sweep_keeps_exactly_to_billing_limits_whatever_the_cutoff() -> None:
    store: Any = RetentionStore({})
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    await service.sweep(
        store,
        {"quota_usage": moment, "notification_links": moment - timedelta(days=900), "purchases": moment},
        now=moment,
    )
    assert store.swept == [
        {
            "quota_usage": moment - timedelta(days=7),  # asked for "now": clamped, live usage stays
            "pending_notifications": moment - timedelta(days=30),  # not asked: our limit
            "notification_links": moment - timedelta(days=180),  # asked for more: our limit wins
        }  # purchases: not swept (kept as long as the account), so its cutoff is ignored
    ]


@pytest.mark.asyncio
async def test_retention_report_gives_ages_against_limits() -> None:
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    store: Any = RetentionStore(
        {
            "quota_usage": CategoryAge(3, moment - timedelta(days=2)),
            "pending_notifications": CategoryAge(0, None),
            "notification_links": CategoryAge(1, moment - timedelta(days=200)),
        }
    )
    report = {r.category: r for r in await service.retention_report(store, now=moment)}
    assert report["quota_usage"].oldest_age_seconds == timedelta(days=2).total_seconds()
    assert report["quota_usage"].max_age_seconds == timedelta(days=7).total_seconds()
    assert report["pending_notifications"].oldest_age_seconds == 0.0
    links = report["notification_links"]
    assert links.oldest_age_seconds > links.max_age_seconds
