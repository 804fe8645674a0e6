"""Daily generation allowance for subjects without an active entitlement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from likeness_billing.domain.errors import InvalidArgument, QuotaExceeded

MAX_REQUEST_ID_LENGTH = 128


@dataclass(frozen=True)
class QuotaPolicy:
    free_daily_allowance: int

    def __post_init__(self) -> None:
        if self.free_daily_allowance < 0:
            raise ValueError("free_daily_allowance must be zero or more")

    def check(self, used_today: int, unlimited: bool) -> None:
        """Raise QuotaExceeded when one more free generation would go over today's allowance."""
        if unlimited:
            return
        if used_today >= self.free_daily_allowance:
            raise QuotaExceeded(
                f"the free allowance of {self.free_daily_allowance} generations per UTC day "
                "is used up; it renews at 00:00 UTC, or a subscription lifts it"
            )

    def remaining(self, used_today: int, unlimited: bool) -> int | None:
        if unlimited:
            return None
        return max(0, self.free_daily_allowance - used_today)


@dataclass(frozen=True)
class CreditConsumption:
    request_id: str
    day: date
    # True when this request id had already consumed a credit: nothing was taken twice.
    replayed: bool
    unlimited: bool
    used_today: int
    remaining_today: int | None


def utc_day(now: datetime) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()


def check_request_id(request_id: str) -> str:
    if not request_id or len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidArgument(f"request id must be 1 to {MAX_REQUEST_ID_LENGTH} characters")
    return request_id
