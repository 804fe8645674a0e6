"""Services started inside the test process on free loopback ports (real gRPC, real PostgreSQL)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from likeness.privacy.v1 import privacy_pb2_grpc
from likeness_gateway.adapters.billing_client import BillingClient
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.adapters.ingestion_client import IngestionClient
from likeness_gateway.adapters.privacy_client import PrivacyClient
from likeness_gateway.adapters.ratelimit import MemoryRateLimiter
from likeness_gateway.adapters.render_client import RenderClient
from likeness_gateway.adapters.upstream import Upstream
from likeness_gateway.app import create_app
from likeness_gateway.deps import Gateway
from likeness_gateway.domain.inline_store import InlineImages
from likeness_gateway.main import MIGRATIONS as GATEWAY_MIGRATIONS
from likeness_gateway.settings import GatewaySettings
from likeness_platform.dataholder import add_dataholder
from likeness_platform.db import apply_migrations, open_pool
from likeness_platform.server import RunningServer, start_server
from likeness_platform.settings import ServiceSettings
from likeness_privacy.adapters.holders import RemoteHolder
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.grpc_api import PrivacyServicer
from likeness_privacy.grpc_api import service_name as privacy_service_name
from likeness_privacy.main import MIGRATIONS as PRIVACY_MIGRATIONS
from likeness_privacy.usecases import PrivacyConfig, PrivacyUseCases, build_use_cases


def settings(**overrides: Any) -> ServiceSettings:
    return ServiceSettings(grpc_port=0, metrics_port=-1, **overrides)


@dataclass
class Started:
    servers: list[RunningServer] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()
        for server in reversed(self.servers):
            await server.stop(0)


async def start_privacy(
    database_url: str, holders: dict[str, str], started: Started, port: int = 0, **config: Any
) -> tuple[PrivacyUseCases, str]:
    """Privacy on a free port, driving the given holders (name -> address)."""
    await apply_migrations(database_url, "privacy", PRIVACY_MIGRATIONS)
    pool = await open_pool(database_url, "privacy")
    remote = [RemoteHolder(name, addr, settings(), timeout=config.pop("holder_timeout", 5.0)) for name, addr in holders.items()]
    cfg = PrivacyConfig(
        kek=os.urandom(32), pseudonym_key=os.urandom(32), retry_base_seconds=0.1, retry_cap_seconds=0.5, erasure_poll_seconds=0.2, **config
    )
    service = build_use_cases(PrivacyRepository(pool), remote, cfg)

    def register(server: Any) -> list[str]:
        privacy_pb2_grpc.add_PrivacyServicer_to_server(PrivacyServicer(service), server)
        return [privacy_service_name(), add_dataholder(server, service.self_holder)]

    running = await start_server("privacy", settings(), register, port=port)
    started.servers.append(running)

    async def close() -> None:
        for h in remote:
            await h.close()
        await pool.close()

    started.closers.append(close)
    return service, f"127.0.0.1:{running.port}"


async def start_gateway(database_url: str, addrs: dict[str, str], started: Started) -> tuple[Gateway, httpx.AsyncClient, str]:
    """The gateway app (in-process ASGI client) and its gRPC DataHolder on a free port."""
    from likeness_gateway import grpc_api

    await apply_migrations(database_url, "gateway", GATEWAY_MIGRATIONS)
    pool = await open_pool(database_url, "gateway")
    gs = GatewaySettings(grpc_port=0, metrics_port=-1, **{f"{k}_addr": v for k, v in addrs.items()})
    privacy = PrivacyClient(addrs["privacy"], gs, 10)
    ingestion = IngestionClient(addrs.get("ingestion", "127.0.0.1:1"), gs, 10)
    billing = BillingClient(addrs.get("billing", "127.0.0.1:1"), gs, 10)
    render = RenderClient(addrs.get("render", "127.0.0.1:1"), gs, 60)
    upstreams: dict[str, Upstream] = {"privacy": privacy, "ingestion": ingestion, "billing": billing, "render": render}
    gw = Gateway(
        settings=gs,
        devices=DeviceRepository(pool),
        privacy=privacy,
        ingestion=ingestion,
        billing=billing,
        render=render,
        limiter=MemoryRateLimiter(),
        inline_images=InlineImages(600),
        bucket_key=os.urandom(32),
        upstreams=upstreams,
    )
    running = await start_server("gateway", gs, lambda server: grpc_api.register(server, gw.devices))
    started.servers.append(running)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gw)), base_url="http://gateway.test")

    async def close() -> None:
        await client.aclose()
        await privacy.close()
        await ingestion.close()
        await billing.close()
        await render.close()
        await pool.close()

    started.closers.append(close)
    return gw, client, f"127.0.0.1:{running.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_ingestion(
    database_url: str, privacy_addr: str, blob_dir: Path, started: Started, ttl: int = 86400, port: int = 0
) -> tuple[Any, str]:
    """Ingestion on a free port with a local blob store."""
    from likeness.ingestion.v1 import ingestion_pb2_grpc
    from likeness_ingestion.adapters.repository import upload_store
    from likeness_ingestion.grpc_api import IngestionServicer
    from likeness_ingestion.grpc_api import service_name as ingestion_service_name
    from likeness_ingestion.main import MIGRATIONS as INGESTION_MIGRATIONS
    from likeness_ingestion.service import IngestionConfig, IngestionService
    from likeness_platform.blobs import LocalBlobStore
    from likeness_platform.clients import open_channel
    from likeness_platform.crypto import DataKeyCache
    from likeness_platform.privacy_port import PrivacyPort

    await apply_migrations(database_url, "ingestion", INGESTION_MIGRATIONS)
    pool = await open_pool(database_url, "ingestion")
    channel = open_channel(privacy_addr, "ingestion", settings())
    privacy = PrivacyPort(channel, "ingestion")
    config = IngestionConfig(retention_classes={"default": ttl})
    uploads = upload_store(pool, LocalBlobStore(blob_dir), DataKeyCache(privacy.data_key, 1.0), config.longest_ttl)
    service = IngestionService(uploads, privacy, config)

    def register(server: Any) -> list[str]:
        ingestion_pb2_grpc.add_IngestionServicer_to_server(IngestionServicer(service), server)
        return [ingestion_service_name(), add_dataholder(server, service)]

    running = await start_server("ingestion", settings(), register, port=port)
    started.servers.append(running)

    async def close() -> None:
        await channel.close()
        await pool.close()

    started.closers.append(close)
    return service, f"127.0.0.1:{running.port}"


async def start_billing(database_url: str, started: Started, verifier: Any, free_daily: int = 3, port: int = 0) -> tuple[Any, str]:
    """Billing on a free port with the given App Store verifier."""
    from likeness.billing.v1 import billing_pb2_grpc
    from likeness_billing.adapters.repository import MIGRATIONS_DIR, BillingRepository
    from likeness_billing.domain.quotas import QuotaPolicy
    from likeness_billing.grpc_api import BillingServicer
    from likeness_billing.grpc_api import service_name as billing_service_name
    from likeness_billing.holder import BillingHolder

    await apply_migrations(database_url, "billing", MIGRATIONS_DIR)
    pool = await open_pool(database_url, "billing")
    repo = BillingRepository(pool, ledger_key=os.urandom(32))

    def register(server: Any) -> list[str]:
        billing_pb2_grpc.add_BillingServicer_to_server(BillingServicer(repo, verifier, None, QuotaPolicy(free_daily)), server)
        return [billing_service_name(), add_dataholder(server, BillingHolder(repo))]

    running = await start_server("billing", settings(), register, port=port)
    started.servers.append(running)
    started.closers.append(pool.close)
    return repo, f"127.0.0.1:{running.port}"


async def start_faces(started: Started, ingestion_addr: str = "127.0.0.1:1", port: int = 0) -> tuple[Any, str]:
    """Faces on a free port with the real models."""
    from likeness.faces.v1 import faces_pb2_grpc
    from likeness_faces.adapters.models import load_models
    from likeness_faces.grpc_api import FacesServicer
    from likeness_faces.grpc_api import service_name as faces_service_name
    from likeness_faces.holder import StatelessHolder
    from likeness_faces.service import FaceAnalyzer
    from likeness_platform.clients import open_channel

    models = load_models()
    analyzer = FaceAnalyzer(models.detector, models.landmarker)
    channel = open_channel(ingestion_addr, "faces", settings())

    def register(server: Any) -> list[str]:
        faces_pb2_grpc.add_FacesServicer_to_server(FacesServicer(analyzer, channel, 60_000_000), server)
        return [faces_service_name(), add_dataholder(server, StatelessHolder())]

    running = await start_server("faces", settings(), register, port=port)
    started.servers.append(running)

    async def close() -> None:
        await analyzer.close()
        models.close()
        await channel.close()

    started.closers.append(close)
    return analyzer, f"127.0.0.1:{running.port}"


async def start_render(
    database_url: str, addrs: dict[str, str], blob_dir: Path, started: Started, ttl: int = 86400, port: int = 0, generator: Any = None
) -> tuple[Any, str]:
    """Render on a free port with the real models, talking to ingestion, faces and privacy at `addrs`."""
    from datetime import timedelta

    from likeness.render.v1 import render_pb2_grpc
    from likeness_platform.blobs import LocalBlobStore
    from likeness_platform.clients import open_channel
    from likeness_platform.crypto import DataKeyCache
    from likeness_platform.privacy_port import PrivacyPort
    from likeness_render.adapters.results import ResultStore
    from likeness_render.adapters.segmenter import SelfieSegmenter
    from likeness_render.adapters.templates_repo import TemplateRepository
    from likeness_render.adapters.upstreams import FacesClient, ImageSource
    from likeness_render.domain.specs import load_catalog
    from likeness_render.domain.templates import InMemoryTemplateStore
    from likeness_render.grpc_api import RenderServicer
    from likeness_render.grpc_api import service_name as render_service_name
    from likeness_render.holder import RenderHolder
    from likeness_render.main import MIGRATIONS as RENDER_MIGRATIONS
    from likeness_render.service import RenderService

    await apply_migrations(database_url, "render", RENDER_MIGRATIONS)
    pool = await open_pool(database_url, "render")
    channels = {name: open_channel(addrs[name], "render", settings()) for name in ("privacy", "ingestion", "faces")}
    privacy = PrivacyPort(channels["privacy"], "render")
    results = ResultStore(pool, LocalBlobStore(blob_dir), DataKeyCache(privacy.data_key, 1.0), timedelta(seconds=ttl))
    segmenter = SelfieSegmenter()
    templates = InMemoryTemplateStore()
    repo = TemplateRepository(pool)
    service = RenderService(
        load_catalog(),
        ImageSource(channels["ingestion"]),
        FacesClient(channels["faces"]),
        segmenter.mask,
        results,
        templates,
        privacy,
        memory_only=ttl == 0,
        generator=generator,
    )
    service.start_demo_templates()  # meshes from faces, in the background

    def register(server: Any) -> list[str]:
        render_pb2_grpc.add_RenderServicer_to_server(RenderServicer(service, repo), server)
        return [render_service_name(), add_dataholder(server, RenderHolder(results))]

    running = await start_server("render", settings(), register, port=port)
    started.servers.append(running)

    async def close() -> None:
        await service.stop()
        for channel in channels.values():
            await channel.close()
        await pool.close()
        segmenter.close()

    started.closers.append(close)
    return service, f"127.0.0.1:{running.port}"
