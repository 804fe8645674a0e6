"""Usage statistics: every generation render serves is counted in privacy's daily aggregates, off the call path.

What is sent is the cell only (interface, operation, spec, the spec's country, outcome, app version) and how
many calls it counts: no subject, device or address. Counts are added up per cell in memory and sent in the
background, one `RecordUsage` per cell with its count, at most `interval` seconds after the first of them (or at
once when many cells are waiting), instead of one call to privacy per generation. A count that cannot be
delivered is dropped and logged with how many calls it held; the call it counts has already been answered.

Privacy puts a record in its UTC day of arrival, so calls made in the last `interval` seconds before midnight
may be counted in the next day (at most one interval, plus the send itself, late).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog

from likeness_platform import callcontext, policy

log = structlog.get_logger("likeness.render")

# (interface, operation, spec_id, country, outcome, app_version)
Cell = tuple[str, str, str, str, str, str]
# Sends one cell and how many calls it counts (PrivacyPort.record_usage).
Send = Callable[[str, str, str, str, str, str, int], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
# Seconds counts are added up before they are sent (LIKENESS_USAGE_FLUSH_SECONDS).
FLUSH_SECONDS = 1.0
# At most this many distinct cells waiting or being sent; calls of any further cell are dropped (statistics never
# hold up or pile onto the service, and a privacy outage costs bounded memory).
MAX_PENDING = 256
# This many cells waiting are sent at once, without waiting for the interval.
FLUSH_CELLS = 64
# The most calls one record may carry (privacy's bound, likeness_privacy.domain.usage.MAX_COUNT): a cell that
# reaches it is sent at once.
MAX_COUNT = 10_000


def channel_of(caller: str, metadata: Mapping[str, str]) -> tuple[str, str]:
    """(interface, app version) of a call: the gateway's are the apps' (http, the device's app version it
    forwards); an operator's are the CLI's when the client says so, else grpc (the client's version)."""
    if caller == policy.GATEWAY:
        return "http", metadata.get(callcontext.APP_VERSION_KEY, "")
    program, _, version = metadata.get(callcontext.CLIENT_KEY, "").partition("/")
    return ("cli" if program == "likeness-cli" else "grpc"), version


class UsageCounter:
    def __init__(
        self,
        send: Send,
        interval: float = FLUSH_SECONDS,
        *,
        max_pending: int = MAX_PENDING,
        flush_cells: int = FLUSH_CELLS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval < 0:
            raise ValueError("the usage flush interval must not be negative")
        self._send = send
        self._interval = interval
        self._max_pending = max_pending
        self._flush_cells = flush_cells
        self._sleep = sleep
        # Calls added up per cell since the last flush.
        self._waiting: dict[Cell, int] = {}
        # Cells handed to a send that has not finished (they count against the backlog bound too).
        self._sending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        # Calls dropped for the backlog since the last flush, logged (once) at the next.
        self._dropped = 0

    def count(self, interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str) -> None:
        """Add one call to its cell; it is sent in the background within the interval."""
        cell = (interface, operation, spec_id, country, outcome, app_version)
        calls = self._waiting.get(cell)
        if calls is None:
            if len(self._waiting) + self._sending >= self._max_pending:
                self._dropped += 1
                return
            calls = 0
        self._waiting[cell] = calls + 1
        if len(self._waiting) >= self._flush_cells or calls + 1 >= MAX_COUNT:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await self._sleep(self._interval)
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        """Hand every waiting cell to one background send."""
        if self._timer is not None:  # (the timer clears itself before it flushes)
            self._timer.cancel()
        self._timer = None
        if self._dropped:
            log.warning("usage_count_dropped", reason="backlog", calls=self._dropped)
            self._dropped = 0
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, {}
        self._sending += len(batch)
        task = asyncio.get_running_loop().create_task(self._deliver(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: dict[Cell, int]) -> None:
        try:
            results = await asyncio.gather(*(self._send(*cell, calls) for cell, calls in batch.items()), return_exceptions=True)
        except asyncio.CancelledError:
            log.warning("usage_count_dropped", reason="cancelled", calls=sum(batch.values()), cells=len(batch))
            raise
        finally:
            self._sending -= len(batch)
        failed = [(calls, result) for calls, result in zip(batch.values(), results, strict=True) if isinstance(result, BaseException)]
        if failed:
            log.warning(
                "usage_count_dropped",
                reason="unsent",
                calls=sum(calls for calls, _ in failed),
                cells=len(failed),
                error=type(failed[0][1]).__name__,
            )

    async def drain(self) -> None:
        """Send every count waiting now and wait until every send has finished (shutdown, tests)."""
        while self._waiting or self._tasks or self._dropped:
            self._flush()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
