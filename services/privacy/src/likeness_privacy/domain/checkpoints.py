"""Signed checkpoints of the hash chains' heads, kept outside the database.

A chain verifies only against itself: whoever can write the database can cut off its newest entries, or
rebuild it from any point. A checkpoint is the heads of both chains (erasure ledger, access log) at a
moment, signed with Ed25519 under a key the database never sees, and written to an append-only sink (a
blob prefix under object lock on S3, a folder locally). Verification checks the chains against the newest
checkpoint signed by our key: each head it names must still be there, with the same hash, and the chain
must reach it intact.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from likeness_privacy.domain import chain

CHAINS = ("erasure_ledger", "access_log")


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    heads: dict[str, Head | None]
    at: datetime

    def body(self) -> dict[str, object]:
        return {
            "heads": {name: ({"seq": h.seq, "hash": h.hash} if h else None) for name, h in sorted(self.heads.items())},
            "at": self.at.astimezone(UTC).isoformat(),
        }


def signing_key(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != 32:
        raise ValueError(f"the ledger signing key must be a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def key_id(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> bytes:
    """The checkpoint as stored: its body, our public key and the signature over the body's canonical form."""
    body = checkpoint.body()
    signature = key.sign(chain.canonical(body))
    doc = {"body": body, "key": key_id(key.public_key()), "signature": base64.b64encode(signature).decode()}
    return json.dumps(doc, sort_keys=True).encode()


def read(public: Ed25519PublicKey, data: bytes) -> Checkpoint | None:
    """The checkpoint, when our key signed it; None for anything else (another key, a forgery, garbage)."""
    try:
        doc = json.loads(data)
        if doc.get("key") != key_id(public):
            return None
        public.verify(base64.b64decode(doc["signature"]), chain.canonical(doc["body"]))
        heads = {name: (Head(int(h["seq"]), str(h["hash"])) if h else None) for name, h in doc["body"]["heads"].items() if name in CHAINS}
        return Checkpoint(heads, datetime.fromisoformat(doc["body"]["at"]))
    except (InvalidSignature, ValueError, KeyError, TypeError, AttributeError):
        return None


def check(entries: list[chain.ChainEntry], head: Head | None, name: str, may_be_swept: bool = False) -> str:
    """'' when the chain still holds the checkpointed head with its hash; else what is wrong.

    `may_be_swept`: the checkpoint is older than the chain's retention, so its head may have been removed by it.
    """
    if head is None:
        return ""
    for entry in entries:
        if entry.seq == head.seq:
            return "" if entry.hash == head.hash else f"{name}: entry {head.seq} differs from the signed checkpoint"
    if may_be_swept and entries and entries[0].seq > head.seq:
        return ""  # retention removed it (the access log's oldest entries go after a year)
    return f"{name}: entry {head.seq} of the signed checkpoint is missing (the chain was cut off)"
