"""Render's clients of other services: the image source (ingestion) and face analysis (faces)."""

from __future__ import annotations

import grpc
import structlog

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_platform.errors import InvalidArgument, NotFound, Unavailable

log = structlog.get_logger("likeness.render")


def _translate(exc: grpc.aio.AioRpcError, what: str, upstream: str) -> Exception:
    code = exc.code()
    domain = dict(exc.trailing_metadata() or ()).get("likeness-error-code", "")
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"no such {what}", str(domain or "NOT_FOUND"))
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return InvalidArgument(exc.details() or f"bad {what}", str(domain or code.name))
    # The caller only hears "not available"; the log says which upstream answered what.
    log.warning("upstream_failed", upstream=upstream, code=code.name, domain_code=str(domain), details=(exc.details() or "")[:200])
    return Unavailable(f"the service holding the {what} is not available; try again")


class ImageSource:
    """Bytes of an ImageRef: inline data as is, an upload through ingestion's Open (access-logged there)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = ingestion_pb2_grpc.IngestionStub(channel)

    async def read(self, ref: common_pb2.ImageRef, subject_id: str, purpose: str) -> bytes:
        which = ref.WhichOneof("source")
        if which == "data":
            if not ref.data:
                raise InvalidArgument("the inline image is empty", "EMPTY")
            return bytes(ref.data)
        if which != "upload_id" or not ref.upload_id:
            raise InvalidArgument("give an image: an upload_id or inline data", "MISSING_IMAGE")
        parts: list[bytes] = []
        try:
            async for message in self._stub.Open(
                ingestion_pb2.OpenRequest(upload_id=ref.upload_id, subject_id=subject_id, purpose=purpose)
            ):
                if message.HasField("chunk"):
                    parts.append(message.chunk)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "upload", "ingestion") from None
        return b"".join(parts)


class FacesClient:
    """Face analysis through the faces service (inline bytes: render already holds the image)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = faces_pb2_grpc.FacesStub(channel)

    async def analyze(self, image: bytes, dense: bool = True, min_face_fraction: float = 0.0) -> faces_pb2.AnalyzeResponse:
        # No blendshapes: nothing in render reads them (eye and mouth state come as openness).
        options = faces_pb2.AnalyzeOptions(dense_landmarks=dense, min_face_fraction=min_face_fraction)
        request = faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=image), options=options)
        try:
            return await self._stub.Analyze(request, timeout=60)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "image", "faces") from None
