"""Ingestion use cases: upload, open, describe, delete, and the DataHolder view."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from likeness_ingestion.adapters.repository import UploadStore
from likeness_ingestion.domain.errors import MemoryOnly, TooLarge, UploadNotFound
from likeness_ingestion.domain.normalize import Limits, normalize
from likeness_ingestion.domain.uploads import UploadRow
from likeness_platform.blobs import BlobNotFound
from likeness_platform.categories import Category
from likeness_platform.errors import InvalidArgument
from likeness_platform.sealed_store import SealedHolder

log = structlog.get_logger("likeness.ingestion")

MAX_IMAGE_TTL = timedelta(hours=24)


class AccessLog(Protocol):
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None: ...


@dataclass(frozen=True)
class UploadMeta:
    subject_id: str
    content_type: str
    purpose: str
    retention_class: str


@dataclass(frozen=True)
class UploadResult:
    row: UploadRow
    persisted: bool
    inline: bytes = b""


@dataclass
class IngestionConfig:
    limits: Limits = field(default_factory=Limits)
    # Seconds per retention class; 0 for "default" means memory-only mode.
    retention_classes: dict[str, int] = field(default_factory=lambda: {"default": 86400})
    # Images decoded at once: each may take max_pixels x 4 bytes and more while it is converted.
    max_concurrent_decodes: int = 2

    def __post_init__(self) -> None:
        for name, seconds in self.retention_classes.items():
            if seconds < 0 or seconds > MAX_IMAGE_TTL.total_seconds():
                raise ValueError(f"retention class {name!r}: images may be kept at most 24 h (86400 s), got {seconds}")

    @property
    def memory_only(self) -> bool:
        return self.retention_classes.get("default", 0) == 0

    @property
    def longest_ttl(self) -> timedelta:
        """The longest retention class: no upload is kept longer (0 when nothing is ever stored)."""
        return timedelta(seconds=max(self.retention_classes.values(), default=0))


class IngestionService(SealedHolder[UploadRow]):
    """Upload use cases; as a DataHolder, the shared view of its upload store."""

    def __init__(self, uploads: UploadStore, access: AccessLog, config: IngestionConfig) -> None:
        if uploads.ttl < config.longest_ttl:
            raise ValueError(f"the upload store keeps items at most {uploads.ttl}, shorter than the longest retention class")
        super().__init__("ingestion", uploads)
        self.access = access
        self.config = config
        self._decodes = asyncio.Semaphore(max(1, config.max_concurrent_decodes))

    async def upload(self, meta: UploadMeta, chunks: AsyncIterator[bytes]) -> UploadResult:
        if not meta.subject_id:
            raise InvalidArgument("the first message must carry metadata with subject_id", "MISSING_SUBJECT")
        retention_class = meta.retention_class or "default"
        if retention_class not in self.config.retention_classes:
            raise InvalidArgument(
                f"unknown retention class {retention_class!r}; known: {sorted(self.config.retention_classes)}", "UNKNOWN_RETENTION_CLASS"
            )
        limit = self.config.limits.max_bytes
        parts: list[bytes] = []
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"the upload exceeds the limit of {limit} bytes")
            parts.append(chunk)
        data = b"".join(parts)
        parts.clear()
        async with self._decodes:
            image = await asyncio.to_thread(normalize, data, meta.content_type, self.config.limits)
        del data
        ttl = timedelta(seconds=self.config.retention_classes[retention_class])
        columns = {
            "sha256": image.sha256,
            "size_bytes": len(image.data),
            "format": image.source_format,
            "width": image.width,
            "height": image.height,
            "purpose": meta.purpose or "unspecified",
            "retention_class": retention_class,
        }
        if not ttl:
            now = datetime.now(UTC)
            row = UploadRow(str(uuid.uuid4()), meta.subject_id, "", created_at=now, expires_at=now, **columns)
            return UploadResult(row, persisted=False, inline=image.data)
        row = await self.store.save(meta.subject_id, image.data, columns, ttl)
        log.info("upload_stored", bytes=row.size_bytes, format=row.format)
        return UploadResult(row, persisted=True)

    async def describe(self, upload_id: str, subject_id: str) -> UploadRow:
        row = await self.store.find(upload_id, subject_id)
        if row is None:
            if self.config.memory_only:
                raise MemoryOnly("uploads are not stored in memory-only mode (LIKENESS_UPLOAD_TTL=0)")
            raise UploadNotFound("no such upload")
        return row

    async def open(self, upload_id: str, subject_id: str, purpose: str) -> tuple[UploadRow, bytes]:
        row = await self.describe(upload_id, subject_id)
        await self.access.record_access(subject_id, f"ingestion/upload/{row.upload_id}", purpose)
        try:
            return row, await self.store.read(row)
        except BlobNotFound:
            raise UploadNotFound("no such upload") from None

    async def delete(self, upload_id: str, subject_id: str) -> None:
        if await self.store.delete(upload_id, subject_id) is None:
            raise UploadNotFound("no such upload")

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        erased, remaining = await super().erase(subject_id, request_id)
        log.info("subject_erased", erased=erased[Category.UPLOADS], erasure_id=request_id)
        return erased, remaining
