"""The gateway's module for the privacy service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_gateway.adapters.upstream import Upstream, first_then_rest
from likeness_gateway.errors import from_rpc_error
from likeness_platform.dataholder import duration
from likeness_platform.settings import ServiceSettings

# The longest one export download may stream.
DOWNLOAD_SECONDS = 1800.0


class PrivacyClient(Upstream):
    def __init__(self, address: str, settings: ServiceSettings, deadline: float) -> None:
        super().__init__("privacy", address, settings, deadline)
        self.stub = privacy_pb2_grpc.PrivacyStub(self.channel)

    async def register_subject(self, minor: bool) -> privacy_pb2.RegisterSubjectResponse:
        return await self.call(
            self.stub.RegisterSubject(privacy_pb2.RegisterSubjectRequest(kind=privacy_pb2.SUBJECT_KIND_DEVICE, minor=minor))
        )

    async def request_erasure(self, subject_id: str, reason: str) -> privacy_pb2.Erasure:
        response = await self.call(self.stub.RequestErasure(privacy_pb2.RequestErasureRequest(subject_id=subject_id, reason=reason)))
        return response.erasure

    async def get_erasure(self, erasure_id: str) -> privacy_pb2.Erasure:
        response = await self.call(self.stub.GetErasure(privacy_pb2.GetErasureRequest(erasure_id=erasure_id)))
        return response.erasure

    async def request_export(self, subject_id: str, background: bool = False) -> privacy_pb2.RequestExportResponse:
        """Build an export and answer when it is stored; `background`: answer at once, building it meanwhile."""
        request = privacy_pb2.RequestExportRequest(subject_id=subject_id, background=background)
        return await self.call(self.stub.RequestExport(request, timeout=None if background else 120))

    async def export_progress(self, subject_id: str) -> privacy_pb2.ExportProgress | None:
        """The subject's latest export as far as it has got; None when there is none (or it was downloaded)."""
        try:
            response = await self.stub.GetExport(privacy_pb2.GetExportRequest(subject_id=subject_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise from_rpc_error(exc, self.name) from None
        return response.progress

    async def download_export(self, export_id: str, subject_id: str) -> AsyncIterator[bytes]:
        """Open the export stream; failures (e.g. NOT_FOUND) surface before the first byte is sent. A large export
        to a slow client takes a while: the stream gets DOWNLOAD_SECONDS, not the usual deadline."""
        request = privacy_pb2.DownloadExportRequest(export_id=export_id, subject_id=subject_id)
        return await self.call(first_then_rest(self.stub.DownloadExport(request, timeout=DOWNLOAD_SECONDS)))

    async def record_generation(self, subject_id: str, interface: str, parameters: dict[str, str], status: str, latency_ms: float) -> None:
        await self.call(
            self.stub.RecordGeneration(
                privacy_pb2.RecordGenerationRequest(
                    subject_id=subject_id, interface=interface, parameters=parameters, status=status, latency=duration(latency_ms / 1000)
                )
            )
        )

    async def record_security_event(self, subject_id: str, event_type: str, ip: str) -> None:
        await self.call(
            self.stub.RecordSecurityEvent(privacy_pb2.RecordSecurityEventRequest(subject_id=subject_id, event_type=event_type, ip=ip))
        )

    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None:
        """Append to privacy's access log (the actor recorded is this service's certificate identity)."""
        await self.call(self.stub.RecordAccess(privacy_pb2.RecordAccessRequest(subject_id=subject_id, resource=resource, purpose=purpose)))
