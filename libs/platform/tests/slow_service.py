"""A tiny service for the graceful-stop test: one RPC that takes a while, and says on stdout when it has begun."""

import asyncio
import sys

import grpc

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
    asyncio.run(serve_forever("slow", ServiceSettings(grpc_port=int(sys.argv[1]), metrics_port=-1, shutdown_grace_seconds=5), register))
