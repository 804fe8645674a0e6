"""Per-RPC authorisation: the caller's certificate identity against `policy.POLICY`, on every server.

A refusal is PERMISSION_DENIED with error code CALLER_NOT_ALLOWED, counted in
`likeness_authz_denied_total`, logged, and reported to privacy's security-event log (caller identity
and method, no subject data) through a small bounded queue that never holds up the call path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
import structlog

from likeness_platform import callcontext, policy
from likeness_platform.errors import ERROR_CODE_KEY
from likeness_platform.interceptors import HandlerCache, rewrap
from likeness_platform.metrics import AUTHZ_DENIED, SECURITY_EVENTS_DROPPED
from likeness_platform.tls import SPIFFE_PREFIX, peer_identity_and_roles

log = structlog.get_logger("likeness.authz")

DENIED_CODE = "CALLER_NOT_ALLOWED"
DENIED_EVENT = "caller_not_allowed"

# (event type, caller identity URI or '', method, caller IP or '') -> delivered somewhere durable.
SendEvent = Callable[[str, str, str, str], Awaitable[None]]


def peer_ip(peer: str) -> str:
    """`ipv4:10.1.2.3:5000` / `ipv6:[::1]:5000` -> the address; '' for anything else (unix sockets)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        host = rest.rpartition(":")[0]
    elif kind == "ipv6":
        host = rest.rpartition(":")[0].strip("[]")
    else:
        return ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""


class SecurityEvents:
    """A bounded fire-and-forget queue of security events: `report` never waits; when full, events are dropped and counted."""

    def __init__(self, service: str, send: SendEvent, maxsize: int = 64) -> None:
        self._service = service
        self._send = send
        self._queue: asyncio.Queue[tuple[str, str, str, str]] = asyncio.Queue(maxsize)
        self._worker: asyncio.Task[None] | None = None

    def report(self, event_type: str, caller: str, method: str, ip: str) -> None:
        try:
            self._queue.put_nowait((event_type, caller, method, ip))
        except asyncio.QueueFull:
            SECURITY_EVENTS_DROPPED.labels(self._service).inc()
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while not self._queue.empty():
            event = self._queue.get_nowait()
            try:
                await self._send(*event)
            except Exception as exc:
                SECURITY_EVENTS_DROPPED.labels(self._service).inc()
                log.warning("security_event_not_sent", error=type(exc).__name__)

    async def flush(self) -> None:
        """Wait until what is queued now has been sent (tests, shutdown)."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._worker), 2.0)
            self._worker.cancel()


def remote_sender(service: str, settings: Any) -> tuple[SendEvent, Callable[[], Awaitable[None]]]:
    """Send events to privacy's RecordSecurityEvent over a lazily opened mTLS channel; returns (send, close)."""
    from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
    from likeness_platform.clients import open_channel

    state: dict[str, Any] = {}

    async def send(event_type: str, caller: str, method: str, ip: str) -> None:
        if "stub" not in state:
            state["channel"] = open_channel(settings.privacy_addr, service, settings, deadline=5.0)
            state["stub"] = privacy_pb2_grpc.PrivacyStub(state["channel"])
        await state["stub"].RecordSecurityEvent(
            privacy_pb2.RecordSecurityEventRequest(event_type=event_type, ip=ip, caller=caller, method=method)
        )

    async def close() -> None:
        if "channel" in state:
            await state["channel"].close()

    return send, close


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):
    """Refuses any call whose certificate identity the policy does not allow; sets the caller for the call."""

    def __init__(self, service: str, events: SecurityEvents | None, rules: Mapping[str, frozenset[str]] = policy.POLICY) -> None:
        self._service = service
        self._events = events
        self._rules = rules
        self._handlers = HandlerCache(self._wrap)

    async def _deny(self, identity: str, method: str, context: grpc.aio.ServicerContext) -> None:
        caller = SPIFFE_PREFIX + identity if identity else ""
        AUTHZ_DENIED.labels(self._service, method, identity or "none").inc()
        log.warning("caller_not_allowed", rpc=method, caller=identity or "none")
        if self._events is not None:
            self._events.report(DENIED_EVENT, caller, method, peer_ip(context.peer()))
        context.set_trailing_metadata(((ERROR_CODE_KEY, DENIED_CODE),))
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{identity or 'a caller without a certificate'} may not call {method}")

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self._handlers.get(handler_call_details.method, handler)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` behind the check; built once per method, the check itself runs on every call."""
        rules, deny = self._rules, self._deny

        def check(context: grpc.aio.ServicerContext) -> str | None:
            # The verified client certificate of this call (cached parsing, keyed on the certificate's bytes).
            identity, roles = peer_identity_and_roles(context)
            callcontext.via_var.set("")
            if identity in policy.DELEGATORS:
                # The admin API acts for the operator it names: the policy judges that operator (a delegator
                # naming nobody is judged as itself, and has no entry of its own).
                metadata = dict(context.invocation_metadata() or ())
                found = policy.delegated(
                    identity, str(metadata.get(callcontext.ON_BEHALF_OF_KEY, "")), str(metadata.get(callcontext.OPERATOR_ROLES_KEY, ""))
                )
                if found is not None:
                    callcontext.via_var.set(identity)
                    identity, roles = found
            callcontext.caller_var.set(identity)
            return identity if policy.is_allowed(identity, method, rules, roles) else None

        def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
            async def unary_wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if check(context) is None:
                    await deny(callcontext.caller_var.get(), method, context)
                return await behavior(request, context)

            return unary_wrapper

        def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
            async def stream_wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if check(context) is None:
                    await deny(callcontext.caller_var.get(), method, context)
                async for item in behavior(request, context):
                    yield item

            return stream_wrapper

        return rewrap(handler, unary, streaming)
