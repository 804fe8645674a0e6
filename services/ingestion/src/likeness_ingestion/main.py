"""Composition root of the ingestion service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from likeness.ingestion.v1 import ingestion_pb2_grpc
from likeness_ingestion.adapters.repository import upload_store
from likeness_ingestion.domain.normalize import Limits
from likeness_ingestion.grpc_api import IngestionServicer, service_name
from likeness_ingestion.service import IngestionConfig, IngestionService
from likeness_platform.blobs import blob_store_for, subject_names_for
from likeness_platform.clients import open_channel
from likeness_platform.crypto import DataKeyCache
from likeness_platform.dataholder import add_dataholder, sweep_on_schedule
from likeness_platform.db import open_service_pool
from likeness_platform.privacy_port import PrivacyPort
from likeness_platform.server import Wiring, run_service
from likeness_platform.settings import SealedStoreSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class IngestionSettings(SealedStoreSettings):
    grpc_port: int = 50051
    # Seconds an upload is kept (default class); 0 = memory-only mode. At most 86400.
    upload_ttl: int = 86400
    # Extra retention classes as JSON {"name": seconds}, each at most 86400.
    retention_classes: dict[str, int] = {}
    max_upload_bytes: int = 25 * 1000 * 1000
    max_pixels: int = 50_000_000
    # Uploads decoded at once per replica (bounds decode memory).
    max_concurrent_decodes: int = 2
    blob_dir: str = ".run/blobs/ingestion"
    s3_prefix: str = "uploads"


def build_config(settings: IngestionSettings) -> IngestionConfig:
    classes = {"default": settings.upload_ttl, **settings.retention_classes}
    return IngestionConfig(
        limits=Limits(max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels),
        retention_classes=classes,
        max_concurrent_decodes=settings.max_concurrent_decodes,
    )


@dataclass(kw_only=True)
class IngestionWiring(Wiring[IngestionSettings]):
    service: IngestionService


async def build(settings: IngestionSettings) -> IngestionWiring:
    """The ingestion service's one composition root: adapters, use cases, servicers."""
    config = build_config(settings)
    names = subject_names_for(settings)
    pool = await open_service_pool(settings, "ingestion", MIGRATIONS)
    privacy_channel = open_channel(settings.privacy_addr, "ingestion", settings)
    privacy = PrivacyPort(privacy_channel, "ingestion")
    blobs = blob_store_for(settings)
    uploads = upload_store(pool, blobs, DataKeyCache(privacy.data_key, settings.data_key_ttl_seconds), config.longest_ttl, names)
    service = IngestionService(uploads, privacy, config)

    def register(server: Any) -> list[str]:
        ingestion_pb2_grpc.add_IngestionServicer_to_server(IngestionServicer(service), server)
        return [service_name(), add_dataholder(server, service)]

    async def close() -> None:
        await privacy_channel.close()
        await pool.close()

    return IngestionWiring(
        settings=settings,
        register=register,
        background=[lambda: sweep_on_schedule(service, settings.self_sweep_seconds)],
        closers=[close],
        service=service,
    )


main = partial(run_service, "ingestion", IngestionSettings, build)


if __name__ == "__main__":
    asyncio.run(main())
