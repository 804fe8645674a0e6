"""Per-subject data keys under the KEK: a usable KEK or a clear error, and wrapping bound to its subject."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from likeness_privacy.domain import keys


def test_parse_kek_accepts_exactly_32_base64_bytes() -> None:
    raw = os.urandom(32)
    assert keys.parse_kek(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("", "LIKENESS_KEK is not set"),
        ("not base64!", "LIKENESS_KEK is not valid base64"),
        (base64.b64encode(b"x" * 16).decode(), "must decode to 32 bytes, got 16"),
        (base64.b64encode(b"x" * 33).decode(), "must decode to 32 bytes, got 33"),
    ],
)
def test_parse_kek_refuses_an_unusable_key_with_a_clear_message(encoded: str, message: str) -> None:
    with pytest.raises(keys.KeyError_) as info:
        keys.parse_kek(encoded)
    assert message in str(info.value)


def test_a_wrapped_key_opens_for_its_subject_only() -> None:
    kek, data_key = os.urandom(32), keys.new_data_key()
    wrapped = keys.wrap(kek, "subject-a", data_key)
    assert data_key not in wrapped
    assert keys.unwrap(kek, "subject-a", wrapped) == data_key
    # Moving a wrapped key to another subject's row does not give that subject the key.
    with pytest.raises(InvalidTag):
        keys.unwrap(kek, "subject-b", wrapped)
    with pytest.raises(InvalidTag):
        keys.unwrap(os.urandom(32), "subject-a", wrapped)


def test_a_flipped_bit_in_a_wrapped_key_is_refused() -> None:
    kek = os.urandom(32)
    wrapped = bytearray(keys.wrap(kek, "s", keys.new_data_key()))
    wrapped[-1] ^= 1
    with pytest.raises(InvalidTag):
        keys.unwrap(kek, "s", bytes(wrapped))


def test_data_keys_and_their_wrappings_are_fresh_each_time() -> None:
    kek, data_key = os.urandom(32), keys.new_data_key()
    assert len(data_key) == 32 and keys.new_data_key() != data_key
    # A fresh nonce per wrap: wrapping the same key twice gives different bytes.
    assert keys.wrap(kek, "s", data_key) != keys.wrap(kek, "s", data_key)


def test_a_retired_kek_is_used_only_inside_the_backup_window() -> None:
    from datetime import UTC, datetime

    from likeness_privacy.main import retired_keks

    raw = os.urandom(32)
    encoded = base64.b64encode(raw).decode()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert retired_keks({"k1": f"{encoded}@2026-02-01"}, 35, now) == {"k1": raw}
    assert retired_keks({"k1": f"{encoded}@2026-01-01"}, 35, now) == {}  # past the window: not used, destroy it
    with pytest.raises(keys.KeyError_, match="retirement date"):
        retired_keks({"k1": encoded}, 35, now)
    with pytest.raises(keys.KeyError_, match="not a date"):
        retired_keks({"k1": f"{encoded}@soon"}, 35, now)
