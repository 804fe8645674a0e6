"""Tracing through OpenTelemetry's gRPC instrumentation: context crosses the hop, request data never reaches a span."""

from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from likeness_platform.clients import open_channel
from likeness_platform.devpki import DevPki
from likeness_platform.errors import InvalidArgument
from likeness_platform.policy import ANY_IDENTITY, POLICY
from likeness_platform.server import RunningServer, start_server
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing

SECRET = "tok_6f1d2c9a-secret-face-bytes"


async def _ok(request: bytes, context: object) -> bytes:
    return b"ok:" + request


async def _refuse(request: bytes, context: object) -> bytes:
    raise InvalidArgument(f"token {SECRET} is not valid", code="TOKEN_INVALID")


async def _crash(request: bytes, context: object) -> bytes:
    raise RuntimeError(f"decoder choked on {SECRET}")


async def _stream_then_fail(request: bytes, context: object) -> AsyncIterator[bytes]:
    yield b"first"
    raise InvalidArgument(f"second chunk of {SECRET} is bad")


def _register(server: grpc.aio.Server) -> list[str]:
    handler = grpc.method_handlers_generic_handler(
        "test.Traced",
        {
            "Ok": grpc.unary_unary_rpc_method_handler(_ok),
            "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
            "Crash": grpc.unary_unary_rpc_method_handler(_crash),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream_then_fail),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    return []


def _everything_in(span: ReadableSpan) -> str:
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    return repr((span.name, dict(span.attributes or {}), events, span.status.description))


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return configure_tracing("test", span_exporter=exporter), exporter


async def test_calls_are_traced_across_the_hop_and_spans_hold_no_request_data(
    spans: tuple[TracerProvider, InMemorySpanExporter], pki: DevPki
) -> None:
    provider, exporter = spans
    settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **pki.ensure("render").settings())
    rules = {**POLICY, "/test.Traced/*": frozenset({ANY_IDENTITY})}
    running: RunningServer = await start_server("traced", settings, _register, rules=rules)
    channel = open_channel(f"127.0.0.1:{running.port}", "tester", settings)
    try:
        assert await channel.unary_unary("/test.Traced/Ok")(b"hi") == b"ok:hi"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary("/test.Traced/Refuse")(b"x")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await channel.unary_unary("/test.Traced/Crash")(b"x")
        assert crashed.value.code() == grpc.StatusCode.INTERNAL
        received = []
        with pytest.raises(grpc.aio.AioRpcError):
            async for item in channel.unary_stream("/test.Traced/Stream")(b"x"):
                received.append(item)
        assert received == [b"first"]
    finally:
        await channel.close()
        await running.stop(1)
    provider.force_flush()
    finished = [s for s in exporter.get_finished_spans() if s.name.startswith("/test.Traced/")]

    for method in ("Ok", "Refuse", "Crash", "Stream"):
        name = f"/test.Traced/{method}"
        server = [s for s in finished if s.name == name and s.kind == SpanKind.SERVER]
        client = [s for s in finished if s.name == name and s.kind == SpanKind.CLIENT]
        assert len(server) == 1 and len(client) == 1, (method, finished)
        # The server span is the client span's child: the context travelled in the metadata.
        assert server[0].context.trace_id == client[0].context.trace_id
        assert server[0].parent is not None and server[0].parent.span_id == client[0].context.span_id

    by_name = {(s.name, s.kind): s for s in finished}
    refused_span = by_name[("/test.Traced/Refuse", SpanKind.SERVER)]
    assert refused_span.attributes is not None and refused_span.attributes["likeness.error_code"] == "TOKEN_INVALID"
    assert refused_span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert by_name[("/test.Traced/Refuse", SpanKind.CLIENT)].status.status_code == StatusCode.ERROR
    crash_span = by_name[("/test.Traced/Crash", SpanKind.SERVER)]
    assert crash_span.status.status_code == StatusCode.ERROR
    assert crash_span.attributes is not None and crash_span.attributes["likeness.error_code"] == "INTERNAL"
    # Invariant 1: neither the error messages nor exception texts reach an exported span.
    for span in finished:
        assert SECRET not in _everything_in(span), span.name


def test_exported_spans_lose_query_strings_and_exception_messages(spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /v1/results/{id}", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.url", f"https://api.example/v1/results/1?token={SECRET}")
        span.set_attribute("http.target", f"/v1/results/1?token={SECRET}")
        span.set_attribute("url.query", f"token={SECRET}")
        span.set_attribute("http.route", "/v1/results/{id}")
        span.set_attribute("net.peer.ip", "203.0.113.77")
        span.set_attribute("client.address", "203.0.113.77")
        span.record_exception(ValueError(f"bad {SECRET}"))
        span.set_status(StatusCode.ERROR, f"failed for {SECRET}")
    provider.force_flush()
    exported = [s for s in exporter.get_finished_spans() if s.name == "GET /v1/results/{id}"]
    assert len(exported) == 1
    attributes = dict(exported[0].attributes or {})
    assert attributes["http.url"] == "https://api.example/v1/results/1"
    assert attributes["http.target"] == "/v1/results/1"
    assert attributes["http.route"] == "/v1/results/{id}"
    assert "url.query" not in attributes
    assert "203.0.113.77" not in repr(attributes)
    assert exported[0].status.status_code == StatusCode.ERROR
    (event,) = exported[0].events
    event_attributes = dict(event.attributes or {})
    assert event_attributes["exception.type"] == "ValueError"
    assert set(event_attributes) <= {"exception.type", "exception.escaped"}
    assert SECRET not in _everything_in(exported[0])


def test_spans_are_dropped_until_there_is_an_exporter_and_ids_still_flow() -> None:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.sampling import Decision
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from likeness_platform.telemetry import ExportingSampler

    sampler = ExportingSampler()
    provider = TracerProvider(sampler=sampler)
    with provider.get_tracer("test").start_as_current_span("quiet") as quiet:
        assert not quiet.is_recording()
        assert quiet.get_span_context().is_valid  # ids for the logs and the next hop
    assert sampler.should_sample(Context(), 1, "x").decision is Decision.DROP
    sampler.exporting = True
    assert sampler.should_sample(Context(), 1, "x").decision is Decision.RECORD_AND_SAMPLE
    # A call from a service that exports nothing (its spans unsampled) is still traced where spans are exported.
    unsampled = set_span_in_context(NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0))))
    assert sampler.should_sample(unsampled, 1, "x").decision is Decision.RECORD_AND_SAMPLE


async def test_without_exported_spans_channels_still_carry_the_trace_context(pki: DevPki, monkeypatch: pytest.MonkeyPatch) -> None:
    """No CLIENT span (nothing would export it), but the call goes on in the caller's trace: logs share its id."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from likeness_platform import clients

    configure_tracing("test")  # an SDK provider for the server span (exporting or not, as this session set it)
    monkeypatch.setattr(clients, "spans_exported", lambda: False)

    async def trace_id(request: bytes, context: object) -> bytes:
        return format(trace.get_current_span().get_span_context().trace_id, "032x").encode()

    def register(server: grpc.aio.Server) -> list[str]:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Ids", {"Trace": grpc.unary_unary_rpc_method_handler(trace_id)}),)
        )
        return []

    settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **pki.ensure("render").settings())
    running = await start_server("ids", settings, register, rules={**POLICY, "/test.Ids/*": frozenset({ANY_IDENTITY})})
    channel = open_channel(f"127.0.0.1:{running.port}", "tester", settings)
    try:
        assert isinstance(channel, clients.ReloadingChannel) and not channel.client_spans
        caller = SpanContext(0x5CE1E5F00D, 0xFEED, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        with trace.use_span(NonRecordingSpan(caller)):
            answer = await channel.unary_unary("/test.Ids/Trace")(b"")
    finally:
        await channel.close()
        await running.stop(0)
    assert answer == format(0x5CE1E5F00D, "032x").encode()
