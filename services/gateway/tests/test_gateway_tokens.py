"""Device tokens: high-entropy, prefixed, and stored as their SHA-256 only."""

from __future__ import annotations

import base64
import hashlib

from likeness_gateway.domain.tokens import PREFIX, new_token, token_hash


def test_a_token_carries_256_random_bits_behind_its_prefix() -> None:
    token = new_token()
    assert token.startswith(PREFIX)
    body = token.removeprefix(PREFIX)
    assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == 32
    assert len({new_token() for _ in range(1000)}) == 1000


def test_the_stored_hash_is_sha256_of_the_whole_token() -> None:
    token = "lk_" + "A" * 43
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hash(token) == token_hash(token)
    # One character off, or the prefix dropped, is another token.
    assert token_hash(token[:-1] + "B") != token_hash(token)
    assert token_hash(token.removeprefix(PREFIX)) != token_hash(token)
