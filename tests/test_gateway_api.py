"""The public API on real services (in-process servers, real PostgreSQL): devices, uploads, limits, erasure."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from likeness_gateway.domain.tokens import token_hash
from likeness_gateway.errors import ApiError
from likeness_privacy.usecases import PrivacyUseCases
from tests.support.services import Started, free_port, start_gateway, start_ingestion, start_privacy

DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": "2.0.0",
    "language": "en-GB",
    "age_confirmed": True,
}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(out, format="JPEG")
    return out.getvalue()


async def _api(database_url: str, tmp_path: Path, ttl: int) -> tuple[Started, Any, Any, PrivacyUseCases]:
    started = Started()
    privacy_port, ingestion_port = free_port(), free_port()
    gw, client, gateway_grpc = await start_gateway(
        database_url, {"privacy": f"127.0.0.1:{privacy_port}", "ingestion": f"127.0.0.1:{ingestion_port}"}, started
    )
    privacy, _ = await start_privacy(
        database_url, {"gateway": gateway_grpc, "ingestion": f"127.0.0.1:{ingestion_port}"}, started, port=privacy_port
    )
    await start_ingestion(database_url, f"127.0.0.1:{privacy_port}", tmp_path / "blobs", started, ttl=ttl, port=ingestion_port)
    return started, gw, client, privacy


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[tuple]:
    started, gw, client, _ = await _api(database_url, tmp_path, 86400)
    try:
        yield gw, client
    finally:
        await started.close()


async def _token(client) -> str:
    reply = await client.post("/v1/devices", json=DEVICE)
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


async def test_under_13_is_refused_and_nothing_is_stored(api) -> None:
    gw, client = api
    async with gw.devices.pool.connection() as conn:
        before = (await (await conn.execute("SELECT count(*) FROM devices")).fetchone())[0]
    reply = await client.post("/v1/devices", json={**DEVICE, "age_confirmed": False})
    assert reply.status_code == 403 and reply.json()["error"]["code"] == "AGE_NOT_CONFIRMED"
    async with gw.devices.pool.connection() as conn:
        after = (await (await conn.execute("SELECT count(*) FROM devices")).fetchone())[0]
    assert after == before


async def test_token_is_stored_only_as_a_hash(api) -> None:
    gw, client = api
    reply = await client.post("/v1/devices", json=DEVICE)
    assert reply.status_code == 201, reply.text
    # Internal ids stay inside the mesh: the reply names the device and its token, not the subject.
    assert set(reply.json()) == {"device_id", "token", "expires_at"}
    token, device_id = reply.json()["token"], reply.json()["device_id"]
    async with gw.devices.pool.connection() as conn:
        stored = await (await conn.execute("SELECT token_hash FROM devices WHERE device_id = %s", (device_id,))).fetchall()
        dump = await (await conn.execute("SELECT coalesce(string_agg(row_to_json(d)::text, ''), '') FROM devices d")).fetchone()
    # The device's row keeps the token's hash, and no column of any device row keeps the token or its random part.
    assert stored == [(token_hash(token),)]
    assert token.removeprefix("lk_") not in dump[0]


async def test_upload_multipart_and_raw(api) -> None:
    _, client = api
    auth = {"Authorization": f"Bearer {await _token(client)}"}
    multi = await client.post("/v1/uploads", files={"file": ("me.jpg", _jpeg(), "image/jpeg")}, headers=auth)
    assert multi.status_code == 201, multi.text
    assert multi.json()["width"] == 90 and multi.json()["stored"] is True
    raw = await client.post("/v1/uploads", content=_jpeg(), headers={**auth, "Content-Type": "image/jpeg"})
    assert raw.status_code == 201
    bad = await client.post("/v1/uploads", content=b"GIF89a" + b"0" * 64, headers={**auth, "Content-Type": "application/octet-stream"})
    assert bad.status_code == 415 and bad.json()["error"]["code"] == "UNSUPPORTED_FORMAT"
    empty = await client.post("/v1/uploads", content=b"", headers=auth)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "EMPTY"


async def test_errors_have_one_shape(api) -> None:
    _, client = api
    for reply in (
        await client.get("/v1/me/export"),
        await client.post("/v1/devices", json={"platform": "nokia"}),
        await client.get("/v1/no-such-route"),
    ):
        body = reply.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert (await client.get("/v1/me/export")).status_code == 401


async def test_device_rate_limit_answers_429_with_retry_after(api) -> None:
    gw, client = api
    gw.settings.rate_limit_device_per_minute = 3
    auth = {"Authorization": f"Bearer {await _token(client)}"}
    codes = [(await client.get("/v1/me/export", headers=auth)).status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429
    limited = await client.get("/v1/me/export", headers=auth)
    assert int(limited.headers["Retry-After"]) >= 1 and limited.json()["error"]["code"] == "RATE_LIMITED"


async def test_limits_of_zero_are_off_and_make_no_limiter_call(api) -> None:
    gw, client = api
    counted: list[str] = []
    limiter = gw.limiter

    class Recording:
        async def hit(self, key: str, limit: int, window: int = 60) -> int:
            counted.append(key.split(":", 1)[0])
            return await limiter.hit(key, limit, window)

    gw.limiter = Recording()
    auth = {"Authorization": f"Bearer {await _token(client)}"}
    counted.clear()
    gw.settings.rate_limit_device_per_minute = gw.settings.rate_limit_ip_per_minute = 0
    assert [(await client.get("/v1/me/export", headers=auth)).status_code for _ in range(3)] == [200, 200, 200]
    assert "device" not in counted and "ip" not in counted
    # Back on, both are counted again, and the device's limit answers 429.
    gw.settings.rate_limit_device_per_minute, gw.settings.rate_limit_ip_per_minute = 2, 1000
    codes = [(await client.get("/v1/me/export", headers=auth)).status_code for _ in range(3)]
    assert codes == [200, 200, 429] and {"device", "ip"} <= set(counted)


async def test_delete_me_kills_the_token_and_completes(database_url: str, tmp_path: Path) -> None:
    started, _, client, privacy = await _api(database_url, tmp_path, 86400)
    try:
        auth = {"Authorization": f"Bearer {await _token(client)}"}
        assert (await client.post("/v1/uploads", content=_jpeg(), headers={**auth, "Content-Type": "image/jpeg"})).status_code == 201
        deleted = await client.delete("/v1/me", headers=auth)
        assert deleted.status_code == 202
        erasure_id = deleted.json()["erasure_id"]
        assert (await client.get("/v1/me/export", headers=auth)).status_code == 401
        # No background loop runs here: drive the erasure by hand until it reports complete.
        deadline = time.monotonic() + 20
        while not await privacy.erasures.drive(erasure_id):
            assert time.monotonic() < deadline, "the erasure did not complete"
            await asyncio.sleep(0.05)
        status = (await client.get(f"/v1/me/erasures/{erasure_id}")).json()
        assert status["status"] == "completed" and status["deadline"] and status["ledger_hash"]
        receipts = {r["holder"]: r for r in status["receipts"]}
        assert set(receipts) == {"privacy", "gateway", "ingestion"}
        assert receipts["ingestion"]["erased"] == {"uploads": 1, "blobs": 1}
        assert all(not any(r["remaining"].values()) for r in receipts.values())
    finally:
        await started.close()


async def test_memory_only_mode_stores_nothing(database_url: str, tmp_path: Path) -> None:
    started, gw, client, _ = await _api(database_url, tmp_path, 0)
    try:
        auth = {"Authorization": f"Bearer {await _token(client)}"}
        reply = await client.post("/v1/uploads", content=_jpeg(), headers={**auth, "Content-Type": "image/jpeg"})
        assert reply.status_code == 201 and reply.json()["stored"] is False
        assert not list((tmp_path / "blobs").rglob("*")) or all(p.is_dir() for p in (tmp_path / "blobs").rglob("*"))
        device = await gw.devices.by_token_hash(token_hash(auth["Authorization"][7:]))
        upload_id = reply.json()["upload_id"]
        assert gw.inline_images.get(upload_id, device.subject_id) is not None
        with pytest.raises(ApiError) as info:
            await gw.ingestion.describe(device.subject_id, upload_id)
        assert info.value.code == "MEMORY_ONLY"
    finally:
        await started.close()


async def test_an_erasure_clears_in_memory_images_on_every_replica(database_url: str, tmp_path: Path) -> None:
    # Two gateway replicas on one database, in memory-only mode: each holds an image of the subject. The
    # DELETE reaches one of them; the other drops its image on its own check, well before the erasure ends.
    started, gw_a, client_a, privacy = await _api(database_url, tmp_path, 0)
    try:
        upstreams = {"privacy": gw_a.settings.privacy_addr, "ingestion": gw_a.settings.ingestion_addr}
        gw_b, client_b, _ = await start_gateway(database_url, upstreams, started)
        replica_b = started.wirings["gateway"]
        gw_b.settings.inline_image_check_seconds = 0.05
        auth = {"Authorization": f"Bearer {await _token(client_a)}"}
        other = {"Authorization": f"Bearer {await _token(client_a)}"}  # another subject, untouched
        uploads = {}
        for name, client in (("a", client_a), ("b", client_b), ("other", client_b)):
            headers = {**(other if name == "other" else auth), "Content-Type": "image/jpeg"}
            reply = await client.post("/v1/uploads", content=_jpeg(), headers=headers)
            assert reply.status_code == 201 and reply.json()["stored"] is False
            uploads[name] = reply.json()["upload_id"]
        subject = (await gw_a.devices.by_token_hash(token_hash(auth["Authorization"][7:]))).subject_id
        other_subject = (await gw_a.devices.by_token_hash(token_hash(other["Authorization"][7:]))).subject_id
        assert (gw_a.inline_images.count(subject), gw_b.inline_images.count(subject)) == (1, 1)
        loops = [asyncio.ensure_future(job()) for job in replica_b.background]
        try:
            await asyncio.sleep(0.2)
            assert gw_b.inline_images.count(subject) == 1  # an active subject's images stay
            deleted = await client_a.delete("/v1/me", headers=auth)
            assert deleted.status_code == 202
            assert gw_a.inline_images.count(subject) == 0  # the replica that answered, at once
            deadline = time.monotonic() + 5
            while gw_b.inline_images.count(subject):
                assert time.monotonic() < deadline, "replica b still holds the erased subject's image"
                await asyncio.sleep(0.02)
            assert gw_b.inline_images.get(uploads["b"], subject) is None
            assert gw_b.inline_images.get(uploads["other"], other_subject) is not None
            erasure_id = deleted.json()["erasure_id"]
            while not await privacy.erasures.drive(erasure_id):
                await asyncio.sleep(0.05)
        finally:
            for loop in loops:
                loop.cancel()
        receipts = {r.holder: r for r in (await privacy.erasures.get(erasure_id)).receipts}
        assert receipts["gateway"].remaining == {"devices": 0, "accounts": 0, "account_codes": 0, "account_signups": 0, "inline_images": 0}
    finally:
        await started.close()


def test_render_enums_keep_their_public_json_strings() -> None:
    """render.v1 carries enums; the public HTTP API keeps the strings it always had."""
    from likeness.render.v1 import render_pb2
    from likeness_gateway.adapters.render_client import result_kind_name
    from likeness_gateway.routes.catalog import spec_out
    from likeness_gateway.routes.idphotos import report_out

    spec = spec_out(render_pb2.Spec(id="x", format=render_pb2.IMAGE_FORMAT_JPEG, medium=render_pb2.MEDIUM_PRINT))
    assert (spec.format, spec.medium) == ("JPEG", "print")
    bare = spec_out(render_pb2.Spec(id="y", medium=render_pb2.MEDIUM_BOTH))
    assert (bare.format, bare.medium) == ("", "both")
    report = report_out(
        render_pb2.ComplianceReport(
            issues=[
                render_pb2.ComplianceIssue(code="BLURRY", severity=render_pb2.SEVERITY_ERROR),
                render_pb2.ComplianceIssue(code="HEAD_HEIGHT_OUT_OF_RANGE", severity=render_pb2.SEVERITY_WARNING),
            ]
        )
    )
    assert [i.severity for i in report.issues] == ["error", "warning"]
    kinds = (
        render_pb2.RESULT_KIND_ID_PHOTO,
        render_pb2.RESULT_KIND_SHEET,
        render_pb2.RESULT_KIND_PORTRAIT,
        render_pb2.RESULT_KIND_HAIRSTYLE,
    )
    assert [result_kind_name(k) for k in kinds] == ["id_photo", "sheet", "portrait", "hairstyle"]
