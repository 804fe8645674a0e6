"""OpenTelemetry tracing set-up; the exporter is chosen by settings and is off by default.

Spans come from OpenTelemetry's own gRPC (server and client interceptors) and FastAPI instrumentation.
Every exporter is wrapped in `RedactingExporter`, so what leaves the process carries no request data
(privacy invariant 1): URL query strings, caller addresses, exception messages and stack traces and
free-text status descriptions (gRPC error details) are dropped; span names, kinds, codes and timings stay.

Without an exporter (the default) spans are not recorded: `ExportingSampler` drops them, so every call
still gets a trace and span id (propagated to the next hop and written into log lines) but no span
object, attributes or events are built only to be thrown away.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status
from opentelemetry.util.types import Attributes

_configured = False

# Attributes that may hold a URL with a query string (old and stable HTTP semantic conventions).
_URL_KEYS = frozenset({"http.url", "url.full", "http.target"})
# Attributes dropped outright: query strings, client-provided headers and the caller's address
# (privacy keeps IPs only as keyed hashes; a trace backend must not get them in clear).
_DROPPED_KEYS = frozenset(
    {
        "url.query",
        "http.user_agent",
        "user_agent.original",
        "http.client_ip",
        "client.address",
        "client.port",
        "net.peer.ip",
        "net.peer.port",
        "net.sock.peer.addr",
        "net.sock.peer.port",
        "network.peer.address",
        "network.peer.port",
    }
)
# Exception event attributes that are safe: the type, never the message or stack trace.
_EXCEPTION_KEYS = frozenset({"exception.type", "exception.escaped"})


def _without_query(value: Any) -> Any:
    if not isinstance(value, str) or "?" not in value:
        return value
    if value.startswith("/"):
        return value.split("?", 1)[0]
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` without query strings, exception messages or status descriptions."""
    attributes = {
        key: (_without_query(value) if key in _URL_KEYS else value)
        for key, value in (span.attributes or {}).items()
        if key not in _DROPPED_KEYS
    }
    events = [
        Event(
            event.name,
            {k: v for k, v in (event.attributes or {}).items() if k in _EXCEPTION_KEYS} if event.name == "exception" else event.attributes,
            event.timestamp,
        )
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Passes spans to `inner` after `redact_span`."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([redact_span(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class ExportingSampler(Sampler):
    """Records spans once the process exports them; until then drops them (ids and propagation stay).

    When exporting, a span follows a sampled parent as before, and is also recorded under a parent from
    another process that did not record (a service running without an exporter marks its calls unsampled),
    so the services that do export still trace those calls. OTEL_TRACES_SAMPLER, when set, decides instead.
    """

    def __init__(self) -> None:
        self.exporting = False
        self._recording: Sampler = (
            sampling._get_from_env_or_default()
            if os.environ.get("OTEL_TRACES_SAMPLER")
            else ParentBased(ALWAYS_ON, remote_parent_not_sampled=ALWAYS_ON)
        )

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if not self.exporting:
            return SamplingResult(Decision.DROP, None, trace.get_current_span(parent_context).get_span_context().trace_state)
        return self._recording.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "ExportingSampler"


def _export_to(provider: TracerProvider, exporter: SpanExporter) -> None:
    provider.add_span_processor(BatchSpanProcessor(RedactingExporter(exporter)))
    if isinstance(provider.sampler, ExportingSampler):
        provider.sampler.exporting = True


def configure_tracing(service: str, exporter: str = "none", span_exporter: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider for this process (once); `span_exporter` is for tests."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        if span_exporter is not None:
            _export_to(current, span_exporter)
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": f"likeness-{service}"}), sampler=ExportingSampler())
    if span_exporter is not None:
        _export_to(provider, span_exporter)
    elif exporter == "console":
        _export_to(provider, ConsoleSpanExporter())
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        _export_to(provider, OTLPSpanExporter())
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def server_tracing_interceptor() -> grpc.aio.ServerInterceptor:
    """OpenTelemetry's server interceptor: one SERVER span per call, parented by the caller's propagated context."""
    return aio_server_interceptor()  # type: ignore[no-any-return]


def client_tracing_interceptors() -> list[Any]:
    """OpenTelemetry's client interceptors: one CLIENT span per call, its context injected into the metadata."""
    return list(aio_client_interceptors())


def spans_exported() -> bool:
    """False while this process's tracer provider (`configure_tracing`) drops every span for want of an exporter."""
    sampler = getattr(trace.get_tracer_provider(), "sampler", None)
    return not isinstance(sampler, ExportingSampler) or sampler.exporting


def trace_context_metadata() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata (W3C traceparent), what the client interceptors would inject."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())
