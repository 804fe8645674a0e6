"""Uploads: multipart `file` or a raw image body, streamed to ingestion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from likeness_gateway.deps import CurrentDevice, GatewayDep
from likeness_gateway.errors import ApiError

router = APIRouter(tags=["uploads"])
READ = 256 * 1024


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


async def _file_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(READ):
        yield chunk


async def _counted(source: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in source:
        seen += len(chunk)
        if seen > limit:
            raise ApiError(413, "TOO_LARGE", f"the upload exceeds {limit} bytes")
        yield chunk


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
        form = await request.form(max_files=1, max_fields=4)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ApiError(400, "MISSING_FILE", "send the image in a multipart field named 'file'")
        body, declared = _file_chunks(file), file.content_type or ""
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
