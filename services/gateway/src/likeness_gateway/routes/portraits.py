"""AI portraits: a face fused into a template, and hairstyle changes."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from likeness.render.v1 import render_pb2
from likeness_gateway.adapters.render_client import image_ref, result_kind_name
from likeness_gateway.deps import CurrentDevice, Gateway, GatewayDep
from likeness_gateway.domain.devices import Device
from likeness_gateway.domain.text import PRINTABLE
from likeness_gateway.routes.generation import generate
from likeness_gateway.routes.idphotos import _stream
from likeness_gateway.routes.models import EXAMPLE_UPLOAD_ID, IMAGE_RESPONSES, Identifier, request_config

router = APIRouter(tags=["portraits"])


class PortraitIn(BaseModel):
    model_config = request_config(upload_id=EXAMPLE_UPLOAD_ID, template_id="astronaut-studio", strength=60)

    upload_id: str = Field(min_length=1, max_length=64, description="The user's photo")
    extra_upload_ids: list[Identifier] = Field(
        default_factory=list, max_length=7, description="More faces for templates with several faces, in template order"
    )
    template_id: Identifier
    strength: int = Field(60, ge=0, le=100, description="0 = the template's face, 100 = the user's")
    face_index: int = Field(0, ge=0, le=7, description="First template face to fill")
    ai_prompt: str | None = Field(
        None,
        max_length=500,
        pattern=PRINTABLE,
        description="Restyle the face with the server's AI image provider (only the face crop is sent); 409 when none is configured",
    )


class HairstyleIn(BaseModel):
    model_config = request_config(upload_id=EXAMPLE_UPLOAD_ID, hairstyle_id="bob")

    upload_id: Identifier
    hairstyle_id: Identifier
    ai_prompt: str | None = Field(
        None,
        max_length=500,
        pattern=PRINTABLE,
        description="Refine the new hair with the server's AI image provider (only the head crop and the hair's mask are sent); "
        "409 when none is configured",
    )


class ResultOut(BaseModel):
    id: str
    kind: str
    width: int
    height: int
    format: str
    size_bytes: int
    expires_at: str
    stored: bool
    image_url: str


def _result(gw: Gateway, device: Device, info: render_pb2.ResultInfo) -> ResultOut:
    if not info.persisted:
        expires = datetime.fromtimestamp(
            gw.inline_images.put(info.result_id, device.subject_id, info.inline_data, info.content_type), UTC
        ).isoformat()
    else:
        expires = info.expires_at.ToDatetime().replace(tzinfo=UTC).isoformat()
    return ResultOut(
        id=info.result_id,
        kind=result_kind_name(info.kind),
        width=info.width,
        height=info.height,
        format="png" if info.content_type == "image/png" else "jpeg",
        size_bytes=info.size_bytes,
        expires_at=expires,
        stored=info.persisted,
        image_url=f"/v1/results/{info.result_id}/image",
    )


def _ref(gw: Gateway, device: Device, upload_id: str) -> object:
    return image_ref(upload_id, gw.inline_images.get(upload_id, device.subject_id))


@router.post("/v1/portraits", status_code=201, response_model=ResultOut, summary="Fuse the user's face into a template")
async def create_portrait(body: PortraitIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> ResultOut | Response:
    call = render_pb2.CreatePortraitRequest(
        subject_id=device.subject_id,
        images=[_ref(gw, device, u) for u in [body.upload_id, *body.extra_upload_ids]],
        template_id=body.template_id,
        strength=body.strength,
        face_index=body.face_index,
        ai_prompt=body.ai_prompt or "",
    )
    params = {
        "template_id": body.template_id,
        "strength": str(body.strength),
        "faces": str(1 + len(body.extra_upload_ids)),
        "ai": "yes" if body.ai_prompt else "no",
    }
    return await generate(
        gw, request, device, "portrait", params, body, lambda: gw.render.create_portrait(call), lambda info: _result(gw, device, info)
    )


@router.post("/v1/hairstyles", status_code=201, response_model=ResultOut, summary="Put a hair material on the user's head")
async def change_hairstyle(body: HairstyleIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> ResultOut | Response:
    call = render_pb2.ChangeHairstyleRequest(
        subject_id=device.subject_id,
        image=_ref(gw, device, body.upload_id),
        hairstyle_id=body.hairstyle_id,
        ai_prompt=body.ai_prompt or "",
    )
    return await generate(
        gw,
        request,
        device,
        "hairstyle",
        {"hairstyle_id": body.hairstyle_id, "ai": "yes" if body.ai_prompt else "no"},
        body,
        lambda: gw.render.change_hairstyle(call),
        lambda info: _result(gw, device, info),
    )


@router.get(
    "/v1/results/{result_id}/image",
    summary="A portrait or hairstyle result's image",
    responses=IMAGE_RESPONSES,
)
async def result_image(result_id: str, device: CurrentDevice, gw: GatewayDep) -> Response:
    return await _stream(gw, device, result_id, "portrait")
