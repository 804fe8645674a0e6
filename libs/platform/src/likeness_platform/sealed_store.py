"""One encrypted store for images kept about people, and its DataHolder view.

An item is a PostgreSQL row (its own columns plus id, subject_id, blob_name, created_at, expires_at)
and a blob: the item's bytes sealed with AES-256-GCM under the subject's data key, the random blob name
authenticated with it. Every item expires; `sweep` deletes expired rows with their blobs (a caller's cutoff is
clamped to the store's ttl, so it cannot remove live items), and blobs no row points to (a crash between writing the blob and the row) once they are older than a grace period.
Erasure forgets the cached key, leaves a tombstone, deletes rows and blobs, and reads the count back as proof.

No write after erasing starts: `save` inserts its row in a transaction that holds the subject's lock (shared)
and finds no tombstone; `erase` takes the same lock exclusively, writes the tombstone and deletes, in one
transaction. So a save either commits before the erase (and its row is deleted by it) or sees the tombstone
and is refused, deleting the blob it wrote — a data key cached on any replica cannot bypass that check.
Tombstones keep only a keyed hash of the subject id (as blob-name prefixes do: SubjectNames) and are swept after TOMBSTONE_TTL, well past the key cache's
lifetime and any request deadline (by then privacy has destroyed the key, so no new write can be sealed).

Ingestion's uploads and render's results are two tables of this one store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_platform.blobs import BlobNotFound, BlobStore, SubjectNames, remove_orphans
from likeness_platform.categories import Category
from likeness_platform.crypto import DataKeyCache, open_sealed, seal
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.db import as_uuid, oldest_age, table_name
from likeness_platform.errors import SubjectErasing

# Orphan blobs younger than this may belong to an item whose row is being written.
ORPHAN_GRACE = timedelta(minutes=10)

# How long an erased subject's tombstone refuses writes: longer than any request deadline and data-key cache ttl.
TOMBSTONE_TTL = timedelta(hours=1)
# The tombstone table each schema with a sealed store has (see the services' migrations).
TOMBSTONES = "erased_subjects"
TOMBSTONES_DDL = "CREATE TABLE IF NOT EXISTS erased_subjects (subject_hash text PRIMARY KEY, erased_at timestamptz NOT NULL DEFAULT now())"

# Columns every sealed table has besides its id column; the store fills them itself.
_STORE_COLUMNS = ("subject_id", "blob_name", "created_at", "expires_at")
# Left out of the metadata listing in an export: the subject knows who they are, blob names are internal.
_NOT_EXPORTED = ("subject_id", "blob_name")


class SealedRow(Protocol):
    """An item's row as a dataclass; the store needs to know whose it is and where its blob is."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def subject_id(self) -> str: ...

    @property
    def blob_name(self) -> str: ...


Row = TypeVar("Row", bound=SealedRow)


@dataclass(frozen=True)
class SealedTable(Generic[Row]):
    """Which table a store uses and how its rows look.

    category: the data category the items are reported under (inventory, export, sweep, retention).
    decode: a row from a `SELECT *` mapping.
    export_file: the file name and content type of an item's bytes in an export.
    schema: None to use the pool's search_path.
    """

    category: Category
    table: str
    id_column: str
    decode: Callable[[Mapping[str, Any]], Row]
    export_file: Callable[[Row], tuple[str, str]]
    schema: str | None = None


class SealedStore(Generic[Row]):
    """Rows in `table.table`, their bytes sealed in `blobs` under keys from `keys`, kept at most `ttl`."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        blobs: BlobStore,
        keys: DataKeyCache,
        table: SealedTable[Row],
        ttl: timedelta,
        names: SubjectNames,
        orphan_grace: timedelta = ORPHAN_GRACE,
    ) -> None:
        if ttl < timedelta(0):
            raise ValueError(f"a store's ttl cannot be negative, got {ttl}")
        self.pool = pool
        self.blobs = blobs
        self.keys = keys
        self.table = table
        self.ttl = ttl
        self.names = names
        self.orphan_grace = orphan_grace
        t, key = table_name(table.table, table.schema), sql.Identifier(table.id_column)
        self._select_one = sql.SQL("SELECT * FROM {t} WHERE {key} = %s AND subject_id = %s AND expires_at > now()").format(t=t, key=key)
        self._delete_one = sql.SQL("DELETE FROM {t} WHERE {key} = %s AND subject_id = %s RETURNING *").format(t=t, key=key)
        self._of_subject = sql.SQL("SELECT * FROM {t} WHERE subject_id = %s ORDER BY created_at").format(t=t)
        self._count = sql.SQL("SELECT count(*) FROM {t} WHERE subject_id = %s").format(t=t)
        self._erase = sql.SQL("DELETE FROM {t} WHERE subject_id = %s RETURNING blob_name").format(t=t)
        # The cutoff is clamped to the store's retention: LEAST(cutoff, now() - ttl) (LEAST skips a NULL cutoff),
        # so however late a cutoff a caller sends, an item younger than the ttl is never swept.
        self._expire = sql.SQL(
            "DELETE FROM {t} WHERE expires_at <= now() OR created_at < LEAST(%s::timestamptz, now() - %s::interval) RETURNING blob_name"
        ).format(t=t)
        self._known = sql.SQL("SELECT blob_name FROM {t} WHERE blob_name = ANY(%s)").format(t=t)
        tomb = table_name(TOMBSTONES, table.schema)
        self._is_tombstoned = sql.SQL("SELECT 1 FROM {tomb} WHERE subject_hash = ANY(%s)").format(tomb=tomb)
        self._tombstone = sql.SQL(
            "INSERT INTO {tomb} (subject_hash, erased_at) VALUES (%s, now()) ON CONFLICT (subject_hash) DO UPDATE SET erased_at = now()"
        ).format(tomb=tomb)
        self._sweep_tombstones = sql.SQL("DELETE FROM {tomb} WHERE erased_at < now() - %s::interval").format(tomb=tomb)

    def _lock_key(self, subject_id: str) -> str:
        return f"sealed:{self.table.schema or ''}.{self.table.table}:{subject_id}"

    @property
    def category(self) -> Category:
        return self.table.category

    # items ----------------------------------------------------------------------------------
    async def save(self, subject_id: str, data: bytes, columns: Mapping[str, Any], ttl: timedelta | None = None) -> Row:
        """Seal `data` under the subject's key, write the blob, then the row; the stored row.

        `columns` are the table's own columns; `ttl` (at most the store's) defaults to the store's.
        Refused (by the key fetch) for a subject being erased: no new data once an erasure has started.
        """
        ttl = self.ttl if ttl is None else ttl
        if not timedelta(0) < ttl <= self.ttl:
            raise ValueError(f"an item's ttl must be more than 0 and at most {self.ttl}, got {ttl}")
        reserved = {self.table.id_column, *_STORE_COLUMNS} & set(columns)
        if reserved:
            raise ValueError(f"the store sets {sorted(reserved)} itself")
        key = await self.keys.get(subject_id)
        blob_name = self.names.blob_name(subject_id)
        now = datetime.now(UTC)
        values = {
            self.table.id_column: uuid.uuid4(),
            "subject_id": uuid.UUID(subject_id),
            "blob_name": blob_name,
            "created_at": now,
            "expires_at": now + ttl,
            **columns,
        }
        insert = sql.SQL("INSERT INTO {t} ({columns}) VALUES ({values}) RETURNING *").format(
            t=table_name(self.table.table, self.table.schema),
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in values),
            values=sql.SQL(", ").join(sql.Placeholder() * len(values)),
        )
        # Blob first, then row: a crash in between leaves an orphan blob that sweep removes.
        await self.blobs.put(blob_name, seal(key.key, data, key.key_id, blob_name.encode()))
        try:
            async with self.pool.connection() as conn, conn.transaction():
                # The subject's state is checked in the write's own transaction, under the lock erase takes.
                await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", (self._lock_key(subject_id),))
                if await (await conn.execute(self._is_tombstoned, (self.names.tombstones(subject_id),))).fetchone():
                    raise SubjectErasing("the subject is being erased; no new data may be written for it")
                row = await (await conn.cursor(row_factory=dict_row).execute(insert, tuple(values.values()))).fetchone()
        except BaseException:
            await self.blobs.delete(blob_name)
            raise
        if row is None:
            raise RuntimeError("INSERT … RETURNING returned no row")
        return self.table.decode(row)

    async def find(self, item_id: str, subject_id: str) -> Row | None:
        """The subject's unexpired item; None for missing, malformed, foreign and expired ids alike."""
        iid, sid = as_uuid(item_id), as_uuid(subject_id)
        if iid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            row = await (await conn.cursor(row_factory=dict_row).execute(self._select_one, (iid, sid))).fetchone()
        return self.table.decode(row) if row else None

    async def read(self, row: Row) -> bytes:
        """The item's bytes; BlobNotFound when its blob is gone, DecryptionFailed when its key is."""
        key = await self.keys.get(row.subject_id)
        sealed = await self.blobs.get(row.blob_name)
        return open_sealed(key.key, sealed, row.blob_name.encode())

    async def delete(self, item_id: str, subject_id: str) -> Row | None:
        """Delete the subject's item (row and blob); the deleted row, None when there was none."""
        iid, sid = as_uuid(item_id), as_uuid(subject_id)
        if iid is None or sid is None:
            return None
        async with self.pool.connection() as conn:
            row = await (await conn.cursor(row_factory=dict_row).execute(self._delete_one, (iid, sid))).fetchone()
        if row is None:
            return None
        deleted = self.table.decode(row)
        await self.blobs.delete(deleted.blob_name)
        return deleted

    async def of_subject(self, subject_id: str) -> list[Row]:
        """Every row of the subject, expired or not, oldest first."""
        sid = as_uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(self._of_subject, (sid,))).fetchall()
        return [self.table.decode(r) for r in rows]

    async def count(self, subject_id: str) -> int:
        """How many rows the subject has, expired or not."""
        sid = as_uuid(subject_id)
        if sid is None:
            return 0
        async with self.pool.connection() as conn:
            row = await (await conn.execute(self._count, (sid,))).fetchone()
        return int(row[0]) if row else 0

    # retention and erasure ---------------------------------------------------------------------
    async def blob_names(self, subject_id: str) -> list[str]:
        """The subject's blobs as the blob store lists them, whether a row points to them or not."""
        if as_uuid(subject_id) is None:
            return []
        return [entry.name for prefix in self.names.prefixes(subject_id) async for entry in self.blobs.entries(prefix)]

    async def blob_bytes(self, subject_id: str) -> int:
        """How many bytes the subject's blobs take in the blob store (about what an export of them carries)."""
        if as_uuid(subject_id) is None:
            return 0
        return sum([entry.size for prefix in self.names.prefixes(subject_id) async for entry in self.blobs.entries(prefix)])

    async def erase(self, subject_id: str) -> tuple[int, int]:
        """Delete all the subject's rows and blobs; (erased, remaining) rows with `remaining` read back."""
        erased, remaining, _, _ = await self.erase_all(subject_id)
        return erased, remaining

    async def erase_all(self, subject_id: str) -> tuple[int, int, int, int]:
        """Delete all the subject's rows and blobs, those of its rows and those listed under its prefix (a blob
        whose row never landed); (rows erased, rows remaining, blobs erased, blobs remaining), read back."""
        self.keys.forget(subject_id)
        sid = as_uuid(subject_id)
        names: list[str] = []
        if sid is not None:
            async with self.pool.connection() as conn, conn.transaction():
                # Exclusive: waits for saves in flight to commit (their rows are deleted here) and makes every
                # later save see the tombstone.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key(subject_id),))
                await conn.execute(self._tombstone, (self.names.tombstone(subject_id),))
                names = [r[0] for r in await (await conn.execute(self._erase, (sid,))).fetchall()]
        blobs_erased = 0
        for name in {*names, *await self.blob_names(subject_id)}:
            blobs_erased += int(await self.blobs.delete(name))
        return len(names), await self.count(subject_id), blobs_erased, len(await self.blob_names(subject_id))

    async def sweep(self, cutoff: datetime | None) -> dict[str, int]:
        """Delete expired items and those created before `cutoff`, then orphan blobs past the grace period.

        The store defends its live data: `cutoff` is clamped to now - ttl, so a cutoff of "now" (or any
        later than the retention) removes nothing that has not outlived the store's ttl.
        """
        async with self.pool.connection() as conn:
            expired = [r[0] for r in await (await conn.execute(self._expire, (cutoff, self.ttl))).fetchall()]
            await conn.execute(self._sweep_tombstones, (TOMBSTONE_TTL,))
        for name in expired:
            await self.blobs.delete(name)
        orphans = await remove_orphans(self.blobs, self.known_blobs, self.orphan_grace)
        swept: dict[str, int] = {self.category: len(expired), Category.ORPHAN_BLOBS: orphans}
        remove_temps = getattr(self.blobs, "remove_stale_temps", None)
        if remove_temps is not None:  # local folders: puts interrupted before their rename leave .tmp files
            swept[Category.TEMP_BLOBS] = await remove_temps(self.orphan_grace)
        return swept

    async def known_blobs(self, names: list[str]) -> set[str]:
        """Those of `names` that a row points to."""
        if not names:
            return set()
        async with self.pool.connection() as conn:
            return {r[0] for r in await (await conn.execute(self._known, (names,))).fetchall()}

    async def retention(self) -> Retention:
        """How many items there are, the oldest one's age, and the longest an item may be kept."""
        count, age = await oldest_age(self.pool, self.table.table, schema=self.table.schema)
        return Retention(self.category, count, age, self.ttl.total_seconds())

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        """A JSON listing of the subject's items, then each item's bytes (items whose blob is gone are skipped)."""
        rows = await self.of_subject(subject_id)
        listing = [{k: v for k, v in asdict(r).items() if k not in _NOT_EXPORTED} for r in rows]
        category = self.category
        yield ExportItem(category, f"{category}.json", "application/json", json.dumps(listing, indent=2, default=str).encode())
        for row in rows:
            try:
                data = await self.read(row)
            except BlobNotFound:
                continue
            name, content_type = self.table.export_file(row)
            yield ExportItem(category, name, content_type, data)


class SealedHolder(Generic[Row]):
    """A DataHolder (see likeness_platform.dataholder.Holder) whose data is one sealed store."""

    def __init__(self, name: str, store: SealedStore[Row]) -> None:
        self.name = name
        self.store = store

    async def inventory(self, subject_id: str) -> dict[str, int]:
        """Rows and blobs: the blob store is listed too, so a blob without its row is found."""
        return {self.store.category: await self.store.count(subject_id), Category.BLOBS: len(await self.store.blob_names(subject_id))}

    def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        return self.store.export(subject_id)

    async def export_size(self, subject_id: str) -> int:
        """About how many bytes `export` will yield: the subject's sealed blobs."""
        return await self.store.blob_bytes(subject_id)

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        erased, remaining, blobs_erased, blobs_remaining = await self.store.erase_all(subject_id)
        category = self.store.category
        return {category: erased, Category.BLOBS: blobs_erased}, {category: remaining, Category.BLOBS: blobs_remaining}

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return await self.store.sweep(cutoffs.get(self.store.category))

    async def retention(self) -> list[Retention]:
        return [await self.store.retention()]
