"""Generation credits: at most one per request id, the free ones counted per subject and day."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from psycopg import AsyncConnection

from likeness_billing.domain.purchases import canonical_subject_id
from likeness_billing.domain.quotas import CreditConsumption, QuotaPolicy

from .store import Store


class QuotaStore(Store):
    async def consume_credit(
        self,
        subject_id: str,
        request_id: str,
        day: date,
        policy: QuotaPolicy,
        unlimited: bool,
    ) -> CreditConsumption:
        """Take one generation credit for `request_id`, at most once per request id."""
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn, conn.transaction():
            # One subject's concurrent requests must not both see the last free credit.
            await self._lock(conn, "quota", str(subject))
            existing = await self._row(
                conn, "SELECT day FROM {s}.quota_usage WHERE subject_id = %s AND request_id = %s", (subject, request_id)
            )
            used = await self._free_used(conn, subject, day)
            if existing is not None:
                return CreditConsumption(request_id, existing[0], True, unlimited, used, policy.remaining(used, unlimited))
            policy.check(used, unlimited)
            await self._rowcount(
                conn,
                "INSERT INTO {s}.quota_usage (subject_id, request_id, day, free) VALUES (%s, %s, %s, %s)",
                (subject, request_id, day, not unlimited),
            )
            if not unlimited:
                used += 1
            return CreditConsumption(request_id, day, False, unlimited, used, policy.remaining(used, unlimited))

    async def release_credit(self, subject_id: str, request_id: str) -> bool:
        """Give back the credit taken for `request_id` (its work failed); False when none is held."""
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn, conn.transaction():
            await self._lock(conn, "quota", str(subject))
            deleted = await self._rowcount(
                conn, "DELETE FROM {s}.quota_usage WHERE subject_id = %s AND request_id = %s", (subject, request_id)
            )
        return deleted > 0

    async def free_credits_used(self, subject_id: str, day: date) -> int:
        subject = uuid.UUID(canonical_subject_id(subject_id))
        async with self._pool.connection() as conn:
            return await self._free_used(conn, subject, day)

    async def _free_used(self, conn: AsyncConnection[Any], subject: uuid.UUID, day: date) -> int:
        row = await self._row(conn, "SELECT count(*) FROM {s}.quota_usage WHERE subject_id = %s AND day = %s AND free", (subject, day))
        return int(row[0]) if row else 0
