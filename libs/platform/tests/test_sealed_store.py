"""The shared encrypted store: a row per item, its bytes sealed under the subject's key, expiry, sweep, erasure, export."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from likeness_platform.blobs import BlobNotFound, LocalBlobStore, SubjectNames, legacy_blob_prefix, legacy_tombstone
from likeness_platform.categories import Category, unregistered
from likeness_platform.crypto import DataKey, DataKeyCache, DecryptionFailed, open_sealed, seal
from likeness_platform.db import as_uuid, oldest_age, open_pool
from likeness_platform.errors import SubjectErasing
from likeness_platform.sealed_store import TOMBSTONES_DDL, SealedHolder, SealedStore, SealedTable

TTL = timedelta(hours=24)
# One deployment's blob-name key (every replica has the same).
NAMES = SubjectNames(os.urandom(32))


@dataclass(frozen=True)
class Item:
    item_id: str
    subject_id: str
    blob_name: str
    label: str
    created_at: datetime
    expires_at: datetime


def _item(r: Mapping[str, Any]) -> Item:
    return Item(str(r["item_id"]), str(r["subject_id"]), r["blob_name"], r["label"], r["created_at"], r["expires_at"])


class Keys:
    """Per-subject keys as privacy would hand them out; subjects in `erasing` are refused."""

    def __init__(self) -> None:
        self.keys: dict[str, DataKey] = {}
        self.erasing: set[str] = set()
        self.fetches = 0

    async def fetch(self, subject_id: str) -> DataKey:
        self.fetches += 1
        if subject_id in self.erasing:
            raise SubjectErasing("the subject is being erased")
        return self.keys.setdefault(subject_id, DataKey(os.urandom(32), f"k-{subject_id[:8]}"))


@dataclass
class World:
    store: SealedStore[Item]
    keys: Keys
    blobs: LocalBlobStore
    blob_dir: Path
    schema: str
    database_url: str

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True, options=f"-c search_path={self.schema}") as conn:
            cur = conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []

    def blob_path(self, name: str) -> Path:
        return self.blob_dir / name[:2] / name


TABLE = """CREATE TABLE items (
    item_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    blob_name text NOT NULL UNIQUE,
    label text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
)"""


def _table(schema: str | None = None) -> SealedTable[Item]:
    return SealedTable(
        category=Category.UPLOADS,
        table="items",
        id_column="item_id",
        decode=_item,
        export_file=lambda item: (f"uploads/{item.label}-{item.item_id}.bin", "application/octet-stream"),
        schema=schema,
    )


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    schema = f"sealed_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
        conn.execute(f"SET search_path TO {schema}".encode())
        conn.execute(TABLE.encode())
        conn.execute(TOMBSTONES_DDL.encode())
    pool = await open_pool(database_url, schema)
    keys = Keys()
    blobs = LocalBlobStore(tmp_path / "blobs")
    try:
        yield World(
            SealedStore(pool, blobs, DataKeyCache(keys.fetch, 60.0), _table(), TTL, NAMES),
            keys,
            blobs,
            tmp_path / "blobs",
            schema,
            database_url,
        )
    finally:
        await pool.close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def _subject() -> str:
    return str(uuid.uuid4())


async def test_save_seals_the_bytes_under_the_subjects_key_and_reads_them_back(world: World) -> None:
    subject = _subject()
    item = await world.store.save(subject, b"portrait bytes", {"label": "a"})
    assert item.subject_id == subject and item.label == "a"
    assert item.expires_at - item.created_at == TTL
    on_disk = world.blob_path(item.blob_name).read_bytes()
    assert b"portrait bytes" not in on_disk
    key = world.keys.keys[subject]
    assert open_sealed(key.key, on_disk, item.blob_name.encode()) == b"portrait bytes"
    with pytest.raises(DecryptionFailed):  # the blob name is authenticated: a blob cannot be passed off as another
        open_sealed(key.key, on_disk, b"0" * 32)
    found = await world.store.find(item.item_id, subject)
    assert found == item
    assert await world.store.read(item) == b"portrait bytes"
    assert world.sql("SELECT label FROM items WHERE item_id = %s", uuid.UUID(item.item_id)) == [("a",)]


async def test_find_answers_none_for_foreign_malformed_and_expired_ids(world: World) -> None:
    owner, other = _subject(), _subject()
    item = await world.store.save(owner, b"x", {"label": "a"})
    assert await world.store.find(item.item_id, other) is None
    assert await world.store.find("not-a-uuid", owner) is None
    assert await world.store.find(item.item_id, "") is None
    world.sql("UPDATE items SET expires_at = now() - interval '1 second'")
    assert await world.store.find(item.item_id, owner) is None


async def test_read_of_a_missing_blob_says_so(world: World) -> None:
    subject = _subject()
    item = await world.store.save(subject, b"x", {"label": "a"})
    await world.blobs.delete(item.blob_name)
    with pytest.raises(BlobNotFound):
        await world.store.read(item)


async def test_save_refuses_bad_ttls_reserved_columns_and_erasing_subjects_without_writing_anything(world: World) -> None:
    subject = _subject()
    for ttl in (timedelta(0), TTL + timedelta(seconds=1), timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="ttl"):
            await world.store.save(subject, b"x", {"label": "a"}, ttl)
    with pytest.raises(ValueError, match="itself"):
        await world.store.save(subject, b"x", {"label": "a", "expires_at": datetime.now(UTC)})
    world.keys.erasing.add(subject)
    with pytest.raises(SubjectErasing):
        await world.store.save(subject, b"x", {"label": "a"})
    assert world.sql("SELECT count(*) FROM items") == [(0,)]
    assert not any(world.blob_dir.rglob("*"))
    with pytest.raises(ValueError, match="negative"):
        SealedStore(world.store.pool, world.blobs, world.store.keys, _table(), timedelta(seconds=-1), NAMES)


async def test_a_shorter_ttl_is_kept(world: World) -> None:
    item = await world.store.save(_subject(), b"x", {"label": "a"}, timedelta(hours=1))
    assert item.expires_at - item.created_at == timedelta(hours=1)


async def test_delete_removes_row_and_blob_of_the_owner_only(world: World) -> None:
    owner, other = _subject(), _subject()
    item = await world.store.save(owner, b"x", {"label": "a"})
    assert await world.store.delete(item.item_id, other) is None
    assert await world.store.delete("nope", owner) is None
    assert world.blob_path(item.blob_name).exists()
    assert await world.store.delete(item.item_id, owner) == item
    assert not world.blob_path(item.blob_name).exists()
    assert await world.store.count(owner) == 0


async def test_erase_removes_every_item_of_the_subject_and_reads_the_count_back(world: World) -> None:
    a, b = _subject(), _subject()
    mine = [await world.store.save(a, f"a{i}".encode(), {"label": "a"}) for i in range(3)]
    theirs = await world.store.save(b, b"b", {"label": "b"})
    fetches = world.keys.fetches
    assert await world.store.erase(a) == (3, 0)
    assert all(not world.blob_path(m.blob_name).exists() for m in mine)
    assert await world.store.of_subject(a) == []
    # The cached key is forgotten: the next use asks privacy again (which refuses during erasure).
    world.keys.erasing.add(a)
    with pytest.raises(SubjectErasing):
        await world.store.save(a, b"x", {"label": "a"})
    assert world.keys.fetches == fetches + 1
    assert await world.store.of_subject(b) == [theirs]
    assert await world.store.read(theirs) == b"b"
    assert await world.store.erase("malformed") == (0, 0)


async def test_sweep_removes_expired_and_too_old_items_and_orphan_blobs_past_the_grace(world: World) -> None:
    subject = _subject()
    expired = await world.store.save(subject, b"1", {"label": "expired"})
    old = await world.store.save(subject, b"2", {"label": "old"})
    fresh = await world.store.save(subject, b"3", {"label": "fresh"})
    world.sql("UPDATE items SET expires_at = now() - interval '1 second' WHERE label = 'expired'")
    world.sql("UPDATE items SET created_at = now() - interval '25 hours' WHERE label = 'old'")
    world.sql("UPDATE items SET created_at = now() - interval '2 hours' WHERE label = 'fresh'")
    stale_orphan, young_orphan = "ab" * 16, "cd" * 16
    await world.blobs.put(stale_orphan, b"left behind by a crash")
    await world.blobs.put(young_orphan, b"row being written")
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(world.blob_path(stale_orphan), (hour_ago, hour_ago))
    # A put interrupted before its rename leaves a .tmp file: swept once past the grace, like an orphan.
    stale_tmp, young_tmp = world.blob_path("ef" * 16).with_suffix(".tmp"), world.blob_path("fe" * 16).with_suffix(".tmp")
    for tmp in (stale_tmp, young_tmp):
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(b"half a blob")
    os.utime(stale_tmp, (hour_ago, hour_ago))

    removed = await world.store.sweep(datetime.now(UTC) - timedelta(hours=1))
    assert removed == {"uploads": 2, "orphan_blobs": 1, "temp_blobs": 1}
    assert not stale_tmp.exists() and young_tmp.exists()
    assert not unregistered(removed)
    assert [i.label for i in await world.store.of_subject(subject)] == ["fresh"]  # 2 h old: inside the 24 h ttl, kept
    assert not world.blob_path(expired.blob_name).exists() and not world.blob_path(old.blob_name).exists()
    assert not world.blob_path(stale_orphan).exists()
    assert world.blob_path(young_orphan).exists() and world.blob_path(fresh.blob_name).exists()
    # Without a cutoff only expiry counts.
    assert await world.store.sweep(None) == {"uploads": 0, "orphan_blobs": 0, "temp_blobs": 0}


async def test_retention_reports_count_oldest_age_and_the_stores_ttl(world: World) -> None:
    empty = await world.store.retention()
    assert (empty.category, empty.count, empty.oldest_age_seconds, empty.max_age_seconds) == ("uploads", 0, 0.0, TTL.total_seconds())
    await world.store.save(_subject(), b"1", {"label": "a"})
    await world.store.save(_subject(), b"2", {"label": "b"})
    world.sql("UPDATE items SET created_at = now() - interval '90 minutes' WHERE label = 'a'")
    status = await world.store.retention()
    assert status.count == 2
    assert 5390 < status.oldest_age_seconds < 5500


async def test_export_lists_items_without_internal_fields_then_their_bytes(world: World) -> None:
    subject = _subject()
    first = await world.store.save(subject, b"one", {"label": "a"})
    second = await world.store.save(subject, b"two", {"label": "b"})
    await world.store.save(_subject(), b"someone else", {"label": "c"})
    await world.blobs.delete(second.blob_name)  # a blob lost to a crash is skipped, not fatal
    items = [i async for i in world.store.export(subject)]
    assert [(i.category, i.name, i.content_type) for i in items] == [
        ("uploads", "uploads.json", "application/json"),
        ("uploads", f"uploads/a-{first.item_id}.bin", "application/octet-stream"),
    ]
    listing = json.loads(items[0].data)
    assert [row["item_id"] for row in listing] == [first.item_id, second.item_id]
    assert all("blob_name" not in row and "subject_id" not in row for row in listing)
    assert items[1].data == b"one"


async def test_holder_view_reports_under_the_stores_category(world: World) -> None:
    holder = SealedHolder("test", world.store)
    subject = _subject()
    item = await world.store.save(subject, b"x", {"label": "a"})
    assert await holder.inventory(subject) == {"uploads": 1, "blobs": 1}
    assert [i.name async for i in holder.export(subject)] == ["uploads.json", f"uploads/a-{item.item_id}.bin"]
    world.sql("UPDATE items SET created_at = now() - interval '2 hours'")
    other = _subject()
    await world.store.save(other, b"y", {"label": "b"})
    assert await holder.sweep({"results": datetime.now(UTC)}) == {
        "uploads": 0,
        "orphan_blobs": 0,
        "temp_blobs": 0,
    }  # another category's cutoff
    # A cutoff of "now" is clamped to the ttl: nothing inside the 24 h ttl goes.
    assert await holder.sweep({"uploads": datetime.now(UTC)}) == {"uploads": 0, "orphan_blobs": 0, "temp_blobs": 0}
    world.sql("UPDATE items SET created_at = now() - interval '25 hours' WHERE label = 'a'")
    assert await holder.sweep({"uploads": datetime.now(UTC)}) == {"uploads": 1, "orphan_blobs": 0, "temp_blobs": 0}
    assert await holder.erase(other, "erasure-1") == ({"uploads": 1, "blobs": 1}, {"uploads": 0, "blobs": 0})
    assert [r.category for r in await holder.retention()] == ["uploads"]


async def test_a_schema_qualified_table_works_whatever_the_search_path(world: World, database_url: str) -> None:
    pool = await open_pool(database_url, "public")
    try:
        store = SealedStore(pool, world.blobs, world.store.keys, _table(world.schema), TTL, NAMES)
        subject = _subject()
        item = await store.save(subject, b"q", {"label": "q"})
        assert await world.store.find(item.item_id, subject) == item
        assert await oldest_age(pool, "items", schema=world.schema) == (1, pytest.approx(0.0, abs=5.0))
    finally:
        await pool.close()


def test_as_uuid_accepts_uuids_and_refuses_everything_else() -> None:
    value = uuid.uuid4()
    assert as_uuid(str(value)) == value and as_uuid(value) is value
    assert as_uuid(str(value).upper()) == value
    for bad in ("", "nope", None, 12, b"x" * 16, "1234"):
        assert as_uuid(bad) is None


async def test_a_replica_with_the_key_cached_cannot_write_after_the_erase(world: World) -> None:
    # Another replica of the holder (same database, its own key cache) fetched the key before the erasure.
    replica = SealedStore(world.store.pool, world.blobs, DataKeyCache(world.keys.fetch, 600.0), _table(), TTL, NAMES)
    subject = _subject()
    await replica.save(subject, b"before", {"label": "a"})
    world.keys.erasing.add(subject)
    assert await world.store.erase(subject) == (1, 0)
    with pytest.raises(SubjectErasing):
        await replica.save(subject, b"late", {"label": "b"})  # the cached key is no way around the tombstone
    assert world.sql("SELECT count(*) FROM items") == [(0,)]
    assert not any(p.is_file() for p in world.blob_dir.rglob("*"))
    # The tombstone holds a hash, never the id.
    assert subject not in str(world.sql("SELECT * FROM erased_subjects"))


async def test_uploads_racing_an_erase_leave_nothing(world: World) -> None:
    subject = _subject()
    await world.store.save(subject, b"warm the key cache", {"label": "a"})

    async def save_quietly(i: int) -> None:
        try:
            await world.store.save(subject, b"racing %d" % i, {"label": str(i)})
        except SubjectErasing:
            pass

    racers = [asyncio.create_task(save_quietly(i)) for i in range(20)]
    await asyncio.sleep(0)
    erased, remaining = await world.store.erase(subject)
    await asyncio.gather(*racers)
    assert remaining == 0 and erased >= 1
    # Whatever committed before the erase was deleted by it; whatever came after was refused and removed its blob.
    assert world.sql("SELECT count(*) FROM items") == [(0,)]
    assert not any(p.is_file() for p in world.blob_dir.rglob("*"))


async def test_blob_names_and_tombstones_cannot_be_linked_to_a_subject_id_without_the_key(world: World) -> None:
    subject = _subject()
    item = await world.store.save(subject, b"x", {"label": "a"})
    # Who knows the id but not the key: neither the unkeyed hash nor another key's names point at the blob.
    stranger = SubjectNames(os.urandom(32))
    for guess in (legacy_blob_prefix(subject), stranger.blob_prefix(subject)):
        assert not item.blob_name.startswith(guess)
        assert [e.name async for e in world.blobs.entries(guess)] == []
    # Every replica (same key) names it alike, and lists it under its prefix.
    assert item.blob_name.startswith(SubjectNames(NAMES._key).blob_prefix(subject))
    assert await world.store.blob_names(subject) == [item.blob_name]
    assert await world.store.erase(subject) == (1, 0)
    (tombstone,) = world.sql("SELECT subject_hash FROM erased_subjects")
    assert tombstone[0] == NAMES.tombstone(subject)
    assert tombstone[0] not in (legacy_tombstone(subject), stranger.tombstone(subject))


def test_the_blob_name_key_setting_is_checked() -> None:
    import base64

    for value, message in (("", "not set"), ("not base64!", "not valid base64"), (base64.b64encode(b"short").decode(), "at least 32")):
        with pytest.raises(ValueError, match=message):
            SubjectNames.from_setting(value)
    assert SubjectNames.from_setting(base64.b64encode(b"k" * 32).decode()).blob_prefix("s") == SubjectNames(b"k" * 32).blob_prefix("s")


async def test_names_made_before_the_key_are_still_read_listed_erased_and_tombstones_honoured(world: World) -> None:
    # Compatibility path: a blob named under the unkeyed prefix (before the key) and its row, as an older
    # release wrote them: it is read, inventoried and erased; an unkeyed tombstone still refuses writes.
    subject = _subject()
    key = await world.store.keys.get(subject)
    old_name = legacy_blob_prefix(subject) + "0" * 32
    await world.blobs.put(old_name, seal(key.key, b"older", key.key_id, old_name.encode()))
    now = datetime.now(UTC)
    world.sql(
        "INSERT INTO items (item_id, subject_id, blob_name, label, created_at, expires_at) VALUES (%s, %s, %s, 'old', %s, %s)",
        uuid.uuid4(),
        uuid.UUID(subject),
        old_name,
        now,
        now + TTL,
    )
    new = await world.store.save(subject, b"newer", {"label": "new"})
    (old,) = [r for r in await world.store.of_subject(subject) if r.label == "old"]
    assert await world.store.read(old) == b"older"
    holder = SealedHolder("items", world.store)
    assert await holder.inventory(subject) == {"uploads": 2, "blobs": 2}
    assert sorted(await world.store.blob_names(subject)) == sorted([old_name, new.blob_name])
    assert await holder.erase(subject, "e-1") == ({"uploads": 2, "blobs": 2}, {"uploads": 0, "blobs": 0})
    other = _subject()
    world.sql("INSERT INTO erased_subjects (subject_hash) VALUES (%s)", legacy_tombstone(other))
    with pytest.raises(SubjectErasing):
        await world.store.save(other, b"late", {"label": "late"})


async def test_sweep_removes_tombstones_past_their_time_even_when_nothing_expired(world: World) -> None:
    subject = _subject()
    await world.store.save(subject, b"x", {"label": "a"})
    await world.store.erase(subject)
    world.sql("UPDATE erased_subjects SET erased_at = now() - interval '2 hours'")
    await world.store.sweep(None)
    assert world.sql("SELECT count(*) FROM erased_subjects") == [(0,)]
