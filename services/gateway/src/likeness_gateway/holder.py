"""The gateway's DataHolder: device records and accounts (with their codes) in the database, and memory-only
images in this replica's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_gateway.adapters.accounts import AccountRepository
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_gateway.domain.inline_store import InlineImages
from likeness_platform.categories import Category
from likeness_platform.dataholder import ExportItem, Retention


class GatewayHolder:
    """Devices and accounts (shared by every replica) plus the answering replica's in-memory images.

    The other replicas' images are not reachable through one call; each replica drops them itself once the
    subject has no active device (likeness_gateway.domain.inline_store.forget_inactive), which the erasure
    guarantees before it fans out (tokens are deactivated first, devices deleted by Erase).
    """

    name = "gateway"

    def __init__(self, devices: DeviceRepository, accounts: AccountRepository, images: InlineImages) -> None:
        self.devices = devices
        self.accounts = accounts
        self.images = images

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {
            **await self.devices.inventory(subject_id),
            **await self.accounts.inventory(subject_id),
            Category.INLINE_IMAGES: self.images.count(subject_id),
        }

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        # In-memory images live minutes at most, on one replica; the export lists the device and account records.
        async for item in self.devices.export(subject_id):
            yield item
        async for item in self.accounts.export(subject_id):
            yield item

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        # The account first: while its devices exist the subject can still be found and signed in to.
        erased_accounts = await self.accounts.erase(subject_id)
        dropped = self.images.forget_subject(subject_id)
        erased, _ = await self.devices.erase(subject_id, request_id)
        return {**erased, **erased_accounts, Category.INLINE_IMAGES: dropped}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {**await self.devices.sweep(cutoffs), **await self.accounts.sweep(cutoffs)}

    async def retention(self) -> list[Retention]:
        count, oldest = self.images.total()
        return [
            *await self.devices.retention(),
            *await self.accounts.retention(),
            Retention(Category.INLINE_IMAGES, count, oldest, float(self.images.ttl)),
        ]
