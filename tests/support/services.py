"""Services started inside the test process through their own `main.build` (real gRPC, real PostgreSQL).

Each helper only picks test settings (free port, metrics off, the test database, a temporary blob
directory, fast retries); the wiring itself is the service's composition root, the same one `main()` runs.
"""

from __future__ import annotations

import base64
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from likeness_platform.db_roles import provision_roles
from likeness_platform.server import RunningServer, Wiring, start_server
from likeness_platform.settings import ServiceSettings
from tests.support.pki import tls_settings

W = TypeVar("W", bound=Wiring)
S = TypeVar("S", bound=ServiceSettings)

# Addresses of services a test does not start: calls to them fail at once.
NOWHERE = "127.0.0.1:1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(cls: type[S], identity: str, **overrides: Any) -> S:
    """Settings of a service under test: a free port unless given, metrics and the plaintext health port off,
    mTLS with `identity`'s certificate from the test PKI."""
    return cls(**{"grpc_port": 0, "metrics_port": -1, "health_port": -1, **tls_settings(identity), **overrides})


def db_settings(database_url: str, service: str) -> dict[str, str]:
    """A service's database settings on the test database: its own runtime role, migrations as the owner role."""
    return provision_roles(database_url).settings_for(service)


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# The key of the keyed blob names and tombstones of every sealed store a test starts (one per test session, as one
# per deployment): tests that plant a blob under a subject's name make it with `subject_names()`.
BLOB_NAME_KEY = new_key()


def subject_names() -> Any:
    from likeness_platform.blobs import SubjectNames

    return SubjectNames.from_setting(BLOB_NAME_KEY)


@dataclass
class Started:
    """What a test started: servers are stopped first, then each wiring is closed (newest first)."""

    servers: list[RunningServer] = field(default_factory=list)
    wirings: dict[str, Wiring] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for server in reversed(self.servers):
            await server.stop(0)
        for closer in reversed(self.closers):
            await closer()


async def serve(name: str, build: Callable[[S], Awaitable[W]], settings: S, started: Started) -> tuple[W, str]:
    """Build a service from its settings and serve it (no background loops: tests drive them)."""
    wiring = await build(settings)
    started.wirings[name] = wiring
    started.closers.append(wiring.close)
    running = await start_server(name, settings, wiring.register, security_events=wiring.security_events)
    started.servers.append(running)
    return wiring, f"127.0.0.1:{running.port}"


async def start_privacy(database_url: str, holders: dict[str, str], started: Started, port: int = 0, **overrides: Any) -> tuple[Any, str]:
    """Privacy on a free port, driving the given holders (name -> address), with fast retries."""
    from likeness_privacy.main import PrivacySettings, build

    settings = settings_for(
        PrivacySettings,
        "privacy",
        grpc_port=port,
        **db_settings(database_url, "privacy"),
        kek=new_key(),
        pseudonym_key=new_key(),
        holders=holders,
        erasure_retry_base_seconds=0.1,
        erasure_retry_cap_seconds=0.5,
        erasure_poll_seconds=0.2,
        holder_timeout_seconds=5.0,
        ledger_checkpoint_dir=overrides.pop("ledger_checkpoint_dir", None) or tempfile.mkdtemp(prefix="likeness-checkpoints-"),
        **overrides,
    )
    wiring, addr = await serve("privacy", build, settings, started)
    return wiring.use_cases, addr


async def start_gateway(database_url: str, addrs: dict[str, str], started: Started, **overrides: Any) -> tuple[Any, httpx.AsyncClient, str]:
    """The gateway app (in-process ASGI client) and its gRPC DataHolder on a free port; settings overrides as keywords."""
    from likeness_gateway.main import GatewaySettings, build

    upstreams = {f"{name}_addr": addrs.get(name, NOWHERE) for name in ("privacy", "ingestion", "billing", "render", "faces")}
    settings = settings_for(
        GatewaySettings, "gateway", **db_settings(database_url, "gateway"), upstream_deadline_seconds=60.0, **upstreams, **overrides
    )
    wiring, addr = await serve("gateway", build, settings, started)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=wiring.app), base_url="http://gateway.test")
    started.closers.append(client.aclose)
    return wiring.gateway, client, addr


async def start_ingestion(
    database_url: str, privacy_addr: str, blob_dir: Path, started: Started, ttl: int = 86400, port: int = 0, **overrides: Any
) -> tuple[Any, str]:
    """Ingestion on a free port with a local blob store."""
    from likeness_ingestion.main import IngestionSettings, build

    settings = settings_for(
        IngestionSettings,
        "ingestion",
        grpc_port=port,
        **db_settings(database_url, "ingestion"),
        privacy_addr=privacy_addr,
        upload_ttl=ttl,
        blob_backend="local",
        blob_dir=str(blob_dir),
        data_key_ttl_seconds=1.0,
        blob_name_key=BLOB_NAME_KEY,
        **overrides,
    )
    wiring, addr = await serve("ingestion", build, settings, started)
    return wiring.service, addr


async def start_billing(database_url: str, started: Started, port: int = 0, **overrides: Any) -> tuple[Any, str]:
    """Billing on a free port; App Store settings come as overrides."""
    from likeness_billing.main import BillingSettings, build

    settings = settings_for(
        BillingSettings, "billing", grpc_port=port, **db_settings(database_url, "billing"), billing_ledger_key=new_key(), **overrides
    )
    wiring, addr = await serve("billing", build, settings, started)
    return wiring.repo, addr


async def start_faces(started: Started, ingestion_addr: str = NOWHERE, port: int = 0) -> tuple[Any, str]:
    """Faces on a free port with the real models."""
    from likeness_faces.main import FacesSettings, build

    settings = settings_for(FacesSettings, "faces", grpc_port=port, ingestion_addr=ingestion_addr)
    wiring, addr = await serve("faces", build, settings, started)
    return wiring.analyzer, addr


async def start_render(
    database_url: str, addrs: dict[str, str], blob_dir: Path, started: Started, ttl: int = 86400, port: int = 0, **extra: Any
) -> tuple[Any, str]:
    """Render on a free port with the real models, talking to ingestion, faces and privacy at `addrs`
    (`extra`: more RenderSettings fields)."""
    from likeness_render.main import RenderSettings, build

    settings = settings_for(
        RenderSettings,
        "render",
        grpc_port=port,
        **db_settings(database_url, "render"),
        privacy_addr=addrs["privacy"],
        ingestion_addr=addrs["ingestion"],
        faces_addr=addrs["faces"],
        upload_ttl=ttl,
        blob_backend="local",
        blob_dir=str(blob_dir),
        data_key_ttl_seconds=1.0,
        blob_name_key=BLOB_NAME_KEY,
        **extra,
    )
    wiring, addr = await serve("render", build, settings, started)
    return wiring.use_cases, addr
