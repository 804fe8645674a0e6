"""Composition root of the gateway: HTTP API and its gRPC DataHolder in one process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from likeness_gateway import grpc_api
from likeness_gateway.adapters.accounts import AccountRepository
from likeness_gateway.adapters.billing_client import BillingClient
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.adapters.idempotency import IdempotencyKeys
from likeness_gateway.adapters.ingestion_client import IngestionClient
from likeness_gateway.adapters.outbox import MailOutbox
from likeness_gateway.adapters.privacy_client import PrivacyClient
from likeness_gateway.adapters.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from likeness_gateway.adapters.render_client import RenderClient
from likeness_gateway.adapters.upstream import Upstream
from likeness_gateway.app import create_app
from likeness_gateway.deps import Accounts, Gateway
from likeness_gateway.domain.inline_store import InlineImages, forget_inactive_on_schedule
from likeness_gateway.domain.passwords import PasswordRules, Passwords
from likeness_gateway.guards import uvicorn_config
from likeness_gateway.holder import GatewayHolder
from likeness_gateway.routes import generation
from likeness_gateway.settings import GatewaySettings
from likeness_platform.crypto import DataKeyCache
from likeness_platform.db import open_service_pool
from likeness_platform.logging import get_logger
from likeness_platform.mail import mail_sender
from likeness_platform.metrics import start_metrics_server
from likeness_platform.privacy_port import PrivacyPort
from likeness_platform.server import Wiring, run_service, start_server

ACCOUNT_KEY_MIN = 32
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
log = get_logger("likeness.gateway")


class _Server(uvicorn.Server):
    # The process owns signal handling so HTTP and gRPC stop together.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_accounts(settings: GatewaySettings, repo: AccountRepository) -> Accounts | None:
    """Accounts when configured: an account key and a mail server (codes must reach people); else None."""
    outbox = MailOutbox(mail_sender(settings))
    if not settings.account_key or not outbox.configured:
        return None
    if len(settings.account_key) < ACCOUNT_KEY_MIN:
        raise ValueError(f"LIKENESS_ACCOUNT_KEY must be at least {ACCOUNT_KEY_MIN} characters")
    root = settings.account_key.encode()
    return Accounts(
        repo=repo,
        passwords=Passwords(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism, settings.argon2_max_concurrent
        ),
        rules=PasswordRules(min_length=settings.password_min_length),
        outbox=outbox,
        lookup_key=hmac.new(root, b"likeness-account-email-lookup", hashlib.sha256).digest(),
        code_key=hmac.new(root, b"likeness-account-codes", hashlib.sha256).digest(),
    )


@dataclass(kw_only=True)
class GatewayWiring(Wiring[GatewaySettings]):
    gateway: Gateway
    app: FastAPI


async def build(settings: GatewaySettings) -> GatewayWiring:
    """The gateway's one composition root: upstream clients, repositories, the HTTP app and the gRPC DataHolder."""
    pool = await open_service_pool(settings, "gateway", MIGRATIONS)
    deadline = settings.upstream_deadline_seconds
    privacy = PrivacyClient(settings.privacy_addr, settings, deadline)
    ingestion = IngestionClient(settings.ingestion_addr, settings, deadline)
    billing = BillingClient(settings.billing_addr, settings, deadline)
    render = RenderClient(settings.render_addr, settings, deadline)
    upstreams: dict[str, Upstream] = {"privacy": privacy, "ingestion": ingestion, "billing": billing, "render": render}
    for name in ("faces",):
        upstreams[name] = Upstream(name, getattr(settings, f"{name}_addr"), settings, deadline)
    limiter: RateLimiter = RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
    bucket_key = settings.rate_limit_key.encode() if settings.rate_limit_key else os.urandom(32)
    port = PrivacyPort(privacy.channel, "gateway")
    account_repo = AccountRepository(
        pool, DataKeyCache(port.data_key, ttl_seconds=10.0), timedelta(hours=settings.account_unverified_ttl_hours)
    )
    devices = DeviceRepository(pool)
    gw = Gateway(
        settings=settings,
        devices=devices,
        privacy=privacy,
        ingestion=ingestion,
        billing=billing,
        render=render,
        limiter=limiter,
        inline_images=InlineImages(settings.memory_upload_ttl_seconds),
        idempotency=IdempotencyKeys(pool),
        bucket_key=bucket_key,
        upstreams=upstreams,
        accounts=build_accounts(settings, account_repo),
    )
    holder = GatewayHolder(devices, account_repo, gw.inline_images)

    async def close() -> None:
        if gw.accounts is not None:
            await gw.accounts.outbox.drain()
        for upstream in gw.upstreams.values():
            await upstream.close()
        await pool.close()

    return GatewayWiring(
        settings=settings,
        register=lambda server: grpc_api.register(server, gw.devices, holder),
        background=[lambda: forget_inactive_on_schedule(gw.inline_images, gw.devices.active_subjects, settings.inline_image_check_seconds)],
        closers=[close],
        gateway=gw,
        app=create_app(gw),
    )


async def serve(service: str, wiring: GatewayWiring) -> None:
    """Serve the HTTP app and the gRPC DataHolder until SIGTERM/SIGINT; both stop together."""
    settings = wiring.settings
    running = await start_server(service, settings, wiring.register)
    metrics_port = settings.metrics_port or (running.port + 1000)
    start_metrics_server(settings.grpc_host, metrics_port)
    http = _Server(uvicorn_config(wiring.app, settings))
    serving = asyncio.create_task(http.serve())
    background = [asyncio.ensure_future(job()) for job in wiring.background]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", http_port=settings.http_port, grpc_port=running.port)
    await asyncio.wait([serving, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    await running.set_serving(False)
    for task in background:
        task.cancel()
    http.should_exit = True
    await serving
    await generation.drain()
    await running.stop(settings.shutdown_grace_seconds)
    await wiring.close()
    log.info("stopped")


main = partial(run_service, "gateway", GatewaySettings, build, serve=serve)

if __name__ == "__main__":
    asyncio.run(main())
