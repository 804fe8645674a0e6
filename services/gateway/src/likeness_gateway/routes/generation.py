"""What every generation call does around its work: idempotency, a reserved credit, a bound on running renders,
and the generation record."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from likeness_gateway.adapters.idempotency import StoredKey
from likeness_gateway.deps import Gateway
from likeness_gateway.domain.devices import Device
from likeness_gateway.errors import ApiError
from likeness_platform.logging import get_logger

log = get_logger("likeness.gateway")

T = TypeVar("T")
OutT = TypeVar("OutT", bound=BaseModel)
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def body_hash(interface: str, body: BaseModel) -> str:
    """What binds a key to its request: the interface and the parsed body (so JSON spacing does not matter)."""
    return hashlib.sha256(f"{interface}\n{body.model_dump_json()}".encode()).hexdigest()


@contextlib.asynccontextmanager
async def generation_slot(gw: Gateway, device: Device) -> AsyncIterator[None]:
    """One of the device's few concurrent generation slots; 429 when all are taken."""
    running = gw.running.get(device.device_id, 0)
    limit = gw.settings.max_concurrent_generations_per_device
    if running >= limit:
        raise ApiError(
            429,
            "TOO_MANY_GENERATIONS",
            f"this device already has {limit} generation(s) running; wait for one to finish",
            {"limit": limit},
            {"Retry-After": "1"},
        )
    gw.running[device.device_id] = running + 1
    try:
        yield
    finally:
        left = gw.running.get(device.device_id, 1) - 1
        if left > 0:
            gw.running[device.device_id] = left
        else:
            gw.running.pop(device.device_id, None)


async def generate(
    gw: Gateway,
    request: Request,
    device: Device,
    interface: str,
    parameters: dict[str, str],
    body: BaseModel,
    work: Callable[[], Awaitable[T]],
    respond: Callable[[T], OutT],
    *,
    status_code: int = 201,
    charge: bool = True,
) -> OutT | JSONResponse:
    """Run one generation.

    With an `Idempotency-Key`, the key is bound to (subject, interface, body hash): a replay gets the stored
    response and runs nothing; another body gets 409 IDEMPOTENCY_KEY_REUSED; keys last 24 h. A credit is
    reserved before the work and released when the work fails, so failures cost nothing.
    """
    key = request.headers.get("idempotency-key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
    if key:
        stored = await gw.idempotency.claim(device.subject_id, key, interface, body_hash(interface, body))
        if stored is not None:
            return _replay(stored, interface, body)
    try:
        async with generation_slot(gw, device):
            out = await _run(gw, device, interface, parameters, work, respond, charge)
    except BaseException:
        if key:
            await _quietly(gw.idempotency.release(device.subject_id, key), "idempotency_release_failed")
        raise
    if key:
        await gw.idempotency.complete(device.subject_id, key, status_code, out.model_dump(mode="json"))
    return out


def _replay(stored: StoredKey, interface: str, body: BaseModel) -> JSONResponse:
    if stored.interface != interface or stored.body_hash != body_hash(interface, body):
        raise ApiError(
            409, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different request; use a new key for a new request"
        )
    if stored.status_code is None:
        raise ApiError(
            409,
            "IDEMPOTENCY_KEY_IN_USE",
            "the first request with this Idempotency-Key is still running; retry shortly",
            {},
            {"Retry-After": "1"},
        )
    return JSONResponse(stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"})


async def _run(
    gw: Gateway,
    device: Device,
    interface: str,
    parameters: dict[str, str],
    work: Callable[[], Awaitable[T]],
    respond: Callable[[T], OutT],
    charge: bool,
) -> OutT:
    credit_id = uuid.uuid4().hex
    if charge:
        await gw.billing.consume(device.subject_id, credit_id, interface)
    started = time.perf_counter()
    status = "ok"
    try:
        return respond(await work())
    except BaseException as exc:
        status = exc.code if isinstance(exc, ApiError) else "FAILED"
        if charge:
            # The reservation is released: a failed generation costs no credit.
            await _quietly(gw.billing.release(device.subject_id, credit_id), "credit_release_failed")
        raise
    finally:
        # The record holds the interface, a parameter summary, status and latency, under privacy's
        # pseudonym. It is written beside the response rather than before it: the client need not wait.
        record = gw.privacy.record_generation(device.subject_id, interface, parameters, status, (time.perf_counter() - started) * 1000)
        task = asyncio.ensure_future(_logged(record))
        _pending.add(task)
        task.add_done_callback(_pending.discard)


async def _quietly(pending: Awaitable[object], event: str) -> None:
    try:
        await pending
    except Exception as exc:
        log.error(event, error=type(exc).__name__)


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
