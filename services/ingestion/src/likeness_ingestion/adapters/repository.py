"""Uploads: a Postgres row each, the image sealed in the blob store (likeness_platform.sealed_store)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from likeness_ingestion.domain.uploads import UploadRow
from likeness_platform.blobs import BlobStore, SubjectNames
from likeness_platform.categories import Category
from likeness_platform.crypto import DataKeyCache
from likeness_platform.db import from_row
from likeness_platform.sealed_store import SealedStore, SealedTable


def _row(r: Mapping[str, Any]) -> UploadRow:
    return from_row(UploadRow, r)


UPLOADS = SealedTable(
    category=Category.UPLOADS,
    table="uploads",
    id_column="upload_id",
    decode=_row,
    # Uploads are normalized to JPEG before they are stored.
    export_file=lambda row: (f"uploads/{row.upload_id}.jpg", "image/jpeg"),
)

UploadStore = SealedStore[UploadRow]


def upload_store(
    pool: AsyncConnectionPool[Any], blobs: BlobStore, keys: DataKeyCache, longest: timedelta, names: SubjectNames
) -> UploadStore:
    """The uploads table; `longest` is the longest retention class (no upload is kept longer)."""
    return SealedStore(pool, blobs, keys, UPLOADS, longest, names)
