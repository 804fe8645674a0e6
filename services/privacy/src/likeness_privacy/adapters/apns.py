"""Push notifications through Apple Push Notification service with token-based authentication.

A provider token is an ES256 JWT (header `kid` = the key id, claims `iss` = the team id and `iat`) signed
with the .p8 key from Apple; Apple wants it renewed between 20 and 60 minutes, so it is reused for 40.
Requests go over HTTP/2 to `<host>/3/device/<token>` (httpx with the `h2` package); the device token and
the text never reach a log line or an error message.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from likeness_platform.errors import InvalidArgument, Unavailable

TOKEN_LIFETIME_SECONDS = 40 * 60


class PushUnavailable(Unavailable):
    default_code = "PUSH_UNAVAILABLE"


class PushTokenInvalid(InvalidArgument):
    """APNs says the device token is no longer valid (410, or 400 BadDeviceToken): forget it."""

    default_code = "PUSH_TOKEN_INVALID"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def provider_token(key_pem: bytes, key_id: str, team_id: str, issued_at: int) -> str:
    """The ES256 JWT APNs accepts as `authorization: bearer <token>`."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the APNs auth key must be a P-256 EC private key (.p8)")
    header = _b64url(json.dumps({"alg": "ES256", "kid": key_id}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"iss": team_id, "iat": issued_at}, separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return f"{header}.{claims}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass(frozen=True)
class ApnsConfig:
    host: str
    key_pem: bytes
    key_id: str
    team_id: str
    topic: str
    http2: bool = True
    timeout_seconds: float = 10.0


class ApnsSender:
    """Sends alert notifications; one HTTP/2 connection reused for every push."""

    def __init__(self, config: ApnsConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._client = httpx.AsyncClient(
            base_url=config.host.rstrip("/"), http2=config.http2, timeout=config.timeout_seconds, transport=transport
        )
        self._token = ""
        self._token_at = 0.0
        # Fails at start, not at the first incident, when the key is not usable.
        self._bearer()

    def __repr__(self) -> str:
        return f"ApnsSender(host={self.config.host!r}, key_id={self.config.key_id!r})"

    def _bearer(self) -> str:
        now = time.time()
        if not self._token or now - self._token_at > TOKEN_LIFETIME_SECONDS:
            self._token = provider_token(self.config.key_pem, self.config.key_id, self.config.team_id, int(now))
            self._token_at = now
        return self._token

    async def send(self, device_token: str, title: str, body: str, collapse_id: str = "") -> None:
        payload = {"aps": {"alert": {"title": title, "body": body}, "sound": "default"}}
        headers = {
            "authorization": f"bearer {self._bearer()}",
            "apns-topic": self.config.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
        }
        if collapse_id:
            headers["apns-collapse-id"] = collapse_id[:64]
        try:
            response = await self._client.post(f"/3/device/{device_token}", json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise PushUnavailable(f"APNs is not reachable ({type(exc).__name__})") from None
        if response.status_code == 200:
            return
        reason = ""
        try:
            reason = str(response.json().get("reason", ""))[:64]
        except ValueError:
            pass
        if response.status_code == 410 or reason in ("BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"):
            raise PushTokenInvalid(f"APNs refused the device token ({reason or response.status_code})")
        raise PushUnavailable(f"APNs answered {response.status_code} {reason}".strip())

    async def aclose(self) -> None:
        await self._client.aclose()
