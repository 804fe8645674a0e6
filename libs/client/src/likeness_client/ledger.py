"""Offline verification of the erasure ledger's signed checkpoints, for an auditor outside the mesh.

Needs only the checkpoint folder (the local sink, or a copy of the S3 prefix: `aws s3 sync`), the public keys
that may have signed them (current and retired), and optionally read-only access to privacy's database. It
is written from the stored format, not by importing privacy's code, so a drift between the two shows in the
tests that cross-check them.

Checkpoint file (JSON): {"body": {"heads": {"erasure_ledger": {"seq", "hash"} | null, "access_log": ...},
"at": ISO time}, "key_id": first 8 bytes of SHA-256 of the raw public key (hex), "signature": base64 Ed25519
over the canonical JSON of body (sorted keys, no spaces)}. Older files carry "key" (the base64 public key)
instead of "key_id". Chain entry hash: SHA-256 of prev_hash + "\\n" + canonical JSON of the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

CHAINS = ("erasure_ledger", "access_log")
GENESIS = "0" * 64


class KeyFileError(ValueError):
    """A public-key file that holds no usable Ed25519 public key."""


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).digest()[:8].hex()


def public_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_of_seed(encoded: str) -> Ed25519PublicKey:
    """The public key of a signing key given as base64 of its 32-byte seed (LIKENESS_LEDGER_SIGNING_KEY)."""
    try:
        seed = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing key must be base64 of a 32-byte Ed25519 seed") from None
    if len(seed) != 32:
        raise ValueError(f"the signing key must be base64 of a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key()


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """Key id -> public key from files holding a PEM public key, or base64 raw keys one a line (# comments)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        text = Path(path).read_text()
        found: list[Ed25519PublicKey] = []
        if "-----BEGIN PUBLIC KEY-----" in text:
            pem = load_pem_public_key(text.encode())
            if not isinstance(pem, Ed25519PublicKey):
                raise KeyFileError(f"{path}: not an Ed25519 public key")
            found.append(pem)
        else:
            for n, line in enumerate(text.splitlines(), 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    raw = base64.b64decode(line, validate=True)
                except (binascii.Error, ValueError):
                    raise KeyFileError(f"{path}:{n}: not base64") from None
                if len(raw) != 32:
                    raise KeyFileError(f"{path}:{n}: an Ed25519 public key is 32 bytes, this is {len(raw)}")
                found.append(Ed25519PublicKey.from_public_bytes(raw))
        if not found:
            raise KeyFileError(f"{path}: no public key in it")
        keys.update((key_id(k), k) for k in found)
    return keys


def canonical(body: Any) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def link(prev_hash: str, body: Any) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(body)).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    name: str
    heads: dict[str, tuple[int, str] | None]
    at: datetime
    key_id: str


@dataclass(frozen=True)
class Entry:
    seq: int
    body: Any
    prev_hash: str
    hash: str


@dataclass
class Report:
    checkpoints: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    entries: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_checkpoint(keys: dict[str, Ed25519PublicKey], name: str, data: bytes) -> Checkpoint:
    """The checkpoint when one of `keys` signed it unchanged; ValueError saying why not."""
    try:
        doc = json.loads(data)
        body = doc["body"]
        signature = base64.b64decode(doc["signature"], validate=True)
        kid = doc.get("key_id")
        if not isinstance(kid, str):
            kid = key_id(Ed25519PublicKey.from_public_bytes(base64.b64decode(doc["key"], validate=True)))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ValueError(f"not a checkpoint ({type(exc).__name__})") from None
    public = keys.get(kid)
    if public is None:
        raise ValueError(f"signed by unknown key id {kid}")
    try:
        public.verify(signature, canonical(body))
    except InvalidSignature:
        raise ValueError(f"bad signature (key id {kid})") from None
    try:
        heads = {n: ((int(h["seq"]), str(h["hash"])) if h else None) for n, h in body["heads"].items() if n in CHAINS}
        return Checkpoint(name, heads, datetime.fromisoformat(body["at"]), kid)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"signed but malformed ({type(exc).__name__})") from None


def checkpoint_files(folder: Path) -> list[Path]:
    """Every checkpoint file under the folder (sharded as the local sink writes it, or flat), oldest first."""
    files = [p for p in Path(folder).rglob("*") if p.is_file() and p.suffix != ".tmp" and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.name)


def verify_checkpoints(folder: Path, keys: dict[str, Ed25519PublicKey], report: Report) -> None:
    """Every file must be a checkpoint signed by one of `keys`; each problem is named with its file."""
    files = checkpoint_files(folder)
    if not files:
        report.problems.append(f"no checkpoints under {folder}")
    for path in files:
        try:
            report.checkpoints.append(read_checkpoint(keys, path.name, path.read_bytes()))
        except ValueError as exc:
            report.problems.append(f"checkpoint {path.name}: {exc}")


def verify_chains(chains: dict[str, list[Entry]], report: Report, access_retention: timedelta, now: datetime | None = None) -> None:
    """Each chain intact; the erasure ledger from the genesis; every verified checkpoint's heads still in the chain."""
    now = now or datetime.now(UTC)
    for name in CHAINS:
        entries = chains.get(name, [])
        report.entries[name] = len(entries)
        prev: str | None = None
        for entry in entries:
            if prev is not None and entry.prev_hash != prev:
                report.problems.append(f"{name}: entry {entry.seq}: prev_hash does not match entry before it")
                break
            if link(entry.prev_hash, entry.body) != entry.hash:
                report.problems.append(f"{name}: entry {entry.seq}: hash does not match its content")
                break
            prev = entry.hash
        if name == "erasure_ledger" and entries and entries[0].prev_hash != GENESIS:
            report.problems.append(f"{name}: entry {entries[0].seq} is the first but does not follow the genesis")
        by_seq = {e.seq: e.hash for e in entries}
        first = entries[0].seq if entries else None
        for point in report.checkpoints:
            head = point.heads.get(name)
            if head is None:
                continue
            seq, digest = head
            if seq in by_seq:
                if by_seq[seq] != digest:
                    report.problems.append(f"{name}: entry {seq} differs from checkpoint {point.name}")
            elif not (name == "access_log" and first is not None and first > seq and point.at < now - access_retention):
                report.problems.append(f"{name}: entry {seq} of checkpoint {point.name} is missing (the chain was cut off)")


def chains_from_database(url: str) -> dict[str, list[Entry]]:
    """Both chains, read in one read-only transaction (a read-only database role suffices)."""
    import psycopg  # only this mode needs a database driver

    with psycopg.connect(url) as conn:
        conn.read_only = True
        ledger = conn.execute("SELECT seq, body, prev_hash, hash FROM privacy.erasure_ledger ORDER BY seq").fetchall()
        access = conn.execute(
            "SELECT seq, subject_commit, actor, resource, purpose, created_at, prev_hash, hash FROM privacy.access_log ORDER BY seq"
        ).fetchall()
    return {
        "erasure_ledger": [Entry(r[0], r[1], r[2], r[3]) for r in ledger],
        "access_log": [
            Entry(
                r[0],
                {"subject_commit": r[1], "actor": r[2], "resource": r[3], "purpose": r[4], "at": r[5].astimezone(UTC).isoformat()},
                r[6],
                r[7],
            )
            for r in access
        ],
    }
