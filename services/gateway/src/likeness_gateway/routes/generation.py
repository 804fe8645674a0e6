"""What every generation call does around its work: take a credit, then record the generation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request

from likeness_gateway.adapters.devices import Device
from likeness_gateway.deps import Gateway
from likeness_gateway.errors import ApiError

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
        # The record holds the interface, a parameter summary, status and latency, under privacy's pseudonym.
        await gw.privacy.record_generation(device.subject_id, interface, parameters, status, (time.perf_counter() - started) * 1000)
