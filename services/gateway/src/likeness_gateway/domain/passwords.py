"""Password rules and hashing: argon2id with parameters from settings, a common-password list shipped as data.

The list is zxcvbn's "passwords" frequency list (30 000 most common passwords from leaked sets, MIT licence),
read from the installed `zxcvbn` package: it ships with the code and is never fetched at run time.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@cache
def common_passwords() -> frozenset[str]:
    """The breached/common-password list (lower case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(word.lower() for word in FREQUENCY_LISTS["passwords"])


_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


@dataclass(frozen=True)
class PasswordRules:
    min_length: int = 12
    max_length: int = 256
    min_distinct: int = 5

    def problems(self, password: str, email: str = "") -> list[str]:
        """What is wrong with `password` (empty when it may be used), as stable codes for clients."""
        found = []
        if len(password) < self.min_length:
            found.append("too_short")
        if len(password) > self.max_length:
            found.append("too_long")
        if len(set(password)) < self.min_distinct:
            found.append("too_few_distinct_characters")
        lowered = password.lower()
        # "Password2024!" is "password" with decoration: strip digits and symbols at both ends as well.
        common = common_passwords()
        if lowered in common or _EDGES.sub("", lowered) in common:
            found.append("common_password")
        local = email.partition("@")[0].lower()
        if len(local) >= 3 and local in lowered:
            found.append("contains_email")
        return found


class Passwords:
    """argon2id hashing; verification costs the same whether or not there is a stored hash to check."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int, max_concurrent: int = 2) -> None:
        # Each hash holds `memory_kib` while it runs: at most `max_concurrent` run at once (in worker threads).
        self._running = asyncio.Semaphore(max_concurrent)
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        # Checked against when no account matches, so an unknown email takes as long as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(24))

    @property
    def parameters(self) -> tuple[int, int, int]:
        """(time cost, memory in KiB, parallelism) new hashes use."""
        return self._hasher.time_cost, self._hasher.memory_cost, self._hasher.parallelism

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored`; with no stored hash, a decoy is checked and the answer is False.

        argon2's verify compares the derived hashes in constant time."""
        try:
            return self._hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash_async(self, password: str) -> str:
        """`hash` in a worker thread, at most `max_concurrent` at once."""
        async with self._running:
            return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> bool:
        """`verify` in a worker thread, at most `max_concurrent` at once."""
        async with self._running:
            return await asyncio.to_thread(self.verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """Whether `stored` was made with other parameters than today's (it is replaced after a good login)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
