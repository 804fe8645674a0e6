"""A stored result: what is known of it without opening its sealed blob."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StoredResult:
    result_id: str
    subject_id: str
    kind: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    dpi: int
    spec_id: str
    created_at: datetime
    expires_at: datetime
    persisted: bool = True
    meta: dict[str, Any] = field(default_factory=dict)
    blob_name: str = ""
