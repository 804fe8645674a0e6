"""The gateway's DataHolder: its devices and, beside them, accounts and their codes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime

from likeness_gateway.adapters.accounts import AccountRepository
from likeness_gateway.adapters.devices import DeviceRepository
from likeness_platform.dataholder import ExportItem, Retention


class GatewayHolder:
    name = "gateway"

    def __init__(self, devices: DeviceRepository, accounts: AccountRepository) -> None:
        self.devices = devices
        self.accounts = accounts

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {**await self.devices.inventory(subject_id), **await self.accounts.inventory(subject_id)}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        async for item in self.devices.export(subject_id):
            yield item
        async for item in self.accounts.export(subject_id):
            yield item

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        # The account first: while its devices exist the subject can still be found and signed in to.
        erased_accounts = await self.accounts.erase(subject_id)
        erased, _ = await self.devices.erase(subject_id, request_id)
        return {**erased, **erased_accounts}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {**await self.devices.sweep(cutoffs), **await self.accounts.sweep(cutoffs)}

    async def retention(self) -> list[Retention]:
        return [*await self.devices.retention(), *await self.accounts.retention()]
