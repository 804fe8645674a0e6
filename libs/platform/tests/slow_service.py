"""A tiny service for the graceful-stop test: one RPC that takes a while, and says on stdout when it has begun."""

import asyncio
import sys
from pathlib import Path

import grpc

from likeness_platform.devpki import DevPki
from likeness_platform.policy import ANY_IDENTITY, POLICY
from likeness_platform.server import serve_forever
from likeness_platform.settings import ServiceSettings

IN_FLIGHT = "in-flight"


async def wait(request: bytes, context: object) -> bytes:
    # The test sends SIGTERM only once it reads this line, so the stop always meets a call in progress.
    print(IN_FLIGHT, flush=True)
    await asyncio.sleep(1.5)
    return b"finished:" + request


def register(server: grpc.aio.Server) -> list[str]:
    handler = grpc.method_handlers_generic_handler("test.Slow", {"Wait": grpc.unary_unary_rpc_method_handler(wait)})
    server.add_generic_rpc_handlers((handler,))
    return []


if __name__ == "__main__":
    # argv: gRPC port, plaintext health port, folder of the development PKI.
    tls = DevPki(Path(sys.argv[3])).ensure("render").settings()
    settings = ServiceSettings(grpc_port=int(sys.argv[1]), health_port=int(sys.argv[2]), metrics_port=-1, shutdown_grace_seconds=5, **tls)
    asyncio.run(serve_forever("slow", settings, register, rules={**POLICY, "/test.Slow/*": frozenset({ANY_IDENTITY})}))
