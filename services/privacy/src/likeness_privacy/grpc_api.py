"""gRPC servicer of the Privacy service: proto <-> use cases only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_platform.callcontext import ON_BEHALF_OF_KEY, current_actor, current_caller
from likeness_platform.dataholder import counts, duration, seconds, timestamp
from likeness_platform.errors import InvalidArgument, NotFound
from likeness_privacy.domain.exports import ExportProgress
from likeness_privacy.domain.records import ErasureRow, SubjectRow
from likeness_privacy.usecases import PrivacyUseCases
from likeness_privacy.usecases.operator_settings import SettingsView

_KIND = {privacy_pb2.SUBJECT_KIND_DEVICE: "device", privacy_pb2.SUBJECT_KIND_ACCOUNT: "account"}
_KIND_PB = {v: k for k, v in _KIND.items()}
_STATE_PB = {
    "active": privacy_pb2.SUBJECT_STATE_ACTIVE,
    "erasing": privacy_pb2.SUBJECT_STATE_ERASING,
    "erased": privacy_pb2.SUBJECT_STATE_ERASED,
}
_STATUS_PB = {"in_progress": privacy_pb2.ERASURE_STATUS_IN_PROGRESS, "completed": privacy_pb2.ERASURE_STATUS_COMPLETED}


def subject_pb(row: SubjectRow) -> privacy_pb2.Subject:
    return privacy_pb2.Subject(
        subject_id=row.subject_id,
        kind=_KIND_PB.get(row.kind, 0),
        state=_STATE_PB[row.state],
        minor=row.minor,
        created_at=timestamp(row.created_at),
    )


_EXPORT_STATE_PB = {
    "building": privacy_pb2.EXPORT_STATE_BUILDING,
    "ready": privacy_pb2.EXPORT_STATE_READY,
    "downloading": privacy_pb2.EXPORT_STATE_DOWNLOADING,
    "failed": privacy_pb2.EXPORT_STATE_FAILED,
}


def export_progress_pb(p: ExportProgress) -> privacy_pb2.ExportProgress:
    return privacy_pb2.ExportProgress(
        export_id=p.export_id,
        state=_EXPORT_STATE_PB[p.state],
        bytes_written=p.bytes_written,
        bytes_gathered=p.bytes_gathered,
        bytes_expected=p.bytes_expected,
        parts_written=p.parts_written,
        parts_expected=p.parts_expected,
        percent=p.percent,
        started_at=timestamp(p.created_at),
        updated_at=timestamp(p.updated_at),
        expires_at=timestamp(p.expires_at),
        error_code=p.error_code,
    )


def erasure_pb(row: ErasureRow) -> privacy_pb2.Erasure:
    out = privacy_pb2.Erasure(
        erasure_id=row.erasure_id,
        subject_id=row.subject_id or "",
        status=_STATUS_PB[row.status],
        requested_at=timestamp(row.requested_at),
        deadline=timestamp(row.deadline),
        ledger_hash=row.ledger_hash or "",
    )
    if row.completed_at:
        out.completed_at.CopyFrom(timestamp(row.completed_at))
    for r in row.receipts:
        receipt = privacy_pb2.HolderReceipt(
            holder=r.holder,
            erased=counts(r.erased or {}),
            remaining=counts(r.remaining or {}),
            attempts=r.attempts,
            last_error=r.last_error,
        )
        if r.completed_at:
            receipt.completed_at.CopyFrom(timestamp(r.completed_at))
        out.receipts.append(receipt)
    return out


class PrivacyServicer(privacy_pb2_grpc.PrivacyServicer):
    def __init__(self, use_cases: PrivacyUseCases, settings_view: SettingsView | None = None) -> None:
        self._uc = use_cases
        self._settings = settings_view or SettingsView(dict(use_cases.config.retention), use_cases.config.kek_id)

    async def RegisterSubject(self, request: Any, context: Any) -> privacy_pb2.RegisterSubjectResponse:
        subject, erasure = await self._uc.subjects.register(_KIND.get(request.kind, ""), request.minor)
        response = privacy_pb2.RegisterSubjectResponse(subject=subject_pb(subject))
        if erasure is not None:
            response.erasure_id = erasure.erasure_id
            if erasure.status == "completed":
                response.subject.state = privacy_pb2.SUBJECT_STATE_ERASED
        return response

    async def GetSubject(self, request: Any, context: Any) -> privacy_pb2.GetSubjectResponse:
        return privacy_pb2.GetSubjectResponse(subject=subject_pb(await self._uc.subjects.get(request.subject_id)))

    async def GetDataKey(self, request: Any, context: Any) -> privacy_pb2.GetDataKeyResponse:
        key, key_id = await self._uc.subjects.data_key(request.subject_id)
        return privacy_pb2.GetDataKeyResponse(key=key, key_id=key_id)

    async def RequestErasure(self, request: Any, context: Any) -> privacy_pb2.RequestErasureResponse:
        return privacy_pb2.RequestErasureResponse(erasure=erasure_pb(await self._uc.erasures.request(request.subject_id, request.reason)))

    async def GetErasure(self, request: Any, context: Any) -> privacy_pb2.GetErasureResponse:
        return privacy_pb2.GetErasureResponse(erasure=erasure_pb(await self._uc.erasures.get(request.erasure_id)))

    async def RequestExport(self, request: Any, context: Any) -> privacy_pb2.RequestExportResponse:
        if request.background:
            started = await self._uc.exports.start(request.subject_id)
            return privacy_pb2.RequestExportResponse(
                export_id=started.export_id, expires_at=timestamp(started.expires_at), progress=export_progress_pb(started)
            )
        export_id, expires, size = await self._uc.exports.request(request.subject_id)
        done = await self._uc.exports.progress(request.subject_id)
        return privacy_pb2.RequestExportResponse(
            export_id=export_id,
            expires_at=timestamp(expires),
            size_bytes=size,
            progress=export_progress_pb(done) if done is not None and done.export_id == export_id else None,
        )

    async def GetExport(self, request: Any, context: Any) -> privacy_pb2.GetExportResponse:
        found = await self._uc.exports.progress(request.subject_id)
        if found is None:
            raise NotFound("no export in progress or waiting (a downloaded one is gone)", "EXPORT_NOT_FOUND")
        return privacy_pb2.GetExportResponse(progress=export_progress_pb(found))

    async def DownloadExport(self, request: Any, context: Any) -> AsyncIterator[privacy_pb2.DownloadExportResponse]:
        async for chunk in self._uc.exports.stream(request.export_id, request.subject_id):
            yield privacy_pb2.DownloadExportResponse(chunk=chunk)

    async def RecordGeneration(self, request: Any, context: Any) -> privacy_pb2.RecordGenerationResponse:
        record_id = await self._uc.records.generation(
            request.subject_id, request.interface, dict(request.parameters), request.status, seconds(request.latency) * 1000
        )
        return privacy_pb2.RecordGenerationResponse(record_id=record_id)

    async def RecordSecurityEvent(self, request: Any, context: Any) -> privacy_pb2.RecordSecurityEventResponse:
        await self._uc.records.security_event(request.subject_id, request.event_type, request.ip, request.caller, request.method)
        return privacy_pb2.RecordSecurityEventResponse()

    async def RecordAccess(self, request: Any, context: Any) -> privacy_pb2.RecordAccessResponse:
        # The actor is who the certificate says called, not what the request claims; a service reading
        # for an operator names the operator too (only services may call this, so only they can say so).
        actor = current_caller()
        operator = dict(context.invocation_metadata() or ()).get(ON_BEHALF_OF_KEY, "")
        if operator.startswith("operator/") and not actor.startswith("operator/"):
            actor = f"{operator} via {actor}"
        entry = await self._uc.records.access(request.subject_id, actor, request.resource, request.purpose)
        return privacy_pb2.RecordAccessResponse(entry_hash=entry)

    async def VerifyLedger(self, request: Any, context: Any) -> privacy_pb2.VerifyLedgerResponse:
        ok, erasures, accesses, problem = await self._uc.records.verify_ledger()
        return privacy_pb2.VerifyLedgerResponse(ok=ok, erasure_entries=erasures, access_entries=accesses, problem=problem)

    async def GetSubjectInventory(self, request: Any, context: Any) -> privacy_pb2.GetSubjectInventoryResponse:
        # The actor is the certificate's operator (and the admin API it came through), never the request's say.
        subject, holders = await self._uc.inventory.look(request.subject_id, current_actor(), request.purpose)
        return privacy_pb2.GetSubjectInventoryResponse(
            subject=subject_pb(subject),
            holders=[privacy_pb2.HolderInventory(holder=name, counts=counts(found), error=error) for name, found, error in holders],
        )

    async def ListSecurityEvents(self, request: Any, context: Any) -> privacy_pb2.ListSecurityEventsResponse:
        if not 0 <= request.limit <= 1000:
            raise InvalidArgument("limit is 1..1000 (0: 100)", "INVALID_LIMIT")
        since = request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None
        rows = await self._uc.repo.recent_security_events(request.limit or 100, since)
        return privacy_pb2.ListSecurityEventsResponse(
            events=[
                privacy_pb2.SecurityEvent(
                    event_type=str(r["event_type"]),
                    caller=str(r["caller"]),
                    method=str(r["method"]),
                    ip_prefix=str(r["ip_prefix"]),
                    created_at=timestamp(r["created_at"]),  # type: ignore[arg-type]
                )
                for r in rows
            ]
        )

    async def RecordUsage(self, request: Any, context: Any) -> privacy_pb2.RecordUsageResponse:
        await self._uc.usage.record(
            request.interface, request.operation, request.spec_id, request.country, request.outcome, request.app_version, request.count
        )
        return privacy_pb2.RecordUsageResponse()

    async def GetUsageStats(self, request: Any, context: Any) -> privacy_pb2.GetUsageStatsResponse:
        first, last, cells = await self._uc.usage.query(request.from_day, request.to_day, list(request.group_by), dict(request.filters))
        return privacy_pb2.GetUsageStatsResponse(
            cells=[privacy_pb2.UsageCell(dimensions=dims, count=count) for dims, count in cells],
            min_count=self._uc.usage.min_count,
            from_day=first.isoformat(),
            to_day=last.isoformat(),
        )

    async def GetSettings(self, request: Any, context: Any) -> privacy_pb2.GetSettingsResponse:
        view = self._settings
        return privacy_pb2.GetSettingsResponse(
            retention=[
                privacy_pb2.RetentionPeriod(category=str(c), period=duration(p.total_seconds())) for c, p in sorted(view.retention.items())
            ],
            kek_id=view.kek_id,
            retired_keks=[privacy_pb2.RetiredKek(kek_id=k.kek_id, retired_on=k.retired_on, usable=k.usable) for k in view.retired_keks],
            kek_backup_window_days=view.kek_backup_window_days,
            kek_rewrap_interval=duration(view.kek_rewrap_interval.total_seconds()),
            erasure_reverify_after=duration(view.erasure_reverify_after.total_seconds()),
            stats_min_count=view.stats_min_count or self._uc.usage.min_count,
        )

    async def RewrapKeys(self, request: Any, context: Any) -> privacy_pb2.RewrapKeysResponse:
        return privacy_pb2.RewrapKeysResponse(moved=await self._uc.subjects.rewrap())


def service_name() -> str:
    return str(privacy_pb2.DESCRIPTOR.services_by_name["Privacy"].full_name)
