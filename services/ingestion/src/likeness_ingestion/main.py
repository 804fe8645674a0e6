"""Composition root of the ingestion service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from likeness.ingestion.v1 import ingestion_pb2_grpc
from likeness_ingestion.adapters.repository import upload_store
from likeness_ingestion.domain.normalize import Limits
from likeness_ingestion.grpc_api import IngestionServicer, service_name
from likeness_ingestion.service import IngestionConfig, IngestionService
from likeness_platform.blobs import blob_store_from_settings
from likeness_platform.clients import open_channel
from likeness_platform.crypto import DataKeyCache
from likeness_platform.dataholder import add_dataholder
from likeness_platform.db import apply_migrations, open_pool
from likeness_platform.logging import configure_logging
from likeness_platform.privacy_port import PrivacyPort
from likeness_platform.server import Wiring, serve_wiring
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class IngestionSettings(ServiceSettings):
    grpc_port: int = 50051
    # Seconds an upload is kept (default class); 0 = memory-only mode. At most 86400.
    upload_ttl: int = 86400
    # Extra retention classes as JSON {"name": seconds}, each at most 86400.
    retention_classes: dict[str, int] = {}
    max_upload_bytes: int = 25 * 1000 * 1000
    max_pixels: int = 50_000_000
    blob_backend: str = "local"
    blob_dir: str = ".run/blobs/ingestion"
    s3_bucket: str = ""
    s3_prefix: str = "uploads"
    s3_endpoint_url: str = ""
    s3_region: str = ""
    data_key_ttl_seconds: float = 10.0


def build_config(settings: IngestionSettings) -> IngestionConfig:
    classes = {"default": settings.upload_ttl, **settings.retention_classes}
    return IngestionConfig(limits=Limits(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels), retention_classes=classes)


@dataclass(kw_only=True)
class IngestionWiring(Wiring):
    settings: IngestionSettings
    service: IngestionService


async def build(settings: IngestionSettings) -> IngestionWiring:
    """The ingestion service's one composition root: adapters, use cases, servicers."""
    config = build_config(settings)
    if not settings.database_url:
        raise SystemExit("LIKENESS_DATABASE_URL is not set (make run starts an embedded PostgreSQL and sets it)")
    await apply_migrations(settings.database_url, "ingestion", MIGRATIONS)
    pool = await open_pool(settings.database_url, "ingestion", settings.db_pool_min, settings.db_pool_max)
    privacy_channel = open_channel(settings.privacy_addr, "ingestion", settings)
    privacy = PrivacyPort(privacy_channel, "ingestion")
    blobs = blob_store_from_settings(
        settings.blob_backend, settings.blob_dir, settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region
    )
    uploads = upload_store(pool, blobs, DataKeyCache(privacy.data_key, settings.data_key_ttl_seconds), config.longest_ttl)
    service = IngestionService(uploads, privacy, config)

    def register(server: Any) -> list[str]:
        ingestion_pb2_grpc.add_IngestionServicer_to_server(IngestionServicer(service), server)
        return [service_name(), add_dataholder(server, service)]

    async def close() -> None:
        await privacy_channel.close()
        await pool.close()

    return IngestionWiring(settings=settings, register=register, closers=[close], service=service)


async def main() -> None:
    settings = IngestionSettings()
    configure_logging("ingestion", settings.log_level)
    configure_tracing("ingestion", settings.otel_exporter)
    await serve_wiring("ingestion", await build(settings))


if __name__ == "__main__":
    asyncio.run(main())
