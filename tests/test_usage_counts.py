"""Usage counts over the wire: render's counter adds calls up per cell and privacy adds each record's count to its
cell in one upsert; a record without a count (an older client) still counts one call, a count out of range is
refused with INVALID_ARGUMENT."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_platform.privacy_port import PrivacyPort
from likeness_render.adapters.usage import UsageCounter
from tests.support.pki import mesh_channel
from tests.support.services import Started, start_privacy


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[dict]:
    started = Started()
    privacy, privacy_addr = await start_privacy(database_url, {}, started)
    channel = mesh_channel(privacy_addr)
    try:
        yield {"privacy": privacy, "channel": channel}
    finally:
        await channel.close()
        await started.close()


async def _counts(privacy, app_version: str) -> dict[tuple[str, str], int]:
    async with privacy.repo.pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT operation, spec_id, count FROM usage_stats WHERE app_version = %s", (app_version,))
        ).fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


async def test_render_sends_a_cell_once_with_its_count_and_privacy_adds_it(world: dict) -> None:
    version = f"9.{uuid.uuid4().int % 10_000}.0"
    port = PrivacyPort(world["channel"], "render")
    sent: list[int] = []

    async def send(*cell: str | int) -> None:
        sent.append(int(cell[-1]))
        await port.record_usage(*cell)  # type: ignore[arg-type]

    counter = UsageCounter(send, 3600.0)
    for _ in range(25):
        counter.count("http", "id_photo", "us-passport", "US", "ok", version)
    for _ in range(3):
        counter.count("http", "id_photo_check", "jp-passport", "JP", "ok", version)
    await counter.drain()
    # Two records for 28 calls.
    assert sorted(sent) == [3, 25]
    assert await _counts(world["privacy"], version) == {("id_photo", "us-passport"): 25, ("id_photo_check", "jp-passport"): 3}
    # The next batch adds to the same cells.
    for _ in range(5):
        counter.count("http", "id_photo", "us-passport", "US", "ok", version)
    await counter.drain()
    assert (await _counts(world["privacy"], version))[("id_photo", "us-passport")] == 30


async def test_a_record_without_a_count_counts_one_and_a_count_out_of_range_is_refused(world: dict) -> None:
    version = f"9.{uuid.uuid4().int % 10_000}.1"
    stub = privacy_pb2_grpc.PrivacyStub(world["channel"])
    cell = {"interface": "grpc", "operation": "portrait", "spec_id": "", "country": "", "outcome": "ok", "app_version": version}
    # As a client from before `count` sends it: the field is absent.
    await stub.RecordUsage(privacy_pb2.RecordUsageRequest(**cell))
    assert await _counts(world["privacy"], version) == {("portrait", ""): 1}
    await stub.RecordUsage(privacy_pb2.RecordUsageRequest(**cell, count=10_000))
    assert await _counts(world["privacy"], version) == {("portrait", ""): 10_001}
    for bad in (-1, 10_001):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RecordUsage(privacy_pb2.RecordUsageRequest(**cell, count=bad))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "count must be between 1 and 10000" in (refused.value.details() or "")
    assert await _counts(world["privacy"], version) == {("portrait", ""): 10_001}
