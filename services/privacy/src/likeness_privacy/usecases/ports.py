"""What the privacy use cases depend on: their settings and the set of DataHolders they visit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from likeness_platform.dataholder import Holder as HolderPort
from likeness_privacy.domain.pseudonyms import subject_pseudonym
from likeness_privacy.domain.retention import RETENTION

__all__ = ["SELF", "HolderPort", "Holders", "PrivacyConfig"]

# Privacy's own stores, seen as one more holder.
SELF = "privacy"


@dataclass
class PrivacyConfig:
    kek: bytes
    pseudonym_key: bytes
    # The current KEK's id (stored with each key it wraps) and retired KEKs still kept for unwrapping until the
    # rewrap job has moved every key and the backup window is over.
    kek_id: str = ""
    retired_keks: dict[str, bytes] = field(default_factory=dict)
    # Ed25519 seed signing the ledger's checkpoints (never stored in the database).
    ledger_signing_key: bytes = b"\x00" * 32
    # Public keys (base64 of 32 raw bytes) of retired signing keys: checkpoints they signed still verify.
    ledger_retired_public_keys: list[str] = field(default_factory=list)
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 30.0
    export_ttl: timedelta = timedelta(hours=1)
    # The largest export privacy builds (bytes of zip); larger ones are refused with EXPORT_TOO_LARGE.
    export_max_bytes: int = 2 * 1024**3
    holder_timeout_seconds: float = 10.0
    erasure_poll_seconds: float = 5.0
    # A completed erasure is verified again after this long (more than any request deadline) and re-erased.
    reverify_after: timedelta = timedelta(minutes=10)
    retention: dict[str, timedelta] = field(default_factory=lambda: dict(RETENTION))

    def kek_for(self, kek_id: str) -> bytes | None:
        """The KEK of that id, None when it has been destroyed (or never was ours)."""
        return self.kek if kek_id == self.kek_id else self.retired_keks.get(kek_id)

    def pseudonym(self, subject_id: str) -> str:
        """The keyed pseudonym that stands for a subject in records and tombstones."""
        return subject_pseudonym(self.pseudonym_key, subject_id)


class Holders:
    """Every holder an erasure, an export or a sweep visits: privacy itself first, then the remote ones."""

    def __init__(self, own: HolderPort, remote: list[HolderPort]) -> None:
        self.own = own
        self.remote = remote

    @property
    def names(self) -> list[str]:
        return [SELF, *(h.name for h in self.remote)]

    def get(self, name: str) -> HolderPort:
        if name == SELF:
            return self.own
        for holder in self.remote:
            if holder.name == name:
                return holder
        raise LookupError(name)
