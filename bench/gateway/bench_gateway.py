"""CPU per HTTP request in the gateway process: the real app (its own composition root, real PostgreSQL for the
device lookup, Redis for rate limits, OpenTelemetry set up as a service sets it up) driven in-process through
httpx's ASGI transport, against a bare FastAPI app with one route on the same transport, in the same run.

The upstream gRPC clients (billing, ingestion) are replaced by in-process fakes, so what is measured is the
gateway's own work: middleware, authentication, rate limits, dependency solving, validation and serialization.

    LIKENESS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/gateway/bench_gateway.py

LIKENESS_REDIS_URL (default redis://127.0.0.1:6379/15; empty for in-memory limits) and BENCH_LIMIT (the per-minute
limits; default 0, "no limit", as bench/load lifts them) pick the rate-limit set-up.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from fastapi import FastAPI
from psycopg import conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# httpx's ASGI transport tries `import sniffio` for every request; not installed, that is a search of sys.path each
# time (the client's cost, not the gateway's, but it would weigh on every figure): fail that import at once instead.
sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
from likeness.billing.v1 import billing_pb2  # noqa: E402
from likeness.ingestion.v1 import ingestion_pb2  # noqa: E402
from likeness_gateway.domain.tokens import new_token, token_hash  # noqa: E402
from likeness_gateway.main import GatewaySettings, build  # noqa: E402
from likeness_platform.telemetry import configure_tracing  # noqa: E402
from tests.support.services import NOWHERE, db_settings, settings_for  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
UPLOAD = os.urandom(60 * 1024)
INFO = {"platform": "ios", "model": "iPhone15,2", "os_version": "18.1", "app_version": "2.0.0", "language": "en-GB"}


class FakeBilling:
    async def entitlements(self, subject_id: str) -> billing_pb2.Entitlements:
        return billing_pb2.Entitlements(subscribed=False, free_daily_allowance=3, free_remaining_today=2)


class FakeIngestion:
    async def upload(self, subject_id: str, content_type: str, purpose: str, body: Any) -> ingestion_pb2.UploadResponse:
        size = 0
        async for chunk in body:
            size += len(chunk)
        reply = ingestion_pb2.UploadResponse()
        reply.upload.upload_id = uuid.uuid4().hex
        reply.upload.width, reply.upload.height, reply.upload.format, reply.upload.persisted = 3024, 4032, "jpeg", True
        reply.upload.expires_at.GetCurrentTime()
        return reply


def bare_app() -> FastAPI:
    """One route, no middleware, FastAPI's telemetry off (a tracer provider is set for the gateway): the floor."""
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/v1/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def cpu_per_request(client: httpx.AsyncClient, method: str, url: str, status: int, **kwargs: Any) -> float:
    """CPU microseconds per request: the least over ROUNDS rounds of REQUESTS sequential requests (other processes on
    a shared machine only ever add to it)."""
    for _ in range(20):
        reply = await client.request(method, url, **kwargs)
        assert reply.status_code == status, (url, reply.status_code, reply.text)
    rounds = []
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(REQUESTS):
            await client.request(method, url, **kwargs)
        rounds.append((time.process_time() - start) / REQUESTS * 1e6)
    return min(rounds)


async def run(database_url: str) -> None:
    configure_tracing("gateway", "none")
    limit = int(os.environ.get("BENCH_LIMIT", "0"))
    settings = settings_for(
        GatewaySettings,
        "gateway",
        **db_settings(database_url, "gateway"),
        **{f"{name}_addr": NOWHERE for name in ("privacy", "ingestion", "billing", "render", "faces")},
        redis_url=os.environ.get("LIKENESS_REDIS_URL", "redis://127.0.0.1:6379/15"),
        rate_limit_device_per_minute=limit,
        rate_limit_ip_per_minute=limit,
    )
    wiring = await build(settings)
    gw = wiring.gateway
    gw.billing, gw.ingestion = FakeBilling(), FakeIngestion()  # type: ignore[assignment]
    token = new_token()
    await gw.devices.add(str(uuid.uuid4()), token_hash(token), INFO, timedelta(days=30))
    auth = {"Authorization": f"Bearer {token}"}
    results = {}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_app()), base_url="http://gateway.test") as bare:
            results["bare GET (baseline)"] = await cpu_per_request(bare, "GET", "/v1/ping", 200)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wiring.app), base_url="http://gateway.test") as client:
            results["GET /v1/entitlements"] = await cpu_per_request(client, "GET", "/v1/entitlements", 200, headers=auth)
            results["POST /v1/uploads 60 KB"] = await cpu_per_request(
                client, "POST", "/v1/uploads", 201, content=UPLOAD, headers={**auth, "Content-Type": "image/jpeg"}
            )
            results["GET /healthz (no auth)"] = await cpu_per_request(client, "GET", "/healthz", 200)
    finally:
        await wiring.close()
    base = results["bare GET (baseline)"]
    print(f"bench/gateway: CPU per request, best of {ROUNDS} rounds x {REQUESTS} requests (limits {limit or 'off'})")
    for name, micros in results.items():
        print(f"  {name:28s} {micros:8.0f} us   {micros / base:5.2f}x baseline")


def main() -> None:
    base = os.environ.get("LIKENESS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"likeness_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(run(conninfo.make_conninfo(base, dbname=name)))
    finally:
        from likeness_platform.db_roles import drop_roles

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        drop_roles(base, name)


if __name__ == "__main__":
    main()
