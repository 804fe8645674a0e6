"""Records the policies promise: minimal IPs, pseudonymous generation records, an access log of every read, retention alarms."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_platform.dataholder import Retention
from likeness_platform.errors import NotFound as NotFoundError
from likeness_platform.metrics import RETENTION_BREACHES
from tests.support.memholder import MemoryHolder, serve_holder
from tests.support.pki import mesh_channel
from tests.support.services import Started, free_port, start_ingestion, start_privacy


class StaleHolder(MemoryHolder):
    name = "stale"

    async def retention(self) -> list[Retention]:
        return [Retention("uploads", 1, 90_000.0, 86_400.0)]


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[dict]:
    started = Started()
    stale = StaleHolder()
    stale_server = await serve_holder(stale)
    ingestion_port = free_port()
    holders = {"stale": f"127.0.0.1:{stale_server.port}", "ingestion": f"127.0.0.1:{ingestion_port}"}
    privacy, privacy_addr = await start_privacy(database_url, holders, started)
    await start_ingestion(database_url, privacy_addr, tmp_path / "blobs", started, port=ingestion_port)
    channel = mesh_channel(f"127.0.0.1:{ingestion_port}")
    try:
        yield {"privacy": privacy, "ingestion": ingestion_pb2_grpc.IngestionStub(channel), "stale": stale}
    finally:
        await channel.close()
        await stale_server.stop(0)
        await started.close()


async def _rows(privacy, sql: str, *args) -> list[tuple]:
    async with privacy.repo.pool.connection() as conn:
        return await (await conn.execute(sql, args)).fetchall()


async def test_ip_is_kept_only_as_keyed_hash_and_prefix(world: dict) -> None:
    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    await privacy.records.security_event(subject.subject_id, "auth_failed", "203.0.113.77")
    await privacy.records.security_event(subject.subject_id, "auth_failed", "2001:db8:85a3:1234:5678::1")
    rows = await _rows(
        privacy,
        "SELECT ip_hash, ip_prefix, subject_pseudonym FROM security_events WHERE subject_pseudonym = %s",
        privacy.config.pseudonym(subject.subject_id),
    )
    assert {r[1] for r in rows} == {"203.0.113.0/24", "2001:db8:85a3::/48"}
    dump = json.dumps(await _rows(privacy, "SELECT row_to_json(s)::text FROM security_events s"))
    assert "203.0.113.77" not in dump and "5678::1" not in dump
    assert subject.subject_id not in dump  # pseudonymous
    with pytest.raises(Exception) as info:
        await privacy.records.security_event("", "x", "not-an-ip")
    assert getattr(info.value, "code", "") == "INVALID_IP"


async def test_generation_records_are_pseudonymous_and_minimal(world: dict) -> None:
    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    await privacy.records.generation(subject.subject_id, "id_photo", {"spec_id": "us-passport", "beauty": "0"}, "ok", 210.5)
    rows = await _rows(
        privacy,
        "SELECT row_to_json(g)::text FROM generation_records g WHERE subject_pseudonym = %s",
        privacy.config.pseudonym(subject.subject_id),
    )
    assert len(rows) == 1
    record = json.loads(rows[0][0])
    assert set(record) == {"record_id", "subject_pseudonym", "interface", "parameters", "status", "latency_ms", "created_at"}
    assert subject.subject_id not in rows[0][0]


async def test_every_read_of_an_upload_is_in_the_access_log(world: dict) -> None:
    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    sid = subject.subject_id
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")

    def requests():
        yield ingestion_pb2.UploadRequest(metadata=ingestion_pb2.UploadMetadata(subject_id=sid, content_type="image/png"))
        yield ingestion_pb2.UploadRequest(chunk=buf.getvalue())

    upload = (await world["ingestion"].Upload(requests())).upload
    before = (await privacy.repo.inventory(sid, privacy.config.pseudonym(sid)))["access_log"]
    async for _ in world["ingestion"].Open(
        ingestion_pb2.OpenRequest(upload_id=upload.upload_id, subject_id=sid, purpose="render_id_photo")
    ):
        pass
    rows = await _rows(
        privacy, "SELECT actor, coalesce(resource_ref, resource), purpose FROM access_log WHERE subject_id = %s ORDER BY seq", sid
    )
    assert len(rows) == before + 1
    assert rows[-1] == ("ingestion", f"ingestion/upload/{upload.upload_id}", "render_id_photo")
    ok, _, _, problem = await privacy.records.verify_ledger()
    assert ok, problem


async def test_retention_breach_raises_an_alarm(world: dict) -> None:
    before = RETENTION_BREACHES.labels("stale", "uploads")._value.get()
    await world["privacy"].retention.sweep_all()
    assert RETENTION_BREACHES.labels("stale", "uploads")._value.get() == before + 1


async def test_every_holder_export_is_in_the_access_log_before_it_is_read(world: dict) -> None:
    # Privacy logs each DataHolder.Export it makes (the policy gives no one else that method), and
    # writes the entry before asking, so an export read never goes unlogged.
    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    sid = subject.subject_id
    export_id, _, _ = await privacy.exports.request(sid)
    rows = await _rows(
        privacy, "SELECT actor, coalesce(resource_ref, resource), purpose FROM access_log WHERE subject_id = %s ORDER BY seq", sid
    )
    assert rows == [
        ("privacy", "privacy/export", "export"),
        ("privacy", "stale/export", "export"),
        ("privacy", "ingestion/export", "export"),
        ("privacy", f"privacy/export/{export_id}", "export"),
    ]
    ok, _, _, problem = await privacy.records.verify_ledger()
    assert ok, problem


async def test_an_export_whose_read_cannot_be_logged_reads_nothing(world: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    asked: list[str] = []
    for holder in privacy.holders.remote:
        original = holder.export

        def spy(subject_id: str, original=original, name=holder.name):  # type: ignore[no-untyped-def]
            asked.append(name)
            return original(subject_id)

        monkeypatch.setattr(holder, "export", spy)

    async def log_down(*args: object) -> str:
        raise RuntimeError("access log unavailable")

    monkeypatch.setattr(privacy.repo, "add_access", log_down)
    with pytest.raises(RuntimeError):
        await privacy.exports.request(subject.subject_id)
    assert asked == []


def _png(side: int = 32) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


async def _upload(world: dict, sid: str) -> str:
    def requests():
        yield ingestion_pb2.UploadRequest(metadata=ingestion_pb2.UploadMetadata(subject_id=sid, content_type="image/png"))
        yield ingestion_pb2.UploadRequest(chunk=_png())

    return (await world["ingestion"].Upload(requests())).upload.upload_id


async def _erase(privacy, sid: str) -> None:
    erasure = await privacy.erasures.request(sid, "user_request")
    for _ in range(200):
        if await privacy.erasures.drive(erasure.erasure_id):
            return
    raise AssertionError("erasure did not complete")


async def test_the_access_log_after_erasure_carries_no_id_the_export_contains(world: dict) -> None:
    import io
    import re
    import zipfile

    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    sid = subject.subject_id
    upload_id = await _upload(world, sid)
    async for _ in world["ingestion"].Open(ingestion_pb2.OpenRequest(upload_id=upload_id, subject_id=sid, purpose="render_id_photo")):
        pass
    export_id, _, _ = await privacy.exports.request(sid)
    archive = zipfile.ZipFile(io.BytesIO(await privacy.exports.download(export_id, sid)))
    exported = " ".join(archive.read(name).decode(errors="replace") for name in archive.namelist())
    # While the subject is active, its export shows the full resources it was read as.
    assert f"ingestion/upload/{upload_id}" in exported
    ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", exported)) | {export_id, sid}
    assert upload_id in ids

    await _erase(privacy, sid)
    rows = await _rows(privacy, "SELECT * FROM access_log")
    dumped = " ".join(str(v) for row in rows for v in row)
    assert "ingestion/upload" in dumped  # the kinds of reads stay, chained
    assert not [i for i in ids if i in dumped], "an id from the export is still in the access log"
    assert not [i for i in ids if i.replace("-", "") in dumped.replace("-", "")]
    ok, _, accesses, problem = await privacy.records.verify_ledger()
    assert ok, problem
    assert accesses >= 4


async def test_a_record_arriving_after_erasure_starts_is_refused(world: dict) -> None:
    from likeness_platform.errors import SubjectErasing

    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    sid = subject.subject_id
    pseudonym = privacy.config.pseudonym(sid)
    await privacy.records.generation(sid, "id_photo", {}, "ok", 1.0)
    await privacy.erasures.request(sid, "user_request")
    # Erasing: nothing new is linked to the subject, even before any holder has been visited.
    with pytest.raises(SubjectErasing):
        await privacy.records.generation(sid, "id_photo", {}, "ok", 1.0)
    with pytest.raises(SubjectErasing):
        await privacy.records.access(sid, "render", "ingestion/upload/late", "render_id_photo")
    await privacy.records.security_event(sid, "late_event", "203.0.113.9")
    await _erase(privacy, sid)
    # Erased: refused too, and the security event that came in was kept without the subject's pseudonym.
    with pytest.raises(SubjectErasing):
        await privacy.records.generation(sid, "id_photo", {}, "ok", 1.0)
    with pytest.raises(SubjectErasing):
        await privacy.records.access(sid, "render", "ingestion/upload/late", "render_id_photo")
    assert await _rows(privacy, "SELECT count(*) FROM generation_records WHERE subject_pseudonym = %s", pseudonym) == [(0,)]
    assert await _rows(privacy, "SELECT count(*) FROM security_events WHERE subject_pseudonym = %s", pseudonym) == [(0,)]
    assert await _rows(privacy, "SELECT subject_pseudonym FROM security_events WHERE event_type = 'late_event'") == [(None,)]
    assert await _rows(privacy, "SELECT count(*) FROM access_log WHERE resource_ref LIKE '%%late%%'") == [(0,)]


async def test_a_large_export_is_built_and_downloaded_in_bounded_memory(world: dict) -> None:
    import tracemalloc
    import zipfile

    from likeness_platform.errors import ResourceExhausted

    privacy = world["privacy"]
    subject, _ = await privacy.subjects.register("device", False)
    sid = subject.subject_id
    note_chars, notes = 2 * 1024 * 1024, 24  # about 48 MB held, well over what the export may take in memory
    for _ in range(notes):
        world["stale"].add(sid, os.urandom(note_chars // 2).hex())
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        export_id, _, size = await privacy.exports.request(sid)
        built_peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        total, chunks = 0, 0
        with tempfile.TemporaryFile() as out:
            async for chunk in privacy.exports.stream(export_id, sid):
                out.write(chunk)
                total += len(chunk)
                chunks += 1
            streamed_peak = tracemalloc.get_traced_memory()[1] - baseline
            out.seek(0)
            with zipfile.ZipFile(out) as archive:
                assert len([n for n in archive.namelist() if n.startswith("stale/")]) == notes
    finally:
        tracemalloc.stop()
    assert size > 24 * 1024 * 1024 and total == size and chunks >= 24
    # Building holds about one item and the spool's in-memory part; downloading holds about one chunk.
    assert built_peak < 16 * 1024 * 1024, built_peak
    assert streamed_peak < 8 * 1024 * 1024, streamed_peak
    with pytest.raises(NotFoundError):
        await privacy.exports.download(export_id, sid)  # once
    # A cap bounds the export's size: past it, the export is refused, not built.
    privacy.config.export_max_bytes = 4 * 1024 * 1024
    try:
        with pytest.raises(ResourceExhausted) as info:
            await privacy.exports.request(sid)
        assert info.value.code == "EXPORT_TOO_LARGE"
    finally:
        privacy.config.export_max_bytes = 2 * 1024**3


async def test_concurrent_accesses_extend_one_unbroken_chain(world: dict) -> None:
    """The access log's writes are pipelined (check, lock and tail in one round trip): many at
    once from several connections still make one chain, each entry linked to the one before,
    and a refused one (an unknown subject, a malformed id) leaves nothing behind."""
    import asyncio
    import uuid

    from likeness_platform.errors import SubjectErasing
    from likeness_privacy.domain import chain

    privacy = world["privacy"]
    subjects = [(await privacy.subjects.register("device", False))[0].subject_id for _ in range(3)]
    before = len(await privacy.repo.access_entries())
    hashes = await asyncio.gather(
        *(privacy.records.access(subjects[i % 3], "render", f"ingestion/upload/u{i}", "render_id_photo") for i in range(30))
    )
    for stranger in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(SubjectErasing):
            await privacy.records.access(stranger, "render", "ingestion/upload/x", "render_id_photo")
    entries = await privacy.repo.access_entries()
    assert len(entries) == before + 30 and len(set(hashes)) == 30
    assert chain.verify(entries) == (len(entries), "")
    assert {e.hash for e in entries[before:]} == set(hashes)
