"""Keyed hashes that let billing recognise a transaction again without keeping its id.

Without the key a hash links to nothing; with it, only a transaction id already in hand can
be matched. The domain separation prefix keeps these hashes useless for any other purpose.
"""

from __future__ import annotations

import hashlib
import hmac

_TRANSACTION_PREFIX = b"likeness.billing.transaction.v1:"
MIN_KEY_BYTES = 32


def check_key(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the ledger key must be at least {MIN_KEY_BYTES} bytes")
    return key


def transaction_hash(key: bytes, transaction_id: str) -> bytes:
    return hmac.new(key, _TRANSACTION_PREFIX + transaction_id.encode(), hashlib.sha256).digest()
