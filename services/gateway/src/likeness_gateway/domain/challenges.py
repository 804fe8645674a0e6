"""Stateless challenges for App Attest: an expiry and random bytes, MAC'd with the gateway's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time


def _mac(key: bytes, body: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:18]).decode()


def issue(key: bytes, ttl_seconds: int, now: float | None = None) -> tuple[str, float]:
    """A fresh challenge and when it stops being accepted."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    body = f"c1.{expires}.{secrets.token_urlsafe(18)}"
    return f"{body}.{_mac(key, body)}", float(expires)


def valid(key: bytes, challenge: str, now: float | None = None) -> bool:
    """Whether `challenge` was issued with `key` and has not expired."""
    body, _, mac = challenge.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or parts[0] != "c1" or not parts[1].isdigit():
        return False
    if not hmac.compare_digest(mac, _mac(key, body)):
        return False
    return int(parts[1]) >= (time.time() if now is None else now)
