"""Erasure across real holders (ingestion and an independent in-memory holder), with faults."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path

import psycopg
import pytest

from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_platform.crypto import DecryptionFailed, open_sealed
from likeness_platform.errors import NotFound
from likeness_privacy.main import build as build_privacy
from likeness_privacy.usecases import PrivacyUseCases
from tests.support.memholder import MemoryHolder, serve_holder
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_ingestion, start_privacy


def _upload(subject: str, data: bytes):
    yield ingestion_pb2.UploadRequest(metadata=ingestion_pb2.UploadMetadata(subject_id=subject, content_type="image/png", purpose="test"))
    yield ingestion_pb2.UploadRequest(chunk=data)


def _png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[dict]:
    started = Started()
    notes = MemoryHolder()
    notes_port, ingestion_port = free_port(), free_port()
    notes_server = await serve_holder(notes, notes_port)
    holders = {"ingestion": f"127.0.0.1:{ingestion_port}", "notes": f"127.0.0.1:{notes_port}"}
    privacy, privacy_addr = await start_privacy(database_url, holders, started)
    ingestion, ingestion_addr = await start_ingestion(database_url, privacy_addr, tmp_path / "blobs", started, port=ingestion_port)
    channel = mesh_channel(ingestion_addr)
    world = {
        "privacy": privacy,
        "ingestion": ingestion,
        "upload": ingestion_pb2_grpc.IngestionStub(channel),
        "notes": notes,
        "notes_server": notes_server,
        "notes_port": notes_port,
        "holders": holders,
        "started": started,
    }
    try:
        yield world
    finally:
        await channel.close()
        await world["notes_server"].stop(0)
        await started.close()


async def _populate(w: dict) -> str:
    subject, _ = await w["privacy"].subjects.register("device", False)
    sid = subject.subject_id
    await w["upload"].Upload(_upload(sid, _png()))
    w["notes"].add(sid, "a note about " + sid)
    await w["privacy"].records.generation(sid, "id_photo", {"spec": "us-passport"}, "ok", 120.0)
    await w["privacy"].records.security_event(sid, "device_registered", "203.0.113.9")
    await w["privacy"].records.access(sid, "render", "ingestion/upload/x", "render_id_photo")
    return sid


async def _inventory_everywhere(w: dict, sid: str) -> dict[str, dict[str, int]]:
    out = {"privacy": dict(await w["privacy"].self_holder.inventory(sid))}
    for holder in w["privacy"].holders.remote:
        out[holder.name] = dict(await holder.inventory(sid))
    return out


async def _poll(check: Callable[[], Awaitable[object]], what: str, timeout: float = 15.0) -> None:
    """Re-check an observable state until it holds; fail naming it once the deadline passes."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"still not {what} after {timeout} s"
        await asyncio.sleep(0.05)


async def _wait_completed(privacy: PrivacyUseCases, erasure_id: str) -> None:
    """Drive the erasure by hand (no background loop) until it reports complete."""
    await _poll(lambda: privacy.erasures.drive(erasure_id), "completed")
    assert (await privacy.erasures.get(erasure_id)).status == "completed"


async def _until_completed(privacy: PrivacyUseCases, erasure_id: str) -> None:
    """Wait for the background loop to complete the erasure."""

    async def completed() -> bool:
        return (await privacy.erasures.get(erasure_id)).status == "completed"

    await _poll(completed, "completed by the background loop")


async def test_erase_a_leaves_b_untouched_and_is_provable(world: dict) -> None:
    w = world
    a, b = await _populate(w), await _populate(w)
    row = (await w["ingestion"].store.of_subject(a))[0]
    copied_ciphertext = await w["ingestion"].store.blobs.get(row.blob_name)
    key_before, _ = await w["privacy"].subjects.data_key(a)
    assert open_sealed(key_before, copied_ciphertext, row.blob_name.encode())  # readable before

    before = await _inventory_everywhere(w, a)
    assert before["ingestion"]["uploads"] == 1 and before["notes"]["notes"] == 1
    assert before["privacy"]["generation_records"] == 1 and before["privacy"]["security_events"] == 1
    erasure = await w["privacy"].erasures.request(a, "user_request")
    await _wait_completed(w["privacy"], erasure.erasure_id)

    after = await _inventory_everywhere(w, a)
    assert {name: set(counts) for name, counts in after.items()} == {name: set(counts) for name, counts in before.items()}
    assert all(count == 0 for counts in after.values() for count in counts.values()), after
    assert await w["privacy"].repo.get_wrapped_key(a) is None
    # Crypto-shredding: the only key that opens the copied ciphertext is gone from every store.
    with pytest.raises(NotFound):
        await w["privacy"].subjects.data_key(a)
    async with w["privacy"].repo.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM data_keys WHERE subject_id = %s", (a,))
        assert (await cur.fetchone()) == (0,)
    with pytest.raises(DecryptionFailed):
        open_sealed((await w["privacy"].subjects.data_key(b))[0], copied_ciphertext, row.blob_name.encode())

    b_counts = await _inventory_everywhere(w, b)
    assert b_counts["ingestion"]["uploads"] == 1 and b_counts["notes"]["notes"] == 1
    assert b_counts["privacy"]["generation_records"] == 1 and b_counts["privacy"]["data_keys"] == 1

    done = await w["privacy"].erasures.get(erasure.erasure_id)
    assert done.ledger_hash and done.subject_id is None
    assert {r.holder for r in done.receipts} == {"privacy", "ingestion", "notes"}
    assert all(r.remaining and not any(r.remaining.values()) for r in done.receipts)
    ok, entries, accesses, problem = await w["privacy"].records.verify_ledger()
    assert ok, problem
    assert entries >= 1 and accesses >= 1

    again = await w["privacy"].erasures.request(a, "user_request")
    assert again.erasure_id == erasure.erasure_id and again.status == "completed"
    # Nothing was reopened: a pass of the background loop finds no open erasure and asks no holder to erase.
    calls = w["notes"].erase_calls
    assert await w["privacy"].erasures.drive_open() == []
    assert await w["privacy"].erasures.drive(erasure.erasure_id) is True
    assert w["notes"].erase_calls == calls


async def test_tampered_ledger_is_detected(world: dict, database_url: str) -> None:
    w = world
    a = await _populate(w)
    erasure = await w["privacy"].erasures.request(a, "user_request")
    await _wait_completed(w["privacy"], erasure.erasure_id)
    # The runtime role cannot rewrite the ledger (test_db_roles.py): tamper as the database's superuser.
    forge = "UPDATE privacy.erasure_ledger SET body = jsonb_set(body, '{reason}', %s) WHERE erasure_id = %s"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(forge, ('"forged"', erasure.erasure_id))
        ok, _, _, problem = await w["privacy"].records.verify_ledger()
        assert not ok and "hash does not match" in problem
        await conn.execute(forge, ('"user_request"', erasure.erasure_id))


async def test_a_holder_down_keeps_the_erasure_in_progress_until_it_returns(world: dict) -> None:
    w = world
    a = await _populate(w)
    await w["notes_server"].stop(0)
    erasure = await w["privacy"].erasures.request(a, "user_request")

    async def notes_retried() -> bool:
        # Each pass retries the unreachable holder once its backoff has passed.
        await w["privacy"].erasures.drive(erasure.erasure_id)
        notes = next(r for r in (await w["privacy"].erasures.get(erasure.erasure_id)).receipts if r.holder == "notes")
        return notes.attempts >= 2

    await _poll(notes_retried, "retried at the unreachable holder")
    pending = await w["privacy"].erasures.get(erasure.erasure_id)
    assert pending.status == "in_progress"
    notes_receipt = next(r for r in pending.receipts if r.holder == "notes")
    assert notes_receipt.completed_at is None and "UNAVAILABLE" in notes_receipt.last_error
    # The others are done, but the key lives on until every holder has answered.
    assert all(r.completed_at is not None for r in pending.receipts if r.holder != "notes")
    assert await w["privacy"].repo.get_wrapped_key(a) is not None
    # The holder comes back on the same address; the background loop finishes without a manual step.
    w["notes_server"] = await serve_holder(w["notes"], w["notes_port"])
    stop = asyncio.Event()
    loop = asyncio.create_task(w["privacy"].erasures.run(stop))
    try:
        await _until_completed(w["privacy"], erasure.erasure_id)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
    assert (await w["notes"].inventory(a)) == {"notes": 0}


async def test_erasure_resumes_after_privacy_restarts(world: dict) -> None:
    w = world
    a = await _populate(w)
    await w["notes_server"].stop(0)
    erasure = await w["privacy"].erasures.request(a, "user_request")
    assert await w["privacy"].erasures.drive(erasure.erasure_id) is False
    # The first privacy instance goes away mid-erasure; a new one on the same database takes over.
    w["notes_server"] = await serve_holder(w["notes"], w["notes_port"])
    fresh = await build_privacy(w["started"].wirings["privacy"].settings)
    stop = asyncio.Event()
    loop = asyncio.create_task(fresh.use_cases.erasures.run(stop))
    try:
        await _until_completed(fresh.use_cases, erasure.erasure_id)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)
        await fresh.close()
    assert (await w["notes"].inventory(a)) == {"notes": 0}


async def test_a_minor_is_erased_at_once(world: dict) -> None:
    subject, erasure = await world["privacy"].subjects.register("device", True)
    assert erasure is not None and erasure.status == "completed" and erasure.ledger_hash
    assert await world["privacy"].repo.get_subject(subject.subject_id) is None
    assert await world["privacy"].repo.get_wrapped_key(subject.subject_id) is None


async def test_uploads_racing_an_erasure_leave_nothing(world: dict, tmp_path: Path) -> None:
    w = world
    a = await _populate(w)  # ingestion now has a's key cached
    data = _png()

    async def upload_quietly() -> None:
        try:
            await w["upload"].Upload(_upload(a, data))
        except Exception:
            pass  # refused: the subject is being erased

    racers = [asyncio.create_task(upload_quietly()) for _ in range(8)]
    await asyncio.sleep(0.01)
    erasure = await w["privacy"].erasures.request(a, "user_request")
    await _wait_completed(w["privacy"], erasure.erasure_id)
    await asyncio.gather(*racers)
    late = [asyncio.create_task(upload_quietly()) for _ in range(3)]
    await asyncio.gather(*late)
    # Every upload either landed before the holder's erase (and went with it) or was refused with its blob removed.
    assert await w["ingestion"].store.count(a) == 0
    assert await w["ingestion"].store.of_subject(a) == []
    blob_dir = tmp_path / "blobs"
    assert not [p for p in blob_dir.rglob("*") if p.is_file()]
    ok, _, _, problem = await w["privacy"].records.verify_ledger()
    assert ok, problem


async def test_a_truncated_or_rebuilt_ledger_fails_verification_against_the_signed_checkpoint(world: dict, database_url: str) -> None:
    from likeness_privacy.domain import chain

    w = world
    for _ in range(2):
        erasure = await w["privacy"].erasures.request(await _populate(w), "user_request")
        await _wait_completed(w["privacy"], erasure.erasure_id)
    # Each completed erasure is anchored at once: the newest checkpoint names the ledger's head.
    latest = await w["privacy"].checkpoints.latest()
    assert latest is not None and latest.heads["erasure_ledger"] is not None
    ok, entries, _, problem = await w["privacy"].records.verify_ledger()
    assert ok and entries >= 2, problem
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT seq, erasure_id, body, prev_hash, hash FROM privacy.erasure_ledger ORDER BY seq")
        ).fetchall()
        newest = rows[-1]
        # Someone with database credentials rewrites the newest entry and recomputes its hash: the chain is
        # self-consistent, but the head no longer matches the signed checkpoint.
        forged = {**newest[2], "reason": "forged"}
        await conn.execute(
            "UPDATE privacy.erasure_ledger SET body = %s, hash = %s WHERE seq = %s",
            (psycopg.types.json.Jsonb(forged), chain.link(newest[3], forged), newest[0]),
        )
        ok, _, _, problem = await w["privacy"].records.verify_ledger()
        assert not ok and "differs from the signed checkpoint" in problem
        # Cutting the head off is no better.
        await conn.execute("DELETE FROM privacy.erasure_ledger WHERE seq = %s", (newest[0],))
        ok, _, _, problem = await w["privacy"].records.verify_ledger()
        assert not ok and "missing" in problem, problem
        # Nor is cutting off the start.
        await conn.execute(
            "INSERT INTO privacy.erasure_ledger (seq, erasure_id, body, prev_hash, hash) VALUES (%s, %s, %s, %s, %s)",
            (newest[0], newest[1], psycopg.types.json.Jsonb(newest[2]), newest[3], newest[4]),
        )
        ok, _, _, problem = await w["privacy"].records.verify_ledger()
        assert ok, problem
        first = rows[0]
        await conn.execute("DELETE FROM privacy.erasure_ledger WHERE seq = %s", (first[0],))
        try:
            ok, _, _, problem = await w["privacy"].records.verify_ledger()
            assert not ok and "genesis" in problem, problem
        finally:  # the database is shared by the session's tests
            await conn.execute(
                "INSERT INTO privacy.erasure_ledger (seq, erasure_id, body, prev_hash, hash) VALUES (%s, %s, %s, %s, %s)",
                (first[0], first[1], psycopg.types.json.Jsonb(first[2]), first[3], first[4]),
            )


async def test_a_late_write_is_found_after_the_grace_period_and_erased(world: dict, database_url: str) -> None:
    w = world
    a = await _populate(w)
    erasure = await w["privacy"].erasures.request(a, "user_request")
    await _wait_completed(w["privacy"], erasure.erasure_id)
    # The subject id waits for the re-verification sealed under the KEK, never in clear.
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT * FROM privacy.erasure_reverifications WHERE erasure_id = %s", (erasure.erasure_id,))
        ).fetchall()
        assert len(rows) == 1 and a.encode() not in bytes(rows[0][1])
    # Late writes after each holder's erase: one at a holder without tombstones, one put straight into
    # ingestion's table (as a restored backup or a write around the store would).
    w["notes"].add(a, "a late note")
    planted = await w["ingestion"].store.save(await _populate(w), b"someone else's", _UPLOAD_COLUMNS)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("UPDATE ingestion.uploads SET subject_id = %s WHERE upload_id = %s", (a, planted.upload_id))
        # Not before the grace period is over.
        assert await w["privacy"].erasures.reverify_due() == {}
        await conn.execute("UPDATE privacy.erasure_reverifications SET due_at = now() WHERE erasure_id = %s", (erasure.erasure_id,))
    found = await w["privacy"].erasures.reverify_due()
    assert found == {erasure.erasure_id: {"notes": {"notes": 1}, "ingestion": {"uploads": 1}}}
    assert await w["notes"].inventory(a) == {"notes": 0}
    assert await w["ingestion"].store.count(a) == 0
    # Clean now: the sealed subject id is gone and a further pass finds nothing to do.
    assert await w["privacy"].repo.due_reverifications() == []
    assert await w["privacy"].erasures.reverify_due() == {}


_UPLOAD_COLUMNS = {
    "sha256": "0" * 64,
    "size_bytes": 4,
    "format": "png",
    "width": 1,
    "height": 1,
    "purpose": "test",
    "retention_class": "default",
}


async def test_a_blob_planted_after_the_holders_erase_is_found_by_verification_and_erased(world: dict) -> None:
    w = world
    a = await _populate(w)
    erasure = await w["privacy"].erasures.request(a, "user_request")
    ingestion = w["privacy"].holders.get("ingestion")
    # The holder erases first; then a blob of a's lands without a row (a write whose row was refused, a copy
    # restored from a backup) before privacy verifies.
    await w["privacy"].erasures._erase_at(erasure, "ingestion", 0)
    store = w["ingestion"].store
    planted = store.names.blob_name(a)  # under a's keyed prefix, as the holder names a's blobs
    await store.blobs.put(planted, b"sealed bytes of a")
    assert await ingestion.inventory(a) == {"uploads": 0, "blobs": 1}  # listed, though no row points to it
    await _wait_completed(w["privacy"], erasure.erasure_id)
    assert not await store.blobs.exists(planted)
    done = await w["privacy"].erasures.get(erasure.erasure_id)
    receipt = next(r for r in done.receipts if r.holder == "ingestion")
    assert receipt.attempts >= 2 and receipt.erased == {"uploads": 0, "blobs": 1}
    ledger = (await w["privacy"].repo.ledger_entries())[-1].body
    assert ledger["verified"]["ingestion"] == {"uploads": 0, "blobs": 0}
    assert ledger["key_destroyed"] is True


async def test_a_backup_restored_after_the_kek_backup_window_cannot_decrypt(world: dict, database_url: str) -> None:
    import base64
    from datetime import UTC, datetime, timedelta

    from likeness_platform.errors import FailedPrecondition

    w = world
    first = w["started"].wirings["privacy"].settings
    old_kek = first.kek
    a, b = await _populate(w), await _populate(w)
    key_b = await w["privacy"].subjects.data_key(b)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # A backup taken today holds a's subject row and wrapped key.
        backup_subject = await (await conn.execute("SELECT subject_id, kind FROM privacy.subjects WHERE subject_id = %s", (a,))).fetchone()
        backup_key = await (
            await conn.execute("SELECT subject_id, key_id, wrapped, kek_id FROM privacy.data_keys WHERE subject_id = %s", (a,))
        ).fetchone()
    erasure = await w["privacy"].erasures.request(a, "user_request")
    await _wait_completed(w["privacy"], erasure.erasure_id)

    # Rotation: a new current KEK; the old one retired today and kept for the backup window.
    new_kek = base64.b64encode(os.urandom(32)).decode()
    today = datetime.now(UTC).date()

    def rotated(retired_on: date) -> object:
        return first.model_copy(update={"kek": new_kek, "kek_id": "k2", "retired_keks": {first.kek_id: f"{old_kek}@{retired_on}"}})

    rotated_privacy = await build_privacy(rotated(today))
    after_window = None
    restored = False
    try:
        subjects = rotated_privacy.use_cases.subjects
        assert await subjects.data_key(b) == key_b  # still opens under the retired KEK
        assert await subjects.rewrap() >= 1
        assert (await rotated_privacy.use_cases.repo.get_wrapped_key(b))[2] == "k2"
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("INSERT INTO privacy.subjects (subject_id, kind) VALUES (%s, %s)", backup_subject)
            await conn.execute("INSERT INTO privacy.data_keys (subject_id, key_id, wrapped, kek_id) VALUES (%s, %s, %s, %s)", backup_key)
            restored = True
        # Inside the window the restored backup still opens: that is what the window is for, and why it is bounded.
        assert (await subjects.data_key(a))[0]
        # After the window the retired KEK is not loaded any more: the same restored backup cannot be decrypted,
        # while b (rewrapped) is untouched.
        after_window = await build_privacy(rotated(today - timedelta(days=first.kek_backup_window_days + 1)))
        with pytest.raises(FailedPrecondition) as info:
            await after_window.use_cases.subjects.data_key(a)
        assert info.value.code == "KEK_DESTROYED"
        assert await after_window.use_cases.subjects.data_key(b) == key_b
    finally:
        if restored:
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                await conn.execute("DELETE FROM privacy.data_keys WHERE subject_id = %s", (a,))
                await conn.execute("DELETE FROM privacy.subjects WHERE subject_id = %s", (a,))
        await rotated_privacy.close()
        if after_window is not None:
            await after_window.close()
