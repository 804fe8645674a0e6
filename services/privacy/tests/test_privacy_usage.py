"""Usage statistics without the database: what a call is counted as, and that no read singles out fewer than k calls."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

import pytest

from likeness_platform.errors import InvalidArgument
from likeness_privacy.adapters import usage_metrics
from likeness_privacy.domain.usage import GROUPABLE, MAX_COUNT, Cell, Usage, UsageError, aggregate, calls, normalise
from likeness_privacy.usecases.usage import MAX_DAYS, UsageStats

TODAY = date(2026, 12, 3)


def test_a_call_is_counted_in_closed_vocabularies() -> None:
    cell = normalise("http", "id_photo", "us-passport", "us", "ok", "2.1.0")
    assert cell == Usage("http", "id_photo", "us-passport", "US", "ok", "2.1.0")
    # Free text that could carry an identifier is not kept as given.
    odd = normalise("cli", "id_photo_check", "Robert'); DROP", "United States", "bad outcome!", "build for alice@example.com")
    assert (odd.spec_id, odd.country, odd.outcome, odd.app_version) == ("other", "other", "other", "other")
    assert normalise("grpc", "portrait", "", "", "NO_FACE", "").app_version == "unknown"
    for bad in (("ftp", "id_photo"), ("http", "delete_everything")):
        with pytest.raises(UsageError):
            normalise(*bad, "", "", "ok", "1.0")


def _cells() -> list[Cell]:
    rng = random.Random(7)
    out = []
    for day, interface, spec, country, version in itertools.product(
        (TODAY - timedelta(days=2), TODAY - timedelta(days=1)),
        ("http", "cli"),
        ("us-passport", "jp-passport"),
        ("US", "JP"),
        ("1.0", "2.0"),
    ):
        out.append(Cell(day, Usage(interface, "id_photo", spec, country, "ok", version), rng.choice((1, 2, 3, 4, 5, 6, 9, 20))))
    return out


def test_small_cells_are_withheld_before_anything_is_summed() -> None:
    cells = _cells()
    shown = {c.count for c in cells if c.count >= 5}
    fine = aggregate(cells, 5)
    assert fine and all(count >= 5 for _, count in fine) and {count for _, count in fine} <= shown
    # A total is the sum of the shown finest cells, not the true total.
    total = aggregate(cells, 5, group_by=["operation"])
    assert total == [({"operation": "id_photo"}, sum(c.count for c in cells if c.count >= 5))]
    assert total[0][1] < sum(c.count for c in cells)
    with pytest.raises(UsageError):
        aggregate(cells, 1)
    with pytest.raises(UsageError):
        aggregate(cells, 5, group_by=["subject_id"])


def test_no_difference_between_two_reads_isolates_fewer_than_k_calls() -> None:
    """Every number shown is a sum of whole finest cells of at least k: so is the difference of a total and its
    parts, of a read and the same read filtered or grouped finer, for every pair of groupings and filters."""
    cells, k = _cells(), 5
    groupings = [list(g) for n in range(1, 4) for g in itertools.combinations(GROUPABLE, n)]
    for group_by in groupings:
        coarse = {tuple(sorted(d.items())): n for d, n in aggregate(cells, k, group_by)}
        for extra in GROUPABLE:
            finer = aggregate(cells, k, [*group_by, extra])
            for dims, total in coarse.items():
                parts = [n for d, n in finer if all(d[name] == value for name, value in dims)]
                # The finer read splits the coarse number exactly: nothing is left over to be inferred.
                assert sum(parts) == total
                assert all(n >= k for n in parts)


class _Repo:
    def __init__(self, cells: list[Cell]) -> None:
        self.cells = cells
        self.counted: list[tuple[date, Usage, int]] = []

    async def count_usage(self, day: date, usage: Usage, count: int = 1) -> None:
        self.counted.append((day, usage, count))

    async def usage_cells(self, first: date, last: date) -> list[Cell]:
        return [c for c in self.cells if first <= c.day <= last]

    async def forget_usage_before(self, day: date) -> int:
        before = len(self.cells)
        self.cells = [c for c in self.cells if c.day >= day]
        return before - len(self.cells)


async def test_reads_never_show_the_running_day_and_check_their_input() -> None:
    today_cell = Cell(TODAY, Usage("http", "id_photo", "us-passport", "US", "ok", "1.0"), 50)
    repo = _Repo([*_cells(), today_cell])
    stats = UsageStats(repo, 5, today=lambda: TODAY)  # type: ignore[arg-type]
    first, last, cells = await stats.query("", (TODAY + timedelta(days=5)).isoformat(), ["day"], {})
    assert last == TODAY - timedelta(days=1) and first == last - timedelta(days=29)
    assert TODAY.isoformat() not in {d["day"] for d, _ in cells}
    for bad in (("2026-13-01", ""), (TODAY.isoformat(), ""), ("2024-01-01", "")):
        with pytest.raises(InvalidArgument):
            await stats.query(*bad, [], {})
    with pytest.raises(InvalidArgument):
        await stats.record("http", "erase_everyone", "", "", "ok", "1.0")
    await stats.record("cli", "id_photo", "jp-passport", "jp", "ok", "0.1.0")
    assert repo.counted == [(TODAY, Usage("cli", "id_photo", "jp-passport", "JP", "ok", "0.1.0"), 1)]
    with pytest.raises(ValueError):
        UsageStats(repo, 1)  # type: ignore[arg-type]
    # Days no query may reach any more are dropped; the rest stay.
    ancient = Cell(TODAY - timedelta(days=MAX_DAYS + 1), Usage("http", "id_photo", "", "", "ok", "1.0"), 9)
    repo.cells.append(ancient)
    assert await stats.forget_old() == 1 and ancient not in repo.cells and today_cell in repo.cells


async def test_a_record_carries_a_bounded_count_and_one_without_counts_one_call() -> None:
    repo = _Repo([])
    stats = UsageStats(repo, 5, today=lambda: TODAY)  # type: ignore[arg-type]
    cell = Usage("http", "id_photo", "us-passport", "US", "ok", "2.0")
    # A client that adds up its calls sends how many; one that sends a record per call leaves it 0 (unset).
    await stats.record("http", "id_photo", "us-passport", "US", "ok", "2.0", 37)
    await stats.record("http", "id_photo", "us-passport", "US", "ok", "2.0")
    await stats.record("http", "id_photo", "us-passport", "US", "ok", "2.0", 0)
    await stats.record("http", "id_photo", "us-passport", "US", "ok", "2.0", MAX_COUNT)
    assert repo.counted == [(TODAY, cell, 37), (TODAY, cell, 1), (TODAY, cell, 1), (TODAY, cell, MAX_COUNT)]
    for bad in (-1, MAX_COUNT + 1, 2**31 - 1):
        with pytest.raises(InvalidArgument) as refused:
            await stats.record("http", "id_photo", "us-passport", "US", "ok", "2.0", bad)
        assert refused.value.code == "INVALID_USAGE_COUNT" and str(MAX_COUNT) in str(refused.value)
    assert len(repo.counted) == 4
    assert [calls(n) for n in (0, 1, 9)] == [1, 1, 9]


async def test_the_prometheus_gauge_shows_yesterdays_shown_cells_only() -> None:
    cells = _cells()
    stats = UsageStats(_Repo(cells), 5, today=lambda: TODAY)  # type: ignore[arg-type]
    shown = await usage_metrics.publish(stats)
    yesterday = [c for c in cells if c.day == TODAY - timedelta(days=1)]
    assert shown == sum(1 for c in yesterday if c.count >= 5)
    samples = [s for m in usage_metrics.USAGE_LAST_DAY.collect() for s in m.samples]
    assert len(samples) == shown and all(s.value >= 5 for s in samples)
    assert sum(s.value for s in samples) == sum(c.count for c in yesterday if c.count >= 5)
    assert set(samples[0].labels) == {"interface", "operation", "spec_id", "country", "outcome", "app_version"}
