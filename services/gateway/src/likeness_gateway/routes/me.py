"""The caller's own data: export, erasure and erasure status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from likeness.privacy.v1 import privacy_pb2
from likeness_gateway.deps import CurrentDevice, ErasingDevice, Gateway, GatewayDep
from likeness_gateway.domain.devices import Device

router = APIRouter(tags=["me"])


class HolderReceipt(BaseModel):
    holder: str
    done: bool
    erased: dict[str, int]
    remaining: dict[str, int]
    attempts: int


class ErasureStatus(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "erasure_id": "0b9c…",
                    "status": "in_progress",
                    "deadline": "2026-11-23T10:00:00Z",
                    "completed_at": None,
                    "receipts": [],
                    "ledger_hash": "",
                }
            ]
        }
    }

    erasure_id: str
    status: str
    deadline: str
    completed_at: str | None
    ledger_hash: str
    receipts: list[HolderReceipt]


def erasure_status(e: privacy_pb2.Erasure) -> ErasureStatus:
    return ErasureStatus(
        erasure_id=e.erasure_id,
        status="completed" if e.status == privacy_pb2.ERASURE_STATUS_COMPLETED else "in_progress",
        deadline=e.deadline.ToDatetime().isoformat() + "Z",
        completed_at=(e.completed_at.ToDatetime().isoformat() + "Z") if e.HasField("completed_at") else None,
        ledger_hash=e.ledger_hash,
        receipts=[
            HolderReceipt(
                holder=r.holder,
                done=r.HasField("completed_at"),
                erased={c.category: c.count for c in r.erased},
                remaining={c.category: c.count for c in r.remaining},
                attempts=r.attempts,
            )
            for r in e.receipts
        ],
    )


@router.delete(
    "/v1/me",
    status_code=202,
    response_model=ErasureStatus,
    summary="Delete everything held about the caller",
    description="With an account, this cancels it: every device linked to it stops working and its data is erased.",
)
async def delete_me(device: ErasingDevice, gw: GatewayDep) -> ErasureStatus:
    return await erase_subject(gw, device)


async def erase_subject(gw: Gateway, device: Device) -> ErasureStatus:
    """Erase the device's subject (with its account and every linked device) across the mesh."""
    # The erasure is recorded first (privacy answers a repeat with the same erasure); only then do the
    # subject's tokens stop. If privacy fails, nothing was stopped and the client can retry; a retry
    # with a token already stopped by its erasure gets that erasure again.
    erasure = await gw.privacy.request_erasure(device.subject_id, "user_request")
    await gw.devices.deactivate_subject(device.subject_id)
    gw.inline_images.forget_subject(device.subject_id)
    return erasure_status(erasure)


@router.get(
    "/v1/me/erasures/{erasure_id}",
    response_model=ErasureStatus,
    summary="Erasure progress",
    description="Needs no token: the caller's token dies with the erasure, and the unguessable erasure id is the capability. "
    "The answer holds counts and times only.",
)
async def get_erasure(erasure_id: str, gw: GatewayDep) -> ErasureStatus:
    return erasure_status(await gw.privacy.get_erasure(erasure_id))


class ExportProgressOut(BaseModel):
    """How far the caller's latest export has got. Counts and times only."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "export_id": "5d1e…",
                    "state": "building",
                    "bytes_written": 31457280,
                    "bytes_gathered": 33554432,
                    "bytes_expected": 104857600,
                    "parts_written": 2,
                    "parts_expected": 5,
                    "percent": 32,
                    "started_at": "2026-11-23T10:00:00Z",
                    "updated_at": "2026-11-23T10:00:04Z",
                    "expires_at": "2026-11-23T11:00:00Z",
                    "error_code": None,
                }
            ]
        }
    }

    export_id: str | None
    # none | building | ready | downloading | failed
    state: str
    # Bytes of zip written so far (its size once ready).
    bytes_written: int
    # Bytes of the holders' items gathered so far, of those they announced (an estimate; 0 when none did).
    bytes_gathered: int
    bytes_expected: int
    # Services whose items are in the archive, of those the export visits.
    parts_written: int
    parts_expected: int
    # 0-100; 100 only once ready to download.
    percent: int
    started_at: str | None
    updated_at: str | None
    expires_at: str | None
    error_code: str | None


_EXPORT_STATE = {
    privacy_pb2.EXPORT_STATE_BUILDING: "building",
    privacy_pb2.EXPORT_STATE_READY: "ready",
    privacy_pb2.EXPORT_STATE_DOWNLOADING: "downloading",
    privacy_pb2.EXPORT_STATE_FAILED: "failed",
}
NO_EXPORT = ExportProgressOut(
    export_id=None,
    state="none",
    bytes_written=0,
    bytes_gathered=0,
    bytes_expected=0,
    parts_written=0,
    parts_expected=0,
    percent=0,
    started_at=None,
    updated_at=None,
    expires_at=None,
    error_code=None,
)


def _iso(ts: Any) -> str:
    return ts.ToDatetime().isoformat() + "Z"


def export_progress_out(p: privacy_pb2.ExportProgress | None) -> ExportProgressOut:
    if p is None:
        return NO_EXPORT
    return ExportProgressOut(
        export_id=p.export_id,
        state=_EXPORT_STATE.get(p.state, "building"),
        bytes_written=p.bytes_written,
        bytes_gathered=p.bytes_gathered,
        bytes_expected=p.bytes_expected,
        parts_written=p.parts_written,
        parts_expected=p.parts_expected,
        percent=p.percent,
        started_at=_iso(p.started_at),
        updated_at=_iso(p.updated_at),
        expires_at=_iso(p.expires_at),
        error_code=p.error_code or None,
    )


def _wants_progress(accept: str) -> bool:
    """`Accept: application/json` (and not the zip) asks for the export's progress instead of the export."""
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    return "application/json" in types and "application/zip" not in types


@router.get(
    "/v1/me/export",
    summary="Download everything held about the caller (zip), or see how far its export has got",
    description="Plain (or `Accept: application/zip`): the zip, built now unless one built in the background is ready. "
    "`Prefer: respond-async`: 202 at once with the progress below while the export is built in the background; poll with "
    "`Accept: application/json`, then GET the zip when `state` is `ready`. `Accept: application/json`: the progress of "
    "the caller's latest export (`state` `none` when there is none, or it has been downloaded: an export is downloaded once). "
    "A plain GET while an export is being built answers 409 `EXPORT_IN_PROGRESS` (one build at a time per person).",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}, "application/json": {"schema": ExportProgressOut.model_json_schema()}}},
        202: {"content": {"application/json": {"schema": ExportProgressOut.model_json_schema()}}},
    },
)
async def export_me(request: Request, device: CurrentDevice, gw: GatewayDep) -> Response:
    if _wants_progress(request.headers.get("accept", "")):
        return JSONResponse(export_progress_out(await gw.privacy.export_progress(device.subject_id)).model_dump(), headers=_NO_STORE)
    latest = await gw.privacy.export_progress(device.subject_id)
    if latest is not None and latest.state == privacy_pb2.EXPORT_STATE_READY:
        export_id = latest.export_id  # built in the background: downloaded now, once
    elif "respond-async" in request.headers.get("prefer", "").lower():
        started = await gw.privacy.request_export(device.subject_id, background=True)
        return JSONResponse(
            export_progress_out(started.progress).model_dump(),
            status_code=202,
            headers={**_NO_STORE, "Location": "/v1/me/export", "Preference-Applied": "respond-async", "Retry-After": "2"},
        )
    else:
        export_id = (await gw.privacy.request_export(device.subject_id)).export_id
    chunks = await gw.privacy.download_export(export_id, device.subject_id)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="likeness-export-{export_id}.zip"', **_NO_STORE},
    )


_NO_STORE = {"Cache-Control": "private, no-store"}
