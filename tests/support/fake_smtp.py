"""A small SMTP server for tests: it speaks enough of RFC 5321 for smtplib (EHLO/HELO, MAIL, RCPT, DATA,
RSET, NOOP, QUIT), keeps every accepted message, and can be told to refuse recipients."""

from __future__ import annotations

import asyncio
import email
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        return str(self.message.get_content())


@dataclass
class FakeSmtp:
    """`async with FakeSmtp() as smtp:` listens on a free loopback port (`smtp.port`)."""

    host: str = "127.0.0.1"
    port: int = 0
    refuse: bool = False
    received: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> FakeSmtp:
        self._server = await asyncio.start_server(self._session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def next(self, timeout: float = 10.0) -> Received:
        """The next message accepted, waiting up to `timeout` seconds."""
        return await asyncio.wait_for(self.received.get(), timeout)

    def drain(self) -> list[Received]:
        """Every message accepted and not yet taken."""
        out = []
        while not self.received.empty():
            out.append(self.received.get_nowait())
        return out

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def reply(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        reply("220 fake-smtp ready")
        sender, recipients = "", list[str]()
        try:
            while line := (await reader.readline()).decode(errors="replace").rstrip("\r\n"):
                verb = line[:4].upper()
                if verb == "EHLO":
                    reply("250-fake-smtp")
                    reply("250 8BITMIME")
                elif verb == "HELO":
                    reply("250 fake-smtp")
                elif verb == "MAIL":
                    sender, recipients = line.partition(":")[2].strip().strip("<>"), []
                    reply("250 ok")
                elif verb == "RCPT":
                    if self.refuse:
                        reply("550 no such user")
                    else:
                        recipients.append(line.partition(":")[2].strip().strip("<>"))
                        reply("250 ok")
                elif verb == "DATA":
                    reply("354 end with <CRLF>.<CRLF>")
                    await writer.drain()
                    lines = []
                    while (data := await reader.readline()) not in (b".\r\n", b".\n", b""):
                        lines.append(data[1:] if data.startswith(b"..") else data)
                    parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                    assert isinstance(parsed, EmailMessage)
                    self.received.put_nowait(Received(sender, recipients, parsed))
                    reply("250 queued")
                elif verb == "QUIT":
                    reply("221 bye")
                    break
                elif verb in ("RSET", "NOOP"):
                    reply("250 ok")
                else:
                    reply("502 not implemented")
                await writer.drain()
        finally:
            await writer.drain()
            writer.close()
