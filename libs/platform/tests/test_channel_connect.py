"""A mesh channel (clients.open_channel) whose peer was down when it first tried: the next call made once
the peer serves waits for the connection instead of failing at once in the reconnect backoff's gap."""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
import pytest

from likeness_platform.clients import CONNECT_GRACE_SECONDS, open_channel
from likeness_platform.devpki import DevPki
from likeness_platform.policy import ANY_IDENTITY, POLICY
from likeness_platform.server import RunningServer, start_server
from likeness_platform.settings import ServiceSettings


async def _echo(request: bytes, context: object) -> bytes:
    return b"ok:" + request


def _register(server: grpc.aio.Server) -> list[str]:
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Late", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}),)
    )
    return []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_peer_that_comes_up_after_failed_tries_is_used_at_once(pki: DevPki) -> None:
    port = _free_port()
    settings = ServiceSettings(grpc_port=port, metrics_port=-1, health_port=-1, **pki.ensure("render").settings())
    channel = open_channel(f"127.0.0.1:{port}", "tester", settings, deadline=10.0)
    echo = channel.unary_unary("/test.Late/Echo")
    running: RunningServer | None = None
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # the peer is down: each call waits the grace, then fails
            with pytest.raises(grpc.aio.AioRpcError) as down:
                await asyncio.wait_for(echo(b"x"), 10)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        rules = {**POLICY, "/test.Late/*": frozenset({ANY_IDENTITY})}
        running = await start_server("late", settings, _register, rules=rules)
        assert await echo(b"hi") == b"ok:hi"
    finally:
        await channel.close()
        if running is not None:
            await running.stop(0)


async def test_a_peer_that_stays_down_costs_the_grace_not_the_deadline(pki: DevPki) -> None:
    port = _free_port()
    settings = ServiceSettings(grpc_port=port, metrics_port=-1, health_port=-1, **pki.ensure("render").settings())
    channel = open_channel(f"127.0.0.1:{port}", "tester", settings, deadline=60.0)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await channel.unary_unary("/test.Late/Echo")(b"x")
        waited = time.monotonic() - started
    finally:
        await channel.close()
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert CONNECT_GRACE_SECONDS - 0.5 < waited < CONNECT_GRACE_SECONDS + 5.0
