"""Holders defend their live data: a Sweep whose cutoff is "now" (or later) removes nothing younger than
the category's retention, in every kind of holder. Only privacy may call Sweep (the mesh policy), but
a holder does not rely on its caller's cutoffs being sane."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from likeness_platform.categories import Category
from likeness_platform.crypto import DataKey
from tests.support.holders import all_holders

KEY = DataKey(os.urandom(32), "k1")


async def _key(subject_id: str) -> DataKey:
    return KEY


class _AccessLog:
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None:
        return None


@pytest.fixture
async def holders(database_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    async with all_holders(database_url, tmp_path / "blobs", _key, _AccessLog()) as found:
        yield {h.name: h for h in found}


async def _store_live_data(h: dict[str, Any], subject: str) -> None:
    """One fresh item of every category a holder keeps for `subject`."""
    from likeness_billing.domain.quotas import QuotaPolicy
    from likeness_gateway.domain.accounts import CodePurpose

    await h["gateway"].devices.add(
        subject,
        f"hash-{subject}",
        {"platform": "ios", "model": "m", "os_version": "1", "app_version": "1", "language": "en"},
        timedelta(days=90),
    )
    account = await h["gateway"].accounts.create(subject, f"{subject}@example.org", f"email-{subject}", "$argon2id$stand-in")
    await h["gateway"].accounts.issue_code(account.account_id, CodePurpose.RESET_PASSWORD, "code-hash", timedelta(minutes=15))
    await h["gateway"].accounts.start_signup(subject, "b@example.org", "email-b", "$argon2id$x", "code-hash", timedelta(minutes=15))
    columns = {
        "sha256": "0" * 64,
        "size_bytes": 4,
        "format": "jpeg",
        "width": 1,
        "height": 1,
        "purpose": "test",
        "retention_class": "default",
    }
    await h["ingestion"].store.save(subject, b"jpeg", columns)
    result = {
        "kind": "id_photo",
        "content_type": "image/jpeg",
        "width": 1,
        "height": 1,
        "size_bytes": 4,
        "dpi": 0,
        "spec_id": "",
        "meta": Jsonb({}),
    }
    await h["render"].store.save(subject, b"jpeg", result)
    await h["billing"]._repo.consume_credit(subject, "req-1", date.today(), QuotaPolicy(3), False)
    privacy = h["privacy"]
    pseudonym = privacy._config.pseudonym(subject)
    await privacy._repo.add_generation(subject, pseudonym, "id_photo", {}, "ok", 1.0)
    await privacy._repo.add_security_event(pseudonym, "device_registered", "hash", "203.0.113.0/24")
    await privacy._repo.add_access(subject, "test", "test/resource", "test")
    await privacy._repo.store_export(subject, b"sealed", timedelta(hours=1))


def _every_category_at(moment: datetime) -> dict[str, datetime]:
    return {category: moment for category in Category}


@pytest.mark.parametrize("ahead", [timedelta(0), timedelta(days=400)], ids=["now", "in-a-year"])
async def test_sweep_with_cutoff_now_leaves_unexpired_data_in_place(holders: dict[str, Any], ahead: timedelta) -> None:
    # A registered subject: privacy records nothing about an unknown one.
    subject = (await holders["privacy"]._repo.create_subject("device", False, "key-id", lambda _sid: b"wrapped")).subject_id
    await _store_live_data(holders, subject)
    before = {name: dict(await h.inventory(subject)) for name, h in holders.items()}
    # Something of every category is there to lose (faces keeps nothing; sealed stores list their blobs too).
    held = {name: {c for c, n in counts.items() if n} for name, counts in before.items()}
    assert held == {
        "gateway": {"devices", "accounts", "account_codes", "account_signups"},
        "ingestion": {"uploads", "blobs"},
        "render": {"results", "blobs"},
        "faces": set(),
        "billing": {"quota_usage"},
        "privacy": {"subjects", "data_keys", "generation_records", "security_events", "access_log", "exports"},
    }
    cutoffs = _every_category_at(datetime.now(UTC) + ahead)
    for name, holder in holders.items():
        removed = await holder.sweep(cutoffs)
        assert await holder.inventory(subject) == before[name], name
        assert all(removed.get(c, 0) == 0 for c in held[name]), (name, removed)


async def test_sealed_stores_still_sweep_what_outlived_their_ttl(holders: dict[str, Any]) -> None:
    # The clamp bounds the cutoff, it does not switch sweeping off: an item older than the store's ttl
    # (kept by an earlier, longer ttl) goes with a cutoff of now.
    subject = str(uuid.uuid4())
    store = holders["ingestion"].store
    columns = {
        "sha256": "0" * 64,
        "size_bytes": 4,
        "format": "jpeg",
        "width": 1,
        "height": 1,
        "purpose": "test",
        "retention_class": "default",
    }
    old = await store.save(subject, b"jpeg", columns)
    fresh = await store.save(subject, b"jpeg", columns)
    async with store.pool.connection() as conn:
        await conn.execute(
            "UPDATE uploads SET created_at = now() - %s - interval '1 minute', expires_at = now() + interval '1 hour' WHERE upload_id = %s",
            (store.ttl, uuid.UUID(old.upload_id)),
        )
    await holders["ingestion"].sweep({Category.UPLOADS: datetime.now(UTC)})
    assert [r.upload_id for r in await store.of_subject(subject)] == [fresh.upload_id]


async def test_a_holder_sweeps_its_own_data_with_privacy_down(database_url: str, tmp_path: Path) -> None:
    import asyncio

    import psycopg

    from tests.support.services import Started, free_port, start_ingestion

    started = Started()
    # No privacy at this address: the holder cannot fetch a key or log an access, and still expires its data.
    await start_ingestion(database_url, f"127.0.0.1:{free_port()}", tmp_path / "blobs", started, self_sweep_seconds=0.1)
    wiring = started.wirings["ingestion"]
    store = wiring.service.store
    subject = str(uuid.uuid4())
    blob = store.names.blob_name(subject)
    await store.blobs.put(blob, b"sealed")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO ingestion.uploads (upload_id, subject_id, blob_name, sha256, size_bytes, format, width, height, purpose,"
            " retention_class, created_at, expires_at)"
            " VALUES (%s, %s, %s, '0', 6, 'png', 1, 1, 'test', 'default', now() - interval '2 hours', now() - interval '1 second')",
            (uuid.uuid4(), subject, blob),
        )
    assert await store.count(subject) == 1
    loops = [asyncio.ensure_future(job()) for job in wiring.background]
    try:
        for _ in range(100):
            if await store.count(subject) == 0 and not await store.blobs.exists(blob):
                break
            await asyncio.sleep(0.05)
        assert await store.count(subject) == 0 and not await store.blobs.exists(blob)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await started.close()
