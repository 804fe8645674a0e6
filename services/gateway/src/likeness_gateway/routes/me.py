"""The caller's own data: export, erasure and erasure status."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
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


@router.get(
    "/v1/me/export",
    summary="Download everything held about the caller (zip)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def export_me(device: CurrentDevice, gw: GatewayDep) -> StreamingResponse:
    prepared = await gw.privacy.request_export(device.subject_id)
    chunks = await gw.privacy.download_export(prepared.export_id, device.subject_id)
    return StreamingResponse(
        chunks,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="likeness-export-{prepared.export_id}.zip"',
            "Cache-Control": "private, no-store",
        },
    )
