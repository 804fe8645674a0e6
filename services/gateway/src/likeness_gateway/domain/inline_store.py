"""Memory-only mode: normalized images kept in the gateway's memory, briefly, for the next call.

Each replica has its own; an erasure reaches all of them through the database they share: every replica drops
the images of subjects without an active device (`forget_inactive`, run every
LIKENESS_INLINE_IMAGE_CHECK_SECONDS), and a subject's devices are deactivated before its erasure fans out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import TTLCache


@dataclass(frozen=True)
class InlineImage:
    subject_id: str
    data: bytes
    expires_at: float
    content_type: str = "image/jpeg"
    # What the gateway answers about it later (e.g. an ID photo's report), numbers only.
    meta: dict[str, Any] = field(default_factory=dict)


def _size(item: InlineImage) -> int:
    return max(1, len(item.data))


class InlineImages:
    """A bounded, expiring map of upload id -> image (a TTL cache sized in bytes); nothing touches disk."""

    def __init__(self, ttl_seconds: int, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes
        # The least recently used images make room for new ones; expired ones are never returned.
        self._items: TTLCache[str, InlineImage] = TTLCache(maxsize=max_bytes, ttl=ttl_seconds, timer=time.time, getsizeof=_size)

    def put(
        self, item_id: str, subject_id: str, data: bytes, content_type: str = "image/jpeg", meta: dict[str, Any] | None = None
    ) -> float:
        if len(data) > self.max_bytes:
            raise ValueError(f"an inline image may hold at most {self.max_bytes} bytes")
        expires = time.time() + self.ttl
        self._items[item_id] = InlineImage(subject_id, data, expires, content_type, dict(meta or {}))
        return expires

    def get(self, item_id: str, subject_id: str) -> bytes | None:
        item = self.item(item_id, subject_id)
        return item.data if item else None

    def item(self, item_id: str, subject_id: str) -> InlineImage | None:
        item = self._items.get(item_id)
        return item if item and item.subject_id == subject_id else None

    def forget_subject(self, subject_id: str) -> int:
        self._items.expire()
        doomed = [k for k, v in self._items.items() if v.subject_id == subject_id]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    def count(self, subject_id: str) -> int:
        self._items.expire()
        return sum(1 for v in self._items.values() if v.subject_id == subject_id)

    def subjects(self) -> set[str]:
        """The subjects with an image held now."""
        self._items.expire()
        return {v.subject_id for v in self._items.values()}

    def forget_subjects(self, subject_ids: set[str]) -> int:
        """Drop every image of those subjects; how many went."""
        if not subject_ids:
            return 0
        self._items.expire()
        doomed = [k for k, v in self._items.items() if v.subject_id in subject_ids]
        for key in doomed:
            del self._items[key]
        return len(doomed)

    def total(self) -> tuple[int, float]:
        """(images held, age in seconds of the oldest) across subjects."""
        self._items.expire()
        now = time.time()
        ages = [now - (v.expires_at - self.ttl) for v in self._items.values()]
        return len(ages), max(ages, default=0.0)


async def forget_inactive(images: InlineImages, active: Callable[[set[str]], Awaitable[set[str]]]) -> int:
    """Drop the images of every subject `active` (read from the database all replicas share) does not name."""
    held = images.subjects()
    if not held:
        return 0
    return images.forget_subjects(held - await active(held))


async def forget_inactive_on_schedule(
    images: InlineImages, active: Callable[[set[str]], Awaitable[set[str]]], interval_seconds: float
) -> None:
    """This replica's share of every erasure: its in-memory images of erased subjects go within an interval."""
    log = structlog.get_logger("likeness.gateway")
    while True:
        try:
            dropped = await forget_inactive(images, active)
            if dropped:
                log.info("inline_images_of_inactive_subjects_dropped", images=dropped)
        except Exception as exc:
            log.warning("inline_image_check_failed", error=type(exc).__name__)
        await asyncio.sleep(interval_seconds)
