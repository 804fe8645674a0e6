"""gRPC servicer of Ingestion: proto <-> use cases only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_ingestion.domain.uploads import UploadRow
from likeness_ingestion.service import IngestionService, UploadMeta
from likeness_platform.dataholder import message_from
from likeness_platform.errors import InvalidArgument

CHUNK = 1024 * 1024


def info_pb(row: UploadRow, persisted: bool = True) -> ingestion_pb2.UploadInfo:
    return message_from(ingestion_pb2.UploadInfo, row, persisted=persisted)


class IngestionServicer(ingestion_pb2_grpc.IngestionServicer):
    def __init__(self, service: IngestionService) -> None:
        self._svc = service

    async def Upload(self, request_iterator: AsyncIterator[Any], context: Any) -> ingestion_pb2.UploadResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("metadata"):
            raise InvalidArgument("the first message must carry metadata", "MISSING_METADATA")
        m = first.metadata
        meta = UploadMeta(m.subject_id, m.content_type, m.purpose, m.retention_class)

        async def chunks() -> AsyncIterator[bytes]:
            async for message in request_iterator:
                if message.HasField("metadata"):
                    raise InvalidArgument("metadata may only come in the first message", "DUPLICATE_METADATA")
                if len(message.chunk) > CHUNK:
                    raise InvalidArgument("chunks must be at most 1 MiB", "CHUNK_TOO_LARGE")
                yield message.chunk

        result = await self._svc.upload(meta, chunks())
        return ingestion_pb2.UploadResponse(upload=info_pb(result.row, result.persisted), inline_image=result.inline)

    async def Open(self, request: Any, context: Any) -> AsyncIterator[ingestion_pb2.OpenResponse]:
        row, data = await self._svc.open(request.upload_id, request.subject_id, request.purpose)
        yield ingestion_pb2.OpenResponse(info=info_pb(row))
        for i in range(0, len(data), CHUNK):
            yield ingestion_pb2.OpenResponse(chunk=data[i : i + CHUNK])

    async def Describe(self, request: Any, context: Any) -> ingestion_pb2.DescribeResponse:
        return ingestion_pb2.DescribeResponse(upload=info_pb(await self._svc.describe(request.upload_id, request.subject_id)))

    async def Delete(self, request: Any, context: Any) -> ingestion_pb2.DeleteResponse:
        await self._svc.delete(request.upload_id, request.subject_id)
        return ingestion_pb2.DeleteResponse()


def service_name() -> str:
    return str(ingestion_pb2.DESCRIPTOR.services_by_name["Ingestion"].full_name)
