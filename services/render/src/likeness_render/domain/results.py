"""A stored result: what is known of it without opening its sealed blob."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class NewResult:
    """What a use case knows of a result it is about to store (the store adds id, size and times)."""

    kind: str
    content_type: str
    width: int
    height: int
    dpi: int = 0
    spec_id: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def unsaved(self, subject_id: str, size_bytes: int) -> StoredResult:
        """The result as memory-only mode returns it: described, never persisted."""
        now = datetime.now(UTC)
        return StoredResult(
            str(uuid.uuid4()),
            subject_id,
            self.kind,
            self.content_type,
            self.width,
            self.height,
            size_bytes,
            self.dpi,
            self.spec_id,
            now,
            now,
            False,
            dict(self.meta),
        )
