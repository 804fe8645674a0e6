"""Subjects and erasures with their per-holder receipts, as recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SubjectRow:
    subject_id: str
    kind: str
    state: str
    minor: bool
    created_at: datetime


@dataclass
class ReceiptRow:
    holder: str
    erased: dict[str, int] | None
    remaining: dict[str, int] | None
    completed_at: datetime | None
    attempts: int
    last_error: str
    next_attempt_at: datetime


@dataclass
class ErasureRow:
    erasure_id: str
    subject_id: str | None
    subject_pseudonym: str
    reason: str
    status: str
    requested_at: datetime
    deadline: datetime
    completed_at: datetime | None
    ledger_hash: str | None
    deadline_breached: bool
    receipts: list[ReceiptRow]
