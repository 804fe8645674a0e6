"""Mail sent after the answer: a request never waits on (or shows the timing of) the mail server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from likeness_platform.logging import get_logger
from likeness_platform.mail import Mail, MailSender

log = get_logger("likeness.gateway.mail")


class MailOutbox:
    def __init__(self, sender: MailSender) -> None:
        self.sender = sender
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def configured(self) -> bool:
        return self.sender.configured

    def post(self, mail: Mail, kind: str) -> None:
        """Send `mail` in the background; `kind` (e.g. "verify_email") is all a failure logs."""

        async def ready() -> Mail:
            return mail

        self.post_job(ready, kind)

    def post_job(self, compose: Callable[[], Awaitable[Mail | None]], kind: str) -> None:
        """Compose a message (e.g. store a code, open an address) and send it, all after the answer: what the
        job does (or that it does nothing) never shows in the request's time."""
        task = asyncio.create_task(self._send(compose, kind))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, compose: Callable[[], Awaitable[Mail | None]], kind: str) -> None:
        try:
            mail = await compose()
            if mail is not None:
                await self.sender.send(mail)
        except Exception as exc:
            log.warning("mail_not_sent", kind=kind, error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait for mail still being handed over (graceful stop)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
