"""A minimal HTTP/1.1 client for bench/load: one keep-alive connection per virtual user, from its own
source address, requests one at a time.

bench/load's client shares the two cores with the mesh it measures, so what it spends per photo is
taken from the services: httpx spent 8-10 CPU ms per photo (about 4 requests); this spends a
fraction of that, so the run measures the services. It speaks only what the gateway answers with:
Content-Length or chunked bodies, keep-alive, and `Connection: close` (then it reconnects).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


class HttpError(Exception):
    """The connection failed or the reply was not HTTP/1.1 as expected."""


@dataclass
class Reply:
    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    def __init__(self, base_url: str, source: str, timeout_s: float) -> None:
        url = urlparse(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"only http://host:port URLs, not {base_url!r}")
        self.host, self.port = url.hostname, url.port or 80
        self.source, self.timeout_s = source, timeout_s
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Reply:
        try:
            return await asyncio.wait_for(self._exchange(method, path, headers or {}, body), self.timeout_s)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            await self.close()
            raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0))
        reader, writer = self._streams
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *fields = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise ValueError(f"not an HTTP/1.x reply: {status_line[:80]!r}")
        reply_headers = {}
        for field in fields:
            name, _, value = field.partition(":")
            reply_headers[name.strip().lower()] = value.strip()
        if "chunked" in reply_headers.get("transfer-encoding", "").lower():
            content = await _chunked(reader)
        elif "content-length" in reply_headers:
            content = await reader.readexactly(int(reply_headers["content-length"]))
        elif method == "HEAD" or code in ("204", "304"):
            content = b""
        else:  # delimited by the end of the connection
            content = await reader.read()
            reply_headers["connection"] = "close"
        if reply_headers.get("connection", "").lower() == "close":
            await self.close()
        return Reply(int(code), reply_headers, content)

    async def close(self) -> None:
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
