"""Conversions between database rows and billing's domain values."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from likeness_billing.domain.purchases import ProductType, StoreEnvironment, Transaction
from likeness_billing.domain.subscriptions import StatusClaim, Subscription, SubscriptionStatus

PURCHASE_COLUMNS = (
    "transaction_id, original_transaction_id, subject_id, product_id, product_type, purchase_date, "
    "expires_date, offer_type, offer_discount_type, environment, revocation_date, revocation_reason, "
    "signed_date, app_account_token, signed_transaction"
)


def purchase_params(subject: str, t: Transaction) -> tuple[Any, ...]:
    """Values for PURCHASE_COLUMNS, in order."""
    return (
        t.transaction_id,
        t.original_transaction_id,
        uuid.UUID(subject),
        t.product_id,
        t.product_type.value,
        t.purchase_date,
        t.expires_date,
        t.offer_type,
        t.offer_discount_type,
        t.environment.value,
        t.revocation_date,
        t.revocation_reason,
        t.signed_date,
        t.app_account_token,
        t.signed_transaction,
    )


def transaction(row: Mapping[str, Any]) -> Transaction:
    return Transaction(
        transaction_id=row["transaction_id"],
        original_transaction_id=row["original_transaction_id"],
        product_id=row["product_id"],
        product_type=ProductType(row["product_type"]),
        purchase_date=row["purchase_date"],
        expires_date=row["expires_date"],
        offer_type=row["offer_type"],
        offer_discount_type=row["offer_discount_type"],
        environment=StoreEnvironment(row["environment"]),
        revocation_date=row["revocation_date"],
        revocation_reason=row["revocation_reason"],
        signed_date=row["signed_date"],
        app_account_token=row["app_account_token"],
        signed_transaction=row["signed_transaction"],
    )


def subscription(row: Mapping[str, Any], transactions: list[Transaction]) -> Subscription:
    claim = None
    if row["last_signed_date"] is not None:
        claim = StatusClaim(
            signed_date=row["last_signed_date"],
            event_key=row["last_event_key"],
            status=SubscriptionStatus(row["status"]),
            will_renew=row["will_renew"],
            grace_expires_date=row["grace_expires_date"],
        )
    return Subscription(
        original_transaction_id=row["original_transaction_id"],
        environment=StoreEnvironment(row["environment"]),
        claim=claim,
        transactions=tuple(sorted(transactions, key=lambda t: t.transaction_id)),
    )


def subscription_params(subject: str, s: Subscription) -> tuple[Any, ...]:
    claim = s.claim
    return (
        s.original_transaction_id,
        uuid.UUID(subject),
        s.environment.value,
        s.product_id,
        s.status.value,
        s.will_renew,
        s.expires_date,
        claim.grace_expires_date if claim else None,
        claim.signed_date if claim else None,
        claim.event_key if claim else None,
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value
