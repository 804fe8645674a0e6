"""Composition root of the render service."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_platform.blobs import blob_store_from_settings
from likeness_platform.clients import open_channel
from likeness_platform.crypto import DataKeyCache
from likeness_platform.dataholder import add_dataholder
from likeness_platform.db import apply_migrations, open_pool
from likeness_platform.logging import configure_logging
from likeness_platform.privacy_port import PrivacyPort
from likeness_platform.server import serve_forever
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing
from likeness_render.adapters.results import ResultStore
from likeness_render.holder import RenderHolder

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class RenderSettings(ServiceSettings):
    grpc_port: int = 50053
    # Seconds results are kept (at most 86400); 0 = memory-only mode, results returned inline.
    upload_ttl: int = 86400
    blob_backend: str = "local"
    blob_dir: str = ".run/blobs/render"
    s3_bucket: str = ""
    s3_prefix: str = "results"
    s3_endpoint_url: str = ""
    s3_region: str = ""
    data_key_ttl_seconds: float = 10.0


async def main() -> None:
    settings = RenderSettings()
    configure_logging("render", settings.log_level)
    configure_tracing("render", settings.otel_exporter)
    if not 0 <= settings.upload_ttl <= 86400:
        raise SystemExit("LIKENESS_UPLOAD_TTL must be between 0 and 86400 seconds: results are kept at most 24 h")
    if not settings.database_url:
        raise SystemExit("LIKENESS_DATABASE_URL is not set (make run starts an embedded PostgreSQL and sets it)")
    await apply_migrations(settings.database_url, "render", MIGRATIONS)
    pool = await open_pool(settings.database_url, "render", settings.db_pool_min, settings.db_pool_max)
    privacy_channel = open_channel(settings.privacy_addr, "render", settings)
    privacy = PrivacyPort(privacy_channel, "render")
    blobs = blob_store_from_settings(
        settings.blob_backend, settings.blob_dir, settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region
    )
    results = ResultStore(
        pool, blobs, DataKeyCache(privacy.data_key, settings.data_key_ttl_seconds), timedelta(seconds=settings.upload_ttl)
    )

    def register(server: Any) -> list[str]:
        render_pb2_grpc.add_RenderServicer_to_server(render_pb2_grpc.RenderServicer(), server)
        return [render_pb2.DESCRIPTOR.services_by_name["Render"].full_name, add_dataholder(server, RenderHolder(results))]

    async def close() -> None:
        await privacy_channel.close()
        await pool.close()

    await serve_forever("render", settings, register, on_stop=[close])


if __name__ == "__main__":
    asyncio.run(main())
