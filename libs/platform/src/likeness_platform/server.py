"""gRPC server bootstrap used by every service: mTLS, authorisation, health, reflection, interceptors, graceful stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from likeness_platform.authz import AuthorizationInterceptor, SecurityEvents, SendEvent, remote_sender
from likeness_platform.interceptors import ServerInterceptor
from likeness_platform.logging import configure_logging
from likeness_platform.memory import tune_allocator
from likeness_platform.metrics import start_metrics_server
from likeness_platform.policy import POLICY
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing, server_tracing_interceptor
from likeness_platform.tls import TlsNotConfigured, TlsPaths, server_credentials

log = structlog.get_logger("likeness.server")


def server_options(settings: ServiceSettings) -> list[tuple[str, Any]]:
    """Keepalive and message-size options shared by servers and channels."""
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Clients re-resolve (and so rebalance across new pods) when servers age connections out.
        ("grpc.max_connection_age_ms", 5 * 60 * 1000),
        ("grpc.max_connection_age_grace_ms", 30 * 1000),
    ]


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


@dataclass(kw_only=True)
class Wiring(Generic[SettingsT]):
    """What a service's composition root (`main.build`) returns; each service extends it with its parts.

    `Wiring[XSettings]` types `settings` as the service's own settings class. `register` adds the
    servicers to a server and returns their full names, `background` are the loops a running service
    keeps going, `closers` release what build opened (in reverse order). `security_events` delivers
    refused calls to the security-event log; unset, they go to privacy's RecordSecurityEvent.
    """

    settings: SettingsT
    register: Callable[[grpc.aio.Server], Iterable[str]]
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    security_events: SendEvent | None = None

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer()


@dataclass
class RunningServer:
    """A started server: its (mTLS) port, the plaintext health-only port, health servicer and the names it serves."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    services: list[str]
    events: SecurityEvents
    health_server: grpc.aio.Server | None = None
    health_port: int = -1
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        """Set every service's health status (and the overall '' entry)."""
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ["", *self.services]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, let in-flight calls finish within `grace`, then run on_stop hooks."""
        await self.set_serving(False)
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)
        await self.events.close()
        for hook in reversed(self.on_stop):
            await hook()


async def start_server(
    service: str,
    settings: ServiceSettings,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    port: int | None = None,
    security_events: SendEvent | None = None,
    rules: Mapping[str, frozenset[str]] = POLICY,
) -> RunningServer:
    """Build, register and start a grpc.aio server; `register` adds servicers and returns full service names.

    The gRPC port speaks only mutual TLS and every call passes the policy (`rules`: `likeness_platform.policy`);
    grpc.health.v1 is also served in plaintext on `health_port` (and nothing else there).
    """
    credentials = server_credentials(settings)  # TlsNotConfigured: no certificate, no server
    close_sender: Callable[[], Awaitable[None]] | None = None
    if security_events is None:
        security_events, close_sender = remote_sender(service, settings)
    events = SecurityEvents(service, security_events)
    # No SO_REUSEPORT: a second process on the same port must fail to start, not share its traffic.
    server = grpc.aio.server(
        interceptors=[server_tracing_interceptor(), AuthorizationInterceptor(service, events, rules), ServerInterceptor(service)],
        options=[*server_options(settings), ("grpc.so_reuseport", 0)],
    )
    names = list(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
        )
    grpc_port = settings.grpc_port if port is None else port
    bound = server.add_secure_port(f"{settings.grpc_host}:{grpc_port}", credentials)
    health_server, health_port = None, -1
    wanted = settings.health_port if settings.health_port is not None else (grpc_port + 2000 if grpc_port else 0)
    if wanted >= 0:
        health_server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        health_port = health_server.add_insecure_port(f"{settings.grpc_host}:{wanted}")
    await server.start()
    if health_server is not None:
        await health_server.start()
    running = RunningServer(
        server=server,
        port=bound,
        health=health_servicer,
        services=names,
        events=events,
        health_server=health_server,
        health_port=health_port,
    )
    if close_sender is not None:
        running.on_stop.append(close_sender)
    await running.set_serving(True)
    return running


async def serve_forever(
    service: str,
    settings: ServiceSettings,
    register: Callable[[grpc.aio.Server], Iterable[str]],
    on_stop: list[Callable[[], Awaitable[None]]] | None = None,
    background: list[Callable[[], Awaitable[None]]] | None = None,
    security_events: SendEvent | None = None,
    rules: Mapping[str, frozenset[str]] = POLICY,
) -> None:
    """Run a service until SIGTERM/SIGINT, then stop gracefully (health first, then a grace period)."""
    running = await start_server(service, settings, register, security_events=security_events, rules=rules)
    running.on_stop.extend(on_stop or [])
    metrics_port = settings.metrics_port or (running.port + 1000)
    if metrics_port > 0:
        start_metrics_server(settings.grpc_host, metrics_port)
    tasks: list[asyncio.Future[None]] = [asyncio.ensure_future(job()) for job in (background or [])]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", port=running.port, services=running.services, metrics_port=metrics_port, health_port=running.health_port)
    await stop.wait()
    log.info("stopping", grace_seconds=settings.shutdown_grace_seconds)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await running.stop(settings.shutdown_grace_seconds)
    log.info("stopped")


async def serve_wiring(service: str, wiring: Wiring[Any]) -> None:
    """Serve what `build` wired until SIGTERM/SIGINT, then close it."""
    await serve_forever(
        service,
        wiring.settings,
        wiring.register,
        on_stop=[wiring.close],
        background=wiring.background,
        security_events=wiring.security_events,
    )


WiringT = TypeVar("WiringT", bound=Wiring[Any])


async def run_service(
    service: str,
    settings_cls: Callable[[], SettingsT],
    build: Callable[[SettingsT], Awaitable[WiringT]],
    *,
    serve: Callable[[str, WiringT], Awaitable[None]] = serve_wiring,
    startup_errors: tuple[type[Exception], ...] = (),
) -> None:
    """What `python -m likeness_<service>.main` runs: settings from the environment, logging, tracing, `build`, `serve`.

    `serve` defaults to `serve_wiring` (gRPC only); a service that serves more (the gateway's HTTP app) passes its own.
    `startup_errors` raised by `build` stop the process with a one-line message instead of a traceback.
    """
    settings = settings_cls()
    configure_logging(service, settings.log_level)
    configure_tracing(service, settings.otel_exporter)
    tuned = tune_allocator()
    if tuned:
        log.info("allocator_tuned", service=service, **tuned)
    try:
        TlsPaths.from_settings(settings)
    except TlsNotConfigured as exc:
        raise SystemExit(f"{service} cannot start: {exc}") from None
    try:
        wiring = await build(settings)
    except startup_errors as exc:
        raise SystemExit(f"{service} cannot start: {exc}") from None
    await serve(service, wiring)
