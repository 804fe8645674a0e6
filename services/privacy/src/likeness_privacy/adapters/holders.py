"""Clients of the DataHolder services named in settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import ParamSpec, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from likeness.privacy.v1 import dataholder_pb2, dataholder_pb2_grpc
from likeness_platform.clients import open_channel
from likeness_platform.dataholder import ExportItem, Retention, seconds
from likeness_platform.settings import ServiceSettings
from likeness_privacy.domain.errors import HolderCallFailed

P = ParamSpec("P")
R = TypeVar("R")


def _failed(name: str, exc: grpc.aio.AioRpcError) -> HolderCallFailed:
    return HolderCallFailed(name, exc.code().name, exc.details() or "")


def _translated(call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """gRPC failures of a holder call become HolderCallFailed, so use cases never see grpc."""

    @wraps(call)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except grpc.aio.AioRpcError as exc:
            raise _failed(args[0].name, exc) from exc  # type: ignore[attr-defined]

    return wrapper


class RemoteHolder:
    """One holder reached over gRPC."""

    def __init__(self, name: str, address: str, settings: ServiceSettings, timeout: float = 10.0, export_timeout: float = 900.0) -> None:
        self.name = name
        self.address = address
        # An export streams everything the holder keeps about the subject: it gets longer than the other calls.
        self.export_timeout = max(timeout, export_timeout)
        self._channel = open_channel(address, "privacy", settings, deadline=timeout)
        self._stub = dataholder_pb2_grpc.DataHolderStub(self._channel)

    @_translated
    async def inventory(self, subject_id: str) -> dict[str, int]:
        response = await self._stub.Inventory(dataholder_pb2.InventoryRequest(subject_id=subject_id))
        return {c.category: c.count for c in response.counts}

    @_translated
    async def export_size(self, subject_id: str) -> int:
        """About how many bytes the holder's export of the subject will carry (0 when it does not say)."""
        response = await self._stub.Inventory(dataholder_pb2.InventoryRequest(subject_id=subject_id, include_export_bytes=True))
        return int(response.export_bytes)

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        # Piece by piece as they arrive (a photo is not gathered whole here: the archive writes each piece).
        try:
            request = dataholder_pb2.ExportRequest(subject_id=subject_id)
            async for part in self._stub.Export(request, timeout=self.export_timeout):
                yield ExportItem(part.category, part.name, part.content_type, part.data, last=part.last_chunk)
        except grpc.aio.AioRpcError as exc:
            raise _failed(self.name, exc) from exc

    @_translated
    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        response = await self._stub.Erase(dataholder_pb2.EraseRequest(subject_id=subject_id, request_id=request_id))
        return {c.category: c.count for c in response.erased}, {c.category: c.count for c in response.remaining}

    @_translated
    async def sweep(self, cutoffs: dict[str, datetime]) -> dict[str, int]:
        request = dataholder_pb2.SweepRequest()
        for category, cutoff in cutoffs.items():
            ts = Timestamp()
            ts.FromDatetime(cutoff)
            request.cutoffs.append(dataholder_pb2.CategoryCutoff(category=category, cutoff=ts))
        response = await self._stub.Sweep(request)
        return {c.category: c.count for c in response.removed}

    @_translated
    async def retention(self) -> list[Retention]:
        response = await self._stub.RetentionStatus(dataholder_pb2.RetentionStatusRequest())
        return [Retention(c.category, c.count, seconds(c.oldest_age), seconds(c.max_age)) for c in response.categories]

    async def close(self) -> None:
        await self._channel.close()
