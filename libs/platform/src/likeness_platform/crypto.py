"""AES-256-GCM envelopes for data at rest, and a short-lived cache of subjects' data keys."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cachetools import TTLCache
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from likeness_platform.errors import FailedPrecondition

_MAGIC = b"LKN1"
_NONCE = 12


class DecryptionFailed(FailedPrecondition):
    default_code = "DECRYPTION_FAILED"


def seal(key: bytes, plaintext: bytes, key_id: str, associated: bytes) -> bytes:
    """Encrypt with AES-256-GCM; `associated` (e.g. the blob name) is authenticated, not stored."""
    if len(key) != 32:
        raise ValueError("AES-256 needs a 32-byte key")
    kid = key_id.encode()
    if len(kid) > 255:
        raise ValueError("key id too long")
    nonce = os.urandom(_NONCE)
    header = _MAGIC + bytes([len(kid)]) + kid
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + associated)


def open_sealed(key: bytes, blob: bytes, associated: bytes) -> bytes:
    """Decrypt an envelope made by `seal`; raises DecryptionFailed on any mismatch."""
    if not blob.startswith(_MAGIC) or len(blob) < 5:
        raise DecryptionFailed("not a Likeness envelope")
    header_len = 5 + blob[4]
    header, nonce, body = blob[:header_len], blob[header_len : header_len + _NONCE], blob[header_len + _NONCE :]
    try:
        return AESGCM(key).decrypt(nonce, body, header + associated)
    except Exception as exc:  # cryptography raises InvalidTag; keep the reason generic
        raise DecryptionFailed("ciphertext cannot be decrypted with this key") from exc


@dataclass(frozen=True)
class DataKey:
    key: bytes
    key_id: str

    def __repr__(self) -> str:  # never show key bytes, even in tracebacks
        return f"DataKey(key_id={self.key_id!r})"


class DataKeyCache:
    """Caches unwrapped data keys in memory for a few seconds (a bounded TTL cache); never persists them."""

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[DataKey]],
        ttl_seconds: float = 30.0,
        max_keys: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._keys: TTLCache[str, DataKey] = TTLCache(maxsize=max_keys, ttl=ttl_seconds, timer=timer)

    async def get(self, subject_id: str) -> DataKey:
        """The subject's key, from cache or from privacy."""
        hit = self._keys.get(subject_id)
        if hit is not None:
            return hit
        key = await self._fetch(subject_id)
        self._keys[subject_id] = key
        return key

    def forget(self, subject_id: str) -> None:
        """Drop a subject's key (on erasure)."""
        self._keys.pop(subject_id, None)
