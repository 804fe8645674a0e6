"""CPU per internal gRPC call (client and server in one process) through the platform's layers, against a bare
grpc.aio server and channel with the same mutual TLS and no interceptors, in the same run.

The method is privacy's RecordUsage, registered the way privacy registers it (`add_PrivacyServicer_to_server`)
but answering at once (no database), called by a `render` certificate (the one the policy allows) through
`clients.open_channel` on a server from `server.start_server`, with logging and tracing set up as `run_service`
sets them (info level, JSON lines, here written to /dev/null; no trace exporter). CPU is `time.process_time`
around many calls, so the number is client + server + event loop, what one call costs a mesh process pair.

    python bench/rpc/bench_rpc.py [--calls 2000] [--rounds 5] [--log-level info] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_platform.clients import open_channel
from likeness_platform.devpki import DevPki, TlsFiles
from likeness_platform.logging import configure_logging
from likeness_platform.server import RunningServer, server_options, start_server
from likeness_platform.settings import ServiceSettings
from likeness_platform.telemetry import configure_tracing

CONCURRENCY = 8


class _Privacy(privacy_pb2_grpc.PrivacyServicer):
    """RecordUsage without the database: what is left is the RPC machinery."""

    async def RecordUsage(self, request: privacy_pb2.RecordUsageRequest, context: Any) -> privacy_pb2.RecordUsageResponse:
        return privacy_pb2.RecordUsageResponse()


def _register(server: grpc.aio.Server) -> list[str]:
    privacy_pb2_grpc.add_PrivacyServicer_to_server(_Privacy(), server)
    return [privacy_pb2.DESCRIPTOR.services_by_name["Privacy"].full_name]


async def _ignore(*_: str) -> None:
    return None


REQUEST = privacy_pb2.RecordUsageRequest(
    interface="http", operation="id_photo", spec_id="us_passport", country="US", outcome="ok", app_version="1.4.0"
)

Call = Callable[[], Awaitable[Any]]


class Mesh:
    """A server and a client, either through the platform (`ours`) or bare grpc.aio (`bare`)."""

    def __init__(self, server_files: TlsFiles, client_files: TlsFiles) -> None:
        self.server_files, self.client_files = server_files, client_files
        self.settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **server_files.settings())
        self.client_settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **client_files.settings())
        self._close: list[Callable[[], Awaitable[None]]] = []

    async def ours(self) -> Call:
        running: RunningServer = await start_server("privacy", self.settings, _register, security_events=_ignore)
        channel = open_channel(f"localhost:{running.port}", "render", self.client_settings)
        stub = privacy_pb2_grpc.PrivacyStub(channel)
        self._close += [lambda: running.stop(0), channel.close]
        return lambda: stub.RecordUsage(REQUEST)

    async def bare(self) -> Call:
        cert, key, ca = self.server_files.read()
        server = grpc.aio.server(options=server_options(self.settings))
        _register(server)
        port = server.add_secure_port(
            "localhost:0", grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)
        )
        await server.start()
        ccert, ckey, cca = self.client_files.read()
        channel = grpc.aio.secure_channel(
            f"localhost:{port}",
            grpc.ssl_channel_credentials(root_certificates=cca, private_key=ckey, certificate_chain=ccert),
            options=server_options(self.client_settings),
        )
        stub = privacy_pb2_grpc.PrivacyStub(channel)
        self._close += [lambda: server.stop(0), channel.close]
        return lambda: stub.RecordUsage(REQUEST, timeout=30.0)

    async def close(self) -> None:
        for closer in reversed(self._close):
            await closer()


async def cpu_per_call(call: Call, calls: int, concurrency: int) -> tuple[float, float]:
    """CPU microseconds per call over `calls` calls, `concurrency` at a time: (whole process, event-loop thread).

    The event-loop thread runs every Python layer (ours and grpc.aio's); the rest of the process is grpc's
    core (TLS, HTTP/2, its poller thread), which both set-ups share.
    """

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    started, thread_started = time.process_time(), time.thread_time()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    done = calls // concurrency * concurrency
    return (time.process_time() - started) / done * 1e6, (time.thread_time() - thread_started) / done * 1e6


async def main(calls: int, rounds: int, profile: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pki = DevPki(Path(tmp))
        mesh = Mesh(pki.ensure("privacy"), pki.ensure("render"))
        try:
            calls_of = {"bare": await mesh.bare(), "ours": await mesh.ours()}
            for call in calls_of.values():
                for _ in range(200):  # connect, warm caches
                    await call()
            if profile:
                prof = cProfile.Profile()
                prof.enable()
                await cpu_per_call(calls_of["ours"], calls, 1)
                await cpu_per_call(calls_of["ours"], calls, CONCURRENCY)
                prof.disable()
                prof.dump_stats(profile)
                print(f"profile of 'ours' written to {profile}")
                return
            # The best of several short interleaved rounds: on a shared machine other load only ever adds.
            best: dict[tuple[str, int, str], float] = {}
            for _ in range(rounds):
                for concurrency in (1, CONCURRENCY):
                    for name, call in calls_of.items():
                        process, loop = await cpu_per_call(call, calls, concurrency)
                        for scope, us in (("process", process), ("loop", loop)):
                            key = (name, concurrency, scope)
                            best[key] = min(best.get(key, us), us)
            print(f"CPU µs per call (client + server in one process, best of {rounds} rounds of {calls} calls)")
            print(f"{'scope':>8} {'concurrency':>12} {'bare':>8} {'ours':>8} {'ours/bare':>10} {'added':>8}")
            for scope in ("process", "loop"):
                for concurrency in (1, CONCURRENCY):
                    bare, ours = best[("bare", concurrency, scope)], best[("ours", concurrency, scope)]
                    print(f"{scope:>8} {concurrency:>12} {bare:>8.0f} {ours:>8.0f} {ours / bare:>10.2f} {ours - bare:>8.0f}")
        finally:
            await mesh.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the platform's calls here instead of timing")
    parser.add_argument("--log-level", default="info", help="LIKENESS_LOG_LEVEL of the services (info: a line per call)")
    args = parser.parse_args()
    # As run_service sets them up: JSON lines (to /dev/null here) and a tracer provider without exporter.
    configure_logging("privacy", args.log_level, stream=open(os.devnull, "w"))  # noqa: SIM115
    configure_tracing("privacy", "none")
    asyncio.run(main(args.calls, args.rounds, args.profile))
