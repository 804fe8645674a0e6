"""What every render use case shares: spec lookup, decoding, face analysis and saving results."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.codec import UndecodableImage, decode_rgb, encode_jpeg
from likeness_platform.cpus import usable_cores
from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound
from likeness_render.domain import compliance, encoding
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.results import NewResult, StoredResult
from likeness_render.domain.spec_catalog import Catalog
from likeness_render.domain.specs import Spec, SpecNotFoundError
from likeness_render.usecases.ports import RGB, FaceModel, FacesPort, ImageSourcePort, Matting, ResultsPort, Segmenter

# Faces sees a copy at most this size (and at least 2/3 of it when reduced): plenty for 478
# points on an ID-photo face (the mesh model works at 256 px), and cheap to encode, send and decode.
ANALYSIS_SIDE = 1024
# Sources are decoded at a reduced JPEG scale while both sides stay at least this long:
# an ID photo is a few hundred pixels, so 1/2 of a 12 MP photo still leaves a 4x margin.
DECODE_MIN_SIDE = 1500


T = TypeVar("T")


class NoFace(FailedPrecondition):
    default_code = "NO_FACE"


class MultipleFaces(FailedPrecondition):
    default_code = "MULTIPLE_FACES"


@dataclass(frozen=True)
class Analysis:
    faces: list[FaceGeometry]
    raw: list[Any]  # faces.v1.Face messages, for pose/eyes/mouth/quality


def decode(data: bytes, min_side: int = DECODE_MIN_SIDE) -> RGB:
    try:
        return decode_rgb(data, min_side=min_side)
    except UndecodableImage as exc:
        raise InvalidArgument(str(exc), "CORRUPT_IMAGE") from None


def analysis_copy(image: RGB) -> tuple[RGB, float]:
    """A copy of `image` for face analysis (long side at most ANALYSIS_SIDE) and its pixels per image pixel.

    A whole-number reduction (exact block averages: about 1 ms for 3 MP, where a fractional area
    resize takes 20) is used whenever it keeps the long side at least 2/3 of ANALYSIS_SIDE.
    """
    h, w = image.shape[:2]
    long_side = max(h, w)
    if long_side <= ANALYSIS_SIDE:
        return image, 1.0
    f = -(-long_side // ANALYSIS_SIDE)
    if long_side // f >= ANALYSIS_SIDE * 2 // 3:
        # The last h % f rows and w % f columns are left out, so every output pixel is one f x f block.
        whole = image[: h - h % f, : w - w % f]
        return cv2.resize(whole, (w // f, h // f), interpolation=cv2.INTER_AREA), 1.0 / f
    k = ANALYSIS_SIDE / long_side
    small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return small, small.shape[1] / w


def geometry(face: Any, scale: float) -> FaceGeometry:
    """A faces.v1.Face in the pixels of an image `1 / scale` times the size faces saw."""
    box = (face.box.x1 / scale, face.box.y1 / scale, face.box.x2 / scale, face.box.y2 / scale)
    five = np.array([[p.x, p.y] for p in face.landmarks5], np.float64) / scale if len(face.landmarks5) == 5 else None
    mesh = np.array([[p.x, p.y] for p in face.mesh], np.float64) / scale if len(face.mesh) >= 468 else None
    return FaceGeometry(box=box, mesh=mesh, five_points=five)


class Shared:
    """The ports and settings the use cases have in common, and the steps they all take."""

    def __init__(
        self,
        catalog: Catalog,
        images: ImageSourcePort,
        faces: FacesPort,
        segment: Segmenter,
        results: ResultsPort,
        memory_only: bool = False,
        default_dpi: float = 300.0,
        matting: Matting | None = None,
        face_model: FaceModel | None = None,
        max_concurrent_work: int = 0,
        cpu_workers: int = 0,
    ) -> None:
        """`max_concurrent_work`: ID photos whose pixel and model work may run at once (0: two per
        usable core, as a photo also waits for faces meanwhile). More only share the same cores:
        each one is slower, and every one holds its full-size images; the rest wait in order.

        `cpu_workers`: threads for the pixel work itself (0: one per usable core). The photos in
        flight take turns on them: a third thread on two cores adds only switching (measured in
        process on the small bench photo: 85 CPU ms per ID photo with two threads, 96 with four)."""
        self.catalog = catalog
        self.images = images
        self.faces = faces
        self.segment = segment
        self.results = results
        self.memory_only = memory_only
        self.default_dpi = default_dpi
        # An operator's matting model (alpha of an ID photo's crop); None: the built-in matting.
        self.matting = matting
        # An operator's face-restoration model (portrait fusion); None: the classical pipeline.
        self.face_model = face_model
        self.slot = asyncio.Semaphore(max_concurrent_work if max_concurrent_work > 0 else 2 * usable_cores())
        workers = cpu_workers if cpu_workers > 0 else usable_cores()
        self._cpu = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render-cpu")

    async def compute(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on one of the pixel-work threads (the caller's context goes along:
        its trace span is the parent of what runs there)."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._cpu, call)

    def close(self) -> None:
        """Stops the pixel-work threads once what they were given is done."""
        self._cpu.shutdown(wait=False, cancel_futures=True)

    def spec(self, spec_id: str) -> Spec:
        try:
            return self.catalog.get(spec_id)
        except SpecNotFoundError:
            raise NotFound(f"no spec {spec_id!r}; list them with GET /v1/specs", "SPEC_NOT_FOUND") from None

    async def analyze(self, image: RGB, min_face_fraction: float = 0.0, scale: float | None = None) -> Analysis:
        """Faces in `image`, in its own pixels; or, when `image` is already an analysis copy
        (see analysis_copy) `scale` times the size of its source, in the source's pixels."""
        if scale is None:
            small, to_source = await self.compute(analysis_copy, image)
        else:
            small, to_source = image, scale
        # The copy faces sees is decoded once and dropped: no Huffman-table pass (4 ms of 6 for 1024 px).
        data = await self.compute(encode_jpeg, small, 85, optimize=False)
        reply = await self.faces.analyze(data, min_face_fraction=min_face_fraction)
        raw = list(reply.faces)
        return Analysis([geometry(f, to_source) for f in raw], raw)

    async def load(self, ref: Any, subject_id: str, purpose: str) -> RGB:
        return await self.compute(decode, await self.images.read(ref, subject_id, purpose))

    async def face_mesh(self, ref: Any, subject_id: str, purpose: str, missing: str) -> tuple[RGB, npt.NDArray[np.float64]]:
        """The image at `ref` and the mesh of its first face (NoFace with `missing` when there is none)."""
        image = await self.load(ref, subject_id, purpose)
        analysis = await self.analyze(image)
        mesh = analysis.faces[0].mesh if analysis.faces else None
        if mesh is None:
            raise NoFace(missing)
        return image, mesh

    async def save(
        self, subject_id: str, kind: str, data: bytes, content_type: str, image: RGB, dpi: int, spec_id: str, meta: dict[str, Any]
    ) -> StoredResult:
        h, w = image.shape[:2]
        new = NewResult(kind, content_type, w, h, dpi, spec_id, meta)
        if self.memory_only:
            return new.unsaved(subject_id, len(data))
        return await self.results.save(subject_id, data, new)

    async def save_jpeg(self, subject_id: str, kind: str, image: RGB, meta: dict[str, Any]) -> tuple[StoredResult, bytes]:
        """A portrait-like result (no print size, no spec) kept as a quality-92 JPEG (sRGB profile)."""
        data = await self.compute(encoding.encode_portrait, image, 92)
        return await self.save(subject_id, kind, data, "image/jpeg", image, 0, "", meta), data


def _measure(message: Any, name: str) -> float | None:
    """An optional measure of a faces.v1 message; None when faces did not compute it."""
    if message is None or not message.HasField(name):
        return None
    return float(getattr(message, name))


def with_gaze(fm: compliance.FaceMeasurements, face: FaceGeometry) -> compliance.FaceMeasurements:
    """``fm`` with where the eyes look, measured on the face's mesh (when it has iris points)."""
    gaze = compliance.measure_gaze(face.mesh)
    return fm if gaze is None else replace(fm, gaze_sideways=gaze[0], gaze_vertical=gaze[1])


def face_measurements(raw: Any, head_mm: float, eye_mm: float, roll: float | None = None) -> compliance.FaceMeasurements:
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


def pose_measured(raw: Any) -> dict[str, float]:
    pose = raw.pose if raw.HasField("pose") else None
    return {name: value for name in ("yaw", "pitch", "roll") if (value := _measure(pose, name)) is not None}
