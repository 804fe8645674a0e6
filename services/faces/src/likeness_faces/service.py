"""The Analyze use case: faces, landmarks, pose, eye/mouth state and quality of one image.

Where the time goes and why it is spent this way:
- Detection never looks at full resolution. MTCNN's cost grows with (canvas side /
  smallest face)², so every image is fitted to a canvas of `detect_long_side` pixels and
  searched for faces down to `min_face_px` there: faces down to about 1/38 of the photo's
  long side (≈ 100 px in a 12 MP photo) at a fixed cost, whatever the photo's size.
  A caller that only wants large faces (min_face_fraction above about 0.13; an ID photo asks
  for 0.13 and keeps the full canvas) gets a smaller canvas, just large enough for such a face
  to span `large_face_canvas_px`: the pyramid, the resizes and the padding then cost a fraction.
- Canvases come in three shapes only, so concurrent requests share one MTCNN pass through
  the MicroBatcher (which pays off most on CUDA, and saves Python overhead on CPU).
- Precision comes back afterwards: the mesh model and the quality measures work on an
  upright crop cut from the full-resolution image, so landmarks are as exact as the photo.
- Model work runs in worker threads, never on the event loop: MTCNN in the batcher's one
  thread, resizing, cropping and the mesh model in a small CPU pool, so the two overlap.
- A mesh model that takes many crops at once (fit_many: the PyTorch one, on CUDA) gets its
  own micro-batcher, so the faces of concurrent requests share one forward pass; LiteRT's
  (on CPU) is called per face in the CPU pool, with no extra thread hop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from likeness_faces.adapters.micro_batcher import MicroBatcher
from likeness_faces.domain import face_crop, face_merge, head_pose, letterbox, openness, quality, rotation
from likeness_faces.domain.errors import AnalyzerClosedError, FacesError, InvalidImageError
from likeness_faces.domain.faces import AnalyzeOptions, Box, Face, FivePoints, HeadPose, Point2, Point3
from likeness_faces.domain.model_outputs import Detection, MeshFit
from likeness_imaging import face_mesh as mt

Image = npt.NDArray[np.uint8]
K = TypeVar("K")
T = TypeVar("T")

# Turns tried, in order, when nothing is found upright: the sideways pair first (phones
# store portraits sideways far more often than upside down) and together, so they share
# one batch.
SIDEWAYS_TURNS = (1, 3)
UPSIDE_DOWN_TURN = 2
# When the mesh's eye line and the detector's differ by more than this, the mesh is fitted
# again on a crop turned by its own roll.
RECROP_ROLL_DEG = 15.0


class FaceDetector(Protocol):
    def detect(self, canvases: Sequence[Image], min_face_px: int) -> list[list[Detection]]: ...


class MeshModel(Protocol):
    # A model may also say what crop it expects: crop_margin, the crop's side over the detector's box side.
    # blendshapes=False: the caller will not read them (a model may then skip that network).
    def fit(self, crop: Image, blendshapes: bool = True) -> MeshFit | None: ...


@runtime_checkable
class BatchedMeshModel(Protocol):
    crop_margin: float  # crop side over the detector's box side that the model expects

    def fit(self, crop: Image, blendshapes: bool = True) -> MeshFit | None: ...
    def fit_many(self, crops: Sequence[Image]) -> list[MeshFit | None]: ...


@dataclass(frozen=True)
class AnalyzerConfig:
    detect_long_side: int = 768  # detection canvas long side, pixels
    min_face_px: int = 20  # smallest face MTCNN looks for on that canvas
    # With a min_face_fraction: the smallest face's side on the (smaller) canvas. Less (48-80)
    # still finds faces, but the coarser boxes move an ID photo's framing by a pixel or two.
    large_face_canvas_px: int = 96
    min_score: float = 0.9  # detector confidence below which a face is not reported
    confident_score: float = 0.99  # below this best score, turned copies are tried too
    max_batch: int = 8
    mesh_max_batch: int = 64  # faces per mesh pass, for a model with fit_many
    max_wait_s: float = 0.005  # how long a lone request waits for batch companions
    crop_px: int = 256  # side of the upright crop the mesh model sees
    crop_margin: float = 1.7  # crop side over face-box side, for a mesh model that does not set its own
    cpu_workers: int = 2  # threads for resizing, crops, the mesh model and quality


@dataclass(frozen=True)
class _Search:
    long_side: int  # of the detection canvas
    min_face_px: int  # smallest face looked for on it


@dataclass(frozen=True)
class _Canvas:
    pixels: Image
    box: letterbox.Letterbox
    min_face_px: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.box.canvas_shape

    @property
    def batch_key(self) -> tuple[int, int, int]:
        # One MTCNN pass runs one pyramid: canvases share a batch only with the same size and smallest face.
        return (*self.box.canvas_shape, self.min_face_px)


@dataclass(frozen=True)
class _FittedMesh:
    fit: MeshFit
    crop: face_crop.AlignedCrop
    mesh: npt.NDArray[np.float64]  # 478×3 in image pixels


def _iris_roll(mesh: npt.NDArray[np.float64]) -> float:
    right, left = mesh[mt.RIGHT_IRIS_CENTER], mesh[mt.LEFT_IRIS_CENTER]
    return head_pose.roll_from_eyes((float(right[0]), float(right[1])), (float(left[0]), float(left[1])))


def _angle_between(a_deg: float, b_deg: float) -> float:
    return (a_deg - b_deg + 180.0) % 360.0 - 180.0


def _validated(image: object) -> Image:
    if not isinstance(image, np.ndarray):
        raise InvalidImageError("image must be a numpy array of RGB pixels")
    if image.dtype != np.uint8:
        raise InvalidImageError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError(f"image must have shape (height, width, 3), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidImageError("image is empty")
    return image


def _best_score(detections: Sequence[Detection]) -> float:
    return max((d.score for d in detections), default=0.0)


def _point(xy: npt.NDArray[np.float64]) -> Point2:
    return Point2(float(xy[0]), float(xy[1]))


class FaceAnalyzer:
    """Create one per process (it owns worker threads); call close() on shutdown.

    analyze() may be called from any number of coroutines on one event loop at once.
    """

    def __init__(self, detector: FaceDetector, landmarker: MeshModel, config: AnalyzerConfig | None = None) -> None:
        self._config = config or AnalyzerConfig()
        self._detector = detector
        self._landmarker = landmarker
        self._cpu = ThreadPoolExecutor(max_workers=self._config.cpu_workers, thread_name_prefix="faces-cpu")
        # Analyses that have not queued their first canvas yet: the detector's batcher waits for
        # companions only while some are on their way (a lone photo runs at once).
        self._approaching = 0
        self.batcher: MicroBatcher[_Canvas, list[Detection]] = MicroBatcher(
            self._detect_batch,
            key=lambda canvas: canvas.batch_key,
            max_batch=self._config.max_batch,
            max_wait_s=self._config.max_wait_s,
            thread_name="faces-mtcnn",
            coming=lambda: self._approaching,
        )
        self.mesh_batcher: MicroBatcher[Image, MeshFit | None] | None = None
        self._crop_margin = float(getattr(landmarker, "crop_margin", self._config.crop_margin))
        if isinstance(landmarker, BatchedMeshModel):
            self.mesh_batcher = MicroBatcher(
                landmarker.fit_many,
                key=lambda crop: crop.shape,
                max_batch=self._config.mesh_max_batch,
                max_wait_s=self._config.max_wait_s,
                thread_name="faces-mesh",
            )
        self._closed = False

    async def analyze(self, image: Image, options: AnalyzeOptions | None = None) -> list[Face]:
        """Faces in the image, largest first; an empty list when there is none."""
        if self._closed:
            raise AnalyzerClosedError("the face analyzer is shutting down; retry on another replica")
        opts = options or AnalyzeOptions()
        pixels = _validated(image)
        loop = asyncio.get_running_loop()
        search = self._search(opts)
        self._approaching += 1
        arrived = False

        def arrive() -> None:
            nonlocal arrived
            if not arrived:
                arrived = True
                self._approaching -= 1

        try:
            pixels, small = await loop.run_in_executor(self._cpu, self._shrink, pixels, search.long_side)
            detections = await self._detect(pixels, small, 0, search, arrive)
        finally:
            if not arrived:  # failed or cancelled before its canvas was queued
                arrive()
                self.batcher.nudge()
        if opts.try_rotations and _best_score(detections) < self._config.confident_score:
            # Nothing upright, or only weak faces: MTCNN sometimes takes a sideways face
            # for an upright one with a middling score and nonsense points. Look at the
            # turned copies too and keep, per face, the turn where it scores best.
            candidates = list(detections)
            for turns in (SIDEWAYS_TURNS, (UPSIDE_DOWN_TURN,)):
                for found in await asyncio.gather(*(self._detect(pixels, small, k, search) for k in turns)):
                    candidates.extend(found)
                if _best_score(candidates) >= self._config.confident_score:
                    break
            detections = face_merge.strongest_per_face(candidates)
        if not detections:
            return []
        detections.sort(key=lambda d: d.area, reverse=True)
        if opts.max_faces > 0:
            detections = detections[: opts.max_faces]
        fits: list[_FittedMesh | None] | None = None
        if opts.needs_mesh and self.mesh_batcher is not None:
            fits = list(await asyncio.gather(*(self._batched_mesh(pixels, d) for d in detections)))
        return await loop.run_in_executor(self._cpu, self._describe_all, pixels, detections, opts, fits)

    async def analyze_many(
        self,
        requests: Iterable[tuple[K, Image, AnalyzeOptions | None]] | AsyncIterable[tuple[K, Image, AnalyzeOptions | None]],
    ) -> AsyncIterator[tuple[K, list[Face] | FacesError]]:
        """For a stream of (key, image, options): yields (key, faces) as each image is done,
        not necessarily in order. Up to twice max_batch images are in flight, so they share
        detector passes while the stream is still being read. An image the service refuses
        yields (key, error) and the stream goes on."""
        window = 2 * self._config.max_batch
        source = _as_async(requests).__aiter__()
        running: set[asyncio.Task[tuple[K, list[Face] | FacesError]]] = set()
        reading: asyncio.Task[tuple[K, Image, AnalyzeOptions | None] | None] | None = None
        exhausted = False
        try:
            while True:
                if reading is None and not exhausted and len(running) < window:
                    reading = asyncio.ensure_future(_next_or_none(source))
                waiting: set[asyncio.Future[Any]] = set(running)
                if reading is not None:
                    waiting.add(reading)
                if not waiting:
                    return
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if reading is not None and reading in done:
                    request = reading.result()
                    reading = None
                    if request is None:
                        exhausted = True
                    else:
                        running.add(asyncio.ensure_future(self._keyed(*request)))
                for task in [t for t in running if t in done]:
                    running.discard(task)
                    yield task.result()
        finally:
            for task in running:
                task.cancel()
            if reading is not None:
                reading.cancel()

    async def _keyed(self, key: K, image: Image, options: AnalyzeOptions | None) -> tuple[K, list[Face] | FacesError]:
        try:
            return key, await self.analyze(image, options)
        except FacesError as exc:
            return key, exc

    async def close(self) -> None:
        """Finishes queued work, then stops the worker threads."""
        self._closed = True
        await self.batcher.close()
        if self.mesh_batcher is not None:
            await self.mesh_batcher.close()
        await asyncio.to_thread(self._cpu.shutdown, wait=True)

    # -- detection -------------------------------------------------------------------

    def _shrink(self, image: Image, long_side: int) -> tuple[Image, Image]:
        """The image made contiguous, and a copy at detection-canvas size (made once, then
        reused for every turn tried)."""
        pixels = np.ascontiguousarray(image)
        height, width = pixels.shape[:2]
        return pixels, letterbox.resize(pixels, letterbox.plan(width, height, long_side))

    def _canvas(self, small: Image, width: int, height: int, quarter_turns: int, search: _Search) -> _Canvas:
        turned_w, turned_h = (height, width) if quarter_turns % 2 else (width, height)
        box = letterbox.plan(turned_w, turned_h, search.long_side)
        return _Canvas(pixels=letterbox.pad(rotation.turn(small, quarter_turns), box), box=box, min_face_px=search.min_face_px)

    def _search(self, opts: AnalyzeOptions) -> _Search:
        """The canvas's long side and the smallest face looked for on it."""
        config = self._config
        if opts.min_face_fraction <= 0:
            return _Search(config.detect_long_side, config.min_face_px)
        # Just large enough for the smallest face asked to span large_face_canvas_px (in steps
        # of 32 pixels, so a few canvas shapes serve every fraction and requests share batches).
        wanted = math.ceil(config.large_face_canvas_px / opts.min_face_fraction / 32) * 32
        long_side = min(config.detect_long_side, max(wanted, 4 * config.min_face_px))
        asked = round(opts.min_face_fraction * long_side)
        return _Search(long_side, max(config.min_face_px, min(asked, long_side // 2)))

    async def _detect(
        self, pixels: Image, small: Image, quarter_turns: int, search: _Search, arrive: Callable[[], None] | None = None
    ) -> list[Detection]:
        """Faces found on the image turned by quarter_turns, in the unturned image's pixels
        (`arrive`: called just before the canvas is queued)."""
        height, width = pixels.shape[:2]
        loop = asyncio.get_running_loop()
        canvas = await loop.run_in_executor(self._cpu, self._canvas, small, width, height, quarter_turns, search)
        if arrive is not None:
            arrive()
        found = await self.batcher.submit(canvas)
        unturn = rotation.unturn_points(quarter_turns, width, height)
        return [d.mapped(lambda pts: unturn(canvas.box.to_image(pts))) for d in found if d.score >= self._config.min_score]

    def _detect_batch(self, canvases: Sequence[_Canvas]) -> list[list[Detection]]:
        return self._detector.detect([c.pixels for c in canvases], canvases[0].min_face_px)

    # -- description -----------------------------------------------------------------

    def _describe_all(
        self, image: Image, detections: list[Detection], options: AnalyzeOptions, fits: list[_FittedMesh | None] | None
    ) -> list[Face]:
        if fits is None:
            fits = [self._mesh(image, d, options.blendshapes) if options.needs_mesh else None for d in detections]
        return [self._describe(image, d, options, fitted) for d, fitted in zip(detections, fits, strict=True)]

    def _mesh(self, image: Image, detection: Detection, blendshapes: bool = True) -> _FittedMesh | None:
        """The mesh fitted in this thread (a model without fit_many); its blendshapes only when asked for."""
        box, detector_roll = _box_and_roll(detection)
        fitted = self._fit_mesh(image, self._crop(box, detector_roll), blendshapes)
        turned = _recrop_roll(fitted, detector_roll)
        if turned is not None:
            refitted = self._fit_mesh(image, self._crop(box, turned), blendshapes)
            fitted = refitted if refitted is not None else fitted
        return fitted

    async def _batched_mesh(self, image: Image, detection: Detection) -> _FittedMesh | None:
        """_mesh with the crops cut in the CPU pool and fitted through the mesh batcher."""
        box, detector_roll = _box_and_roll(detection)
        fitted = await self._fit_mesh_batched(image, self._crop(box, detector_roll))
        turned = _recrop_roll(fitted, detector_roll)
        if turned is not None:
            refitted = await self._fit_mesh_batched(image, self._crop(box, turned))
            fitted = refitted if refitted is not None else fitted
        return fitted

    def _describe(self, image: Image, detection: Detection, options: AnalyzeOptions, fitted: _FittedMesh | None) -> Face:
        height, width = image.shape[:2]
        five = FivePoints(*(_point(p) for p in detection.points))
        box = Box(*(float(v) for v in detection.box))
        mesh = fitted.mesh if fitted is not None else None
        pose: HeadPose
        if fitted is not None:
            roll = _iris_roll(fitted.mesh)
            right_eye, left_eye = _point(fitted.mesh[mt.RIGHT_IRIS_CENTER]), _point(fitted.mesh[mt.LEFT_IRIS_CENTER])
            if fitted.fit.transform is not None:
                pose = head_pose.pose_from_transform(fitted.fit.transform, fitted.crop.roll_deg, roll)
            else:
                pose = replace(head_pose.pose_from_five_points(detection.points, width, height), roll_deg=roll)
        else:
            right_eye, left_eye = five.right_eye, five.left_eye
            pose = head_pose.pose_from_five_points(detection.points, width, height)

        return Face(
            box=box,
            score=detection.score,
            five_points=five,
            pose=pose,
            quality=quality.measure(image, box, pose.roll_deg, right_eye, left_eye),
            openness=openness.openness(mesh) if mesh is not None and options.eye_mouth_state else None,
            # tolist: the same Python floats as float() of each element, in one C pass (478 points)
            mesh=tuple(Point3(x, y, z) for x, y, z in mesh.tolist()) if mesh is not None and options.dense_landmarks else None,
            blendshapes=dict(fitted.fit.blendshapes) if fitted is not None and options.blendshapes else None,
        )

    def _crop(self, box: Box, roll_deg: float) -> face_crop.AlignedCrop:
        centre = box.center
        return face_crop.plan(
            centre.x,
            centre.y,
            max(box.width, box.height),
            roll_deg,
            margin=self._crop_margin,
            size=self._config.crop_px,
        )

    def _fit_mesh(self, image: Image, crop: face_crop.AlignedCrop, blendshapes: bool = True) -> _FittedMesh | None:
        return _mapped(self._landmarker.fit(face_crop.extract(image, crop), blendshapes=blendshapes), crop)

    async def _fit_mesh_batched(self, image: Image, crop: face_crop.AlignedCrop) -> _FittedMesh | None:
        assert self.mesh_batcher is not None
        pixels = await asyncio.get_running_loop().run_in_executor(self._cpu, face_crop.extract, image, crop)
        return _mapped(await self.mesh_batcher.submit(pixels), crop)


def _box_and_roll(detection: Detection) -> tuple[Box, float]:
    """The detector's box and the roll of its eye line."""
    right_eye, left_eye = detection.points[0], detection.points[1]
    roll = head_pose.roll_from_eyes((float(right_eye[0]), float(right_eye[1])), (float(left_eye[0]), float(left_eye[1])))
    return Box(*(float(v) for v in detection.box)), roll


def _recrop_roll(fitted: _FittedMesh | None, detector_roll: float) -> float | None:
    """The mesh's own roll when it and the detector's eye line differ by more than
    RECROP_ROLL_DEG: the detector's eyes were off (a sideways face seen as upright), and the
    mesh is most exact on a crop that is really upright, so it is fitted again on one."""
    if fitted is None:
        return None
    roll = _iris_roll(fitted.mesh)
    return roll if abs(_angle_between(roll, detector_roll)) > RECROP_ROLL_DEG else None


def _mapped(fit: MeshFit | None, crop: face_crop.AlignedCrop) -> _FittedMesh | None:
    """A fit in crop pixels mapped back to the image's."""
    if fit is None:
        return None
    xy = crop.to_image(fit.points[:, :2])
    mesh = np.concatenate([xy, fit.points[:, 2:3] / crop.scale], axis=1)
    return _FittedMesh(fit=fit, crop=crop, mesh=mesh)


async def _as_async(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _next_or_none(source: AsyncIterator[T]) -> T | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None
