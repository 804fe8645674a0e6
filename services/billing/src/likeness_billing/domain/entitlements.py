"""What a subject may use now, derived from its subscriptions and one-time purchases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from likeness_billing.domain.purchases import ProductType, StoreEnvironment, Transaction
from likeness_billing.domain.subscriptions import Subscription, SubscriptionStatus


class EntitlementKind(StrEnum):
    SUBSCRIPTION = "subscription"
    # A non-consumable unlock: it lasts until refunded.
    LIFETIME = "lifetime"


@dataclass(frozen=True)
class Entitlement:
    product_id: str
    kind: EntitlementKind
    active: bool
    status: SubscriptionStatus | None
    expires_date: datetime | None
    grace_expires_date: datetime | None
    will_renew: bool
    is_free_trial: bool
    environment: StoreEnvironment
    original_transaction_id: str


@dataclass(frozen=True)
class Entitlements:
    subject_id: str
    items: tuple[Entitlement, ...]

    @property
    def unlimited(self) -> bool:
        """Any active entitlement lifts the free daily allowance."""
        return any(item.active for item in self.items)


def compute_entitlements(
    subject_id: str,
    subscriptions: Iterable[Subscription],
    one_time_purchases: Iterable[Transaction],
    now: datetime,
) -> Entitlements:
    items: list[Entitlement] = []
    for sub in subscriptions:
        product = sub.product_id
        if product is None:
            continue
        items.append(
            Entitlement(
                product_id=product,
                kind=EntitlementKind.SUBSCRIPTION,
                active=sub.entitled(now),
                status=sub.status,
                expires_date=sub.expires_date,
                grace_expires_date=sub.grace_expires_date,
                will_renew=sub.will_renew,
                is_free_trial=sub.is_free_trial,
                environment=sub.environment,
                original_transaction_id=sub.original_transaction_id,
            )
        )
    for t in one_time_purchases:
        # Consumables and non-renewing subscriptions are recorded, but grant no standing access.
        if t.product_type is not ProductType.NON_CONSUMABLE:
            continue
        items.append(
            Entitlement(
                product_id=t.product_id,
                kind=EntitlementKind.LIFETIME,
                active=not t.revoked,
                status=None,
                expires_date=None,
                grace_expires_date=None,
                will_renew=False,
                is_free_trial=False,
                environment=t.environment,
                original_transaction_id=t.original_transaction_id,
            )
        )
    items.sort(key=lambda e: (not e.active, e.product_id, e.original_transaction_id))
    return Entitlements(subject_id=subject_id, items=tuple(items))
