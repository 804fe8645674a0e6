"""Blob stores: local filesystem (default) and S3-compatible (S3, Alibaba OSS, MinIO)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from likeness_platform.settings import SealedStoreSettings


def new_blob_name() -> str:
    """A random name that reveals nothing about the subject or the content."""
    return secrets.token_hex(16)


class SubjectNames:
    """How a sealed store names what it keeps per subject: blob-name prefixes and tombstones are keyed hashes
    (HMAC-SHA256) of the subject id, under a key from settings (LIKENESS_BLOB_NAME_KEY).

    A subject's blobs can be listed (and erased) without their rows, so a blob whose row never landed is still
    found; but someone who knows a subject id and not the key cannot tell which blobs or tombstones are that
    subject's, and nobody can tell whose they are.

    Compatibility: names made before the key existed used an unkeyed SHA-256 (`legacy_blob_prefix`,
    `legacy_tombstone`). Blobs are sealed with their name as associated data, so they cannot be renamed; a store
    lists and erases under both prefixes and honours both tombstones. Legacy names stop being written at once
    and are gone once the store's ttl (at most 24 h) has passed after the upgrade.
    """

    MIN_KEY_BYTES = 32

    def __init__(self, key: bytes) -> None:
        if len(key) < self.MIN_KEY_BYTES:
            raise ValueError(f"the blob name key must be at least {self.MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    @classmethod
    def from_setting(cls, value: str) -> SubjectNames:
        """From LIKENESS_BLOB_NAME_KEY (base64 of at least 32 random bytes); a clear error when unusable."""
        if not value:
            raise ValueError(
                "LIKENESS_BLOB_NAME_KEY is not set: base64 of at least 32 random bytes, the same for every replica "
                "(make run and the tests generate a development key)"
            )
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("LIKENESS_BLOB_NAME_KEY is not valid base64") from None
        if len(key) < cls.MIN_KEY_BYTES:
            raise ValueError(f"LIKENESS_BLOB_NAME_KEY must decode to at least {cls.MIN_KEY_BYTES} bytes, got {len(key)}")
        return cls(key)

    def _mac(self, purpose: bytes, subject_id: str) -> str:
        return hmac.new(self._key, purpose + subject_id.encode(), hashlib.sha256).hexdigest()

    def blob_prefix(self, subject_id: str) -> str:
        """The name prefix of a subject's blobs (64 bits of a keyed hash of its id)."""
        return self._mac(b"likeness-blob:", subject_id)[:16]

    def blob_name(self, subject_id: str) -> str:
        """A fresh blob name for a subject: its prefix and 128 random bits."""
        return self.blob_prefix(subject_id) + secrets.token_hex(16)

    def tombstone(self, subject_id: str) -> str:
        """What a tombstone keeps of an erased subject: a keyed hash of its id, never the id."""
        return self._mac(b"likeness-tombstone:", subject_id)

    def prefixes(self, subject_id: str) -> list[str]:
        """Every prefix a subject's blobs may have: the keyed one, and the legacy one of older blobs."""
        return [self.blob_prefix(subject_id), legacy_blob_prefix(subject_id)]

    def tombstones(self, subject_id: str) -> list[str]:
        """Every tombstone that refuses a subject's writes: the keyed one, and a legacy one written before the key."""
        return [self.tombstone(subject_id), legacy_tombstone(subject_id)]


def legacy_blob_prefix(subject_id: str) -> str:
    """The unkeyed prefix of blobs named before LIKENESS_BLOB_NAME_KEY (read, listed and erased; never written)."""
    return hashlib.sha256(b"likeness-blob:" + subject_id.encode()).hexdigest()[:16]


def legacy_tombstone(subject_id: str) -> str:
    """The unkeyed tombstone hash written before LIKENESS_BLOB_NAME_KEY (honoured; never written)."""
    return hashlib.sha256(b"likeness-tombstone:" + subject_id.encode()).hexdigest()


@dataclass(frozen=True)
class BlobEntry:
    name: str
    size: int
    modified_at: datetime


class BlobStore(Protocol):
    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str) -> bytes: ...

    async def delete(self, name: str) -> bool: ...

    async def exists(self, name: str) -> bool: ...

    def entries(self, prefix: str = "") -> AsyncIterator[BlobEntry]: ...


class BlobNotFound(KeyError):
    pass


def _valid(name: str) -> str:
    if not name or not all(c in "0123456789abcdef" for c in name):
        raise ValueError("blob names are lowercase hex")
    return name


class LocalBlobStore:
    """Blobs as files under a root folder, written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        _valid(name)
        return self.root / name[:2] / name

    async def put(self, name: str, data: bytes) -> None:
        """Store bytes under a name."""
        path = self._path(name)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def get(self, name: str) -> bytes:
        """Read a blob; BlobNotFound when absent."""
        try:
            return await asyncio.to_thread(self._path(name).read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(name) from exc

    async def delete(self, name: str) -> bool:
        """Delete a blob; False when it was not there."""
        try:
            await asyncio.to_thread(self._path(name).unlink)
            return True
        except FileNotFoundError:
            return False

    async def exists(self, name: str) -> bool:
        """Whether a blob exists."""
        return self._path(name).is_file()

    async def entries(self, prefix: str = "") -> AsyncIterator[BlobEntry]:
        """Every blob (whose name starts with `prefix`) with its size and modification time."""
        entries = await asyncio.to_thread(self._scan, prefix)
        for entry in entries:
            yield entry

    def _shards(self, prefix: str) -> list[Path]:
        if not self.root.exists():
            return []
        if len(prefix) >= 2:
            shard = self.root / _valid(prefix)[:2]
            return [shard] if shard.is_dir() else []
        return [shard for shard in self.root.iterdir() if shard.is_dir()]

    def _scan(self, prefix: str = "") -> list[BlobEntry]:
        out = []
        for shard in self._shards(prefix):
            for path in shard.iterdir():
                if path.suffix == ".tmp" or not path.is_file() or not path.name.startswith(prefix):
                    continue
                st = path.stat()
                out.append(BlobEntry(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
        return out

    async def remove_stale_temps(self, grace: timedelta) -> int:
        """Delete `.tmp` files (a put interrupted before its rename) older than `grace`; how many."""

        def remove() -> int:
            horizon = (datetime.now(UTC) - grace).timestamp()
            removed = 0
            for shard in self._shards(""):
                for path in shard.glob("*.tmp"):
                    try:
                        if path.stat().st_mtime < horizon:
                            path.unlink()
                            removed += 1
                    except FileNotFoundError:
                        pass
            return removed

        return await asyncio.to_thread(remove)


class S3BlobStore:
    """Blobs in an S3-compatible bucket (endpoint URL selects S3, Alibaba OSS or MinIO)."""

    def __init__(
        self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None, client: Any = None
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix else ""
        self._s3 = client or boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None)

    def _key(self, name: str) -> str:
        return self.prefix + _valid(name)

    async def put(self, name: str, data: bytes) -> None:
        """Store bytes under a name."""
        await asyncio.to_thread(self._s3.put_object, Bucket=self.bucket, Key=self._key(name), Body=data)

    async def get(self, name: str) -> bytes:
        """Read a blob; BlobNotFound when absent."""
        try:
            response = await asyncio.to_thread(self._s3.get_object, Bucket=self.bucket, Key=self._key(name))
        except self._s3.exceptions.NoSuchKey as exc:
            raise BlobNotFound(name) from exc
        return await asyncio.to_thread(response["Body"].read)

    async def delete(self, name: str) -> bool:
        """Delete a blob; False when it was not there."""
        existed = await self.exists(name)
        await asyncio.to_thread(self._s3.delete_object, Bucket=self.bucket, Key=self._key(name))
        return existed

    async def exists(self, name: str) -> bool:
        """Whether a blob exists."""
        try:
            await asyncio.to_thread(self._s3.head_object, Bucket=self.bucket, Key=self._key(name))
            return True
        except Exception as exc:  # botocore ClientError 404
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def entries(self, prefix: str = "") -> AsyncIterator[BlobEntry]:
        """Every blob (whose name starts with `prefix`) with its size and modification time."""
        paginator = self._s3.get_paginator("list_objects_v2")
        start = self.prefix + (_valid(prefix) if prefix else "")
        pages = await asyncio.to_thread(lambda: [*paginator.paginate(Bucket=self.bucket, Prefix=start)])
        for page in pages:
            for obj in page.get("Contents", []):
                yield BlobEntry(obj["Key"][len(self.prefix) :], obj["Size"], obj["LastModified"])


def blob_store_for(settings: SealedStoreSettings) -> BlobStore:
    """The blob store a service's settings configure."""
    s = settings
    return blob_store_from_settings(s.blob_backend, s.blob_dir, s.s3_bucket, s.s3_prefix, s.s3_endpoint_url, s.s3_region)


def subject_names_for(settings: SealedStoreSettings) -> SubjectNames:
    """The keyed naming a service's settings configure; the service does not start without a usable key."""
    try:
        return SubjectNames.from_setting(settings.blob_name_key)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def blob_store_from_settings(backend: str, local_dir: str, bucket: str, prefix: str, endpoint_url: str, region: str) -> BlobStore:
    """The configured blob store."""
    if backend == "s3":
        if not bucket:
            raise ValueError("LIKENESS_S3_BUCKET is required with LIKENESS_BLOB_BACKEND=s3")
        return S3BlobStore(bucket, prefix, endpoint_url, region)
    if backend != "local":
        raise ValueError(f"unknown blob backend {backend!r} (local or s3)")
    return LocalBlobStore(Path(local_dir))


async def remove_orphans(
    store: BlobStore, known: Callable[[list[str]], Awaitable[set[str]]], grace: timedelta = timedelta(minutes=10)
) -> int:
    """Delete blobs no row points to; blobs younger than `grace` may belong to a write in progress."""
    horizon = datetime.now(UTC) - grace
    candidates = [entry.name async for entry in store.entries() if entry.modified_at < horizon]
    if not candidates:
        return 0
    referenced = await known(candidates)
    orphans = [name for name in candidates if name not in referenced]
    for name in orphans:
        await store.delete(name)
    return len(orphans)
