"""bench/load's HTTP/1.1 client: Content-Length and chunked bodies, keep-alive, a server that closes,
the caller's source address, and a clear error for what is not HTTP."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _http1() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_http1", REPO / "bench" / "load" / "http1.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["_bench_http1"] = module
    spec.loader.exec_module(module)
    return module


http1 = _http1()
Answer = Callable[[bytes, bytes], bytes]  # (request head, body) -> raw reply


async def _serve(answer: Answer, log: list[tuple[str, bytes, bytes]]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
                body = await reader.readexactly(length)
                log.append((peer, head, body))
                reply = answer(head, body)
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.fixture
async def served() -> AsyncIterator[Callable[[Answer], asyncio.Future]]:
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> tuple[str, list[tuple[str, bytes, bytes]]]:
        log: list[tuple[str, bytes, bytes]] = []
        server = await _serve(answer, log)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", log

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def _json(head: bytes, body: bytes) -> bytes:
    payload = json.dumps({"path": head.split(b" ")[1].decode(), "got": len(body)}).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)


async def test_requests_share_one_connection_from_the_source_address(served) -> None:
    url, log = await served(_json)
    client = http1.Connection(url, "127.0.0.3", 5)
    first = await client.request("POST", "/v1/uploads", {"Content-Type": "image/jpeg"}, b"x" * 1000)
    second = await client.request("GET", "/v1/entitlements", {"Authorization": "Bearer t"})
    await client.close()
    assert first.is_success and first.json() == {"path": "/v1/uploads", "got": 1000}
    assert second.json()["path"] == "/v1/entitlements" and second.headers["content-type"] == "application/json"
    assert [peer for peer, _, _ in log] == ["127.0.0.3", "127.0.0.3"]
    assert b"Authorization: Bearer t" in log[1][1]


async def test_a_chunked_body_is_put_together(served) -> None:
    def chunked(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n"

    url, _ = await served(chunked)
    client = http1.Connection(url, "127.0.0.1", 5)
    reply = await client.request("GET", "/missing")
    assert reply.status_code == 404 and not reply.is_success and reply.content == b"hello world"
    # the connection is still good for the next request
    assert (await client.request("GET", "/again")).content == b"hello world"
    await client.close()


async def test_a_server_that_closes_gets_a_new_connection(served) -> None:
    def closing(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"

    url, log = await served(closing)
    client = http1.Connection(url, "127.0.0.1", 5)
    assert [(await client.request("GET", f"/{i}")).content for i in range(3)] == [b"ok"] * 3
    assert len(log) == 3


async def test_what_is_not_http_is_an_error_not_a_hang(served) -> None:
    url, _ = await served(lambda head, body: b"SSH-2.0-OpenSSH\r\n\r\n")
    client = http1.Connection(url, "127.0.0.1", 5)
    with pytest.raises(http1.HttpError, match=r"not an HTTP/1\.x reply"):
        await client.request("GET", "/")
    silent, _ = await served(lambda head, body: b"")
    slow = http1.Connection(silent, "127.0.0.1", 0.3)
    with pytest.raises(http1.HttpError, match="TimeoutError"):
        await slow.request("GET", "/")
    with pytest.raises(ValueError, match="only http"):
        http1.Connection("https://example.test", "127.0.0.1", 1)
