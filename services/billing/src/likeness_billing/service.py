"""Billing use cases. Each takes its adapters as arguments; `now` is injectable for tests.

Signature checks are CPU-bound (and block on OCSP with online checks on), so they run in
worker threads to keep the event loop answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from likeness_billing.domain.entitlements import Entitlements, compute_entitlements
from likeness_billing.domain.errors import (
    InvalidArgument,
    TransactionBoundElsewhere,
    VerificationFailed,
)
from likeness_billing.domain.purchases import (
    Notification,
    NotificationOutcome,
    Transaction,
    canonical_subject_id,
    token_names_other_subject,
)
from likeness_billing.domain.quotas import (
    CreditConsumption,
    QuotaPolicy,
    check_request_id,
    utc_day,
)
from likeness_billing.domain.retention import (
    RETENTION_LIMITS,
    CategoryAge,
    RetentionItem,
    effective_cutoffs,
    retention_items,
)
from likeness_billing.domain.subscriptions import Subscription

# A notification younger than this may still be in the hands of the request that stored it.
PENDING_GRACE = timedelta(minutes=1)


class SignedDataVerifier(Protocol):
    def verify_transaction(self, signed_transaction: str) -> Transaction: ...

    def verify_notification(self, signed_payload: str) -> Notification: ...


class ReceiptResolver(Protocol):
    async def resolve(self, receipt: str) -> Transaction: ...


class BillingStore(Protocol):
    async def bind_transaction(self, subject_id: str, transaction: Transaction) -> None: ...

    async def load_subscriptions(self, subject_id: str) -> list[Subscription]: ...

    async def load_one_time_purchases(self, subject_id: str) -> list[Transaction]: ...

    async def record_notification(self, notification: Notification, signed_payload: str) -> bool: ...

    async def apply_notification(self, notification: Notification) -> NotificationOutcome: ...

    async def parked_notifications(self, original_transaction_id: str) -> list[tuple[str, str]]: ...

    async def pending_notifications(self, received_before: datetime, limit: int = 100) -> list[tuple[str, str]]: ...

    async def drop_notification(self, notification_uuid: str) -> None: ...

    async def consume_credit(
        self, subject_id: str, request_id: str, day: date, policy: QuotaPolicy, unlimited: bool
    ) -> CreditConsumption: ...

    async def release_credit(self, subject_id: str, request_id: str) -> bool: ...

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]: ...

    async def retention_status(self) -> Mapping[str, CategoryAge]: ...


@dataclass(frozen=True)
class VerifiedPurchase:
    transaction: Transaction
    entitlements: Entitlements
    # Notifications that had arrived before the app presented the purchase, applied now.
    applied_notifications: int


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


async def verify_apple_purchase(
    store: BillingStore,
    verifier: SignedDataVerifier,
    receipts: ReceiptResolver | None,
    subject_id: str,
    *,
    signed_transaction: str | None = None,
    receipt: str | None = None,
    now: datetime | None = None,
) -> VerifiedPurchase:
    """Verify a StoreKit 2 signed transaction (or a legacy receipt) and bind it to the subject."""
    subject = canonical_subject_id(subject_id)
    if signed_transaction is not None and receipt is None:
        transaction = await asyncio.to_thread(verifier.verify_transaction, signed_transaction)
    elif receipt is not None and signed_transaction is None:
        if receipts is None:
            raise InvalidArgument("this server does not accept legacy receipts; send the signed transaction")
        transaction = await receipts.resolve(receipt)
    else:
        raise InvalidArgument("send exactly one of signed_transaction or receipt")
    if token_names_other_subject(transaction, subject):
        raise TransactionBoundElsewhere("this App Store purchase was made for another account")
    await store.bind_transaction(subject, transaction)
    applied = await _apply_parked(store, verifier, transaction.original_transaction_id)
    return VerifiedPurchase(transaction, await get_entitlements(store, subject, now=now), applied)


async def handle_notification(store: BillingStore, verifier: SignedDataVerifier, signed_payload: str) -> NotificationOutcome:
    """Verify, store, then apply one App Store Server Notification V2.

    Storing comes first so that a crash between the steps loses nothing: the row stays
    pending, Apple's retry (or `apply_pending_notifications`) finishes the work. Every outcome
    returned here should be acknowledged with HTTP 200; only a VerificationFailed should not.
    """
    notification = await asyncio.to_thread(verifier.verify_notification, signed_payload)
    if not await store.record_notification(notification, signed_payload):
        return NotificationOutcome.DUPLICATE
    return await store.apply_notification(notification)


async def apply_pending_notifications(
    store: BillingStore,
    verifier: SignedDataVerifier,
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> int:
    """Finish notifications stored but never applied; run at start and on a schedule."""
    pending = await store.pending_notifications(_now(now) - PENDING_GRACE, limit)
    done = 0
    for notification_uuid, payload in pending:
        if await _reapply(store, verifier, notification_uuid, payload):
            done += 1
    return done


async def get_entitlements(store: BillingStore, subject_id: str, *, now: datetime | None = None) -> Entitlements:
    subject = canonical_subject_id(subject_id)
    subscriptions = await store.load_subscriptions(subject)
    one_time = await store.load_one_time_purchases(subject)
    return compute_entitlements(subject, subscriptions, one_time, _now(now))


async def consume_credit(
    store: BillingStore,
    policy: QuotaPolicy,
    subject_id: str,
    request_id: str,
    *,
    now: datetime | None = None,
) -> CreditConsumption:
    """Take one generation credit; idempotent per request id; QuotaExceeded when used up."""
    subject = canonical_subject_id(subject_id)
    check_request_id(request_id)
    moment = _now(now)
    entitlements = await get_entitlements(store, subject, now=moment)
    return await store.consume_credit(subject, request_id, utc_day(moment), policy, entitlements.unlimited)


async def release_credit(store: BillingStore, subject_id: str, request_id: str) -> bool:
    """Give back a credit whose generation failed: consume, then release, is a reservation that was never committed."""
    check_request_id(request_id)
    return await store.release_credit(canonical_subject_id(subject_id), request_id)


async def sweep(
    store: BillingStore,
    cutoffs: Mapping[str, datetime],
    *,
    now: datetime | None = None,
    limits: Mapping[str, timedelta] = RETENTION_LIMITS,
) -> dict[str, int]:
    """Retention sweep: per swept category, our own limit (see effective_cutoffs: a requested cutoff is clamped to it)."""
    return await store.sweep(effective_cutoffs(cutoffs, _now(now), limits))


async def retention_report(
    store: BillingStore,
    *,
    now: datetime | None = None,
    limits: Mapping[str, timedelta] = RETENTION_LIMITS,
) -> list[RetentionItem]:
    """Age of the oldest item per swept category, against its limit (for RetentionStatus)."""
    return retention_items(await store.retention_status(), _now(now), limits)


async def _apply_parked(store: BillingStore, verifier: SignedDataVerifier, original: str) -> int:
    applied = 0
    for notification_uuid, payload in await store.parked_notifications(original):
        if await _reapply(store, verifier, notification_uuid, payload):
            applied += 1
    return applied


async def _reapply(store: BillingStore, verifier: SignedDataVerifier, notification_uuid: str, payload: str) -> bool:
    # Stored payloads are verified again rather than trusted from the database.
    try:
        notification = await asyncio.to_thread(verifier.verify_notification, payload)
    except VerificationFailed as exc:
        if not exc.retryable:
            await store.drop_notification(notification_uuid)
        return False
    if notification.notification_uuid != notification_uuid:
        await store.drop_notification(notification_uuid)
        return False
    return await store.apply_notification(notification) is NotificationOutcome.APPLIED
