"""RequestGuard's body deadline: a body that stops arriving is cut off with 408; one that arrives in time
passes through chunk by chunk, counted against the cap."""

from __future__ import annotations

import asyncio
import time
import types

import pytest
from fastapi import HTTPException
from starlette.types import Message, Receive, Scope, Send

from likeness_gateway.guards import RequestGuard

SCOPE: Scope = {"type": "http", "path": "/ops/echo", "method": "POST", "headers": [], "client": ("127.0.0.1", 1)}


def _guard(app: object, timeout_s: float, max_body: int = 1000) -> RequestGuard:
    settings = types.SimpleNamespace(body_timeout_seconds=timeout_s, max_body_bytes=max_body, tls_terminated_upstream=False)
    return RequestGuard(app, types.SimpleNamespace(settings=settings))  # type: ignore[arg-type]


async def _reader(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _discard(message: Message) -> None:
    return None


@pytest.mark.asyncio
async def test_a_body_that_stops_arriving_is_cut_off_at_the_deadline() -> None:
    chunks = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]

    async def stalls() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(30)
        raise AssertionError("not cut off")

    started = time.monotonic()
    with pytest.raises(HTTPException) as refused:
        await _guard(_reader, 0.2)(SCOPE, stalls, _discard)
    assert refused.value.status_code == 408
    assert 0.15 < time.monotonic() - started < 5


@pytest.mark.asyncio
async def test_a_body_in_time_passes_through_and_is_capped() -> None:
    def body(sizes: list[int]) -> Receive:
        pending = [{"type": "http.request", "body": b"x" * n, "more_body": i < len(sizes) - 1} for i, n in enumerate(sizes)]

        async def receive() -> Message:
            await asyncio.sleep(0)
            return pending.pop(0)

        return receive

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await _guard(_reader, 1.0)(SCOPE, body([300] * 3), send)
    assert sent[0]["status"] == 200 and sent[-1]["body"] == b"ok"

    with pytest.raises(HTTPException) as refused:
        await _guard(_reader, 1.0)(SCOPE, body([400] * 3), send)
    assert refused.value.status_code == 413
