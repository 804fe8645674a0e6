"""Per-subject data keys wrapped under the key-encryption key (KEK)."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyError_(ValueError):
    pass


def parse_kek(encoded: str) -> bytes:
    """The 32-byte KEK from its base64 setting; a clear error when it is unusable."""
    if not encoded:
        raise KeyError_(
            "LIKENESS_KEK is not set: privacy needs a base64-encoded 32-byte key-encryption key "
            "(generate one with: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
        )
    try:
        kek = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise KeyError_("LIKENESS_KEK is not valid base64") from exc
    if len(kek) != 32:
        raise KeyError_(f"LIKENESS_KEK must decode to 32 bytes, got {len(kek)}")
    return kek


def new_data_key() -> bytes:
    """A fresh 256-bit data key."""
    return os.urandom(32)


def wrap(kek: bytes, subject_id: str, key: bytes) -> bytes:
    """Encrypt a data key under the KEK, bound to its subject."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, key, b"likeness-data-key:" + subject_id.encode())


def unwrap(kek: bytes, subject_id: str, wrapped: bytes) -> bytes:
    """Decrypt a wrapped data key."""
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], b"likeness-data-key:" + subject_id.encode())


def seal_subject(kek: bytes, erasure_id: str, subject_id: str) -> bytes:
    """A subject id kept for an erasure's re-verification, sealed under the KEK and bound to the erasure."""
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, subject_id.encode(), b"likeness-reverify:" + erasure_id.encode())


def open_subject(kek: bytes, erasure_id: str, sealed: bytes) -> str:
    return AESGCM(kek).decrypt(sealed[:12], sealed[12:], b"likeness-reverify:" + erasure_id.encode()).decode()
