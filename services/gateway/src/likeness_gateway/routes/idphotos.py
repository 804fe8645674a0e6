"""ID photos: make (and check and lay out) in one call, fetch the result, its image and its sheet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from likeness.render.v1 import render_pb2
from likeness_gateway.adapters.render_client import image_ref, remedy_name, severity_name
from likeness_gateway.deps import CurrentDevice, Gateway, GatewayDep
from likeness_gateway.domain.devices import Device
from likeness_gateway.domain.text import IDENTIFIER, PRINTABLE
from likeness_gateway.errors import ApiError
from likeness_gateway.routes.generation import generate
from likeness_gateway.routes.models import EXAMPLE_UPLOAD_ID, IMAGE_RESPONSES, Identifier, from_message, request_config

router = APIRouter(tags=["id-photos"])
RouteT = TypeVar("RouteT", bound=Callable[..., Any])
HEX = r"^#[0-9a-fA-F]{6}$"
MM_PER_INCH = 25.4
# The largest print sheet, in pixels: a documented limit that render enforces too (paper sizes included).
MAX_SHEET_PIXELS = 50_000_000
SHEET_FORMATS = {"jpeg": render_pb2.IMAGE_FORMAT_JPEG, "png": render_pb2.IMAGE_FORMAT_PNG, "pdf": render_pb2.IMAGE_FORMAT_PDF}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
_MODES = {
    "spec": render_pb2.BACKGROUND_MODE_SPEC,
    "solid": render_pb2.BACKGROUND_MODE_SOLID,
    "gradient": render_pb2.BACKGROUND_MODE_GRADIENT,
    "keep": render_pb2.BACKGROUND_MODE_KEEP,
}


class BackgroundIn(BaseModel):
    mode: Literal["spec", "solid", "gradient", "keep"] = "spec"
    colors: list[Annotated[str, Field(pattern=HEX)]] = Field(default_factory=list, max_length=2)


class BeautyIn(BaseModel):
    smoothing: int = Field(0, ge=0, le=10)
    whitening: int = Field(0, ge=0, le=10)


class OutputIn(BaseModel):
    format: Literal["jpeg", "png"] | None = None
    dpi: int | None = Field(None, ge=72, le=1200)


class LayoutIn(BaseModel):
    paper_id: str | None = Field(None, max_length=64, pattern=IDENTIFIER)
    width_mm: float | None = Field(None, gt=20, le=1000)
    height_mm: float | None = Field(None, gt=20, le=1000)
    dpi: int = Field(300, ge=72, le=1200, description="The sheet may have at most 50 MP (width × height in pixels at this dpi)")
    margin_mm: float | None = Field(
        None,
        ge=0,
        le=50,
        description="Omit margin_mm and gap_mm to let the layout choose: 3 mm margin and 2 mm gap, or tighter when that places "
        "more photos (on papers up to 5x7 in photos may touch, e.g. the usual 6-up of 2x2 in on 4x6 in, cut lines on the "
        "borders). Give either to use exactly those (the other: 3 mm margin / 2 mm gap).",
    )
    gap_mm: float | None = Field(None, ge=0, le=50)
    cut_marks: bool = True
    count: int = Field(0, ge=0, le=100)
    format: Literal["jpeg", "png", "pdf"] = Field(
        "jpeg", description="pdf: one page at the paper's exact size (points = inches x 72); jpeg and png carry an sRGB ICC profile"
    )


class IdPhotoIn(BaseModel):
    model_config = request_config(
        upload_id=EXAMPLE_UPLOAD_ID,
        spec_id="us-passport",
        background={"mode": "spec"},
        beauty={"smoothing": 3, "whitening": 0},
        outfit=None,
        output={"format": "jpeg"},
        layout={"paper_id": "4r", "cut_marks": True, "format": "pdf"},
    )

    upload_id: Identifier
    spec_id: Identifier
    background: BackgroundIn = Field(default_factory=BackgroundIn)
    beauty: BeautyIn = Field(default_factory=BeautyIn)
    outfit: str | None = Field(None, max_length=64, pattern=IDENTIFIER)
    outfit_ai_prompt: str | None = Field(
        None,
        max_length=500,
        pattern=PRINTABLE,
        description="Refine the outfit with the server's AI image provider (needs `outfit`; only the torso crop below the chin "
        "and the garment's mask are sent, after the person's consent is checked); 409 when none is configured",
    )
    output: OutputIn = Field(default_factory=OutputIn)
    layout: LayoutIn | None = None

    @field_validator("background")
    @classmethod
    def colours_fit_mode(cls, v: BackgroundIn) -> BackgroundIn:
        need = {"solid": 1, "gradient": 2}.get(v.mode, 0)
        if len(v.colors) < need:
            raise ValueError(f"background mode {v.mode!r} needs {need} colour(s)")
        return v


class RangeOut(BaseModel):
    min: float
    max: float


class IssueOut(BaseModel):
    code: str
    message: str
    measured: float
    allowed: RangeOut
    severity: str
    remedy: str = Field(description='"retake": take the photo again as the message says; "fixed": Likeness corrected it in this output')


class MeasurementsOut(BaseModel):
    head_height_mm: float
    eye_line_from_bottom_mm: float
    head_height_px: float
    eye_line_from_bottom_px: float
    crown_y_px: float
    chin_y_px: float
    yaw: float
    pitch: float
    roll: float


class ReportOut(BaseModel):
    passed: bool
    spec_id: str
    issues: list[IssueOut]
    measurements: MeasurementsOut


def report_out(r: render_pb2.ComplianceReport) -> ReportOut:
    issues = [
        from_message(
            IssueOut, i, allowed=from_message(RangeOut, i.allowed), severity=severity_name(i.severity), remedy=remedy_name(i.remedy)
        )
        for i in r.issues
    ]
    return from_message(ReportOut, r, issues=issues, measurements=from_message(MeasurementsOut, r.measurements))


class IdPhotoOut(BaseModel):
    id: str
    spec_id: str
    width: int
    height: int
    format: str
    size_bytes: int
    dpi: int
    expires_at: str
    stored: bool
    image_url: str
    sheet_url: str | None
    sheet_photo_count: int
    report: ReportOut | None


def _fmt(content_type: str) -> str:
    return "png" if content_type == "image/png" else "jpeg"


def photo_out(
    info: render_pb2.ResultInfo, report: render_pb2.ComplianceReport | None, sheet_id: str, sheet_count: int, expires_at: str
) -> IdPhotoOut:
    return IdPhotoOut(
        id=info.result_id,
        spec_id=info.spec_id or (report.spec_id if report else ""),
        width=info.width,
        height=info.height,
        format=_fmt(info.content_type),
        size_bytes=info.size_bytes,
        dpi=info.dpi,
        expires_at=expires_at,
        stored=info.persisted,
        image_url=f"/v1/id-photos/{info.result_id}/image",
        sheet_url=f"/v1/id-photos/{info.result_id}/sheet" if sheet_id else None,
        sheet_photo_count=sheet_count,
        report=report_out(report) if report is not None else None,
    )


def _layout(layout: LayoutIn | None) -> render_pb2.SheetLayout | None:
    if layout is None:
        return None
    if not layout.paper_id and not (layout.width_mm and layout.height_mm):
        raise ApiError(400, "INVALID_LAYOUT", "layout needs paper_id or both width_mm and height_mm")
    if not layout.paper_id and layout.width_mm and layout.height_mm:
        pixels = round(layout.width_mm * layout.dpi / MM_PER_INCH) * round(layout.height_mm * layout.dpi / MM_PER_INCH)
        if pixels > MAX_SHEET_PIXELS:
            raise ApiError(
                400,
                "OUTPUT_TOO_LARGE",
                f"a {layout.width_mm:g}x{layout.height_mm:g} mm sheet at {layout.dpi} dpi would have {pixels} pixels;"
                f" the limit is {MAX_SHEET_PIXELS} (lower the dpi or the size)",
                {"pixels": pixels, "limit": MAX_SHEET_PIXELS},
            )
    return render_pb2.SheetLayout(
        paper_id=layout.paper_id or "",
        width_mm=layout.width_mm or 0,
        height_mm=layout.height_mm or 0,
        dpi=layout.dpi,
        margin_mm=3.0 if layout.margin_mm is None else layout.margin_mm,
        gap_mm=2.0 if layout.gap_mm is None else layout.gap_mm,
        cut_marks=layout.cut_marks,
        count=layout.count,
        exact_spacing=layout.margin_mm is not None or layout.gap_mm is not None,
        format=SHEET_FORMATS[layout.format],
    )


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat()


@router.post(
    "/v1/id-photos", status_code=201, response_model=IdPhotoOut, summary="Make an ID photo (checked, and laid out on a sheet when asked)"
)
async def create_id_photo(body: IdPhotoIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> IdPhotoOut | Response:
    inline = gw.inline_images.get(body.upload_id, device.subject_id)
    call = render_pb2.CreateIdPhotoRequest(
        subject_id=device.subject_id,
        image=image_ref(body.upload_id, inline),
        spec_id=body.spec_id,
        background=render_pb2.Background(mode=_MODES[body.background.mode], colors=body.background.colors),
        beauty=render_pb2.Beauty(smoothing=body.beauty.smoothing, whitening=body.beauty.whitening),
        outfit_id=body.outfit or "",
        outfit_ai_prompt=body.outfit_ai_prompt or "",
        output=render_pb2.OutputOptions(
            format={"jpeg": render_pb2.IMAGE_FORMAT_JPEG, "png": render_pb2.IMAGE_FORMAT_PNG}.get(body.output.format or "", 0),
            dpi=body.output.dpi or 0,
        ),
    )
    layout = _layout(body.layout)
    if layout is not None:
        call.sheet.CopyFrom(layout)
    parameters = {
        "spec_id": body.spec_id,
        "background": body.background.mode,
        "smoothing": str(body.beauty.smoothing),
        "whitening": str(body.beauty.whitening),
        "outfit": body.outfit or "",
        "outfit_ai": "yes" if body.outfit_ai_prompt else "no",
        "sheet": (body.layout.paper_id or "custom") if body.layout else "",
    }
    return await generate(
        gw, request, device, "id_photo", parameters, body, lambda: gw.render.create_id_photo(call), lambda r: _made(gw, device, r)
    )


def _made(gw: Gateway, device: Device, reply: render_pb2.CreateIdPhotoResponse) -> IdPhotoOut:
    photo, sheet = reply.photo, reply.sheet
    if not photo.persisted:
        expires = gw.inline_images.put(
            photo.result_id,
            device.subject_id,
            photo.inline_data,
            photo.content_type,
            {"info": photo.SerializeToString(), "sheet_id": sheet.result_id},
        )
        if sheet.result_id:
            gw.inline_images.put(sheet.result_id, device.subject_id, sheet.inline_data, sheet.content_type)
        expires_at = datetime.fromtimestamp(expires, UTC).isoformat()
    else:
        expires_at = _iso(photo.expires_at.ToDatetime())
    return photo_out(photo, reply.report, sheet.result_id, reply.sheet_photo_count, expires_at)


async def _info(gw: Gateway, device: Device, photo_id: str) -> render_pb2.ResultInfo:
    item = gw.inline_images.item(photo_id, device.subject_id)
    if item is not None and "info" in item.meta:
        info = render_pb2.ResultInfo()
        info.ParseFromString(item.meta["info"])
        return info
    info = await gw.render.describe_result(device.subject_id, photo_id)
    if info.kind != render_pb2.RESULT_KIND_ID_PHOTO:
        raise ApiError(404, "RESULT_NOT_FOUND", "no such ID photo")
    return info


@router.get("/v1/id-photos/{photo_id}", response_model=IdPhotoOut, summary="An ID photo's description and compliance report")
async def get_id_photo(photo_id: str, device: CurrentDevice, gw: GatewayDep) -> IdPhotoOut:
    info = await _info(gw, device, photo_id)
    return photo_out(info, info.report if info.HasField("report") else None, info.sheet_result_id, 0, _iso(info.expires_at.ToDatetime()))


async def _stream(gw: Gateway, device: Device, result_id: str, filename: str) -> Response:
    item = gw.inline_images.item(result_id, device.subject_id)
    headers = {"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "private, no-store"}
    if item is not None:
        headers["Content-Disposition"] = f'inline; filename="{filename}.{EXTENSIONS.get(item.content_type, "jpg")}"'
        return Response(item.data, media_type=item.content_type, headers=headers)
    info, chunks = await gw.render.open_result(device.subject_id, result_id, "download")
    ext = EXTENSIONS.get(info.content_type, "jpg")
    headers["Content-Disposition"] = f'inline; filename="{filename}.{ext}"'
    return StreamingResponse(chunks, media_type=info.content_type, headers=headers)


def _image_route(path: str, summary: str) -> Callable[[RouteT], RouteT]:
    return router.get(path, summary=summary, response_class=StreamingResponse, responses=IMAGE_RESPONSES)


@_image_route("/v1/id-photos/{photo_id}/image", "The ID photo file (JPEG or PNG at the spec's size, DPI set)")
async def get_image(photo_id: str, device: CurrentDevice, gw: GatewayDep) -> Response:
    return await _stream(gw, device, photo_id, "id-photo")


@router.get(
    "/v1/id-photos/{photo_id}/sheet",
    summary="The print sheet made with the ID photo (JPEG, PNG or PDF as asked in layout.format)",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "application/pdf": {}}}},
)
async def get_sheet(photo_id: str, device: CurrentDevice, gw: GatewayDep) -> Response:
    item = gw.inline_images.item(photo_id, device.subject_id)
    sheet_id = item.meta.get("sheet_id", "") if item is not None else (await _info(gw, device, photo_id)).sheet_result_id
    if not sheet_id:
        raise ApiError(404, "NO_SHEET", "this ID photo was made without a print sheet; ask for one with 'layout'")
    return await _stream(gw, device, sheet_id, "id-photo-sheet")


class CheckIn(BaseModel):
    model_config = request_config(upload_id=EXAMPLE_UPLOAD_ID, spec_id="schengen-visa")

    upload_id: Identifier
    spec_id: Identifier


@router.post("/v1/id-photos/check", response_model=ReportOut, summary="Check any photo against a spec without editing it")
async def check_id_photo(body: CheckIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> ReportOut | Response:
    inline = gw.inline_images.get(body.upload_id, device.subject_id)
    call = render_pb2.CheckIdPhotoRequest(subject_id=device.subject_id, image=image_ref(body.upload_id, inline), spec_id=body.spec_id)
    # A check makes no photo: it costs no credit (the device's rate limit still applies).
    return await generate(
        gw,
        request,
        device,
        "id_photo_check",
        {"spec_id": body.spec_id},
        body,
        lambda: gw.render.check_id_photo(call),
        report_out,
        status_code=200,
        charge=False,
    )
