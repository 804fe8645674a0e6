"""gRPC servicer of Faces: proto <-> use case, and the one map from faces errors to statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness.ingestion.v1 import ingestion_pb2, ingestion_pb2_grpc
from likeness_faces.domain.errors import AnalyzerClosedError, FacesError, InvalidImageError
from likeness_faces.domain.faces import AnalyzeOptions, Face
from likeness_faces.service import FaceAnalyzer
from likeness_imaging.codec import UndecodableImage, decode_rgb
from likeness_platform import errors


def face_pb(face: Face) -> faces_pb2.Face:
    """One face as the contract has it: a measure that was not computed (no mesh, so no
    eye/mouth state; a pose angle the points do not determine) is left unset, never 0."""
    q = face.quality
    out = faces_pb2.Face(
        box=faces_pb2.Box(x1=face.box.x1, y1=face.box.y1, x2=face.box.x2, y2=face.box.y2),
        score=face.score,
        landmarks5=[faces_pb2.Point(x=p.x, y=p.y) for p in face.five_points.as_tuple()],
        pose=faces_pb2.Pose(yaw=_finite(face.pose.yaw_deg), pitch=_finite(face.pose.pitch_deg), roll=_finite(face.pose.roll_deg)),
        quality=faces_pb2.Quality(
            sharpness=_finite(q.sharpness),
            exposure=_finite(q.exposure),
            clipped_fraction=_finite(q.clipped_fraction),
            shadow_clipped_fraction=_finite(q.shadow_clipped_fraction),
            highlight_clipped_fraction=_finite(q.highlight_clipped_fraction),
            lighting_ratio=_finite(q.lighting_ratio),
            face_size_px=_finite(q.face_size_px),
            inter_eye_px=_finite(q.inter_eye_px),
        ),
    )
    # add() builds each point in place; extend() would build 478 messages, then copy them in
    if face.mesh is not None:
        add_point = out.mesh.add
        for p in face.mesh:
            add_point(x=p.x, y=p.y, z=p.z)
    if face.blendshapes is not None:
        add_shape = out.blendshapes.add
        for name, score in face.blendshapes.items():
            add_shape(name=name, score=score)
    if face.openness is not None:
        out.left_eye_openness = face.openness.left_eye
        out.right_eye_openness = face.openness.right_eye
        out.mouth_openness = face.openness.mouth
    return out


def _finite(value: float) -> float | None:
    """The value, or None (the optional field stays unset) when it is NaN or infinite."""
    return float(value) if np.isfinite(value) else None


_STREAM_ERRORS = {
    "MISSING_IMAGE": faces_pb2.ANALYZE_ERROR_CODE_MISSING_IMAGE,
    "EMPTY": faces_pb2.ANALYZE_ERROR_CODE_EMPTY,
    "CORRUPT_IMAGE": faces_pb2.ANALYZE_ERROR_CODE_CORRUPT_IMAGE,
    "INVALID_IMAGE": faces_pb2.ANALYZE_ERROR_CODE_INVALID_IMAGE,
    "UPLOAD_NOT_FOUND": faces_pb2.ANALYZE_ERROR_CODE_UPLOAD_NOT_FOUND,
}


def stream_error(key: str, exc: errors.DomainError | FacesError) -> faces_pb2.AnalyzeStreamResponse:
    """The answer for one image of a stream that could not be analysed, with its stable code."""
    if isinstance(exc, FacesError):
        code, message = faces_pb2.ANALYZE_ERROR_CODE_INVALID_IMAGE, str(exc)
    elif isinstance(exc, errors.Unavailable):
        code, message = faces_pb2.ANALYZE_ERROR_CODE_UNAVAILABLE, exc.message
    else:
        code, message = _STREAM_ERRORS.get(exc.code, faces_pb2.ANALYZE_ERROR_CODE_UNSPECIFIED), exc.message
    return faces_pb2.AnalyzeStreamResponse(id=key, error=faces_pb2.AnalyzeError(code=code, message=message))


def options_of(o: faces_pb2.AnalyzeOptions) -> AnalyzeOptions:
    return AnalyzeOptions(
        dense_landmarks=o.dense_landmarks,
        blendshapes=o.blendshapes,
        max_faces=max(0, o.max_faces),
        min_face_fraction=min(0.5, max(0.0, o.min_face_fraction)),
    )


class FacesServicer(faces_pb2_grpc.FacesServicer):
    def __init__(
        self, analyzer: FaceAnalyzer, ingestion: grpc.aio.Channel | None, max_pixels: int, max_concurrent_decodes: int = 2
    ) -> None:
        self._analyzer = analyzer
        # Decodes are bounded like the model work: a burst of large images neither takes every thread
        # from the models nor holds a full-size copy of each at once.
        self._decodes = asyncio.Semaphore(max(1, max_concurrent_decodes))
        self._ingestion = ingestion_pb2_grpc.IngestionStub(ingestion) if ingestion is not None else None
        self._max_pixels = max_pixels

    async def _image(self, ref: common_pb2.ImageRef, subject_id: str) -> np.ndarray:
        which = ref.WhichOneof("source")
        if which == "data":
            data = bytes(ref.data)
        elif which == "upload_id" and self._ingestion is not None:
            parts: list[bytes] = []
            try:
                async for message in self._ingestion.Open(
                    ingestion_pb2.OpenRequest(upload_id=ref.upload_id, subject_id=subject_id, purpose="face_analysis")
                ):
                    if message.HasField("chunk"):
                        parts.append(message.chunk)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise errors.NotFound("no such upload", "UPLOAD_NOT_FOUND") from None
                raise errors.Unavailable("the ingestion service is not available; try again") from None
            data = b"".join(parts)
        else:
            raise errors.InvalidArgument("give an image: an upload_id (with subject_id) or inline data", "MISSING_IMAGE")
        if not data:
            raise errors.InvalidArgument("the image is empty", "EMPTY")
        try:
            async with self._decodes:
                return await asyncio.to_thread(decode_rgb, data, self._max_pixels)
        except UndecodableImage as exc:
            raise errors.InvalidArgument(str(exc), "CORRUPT_IMAGE") from None

    async def _analyze(self, image: np.ndarray, options: AnalyzeOptions) -> list[Face]:
        try:
            return await self._analyzer.analyze(image, options)
        except InvalidImageError as exc:
            raise errors.InvalidArgument(str(exc), "INVALID_IMAGE") from None
        except AnalyzerClosedError:
            raise errors.Unavailable("the faces service is shutting down; try again") from None

    async def Analyze(self, request: Any, context: Any) -> faces_pb2.AnalyzeResponse:
        image = await self._image(request.image, request.subject_id)
        faces = await self._analyze(image, options_of(request.options))
        return faces_pb2.AnalyzeResponse(width=image.shape[1], height=image.shape[0], faces=[face_pb(f) for f in faces])

    async def AnalyzeStream(self, request_iterator: AsyncIterator[Any], context: Any) -> AsyncIterator[faces_pb2.AnalyzeStreamResponse]:
        sizes: dict[str, tuple[int, int]] = {}
        failed: list[faces_pb2.AnalyzeStreamResponse] = []

        async def decoded() -> AsyncIterator[tuple[str, np.ndarray, AnalyzeOptions]]:
            async for item in request_iterator:
                try:
                    image = await self._image(item.image, item.subject_id)
                except errors.DomainError as exc:
                    failed.append(stream_error(item.id, exc))
                    continue
                sizes[item.id] = (image.shape[1], image.shape[0])
                yield item.id, image, options_of(item.options)

        async for key, result in self._analyzer.analyze_many(decoded()):
            while failed:
                yield failed.pop()
            if isinstance(result, FacesError):
                yield stream_error(key, result)
                continue
            width, height = sizes.pop(key)
            yield faces_pb2.AnalyzeStreamResponse(
                id=key, result=faces_pb2.AnalyzeResponse(width=width, height=height, faces=[face_pb(f) for f in result])
            )
        while failed:
            yield failed.pop()


def service_name() -> str:
    return str(faces_pb2.DESCRIPTOR.services_by_name["Faces"].full_name)
