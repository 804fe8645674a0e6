"""What holders of encrypted data need from the privacy service: data keys and access-log entries."""

from __future__ import annotations

import grpc
import structlog

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_platform.crypto import DataKey
from likeness_platform.errors import FailedPrecondition, SubjectErasing, Unavailable

log = structlog.get_logger("likeness.privacy_port")


def _failed(exc: grpc.aio.AioRpcError, rpc: str) -> None:
    # The caller only hears that privacy is not reachable; the log says what privacy's channel answered.
    log.warning("upstream_failed", upstream="privacy", rpc=rpc, code=exc.code().name, details=(exc.details() or "")[:200])


class PrivacyPort:
    """Data keys and access-log entries (a mesh channel waits for privacy to connect: clients.open_channel)."""

    def __init__(self, channel: grpc.aio.Channel, actor: str) -> None:
        self._stub = privacy_pb2_grpc.PrivacyStub(channel)
        self._actor = actor

    async def data_key(self, subject_id: str) -> DataKey:
        """The subject's data key; SubjectErasing once its erasure has started."""
        try:
            response = await self._stub.GetDataKey(privacy_pb2.GetDataKeyRequest(subject_id=subject_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise SubjectErasing("the subject is unknown or being erased; nothing is stored for it") from None
            _failed(exc, "GetDataKey")
            raise Unavailable("the privacy service is not reachable; try again") from None
        return DataKey(bytes(response.key), response.key_id)

    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None:
        """Append to the access log; a read that cannot be logged does not happen."""
        try:
            await self._stub.RecordAccess(
                privacy_pb2.RecordAccessRequest(
                    subject_id=subject_id, actor=self._actor, resource=resource, purpose=purpose or "unspecified"
                )
            )
        except grpc.aio.AioRpcError as exc:
            _failed(exc, "RecordAccess")
            raise FailedPrecondition("the access log is not reachable, so the data is not read", "ACCESS_LOG_UNAVAILABLE") from None

    async def record_usage(
        self, interface: str, operation: str, spec_id: str, country: str, outcome: str, app_version: str, count: int = 1
    ) -> None:
        """Count `count` generation calls of one cell in privacy's usage statistics (dimensions only: no subject,
        device or address); privacy takes 1..10000 per record and puts them in its UTC day of arrival."""
        await self._stub.RecordUsage(
            privacy_pb2.RecordUsageRequest(
                interface=interface,
                operation=operation,
                spec_id=spec_id,
                country=country,
                outcome=outcome,
                app_version=app_version,
                count=count,
            )
        )
