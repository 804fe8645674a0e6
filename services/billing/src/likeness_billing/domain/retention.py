"""Data categories billing reports to the privacy service, and how long each may be kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from likeness_platform.categories import Category

# Held per subject (Inventory, Export, Erase).
PURCHASES = Category.PURCHASES
SUBSCRIPTIONS = Category.SUBSCRIPTIONS
QUOTA_USAGE = Category.QUOTA_USAGE
# Signed payloads waiting to be applied (unbound purchase, or a crash before applying).
PENDING_NOTIFICATIONS = Category.PENDING_NOTIFICATIONS
# Not per subject: keyed transaction hashes on processed notifications.
NOTIFICATION_LINKS = Category.NOTIFICATION_LINKS

SUBJECT_CATEGORIES = (PURCHASES, SUBSCRIPTIONS, QUOTA_USAGE, PENDING_NOTIFICATIONS)
# Purchases and subscriptions are kept as long as the account; these are swept.
SWEPT_CATEGORIES = (QUOTA_USAGE, PENDING_NOTIFICATIONS, NOTIFICATION_LINKS)

# The longest each swept category is kept; the privacy service may ask for less.
# Usage only matters for today's allowance and for request-id retries. Payloads wait for the
# app to present their purchase. Apple retries a notification for about a week; a link to its
# transaction kept longer serves only audits.
RETENTION_LIMITS: Mapping[str, timedelta] = {
    QUOTA_USAGE: timedelta(days=7),
    PENDING_NOTIFICATIONS: timedelta(days=30),
    NOTIFICATION_LINKS: timedelta(days=180),
}


@dataclass(frozen=True)
class CategoryAge:
    count: int
    oldest: datetime | None


@dataclass(frozen=True)
class RetentionItem:
    category: str
    count: int
    oldest_age_seconds: float
    max_age_seconds: float


def effective_cutoffs(
    requested: Mapping[str, datetime], now: datetime, limits: Mapping[str, timedelta] = RETENTION_LIMITS
) -> dict[str, datetime]:
    """Per category, the later of the requested cutoff and our own limit: never keep longer."""
    effective = {category: now - limit for category, limit in limits.items()}
    for category, cutoff in requested.items():
        effective[category] = max(cutoff, effective[category]) if category in effective else cutoff
    return effective


def retention_items(
    status: Mapping[str, CategoryAge], now: datetime, limits: Mapping[str, timedelta] = RETENTION_LIMITS
) -> list[RetentionItem]:
    return [
        RetentionItem(
            category=category,
            count=age.count,
            oldest_age_seconds=max(0.0, (now - age.oldest).total_seconds()) if age.oldest else 0.0,
            max_age_seconds=limits[category].total_seconds(),
        )
        for category, age in sorted(status.items())
        if category in limits
    ]
