"""Protections below the routes: request ids, body caps counted while the body streams in, body and header
timeouts, security headers, and the uvicorn settings that bound slow or greedy clients."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import h11
import structlog
import uvicorn
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from likeness_gateway.deps import Gateway, forwarded_ip, ip_bucket
from likeness_gateway.errors import error_response
from likeness_gateway.settings import GatewaySettings
from likeness_platform.callcontext import new_request_id, request_id_var

REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# Only uploads stream on; every other body is read whole and parsed, so it gets far less than the upload cap
# (App Store notifications and receipts, the largest, are tens of KiB).
STREAMED_PATHS = frozenset({"/v1/uploads"})
PARSED_BODY_BYTES = 1024 * 1024


def body_limit(settings: GatewaySettings, path: str) -> int:
    """The largest body a request to `path` may send."""
    return settings.max_body_bytes if path in STREAMED_PATHS else min(settings.max_body_bytes, PARSED_BODY_BYTES)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id when it is 1-64 ASCII letters, digits, '.', '_' or '-'; otherwise a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii") if REQUEST_ID.match(value) else new_request_id()
    return new_request_id()


class RequestGuard:
    """Pure ASGI middleware (it sees every byte): request id, streamed body cap and deadline, response headers."""

    def __init__(self, app: ASGIApp, gw: Gateway) -> None:
        self.app = app
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        request_id_var.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        settings = self.gw.settings
        limit = body_limit(settings, scope["path"])
        deadline = time.monotonic() + settings.body_timeout_seconds
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            left = deadline - time.monotonic()
            try:
                # A timeout scope, not wait_for: no task per chunk (a 12 MP upload arrives in ~60 of them).
                async with asyncio.timeout(max(left, 0.001)):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "the request body did not arrive in time") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Counted as the bytes arrive: chunked bodies and lying Content-Length headers included.
                    raise HTTPException(413, f"the request body exceeds {limit} bytes")
            return message

        extra: list[tuple[bytes, bytes]] = [
            (b"x-request-id", request_id.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if settings.tls_terminated_upstream:
            extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names and n.lower() != b"server"]
                message = {**message, "headers": headers + extra}
            await send(message)

        refusal = await self._refusal(scope) if scope["path"].startswith("/v1/") else None
        if refusal is not None:
            await refusal(scope, receive, guarded_send)
            return
        await self.app(scope, counted_receive, guarded_send)

    async def _refusal(self, scope: Scope) -> JSONResponse | None:
        """An answer without running the route: a declared oversize body, or too many requests from one address."""
        gw = self.gw
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        limit = body_limit(gw.settings, scope["path"])
        if length.isdigit() and int(length) > limit:
            return error_response(413, "TOO_LARGE", f"the request body exceeds {limit} bytes")
        per_minute = gw.settings.rate_limit_ip_per_minute
        if per_minute <= 0:
            # No per-address limit: nothing to count, so no call to Redis.
            return None
        peer = scope["client"][0] if scope.get("client") else "0.0.0.0"
        ip = forwarded_ip(gw.settings.trusted_proxies, headers.get("x-forwarded-for", ""), peer)
        retry = await gw.limiter.hit(ip_bucket(gw, ip), per_minute)
        if retry:
            return error_response(
                429, "RATE_LIMITED", "too many requests from this network; slow down", {"scope": "ip"}, {"Retry-After": str(retry)}
            )
        return None


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head: a client that has not sent its complete
    request line and headers within `header_timeout` seconds is disconnected (slowloris)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(self.header_timeout, self._header_timeout_expired)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            # The request head is complete; the body has its own deadline (RequestGuard).
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def uvicorn_config(app: Any, settings: GatewaySettings) -> uvicorn.Config:
    """uvicorn settings that bound what one client can hold: head size and time, idle keep-alive, concurrency."""
    protocol = type("GatewayH11Protocol", (GuardedH11Protocol,), {"header_timeout": settings.header_timeout_seconds})
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        http=protocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=int(max(1, settings.keep_alive_timeout_seconds)),
        limit_concurrency=settings.max_concurrent_requests,
        server_header=False,
        date_header=True,
    )
