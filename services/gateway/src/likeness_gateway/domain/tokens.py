"""Device tokens: random, shown once, stored only as a hash."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "lk_"


def new_token() -> str:
    """A fresh bearer token (256 random bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored: SHA-256 of the token (tokens are high-entropy, so no slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
