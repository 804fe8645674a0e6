"""Text messages through a generic HTTPS SMS gateway (the Twilio-style API most providers offer).

One form POST per message to `<base_url>/Accounts/<account_id>/Messages.json` with `To`, `From` and `Body`, HTTP
basic auth with the account id and token. Any 2xx is sent; a 4xx that names the number (400 / 404) means the
number cannot be reached, anything else that the gateway is unavailable. The phone number and the text never reach a
log line or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from likeness_platform.errors import InvalidArgument, Unavailable


class SmsUnavailable(Unavailable):
    default_code = "SMS_UNAVAILABLE"


class SmsNumberRefused(InvalidArgument):
    """The gateway refused the recipient's number (not a mobile, unknown, blocked)."""

    default_code = "SMS_NUMBER_REFUSED"


@dataclass(frozen=True)
class SmsConfig:
    base_url: str
    account_id: str
    token: str
    from_number: str
    timeout_seconds: float = 10.0


class SmsSender:
    """Sends text messages; one HTTP connection pool reused for every message."""

    def __init__(self, config: SmsConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not config.base_url.startswith(("https://", "http://")):
            raise ValueError("the SMS gateway base URL must be an https:// URL (http:// only for a local test gateway)")
        self.config = config
        self._client = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            auth=httpx.BasicAuth(config.account_id, config.token),
            timeout=config.timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        # Never the token.
        return f"SmsSender(base_url={self.config.base_url!r}, account_id={self.config.account_id!r})"

    async def send(self, to: str, body: str) -> None:
        path = f"/Accounts/{quote(self.config.account_id, safe='')}/Messages.json"
        form = {"To": to, "From": self.config.from_number, "Body": body}
        try:
            response = await self._client.post(path, data=form)
        except httpx.HTTPError as exc:
            raise SmsUnavailable(f"the SMS gateway is not reachable ({type(exc).__name__})") from None
        if response.is_success:
            return
        if response.status_code in (400, 404):
            raise SmsNumberRefused(f"the SMS gateway refused the message ({response.status_code})")
        raise SmsUnavailable(f"the SMS gateway answered {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()
