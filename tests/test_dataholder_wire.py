"""Retention ages cross the DataHolder contract as Durations and come back as the same seconds."""

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_platform.dataholder import ExportItem, Retention, add_dataholder
from likeness_platform.server import start_server
from likeness_platform.settings import ServiceSettings
from likeness_privacy.adapters.holders import RemoteHolder
from tests.support.services import settings_for

ROWS = [Retention("notes", 3, 12.25, 86400.0), Retention("cache", 0, 0.0, 0.0), Retention("frames", 1, 0.000123456, 1.5)]


class FixedHolder:
    name = "fixed"

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        for item in ():
            yield item

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        return {}, {}

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {}

    async def retention(self) -> list[Retention]:
        return ROWS


async def test_retention_ages_survive_the_wire() -> None:
    running = await start_server("fixed", settings_for(ServiceSettings, "render"), lambda server: [add_dataholder(server, FixedHolder())])
    # Holders answer privacy only: the remote side presents privacy's certificate.
    remote = RemoteHolder("fixed", f"127.0.0.1:{running.port}", settings_for(ServiceSettings, "privacy"), timeout=10)
    try:
        assert await remote.retention() == ROWS
    finally:
        await remote.close()
        await running.stop(1)


class SizedHolder(FixedHolder):
    name = "sized"

    def __init__(self) -> None:
        self.asked = 0

    async def export_size(self, subject_id: str) -> int:
        self.asked += 1
        return 5 * 1024**3  # past 32 bits


async def test_export_bytes_cross_the_wire_only_when_asked() -> None:
    holder = SizedHolder()
    running = await start_server("sized", settings_for(ServiceSettings, "render"), lambda server: [add_dataholder(server, holder)])
    remote = RemoteHolder("sized", f"127.0.0.1:{running.port}", settings_for(ServiceSettings, "privacy"), timeout=10)
    try:
        assert await remote.inventory("s") == {} and holder.asked == 0  # erasure's verification does not pay for it
        assert await remote.export_size("s") == 5 * 1024**3 and holder.asked == 1
    finally:
        await remote.close()
        await running.stop(1)


class PhotoHolder(FixedHolder):
    name = "photos"

    def __init__(self, photo: bytes) -> None:
        self.photo = photo

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        yield ExportItem("uploads", "a.jpg", "image/jpeg", self.photo)
        # An item the holder itself yields in two pieces stays one item.
        yield ExportItem("uploads", "uploads.json", "application/json", b"[", last=False)
        yield ExportItem("uploads", "uploads.json", "application/json", b"]")


async def test_a_large_item_arrives_in_pieces_that_make_it_whole() -> None:
    photo = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit: three pieces
    running = await start_server(
        "photos", settings_for(ServiceSettings, "render"), lambda server: [add_dataholder(server, PhotoHolder(photo))]
    )
    remote = RemoteHolder("photos", f"127.0.0.1:{running.port}", settings_for(ServiceSettings, "privacy"), timeout=10)
    try:
        pieces = [item async for item in remote.export("s")]
    finally:
        await remote.close()
        await running.stop(1)
    assert [(p.name, p.last) for p in pieces] == [
        ("a.jpg", False),
        ("a.jpg", False),
        ("a.jpg", True),
        ("uploads.json", False),
        ("uploads.json", True),
    ]
    assert max(len(p.data) for p in pieces) <= 1024 * 1024  # never gathered whole on privacy's side
    assert b"".join(p.data for p in pieces[:3]) == photo and pieces[0].content_type == "image/jpeg"
