"""gRPC servicer of Render: proto <-> use cases only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import numpy as np

from likeness.render.v1 import render_pb2, render_pb2_grpc
from likeness_imaging.codec import decode_rgb
from likeness_platform.callcontext import current_caller
from likeness_platform.dataholder import message_from
from likeness_platform.errors import DomainError, InvalidArgument
from likeness_render.adapters.usage import UsageCounter, channel_of
from likeness_render.domain import compliance, hair, idphoto
from likeness_render.domain.outfits import Garment
from likeness_render.domain.results import StoredResult
from likeness_render.domain.specs import Medium, Spec
from likeness_render.domain.templates import Template, TemplateError, png_alpha
from likeness_render.usecases import Made, PhotoRequest, RenderUseCases, SheetRequest

CHUNK = 1024 * 1024
T = TypeVar("T")
_MODES = {
    render_pb2.BACKGROUND_MODE_UNSPECIFIED: "spec",
    render_pb2.BACKGROUND_MODE_SPEC: "spec",
    render_pb2.BACKGROUND_MODE_SOLID: "solid",
    render_pb2.BACKGROUND_MODE_GRADIENT: "gradient",
    render_pb2.BACKGROUND_MODE_KEEP: "keep",
}

# Contract enums <-> the domain's strings (stored result metadata keeps the strings).
SEVERITIES = {
    compliance.Severity.ERROR.value: render_pb2.SEVERITY_ERROR,
    compliance.Severity.WARNING.value: render_pb2.SEVERITY_WARNING,
}
REMEDIES = {
    compliance.Remedy.RETAKE.value: render_pb2.REMEDY_RETAKE,
    compliance.Remedy.FIXED.value: render_pb2.REMEDY_FIXED,
}
RESULT_KINDS = {
    "id_photo": render_pb2.RESULT_KIND_ID_PHOTO,
    "sheet": render_pb2.RESULT_KIND_SHEET,
    "portrait": render_pb2.RESULT_KIND_PORTRAIT,
    "hairstyle": render_pb2.RESULT_KIND_HAIRSTYLE,
}
FORMATS = {"JPEG": render_pb2.IMAGE_FORMAT_JPEG, "PNG": render_pb2.IMAGE_FORMAT_PNG}
MEDIA = {Medium.PRINT: render_pb2.MEDIUM_PRINT, Medium.DIGITAL: render_pb2.MEDIUM_DIGITAL, Medium.BOTH: render_pb2.MEDIUM_BOTH}


def _range(lo: float | None, hi: float | None) -> render_pb2.Range | None:
    if lo is None and hi is None:
        return None
    return render_pb2.Range(min=lo or 0.0, max=hi or 0.0)


def spec_pb(s: Spec, dpi: float = 300.0) -> render_pb2.Spec:
    w, h = s.size_px(dpi)
    out = render_pb2.Spec(
        id=s.id,
        country_code=s.country_code,
        country=s.country,
        document=s.document,
        width_mm=s.width_mm or 0.0,
        height_mm=s.height_mm or 0.0,
        dpi=int(s.dpi or 0),
        width_px=s.width_px or 0,
        height_px=s.height_px or 0,
        backgrounds=list(s.background),
        format=FORMATS.get(s.format or "", render_pb2.IMAGE_FORMAT_UNSPECIFIED),
        medium=MEDIA.get(s.print_or_digital, render_pb2.MEDIUM_UNSPECIFIED),
        sources=list(s.source),
        notes=s.notes or "",
        output_width_px=w,
        output_height_px=h,
    )
    for name, r in (
        ("head_mm", _range(s.head_min_mm, s.head_max_mm)),
        ("eye_from_bottom_mm", _range(s.eye_from_bottom_min_mm, s.eye_from_bottom_max_mm)),
        ("top_margin_mm", _range(s.top_margin_min_mm, s.top_margin_max_mm)),
        ("file_kb", _range(s.file_min_kb, s.file_max_kb)),
    ):
        if r is not None:
            getattr(out, name).CopyFrom(r)
    return out


def report_pb(report: compliance.ComplianceReport, measured: dict[str, float]) -> render_pb2.ComplianceReport:
    out = render_pb2.ComplianceReport(passed=report.passed, spec_id=report.spec_id)
    for i in report.issues:
        out.issues.append(
            render_pb2.ComplianceIssue(
                code=str(i.code),
                message=i.message,
                measured=float(i.measured or 0.0),
                allowed=render_pb2.Range(min=float(i.allowed_min or 0.0), max=float(i.allowed_max or 0.0)),
                severity=SEVERITIES.get(str(i.severity), render_pb2.SEVERITY_UNSPECIFIED),
                remedy=REMEDIES.get(str(i.remedy), render_pb2.REMEDY_UNSPECIFIED),
            )
        )
    out.measurements.CopyFrom(
        render_pb2.Measurements(**{k: float(v) for k, v in measured.items() if k in render_pb2.Measurements.DESCRIPTOR.fields_by_name})
    )
    return out


def _report_from_meta(meta: dict[str, Any]) -> render_pb2.ComplianceReport | None:
    r = meta.get("report")
    if not r:
        return None
    out = render_pb2.ComplianceReport(passed=r["passed"], spec_id=r["spec_id"])
    for i in r["issues"]:
        out.issues.append(
            render_pb2.ComplianceIssue(
                code=i["code"],
                message=i["message"],
                measured=float(i["measured"] or 0),
                allowed=render_pb2.Range(min=float(i["min"] or 0), max=float(i["max"] or 0)),
                severity=SEVERITIES.get(i["severity"], render_pb2.SEVERITY_UNSPECIFIED),
                remedy=REMEDIES.get(i.get("remedy", ""), render_pb2.REMEDY_UNSPECIFIED),
            )
        )
    fields = render_pb2.Measurements.DESCRIPTOR.fields_by_name
    out.measurements.CopyFrom(render_pb2.Measurements(**{k: float(v) for k, v in r["measurements"].items() if k in fields}))
    return out


def result_pb(r: StoredResult, data: bytes = b"") -> render_pb2.ResultInfo:
    out = message_from(
        render_pb2.ResultInfo,
        r,
        kind=RESULT_KINDS.get(r.kind, render_pb2.RESULT_KIND_UNSPECIFIED),
        sheet_result_id=str(r.meta.get("sheet_result_id", "")),
    )
    report = _report_from_meta(r.meta)
    if report is not None:
        out.report.CopyFrom(report)
    if not r.persisted:
        out.inline_data = data
    return out


SHEET_FORMATS = {
    render_pb2.IMAGE_FORMAT_UNSPECIFIED: "JPEG",
    render_pb2.IMAGE_FORMAT_JPEG: "JPEG",
    render_pb2.IMAGE_FORMAT_PNG: "PNG",
    render_pb2.IMAGE_FORMAT_PDF: "PDF",
}
DEFAULT_SHEET = SheetRequest()


def _sheet(layout: render_pb2.SheetLayout) -> SheetRequest:
    if layout.format not in SHEET_FORMATS:
        raise InvalidArgument(f"unknown sheet format {layout.format}", "UNSUPPORTED_FORMAT")
    exact = layout.exact_spacing
    return SheetRequest(
        layout.paper_id,
        layout.width_mm,
        layout.height_mm,
        layout.dpi or 300,
        # Without exact spacing a 0 is "the default preferred spacing".
        layout.margin_mm if exact or layout.margin_mm else DEFAULT_SHEET.margin_mm,
        layout.gap_mm if exact or layout.gap_mm else DEFAULT_SHEET.gap_mm,
        layout.cut_marks,
        layout.count,
        exact,
        SHEET_FORMATS[layout.format],
    )


def outfit_pb(g: Garment) -> render_pb2.Outfit:
    return render_pb2.Outfit(outfit_id=g.id, name=g.name, description=g.description, width=g.width, height=g.height)


def template_pb(t: Template) -> render_pb2.Template:
    return render_pb2.Template(template_id=t.id, name=t.name, style=t.style, face_count=t.face_count, width=t.width, height=t.height)


class RenderServicer(render_pb2_grpc.RenderServicer):
    def __init__(self, use_cases: RenderUseCases, template_repo: Any, usage: UsageCounter | None = None) -> None:
        self._uc = use_cases
        self._template_repo = template_repo
        self._usage = usage

    async def _counted(self, operation: str, spec_id: str, context: Any, work: Callable[[], Awaitable[T]]) -> T:
        """Run a generation and count it in the usage statistics with its outcome (ok or the error code)."""
        outcome = "INTERNAL"
        try:
            result = await work()
            outcome = "ok"
            return result
        except DomainError as exc:
            outcome = exc.code
            raise
        except asyncio.CancelledError:
            outcome = "CANCELLED"
            raise
        finally:
            if self._usage is not None:
                metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
                interface, version = channel_of(current_caller(), metadata)
                country = self._uc.catalog.get(spec_id).country_code if spec_id in self._uc.catalog else ""
                self._usage.count(interface, operation, spec_id if spec_id in self._uc.catalog else "", country, outcome, version)

    async def CreateIdPhoto(self, request: Any, context: Any) -> render_pb2.CreateIdPhotoResponse:
        return await self._counted("id_photo", request.spec_id, context, lambda: self._create_id_photo(request))

    async def CheckIdPhoto(self, request: Any, context: Any) -> render_pb2.CheckIdPhotoResponse:
        return await self._counted("id_photo_check", request.spec_id, context, lambda: self._check_id_photo(request))

    async def CreatePortrait(self, request: Any, context: Any) -> render_pb2.CreatePortraitResponse:
        return await self._counted("portrait", "", context, lambda: self._create_portrait(request))

    async def ChangeHairstyle(self, request: Any, context: Any) -> render_pb2.ChangeHairstyleResponse:
        return await self._counted("hairstyle", "", context, lambda: self._change_hairstyle(request))

    async def _create_id_photo(self, request: Any) -> render_pb2.CreateIdPhotoResponse:
        if not request.subject_id:
            raise InvalidArgument("subject_id is required", "MISSING_SUBJECT")
        b = request.background
        mode = _MODES.get(b.mode, "spec")
        colours = tuple(b.colors)
        need = {"solid": 1, "gradient": 2}.get(mode, 0)
        if len(colours) < need:
            raise InvalidArgument(f"background mode {mode!r} needs {need} colour(s)", "INVALID_BACKGROUND")
        for colour in colours:
            try:
                idphoto.matte.hex_rgb(colour)
            except ValueError:
                raise InvalidArgument(f"not a #rrggbb colour: {colour!r}", "INVALID_BACKGROUND") from None
        if request.outfit_id:
            self._uc.outfits.get(request.outfit_id)  # NotFound before any work
        if not (0 <= request.beauty.smoothing <= 10 and 0 <= request.beauty.whitening <= 10):
            raise InvalidArgument("beauty levels are 0..10", "INVALID_BEAUTY")
        if request.output.format == render_pb2.IMAGE_FORMAT_PDF:
            raise InvalidArgument("an ID photo is JPEG or PNG; PDF is for print sheets (layout.format)", "UNSUPPORTED_FORMAT")
        fmt = {render_pb2.IMAGE_FORMAT_JPEG: "JPEG", render_pb2.IMAGE_FORMAT_PNG: "PNG"}.get(request.output.format, "")
        photo_request = PhotoRequest(
            subject_id=request.subject_id,
            spec_id=request.spec_id,
            options=idphoto.Options(mode, colours, request.beauty.smoothing, request.beauty.whitening, request.outfit_id),
            output_format=fmt,
            dpi=request.output.dpi,
            sheet=_sheet(request.sheet) if request.HasField("sheet") else None,
            outfit_ai_prompt=request.outfit_ai_prompt,
        )
        made: Made = await self._uc.id_photos.create_id_photo(photo_request, request.image)
        photo = result_pb(made.photo, made.photo_bytes)
        if made.sheet is not None:
            photo.sheet_result_id = made.sheet.result_id
        report = report_pb(made.report, made.measurements)
        photo.report.CopyFrom(report)
        response = render_pb2.CreateIdPhotoResponse(photo=photo, report=report, sheet_photo_count=made.sheet_count)
        if made.sheet is not None:
            response.sheet.CopyFrom(result_pb(made.sheet, made.sheet_bytes))
        return response

    async def _check_id_photo(self, request: Any) -> render_pb2.CheckIdPhotoResponse:
        report, measured = await self._uc.checks.check_id_photo(request.subject_id, request.image, request.spec_id)
        return render_pb2.CheckIdPhotoResponse(report=report_pb(report, measured))

    async def ComposeSheet(self, request: Any, context: Any) -> render_pb2.ComposeSheetResponse:
        if not request.items:
            raise InvalidArgument("give at least one stored ID photo", "MISSING_ITEMS")
        stored, data, count = await self._uc.sheets.compose_sheet(
            request.subject_id, [(i.result_id, i.count) for i in request.items], _sheet(request.layout)
        )
        return render_pb2.ComposeSheetResponse(sheet=result_pb(stored, data), photo_count=count)

    async def _create_portrait(self, request: Any) -> render_pb2.CreatePortraitResponse:
        stored, data = await self._uc.portraits.create_portrait(
            request.subject_id, list(request.images), request.template_id, request.strength, request.face_index, request.ai_prompt
        )
        return render_pb2.CreatePortraitResponse(result=result_pb(stored, data))

    async def _change_hairstyle(self, request: Any) -> render_pb2.ChangeHairstyleResponse:
        stored, data = await self._uc.hairstyles.change_hairstyle(
            request.subject_id, request.image, request.hairstyle_id, request.ai_prompt
        )
        return render_pb2.ChangeHairstyleResponse(result=result_pb(stored, data))

    async def ListSpecs(self, request: Any, context: Any) -> render_pb2.ListSpecsResponse:
        found = self._uc.catalog.search(country=request.country or None, document=request.document or None, text=request.query or None)
        return render_pb2.ListSpecsResponse(specs=[spec_pb(s) for s in found])

    async def GetSpec(self, request: Any, context: Any) -> render_pb2.GetSpecResponse:
        return render_pb2.GetSpecResponse(spec=spec_pb(self._uc.spec(request.spec_id)))

    async def ListPapers(self, request: Any, context: Any) -> render_pb2.ListPapersResponse:
        return render_pb2.ListPapersResponse(
            papers=[render_pb2.Paper(id=p.id, name=p.name, width_mm=p.width_mm, height_mm=p.height_mm) for p in self._uc.catalog.papers()]
        )

    async def ListTemplates(self, request: Any, context: Any) -> render_pb2.ListTemplatesResponse:
        return render_pb2.ListTemplatesResponse(templates=[template_pb(t) for t in await self._uc.templates.list_templates()])

    async def RegisterTemplate(self, request: Any, context: Any) -> render_pb2.RegisterTemplateResponse:
        if not request.name or not request.image:
            raise InvalidArgument("a template needs a name and an image", "INVALID_TEMPLATE")
        try:
            image = await asyncio.to_thread(decode_rgb, bytes(request.image))
        except ValueError:
            raise InvalidArgument("the template image cannot be decoded", "CORRUPT_IMAGE") from None
        alpha = await asyncio.to_thread(png_alpha, bytes(request.image))
        if alpha is not None and alpha.shape != image.shape[:2]:
            alpha = None  # an EXIF-rotated picture: its alpha no longer lines up; matted here instead
        try:
            template = await self._uc.templates.register_template(
                request.name, request.style or "custom", np.ascontiguousarray(image), alpha=alpha
            )
        except TemplateError as exc:
            raise InvalidArgument(str(exc), "INVALID_TEMPLATE") from None
        if self._template_repo is not None:
            await self._template_repo.save(template)
        return render_pb2.RegisterTemplateResponse(template=template_pb(template))

    async def ListHairstyles(self, request: Any, context: Any) -> render_pb2.ListHairstylesResponse:
        return render_pb2.ListHairstylesResponse(
            hairstyles=[render_pb2.Hairstyle(hairstyle_id=h.id, name=h.name) for h in hair.hairstyles()]
        )

    async def ListOutfits(self, request: Any, context: Any) -> render_pb2.ListOutfitsResponse:
        return render_pb2.ListOutfitsResponse(outfits=[outfit_pb(g) for g in self._uc.outfits.list_garments()])

    async def RegisterOutfit(self, request: Any, context: Any) -> render_pb2.RegisterOutfitResponse:
        if not request.name or not request.image:
            raise InvalidArgument("an outfit needs a name and an RGBA PNG image", "INVALID_OUTFIT")
        for field in ("neck", "left_shoulder", "right_shoulder"):
            if not request.HasField(field):
                raise InvalidArgument(f"an outfit needs its {field} anchor", "INVALID_OUTFIT")
        garment = await self._uc.outfits.register(
            request.name,
            bytes(request.image),
            (request.neck.x, request.neck.y),
            (request.left_shoulder.x, request.left_shoulder.y),
            (request.right_shoulder.x, request.right_shoulder.y),
            request.description,
        )
        return render_pb2.RegisterOutfitResponse(outfit=outfit_pb(garment))

    async def OpenResult(self, request: Any, context: Any) -> AsyncIterator[render_pb2.OpenResultResponse]:
        stored, data = await self._uc.results.open_result(request.subject_id, request.result_id, request.purpose)
        yield render_pb2.OpenResultResponse(info=result_pb(stored))
        for i in range(0, len(data), CHUNK):
            yield render_pb2.OpenResultResponse(chunk=data[i : i + CHUNK])


def service_name() -> str:
    return str(render_pb2.DESCRIPTOR.services_by_name["Render"].full_name)
