"""One trace id across gateway -> privacy -> holder."""

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from likeness_platform.telemetry import configure_tracing
from tests.support.services import Started, free_port, start_gateway, start_privacy

DEVICE = {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0", "language": "de-DE", "age_confirmed": True}


async def test_one_trace_id_across_gateway_privacy_and_holder(database_url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("test", span_exporter=exporter)
    started = Started()
    try:
        privacy_port = free_port()
        _gw, client, gateway_grpc = await start_gateway(database_url, {"privacy": f"127.0.0.1:{privacy_port}"}, started)
        await start_privacy(database_url, {"gateway": gateway_grpc}, started, port=privacy_port)
        token = (await client.post("/v1/devices", json=DEVICE)).json()["token"]
        provider.force_flush()
        exporter.clear()
        response = await client.get("/v1/me/export", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        provider.force_flush()
        spans = exporter.get_finished_spans()
        http = [s for s in spans if s.name == "GET /v1/me/export"]
        assert len(http) == 1
        trace_id = http[0].context.trace_id
        names = {s.name for s in spans if s.context.trace_id == trace_id}
        # gateway HTTP span, its client call to privacy, privacy's server span, privacy's call to the holder and the holder's span.
        assert "/likeness.privacy.v1.Privacy/RequestExport" in names
        assert "/likeness.privacy.v1.DataHolder/Export" in names
        holder_spans = [s for s in spans if s.name == "/likeness.privacy.v1.DataHolder/Export"]
        assert holder_spans and all(s.context.trace_id == trace_id for s in holder_spans)
        # Invariant 1: the bearer token appears in no span (attributes, events, status).
        for s in spans:
            assert token not in repr((s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events], s.status.description))
    finally:
        await started.close()
