"""Making an ID photo to a spec: framed, background replaced, checked, stored (and optionally laid out on a sheet)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from likeness_platform.errors import InvalidArgument, NotFound
from likeness_render.domain import compliance, encoding, idphoto, outfits
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.framing import FrameSpec
from likeness_render.domain.outfits import Wear
from likeness_render.domain.results import StoredResult
from likeness_render.domain.specs import Spec
from likeness_render.usecases.outfits import Outfits
from likeness_render.usecases.ports import RGB
from likeness_render.usecases.restyle import Restyler
from likeness_render.usecases.shared import (
    Analysis,
    MultipleFaces,
    NoFace,
    Shared,
    analysis_copy,
    decode,
    face_measurements,
    pose_measured,
    with_gaze,
)
from likeness_render.usecases.sheet import SheetRequest, Sheets

# ID-photo sources normally show a face at least this fraction of their long side; looking
# only for faces that large lets the detector skip its costliest scales (about 4x faster).
# Photos with smaller faces are searched again at the service's full range.
ID_PHOTO_MIN_FACE = 0.13


@dataclass(frozen=True)
class PhotoRequest:
    subject_id: str
    spec_id: str
    options: idphoto.Options = field(default_factory=idphoto.Options)
    output_format: str = ""  # jpeg | png | "" (the spec's)
    dpi: int = 0
    sheet: SheetRequest | None = None
    # Refine the fitted outfit with the AI provider (only the torso crop and the garment's mask are sent).
    outfit_ai_prompt: str = ""


@dataclass(frozen=True)
class Made:
    photo: StoredResult
    photo_bytes: bytes
    report: compliance.ComplianceReport
    measurements: dict[str, float]
    sheet: StoredResult | None = None
    sheet_bytes: bytes = b""
    sheet_count: int = 0


def frame_of(spec: Spec, dpi: float) -> FrameSpec:
    w, h = spec.size_px(dpi)
    head = spec.head_band_mm(dpi)
    eye = spec.eye_band_mm(dpi)
    return FrameSpec(w, h, spec.px_per_mm(dpi), (head.min, head.max), (eye.min, eye.max), spec.top_margin_band_mm(dpi))


class IdPhotos:
    def __init__(self, shared: Shared, sheets: Sheets, outfits: Outfits | None = None, restyler: Restyler | None = None) -> None:
        self.shared = shared
        self.sheets = sheets
        self.outfits = outfits
        self.restyler = restyler or Restyler()

    async def create_id_photo(self, request: PhotoRequest, image_ref: Any) -> Made:
        shared = self.shared
        spec = shared.spec(request.spec_id)
        dpi = float(request.dpi or shared.default_dpi)
        if request.outfit_ai_prompt:
            if not request.options.outfit_id:
                raise InvalidArgument("outfit_ai_prompt refines an outfit: choose one with outfit_id", "OUTFIT_AI_WITHOUT_OUTFIT")
            # Refuse before any work when the AI step may not run; checked again right before the provider call.
            await self.restyler.require_consent(request.subject_id)
        data = await shared.images.read(image_ref, request.subject_id, "id_photo")
        async with shared.slot:
            # One decode, at the reduced JPEG scale the output needs; the copy faces sees is a
            # whole-number reduction of it (block averages, about 1 ms), not a second decode.
            source = await self.shared.compute(decode, data)
            preview, scale = await self.shared.compute(analysis_copy, source)
            # The crown's segmentation needs no face: it runs while faces looks for one.
            masking = asyncio.ensure_future(self.shared.compute(idphoto.crown_mask, source.shape, shared.segment, preview))
            try:
                analysis = await shared.analyze(preview, ID_PHOTO_MIN_FACE, scale)
                if not analysis.faces:
                    analysis = await shared.analyze(preview, 0.0, scale)
            except BaseException:
                await asyncio.gather(masking, return_exceptions=True)
                raise
            mask = await masking
            if not analysis.faces:
                raise NoFace("no face was found in the photo; use a photo facing the camera")
            if len(analysis.faces) > 1 and _second_is_real(analysis.faces):
                raise MultipleFaces(f"{len(analysis.faces)} faces were found; an ID photo shows exactly one person")
            options = request.options
            if options.background == "keep":
                options = idphoto.Options("keep", (), 0, 0, options.outfit_id)
            frame = frame_of(spec, dpi)
            wear = await self._wear(options.outfit_id, preview, source, analysis.faces[0])
            composed = await self.shared.compute(
                partial(
                    idphoto.compose,
                    source,
                    analysis.faces[0],
                    shared.segment,
                    frame,
                    spec.background,
                    options,
                    preview,
                    matting=shared.matting,
                    wear=wear,
                    mask=mask,
                )
            )
            del source, preview, mask
            if request.outfit_ai_prompt:
                composed = await self._refine_outfit(request.subject_id, composed, request.outfit_ai_prompt)
            fmt = request.output_format or (spec.format or "JPEG")
            encoded = await self.shared.compute(encoding.encode_for_spec, composed.image, spec, default_dpi=dpi, output_format=fmt.upper())
            # The report measures pixels (the cut-out's edge, the background): not on the event loop.
            report, measured = await self.shared.compute(_report, spec, dpi, composed, analysis, encoded)
        meta = {"report": _report_json(report, measured)}
        photo = await shared.save(
            request.subject_id, "id_photo", encoded.data, encoded.media_type, composed.image, round(dpi), spec.id, meta
        )
        made = Made(photo, encoded.data, report, measured)
        if request.sheet is not None:
            sheet_result, sheet_bytes, count = await self.sheets.lay_out(
                request.subject_id, [(spec, composed.image, request.sheet.count)], request.sheet
            )
            if not shared.memory_only:
                await shared.results.update_meta(photo.result_id, {"sheet_result_id": sheet_result.result_id})
            made = Made(photo, encoded.data, report, measured, sheet_result, sheet_bytes, count)
        return made

    async def _wear(self, outfit_id: str, preview: RGB, source: RGB, face: FaceGeometry) -> Wear | None:
        """The outfit to put on and the shoulders to fit it to (None without an outfit)."""
        if not outfit_id:
            return None
        if self.outfits is None:
            raise NotFound(f"no outfit {outfit_id!r}; list them with GET /v1/outfits", "OUTFIT_NOT_FOUND")
        return await self.outfits.wear(outfit_id, preview, (source.shape[1], source.shape[0]), face)

    async def _refine_outfit(self, subject_id: str, composed: idphoto.Composed, prompt: str) -> idphoto.Composed:
        """The fitted outfit redrawn by the AI provider: the torso crop below the chin and the
        garment's mask go out, the answer comes back under that mask only."""
        if composed.garment is None:
            raise InvalidArgument("outfit_ai_prompt refines an outfit: choose one with outfit_id", "OUTFIT_AI_WITHOUT_OUTFIT")
        try:
            box, region = await self.shared.compute(outfits.edit_area, composed.garment, composed.face)
        except ValueError as exc:
            raise InvalidArgument(str(exc), "OUTFIT_FAILED") from None
        image = await self.restyler.restyle_region(subject_id, composed.image, box, region, prompt, margin=0.0)
        return replace(composed, image=image)


def _second_is_real(faces: list[FaceGeometry]) -> bool:
    """A second face counts when it is at least a third the size of the first (not a badge or a poster)."""
    first, second = faces[0], faces[1]
    return (second.box[3] - second.box[1]) >= (first.box[3] - first.box[1]) / 3


def _report(
    spec: Spec, dpi: float, composed: idphoto.Composed, analysis: Analysis, encoded: Any
) -> tuple[compliance.ComplianceReport, dict[str, float]]:
    p = composed.placement
    ppm = spec.px_per_mm(dpi)
    raw = analysis.raw[0]
    out = composed.image
    # Eyes were levelled by the placement, so the output's roll is what is left of it.
    residual_roll = float(composed.face.roll_deg)
    # Focus, exposure and lighting are properties of the photo taken: faces measured them on the source.
    fm = with_gaze(face_measurements(raw, p.head_px / ppm, p.eye_from_bottom_px / ppm, residual_roll), composed.face)
    source_ppm = ppm / p.scale
    cutout = None
    if composed.background is not None and composed.silhouette is not None:
        cutout = compliance.measure_cutout(out, composed.silhouette, composed.background, composed.others_removed)
    m = compliance.PhotoMeasurements(
        face_count=1,
        image_width_px=out.shape[1],
        image_height_px=out.shape[0],
        face=fm,
        background_std=idphoto.border_std(out, composed.alpha),
        file_size_kb=encoded.size_kb,
        source_px_per_mm=source_ppm,
        cutout=cutout,
        scene=compliance.measure_scene(out, composed.alpha, composed.face.mesh),
    )
    report = compliance.check_compliance(m, spec, default_dpi=dpi)
    measured = {
        "head_height_mm": p.head_px / ppm,
        "eye_line_from_bottom_mm": p.eye_from_bottom_px / ppm,
        "head_height_px": p.head_px,
        "eye_line_from_bottom_px": p.eye_from_bottom_px,
        "crown_y_px": p.crown_y,
        "chin_y_px": p.chin_y,
        **pose_measured(raw),
        "roll": residual_roll,
    }
    if encoded.band_problem:
        measured["file_size_kb"] = encoded.size_kb
    return report, measured


def _report_json(report: compliance.ComplianceReport, measured: dict[str, float]) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "spec_id": report.spec_id,
        "issues": [
            {
                "code": str(i.code),
                "message": i.message,
                "measured": i.measured,
                "min": i.allowed_min,
                "max": i.allowed_max,
                "severity": str(i.severity),
                "remedy": str(i.remedy),
            }
            for i in report.issues
        ],
        "measurements": measured,
    }
