"""Usage statistics: count each call in its day's cell; read the counts with small cells withheld (domain.usage)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

from likeness_platform.errors import InvalidArgument
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain import usage
from likeness_privacy.domain.usage import UsageError

# The longest range one query may cover, and how long the daily counts are kept.
MAX_DAYS = 400


def _today() -> date:
    return datetime.now(UTC).date()


class UsageStats:
    def __init__(self, repo: PrivacyRepository, min_count: int, today: Callable[[], date] = _today) -> None:
        if min_count < 2:
            raise ValueError("LIKENESS_STATS_MIN_COUNT must be at least 2: a count of 1 singles a person out")
        self._repo = repo
        self.min_count = min_count
        self._today = today

    async def record(
        self, interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str, count: int = 0
    ) -> None:
        """Add `count` calls (0: one) to their cell of today, the UTC day the record arrives on (a client that adds
        up its calls before sending may so put a few made just before midnight in the next day)."""
        try:
            cell = usage.normalise(interface, operation, spec_id, country, outcome, app_version)
        except UsageError as exc:
            raise InvalidArgument(str(exc), "INVALID_USAGE") from None
        try:
            calls = usage.calls(count)
        except UsageError as exc:
            raise InvalidArgument(str(exc), "INVALID_USAGE_COUNT") from None
        await self._repo.count_usage(self._today(), cell, calls)

    def days(self, from_day: str, to_day: str) -> tuple[date, date]:
        """The range asked for, ending before today (a running day is never shown)."""
        last_complete = self._today() - timedelta(days=1)
        try:
            last = min(date.fromisoformat(to_day), last_complete) if to_day else last_complete
            first = date.fromisoformat(from_day) if from_day else last - timedelta(days=29)
        except ValueError:
            raise InvalidArgument("days are YYYY-MM-DD", "INVALID_DAY") from None
        if first > last:
            raise InvalidArgument(f"from_day must not be after {last.isoformat()} (today's counts are not shown)", "INVALID_DAY")
        if (last - first).days >= MAX_DAYS:
            raise InvalidArgument(f"at most {MAX_DAYS} days at once", "INVALID_DAY")
        return first, last

    async def query(
        self, from_day: str, to_day: str, group_by: Iterable[str], filters: Mapping[str, str]
    ) -> tuple[date, date, list[tuple[dict[str, str], int]]]:
        """(first day, last day, cells): suppressed at the finest cell, then summed by `group_by`."""
        first, last = self.days(from_day, to_day)
        try:
            groups, wanted = usage.check_query(group_by, filters)
            cells = await self._repo.usage_cells(first, last)
            return first, last, usage.aggregate(cells, self.min_count, groups, wanted)
        except UsageError as exc:
            raise InvalidArgument(str(exc), "INVALID_STATS_QUERY") from None

    async def forget_old(self) -> int:
        """Drop the days no query may reach any more (older than MAX_DAYS); how many cells went."""
        return await self._repo.forget_usage_before(self._today() - timedelta(days=MAX_DAYS))

    async def last_day(self) -> list[tuple[dict[str, str], int]]:
        """Yesterday's finest cells that pass the threshold (what the Prometheus gauge shows)."""
        yesterday = (self._today() - timedelta(days=1)).isoformat()
        _, _, cells = await self.query(yesterday, yesterday, usage.DIMENSIONS, {})
        return cells
