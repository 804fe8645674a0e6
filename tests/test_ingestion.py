"""Ingestion on real servers: privacy for keys and access log, PostgreSQL, a local blob store."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness.privacy.v1 import dataholder_pb2, dataholder_pb2_grpc, privacy_pb2, privacy_pb2_grpc
from likeness_imaging.codec import decode_rgb
from likeness_platform.blobs import new_blob_name
from tests.support.pki import mesh_channel
from tests.support.services import Started, start_ingestion, start_privacy

IMAGES = Path(__file__).resolve().parents[1] / "services" / "ingestion" / "tests"
import importlib.util  # noqa: E402

_spec = importlib.util.spec_from_file_location("ingestion_test_images", IMAGES / "images.py")
assert _spec and _spec.loader
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)


@pytest.fixture
async def mesh(database_url: str, tmp_path: Path) -> AsyncIterator[dict]:
    started = Started()
    from tests.support.services import free_port

    ingestion_port = free_port()
    privacy, privacy_addr = await start_privacy(database_url, {"ingestion": f"127.0.0.1:{ingestion_port}"}, started)
    service, addr = await start_ingestion(database_url, privacy_addr, tmp_path / "blobs", started, port=ingestion_port)
    channel = mesh_channel(addr, options=[("grpc.max_receive_message_length", 64 << 20)])
    pchannel = mesh_channel(privacy_addr)
    try:
        yield {
            "ingestion": ingestion_pb2_grpc.IngestionStub(channel),
            "holder": dataholder_pb2_grpc.DataHolderStub(channel),
            "privacy": privacy_pb2_grpc.PrivacyStub(pchannel),
            "privacy_service": privacy,
            "service": service,
            "blob_dir": tmp_path / "blobs",
        }
    finally:
        await channel.close()
        await pchannel.close()
        await started.close()


async def _subject(m: dict) -> str:
    reply = await m["privacy"].RegisterSubject(privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE))
    return reply.subject.subject_id


def _requests(subject: str, data: bytes, content_type: str = "image/jpeg", chunk: int = 1 << 20):
    yield ingestion_pb2.UploadRequest(
        metadata=ingestion_pb2.UploadMetadata(subject_id=subject, content_type=content_type, purpose="id_photo")
    )
    for i in range(0, len(data), chunk):
        yield ingestion_pb2.UploadRequest(chunk=data[i : i + chunk])


async def _open(m: dict, upload_id: str, subject: str) -> bytes:
    parts = []
    async for message in m["ingestion"].Open(ingestion_pb2.OpenRequest(upload_id=upload_id, subject_id=subject, purpose="test")):
        if message.HasField("chunk"):
            parts.append(message.chunk)
    return b"".join(parts)


async def test_upload_open_strips_gps_and_stays_upright(mesh: dict) -> None:
    subject = await _subject(mesh)
    data, upright = images.rotated_with_exif()
    reply = await mesh["ingestion"].Upload(_requests(subject, data))
    assert reply.upload.persisted and (reply.upload.width, reply.upload.height) == (upright.shape[1], upright.shape[0])
    opened = await _open(mesh, reply.upload.upload_id, subject)
    # Pixels kept as stored; the orientation is the only metadata left, and readers apply it.
    assert dict(Image.open(io.BytesIO(opened)).getexif()) == {0x0112: 6} and b"SecretCam" not in opened
    assert np.abs(decode_rgb(opened).astype(np.int16) - upright.astype(np.int16)).mean() < 6


async def test_12mp_jpeg_streams_through_in_chunks(mesh: dict) -> None:
    subject = await _subject(mesh)
    data = images.big_jpeg()
    assert len(data) > 1 << 20  # several chunks
    reply = await mesh["ingestion"].Upload(_requests(subject, data, chunk=256 * 1024))
    assert (reply.upload.width, reply.upload.height) == (4000, 3000)
    opened = await _open(mesh, reply.upload.upload_id, subject)
    assert Image.open(io.BytesIO(opened)).size == (4000, 3000)


async def test_blobs_on_disk_are_encrypted_and_anonymous(mesh: dict) -> None:
    subject = await _subject(mesh)
    await mesh["ingestion"].Upload(_requests(subject, images.png_variant("RGBA"), "image/png"))
    blobs = [p for p in mesh["blob_dir"].rglob("*") if p.is_file()]
    assert blobs
    for path in blobs:
        raw = path.read_bytes()
        assert b"\xff\xd8\xff" not in raw[:64] and b"\x89PNG" not in raw
        assert subject.encode() not in raw and subject not in str(path)
        assert subject.replace("-", "").encode() not in raw


async def test_another_subject_cannot_see_the_upload(mesh: dict) -> None:
    owner, other = await _subject(mesh), await _subject(mesh)
    reply = await mesh["ingestion"].Upload(_requests(owner, images.webp(), "image/webp"))
    for call in (
        mesh["ingestion"].Describe(ingestion_pb2.DescribeRequest(upload_id=reply.upload.upload_id, subject_id=other)),
        _open(mesh, reply.upload.upload_id, other),
        mesh["ingestion"].Describe(ingestion_pb2.DescribeRequest(upload_id=str(uuid.uuid4()), subject_id=owner)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert info.value.details() == "no such upload"


async def test_rejections_map_to_status_codes(mesh: dict) -> None:
    subject = await _subject(mesh)
    cases = [
        (b"GIF89a" + b"0" * 50, grpc.StatusCode.INVALID_ARGUMENT, "UNSUPPORTED_FORMAT"),
        (images.bomb_png(), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_PIXELS"),
        (images.jpeg(images.astronaut())[:3000], grpc.StatusCode.INVALID_ARGUMENT, "CORRUPT_IMAGE"),
    ]
    for data, status, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await mesh["ingestion"].Upload(_requests(subject, data, ""))
        assert info.value.code() == status
        assert dict(info.value.trailing_metadata())["likeness-error-code"] == code
    empty = iter([ingestion_pb2.UploadRequest(metadata=ingestion_pb2.UploadMetadata(subject_id=subject))])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["ingestion"].Upload(empty)
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "EMPTY"


async def test_sweep_removes_expired_uploads_and_orphan_blobs(mesh: dict) -> None:
    subject = await _subject(mesh)
    reply = await mesh["ingestion"].Upload(_requests(subject, images.webp(), "image/webp"))
    service = mesh["service"]
    async with service.store.pool.connection() as conn:
        await conn.execute("UPDATE uploads SET expires_at = now() - interval '1 second' WHERE upload_id = %s", (reply.upload.upload_id,))
    orphan = new_blob_name()
    await service.store.blobs.put(orphan, b"left behind by a crash")
    old = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    orphan_path = mesh["blob_dir"] / orphan[:2] / orphan
    os.utime(orphan_path, (old, old))
    swept = await mesh["holder"].Sweep(dataholder_pb2.SweepRequest())
    removed = {c.category: c.count for c in swept.removed}
    assert removed["uploads"] >= 1 and removed["orphan_blobs"] >= 1
    assert not orphan_path.exists()
    with pytest.raises(grpc.aio.AioRpcError):
        await mesh["ingestion"].Describe(ingestion_pb2.DescribeRequest(upload_id=reply.upload.upload_id, subject_id=subject))


async def test_erase_leaves_inventory_at_zero_and_refuses_new_writes(mesh: dict) -> None:
    subject = await _subject(mesh)
    for _ in range(2):
        await mesh["ingestion"].Upload(_requests(subject, images.webp(), "image/webp"))
    inventory = await mesh["holder"].Inventory(dataholder_pb2.InventoryRequest(subject_id=subject))
    assert {c.category: c.count for c in inventory.counts} == {"uploads": 2, "blobs": 2}
    erased = await mesh["holder"].Erase(dataholder_pb2.EraseRequest(subject_id=subject, request_id="t"))
    assert {c.category: c.count for c in erased.erased} == {"uploads": 2, "blobs": 2}
    assert {c.category: c.count for c in erased.remaining} == {"uploads": 0, "blobs": 0}
    await mesh["privacy_service"].repo.start_erasure(subject, "p", "test", [])
    mesh["service"].store.keys.forget(subject)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await mesh["ingestion"].Upload(_requests(subject, images.webp(), "image/webp"))
    assert dict(info.value.trailing_metadata())["likeness-error-code"] == "SUBJECT_ERASING"
