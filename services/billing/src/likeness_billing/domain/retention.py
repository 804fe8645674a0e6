"""Data categories billing reports to the privacy service, and how long each may be kept."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from likeness_platform.categories import Category
from likeness_platform.dataholder import clamp_cutoffs

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

# How long each swept category is kept: never longer, and no caller's cutoff removes it sooner.
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
    """What a sweep removes, per swept category: exactly what is older than our own limit.

    A requested cutoff cannot make billing keep longer than its limit, nor (clamped to the limit, as every
    holder clamps) remove anything younger: a Sweep with cutoff = now leaves today's usage alone. Cutoffs of
    categories billing does not sweep are ignored: privacy sends every holder the same set.
    """
    clamped = clamp_cutoffs(requested, limits, now)  # never later than now - limit
    return {category: max(cutoff, now - limits[category]) for category, cutoff in clamped.items()}  # never earlier


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
