"""Usage statistics without personal data: what one call is counted as, and what may be shown of the counts.

A call is counted in one *cell*: its UTC day and six dimensions (interface, operation, spec, country,
outcome, app version), nothing about who made it. Reading the counts applies one rule against singling
anyone out:

1. Only complete days are shown (today's counts are not: two reads an hour apart would give the calls
   in between, one by one).
2. Suppression happens at the finest cell (day x all six dimensions): a cell counting fewer than
   `min_count` (k) is dropped *before* anything is summed.
3. Every number shown is a sum of cells that passed (2): a total by spec, by country or over a month is
   the sum of the shown cells only, never the true total.

So the difference between any two numbers shown (a total and one of its parts, one month and the same
month grouped by country, the same query with a filter) is again a sum of whole cells of at least k
calls each, or nothing: no subtraction across dimensions, filters or ranges isolates fewer than k calls.
The price is that totals undercount (rare combinations are left out), which the API says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

DIMENSIONS = ("interface", "operation", "spec_id", "country", "outcome", "app_version")
GROUPABLE = ("day", *DIMENSIONS)
INTERFACES = frozenset({"http", "grpc", "cli"})
OPERATIONS = frozenset({"id_photo", "id_photo_check", "portrait", "hairstyle"})
OTHER = "other"
UNKNOWN = "unknown"

_SPEC = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_OUTCOME = re.compile(r"^[a-z0-9_]{1,32}$|^[A-Z0-9_]{1,48}$")
# The most calls one record may add to a cell: a client adding up its calls for about a second stays far below
# it, while a wrong or hostile number cannot inflate a cell without bound in one message.
MAX_COUNT = 10_000
# Versions like 2.1.0, 2.1.0-beta.3, 1.0+build7: anything else (free text could carry an identifier) is "other".
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+-]{0,23}$")


class UsageError(ValueError):
    """A usage record or a stats query that cannot be taken."""


@dataclass(frozen=True)
class Usage:
    """One call, as counted: dimensions only."""

    interface: str
    operation: str
    spec_id: str
    country: str
    outcome: str
    app_version: str

    def key(self) -> tuple[str, ...]:
        return tuple(getattr(self, d) for d in DIMENSIONS)


def normalise(interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str) -> Usage:
    """The cell a reported call goes in; values outside the closed vocabularies become "other"."""
    if interface not in INTERFACES:
        raise UsageError(f"interface must be one of {', '.join(sorted(INTERFACES))}")
    if operation not in OPERATIONS:
        raise UsageError(f"operation must be one of {', '.join(sorted(OPERATIONS))}")
    version = app_version.strip()
    return Usage(
        interface=interface,
        operation=operation,
        spec_id=spec_id if not spec_id or _SPEC.match(spec_id) else OTHER,
        country=country.upper() if _COUNTRY.match(country.upper()) else ("" if not country else OTHER),
        outcome=outcome if _OUTCOME.match(outcome) else OTHER,
        app_version=(version if _VERSION.match(version) else OTHER) if version else UNKNOWN,
    )


def calls(count: int) -> int:
    """How many calls a record adds to its cell: 0 (a client that sends one call per record leaves it unset)
    counts one; otherwise 1..MAX_COUNT."""
    if count == 0:
        return 1
    if not 1 <= count <= MAX_COUNT:
        raise UsageError(f"count must be between 1 and {MAX_COUNT} (0 or unset counts one call), not {count}")
    return count


@dataclass(frozen=True)
class Cell:
    day: date
    usage: Usage
    count: int

    def value(self, dimension: str) -> str:
        return self.day.isoformat() if dimension == "day" else str(getattr(self.usage, dimension))


def check_query(group_by: Iterable[str], filters: Mapping[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The dimensions to group by (all when none are named) and the filters, checked against the known names."""
    groups = tuple(dict.fromkeys(group_by)) or GROUPABLE
    unknown = [g for g in (*groups, *filters) if g not in GROUPABLE]
    if unknown:
        raise UsageError(f"unknown dimension(s) {', '.join(sorted(set(unknown)))}; known: {', '.join(GROUPABLE)}")
    return groups, dict(filters)


def aggregate(
    cells: Iterable[Cell], min_count: int, group_by: Iterable[str] = GROUPABLE, filters: Mapping[str, str] | None = None
) -> list[tuple[dict[str, str], int]]:
    """Withhold every finest cell under `min_count`, then sum the rest by `group_by` (see the module docstring)."""
    if min_count < 2:
        raise UsageError("the suppression threshold must be at least 2")
    groups, wanted = check_query(group_by, filters or {})
    sums: dict[tuple[str, ...], int] = {}
    for cell in cells:
        if cell.count < min_count:
            continue
        if any(cell.value(d) != v for d, v in wanted.items()):
            continue
        key = tuple(cell.value(d) for d in groups)
        sums[key] = sums.get(key, 0) + cell.count
    return [(dict(zip(groups, key, strict=True)), total) for key, total in sorted(sums.items())]
