"""The gateway's DataHolder: device records in the database, and memory-only images in this replica's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.domain.inline_store import InlineImages
from likeness_platform.categories import Category
from likeness_platform.dataholder import ExportItem, Retention


class GatewayHolder:
    """Devices (shared by every replica) plus the answering replica's in-memory images.

    The other replicas' images are not reachable through one call; each replica drops them itself once the
    subject has no active device (likeness_gateway.domain.inline_store.forget_inactive), which the erasure
    guarantees before it fans out (tokens are deactivated first, devices deleted by Erase).
    """

    name = "gateway"

    def __init__(self, devices: DeviceRepository, images: InlineImages) -> None:
        self.devices = devices
        self.images = images

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {**await self.devices.inventory(subject_id), Category.INLINE_IMAGES: self.images.count(subject_id)}

    def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        # In-memory images live minutes at most, on one replica; the export lists the device records.
        return self.devices.export(subject_id)

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        dropped = self.images.forget_subject(subject_id)
        erased, remaining = await self.devices.erase(subject_id, request_id)
        return (
            {**erased, Category.INLINE_IMAGES: dropped},
            {**remaining, Category.INLINE_IMAGES: self.images.count(subject_id)},
        )

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return await self.devices.sweep(cutoffs)

    async def retention(self) -> list[Retention]:
        count, oldest = self.images.total()
        return [*await self.devices.retention(), Retention(Category.INLINE_IMAGES, count, oldest, float(self.images.ttl))]
