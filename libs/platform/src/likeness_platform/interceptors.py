"""Server and client interceptors: request id, log context, subject, error mapping, deadlines.

Tracing is OpenTelemetry's own gRPC instrumentation (see `telemetry`); these run inside its spans."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from grpc.aio import ClientCallDetails
from opentelemetry import trace

from likeness_platform import callcontext
from likeness_platform.errors import ERROR_CODE_KEY, DomainError, ErrorKind
from likeness_platform.metrics import RPC_LATENCY
from likeness_platform.telemetry import client_tracing_interceptors

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


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Binds call context, logs and times the call, maps domain errors to status codes."""

    def __init__(self, service: str) -> None:
        self._service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metadata = _metadata_dict(handler_call_details.invocation_metadata)
        quiet = method.startswith(_QUIET)

        def enter() -> None:
            request_id = metadata.get(callcontext.REQUEST_ID_KEY) or callcontext.new_request_id()
            callcontext.request_id_var.set(request_id)
            callcontext.subject_var.set(metadata.get(callcontext.SUBJECT_KEY, ""))
            structlog.contextvars.bind_contextvars(
                request_id=request_id,
                rpc=method,
                subject=metadata.get(callcontext.SUBJECT_KEY, ""),
                # The certificate identity the authorisation interceptor found, never a header (for a call the
                # admin API makes for an operator: "operator/<name> via admin").
                caller=callcontext.current_actor(),
            )

        def leave(started: float, outcome: str) -> None:
            elapsed = time.perf_counter() - started
            RPC_LATENCY.labels(self._service, method, outcome).observe(elapsed)
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

        def outcome_of(context: grpc.aio.ServicerContext) -> str:
            code = context.code() if hasattr(context, "code") else None
            return code.name if isinstance(code, grpc.StatusCode) else "OK"

        def wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                enter()
                outcome = "OK"
                try:
                    result = await behavior(request, context)
                    outcome = outcome_of(context)
                    return result
                except grpc.aio.AbortError:
                    outcome = outcome_of(context)
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
                enter()
                outcome = "OK"
                try:
                    async for item in behavior(request, context):
                        yield item
                    outcome = outcome_of(context)
                except grpc.aio.AbortError:
                    outcome = outcome_of(context)
                    raise
                except Exception as exc:
                    outcome = grpc_status(exc).name
                    await fail(exc, context)
                finally:
                    leave(started, outcome)

            return wrapper

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap_unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap_stream(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            wrap_stream(handler.stream_stream), handler.request_deserializer, handler.response_serializer
        )


def _outgoing(details: ClientCallDetails, default_timeout: float) -> ClientCallDetails:
    metadata = list(details.metadata or ())
    present = {k for k, _ in metadata}
    if callcontext.REQUEST_ID_KEY not in present:
        metadata.append((callcontext.REQUEST_ID_KEY, callcontext.current_request_id()))
    subject = callcontext.current_subject()
    if subject and callcontext.SUBJECT_KEY not in present:
        metadata.append((callcontext.SUBJECT_KEY, subject))
    caller = callcontext.current_caller()
    if caller.startswith("operator/") and callcontext.ON_BEHALF_OF_KEY not in present:
        metadata.append((callcontext.ON_BEHALF_OF_KEY, caller))
    app_version = callcontext.app_version_var.get()
    if app_version and callcontext.APP_VERSION_KEY not in present:
        metadata.append((callcontext.APP_VERSION_KEY, app_version))
    timeout = details.timeout if details.timeout is not None else default_timeout
    return ClientCallDetails(details.method, timeout, grpc.aio.Metadata(*metadata), details.credentials, details.wait_for_ready)


class _ClientBase:
    def __init__(self, default_timeout: float) -> None:
        self._timeout = default_timeout


class UnaryUnaryClient(_ClientBase, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: ClientCallDetails, request: Any) -> Any:
        return await continuation(_outgoing(client_call_details, self._timeout), request)


class UnaryStreamClient(_ClientBase, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: ClientCallDetails, request: Any) -> Any:
        return await continuation(_outgoing(client_call_details, self._timeout), request)


class StreamUnaryClient(_ClientBase, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: ClientCallDetails, request_iterator: Any) -> Any:
        return await continuation(_outgoing(client_call_details, self._timeout), request_iterator)


class StreamStreamClient(_ClientBase, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: ClientCallDetails, request_iterator: Any) -> Any:
        return await continuation(_outgoing(client_call_details, self._timeout), request_iterator)


def client_interceptors(default_timeout: float) -> list[Any]:
    """Interceptors every channel a service opens gets: OpenTelemetry's client spans first, then call context."""
    return [
        *client_tracing_interceptors(),
        UnaryUnaryClient(default_timeout),
        UnaryStreamClient(default_timeout),
        StreamUnaryClient(default_timeout),
        StreamStreamClient(default_timeout),
    ]


def _innermost_frame(exc: BaseException) -> str:
    """`module.py:line` of the frame that raised, enough to find the bug without the message's content."""
    tb = exc.__traceback__
    if tb is None:
        return ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
