"""OpenTelemetry tracing set-up; the exporter is chosen by settings and is off by default."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def configure_tracing(service: str, exporter: str = "none", span_exporter: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider for this process (once); `span_exporter` is for tests."""
    global _configured
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        if span_exporter is not None:
            current.add_span_processor(BatchSpanProcessor(span_exporter))
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": f"likeness-{service}"}))
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def tracer() -> trace.Tracer:
    """The tracer Likeness code uses."""
    return trace.get_tracer("likeness")
