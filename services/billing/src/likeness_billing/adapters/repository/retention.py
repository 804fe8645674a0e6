"""Retention of the swept categories: how much is held and since when, and the sweep itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import LiteralString

from likeness_billing.domain.retention import (
    NOTIFICATION_LINKS,
    PENDING_NOTIFICATIONS,
    PURCHASES,
    QUOTA_USAGE,
    SUBSCRIPTIONS,
    SWEPT_CATEGORIES,
    CategoryAge,
)

from .notifications import FORGET_NOTIFICATIONS
from .store import Store


@dataclass(frozen=True)
class _Swept:
    table: LiteralString
    held: LiteralString  # which rows of the table hold the category
    created: LiteralString  # the column its age is measured by
    remove: LiteralString  # the statement ending what is held, up to its WHERE
    remove_params: tuple[str, ...] = ()  # parameters of `remove` before the condition's


# The notification UUID rows themselves stay: they are the deduplication key and hold
# nothing about anyone once unlinked. Re-deliveries of even older notifications stay
# harmless because a subscription ignores snapshots older than its newest.
_SWEPT: dict[str, _Swept] = {
    # Usage rows are deleted.
    QUOTA_USAGE: _Swept("quota_usage", "TRUE", "created_at", "DELETE FROM {s}.quota_usage WHERE "),
    # Payloads still waiting (unbound or never applied) are dropped.
    PENDING_NOTIFICATIONS: _Swept("processed_notifications", "payload IS NOT NULL", "received_at", FORGET_NOTIFICATIONS, ("expired",)),
    # Processed notifications lose their keyed transaction hash.
    NOTIFICATION_LINKS: _Swept(
        "processed_notifications",
        "original_transaction_hash IS NOT NULL",
        "received_at",
        "UPDATE {s}.processed_notifications SET original_transaction_hash = NULL WHERE ",
    ),
}
if tuple(_SWEPT) != SWEPT_CATEGORIES:
    raise RuntimeError("every swept category needs exactly one sweep, in SWEPT_CATEGORIES order")


class RetentionStore(Store):
    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        """Retention, per category: remove what was created before that category's cutoff.

        Categories without a cutoff are left alone; purchases and subscriptions are kept as
        long as the account, so their cutoffs are accepted and ignored.
        """
        unknown = set(cutoffs) - set(SWEPT_CATEGORIES) - {PURCHASES, SUBSCRIPTIONS}
        if unknown:
            raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
        removed = dict.fromkeys(SWEPT_CATEGORIES, 0)
        async with self._pool.connection() as conn, conn.transaction():
            for category, swept in _SWEPT.items():
                if category in cutoffs:
                    query = swept.remove + swept.held + " AND " + swept.created + " < %s"
                    removed[category] = await self._rowcount(conn, query, (*swept.remove_params, cutoffs[category]))
        return removed

    async def retention_status(self) -> dict[str, CategoryAge]:
        """Count and oldest creation time of each category with a retention limit."""
        subqueries: list[LiteralString] = []
        for s in _SWEPT.values():
            source = " FROM {s}." + s.table + " WHERE " + s.held + ")"
            subqueries += ["(SELECT count(*)" + source, "(SELECT min(" + s.created + ")" + source]
        row = await self._counts(subqueries)
        return {category: CategoryAge(int(row[2 * i]), row[2 * i + 1]) for i, category in enumerate(_SWEPT)}
