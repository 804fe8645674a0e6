"""Memory-only mode: normalized images kept in the gateway's memory, briefly, for the next call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InlineImage:
    subject_id: str
    data: bytes
    expires_at: float
    content_type: str = "image/jpeg"
    # What the gateway answers about it later (e.g. an ID photo's report), numbers only.
    meta: dict[str, Any] = field(default_factory=dict)


class InlineImages:
    """A bounded, expiring map of upload id -> image; nothing touches disk."""

    def __init__(self, ttl_seconds: int, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes
        self._items: dict[str, InlineImage] = {}

    def put(
        self, item_id: str, subject_id: str, data: bytes, content_type: str = "image/jpeg", meta: dict[str, Any] | None = None
    ) -> float:
        self._expire()
        while self._items and sum(len(i.data) for i in self._items.values()) + len(data) > self.max_bytes:
            self._items.pop(next(iter(self._items)))
        expires = time.time() + self.ttl
        self._items[item_id] = InlineImage(subject_id, data, expires, content_type, dict(meta or {}))
        return expires

    def get(self, item_id: str, subject_id: str) -> bytes | None:
        item = self.item(item_id, subject_id)
        return item.data if item else None

    def item(self, item_id: str, subject_id: str) -> InlineImage | None:
        self._expire()
        item = self._items.get(item_id)
        return item if item and item.subject_id == subject_id else None

    def forget_subject(self, subject_id: str) -> int:
        doomed = [k for k, v in self._items.items() if v.subject_id == subject_id]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    def count(self, subject_id: str) -> int:
        self._expire()
        return sum(1 for v in self._items.values() if v.subject_id == subject_id)

    def _expire(self) -> None:
        now = time.time()
        for key in [k for k, v in self._items.items() if v.expires_at <= now]:
            del self._items[key]
