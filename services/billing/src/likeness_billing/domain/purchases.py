"""What billing keeps from verified App Store data.

Only the fields below survive verification: identifiers, product, dates, offer kind,
environment and revocation. Price, currency, storefront and the like are dropped on purpose
(data minimisation); the signed JWS is kept because it is the proof of purchase.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from likeness_billing.domain.errors import InvalidArgument


class StoreEnvironment(StrEnum):
    PRODUCTION = "Production"
    SANDBOX = "Sandbox"
    # Only reachable with a verifier built for tests (signature checks skipped).
    XCODE = "Xcode"
    LOCAL_TESTING = "LocalTesting"


class ProductType(StrEnum):
    AUTO_RENEWABLE = "Auto-Renewable Subscription"
    NON_CONSUMABLE = "Non-Consumable"
    CONSUMABLE = "Consumable"
    NON_RENEWING = "Non-Renewing Subscription"


# Apple's offerType 1 with offerDiscountType FREE_TRIAL marks a free trial.
INTRODUCTORY_OFFER = 1
FREE_TRIAL = "FREE_TRIAL"


@dataclass(frozen=True)
class Transaction:
    transaction_id: str
    original_transaction_id: str
    product_id: str
    product_type: ProductType
    purchase_date: datetime
    expires_date: datetime | None
    offer_type: int | None
    offer_discount_type: str | None
    environment: StoreEnvironment
    revocation_date: datetime | None
    revocation_reason: int | None
    # When Apple signed this copy: newer copies of one transaction supersede older ones.
    signed_date: datetime
    app_account_token: str | None
    signed_transaction: str = field(repr=False)

    @property
    def revoked(self) -> bool:
        return self.revocation_date is not None

    @property
    def is_free_trial(self) -> bool:
        return self.offer_type == INTRODUCTORY_OFFER and self.offer_discount_type == FREE_TRIAL

    @property
    def is_subscription(self) -> bool:
        return self.product_type is ProductType.AUTO_RENEWABLE


@dataclass(frozen=True)
class RenewalInfo:
    original_transaction_id: str
    auto_renew: bool | None
    auto_renew_product_id: str | None
    expiration_intent: int | None
    in_billing_retry: bool | None
    grace_period_expires_date: datetime | None
    signed_date: datetime
    environment: StoreEnvironment


@dataclass(frozen=True)
class Notification:
    """A verified App Store Server Notification V2, decoded down to what billing uses."""

    notification_uuid: str
    notification_type: str
    subtype: str | None
    signed_date: datetime
    environment: StoreEnvironment | None
    # data.status: Apple's own view of the subscription at signed_date (1..5), when sent.
    status: int | None
    transaction: Transaction | None
    renewal: RenewalInfo | None

    @property
    def original_transaction_id(self) -> str | None:
        if self.transaction is not None:
            return self.transaction.original_transaction_id
        if self.renewal is not None:
            return self.renewal.original_transaction_id
        return None


def newer_copy(current: Transaction | None, candidate: Transaction) -> Transaction:
    """Pick which of two signed copies of one transaction to keep.

    A total order makes the choice independent of arrival order: the later signature wins;
    on a tie a revoked copy wins (never un-refund by accident), then the JWS text decides.
    """
    if current is None:
        return candidate
    if _copy_key(candidate) > _copy_key(current):
        return candidate
    return current


def _copy_key(t: Transaction) -> tuple[datetime, bool, str]:
    return (t.signed_date, t.revoked, t.signed_transaction)


def canonical_subject_id(value: str) -> str:
    """Subject ids are UUIDs; compare and store them in one spelling."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument("subject id must be a UUID") from None


def token_names_other_subject(transaction: Transaction, subject_id: str) -> bool:
    """True when the app set an appAccountToken at purchase that is not this subject."""
    token = transaction.app_account_token
    if token is None or token == "":
        return False
    try:
        return str(uuid.UUID(token)) != canonical_subject_id(subject_id)
    except ValueError:
        # A token that is not a UUID cannot be one of our subject ids.
        return True


class NotificationOutcome(StrEnum):
    """What became of one delivered notification; every outcome is acknowledged to Apple."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    # No subject holds this transaction yet: kept until the app presents the purchase.
    PARKED = "parked"
    # The transaction belonged to an erased subject.
    DROPPED = "dropped"
    # Nothing in it concerns a purchase (TEST, summaries).
    IGNORED = "ignored"


def claimed_subject(transaction: Transaction | None) -> str | None:
    """The subject the app named in appAccountToken at purchase, when it is a UUID."""
    if transaction is None or not transaction.app_account_token:
        return None
    try:
        return str(uuid.UUID(transaction.app_account_token))
    except ValueError:
        return None
