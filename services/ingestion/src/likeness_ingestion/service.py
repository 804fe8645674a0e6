"""Ingestion use cases: upload, open, describe, delete, and the DataHolder view."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from likeness_ingestion.adapters.repository import UploadRepository
from likeness_ingestion.domain.errors import MemoryOnly, TooLarge, UploadNotFound
from likeness_ingestion.domain.normalize import Limits, normalize
from likeness_ingestion.domain.uploads import UploadRow
from likeness_platform.blobs import BlobNotFound, BlobStore, new_blob_name, remove_orphans
from likeness_platform.crypto import DataKeyCache, open_sealed, seal
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.errors import InvalidArgument

log = structlog.get_logger("likeness.ingestion")

MAX_IMAGE_TTL = timedelta(hours=24)
# Orphan blobs younger than this may belong to an upload whose row is being written.
ORPHAN_GRACE = timedelta(minutes=10)


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

    def __post_init__(self) -> None:
        for name, seconds in self.retention_classes.items():
            if seconds < 0 or seconds > MAX_IMAGE_TTL.total_seconds():
                raise ValueError(f"retention class {name!r}: images may be kept at most 24 h (86400 s), got {seconds}")

    @property
    def memory_only(self) -> bool:
        return self.retention_classes.get("default", 0) == 0


class IngestionService:
    name = "ingestion"

    def __init__(self, repo: UploadRepository, blobs: BlobStore, keys: DataKeyCache, access: AccessLog, config: IngestionConfig) -> None:
        self.repo = repo
        self.blobs = blobs
        self.keys = keys
        self.access = access
        self.config = config

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
        image = await asyncio.to_thread(normalize, data, meta.content_type, self.config.limits)
        del data
        ttl = self.config.retention_classes[retention_class]
        now = datetime.now(UTC)
        row = UploadRow(
            upload_id=str(uuid.uuid4()),
            subject_id=meta.subject_id,
            blob_name=new_blob_name(),
            sha256=image.sha256,
            size_bytes=len(image.data),
            format=image.source_format,
            width=image.width,
            height=image.height,
            purpose=meta.purpose or "unspecified",
            retention_class=retention_class,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        if ttl == 0:
            return UploadResult(row, persisted=False, inline=image.data)
        # Refused for erasing subjects: no new data once an erasure has started.
        key = await self.keys.get(meta.subject_id)
        sealed = seal(key.key, image.data, key.key_id, row.blob_name.encode())
        # Blob first, then row: a crash in between leaves an orphan blob that Sweep removes.
        await self.blobs.put(row.blob_name, sealed)
        await self.repo.insert(row)
        log.info("upload_stored", upload_id=row.upload_id, bytes=row.size_bytes, format=row.format)
        return UploadResult(row, persisted=True)

    async def describe(self, upload_id: str, subject_id: str) -> UploadRow:
        row = await self.repo.get(upload_id, subject_id)
        if row is None:
            if self.config.memory_only:
                raise MemoryOnly("uploads are not stored in memory-only mode (LIKENESS_UPLOAD_TTL=0)")
            raise UploadNotFound("no such upload")
        return row

    async def open(self, upload_id: str, subject_id: str, purpose: str) -> tuple[UploadRow, bytes]:
        row = await self.describe(upload_id, subject_id)
        await self.access.record_access(subject_id, f"ingestion/upload/{row.upload_id}", purpose)
        return row, await self._read(row)

    async def _read(self, row: UploadRow) -> bytes:
        key = await self.keys.get(row.subject_id)
        try:
            sealed = await self.blobs.get(row.blob_name)
        except BlobNotFound:
            raise UploadNotFound("no such upload") from None
        return open_sealed(key.key, sealed, row.blob_name.encode())

    async def delete(self, upload_id: str, subject_id: str) -> None:
        row = await self.repo.delete(upload_id, subject_id)
        if row is None:
            raise UploadNotFound("no such upload")
        await self.blobs.delete(row.blob_name)

    # DataHolder ------------------------------------------------------------------------
    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {"uploads": await self.repo.count_subject(subject_id)}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        rows = await self.repo.of_subject(subject_id)
        meta = [{k: v for k, v in asdict(r).items() if k not in ("blob_name", "subject_id")} for r in rows]
        yield ExportItem("uploads", "uploads.json", "application/json", json.dumps(meta, indent=2, default=str).encode())
        for row in rows:
            try:
                data = await self._read(row)
            except UploadNotFound:
                continue
            yield ExportItem("uploads", f"uploads/{row.upload_id}.jpg", "image/jpeg", data)

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        self.keys.forget(subject_id)
        names = await self.repo.delete_subject(subject_id)
        for name in names:
            await self.blobs.delete(name)
        log.info("subject_erased", erased=len(names), erasure_id=request_id)
        return {"uploads": len(names)}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        expired = await self.repo.delete_expired(cutoffs.get("uploads"))
        for name in expired:
            await self.blobs.delete(name)
        orphans = await remove_orphans(self.blobs, self.repo.known_blobs, ORPHAN_GRACE)
        return {"uploads": len(expired), "orphan_blobs": orphans}

    async def retention(self) -> list[Retention]:
        count, age = await self.repo.oldest()
        return [Retention("uploads", count, age, max(self.config.retention_classes.values()))]
