"""The SMTP adapter against a local fake server: delivery, refusals without the address in the error."""

from __future__ import annotations

import pytest

from likeness_platform.mail import Mail, MailSettings, MailUnavailable, SmtpMailSender, mail_sender
from tests.support.fake_smtp import FakeSmtp


async def test_a_message_reaches_the_server() -> None:
    async with FakeSmtp() as smtp:
        sender = SmtpMailSender("127.0.0.1", smtp.port, "Likeness <no-reply@example.org>", security="none")
        await sender.send(Mail("ana@example.org", "Your code", "Your code is 123456.\n.\nend"))
        got = await smtp.next()
    assert got.recipients == ["ana@example.org"]
    assert got.message["Subject"] == "Your code"
    assert got.message["From"] == "Likeness <no-reply@example.org>"
    # A line holding only a dot survives SMTP's dot-stuffing.
    assert got.body.splitlines() == ["Your code is 123456.", ".", "end"]


async def test_a_refused_message_raises_without_quoting_the_address() -> None:
    async with FakeSmtp(refuse=True) as smtp:
        sender = SmtpMailSender("127.0.0.1", smtp.port, "no-reply@example.org", security="none")
        with pytest.raises(MailUnavailable) as caught:
            await sender.send(Mail("ana@example.org", "s", "b"))
    assert "ana" not in str(caught.value)
    assert "ana" not in repr(Mail("ana@example.org", "s", "b"))


async def test_an_unreachable_server_is_unavailable() -> None:
    async with FakeSmtp() as smtp:
        port = smtp.port
    sender = SmtpMailSender("127.0.0.1", port, "no-reply@example.org", security="none", timeout=2)
    with pytest.raises(MailUnavailable):
        await sender.send(Mail("ana@example.org", "s", "b"))


def test_settings_pick_the_adapter() -> None:
    assert not mail_sender(MailSettings()).configured
    configured = mail_sender(MailSettings(smtp_host="mail.example.org", smtp_port=465, smtp_security="tls"))
    assert configured.configured and (configured.port, configured.security) == (465, "tls")
    with pytest.raises(ValueError):
        SmtpMailSender("h", 25, "a@b", security="ssl3")
