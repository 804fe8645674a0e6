"""What every generation call does around its work: take a credit, then record the generation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request

from likeness_gateway.deps import Gateway
from likeness_gateway.domain.devices import Device
from likeness_gateway.errors import ApiError
from likeness_platform.logging import get_logger

log = get_logger("likeness.gateway")

T = TypeVar("T")


async def generate(
    gw: Gateway, request: Request, device: Device, interface: str, parameters: dict[str, str], work: Callable[[], Awaitable[T]]
) -> T:
    """Consume one credit (idempotent per Idempotency-Key), run the work, write a generation record."""
    request_id = request.headers.get("idempotency-key", "")[:64] or uuid.uuid4().hex
    await gw.billing.consume(device.subject_id, request_id, interface)
    started = time.perf_counter()
    status = "ok"
    try:
        return await work()
    except ApiError as exc:
        status = exc.code
        raise
    finally:
        # The record holds the interface, a parameter summary, status and latency, under privacy's
        # pseudonym. It is written beside the response rather than before it: the client need not wait.
        record = gw.privacy.record_generation(device.subject_id, interface, parameters, status, (time.perf_counter() - started) * 1000)
        task = asyncio.ensure_future(_logged(record))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


# Records being written, kept referenced until they finish (and awaited at shutdown).
_pending: set[asyncio.Future[None]] = set()


async def _logged(record: Awaitable[None]) -> None:
    try:
        await record
    except Exception as exc:
        log.error("generation_record_failed", error=type(exc).__name__)


async def drain() -> None:
    """Wait for generation records still being written (graceful shutdown)."""
    if _pending:
        await asyncio.gather(*_pending, return_exceptions=True)
