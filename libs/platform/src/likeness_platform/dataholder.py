"""A DataHolder servicer every data-holding service plugs its own stores into."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import structlog
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from likeness.common.v1 import common_pb2
from likeness.privacy.v1 import dataholder_pb2, dataholder_pb2_grpc
from likeness_platform.errors import InvalidArgument

M = TypeVar("M", bound=Message)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ExportItem:
    """One file of a holder's export, or a piece of one: a piece with `last` False is continued by the pieces that
    follow it (same name, in order, none of another item between them) up to one with `last` True."""

    category: str
    name: str
    content_type: str
    data: bytes
    last: bool = True


@dataclass(frozen=True)
class Retention:
    category: str
    count: int
    oldest_age_seconds: float
    max_age_seconds: float


class Holder(Protocol):
    """What a service must answer for the privacy service."""

    name: str

    async def inventory(self, subject_id: str) -> Mapping[str, int]: ...

    def export(self, subject_id: str) -> AsyncIterator[ExportItem]: ...

    async def erase(self, subject_id: str, request_id: str) -> tuple[Mapping[str, int], Mapping[str, int]]: ...

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> Mapping[str, int]: ...

    async def retention(self) -> list[Retention]: ...


def counts(values: Mapping[str, int]) -> list[common_pb2.CategoryCount]:
    """Proto counts from a mapping, in a stable order."""
    return [common_pb2.CategoryCount(category=k, count=int(v)) for k, v in sorted(values.items())]


def duration(seconds: float) -> Duration:
    """A protobuf Duration of `seconds` (nanosecond precision)."""
    out = Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def seconds(value: Duration) -> float:
    """A protobuf Duration as seconds."""
    return value.seconds + value.nanos / 1e9


def timestamp(when: datetime) -> Timestamp:
    """A protobuf Timestamp from an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def message_from(message: type[M], source: Any, **values: Any) -> M:
    """A protobuf message with each field copied from the same-named field of dataclass `source`.

    Datetimes become Timestamps; `values` set fields `source` lacks or override ones that need converting.
    """
    names = message.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
    copied = {f.name: getattr(source, f.name) for f in fields(source) if f.name in names and f.name not in values}
    return message(**{k: timestamp(v) if isinstance(v, datetime) else v for k, v in copied.items()}, **values)


def clamp_cutoffs(requested: Mapping[str, datetime], retention: Mapping[str, timedelta], now: datetime) -> dict[str, datetime]:
    """The cutoffs a holder sweeps with: a holder defends its live data rather than trust its caller.

    For each category the holder keeps a retention period for: the requested cutoff, but never later than
    `now - retention` (so no cutoff, "now" included, removes data younger than its retention), and
    `now - retention` where none was asked for. Requested categories without a retention are dropped.
    """
    clamped: dict[str, datetime] = {}
    for category, keep in retention.items():
        limit = now - keep
        asked = requested.get(category)
        clamped[category] = limit if asked is None else min(asked, limit)
    return clamped


def _subject(value: str) -> str:
    if not value:
        raise InvalidArgument("subject_id is required", "MISSING_SUBJECT")
    return value


class DataHolderServicer(dataholder_pb2_grpc.DataHolderServicer):
    """Translates DataHolder RPCs to a Holder."""

    def __init__(self, holder: Holder) -> None:
        self._holder = holder

    async def Inventory(self, request: Any, context: Any) -> dataholder_pb2.InventoryResponse:
        subject_id = _subject(request.subject_id)
        found = await self._holder.inventory(subject_id)
        # A holder whose export can be large (sealed blobs) says how large, for the export's progress.
        size_of = getattr(self._holder, "export_size", None) if request.include_export_bytes else None
        size = int(await size_of(subject_id)) if size_of is not None else 0
        return dataholder_pb2.InventoryResponse(holder=self._holder.name, counts=counts(found), export_bytes=size)

    async def Export(self, request: Any, context: Any) -> AsyncIterator[dataholder_pb2.ExportResponse]:
        async for item in self._holder.export(_subject(request.subject_id)):
            data = item.data
            pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
            for i, piece in enumerate(pieces):
                yield dataholder_pb2.ExportResponse(
                    category=item.category,
                    name=item.name,
                    content_type=item.content_type,
                    data=piece,
                    # A holder that yields an item in pieces (ExportItem.last) keeps it one item across the wire.
                    last_chunk=item.last and i == len(pieces) - 1,
                )

    async def Erase(self, request: Any, context: Any) -> dataholder_pb2.EraseResponse:
        erased, remaining = await self._holder.erase(_subject(request.subject_id), request.request_id)
        return dataholder_pb2.EraseResponse(
            holder=self._holder.name,
            erased=counts(erased),
            remaining=counts(remaining),
            completed_at=timestamp(datetime.now(UTC)),
        )

    async def Sweep(self, request: Any, context: Any) -> dataholder_pb2.SweepResponse:
        cutoffs = {c.category: c.cutoff.ToDatetime(tzinfo=UTC) for c in request.cutoffs}
        removed = await self._holder.sweep(cutoffs)
        return dataholder_pb2.SweepResponse(holder=self._holder.name, removed=counts(removed))

    async def RetentionStatus(self, request: Any, context: Any) -> dataholder_pb2.RetentionStatusResponse:
        rows = await self._holder.retention()
        return dataholder_pb2.RetentionStatusResponse(
            holder=self._holder.name,
            categories=[
                dataholder_pb2.CategoryRetention(
                    category=r.category, count=r.count, oldest_age=duration(r.oldest_age_seconds), max_age=duration(r.max_age_seconds)
                )
                for r in rows
            ],
        )


def add_dataholder(server: Any, holder: Holder) -> str:
    """Register the DataHolder servicer for `holder`; returns the full service name."""
    dataholder_pb2_grpc.add_DataHolderServicer_to_server(DataHolderServicer(holder), server)
    return str(dataholder_pb2.DESCRIPTOR.services_by_name["DataHolder"].full_name)


async def sweep_on_schedule(holder: Holder, interval_seconds: float, stop: asyncio.Event | None = None) -> None:
    """A holder's own retention loop: every interval it sweeps by its own periods (no cutoffs asked), so
    expiry does not depend on privacy being up; privacy's sweeps and RetentionStatus audit on top."""
    log = structlog.get_logger("likeness.retention")
    while stop is None or not stop.is_set():
        try:
            removed = {k: v for k, v in (await holder.sweep({})).items() if v}
            if removed:
                log.info("self_sweep", holder=getattr(holder, "name", ""), removed=removed)
        except Exception as exc:
            log.warning("self_sweep_failed", holder=getattr(holder, "name", ""), error=type(exc).__name__)
        if stop is None:
            await asyncio.sleep(interval_seconds)
        else:
            try:
                await asyncio.wait_for(stop.wait(), interval_seconds)
            except TimeoutError:
                pass
