"""Auto-renewable subscription state, as a pure function of the signed data seen so far.

Notifications arrive late, twice, and out of order. So the state is not a sequence of
transitions but a merge of snapshots with two independent parts, each kept by a total order:

- the *status claim* (status, will_renew, grace expiry) from the snapshot with the newest
  signedDate wins; older snapshots are ignored, so a REFUND signed after a DID_RENEW stays
  in force however late the DID_RENEW arrives;
- the *transactions* map keeps, per transaction id, the newest signed copy (see
  `purchases.newer_copy`), so a refund recorded on a transaction is never undone by an
  older copy of that transaction.

Both merges are commutative, associative and idempotent, hence the end state depends only
on the set of snapshots, not on their order or on duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from likeness_billing.domain.purchases import (
    Notification,
    StoreEnvironment,
    Transaction,
    newer_copy,
)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"
    BILLING_RETRY = "billing_retry"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @classmethod
    def from_apple(cls, code: int) -> SubscriptionStatus | None:
        return _APPLE_STATUS.get(code)


_APPLE_STATUS = {
    1: SubscriptionStatus.ACTIVE,
    2: SubscriptionStatus.EXPIRED,
    3: SubscriptionStatus.BILLING_RETRY,
    4: SubscriptionStatus.GRACE,
    5: SubscriptionStatus.REVOKED,
}

# On a signedDate tie the more pessimistic claim wins, so a tie can never grant access.
_TIE_RANK = {
    SubscriptionStatus.ACTIVE: 0,
    SubscriptionStatus.GRACE: 1,
    SubscriptionStatus.BILLING_RETRY: 2,
    SubscriptionStatus.EXPIRED: 3,
    SubscriptionStatus.REVOKED: 4,
}


@dataclass(frozen=True)
class StatusClaim:
    """What one snapshot says about the subscription as a whole at `signed_date`."""

    signed_date: datetime
    # Orders claims with equal signedDate deterministically (notification uuid or transaction).
    event_key: str
    status: SubscriptionStatus
    will_renew: bool
    grace_expires_date: datetime | None

    def order_key(self) -> tuple[datetime, int, str]:
        return (self.signed_date, _TIE_RANK[self.status], self.event_key)


@dataclass(frozen=True)
class Snapshot:
    original_transaction_id: str
    environment: StoreEnvironment
    transaction: Transaction | None
    claim: StatusClaim | None


@dataclass(frozen=True)
class Subscription:
    original_transaction_id: str
    environment: StoreEnvironment
    claim: StatusClaim | None
    # Sorted by transaction id so equal states compare equal.
    transactions: tuple[Transaction, ...]

    @property
    def status(self) -> SubscriptionStatus:
        # Known only from an already lapsed transaction: nothing says it is live.
        return self.claim.status if self.claim is not None else SubscriptionStatus.EXPIRED

    @property
    def will_renew(self) -> bool:
        return self.claim.will_renew if self.claim is not None else False

    @property
    def last_signed_date(self) -> datetime | None:
        return self.claim.signed_date if self.claim is not None else None

    @property
    def current_transaction(self) -> Transaction | None:
        """The period that counts: the unrevoked one reaching furthest, else the latest bought."""
        live = [t for t in self.transactions if not t.revoked]
        if live:
            return max(live, key=_reach_key)
        if self.transactions:
            return max(self.transactions, key=lambda t: (t.purchase_date, t.transaction_id))
        return None

    @property
    def product_id(self) -> str | None:
        current = self.current_transaction
        return current.product_id if current is not None else None

    @property
    def expires_date(self) -> datetime | None:
        current = self.current_transaction
        if current is None or current.revoked:
            return None
        return current.expires_date

    @property
    def grace_expires_date(self) -> datetime | None:
        if self.claim is None or self.status is not SubscriptionStatus.GRACE:
            return None
        return self.claim.grace_expires_date

    @property
    def is_free_trial(self) -> bool:
        current = self.current_transaction
        return current is not None and current.is_free_trial

    def entitled(self, now: datetime) -> bool:
        """Active with an expiry in the future, or in grace with a grace expiry in the future."""
        status = self.status
        if status is SubscriptionStatus.ACTIVE:
            expires = self.expires_date
            return expires is not None and expires > now
        if status is SubscriptionStatus.GRACE:
            until = self.grace_expires_date or self.expires_date
            return until is not None and until > now
        return False


def _reach_key(t: Transaction) -> tuple[datetime, datetime, str]:
    return (t.expires_date or t.purchase_date, t.purchase_date, t.transaction_id)


def reduce(state: Subscription | None, snapshot: Snapshot) -> Subscription:
    """Merge one snapshot into the state; order- and duplicate-insensitive."""
    if state is not None and state.original_transaction_id != snapshot.original_transaction_id:
        raise ValueError("snapshot belongs to another subscription")
    transactions = {t.transaction_id: t for t in (state.transactions if state else ())}
    if snapshot.transaction is not None:
        tid = snapshot.transaction.transaction_id
        transactions[tid] = newer_copy(transactions.get(tid), snapshot.transaction)
    claim = _newer_claim(state.claim if state else None, snapshot.claim)
    return Subscription(
        original_transaction_id=snapshot.original_transaction_id,
        # A subscription lives in one environment; the first snapshot fixes it.
        environment=state.environment if state else snapshot.environment,
        claim=claim,
        transactions=tuple(sorted(transactions.values(), key=lambda t: t.transaction_id)),
    )


def fold(snapshots: Iterable[Snapshot]) -> Subscription | None:
    state: Subscription | None = None
    for snapshot in snapshots:
        state = reduce(state, snapshot)
    return state


def _newer_claim(a: StatusClaim | None, b: StatusClaim | None) -> StatusClaim | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.order_key() > a.order_key() else a


def snapshot_from_transaction(transaction: Transaction) -> Snapshot:
    """A snapshot from a transaction the app sent (no renewal info, no Apple status).

    It claims a status only where the transaction alone proves it at its signing time:
    revoked, or paid up beyond the signing time. An already lapsed copy claims nothing, so
    it can never push a subscription that Apple reported in grace or retry to expired.
    """
    claim: StatusClaim | None = None
    key = f"t:{transaction.transaction_id}"
    if transaction.revoked:
        claim = StatusClaim(transaction.signed_date, key, SubscriptionStatus.REVOKED, False, None)
    elif transaction.expires_date is not None and transaction.expires_date > transaction.signed_date:
        # Auto-renew is on by default at purchase; the next notification states it exactly.
        claim = StatusClaim(transaction.signed_date, key, SubscriptionStatus.ACTIVE, True, None)
    return Snapshot(
        original_transaction_id=transaction.original_transaction_id,
        environment=transaction.environment,
        transaction=transaction,
        claim=claim,
    )


def snapshot_from_notification(notification: Notification) -> Snapshot | None:
    """A snapshot from a subscription notification; None when it carries no subscription data."""
    original = notification.original_transaction_id
    transaction = notification.transaction
    if original is None:
        return None
    if transaction is not None and not transaction.is_subscription:
        return None
    renewal = notification.renewal
    if transaction is not None:
        environment = transaction.environment
    elif renewal is not None:
        environment = renewal.environment
    else:
        return None
    status = _status_of(notification)
    claim: StatusClaim | None = None
    if status is not None:
        claim = StatusClaim(
            signed_date=notification.signed_date,
            event_key=f"n:{notification.notification_uuid}",
            status=status,
            will_renew=_will_renew(notification, status),
            grace_expires_date=renewal.grace_period_expires_date if renewal else None,
        )
    return Snapshot(
        original_transaction_id=original,
        environment=environment,
        transaction=transaction,
        claim=claim,
    )


# Used only when Apple leaves data.status out (older payloads); types not listed claim nothing.
_RENEWING_TYPES = frozenset(
    {
        "SUBSCRIBED",
        "DID_RENEW",
        "OFFER_REDEEMED",
        "RENEWAL_EXTENDED",
        "REFUND_REVERSED",
        "DID_CHANGE_RENEWAL_PREF",
        "DID_CHANGE_RENEWAL_STATUS",
    }
)


def _status_of(notification: Notification) -> SubscriptionStatus | None:
    if notification.status is not None:
        mapped = SubscriptionStatus.from_apple(notification.status)
        if mapped is not None:
            return mapped
    kind = notification.notification_type
    if kind in ("REFUND", "REVOKE"):
        return SubscriptionStatus.REVOKED
    if kind == "EXPIRED":
        return SubscriptionStatus.EXPIRED
    if kind == "DID_FAIL_TO_RENEW":
        if notification.subtype == "GRACE_PERIOD":
            return SubscriptionStatus.GRACE
        return SubscriptionStatus.BILLING_RETRY
    if kind == "GRACE_PERIOD_EXPIRED":
        return SubscriptionStatus.BILLING_RETRY
    if kind in _RENEWING_TYPES and notification.transaction is not None:
        t = notification.transaction
        if t.revoked:
            return SubscriptionStatus.REVOKED
        if t.expires_date is not None and t.expires_date > notification.signed_date:
            return SubscriptionStatus.ACTIVE
    return None


def _will_renew(notification: Notification, status: SubscriptionStatus) -> bool:
    renewal = notification.renewal
    if renewal is not None and renewal.auto_renew is not None:
        return renewal.auto_renew
    if notification.subtype == "AUTO_RENEW_DISABLED":
        return False
    if notification.subtype == "AUTO_RENEW_ENABLED":
        return True
    return status not in (SubscriptionStatus.EXPIRED, SubscriptionStatus.REVOKED)
