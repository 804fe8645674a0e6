"""PostgreSQL storage for billing (psycopg 3, async), schema `billing` by default.

One repository, assembled from a store per concern:
- subscriptions: purchases and subscriptions, bound to subjects;
- notifications: App Store notifications, recorded then applied (or parked, or dropped);
- quotas: generation credits;
- subject_data: what is held about one subject (inventory, export, erasure, ledger);
- retention: the swept categories' status and the sweep.
"""

from __future__ import annotations

from .notifications import NotificationStore
from .quotas import QuotaStore
from .retention import RetentionStore
from .store import DEFAULT_SCHEMA, MIGRATIONS_DIR
from .subject_data import SubjectDataStore

__all__ = ["DEFAULT_SCHEMA", "MIGRATIONS_DIR", "BillingRepository"]


class BillingRepository(NotificationStore, QuotaStore, SubjectDataStore, RetentionStore):
    """Billing's storage: `BillingRepository(pool, ledger_key=..., schema=...)`."""
