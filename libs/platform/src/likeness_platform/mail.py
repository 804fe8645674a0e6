"""Sending email: a port (`MailSender`) and its SMTP adapter on the standard library's smtplib.

Services that write to people (account codes, notices) depend on the port; the composition root picks the
adapter from `MailSettings`. Nothing here logs an address or a message body: both are personal data.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Literal, Protocol

from likeness_platform.errors import Unavailable
from likeness_platform.settings import ServiceSettings


@dataclass(frozen=True)
class Mail:
    """One plain-text message to one recipient."""

    to: str
    subject: str
    body: str

    def __repr__(self) -> str:  # the address and the text are personal data: never in a traceback or log line
        return "Mail(…)"


class MailUnavailable(Unavailable):
    default_code = "MAIL_UNAVAILABLE"


class MailSender(Protocol):
    """Where messages to people go out."""

    @property
    def configured(self) -> bool:
        """False when no server is set up: callers refuse flows that need mail instead of losing it."""
        ...

    async def send(self, mail: Mail) -> None:
        """Hand `mail` to the server; MailUnavailable when it cannot be delivered there."""
        ...


class MailSettings(ServiceSettings):
    """A service that sends email: its SMTP server (`LIKENESS_SMTP_*`) and sender address."""

    # Empty = no mail server: flows that need one answer "unavailable" (nothing is sent or queued).
    smtp_host: str = ""
    smtp_port: int = 587
    # starttls (port 587), tls (implicit TLS, port 465), or none (a relay on loopback or in the pod only).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    # PEM bundle to trust for the server's certificate; empty = the system's trust store.
    smtp_ca_file: str = ""
    mail_from: str = "Likeness <no-reply@likeness.invalid>"
    mail_timeout_seconds: float = 20.0


class SmtpMailSender:
    """Sends through an SMTP server with smtplib, in a worker thread so the event loop never waits on the network."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        security: str = "starttls",
        username: str = "",
        password: str = "",
        timeout: float = 20.0,
        ca_file: str = "",
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError(f"smtp security must be starttls, tls or none, got {security!r}")
        self.host, self.port, self.sender, self.security = host, port, sender, security
        self._username, self._password, self.timeout, self._ca_file = username, password, timeout, ca_file

    def __repr__(self) -> str:
        return f"SmtpMailSender(host={self.host!r}, port={self.port}, security={self.security!r})"

    @property
    def configured(self) -> bool:
        return bool(self.host)

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_file or None)

    def _send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Message-ID"] = make_msgid(domain="likeness.invalid")
        message.set_content(mail.body)
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._context())
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException, UnicodeError, ValueError) as exc:
            # The server's reply can quote the recipient: only the exception's type goes further. UnicodeError and
            # ValueError: an address the server cannot take (non-ASCII without SMTPUTF8, a malformed header).
            raise MailUnavailable(f"the mail server did not accept the message ({type(exc).__name__})") from None


def mail_sender(settings: MailSettings) -> SmtpMailSender:
    """The SMTP adapter configured by `settings` (not `configured` when no host is set)."""
    return SmtpMailSender(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        settings.smtp_security,
        settings.smtp_username,
        settings.smtp_password,
        settings.mail_timeout_seconds,
        settings.smtp_ca_file,
    )
