"""Device registration, token rotation and revocation."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictBool

from likeness_gateway.deps import CurrentDevice, Gateway, GatewayDep, bearer_token, client_ip, ip_bucket
from likeness_gateway.domain import challenges
from likeness_gateway.domain.appattest import AttestationError, verify_attestation
from likeness_gateway.domain.text import PRINTABLE
from likeness_gateway.domain.tokens import new_token, token_hash
from likeness_gateway.errors import ApiError

router = APIRouter(tags=["devices"])
NO_STORE = {"Cache-Control": "no-store"}


class DeviceRegistration(BaseModel):
    """Only what the apps' privacy policies allow is accepted and kept."""

    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "platform": "ios",
                    "model": "iPhone15,2",
                    "os_version": "18.1",
                    "app_version": "2.3.0",
                    "language": "en-GB",
                    "age_confirmed": True,
                }
            ]
        },
    }

    platform: Literal["ios", "android", "web"]
    model: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    os_version: str = Field(min_length=1, max_length=32, pattern=PRINTABLE)
    app_version: str = Field(min_length=1, max_length=32, pattern=PRINTABLE)
    language: str = Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")
    attestation: AttestationIn | None = None
    # Strict: only JSON true/false; "yes", 1 and "true" are refused.
    age_confirmed: StrictBool = Field(
        description="The user confirmed being 13 or older (JSON true or false). Devices that do not are refused and nothing is stored."
    )


class AttestationIn(BaseModel):
    """iOS App Attest, required from iOS devices when the server is configured for it."""

    model_config = {"extra": "forbid"}

    challenge: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$", description="From POST /v1/devices/challenge")
    key_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9+/=_-]+$", description="The App Attest key id (base64)")
    attestation_object: str = Field(min_length=1, max_length=16384, pattern=r"^[A-Za-z0-9+/=_-]+$", description="base64")


class DeviceRegistered(BaseModel):
    device_id: str
    token: str = Field(description="Shown once; send it as 'Authorization: Bearer <token>'. Only its hash is stored.")
    # No subject_id: the internal id that keys a person's data across services never leaves the mesh.
    expires_at: str = Field(description="When the token stops working; rotate it before then with POST /v1/devices/token:rotate")


class TokenRotated(BaseModel):
    device_id: str
    token: str = Field(description="The new token; the old one stopped working. Shown once.")
    expires_at: str


def network_prefix(ip: str, v6_bits: int = 64) -> str:
    """The caller's network: its /24 (IPv4) or /`v6_bits` (IPv6), so one host cannot act from many addresses."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


async def _throttle_registration(gw: Gateway, ip: str) -> None:
    for bucket, limit, window, scope in (
        ("reg:" + ip_bucket(gw, network_prefix(ip)), gw.settings.registrations_per_prefix_per_hour, 3600, "network"),
        ("reg:global", gw.settings.registrations_per_minute, 60, "global"),
    ):
        retry = await gw.limiter.hit(bucket, limit, window)
        if retry:
            raise ApiError(
                429,
                "RATE_LIMITED",
                "too many devices registered from this network; try again later"
                if scope == "network"
                else "too many devices are registering right now; try again later",
                {"scope": f"registration_{scope}"},
                {"Retry-After": str(retry)},
            )


class Challenge(BaseModel):
    challenge: str
    expires_at: str


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (ValueError, binascii.Error):
        raise ApiError(400, "INVALID_ATTESTATION", "key_id and attestation_object must be base64") from None


def _reused() -> ApiError:
    return ApiError(409, "ATTESTATION_REUSED", "this App Attest key already registered a device; generate a new key")


async def _attested_key(gw: Gateway, body: DeviceRegistration) -> str | None:
    """With App Attest configured, an iOS registration must prove a genuine app; the key id it attests."""
    settings = gw.settings
    if not (settings.app_attest_app_id and settings.app_attest_root_pem):
        return None
    att = body.attestation
    if att is None:
        raise ApiError(403, "ATTESTATION_REQUIRED", "iOS devices must send an App Attest attestation; get a challenge first")
    if not challenges.valid(gw.bucket_key, att.challenge):
        raise ApiError(403, "ATTESTATION_INVALID", "the challenge is unknown or expired; get a new one")
    key_id, attestation = _b64(att.key_id), _b64(att.attestation_object)
    try:
        root = x509.load_pem_x509_certificate(settings.app_attest_root_pem.encode())
        verify_attestation(attestation, att.challenge.encode(), key_id, settings.app_attest_app_id, root, datetime.now(UTC))
    except AttestationError as exc:
        raise ApiError(403, "ATTESTATION_INVALID", str(exc)) from None
    stored = base64.b64encode(key_id).decode()
    if await gw.devices.attest_key_used(stored):
        raise _reused()
    return stored


@router.post("/v1/devices/challenge", response_model=Challenge, summary="A one-time challenge for iOS App Attest registration")
async def new_challenge(response: Response, gw: GatewayDep) -> Challenge:
    response.headers.update(NO_STORE)
    challenge, expires = challenges.issue(gw.bucket_key, gw.settings.attest_challenge_seconds)
    return Challenge(challenge=challenge, expires_at=datetime.fromtimestamp(expires, UTC).isoformat())


@router.post("/v1/devices", status_code=201, response_model=DeviceRegistered, summary="Register a device and get its token")
async def register_device(body: DeviceRegistration, request: Request, response: Response, gw: GatewayDep) -> DeviceRegistered:
    response.headers.update(NO_STORE)
    if not body.age_confirmed:
        # Invariant 6: nothing is stored about a user under 13, not even a subject.
        raise ApiError(403, "AGE_NOT_CONFIRMED", "users under 13 cannot use this service; nothing was stored")
    ip = client_ip(request)
    await _throttle_registration(gw, ip)
    attest_key_id = await _attested_key(gw, body) if body.platform == "ios" else None
    registered = await gw.privacy.register_subject(minor=False)
    subject_id = registered.subject.subject_id
    token = new_token()
    ttl = timedelta(days=gw.settings.token_ttl_days)
    info = body.model_dump(exclude={"age_confirmed", "attestation"})
    try:
        device = await gw.devices.add(subject_id, token_hash(token), info, ttl, attest_key_id)
    except KeyError:
        raise _reused() from None
    await gw.privacy.record_security_event(subject_id, "device_registered", ip)
    assert device.expires_at is not None
    return DeviceRegistered(device_id=device.device_id, token=token, expires_at=device.expires_at.isoformat())


@router.post(
    "/v1/devices/token:rotate",
    response_model=TokenRotated,
    summary="Replace the device's token with a new one (the old one stops at once)",
)
async def rotate_token(request: Request, response: Response, device: CurrentDevice, gw: GatewayDep) -> TokenRotated:
    response.headers.update(NO_STORE)
    token = new_token()
    if not await gw.devices.rotate(
        device.device_id, token_hash(bearer_token(request)), token_hash(token), timedelta(days=gw.settings.token_ttl_days)
    ):
        raise ApiError(401, "UNAUTHENTICATED", "the token is not valid (unknown, revoked, or its data was deleted)")
    rotated = await gw.devices.get(device.device_id)
    assert rotated is not None and rotated.expires_at is not None
    await gw.privacy.record_security_event(device.subject_id, "token_rotated", client_ip(request))
    return TokenRotated(device_id=device.device_id, token=token, expires_at=rotated.expires_at.isoformat())


@router.delete("/v1/devices/current", status_code=204, summary="Revoke this device's token (the device is forgotten)")
async def revoke_device(request: Request, device: CurrentDevice, gw: GatewayDep) -> Response:
    await gw.devices.revoke(device.device_id)
    await gw.privacy.record_security_event(device.subject_id, "device_revoked", client_ip(request))
    return Response(status_code=204)
