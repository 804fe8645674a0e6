"""Gathers concurrent requests into batches for one model running in a worker thread.

A request waits at most `max_wait_s` for companions (counted from when it arrived), and
not at all when a full batch is ready. While the model works on one batch, new requests
queue up and go together in the next, so under load batches fill without any waiting and
under light load the delay is bounded. A caller that knows how many requests are on their way
to the batcher (`coming`) spares a lone request the wait: while none is, there is no companion
to wait for (faces at one photo at a time: 5 ms less per analysis, and less CPU, measured in
process). Only items with the same key (for MTCNN: the canvas
shape) share a batch; the oldest waiting item decides which key goes next, so no shape
starves.

The model runs in a single dedicated thread, never on the event loop, and one batch at a
time: a second concurrent batch would only fight the first for the same cores (CPU) or
device (CUDA).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from likeness_faces.domain.errors import AnalyzerClosedError
from likeness_platform.metrics import MODEL_LATENCY, QUEUE_DEPTH

T = TypeVar("T")
R = TypeVar("R")

MAX_WAIT_LIMIT_S = 0.010


@dataclass
class _Pending(Generic[T, R]):
    item: T
    key: Hashable
    future: asyncio.Future[R]
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T, R]):
    """submit() from any coroutine on one event loop; run_batch(items) -> results, same order."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[T]], Sequence[R]],
        *,
        key: Callable[[T], Hashable],
        max_batch: int = 8,
        max_wait_s: float = 0.005,
        thread_name: str = "micro-batcher",
        coming: Callable[[], int] | None = None,
    ) -> None:
        """`coming`: how many requests are on their way to submit() now (None: unknown, always
        wait up to max_wait_s); whoever lowers it without submitting calls nudge()."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0 <= max_wait_s <= MAX_WAIT_LIMIT_S:
            raise ValueError(f"max_wait_s must be between 0 and {MAX_WAIT_LIMIT_S}")
        self._run_batch = run_batch
        self._key = key
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._coming = coming
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        # Exported as likeness_queue_depth{queue=...} and likeness_model_seconds{model=...}.
        self._depth = QUEUE_DEPTH.labels(thread_name)
        self._latency = MODEL_LATENCY.labels(thread_name)
        self._queue: collections.deque[_Pending[T, R]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches_run = 0
        self.items_run = 0
        self.largest_batch = 0

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def submit(self, item: T) -> R:
        if self._closed:
            raise AnalyzerClosedError("the face analyzer is shutting down; retry on another replica")
        loop = asyncio.get_running_loop()
        self._ensure_worker(loop)
        assert self._wakeup is not None
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Pending(item=item, key=self._key(item), future=future))
        self._depth.set(len(self._queue))
        self._wakeup.set()
        return await future

    def nudge(self) -> None:
        """Something `coming` counts has changed: look again whether to wait."""
        if self._wakeup is not None:
            self._wakeup.set()

    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        if self._loop is not loop:
            # a new event loop (e.g. a test per loop, or a restarted server): anything queued
            # on the old one belongs to futures nobody can await any more
            self._queue.clear()
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._work(), name="micro-batcher")

    def _oldest_key_count(self) -> int:
        key = self._queue[0].key
        return sum(1 for p in self._queue if p.key == key)

    def _take_batch(self) -> list[_Pending[T, R]]:
        key = self._queue[0].key
        batch: list[_Pending[T, R]] = []
        rest: collections.deque[_Pending[T, R]] = collections.deque()
        for pending in self._queue:
            if pending.future.done():  # cancelled while waiting
                continue
            if pending.key == key and len(batch) < self._max_batch:
                batch.append(pending)
            else:
                rest.append(pending)
        self._queue = rest
        return batch

    async def _work(self) -> None:
        assert self._wakeup is not None and self._loop is not None
        wakeup, loop = self._wakeup, self._loop
        while True:
            while not self._queue:
                if self._closed:
                    return
                wakeup.clear()
                await wakeup.wait()
            deadline = self._queue[0].arrived + self._max_wait_s
            while not self._closed and self._oldest_key_count() < self._max_batch:
                if self._coming is not None and self._coming() <= 0:
                    break  # no companion is on its way
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wakeup.clear()
                try:
                    await asyncio.wait_for(wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take_batch()
            self._depth.set(len(self._queue))
            if not batch:
                continue
            try:
                started = time.perf_counter()
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
                self._latency.observe(time.perf_counter() - started)
                if len(results) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} gave {len(results)} results")
            except Exception as exc:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            self.batches_run += 1
            self.items_run += len(batch)
            self.largest_batch = max(self.largest_batch, len(batch))
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)

    async def close(self) -> None:
        """Refuses new work, finishes what is queued, then stops the worker thread."""
        self._closed = True
        task = self._task
        if self._loop is asyncio.get_running_loop():
            if task is not None and not task.done():
                assert self._wakeup is not None
                self._wakeup.set()
                await task
            for pending in self._queue:
                if not pending.future.done():
                    pending.future.set_exception(AnalyzerClosedError("the face analyzer was closed"))
        # futures of another (finished) loop cannot be resolved; nobody awaits them
        self._queue.clear()
        await asyncio.to_thread(self._executor.shutdown, wait=True)
