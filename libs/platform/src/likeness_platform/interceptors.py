"""Server interceptors (request id, log context, subject, error mapping) and the call context outgoing calls carry.

Tracing is OpenTelemetry's own gRPC instrumentation (see `telemetry`); these run inside its spans. Outgoing calls get
their context and default deadline from `clients.ReloadingChannel` itself rather than from a second client interceptor:
each aio client interceptor adds a task and a wait to every call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from opentelemetry import trace

from likeness_platform import callcontext
from likeness_platform.errors import ERROR_CODE_KEY, DomainError, ErrorKind
from likeness_platform.metrics import RPC_LATENCY

log = structlog.get_logger("likeness.rpc")

# The one mapping from error kinds to gRPC status codes.
GRPC_STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def grpc_status(exc: BaseException) -> grpc.StatusCode:
    """The status a failed call reports: from the kind of a domain error, INTERNAL for anything else."""
    return GRPC_STATUS[exc.kind] if isinstance(exc, DomainError) else grpc.StatusCode.INTERNAL


# RPCs whose success is too frequent to be worth a log line.
_QUIET = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _metadata_dict(metadata: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in metadata or ():
        key, value = item[0], item[1]
        if isinstance(value, str):
            out[key.lower()] = value
    return out


# Handlers a server interceptor caches (see HandlerCache): far more than any server registers methods.
HANDLER_CACHE_SIZE = 1024


class HandlerCache:
    """Wrapped method handlers, built once per method instead of on every call.

    grpc asks a server interceptor for a handler on every call; the wrappers here depend only on the method and
    the handler they wrap (per-call facts come from the servicer context), so the one built for a method's
    first call serves the next ones while the inner handler is the same object. Only methods that resolved to
    a handler are kept (a server's registered methods), and the cache is emptied if it ever grows past `maxsize`.
    """

    def __init__(self, build: Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler], maxsize: int = HANDLER_CACHE_SIZE) -> None:
        self._build = build
        self._maxsize = maxsize
        self._entries: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        entry = self._entries.get(method)
        if entry is not None and entry[0] is handler:
            return entry[1]
        wrapped = self._build(method, handler)
        if len(self._entries) >= self._maxsize:
            self._entries.clear()
        self._entries[method] = (handler, wrapped)
        return wrapped


def rewrap(handler: grpc.RpcMethodHandler, unary: Callable[[Any], Any], streaming: Callable[[Any], Any]) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour passed through `unary` (unary responses) or `streaming` (streamed responses)."""
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
    )


def _outcome_of(context: grpc.aio.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Binds call context, logs and times the call, maps domain errors to status codes."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._handlers = HandlerCache(self._wrap)
        # Labelled latency histograms by (method, outcome): both come from finite sets (registered methods,
        # status codes), and `labels()` costs a lock and a validation on every call.
        self._latency: dict[tuple[str, str], Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self._handlers.get(handler_call_details.method, handler)

    def _observe(self, method: str, outcome: str, elapsed: float) -> None:
        histogram = self._latency.get((method, outcome))
        if histogram is None:
            if len(self._latency) >= HANDLER_CACHE_SIZE:
                self._latency.clear()
            histogram = self._latency[(method, outcome)] = RPC_LATENCY.labels(self._service, method, outcome)
        histogram.observe(elapsed)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        quiet = method.startswith(_QUIET)
        observe = self._observe

        def enter(context: grpc.aio.ServicerContext) -> None:
            metadata = _metadata_dict(context.invocation_metadata())
            request_id = metadata.get(callcontext.REQUEST_ID_KEY) or callcontext.new_request_id()
            subject = metadata.get(callcontext.SUBJECT_KEY, "")
            callcontext.request_id_var.set(request_id)
            callcontext.subject_var.set(subject)
            structlog.contextvars.bind_contextvars(
                request_id=request_id,
                rpc=method,
                subject=subject,
                # The certificate identity the authorisation interceptor found, never a header (for a call the
                # admin API makes for an operator: "operator/<name> via admin").
                caller=callcontext.current_actor(),
            )

        def leave(started: float, outcome: str) -> None:
            elapsed = time.perf_counter() - started
            observe(method, outcome, elapsed)
            if not quiet or outcome != "OK":
                log.info("rpc", outcome=outcome, ms=round(elapsed * 1000, 1))

        async def fail(exc: BaseException, context: grpc.aio.ServicerContext) -> str:
            # The span is OpenTelemetry's server span; the stable error code is safe to record, messages are not.
            span = trace.get_current_span()
            if isinstance(exc, DomainError):
                span.set_attribute("likeness.error_code", exc.code)
                context.set_trailing_metadata(((ERROR_CODE_KEY, exc.code),))
                await context.abort(grpc_status(exc), exc.message)
            span.set_attribute("likeness.error_code", "INTERNAL")
            # An exception's message can quote request data (a SQL parameter, a file name); log where, not what.
            log.error("rpc_failed", error=type(exc).__name__, where=_innermost_frame(exc))
            context.set_trailing_metadata(((ERROR_CODE_KEY, "INTERNAL"),))
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {callcontext.current_request_id()})")
            return "INTERNAL"

        def wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                enter(context)
                outcome = "OK"
                try:
                    result = await behavior(request, context)
                    outcome = _outcome_of(context)
                    return result
                except grpc.aio.AbortError:
                    outcome = _outcome_of(context)
                    raise
                except Exception as exc:
                    outcome = grpc_status(exc).name
                    await fail(exc, context)
                finally:
                    leave(started, outcome)

            return wrapper

        def wrap_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                started = time.perf_counter()
                enter(context)
                outcome = "OK"
                try:
                    async for item in behavior(request, context):
                        yield item
                    outcome = _outcome_of(context)
                except grpc.aio.AbortError:
                    outcome = _outcome_of(context)
                    raise
                except Exception as exc:
                    outcome = grpc_status(exc).name
                    await fail(exc, context)
                finally:
                    leave(started, outcome)

            return wrapper

        return rewrap(handler, wrap_unary, wrap_stream)


def outgoing_metadata(metadata: Any) -> list[tuple[str, Any]]:
    """The metadata of a call made while serving one: `metadata` plus the request id, subject, operator and app version.

    Applied by `clients.ReloadingChannel` to every call it makes (keys the caller set itself are kept).
    """
    items = list(metadata or ())
    present = {item[0] for item in items} if items else ()
    if callcontext.REQUEST_ID_KEY not in present:
        items.append((callcontext.REQUEST_ID_KEY, callcontext.current_request_id()))
    subject = callcontext.subject_var.get()
    if subject and callcontext.SUBJECT_KEY not in present:
        items.append((callcontext.SUBJECT_KEY, subject))
    caller = callcontext.caller_var.get()
    if caller.startswith("operator/") and callcontext.ON_BEHALF_OF_KEY not in present:
        items.append((callcontext.ON_BEHALF_OF_KEY, caller))
    app_version = callcontext.app_version_var.get()
    if app_version and callcontext.APP_VERSION_KEY not in present:
        items.append((callcontext.APP_VERSION_KEY, app_version))
    return items


def _innermost_frame(exc: BaseException) -> str:
    """`module.py:line` of the frame that raised, enough to find the bug without the message's content."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
