"""Accounts: email normalisation, the keyed lookup hash, one-time codes. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

CODE_DIGITS = 6


class CodePurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


@dataclass(frozen=True)
class Account:
    account_id: str
    subject_id: str
    email_hash: str
    email_sealed: bytes
    password_hash: str
    email_verified_at: datetime | None
    pending_email_hash: str | None
    pending_email_sealed: bytes | None
    created_at: datetime

    def __repr__(self) -> str:  # hashes and ciphertext stay out of tracebacks
        return f"Account(account_id={self.account_id!r})"


@dataclass(frozen=True)
class Signup:
    """A sign-up waiting for its code; the account exists only once the code comes back."""

    subject_id: str
    email_hash: str
    email_sealed: bytes
    password_hash: str
    created_at: datetime

    @property
    def code_ref(self) -> str:
        """What a sign-up's code hash is bound to (there is no account id yet)."""
        return signup_ref(self.subject_id)

    def __repr__(self) -> str:
        return "Signup(…)"


def signup_ref(subject_id: str) -> str:
    return f"signup:{subject_id}"


def normalize_email(email: str) -> str:
    """One spelling per mailbox for lookups: NFKC, trimmed, lower case (the address as typed is what is stored)."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def email_lookup_hash(key: bytes, email: str) -> str:
    """The keyed hash an account is found by (HMAC-SHA256 of the normalised address); the address itself is sealed."""
    return hmac.new(key, b"email\x00" + normalize_email(email).encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    """A one-time code of CODE_DIGITS digits, uniformly random."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: bytes, account_id: str, purpose: CodePurpose, code: str) -> str:
    """What is stored for a code: keyed (a short code's plain hash could be reversed by trying all of them) and bound
    to its account and purpose."""
    message = f"code\x00{account_id}\x00{purpose.value}\x00{code.strip()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two hashes."""
    return hmac.compare_digest(a.encode(), b.encode())


def email_associated(account_id: str, field: str) -> bytes:
    """Associated data sealing an address: it opens only as the field of the account it was sealed for."""
    return f"gateway/account/{account_id}/{field}".encode()
