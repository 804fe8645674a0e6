"""An upload, as recorded (its bytes live sealed in the blob store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UploadRow:
    upload_id: str
    subject_id: str
    blob_name: str
    sha256: str
    size_bytes: int
    format: str
    width: int
    height: int
    purpose: str
    retention_class: str
    created_at: datetime
    expires_at: datetime
