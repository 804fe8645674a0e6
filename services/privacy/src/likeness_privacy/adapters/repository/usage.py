"""Usage statistics: a count per day and cell of dimensions (no subject, device or address is ever stored)."""

from __future__ import annotations

from datetime import date

from likeness_privacy.adapters.repository._common import RepositoryBase
from likeness_privacy.domain.usage import Cell, Usage


class UsageRepository(RepositoryBase):
    async def count_usage(self, day: date, usage: Usage, count: int = 1) -> None:
        """Add `count` calls to their cell of the day: one upsert, whatever the count."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO usage_stats (day, interface, operation, spec_id, country, outcome, app_version, count)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (day, interface, operation, spec_id, country, outcome, app_version)"
                " DO UPDATE SET count = usage_stats.count + EXCLUDED.count",
                (day, *usage.key(), count),
            )

    async def usage_cells(self, first: date, last: date) -> list[Cell]:
        """Every cell of the days first..last, raw (suppression is the caller's: domain.usage.aggregate)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT day, interface, operation, spec_id, country, outcome, app_version, count FROM usage_stats"
                " WHERE day BETWEEN %s AND %s",
                (first, last),
            )
            return [Cell(r[0], Usage(*r[1:7]), int(r[7])) for r in await cur.fetchall()]

    async def forget_usage_before(self, day: date) -> int:
        """Remove the days before `day` (the statistics' own retention); how many cells went."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM usage_stats WHERE day < %s", (day,))
            return cur.rowcount
