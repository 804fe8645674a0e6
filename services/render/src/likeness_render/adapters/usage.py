"""Usage statistics: every generation render serves is counted in privacy's daily aggregates, off the call path.

What is sent is the cell only (interface, operation, spec, the spec's country, outcome, app version): no
subject, device or address. A count that cannot be delivered is dropped and logged; the call it counts has
already been answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog

from likeness_platform import callcontext, policy

log = structlog.get_logger("likeness.render")

Send = Callable[[str, str, str, str, str, str], Awaitable[None]]
# At most this many counts in flight; more are dropped (statistics never hold up or pile onto the service).
MAX_PENDING = 256


def channel_of(caller: str, metadata: Mapping[str, str]) -> tuple[str, str]:
    """(interface, app version) of a call: the gateway's are the apps' (http, the device's app version it
    forwards); an operator's are the CLI's when the client says so, else grpc (the client's version)."""
    if caller == policy.GATEWAY:
        return "http", metadata.get(callcontext.APP_VERSION_KEY, "")
    program, _, version = metadata.get(callcontext.CLIENT_KEY, "").partition("/")
    return ("cli" if program == "likeness-cli" else "grpc"), version


class UsageCounter:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: set[asyncio.Task[None]] = set()

    def count(self, interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str) -> None:
        """Send one count in the background."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("usage_count_dropped", reason="backlog")
            return
        task = asyncio.get_running_loop().create_task(self._deliver(interface, operation, spec_id, country, outcome, app_version))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, *cell: str) -> None:
        try:
            await self._send(*cell)
        except Exception as exc:
            log.warning("usage_count_dropped", error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait for the counts in flight (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
