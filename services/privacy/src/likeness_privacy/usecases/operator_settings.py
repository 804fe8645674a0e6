"""What admins may see of privacy's settings: retention periods and key-rotation state (never a key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class RetiredKekState:
    kek_id: str
    retired_on: str
    usable: bool


@dataclass(frozen=True)
class SettingsView:
    retention: dict[str, timedelta]
    kek_id: str
    retired_keks: list[RetiredKekState] = field(default_factory=list)
    kek_backup_window_days: int = 0
    kek_rewrap_interval: timedelta = timedelta(0)
    erasure_reverify_after: timedelta = timedelta(0)
    stats_min_count: int = 0


def retired_states(configured: dict[str, str], window_days: int, today: date | None = None) -> list[RetiredKekState]:
    """Each configured retired KEK (`<base64>@YYYY-MM-DD`) by id and retirement date, and whether it is still used."""
    today = today or datetime.now(UTC).date()
    out = []
    for kek_id, value in sorted(configured.items()):
        retired_on = value.partition("@")[2]
        try:
            usable = today <= date.fromisoformat(retired_on) + timedelta(days=window_days)
        except ValueError:
            usable = False
        out.append(RetiredKekState(kek_id, retired_on, usable))
    return out
