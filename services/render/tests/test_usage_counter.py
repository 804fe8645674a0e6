"""Render counts every generation it serves for the usage statistics: by channel, off the call path, added up per
cell and sent in the background (one record per cell and interval, not one per call)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from likeness_render.adapters import usage
from likeness_render.adapters.usage import MAX_PENDING, UsageCounter, channel_of

ID_PHOTO = ("http", "id_photo", "us-passport", "US", "ok", "1.0")
CHECK = ("http", "id_photo_check", "jp-passport", "JP", "ok", "1.0")
PORTRAIT = ("grpc", "portrait", "", "", "ok", "")


class FakeSleep:
    """asyncio.sleep that returns only when the test says the time has passed: the delays asked for are kept."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._passed = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await self._passed.wait()
        self._passed.clear()

    async def elapse(self) -> None:
        self._passed.set()
        for _ in range(5):  # the timer's wake-up, its flush, and the sends it starts
            await asyncio.sleep(0)


class Privacy:
    """What render sends: (cell, count) per record; `gate` holds every send until set."""

    def __init__(self) -> None:
        self.records: list[tuple[tuple[str, ...], int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: set[str] = set()

    async def send(self, interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str, count: int) -> None:
        await self.gate.wait()
        if operation in self.fail:
            raise ConnectionError("privacy is down")
        self.records.append(((interface, operation, spec_id, country, outcome, app_version), count))

    def totals(self) -> dict[tuple[str, ...], int]:
        out: dict[tuple[str, ...], int] = {}
        for cell, count in self.records:
            out[cell] = out.get(cell, 0) + count
        return out


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_channel_comes_from_the_certificate_and_the_client_name() -> None:
    assert channel_of("gateway", {"x-likeness-app-version": "3.1.0"}) == ("http", "3.1.0")
    assert channel_of("operator/dev", {"x-likeness-client": "likeness-cli/0.1.0"}) == ("cli", "0.1.0")
    assert channel_of("operator/dev", {"x-likeness-client": "likeness-python/0.1.0"}) == ("grpc", "0.1.0")
    # Only the gateway's word makes a call an app's; anyone else claiming an app version is a gRPC client.
    assert channel_of("operator/dev", {"x-likeness-app-version": "3.1.0"}) == ("grpc", "")


async def test_calls_are_added_up_per_cell_and_sent_once_per_interval() -> None:
    privacy, sleep = Privacy(), FakeSleep()
    counter = UsageCounter(privacy.send, 1.5, sleep=sleep)
    for _ in range(5):
        counter.count(*ID_PHOTO)
    counter.count(*CHECK)
    counter.count(*ID_PHOTO)
    await _settle()
    # Nothing goes out before the interval, and one timer serves every count made in it.
    assert privacy.records == [] and sleep.delays == [1.5]
    await sleep.elapse()
    assert sorted(privacy.records) == sorted([(ID_PHOTO, 6), (CHECK, 1)])
    # The next interval starts with the next count, and sends only what came in it.
    counter.count(*ID_PHOTO)
    await _settle()
    assert sleep.delays == [1.5, 1.5] and len(privacy.records) == 2
    await sleep.elapse()
    assert privacy.records[2:] == [(ID_PHOTO, 1)]
    await counter.drain()
    assert privacy.totals() == {ID_PHOTO: 7, CHECK: 1}


async def test_a_short_interval_sends_without_a_drain() -> None:
    privacy = Privacy()
    counter = UsageCounter(privacy.send, 0.01)
    counter.count(*PORTRAIT)
    counter.count(*PORTRAIT)
    for _ in range(200):
        if privacy.records:
            break
        await asyncio.sleep(0.01)
    assert privacy.records == [(PORTRAIT, 2)]


async def test_many_cells_waiting_are_sent_before_the_interval() -> None:
    privacy, sleep = Privacy(), FakeSleep()
    counter = UsageCounter(privacy.send, 60.0, flush_cells=4, sleep=sleep)
    for version in ("1.0", "1.1", "1.2"):
        counter.count("http", "id_photo", "", "", "ok", version)
    await _settle()
    assert privacy.records == []
    counter.count("http", "id_photo", "", "", "ok", "1.3")
    await _settle()
    assert len(privacy.records) == 4 and all(count == 1 for _, count in privacy.records)


async def test_a_cell_reaching_the_most_one_record_may_carry_is_sent_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage, "MAX_COUNT", 3)
    privacy, sleep = Privacy(), FakeSleep()
    counter = UsageCounter(privacy.send, 60.0, sleep=sleep)
    for _ in range(7):
        counter.count(*ID_PHOTO)
    await _settle()
    assert privacy.records == [(ID_PHOTO, 3), (ID_PHOTO, 3)]
    await counter.drain()
    assert privacy.records[2:] == [(ID_PHOTO, 1)]


async def test_drain_sends_everything_waiting_and_waits_for_it() -> None:
    privacy, sleep = Privacy(), FakeSleep()
    privacy.gate.clear()
    counter = UsageCounter(privacy.send, 3600.0, sleep=sleep)
    counter.count(*ID_PHOTO)
    counter.count(*ID_PHOTO)
    counter.count(*CHECK)
    drained = asyncio.create_task(counter.drain())
    await _settle()
    # The interval is not waited for, but the sends are.
    assert not drained.done()
    privacy.gate.set()
    await asyncio.wait_for(drained, 5)
    assert sorted(privacy.records) == sorted([(ID_PHOTO, 2), (CHECK, 1)])
    await counter.drain()  # nothing left: returns at once
    assert len(privacy.records) == 2


async def test_the_backlog_is_bounded_in_cells_and_drops_are_logged_with_how_many() -> None:
    privacy = Privacy()
    privacy.gate.clear()
    counter = UsageCounter(privacy.send, 3600.0, max_pending=3)
    cells = [("http", "id_photo", "", "", "ok", f"1.{i}") for i in range(5)]
    with capture_logs() as logs:
        for cell in cells:
            counter.count(*cell)
        # A cell already held takes any number of further calls: the bound is on cells, not calls.
        for _ in range(1000):
            counter.count(*cells[0])
        # Cells being sent count against the bound too, while privacy does not answer.
        flushing = asyncio.create_task(counter.drain())
        await _settle()
        counter.count(*cells[4])
        counter.count(*cells[0])  # a new count of a cell in flight needs a place of its own
        privacy.gate.set()
        await asyncio.wait_for(flushing, 5)
        await counter.drain()
    assert privacy.totals() == {cells[0]: 1001, cells[1]: 1, cells[2]: 1}
    dropped = [entry for entry in logs if entry["event"] == "usage_count_dropped"]
    assert [entry["reason"] for entry in dropped] == ["backlog", "backlog"]
    assert [entry["calls"] for entry in dropped] == [2, 2]
    # Sent cells free their place.
    counter.count(*cells[4])
    await counter.drain()
    assert privacy.totals()[cells[4]] == 1
    assert MAX_PENDING >= usage.FLUSH_CELLS


async def test_counts_that_cannot_be_sent_are_dropped_and_logged_and_never_reach_the_caller() -> None:
    privacy = Privacy()
    privacy.fail.add("portrait")
    counter = UsageCounter(privacy.send, 3600.0)
    with capture_logs() as logs:
        for _ in range(4):
            counter.count(*PORTRAIT)  # never raises, though privacy will refuse it
        counter.count(*ID_PHOTO)
        await counter.drain()
    assert privacy.records == [(ID_PHOTO, 1)]
    assert [(e["event"], e["reason"], e["calls"], e["cells"], e["error"]) for e in logs if e["log_level"] == "warning"] == [
        ("usage_count_dropped", "unsent", 4, 1, "ConnectionError")
    ]
    # What was dropped is not sent again.
    await counter.drain()
    assert privacy.records == [(ID_PHOTO, 1)]


def test_the_interval_is_not_negative() -> None:
    with pytest.raises(ValueError):
        UsageCounter(Privacy().send, -1.0)
