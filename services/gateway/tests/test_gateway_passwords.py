"""Password rules, argon2id hashing with the configured parameters, codes and lookup hashes (no I/O)."""

from __future__ import annotations

import os

from argon2 import extract_parameters

from likeness_gateway.domain.accounts import CodePurpose, code_hash, email_lookup_hash, new_code, normalize_email
from likeness_gateway.domain.passwords import PasswordRules, Passwords, common_passwords


def test_the_common_password_list_ships_with_the_code() -> None:
    listed = common_passwords()
    assert len(listed) > 25_000
    assert {"password", "123456", "qwerty", "dragon", "letmein"} <= listed


def test_rules_refuse_short_common_decorated_and_email_like_passwords() -> None:
    rules = PasswordRules(min_length=12)
    assert rules.problems("short1!") == ["too_short"]
    assert "common_password" in rules.problems("baseball")
    # A common word dressed up with digits and symbols is still the common word.
    assert rules.problems("Baseball2024!!") == ["common_password"]
    assert rules.problems("aaaaaaaaaaaaaaaa") == ["too_few_distinct_characters"]
    assert rules.problems("ana.lopez-garden-77", "Ana.Lopez@example.org") == ["contains_email"]
    assert rules.problems("x" * 300 + "abcdef") == ["too_long"]
    assert rules.problems("correct horse battery staple", "ana@example.org") == []


def test_hashes_are_argon2id_with_the_configured_parameters() -> None:
    passwords = Passwords(time_cost=2, memory_kib=8192, parallelism=1)
    stored = passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    params = extract_parameters(stored)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (2, 8192, 1)
    assert passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify(stored, "correct horse battery stapler")
    assert not passwords.verify("not a hash", "x")
    # No stored hash: a decoy is checked (same work) and the answer is no, whatever the password.
    assert not passwords.verify(None, "correct horse battery staple")
    assert not passwords.needs_rehash(stored)
    assert Passwords(time_cost=3, memory_kib=8192, parallelism=1).needs_rehash(stored)


def test_lookup_hashes_are_keyed_and_normalised() -> None:
    key = os.urandom(32)
    assert email_lookup_hash(key, " Ana@Example.ORG ") == email_lookup_hash(key, "ana@example.org")
    assert email_lookup_hash(key, "ana@example.org") != email_lookup_hash(os.urandom(32), "ana@example.org")
    assert normalize_email("ＡＮＡ@example.org") == "ana@example.org"


def test_codes_are_six_digits_and_their_hashes_bind_account_and_purpose() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(codes) > 150
    key = os.urandom(32)
    base = code_hash(key, "a1", CodePurpose.VERIFY_EMAIL, "123456")
    assert base == code_hash(key, "a1", CodePurpose.VERIFY_EMAIL, " 123456 ")
    assert base != code_hash(key, "a2", CodePurpose.VERIFY_EMAIL, "123456")
    assert base != code_hash(key, "a1", CodePurpose.RESET_PASSWORD, "123456")
    assert base != code_hash(os.urandom(32), "a1", CodePurpose.VERIFY_EMAIL, "123456")
