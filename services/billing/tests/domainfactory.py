"""Domain objects built directly (no signing), for fast tests of pure rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from likeness_billing.domain.purchases import (
    Notification,
    ProductType,
    RenewalInfo,
    StoreEnvironment,
    Transaction,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORIGINAL = "1000000000000001"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def txn(
    transaction_id: str,
    *,
    purchase: datetime,
    expires: datetime | None,
    signed: datetime,
    original: str = ORIGINAL,
    revoked_at: datetime | None = None,
    product_id: str = "likeness.pro.monthly",
    product_type: ProductType = ProductType.AUTO_RENEWABLE,
    token: str | None = None,
) -> Transaction:
    return Transaction(
        transaction_id=transaction_id,
        original_transaction_id=original,
        product_id=product_id,
        product_type=product_type,
        purchase_date=purchase,
        expires_date=expires,
        offer_type=None,
        offer_discount_type=None,
        environment=StoreEnvironment.SANDBOX,
        revocation_date=revoked_at,
        revocation_reason=0 if revoked_at else None,
        signed_date=signed,
        app_account_token=token,
        signed_transaction=f"jws:{transaction_id}:{signed.isoformat()}:{revoked_at is not None}",
    )


def one_time(
    transaction_id: str,
    product_id: str,
    product_type: ProductType = ProductType.NON_CONSUMABLE,
    *,
    signed: datetime = day(1),
    revoked_at: datetime | None = None,
) -> Transaction:
    """A one-time purchase (its own original transaction, no expiry) bought on day 1."""
    return txn(
        transaction_id,
        original=transaction_id,
        purchase=day(1),
        expires=None,
        signed=signed,
        revoked_at=revoked_at,
        product_id=product_id,
        product_type=product_type,
    )


def note(
    kind: str,
    subtype: str | None,
    signed: datetime,
    transaction: Transaction | None,
    *,
    status: int | None,
    auto_renew: bool | None = True,
    grace_until: datetime | None = None,
    notification_uuid: str | None = None,
) -> Notification:
    renewal = None
    if transaction is not None and auto_renew is not None:
        renewal = RenewalInfo(
            original_transaction_id=transaction.original_transaction_id,
            auto_renew=auto_renew,
            auto_renew_product_id=transaction.product_id,
            expiration_intent=None,
            in_billing_retry=None,
            grace_period_expires_date=grace_until,
            signed_date=signed,
            environment=StoreEnvironment.SANDBOX,
        )
    return Notification(
        notification_uuid=notification_uuid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{subtype}/{signed}")),
        notification_type=kind,
        subtype=subtype,
        signed_date=signed,
        environment=StoreEnvironment.SANDBOX,
        status=status,
        transaction=transaction,
        renewal=renewal,
    )


def lifecycle(
    original: str = ORIGINAL,
    ids: tuple[str, str, str] = ("1000000000000001", "1000000000000002", "1000000000000003"),
    *,
    fresh_uuids: bool = False,
) -> tuple[Notification, ...]:
    """One subscription's life: buy, renew, fail into grace, recover, turn auto-renew off,
    get refunded, and finally Apple's expiry notice."""
    a_id, b_id, c_id = ids
    a = txn(a_id, original=original, purchase=day(0), expires=day(30), signed=day(0))
    b = txn(b_id, original=original, purchase=day(30), expires=day(60), signed=day(30))
    c = txn(c_id, original=original, purchase=day(62), expires=day(92), signed=day(62))
    c_refunded = txn(c_id, original=original, purchase=day(62), expires=day(92), signed=day(75), revoked_at=day(75))

    def uid() -> str | None:
        return str(uuid.uuid4()) if fresh_uuids else None

    return (
        note("SUBSCRIBED", "INITIAL_BUY", day(0), a, status=1, notification_uuid=uid()),
        note("DID_RENEW", None, day(30), b, status=1, notification_uuid=uid()),
        note("DID_FAIL_TO_RENEW", "GRACE_PERIOD", day(60), b, status=4, grace_until=day(66), notification_uuid=uid()),
        note("DID_RENEW", "BILLING_RECOVERY", day(62), c, status=1, notification_uuid=uid()),
        note("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", day(70), c, status=1, auto_renew=False, notification_uuid=uid()),
        note("REFUND", None, day(75), c_refunded, status=5, auto_renew=False, notification_uuid=uid()),
        note("EXPIRED", "VOLUNTARY", day(92), c_refunded, status=5, auto_renew=False, notification_uuid=uid()),
    )


LIFECYCLE = lifecycle()
A = LIFECYCLE[0].transaction
B = LIFECYCLE[1].transaction
C = LIFECYCLE[3].transaction
C_REFUNDED = LIFECYCLE[5].transaction
assert A is not None and B is not None and C is not None and C_REFUNDED is not None
