"""A development PKI for the platform tests (one CA per session), and a one-method plaintext server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from likeness_platform.devpki import DevPki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return DevPki(Path(tmp_path_factory.mktemp("pki")))


OneMethod = Callable[
    [grpc.aio.ServerInterceptor, str, Callable[[bytes, Any], Awaitable[bytes]]], contextlib.AbstractAsyncContextManager[Any]
]


@pytest.fixture
def one_method() -> OneMethod:
    """`async with one_method(interceptor, "/test.Svc/Method", behaviour) as call`: a plaintext loopback server
    with that one unary method behind `interceptor`, and the client's callable for it; stopped on exit."""

    @contextlib.asynccontextmanager
    async def serve(
        interceptor: grpc.aio.ServerInterceptor, method: str, behaviour: Callable[[bytes, Any], Awaitable[bytes]]
    ) -> AsyncIterator[Any]:
        service, name = method.strip("/").split("/")
        server = grpc.aio.server(interceptors=[interceptor])
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {name: grpc.unary_unary_rpc_method_handler(behaviour)}),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                yield channel.unary_unary(method)
        finally:
            await server.stop(None)

    return serve
