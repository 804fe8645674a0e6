"""The gateway's module for the ingestion service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_gateway.adapters.upstream import Upstream
from likeness_platform.settings import ServiceSettings

CHUNK = 1024 * 1024


async def rechunk(source: AsyncIterator[bytes], size: int = CHUNK) -> AsyncIterator[bytes]:
    """Pieces of at most `size` bytes, whatever sizes the source yields."""
    pending = bytearray()
    async for data in source:
        pending.extend(data)
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


class IngestionClient(Upstream):
    def __init__(self, address: str, settings: ServiceSettings, deadline: float) -> None:
        super().__init__("ingestion", address, settings, deadline)
        self.stub = ingestion_pb2_grpc.IngestionStub(self.channel)

    async def upload(self, subject_id: str, content_type: str, purpose: str, body: AsyncIterator[bytes]) -> ingestion_pb2.UploadResponse:
        """Stream `body` to ingestion. An error reading the body (too large, too slow, malformed) cancels the
        call and is raised here as it was, not as the cancellation gRPC turns it into."""
        failed: list[Exception] = []

        async def requests() -> AsyncIterator[ingestion_pb2.UploadRequest]:
            yield ingestion_pb2.UploadRequest(
                metadata=ingestion_pb2.UploadMetadata(
                    subject_id=subject_id, content_type=content_type, purpose=purpose, retention_class="default"
                )
            )
            try:
                async for piece in rechunk(body):
                    yield ingestion_pb2.UploadRequest(chunk=piece)
            except Exception as exc:
                failed.append(exc)
                raise

        try:
            return await self.call(self.stub.Upload(requests()))
        except (asyncio.CancelledError, Exception):
            if failed:
                raise failed[0] from None
            raise

    async def describe(self, subject_id: str, upload_id: str) -> ingestion_pb2.UploadInfo:
        reply = await self.call(self.stub.Describe(ingestion_pb2.DescribeRequest(upload_id=upload_id, subject_id=subject_id)))
        return reply.upload
