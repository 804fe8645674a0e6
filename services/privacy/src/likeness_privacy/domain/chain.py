"""Hash chains for the erasure ledger and the access log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(body: Any) -> bytes:
    """Deterministic JSON bytes of a body (sorted keys, no spaces)."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def link(prev_hash: str, body: Any) -> str:
    """Hash of an entry: covers the previous entry's hash and this entry's body."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    seq: int
    body: Any
    prev_hash: str
    hash: str


def verify(entries: Iterable[ChainEntry]) -> tuple[int, str]:
    """(entries checked, '' or a description of the first broken link).

    The first entry may follow entries removed by retention: its prev_hash is trusted as the
    anchor, but its own hash must still match its body.
    """
    prev: str | None = None
    count = 0
    for entry in entries:
        if prev is not None and entry.prev_hash != prev:
            return count, f"entry {entry.seq}: prev_hash does not match entry before it"
        if link(entry.prev_hash, entry.body) != entry.hash:
            return count, f"entry {entry.seq}: hash does not match its content"
        prev = entry.hash
        count += 1
    return count, ""
