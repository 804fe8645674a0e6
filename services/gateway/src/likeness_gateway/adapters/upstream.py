"""Shared mechanics of the gateway's upstream modules: channels and error translation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from likeness_gateway.errors import from_rpc_error
from likeness_platform.clients import open_channel
from likeness_platform.settings import ServiceSettings

T = TypeVar("T")


class Upstream:
    """A channel to one service plus its name for error messages."""

    def __init__(self, name: str, address: str, settings: ServiceSettings, deadline: float) -> None:
        self.name = name
        self.channel = open_channel(address, "gateway", settings, deadline=deadline)

    async def call(self, pending: Awaitable[T]) -> T:
        """Await an upstream call, turning gRPC failures into API errors."""
        try:
            return await pending
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.name) from None

    async def healthy(self) -> bool:
        """Whether the service reports SERVING."""
        try:
            response = await health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return response.status == health_pb2.HealthCheckResponse.SERVING

    async def close(self) -> None:
        await self.channel.close()


async def first_then_rest(stream: Any) -> AsyncIterator[bytes]:
    """Read a chunk stream's first message now (so errors come before a response starts), the rest lazily."""
    first = await stream.read()

    async def rest() -> AsyncIterator[bytes]:
        message = first
        while message is not grpc.aio.EOF:
            yield message.chunk
            message = await stream.read()

    return rest()
