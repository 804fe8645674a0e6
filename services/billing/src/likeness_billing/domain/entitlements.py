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


@dataclass(frozen=True, kw_only=True)
class Entitlement:
    product_id: str
    kind: EntitlementKind
    active: bool
    environment: StoreEnvironment
    original_transaction_id: str
    # Subscription state; a lifetime unlock has none of it.
    status: SubscriptionStatus | None = None
    expires_date: datetime | None = None
    grace_expires_date: datetime | None = None
    will_renew: bool = False
    is_free_trial: bool = False


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
                environment=sub.environment,
                original_transaction_id=sub.original_transaction_id,
                status=sub.status,
                expires_date=sub.expires_date,
                grace_expires_date=sub.grace_expires_date,
                will_renew=sub.will_renew,
                is_free_trial=sub.is_free_trial,
            )
        )
    # Consumables and non-renewing subscriptions are recorded, but grant no standing access.
    items.extend(
        Entitlement(
            product_id=t.product_id,
            kind=EntitlementKind.LIFETIME,
            active=not t.revoked,
            environment=t.environment,
            original_transaction_id=t.original_transaction_id,
        )
        for t in one_time_purchases
        if t.product_type is ProductType.NON_CONSUMABLE
    )
    items.sort(key=lambda e: (not e.active, e.product_id, e.original_transaction_id))
    return Entitlements(subject_id=subject_id, items=tuple(items))
