"""Composition root of the admin API: HTTPS for operators, a gRPC health port, channels into the mesh."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import uvicorn
from fastapi import FastAPI

from likeness_admin.app import create_app
from likeness_admin.https import ClientCertProtocol, ServerTls
from likeness_admin.mesh import Mesh
from likeness_admin.operators import Refused
from likeness_admin.settings import AdminSettings
from likeness_platform.authz import SecurityEvents, remote_sender
from likeness_platform.logging import get_logger
from likeness_platform.metrics import start_metrics_server
from likeness_platform.server import Wiring, run_service, start_server
from likeness_platform.tls import TlsPaths

log = get_logger("likeness.admin")
REFUSED_EVENT = "operator_refused"


class _Server(uvicorn.Server):
    # The process owns signal handling so HTTPS and gRPC stop together.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(kw_only=True)
class AdminWiring(Wiring[AdminSettings]):
    app: FastAPI
    tls: ServerTls


async def build(settings: AdminSettings) -> AdminWiring:
    """The admin API's one composition root."""
    mesh = Mesh(settings, settings.upstream_deadline_seconds)
    # Refused operator calls go to privacy's security-event log, like refused gRPC calls (bounded, never waited on).
    send, close_sender = remote_sender("admin", settings)
    events = SecurityEvents("admin", send)

    def refused(refusal: Refused, caller: str, method: str, ip: str) -> None:
        events.report(REFUSED_EVENT, caller, method, ip)

    return AdminWiring(
        settings=settings,
        # The gRPC port serves health only: the API is the HTTPS port.
        register=lambda server: [],
        closers=[mesh.close, events.close, close_sender],
        app=create_app(mesh, settings.docs_enabled, refused),
        tls=ServerTls(TlsPaths.from_settings(settings)),
    )


def uvicorn_config(app: FastAPI, settings: AdminSettings, tls: ServerTls) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        http=ClientCertProtocol,
        ssl_context_factory=lambda config, default: tls.context,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
    )


async def serve(service: str, wiring: AdminWiring) -> None:
    """Serve HTTPS and gRPC health until SIGTERM/SIGINT; both stop together."""
    settings = wiring.settings
    running = await start_server(service, settings, wiring.register)
    metrics_port = settings.metrics_port or (running.port + 1000)
    start_metrics_server(settings.grpc_host, metrics_port)
    http = _Server(uvicorn_config(wiring.app, settings, wiring.tls))
    serving = asyncio.create_task(http.serve())
    following = asyncio.create_task(wiring.tls.follow())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving", https_port=settings.http_port, grpc_port=running.port)
    await asyncio.wait([serving, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    await running.set_serving(False)
    http.should_exit = True
    await serving
    following.cancel()
    await running.stop(settings.shutdown_grace_seconds)
    await wiring.close()
    log.info("stopped")


main = partial(run_service, "admin", AdminSettings, build, serve=serve)

if __name__ == "__main__":
    asyncio.run(main())
