"""An export's progress is visible in GET /v1/me/export while it is built (real gateway, privacy and holders over mTLS)."""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from likeness_gateway.domain.tokens import token_hash
from likeness_platform.dataholder import ExportItem
from tests.support.memholder import MemoryHolder, serve_holder
from tests.support.services import Started, start_gateway, start_privacy

MiB = 1024 * 1024
DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": "2.0.0",
    "language": "en-GB",
    "age_confirmed": True,
}


class SlowHolder(MemoryHolder):
    """Photos of 1 MiB each, one every `pause` seconds; it stops before photo `gate_at` until `gate` is set."""

    name = "photos"

    def __init__(self, photos: int, gate_at: int, pause: float = 0.3) -> None:
        super().__init__()
        self.photos, self.gate_at, self.pause = photos, gate_at, pause
        self.gate = asyncio.Event()
        self.fail = False
        self.data = os.urandom(MiB)

    async def export_size(self, subject_id: str) -> int:
        return self.photos * MiB

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        for i in range(self.photos):
            if i == self.gate_at:
                await self.gate.wait()
                if self.fail:
                    raise RuntimeError("the photo store went away")
            await asyncio.sleep(self.pause)
            yield ExportItem("uploads", f"photo-{i}.jpg", "image/jpeg", bytes([i]) + self.data[1:])


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[dict[str, Any]]:
    started = Started()
    photos = SlowHolder(photos=8, gate_at=5)
    server = await serve_holder(photos)
    # The test polls progress every 50 ms for as long as the export takes: on a slow machine that is
    # more than the device's 120 requests a minute, which this test is not about.
    gw, client, gateway_grpc = await start_gateway(
        database_url, {}, started, rate_limit_device_per_minute=100_000, rate_limit_ip_per_minute=100_000
    )
    privacy, privacy_addr = await start_privacy(database_url, {"gateway": gateway_grpc, "photos": f"127.0.0.1:{server.port}"}, started)
    # The gateway's privacy client, pointed at privacy now that it is up.
    from likeness_gateway.adapters.privacy_client import PrivacyClient

    await gw.privacy.close()
    gw.privacy = PrivacyClient(privacy_addr, gw.settings, gw.settings.upstream_deadline_seconds)
    started.closers.append(gw.privacy.close)
    reply = await client.post("/v1/devices", json=DEVICE)
    assert reply.status_code == 201, reply.text
    auth = {"Authorization": f"Bearer {reply.json()['token']}"}
    try:
        yield {"client": client, "auth": auth, "photos": photos, "privacy": privacy, "gw": gw}
    finally:
        photos.gate.set()
        await server.stop(0)
        await started.close()


async def _progress(w: dict[str, Any]) -> dict[str, Any]:
    reply = await w["client"].get("/v1/me/export", headers={**w["auth"], "Accept": "application/json"})
    assert reply.status_code == 200 and reply.headers["cache-control"] == "private, no-store", reply.text
    return reply.json()


async def _until(w: dict[str, Any], done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        seen.append(await _progress(w))
        if done(seen[-1]):
            return seen
        assert time.monotonic() < deadline, seen[-1]
        await asyncio.sleep(0.05)


def _photos_in(zip_bytes: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        assert archive.testzip() is None
        return sorted(n for n in archive.namelist() if n.startswith("photos/"))


async def test_progress_of_an_export_being_streamed_is_visible_while_it_runs(world: dict[str, Any]) -> None:
    w = world
    assert (await _progress(w))["state"] == "none"
    download = asyncio.create_task(w["client"].get("/v1/me/export", headers=w["auth"]))
    # The build gathers photos while the caller waits for its zip; another GET sees how far it has got.
    seen = await _until(w, lambda p: p["state"] == "building" and p["bytes_gathered"] >= 5 * MiB)
    building = [p for p in seen if p["state"] == "building"]
    assert len({p["export_id"] for p in building}) == 1
    gathered = [p["bytes_gathered"] for p in building]
    assert gathered == sorted(gathered) and len(set(gathered)) >= 2, gathered  # it moves, and only forwards
    now = seen[-1]
    assert now["bytes_expected"] == 8 * MiB and now["parts_expected"] == 3  # privacy, gateway, photos
    assert now["parts_written"] == 2  # privacy's and the gateway's items are in; the photos are coming
    assert now["bytes_written"] > 0 and now["percent"] == 62  # 5 of 8 MiB
    assert now["started_at"] and now["updated_at"] and now["expires_at"] and now["error_code"] is None
    await asyncio.sleep(0.5)  # held back by the holder: no progress, and no completion claimed
    held = await _progress(w)
    assert held["state"] == "building" and held["percent"] == 62 and not download.done()
    w["photos"].gate.set()
    reply = await download
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
    assert reply.headers["content-disposition"].endswith(f'likeness-export-{now["export_id"]}.zip"')
    assert _photos_in(reply.content) == sorted(f"photos/photo-{i}.jpg" for i in range(8))
    assert (await _progress(w))["state"] == "none"  # downloaded once, then gone


async def test_an_export_built_in_the_background_is_polled_then_downloaded(world: dict[str, Any]) -> None:
    w = world
    w["photos"].gate.set()
    started = await w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"})
    assert started.status_code == 202 and started.headers["location"] == "/v1/me/export"
    assert started.headers["preference-applied"] == "respond-async"
    first = started.json()
    assert first["state"] == "building" and first["percent"] < 100 and first["bytes_expected"] == 8 * MiB
    # Asking again while it builds answers the same export rather than starting another.
    again = await w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"})
    assert again.status_code == 202 and again.json()["export_id"] == first["export_id"]
    seen = await _until(w, lambda p: p["state"] != "building")
    ready = seen[-1]
    assert ready["state"] == "ready" and ready["percent"] == 100 and ready["export_id"] == first["export_id"]
    # The photos and the few KiB of records and device rows the other two hold; stored, not deflated (JPEGs).
    assert 8 * MiB < ready["bytes_gathered"] < 8 * MiB + 64 * 1024 and ready["parts_written"] == 3
    assert ready["bytes_gathered"] < ready["bytes_written"] < ready["bytes_gathered"] + 64 * 1024
    assert all(p["percent"] < 100 for p in seen[:-1])
    reply = await w["client"].get("/v1/me/export", headers=w["auth"])
    assert reply.status_code == 200 and len(reply.content) == ready["bytes_written"]
    assert reply.headers["content-disposition"].endswith(f'likeness-export-{first["export_id"]}.zip"')
    assert len(_photos_in(reply.content)) == 8
    assert (await _progress(w))["state"] == "none"


async def test_a_build_that_fails_says_why_and_keeps_nothing(world: dict[str, Any]) -> None:
    w = world
    w["photos"].fail = True
    w["photos"].gate.set()
    started = await w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"})
    assert started.status_code == 202
    failed = (await _until(w, lambda p: p["state"] != "building"))[-1]
    assert failed["state"] == "failed" and failed["error_code"] == "HOLDER_UNAVAILABLE" and failed["percent"] < 100
    async with w["privacy"].repo.pool.connection() as conn:
        rows = await (await conn.execute("SELECT count(*) FROM export_chunks WHERE export_id = %s", (failed["export_id"],))).fetchone()
    assert rows == (0,)
    # A plain GET then builds a new one (the holder is back), and answers with it.
    w["photos"].fail = False
    reply = await w["client"].get("/v1/me/export", headers=w["auth"])
    assert reply.status_code == 200 and len(_photos_in(reply.content)) == 8


async def test_an_export_interrupted_by_a_privacy_restart_is_built_again(world: dict[str, Any]) -> None:
    """A shutdown cancels the build (EXPORT_INTERRUPTED); privacy's resumer builds it again, which the poll then shows;
    a build whose process died (no longer moving) is resumed the same way, and none is restarted forever."""
    from datetime import timedelta

    from likeness_privacy.usecases.export import MAX_RESTARTS

    w = world
    exports = w["privacy"].exports
    started = await w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"})
    first = started.json()["export_id"]
    await _until(w, lambda p: p["state"] == "building" and p["bytes_gathered"] >= 5 * MiB)  # held at photo 5
    for task in list(exports._building):  # what stopping privacy does to a build in flight
        task.cancel()
    interrupted = (await _until(w, lambda p: p["state"] != "building"))[-1]
    assert (interrupted["export_id"], interrupted["state"], interrupted["error_code"]) == (first, "failed", "EXPORT_INTERRUPTED")

    assert await exports.resume_interrupted() == 1  # what the resumer does when privacy starts again
    again = await _progress(w)
    assert again["state"] == "building" and again["export_id"] != first
    assert await exports.resume_interrupted() == 0  # claimed once: a second replica's resumer finds nothing
    w["photos"].gate.set()
    ready = (await _until(w, lambda p: p["state"] != "building"))[-1]
    assert ready["state"] == "ready" and ready["export_id"] == again["export_id"]
    async with w["privacy"].repo.pool.connection() as conn:
        row = await (await conn.execute("SELECT state, error_code FROM exports WHERE export_id = %s", (first,))).fetchone()
    assert row == ("failed", "EXPORT_RESTARTED")
    reply = await w["client"].get("/v1/me/export", headers=w["auth"])
    assert reply.status_code == 200 and len(_photos_in(reply.content)) == 8

    # A build on a replica that died stops moving; once stale it is resumed too, but only MAX_RESTARTS times in all.
    # (Driven through privacy's use cases from here: polling the gateway this often would be rate-limited.)
    async with w["privacy"].repo.pool.connection() as conn:
        subject = str((await (await conn.execute("SELECT subject_id FROM exports WHERE export_id = %s", (first,))).fetchone())[0])

    async def settled() -> Any:
        deadline = time.monotonic() + 20
        while (seen := await exports.progress(subject)).state == "building":
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)
        return seen

    restarts = [1]
    for _ in range(MAX_RESTARTS + 1):
        building = await exports.start(subject)
        await settled()  # (the gate is open: it completes; then it is rewound to a stale build)
        async with w["privacy"].repo.pool.connection() as conn:
            await conn.execute(
                "UPDATE exports SET state = 'building', updated_at = now() - %s WHERE export_id = %s",
                (timedelta(minutes=10), building.export_id),
            )
        stale = await exports.progress(subject)
        assert (stale.state, stale.error_code) == ("failed", "EXPORT_INTERRUPTED")
        restarts.append(await exports.resume_interrupted())
        if not restarts[-1]:
            break
        assert (await exports.progress(subject)).export_id != building.export_id
    # The first restart plus one more reach the cap: the last interrupted build is left as it is, and says so.
    assert restarts == [1] * MAX_RESTARTS + [0], restarts
    last = await exports.progress(subject)
    assert (last.export_id, last.state, last.error_code) == (building.export_id, "failed", "EXPORT_INTERRUPTED")


async def test_concurrent_background_requests_start_one_build(world: dict[str, Any]) -> None:
    """Ten `Prefer: respond-async` requests at once (an impatient app, or someone multiplying the work of gathering
    every photo) start one build, and all ten answer it; asking again once it is ready answers that export."""
    w = world
    asks = [w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"}) for _ in range(10)]
    replies = await asyncio.gather(*asks)
    assert all(r.status_code == 202 for r in replies), [r.text for r in replies]
    assert len({r.json()["export_id"] for r in replies}) == 1, [r.json()["export_id"] for r in replies]
    device = await w["gw"].devices.by_token_hash(token_hash(w["auth"]["Authorization"].split()[1]))
    subject = uuid.UUID(str(device.subject_id))
    async with w["privacy"].repo.pool.connection() as conn:
        builds = await (await conn.execute("SELECT count(*) FROM exports WHERE subject_id = %s", (subject,))).fetchone()
    assert builds is not None and builds[0] == 1
    w["photos"].gate.set()
    ready = (await _until(w, lambda p: p["state"] != "building"))[-1]
    assert ready["state"] == "ready"
    # The start itself (privacy's RequestExport) answers the ready export rather than building another next to it.
    started = await w["privacy"].exports.start(str(subject))
    assert started.export_id == ready["export_id"] and started.state == "ready"


async def test_a_plain_download_while_a_build_runs_does_not_start_another(world: dict[str, Any]) -> None:
    """While the person's export is being built, another plain GET (a second tap, another linked device) is told so
    with 409 EXPORT_IN_PROGRESS instead of gathering every photo again beside it; the running build finishes."""
    w = world
    first = asyncio.create_task(w["client"].get("/v1/me/export", headers=w["auth"]))
    building = (await _until(w, lambda p: p["state"] == "building" and p["parts_written"] >= 2))[-1]
    seconds = await asyncio.gather(*(w["client"].get("/v1/me/export", headers=w["auth"]) for _ in range(3)))
    for second in seconds:
        assert second.status_code == 409, second.text
        assert second.json()["error"]["code"] == "EXPORT_IN_PROGRESS"
    again = await w["client"].get("/v1/me/export", headers={**w["auth"], "Prefer": "respond-async"})
    assert again.status_code == 202 and again.json()["export_id"] == building["export_id"]
    w["photos"].gate.set()
    reply = await first
    assert reply.status_code == 200 and len(_photos_in(reply.content)) == 8
    assert reply.headers["content-disposition"].endswith(f'likeness-export-{building["export_id"]}.zip"')


async def test_a_build_abandoned_by_a_crash_does_not_block_the_next(world: dict[str, Any]) -> None:
    """A build that stopped moving long ago (privacy died mid-build: nothing marked it failed) does not hold the
    person's exports back until it expires: the next request builds a new one."""
    w = world
    w["photos"].gate.set()
    device = await w["gw"].devices.by_token_hash(token_hash(w["auth"]["Authorization"].split()[1]))
    async with w["privacy"].repo.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO exports (export_id, subject_id, sealed, expires_at, state, parts_expected, bytes_expected, created_at,"
            " updated_at) VALUES (%s, %s, '', now() + interval '30 minutes', 'building', 3, 0, now() - interval '30 minutes',"
            " now() - interval '30 minutes')",
            (uuid.uuid4(), uuid.UUID(str(device.subject_id))),
        )
    assert (await _progress(w))["error_code"] == "EXPORT_INTERRUPTED"
    reply = await w["client"].get("/v1/me/export", headers=w["auth"])
    assert reply.status_code == 200 and len(_photos_in(reply.content)) == 8, reply.text[:200]
