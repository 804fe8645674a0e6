"""MicroBatcher with a recording fake model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY

from likeness_faces.adapters.micro_batcher import MicroBatcher
from likeness_faces.domain.errors import AnalyzerClosedError


class Recorder:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.threads: set[int] = set()
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, items: Sequence[tuple[str, int]]) -> list[int]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(timeout=5)
        self.threads.add(threading.get_ident())
        self.batches.append(list(items))
        if any(value < 0 for _, value in items):
            raise ValueError("negative input")
        return [value * 10 for _, value in items]


def _batcher(model: Recorder, max_batch: int = 4, max_wait_s: float = 0.01) -> MicroBatcher[tuple[str, int], int]:
    return MicroBatcher(model, key=lambda item: item[0], max_batch=max_batch, max_wait_s=max_wait_s)


@pytest.mark.asyncio
async def test_concurrent_requests_share_a_batch_and_get_their_own_result() -> None:
    model = Recorder()
    batcher = _batcher(model)
    results = await asyncio.gather(*(batcher.submit(("a", i)) for i in range(4)))
    await batcher.close()

    assert results == [0, 10, 20, 30]
    assert len(model.batches) == 1 and batcher.batches_run == 1 and batcher.items_run == 4
    assert threading.get_ident() not in model.threads


@pytest.mark.asyncio
async def test_batches_hold_one_key_and_at_most_max_batch_items() -> None:
    model = Recorder()
    batcher = _batcher(model, max_batch=3)
    items = [("wide", i) for i in range(5)] + [("tall", i) for i in range(2)]
    results = await asyncio.gather(*(batcher.submit(item) for item in items))
    await batcher.close()

    assert results == [i * 10 for i in range(5)] + [0, 10]
    assert all(len({key for key, _ in batch}) == 1 for batch in model.batches)
    assert max(len(batch) for batch in model.batches) == 3
    assert batcher.largest_batch == 3
    assert len(model.batches) == 3  # wide ×3, wide ×2, tall ×2


@pytest.mark.asyncio
async def test_requests_arriving_while_the_model_works_go_together_next() -> None:
    gate = threading.Event()
    model = Recorder(gate)
    batcher = _batcher(model, max_batch=8, max_wait_s=0.0)
    first = asyncio.ensure_future(batcher.submit(("a", 1)))
    await asyncio.to_thread(model.entered.wait, 5)  # the model is busy with the first
    later = [asyncio.ensure_future(batcher.submit(("a", i))) for i in range(2, 6)]
    for _ in range(100):
        if batcher.queue_depth == 4:
            break
        await asyncio.sleep(0)
    assert batcher.queue_depth == 4
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*later) == [20, 30, 40, 50]
    await batcher.close()
    assert [len(b) for b in model.batches] == [1, 4]


@pytest.mark.asyncio
async def test_a_failing_batch_fails_its_requests_and_the_batcher_goes_on() -> None:
    model = Recorder()
    batcher = _batcher(model)
    outcomes = await asyncio.gather(batcher.submit(("a", 1)), batcher.submit(("a", -1)), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert await batcher.submit(("a", 2)) == 20
    await batcher.close()


@pytest.mark.asyncio
async def test_close_finishes_queued_work_then_refuses_more() -> None:
    model = Recorder()
    batcher = _batcher(model)
    pending = [asyncio.ensure_future(batcher.submit(("a", i))) for i in range(3)]
    await asyncio.sleep(0)
    await batcher.close()
    assert [await p for p in pending] == [0, 10, 20]
    with pytest.raises(AnalyzerClosedError):
        await batcher.submit(("a", 1))


def test_the_wait_for_companions_is_bounded_to_10_ms() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), key=lambda item: item[0], max_wait_s=0.02)


@pytest.mark.asyncio
async def test_queue_depth_and_model_latency_are_exported() -> None:
    gate = threading.Event()
    model = Recorder(gate)
    batcher = MicroBatcher(model, key=lambda item: item[0], max_batch=1, max_wait_s=0, thread_name="test-metrics")

    def sample(name: str, label: str) -> float:
        value = REGISTRY.get_sample_value(name, {label: "test-metrics"})
        return value or 0.0

    runs_before = sample("likeness_model_seconds_count", "model")
    pending = [asyncio.ensure_future(batcher.submit(("a", i))) for i in range(3)]
    await asyncio.to_thread(model.entered.wait, 5)  # the first item is in the model
    assert sample("likeness_queue_depth", "queue") == 2  # the other two wait
    gate.set()
    assert await asyncio.gather(*pending) == [0, 10, 20]
    await batcher.close()
    assert sample("likeness_queue_depth", "queue") == 0
    assert sample("likeness_model_seconds_count", "model") == runs_before + 3


@pytest.mark.asyncio
async def test_a_lone_request_runs_at_once_when_no_companion_is_on_its_way() -> None:
    """With `coming` at 0 nobody waits out max_wait_s (a batcher that cannot know waits every time);
    while it counts one, the next request still joins; one that gives up ends the wait with nudge().
    Times are the best of five, so a busy machine's scheduling delays do not decide the outcome."""
    model = Recorder()
    coming = 0
    batcher = MicroBatcher(model, key=lambda item: item[0], max_batch=8, max_wait_s=0.01, coming=lambda: coming)
    unknowing = MicroBatcher(Recorder(), key=lambda item: item[0], max_batch=8, max_wait_s=0.01)
    loop = asyncio.get_running_loop()

    async def timed(which: MicroBatcher[tuple[str, int], int], value: int) -> float:
        started = loop.time()
        assert await which.submit(("a", value)) == value * 10
        return loop.time() - started

    alone = min([await timed(batcher, 1) for _ in range(5)])
    waited = min([await timed(unknowing, 1) for _ in range(5)])
    # one on its way: the first waits for it, and they run together
    coming = 1
    first = asyncio.ensure_future(batcher.submit(("a", 2)))
    await asyncio.sleep(0.002)
    coming = 0
    second = asyncio.ensure_future(batcher.submit(("a", 3)))
    assert await asyncio.gather(first, second) == [20, 30]
    # one on its way that gives up: nudge() ends the wait before max_wait_s
    nudged = []
    for _ in range(5):
        coming = 1
        started = loop.time()
        third = asyncio.ensure_future(batcher.submit(("a", 4)))
        await asyncio.sleep(0)
        coming = 0
        batcher.nudge()
        assert await third == 40
        nudged.append(loop.time() - started)
    await batcher.close()
    await unknowing.close()
    assert [len(batch) for batch in model.batches] == [1] * 5 + [2] + [1] * 5
    assert waited >= 0.01 and alone < 0.005 and min(nudged) < 0.005
