"""What the routes depend on, wired once by the composition root and read from app.state."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from likeness_gateway.adapters.accounts import AccountRepository
from likeness_gateway.adapters.billing_client import BillingClient
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.adapters.idempotency import IdempotencyKeys
from likeness_gateway.adapters.ingestion_client import IngestionClient
from likeness_gateway.adapters.outbox import MailOutbox
from likeness_gateway.adapters.privacy_client import PrivacyClient
from likeness_gateway.adapters.ratelimit import RateLimiter
from likeness_gateway.adapters.render_client import RenderClient
from likeness_gateway.adapters.upstream import Upstream
from likeness_gateway.domain.devices import Device
from likeness_gateway.domain.inline_store import InlineImages
from likeness_gateway.domain.passwords import PasswordRules, Passwords
from likeness_gateway.domain.tokens import token_hash
from likeness_gateway.errors import ApiError
from likeness_gateway.settings import GatewaySettings
from likeness_platform import callcontext


@dataclass
class Accounts:
    """What the account routes need; absent when accounts are off (no account key or no mail server)."""

    repo: AccountRepository
    passwords: Passwords
    rules: PasswordRules
    outbox: MailOutbox
    # Keys the lookup hash of addresses, and the hashes of one-time codes (derived from LIKENESS_ACCOUNT_KEY).
    lookup_key: bytes
    code_key: bytes


@dataclass
class Gateway:
    settings: GatewaySettings
    devices: DeviceRepository
    privacy: PrivacyClient
    ingestion: IngestionClient
    billing: BillingClient
    render: RenderClient
    limiter: RateLimiter
    inline_images: InlineImages
    idempotency: IdempotencyKeys
    # Keys rate-limit buckets so no raw IP sits in Redis or memory.
    bucket_key: bytes
    # Every upstream, by name, for readiness.
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    # Email + password accounts; None when not configured.
    accounts: Accounts | None = None
    # Generations running now, per device id (bounded by max_concurrent_generations_per_device).
    running: dict[str, int] = field(default_factory=dict)


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The caller's address; X-Forwarded-For only counts behind configured trusted proxies."""
    peer = request.client.host if request.client else "0.0.0.0"
    return forwarded_ip(gateway(request).settings.trusted_proxies, request.headers.get("x-forwarded-for", ""), peer)


def forwarded_ip(trusted_proxies: int, forwarded: str, peer: str) -> str:
    """The address `trusted_proxies` hops back in X-Forwarded-For (each trusted proxy appends the address it saw);
    the connection's peer when no proxy is trusted or the header is too short."""
    if trusted_proxies and forwarded:
        chain = [part.strip() for part in forwarded.split(",") if part.strip()]
        if len(chain) >= trusted_proxies:
            return chain[-trusted_proxies]
    return peer


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "UNAUTHENTICATED", "send the device token as 'Authorization: Bearer <token>'")
    return token.strip()


async def current_device(request: Request) -> Device:
    """The device behind the Bearer token; 401 when missing, unknown, revoked, expired or erased."""
    device = await _device(request, allow_inactive=False)
    await _device_limit(request, device)
    return device


async def erasing_device(request: Request) -> Device:
    """Like current_device, but a token already stopped (by an erasure or revocation) still names its device:
    `DELETE /v1/me` retried after a failure must find the erasure it started."""
    device = await _device(request, allow_inactive=True)
    await _device_limit(request, device)
    return device


async def _device(request: Request, allow_inactive: bool) -> Device:
    device = await gateway(request).devices.by_token_hash(token_hash(bearer_token(request)))
    if device is None or not (allow_inactive or device.active):
        raise ApiError(401, "UNAUTHENTICATED", "the token is not valid (unknown, revoked, or its data was deleted)")
    if device.expires_at is not None and device.expires_at <= datetime.now(UTC):
        raise ApiError(401, "TOKEN_EXPIRED", "the token has expired; register the device again")
    request.state.device = device
    # Render counts the call under the app's version in the usage statistics (no device id goes with it).
    callcontext.app_version_var.set(device.app_version)
    return device


async def _device_limit(request: Request, device: Device) -> None:
    gw = gateway(request)
    limit = gw.settings.rate_limit_device_per_minute
    if limit <= 0:
        # No per-device limit (a benchmark or a trusted set-up): nothing to count, so no call to Redis.
        return
    retry = await gw.limiter.hit("device:" + device.device_id, limit)
    if retry:
        raise ApiError(
            429, "RATE_LIMITED", "too many requests from this device; slow down", {"scope": "device"}, {"Retry-After": str(retry)}
        )


def ip_bucket(gw: Gateway, ip: str) -> str:
    """Rate-limit bucket name for an IP: a keyed hash, never the address itself."""
    return "ip:" + hmac.new(gw.bucket_key, ip.encode(), hashlib.sha256).hexdigest()[:32]


async def _gateway_dependency(request: Request) -> Gateway:
    """`gateway` as a route dependency: a coroutine, so FastAPI calls it in the event loop instead of handing a
    plain function to its thread pool (a thread switch on every request, for one attribute read)."""
    return gateway(request)


# What a route declares to get the gateway, and the caller's device (401 without a valid token).
GatewayDep = Annotated[Gateway, Depends(_gateway_dependency)]
CurrentDevice = Annotated[Device, Depends(current_device)]
ErasingDevice = Annotated[Device, Depends(erasing_device)]
