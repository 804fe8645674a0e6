"""Signed checkpoints of the hash chains' heads, kept outside the database.

A chain verifies only against itself: whoever can write the database can cut off its newest entries, or
rebuild it from any point. A checkpoint is the heads of both chains (erasure ledger, access log) at a
moment, signed with Ed25519 under a key the database never sees, and written to an append-only sink (a
blob prefix under object lock on S3, a folder locally). Verification checks the chains against the newest
checkpoint: each head it names must still be there, with the same hash, and the chain must reach it intact.

Each checkpoint names the key that signed it by a key id (the first 8 bytes of SHA-256 of the raw public key,
hex), so the signing key can rotate: a verifier holds the current public key and the retired ones (public keys
only), and a checkpoint signed by a key it does not know, or whose signature does not match, is refused.

Stored form (JSON): {"body": {"heads": {...}, "at": ...}, "key_id": "<16 hex>", "public_key": "<base64 raw>",
"signature": "<base64 Ed25519 over the canonical JSON of body>"}. The embedded public key is informative only;
verification uses the verifier's own copy of the key named by key_id. (Checkpoints written before key ids
carry "key": the base64 public key; their id is derived from it.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
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


class CheckpointError(ValueError):
    """A checkpoint that cannot be an anchor: unreadable, signed by an unknown key, or a bad signature."""


def signing_key(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != 32:
        raise ValueError(f"the ledger signing key must be a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(encoded: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes (what `public_text` writes)."""
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"a ledger public key must be base64 of 32 bytes: {exc}") from None
    if len(raw) != 32:
        raise ValueError(f"a ledger public key must be base64 of 32 bytes, got {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(public: Ed25519PublicKey) -> str:
    """The key's id in checkpoints: the first 8 bytes of SHA-256 of its raw public bytes, hex."""
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:8].hex()


def keyring(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key, for `read`: the current key and the retired ones."""
    return {key_id(k): k for k in keys}


def sign(key: Ed25519PrivateKey, checkpoint: Checkpoint) -> bytes:
    """The checkpoint as stored: its body, the signing key's id and public key, the signature over the body."""
    body = checkpoint.body()
    signature = key.sign(chain.canonical(body))
    public = key.public_key()
    doc = {"body": body, "key_id": key_id(public), "public_key": public_text(public), "signature": base64.b64encode(signature).decode()}
    return json.dumps(doc, sort_keys=True).encode()


def signer(data: bytes) -> str:
    """The key id a stored checkpoint names ('' when it names none); the signature is not checked."""
    try:
        doc = json.loads(data)
        if isinstance(doc.get("key_id"), str):
            return str(doc["key_id"])
        return key_id(public_key(doc["key"])) if isinstance(doc.get("key"), str) else ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def read(keys: Mapping[str, Ed25519PublicKey], data: bytes) -> Checkpoint:
    """The checkpoint, when one of `keys` (key id -> public key) signed it unchanged; else CheckpointError."""
    try:
        doc = json.loads(data)
        body = doc["body"]
        signature = base64.b64decode(doc["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise CheckpointError(f"not a checkpoint ({type(exc).__name__})") from None
    kid = signer(data)
    if not kid:
        raise CheckpointError("names no signing key")
    public = keys.get(kid)
    if public is None:
        raise CheckpointError(f"signed by unknown key id {kid}")
    try:
        public.verify(signature, chain.canonical(body))
    except InvalidSignature:
        raise CheckpointError(f"bad signature (key id {kid})") from None
    try:
        heads = {name: (Head(int(h["seq"]), str(h["hash"])) if h else None) for name, h in body["heads"].items() if name in CHAINS}
        return Checkpoint(heads, datetime.fromisoformat(body["at"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"signed but malformed body ({type(exc).__name__})") from None


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
