"""Render use cases: ID photos (made, checked, laid out), portraits, hairstyles, stored results."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from likeness_imaging.codec import UndecodableImage, decode_rgb, decoded_size, encode_jpeg
from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from likeness_platform.logging import get_logger
from likeness_render.adapters.aigen import crop_box
from likeness_render.domain import compliance, encoding, fusion, hair, idphoto, sheet, templates
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.framing import FrameSpec
from likeness_render.domain.results import StoredResult
from likeness_render.domain.specs import Catalog, Spec, SpecNotFoundError
from likeness_render.domain.templates import Template, TemplateStore

RGB = npt.NDArray[np.uint8]
# Faces sees a copy this size: plenty for 478 points on an ID-photo face (the mesh model
# works at 256 px), and cheap to encode, send and decode.
ANALYSIS_SIDE = 1024
# Sources are decoded at a reduced JPEG scale while both sides stay at least this long:
# an ID photo is a few hundred pixels, so 1/2 of a 12 MP photo still leaves a 4x margin.
DECODE_MIN_SIDE = 1500
# ID-photo sources normally show a face at least this fraction of their long side; looking
# only for faces that large lets the detector skip its costliest scales (about 4x faster).
# Photos with smaller faces are searched again at the service's full range.
ID_PHOTO_MIN_FACE = 0.13
# Template images go to faces at this JPEG quality: their meshes are kept for every portrait.
TEMPLATE_JPEG_QUALITY = 95
# Demo templates need the faces service. At start-up they are built in the background, retried
# while faces is unavailable (it may start after render) for at most this long; after that
# the next request that needs templates starts a new attempt.
DEMO_BUILD_DEADLINE_S = 120.0
DEMO_RETRY_FIRST_S = 0.5
DEMO_RETRY_MAX_S = 5.0
# How long a request that needs templates waits for the demo build before UNAVAILABLE.
DEMO_WAIT_S = 60.0

log = get_logger("likeness.render")


class NoFace(FailedPrecondition):
    default_code = "NO_FACE"


class MultipleFaces(FailedPrecondition):
    default_code = "MULTIPLE_FACES"


class ImageSourcePort(Protocol):
    async def read(self, ref: Any, subject_id: str, purpose: str) -> bytes: ...


class FacesPort(Protocol):
    async def analyze(self, image: bytes, dense: bool = True, min_face_fraction: float = 0.0) -> Any: ...


class AccessLogPort(Protocol):
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None: ...


class ResultsPort(Protocol):
    async def save(
        self,
        subject_id: str,
        kind: str,
        data: bytes,
        content_type: str,
        width: int,
        height: int,
        dpi: int = 0,
        spec_id: str = "",
        meta: Any = None,
    ) -> StoredResult: ...

    async def get(self, result_id: str, subject_id: str) -> StoredResult: ...

    async def read(self, result: StoredResult) -> bytes: ...


@dataclass(frozen=True)
class Analysis:
    faces: list[FaceGeometry]
    raw: list[Any]  # faces.v1.Face messages, for pose/eyes/mouth/quality


@dataclass(frozen=True)
class SheetRequest:
    paper_id: str = ""
    width_mm: float = 0.0
    height_mm: float = 0.0
    dpi: int = 300
    margin_mm: float = 3.0
    gap_mm: float = 2.0
    cut_marks: bool = True
    count: int = 0


@dataclass(frozen=True)
class PhotoRequest:
    subject_id: str
    spec_id: str
    options: idphoto.Options = field(default_factory=idphoto.Options)
    output_format: str = ""  # jpeg | png | "" (the spec's)
    dpi: int = 0
    sheet: SheetRequest | None = None


@dataclass(frozen=True)
class Made:
    photo: StoredResult
    photo_bytes: bytes
    report: compliance.ComplianceReport
    measurements: dict[str, float]
    sheet: StoredResult | None = None
    sheet_bytes: bytes = b""
    sheet_count: int = 0


async def _width_of(data: bytes, fallback: RGB) -> int:
    """Width the working copy will have (JPEG header and DCT scaling), without waiting for its decode."""
    return await asyncio.to_thread(decoded_size, data, DECODE_MIN_SIDE, fallback.shape[1])


def _decode(data: bytes, min_side: int = DECODE_MIN_SIDE) -> RGB:
    try:
        return decode_rgb(data, min_side=min_side)
    except UndecodableImage as exc:
        raise InvalidArgument(str(exc), "CORRUPT_IMAGE") from None


def _geometry(face: Any, scale: float) -> FaceGeometry:
    box = (face.box.x1 / scale, face.box.y1 / scale, face.box.x2 / scale, face.box.y2 / scale)
    five = np.array([[p.x, p.y] for p in face.landmarks5], np.float64) / scale if len(face.landmarks5) == 5 else None
    mesh = np.array([[p.x, p.y] for p in face.mesh], np.float64) / scale if len(face.mesh) >= 468 else None
    return FaceGeometry(box=box, mesh=mesh, five_points=five)


def frame_of(spec: Spec, dpi: float) -> FrameSpec:
    w, h = spec.size_px(dpi)
    head = spec.head_band_mm(dpi)
    eye = spec.eye_band_mm(dpi)
    return FrameSpec(w, h, spec.px_per_mm(dpi), (head.min, head.max), (eye.min, eye.max), spec.top_margin_band_mm(dpi))


class RenderService:
    def __init__(
        self,
        catalog: Catalog,
        images: ImageSourcePort,
        faces: FacesPort,
        segment: Callable[[RGB], npt.NDArray[np.float32]],
        results: ResultsPort,
        templates: TemplateStore,
        access: AccessLogPort,
        memory_only: bool = False,
        default_dpi: float = 300.0,
        generator: Any = None,
    ) -> None:
        self.catalog = catalog
        self.images = images
        self.faces = faces
        self.segment = segment
        self.results = results
        self.templates = templates
        self.access = access
        self.memory_only = memory_only
        self.default_dpi = default_dpi
        # AI image provider (adapters.aigen); None when not configured.
        self.generator = generator
        self._demo: asyncio.Task[None] | None = None

    def spec(self, spec_id: str) -> Spec:
        try:
            return self.catalog.get(spec_id)
        except SpecNotFoundError:
            raise NotFound(f"no spec {spec_id!r}; list them with GET /v1/specs", "SPEC_NOT_FOUND") from None

    async def analyze(self, image: RGB, min_face_fraction: float = 0.0, source_width: int = 0) -> Analysis:
        """Faces in `image`, in the pixels of a source `source_width` wide (default: the image itself)."""
        h, w = image.shape[:2]
        k = min(1.0, ANALYSIS_SIDE / max(h, w))
        small = cv2.resize(image, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA) if k < 1 else image
        reply = await self.faces.analyze(await asyncio.to_thread(encode_jpeg, small, 85), min_face_fraction=min_face_fraction)
        raw = list(reply.faces)
        to_source = small.shape[1] / (source_width or w)
        return Analysis([_geometry(f, to_source) for f in raw], raw)

    async def _load(self, ref: Any, subject_id: str, purpose: str) -> RGB:
        return await asyncio.to_thread(_decode, await self.images.read(ref, subject_id, purpose))

    # ID photos ---------------------------------------------------------------------------
    async def create_id_photo(self, request: PhotoRequest, image_ref: Any) -> Made:
        spec = self.spec(request.spec_id)
        dpi = float(request.dpi or self.default_dpi)
        data = await self.images.read(image_ref, request.subject_id, "id_photo")
        # The working copy decodes in one thread while a quarter-scale copy (a few ms for a
        # JPEG) is already on its way to face analysis.
        decoding = asyncio.create_task(asyncio.to_thread(_decode, data))
        preview = await asyncio.to_thread(_decode, data, ANALYSIS_SIDE * 2 // 3)
        source_width = await _width_of(data, preview)
        analysis = await self.analyze(preview, ID_PHOTO_MIN_FACE, source_width)
        if not analysis.faces:
            analysis = await self.analyze(preview, 0.0, source_width)
        source = await decoding
        if not analysis.faces:
            raise NoFace("no face was found in the photo; use a photo facing the camera")
        if len(analysis.faces) > 1 and _second_is_real(analysis.faces):
            raise MultipleFaces(f"{len(analysis.faces)} faces were found; an ID photo shows exactly one person")
        options = request.options
        if options.background == "keep":
            options = idphoto.Options("keep", (), 0, 0, options.outfit_id)
        frame = frame_of(spec, dpi)
        composed = await asyncio.to_thread(
            idphoto.compose, source, analysis.faces[0], self.segment, frame, spec.background, options, preview
        )
        fmt = request.output_format or (spec.format or "JPEG")
        encoded = await asyncio.to_thread(encoding.encode_for_spec, composed.image, spec, default_dpi=dpi, output_format=fmt.upper())
        report, measured = _report(spec, dpi, composed, analysis, encoded)
        meta = {"report": _report_json(report, measured)}
        photo = await self._save(
            request.subject_id, "id_photo", encoded.data, encoded.media_type, composed.image, round(dpi), spec.id, meta
        )
        made = Made(photo, encoded.data, report, measured)
        if request.sheet is not None:
            sheet_result, sheet_bytes, count = await self._sheet(
                request.subject_id, [(spec, composed.image, request.sheet.count)], request.sheet
            )
            if not self.memory_only:
                await self.results.update_meta(photo.result_id, {"sheet_result_id": sheet_result.result_id})  # type: ignore[attr-defined]
            made = Made(photo, encoded.data, report, measured, sheet_result, sheet_bytes, count)
        return made

    async def check_id_photo(self, subject_id: str, image_ref: Any, spec_id: str) -> tuple[compliance.ComplianceReport, dict[str, float]]:
        spec = self.spec(spec_id)
        source = await self._load(image_ref, subject_id, "id_photo_check")
        analysis = await self.analyze(source)
        h, w = source.shape[:2]
        face = analysis.faces[0] if analysis.faces else None
        measured: dict[str, float] = {}
        fm = None
        background_std = None
        if face is not None:
            raw = analysis.raw[0]
            crown, _ = idphoto.find_crown(source, face, self.segment)
            ppm_out = spec.px_per_mm(self.default_dpi)
            # The photo as given: its height is the frame's height.
            px_per_mm = h / (spec.size_px(self.default_dpi)[1] / ppm_out)
            head_px = float(face.chin[1] - crown[1])
            eye_px = h - float(face.eye_centre[1])
            fm = _face_measurements(raw, head_px / px_per_mm, eye_px / px_per_mm)
            small = cv2.resize(source, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA) if max(h, w) > 1200 else source
            background_std = idphoto.border_std(small, self.segment(small))
            measured = {
                "head_height_mm": head_px / px_per_mm,
                "eye_line_from_bottom_mm": eye_px / px_per_mm,
                "head_height_px": head_px,
                "eye_line_from_bottom_px": eye_px,
                "crown_y_px": float(crown[1]),
                "chin_y_px": float(face.chin[1]),
                **_pose_measured(raw),
            }
        m = compliance.PhotoMeasurements(len(analysis.faces), w, h, fm, background_std)
        return compliance.check_compliance(m, spec, default_dpi=self.default_dpi), measured

    async def compose_sheet(
        self, subject_id: str, items: Sequence[tuple[str, int]], layout: SheetRequest
    ) -> tuple[StoredResult, bytes, int]:
        photos = []
        for result_id, count in items:
            stored = await self.results.get(result_id, subject_id)
            if stored.kind != "id_photo":
                raise InvalidArgument("only ID photos can be laid out on a sheet", "NOT_AN_ID_PHOTO")
            data = await self.results.read(stored)
            spec = self.spec(stored.spec_id)
            photos.append((spec, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), count))
        return await self._sheet(subject_id, photos, layout)

    async def _sheet(
        self, subject_id: str, photos: Sequence[tuple[Spec, RGB, int]], layout: SheetRequest
    ) -> tuple[StoredResult, bytes, int]:
        if layout.paper_id:
            try:
                paper: Any = self.catalog.paper(layout.paper_id)
            except Exception:
                raise NotFound(f"no paper {layout.paper_id!r}; list them with GET /v1/papers", "PAPER_NOT_FOUND") from None
        elif layout.width_mm > 0 and layout.height_mm > 0:
            paper = (layout.width_mm, layout.height_mm)
        else:
            raise InvalidArgument("a sheet needs a paper id or a custom size in mm", "INVALID_LAYOUT")
        dpi = float(layout.dpi or 300)
        # Pixel-only (digital) specs print at the size their pixels make at the sheet's resolution.
        items = [sheet.SheetItem(*spec.size_mm(dpi), count or sheet.FILL) for spec, _, count in photos]
        try:
            plan = sheet.plan_sheet(paper, items, dpi=dpi, margin_mm=layout.margin_mm, gap_mm=layout.gap_mm)
        except sheet.SheetError as exc:
            raise InvalidArgument(str(exc), "INVALID_LAYOUT") from None
        if plan.total == 0:
            raise InvalidArgument("no photo fits on that paper with those margins", "SHEET_TOO_SMALL")
        image = await asyncio.to_thread(sheet.render_sheet, plan, [p for _, p, _ in photos], cut_marks=layout.cut_marks)
        encoded = await asyncio.to_thread(encoding.encode_image, image, output_format="JPEG", dpi=dpi, quality=95)
        stored = await self._save(
            subject_id, "sheet", encoded.data, encoded.media_type, image, int(dpi), photos[0][0].id, {"photo_count": plan.total}
        )
        return stored, encoded.data, plan.total

    async def _save(
        self, subject_id: str, kind: str, data: bytes, content_type: str, image: RGB, dpi: int, spec_id: str, meta: dict[str, Any]
    ) -> StoredResult:
        h, w = image.shape[:2]
        if self.memory_only:
            now = datetime.now(UTC)
            return StoredResult(str(uuid.uuid4()), subject_id, kind, content_type, w, h, len(data), dpi, spec_id, now, now, False, meta)
        return await self.results.save(subject_id, kind, data, content_type, w, h, dpi, spec_id, meta)

    # Portraits ------------------------------------------------------------------------------
    async def create_portrait(
        self, subject_id: str, refs: Sequence[Any], template_id: str, strength: int, face_index: int, ai_prompt: str = ""
    ) -> tuple[StoredResult, bytes]:
        template = await self._template(template_id)
        if not refs:
            raise InvalidArgument("give at least one image", "MISSING_IMAGE")
        if not 0 <= strength <= 100:
            raise InvalidArgument("strength is 0..100", "INVALID_STRENGTH")
        if face_index < 0 or face_index + len(refs) > template.face_count:
            raise InvalidArgument(f"template {template.id!r} has {template.face_count} face(s)", "INVALID_FACE_INDEX")
        users = []
        for ref in refs:
            image = await self._load(ref, subject_id, "portrait")
            analysis = await self.analyze(image)
            if not analysis.faces or analysis.faces[0].mesh is None:
                raise NoFace("no face was found in one of the photos")
            users.append((image, analysis.faces[0].mesh))
        result = template.image.copy()
        for offset, user in enumerate(users):
            try:
                result = await asyncio.to_thread(fusion.fuse, result, template.meshes, [user], strength, face_index + offset)
            except fusion.FusionError as exc:
                raise InvalidArgument(str(exc), "FUSION_FAILED") from None
        if ai_prompt:
            result = await self._restyle(result, template, face_index, ai_prompt)
        data = await asyncio.to_thread(encode_jpeg, result, 92)
        return await self._save(subject_id, "portrait", data, "image/jpeg", result, 0, "", {"template_id": template.id}), data

    async def _restyle(self, image: RGB, template: Template, face_index: int, prompt: str) -> RGB:
        """The provider redraws the face crop; its answer is pasted back and kept like any result (never longer)."""
        if self.generator is None:
            raise FailedPrecondition("AI generation is not configured on this server (LIKENESS_AIGEN_*)", "AIGEN_DISABLED")
        mesh = template.meshes[face_index]
        box = (float(mesh[:, 0].min()), float(mesh[:, 1].min()), float(mesh[:, 0].max()), float(mesh[:, 1].max()))
        answers = await self.generator.edit_face(image, box, prompt[:1000], (512, 512), 1)
        styled = await asyncio.to_thread(_decode, answers[0])
        x0, y0, x1, y1 = crop_box(image.shape, box, self.generator.crop_margin)
        out = image.copy()
        out[y0:y1, x0:x1] = cv2.resize(styled, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        return out

    # Templates -----------------------------------------------------------------------------
    async def template_faces(self, image: RGB) -> list[FaceGeometry]:
        """Every face of a template image with its mesh, from the faces service."""
        data = await asyncio.to_thread(encode_jpeg, image, TEMPLATE_JPEG_QUALITY)
        reply = await self.faces.analyze(data)
        return [_geometry(f, 1.0) for f in reply.faces]

    async def register_template(self, name: str, style: str, image: RGB, description: str = "") -> Template:
        """A template made from `image` (meshes by the faces service) and put in the catalog;
        templates.TemplateError when the image cannot be one."""
        templates.check_template_image(name, image)
        faces = await self.template_faces(image)
        template = templates.register_template(name, style, image, faces, description=description)
        self.templates.put(template)
        return template

    async def build_demo_templates(self) -> list[Template]:
        """The demo catalog: looks made here, meshes by the faces service."""
        plan = await asyncio.to_thread(templates.plan_demo, self.segment)
        astronaut, hopper = await asyncio.gather(self.template_faces(plan.astronaut), self.template_faces(plan.hopper))
        if not astronaut or not hopper:
            raise templates.TemplateError("a demo source portrait shows no face to the faces service")
        duo = await asyncio.to_thread(templates.diptych_look, plan, astronaut[0], hopper[0])
        built = []
        for look in (*plan.looks, duo):
            faces = await self.template_faces(look.image)
            built.append(templates.register_template(look.name, look.style, look.image, faces, description=look.description))
        return built

    def start_demo_templates(self, deadline_s: float = DEMO_BUILD_DEADLINE_S) -> None:
        """Builds the demo templates in the background (the server answers meanwhile; requests
        that need templates wait for them). Call from the running event loop."""
        if self._demo is None or _failed(self._demo):
            self._demo = asyncio.create_task(self._build_demo_until(deadline_s), name="render-demo-templates")

    async def _build_demo_until(self, deadline_s: float) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + deadline_s
        delay = DEMO_RETRY_FIRST_S
        while True:
            try:
                built = await self.build_demo_templates()
                break
            except Unavailable:
                if loop.time() + delay > give_up:
                    log.warning("demo_templates_unavailable", reason="the faces service did not answer in time")
                    raise
                log.info("demo_templates_waiting_for_faces", retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, DEMO_RETRY_MAX_S)
        registered = {t.id for t in self.templates.list_templates()}
        for template in built:
            if template.id not in registered:  # an operator's template of the same id wins
                self.templates.put(template)
        log.info("demo_templates_ready", templates=len(built))

    async def templates_ready(self) -> None:
        """Returns once the demo templates are in the catalog (at once when none were asked for);
        Unavailable when they are not ready in time (a failed build is started again)."""
        task = self._demo
        if task is None:
            return
        if _failed(task):
            self.start_demo_templates()
            task = self._demo
            assert task is not None
        try:
            await asyncio.wait_for(asyncio.shield(task), DEMO_WAIT_S)
        except (TimeoutError, Unavailable):
            raise Unavailable("the portrait templates are still being prepared; try again shortly") from None
        except templates.TemplateError as exc:
            raise FailedPrecondition(f"the demo templates cannot be built: {exc}", "TEMPLATES_UNAVAILABLE") from None

    async def list_templates(self) -> list[Template]:
        await self.templates_ready()
        return self.templates.list_templates()

    async def stop(self) -> None:
        """Stops a demo build still under way."""
        if self._demo is not None and not self._demo.done():
            self._demo.cancel()
            try:
                await self._demo
            except (asyncio.CancelledError, Exception):
                pass

    async def _template(self, template_id: str) -> Template:
        await self.templates_ready()
        try:
            return self.templates.get(template_id)
        except Exception:
            raise NotFound(f"no template {template_id!r}; list them with GET /v1/templates", "TEMPLATE_NOT_FOUND") from None

    async def change_hairstyle(self, subject_id: str, ref: Any, hairstyle_id: str) -> tuple[StoredResult, bytes]:
        if hairstyle_id not in hair.HAIRSTYLES:
            raise NotFound(f"no hairstyle {hairstyle_id!r}; list them with GET /v1/hairstyles", "HAIRSTYLE_NOT_FOUND")
        image = await self._load(ref, subject_id, "hairstyle")
        analysis = await self.analyze(image)
        if not analysis.faces or analysis.faces[0].mesh is None:
            raise NoFace("no face was found in the photo")
        mask = await asyncio.to_thread(self.segment, image)
        try:
            result = await asyncio.to_thread(hair.change_hairstyle, image, analysis.faces[0].mesh, mask, hairstyle_id)
        except hair.HairError as exc:
            raise InvalidArgument(str(exc), "HAIRSTYLE_FAILED") from None
        data = await asyncio.to_thread(encode_jpeg, result, 92)
        return await self._save(subject_id, "hairstyle", data, "image/jpeg", result, 0, "", {"hairstyle_id": hairstyle_id}), data

    async def open_result(self, subject_id: str, result_id: str, purpose: str) -> tuple[StoredResult, bytes]:
        """A stored result; reading its bytes is access-logged first ("describe" reads none)."""
        stored = await self.results.get(result_id, subject_id)
        if purpose == "describe":
            return stored, b""
        await self.access.record_access(subject_id, f"render/result/{stored.result_id}", purpose or "download")
        return stored, await self.results.read(stored)


def _failed(task: asyncio.Task[None]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def _second_is_real(faces: list[FaceGeometry]) -> bool:
    """A second face counts when it is at least a third the size of the first (not a badge or a poster)."""
    first, second = faces[0], faces[1]
    return (second.box[3] - second.box[1]) >= (first.box[3] - first.box[1]) / 3


def _measure(message: Any, name: str) -> float | None:
    """An optional measure of a faces.v1 message; None when faces did not compute it."""
    if message is None or not message.HasField(name):
        return None
    return float(getattr(message, name))


def _face_measurements(raw: Any, head_mm: float, eye_mm: float, roll: float | None = None) -> compliance.FaceMeasurements:
    """What the compliance rules judge of the face, as the faces service measured it (a
    faces.v1.Face): pose, eye and mouth state and image quality; geometry from the frame."""
    quality = raw.quality if raw.HasField("quality") else None
    pose = raw.pose if raw.HasField("pose") else None
    return compliance.FaceMeasurements(
        yaw_deg=_measure(pose, "yaw"),
        pitch_deg=_measure(pose, "pitch"),
        roll_deg=_measure(pose, "roll") if roll is None else roll,
        left_eye_openness=_measure(raw, "left_eye_openness"),
        right_eye_openness=_measure(raw, "right_eye_openness"),
        mouth_openness=_measure(raw, "mouth_openness"),
        sharpness=_measure(quality, "sharpness"),
        exposure=_measure(quality, "exposure"),
        shadow_clipped_fraction=_measure(quality, "shadow_clipped_fraction"),
        highlight_clipped_fraction=_measure(quality, "highlight_clipped_fraction"),
        lighting_ratio=_measure(quality, "lighting_ratio"),
        head_height_mm=head_mm,
        eye_line_from_bottom_mm=eye_mm,
    )


def _pose_measured(raw: Any) -> dict[str, float]:
    pose = raw.pose if raw.HasField("pose") else None
    return {name: value for name in ("yaw", "pitch", "roll") if (value := _measure(pose, name)) is not None}


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
    fm = _face_measurements(raw, p.head_px / ppm, p.eye_from_bottom_px / ppm, residual_roll)
    source_ppm = ppm / p.scale
    m = compliance.PhotoMeasurements(
        face_count=1,
        image_width_px=out.shape[1],
        image_height_px=out.shape[0],
        face=fm,
        background_std=idphoto.border_std(out, composed.alpha),
        file_size_kb=encoded.size_kb,
        source_px_per_mm=source_ppm,
    )
    report = compliance.check_compliance(m, spec, default_dpi=dpi)
    measured = {
        "head_height_mm": p.head_px / ppm,
        "eye_line_from_bottom_mm": p.eye_from_bottom_px / ppm,
        "head_height_px": p.head_px,
        "eye_line_from_bottom_px": p.eye_from_bottom_px,
        "crown_y_px": p.crown_y,
        "chin_y_px": p.chin_y,
        **_pose_measured(raw),
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
            }
            for i in report.issues
        ],
        "measurements": measured,
    }
