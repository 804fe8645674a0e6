"""Uploads: multipart `file` or a raw image body, streamed to ingestion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from likeness_gateway.deps import CurrentDevice, GatewayDep
from likeness_gateway.domain.multipart import FilePart, MultipartError
from likeness_gateway.errors import ApiError

router = APIRouter(tags=["uploads"])


class Uploaded(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "upload_id": "4f0c…",
                    "width": 3024,
                    "height": 4032,
                    "format": "heif",
                    "expires_at": "2026-11-23T10:00:00Z",
                    "stored": True,
                }
            ]
        }
    }

    upload_id: str
    width: int
    height: int
    format: str
    expires_at: str
    stored: bool


async def _counted(source: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    try:
        async for chunk in source:
            seen += len(chunk)
            if seen > limit:
                raise ApiError(413, "TOO_LARGE", f"the upload exceeds {limit} bytes")
            yield chunk
    except MultipartError as exc:
        raise ApiError(400, "INVALID_MULTIPART", str(exc)) from None


@router.post(
    "/v1/uploads",
    status_code=201,
    response_model=Uploaded,
    summary="Upload a photo (multipart field `file`, or the raw image as the body)",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
                },
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/heic": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def upload(request: Request, device: CurrentDevice, gw: GatewayDep) -> Uploaded:
    content_type = request.headers.get("content-type", "")
    limit = gw.settings.max_body_bytes
    if content_type.startswith("multipart/form-data"):
        # The `file` part is passed on as it arrives (nothing is spooled); the body cap counts every byte.
        try:
            declared, body = await FilePart(content_type, request.stream()).open()
        except MultipartError as exc:
            code = "MISSING_FILE" if "named 'file'" in str(exc) else "INVALID_MULTIPART"
            raise ApiError(400, code, str(exc)) from None
    else:
        body, declared = request.stream(), content_type
    reply = await gw.ingestion.upload(device.subject_id, declared, "app_upload", _counted(body, limit))
    info = reply.upload
    if not info.persisted:
        # Memory-only mode: nothing is stored anywhere; the gateway keeps it in memory for the next call.
        expires = gw.inline_images.put(info.upload_id, device.subject_id, reply.inline_image)
        expires_at = datetime.fromtimestamp(expires, UTC).isoformat()
    else:
        expires_at = info.expires_at.ToDatetime(tzinfo=UTC).isoformat()
    return Uploaded(
        upload_id=info.upload_id, width=info.width, height=info.height, format=info.format, expires_at=expires_at, stored=info.persisted
    )
