"""FaceAnalyzer's plumbing with fake models: canvases, batching by shape, turns and the
mapping of coordinates back to the caller's image.

The fake detector "sees" a face made of coloured squares (red = subject's right eye,
green = left eye, blue = nose) only when it is upright on the canvas, the way MTCNN only
sees upright faces, so a sideways test image exercises the turn-and-map-back path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from likeness_faces.domain.faces import AnalyzeOptions, PoseSource
from likeness_faces.domain.model_outputs import Detection, MeshFit
from likeness_faces.service import AnalyzerConfig, FaceAnalyzer

RGB = npt.NDArray[np.uint8]


class SquaresDetector:
    def __init__(self) -> None:
        self.calls: list[tuple[int, tuple[int, ...]]] = []  # (batch size, canvas shape)
        self.mixed_shapes = False
        self.threads: set[str] = set()

    @staticmethod
    def _centroid(canvas: RGB, channel: int) -> npt.NDArray[np.float64] | None:
        c = canvas.astype(np.int16)
        others = [i for i in range(3) if i != channel]
        mask = (c[:, :, channel] > 150) & (c[:, :, others[0]] < 90) & (c[:, :, others[1]] < 90)
        if mask.sum() < 4:
            return None
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean() + 0.5, ys.mean() + 0.5])

    def detect(self, canvases: Sequence[RGB], min_face_px: int) -> list[list[Detection]]:
        self.calls.append((len(canvases), canvases[0].shape))
        self.mixed_shapes |= len({c.shape for c in canvases}) > 1
        self.threads.add(threading.current_thread().name)
        out: list[list[Detection]] = []
        for canvas in canvases:
            right, left, nose = (self._centroid(canvas, ch) for ch in range(3))
            if right is None or left is None or nose is None:
                out.append([])
                continue
            eye_vector = left - right
            upright = eye_vector[0] > 0 and abs(eye_vector[1]) < 0.3 * eye_vector[0] and nose[1] > right[1]
            if not upright:
                out.append([])
                continue
            span = float(np.linalg.norm(eye_vector))
            mouth_y = nose[1] + 0.4 * span
            points = np.array([right, left, nose, [right[0], mouth_y], [left[0], mouth_y]], dtype=np.float64)
            box = np.array([right[0] - span / 2, right[1] - span, left[0] + span / 2, mouth_y + span / 2])
            out.append([Detection(box=box, score=0.999, points=points)])
        return out


class NoMesh:
    def __init__(self) -> None:
        self.crops: list[tuple[int, ...]] = []

    def fit(self, crop: RGB, blendshapes: bool = True) -> MeshFit | None:
        self.crops.append(crop.shape)
        return None


def _face_image(width: int, height: int, right_eye: tuple[int, int], eye_gap: int) -> RGB:
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    x, y = right_eye
    mark = eye_gap // 4  # side of each coloured square
    for (cx, cy), colour in (
        ((x, y), (255, 0, 0)),
        ((x + eye_gap, y), (0, 255, 0)),
        ((x + eye_gap // 2, y + eye_gap // 2), (0, 0, 255)),
    ):
        image[cy - mark // 2 : cy + mark // 2, cx - mark // 2 : cx + mark // 2] = colour
    return image


def _analyzer(detector: SquaresDetector, mesh: NoMesh) -> FaceAnalyzer:
    return FaceAnalyzer(detector, mesh, AnalyzerConfig(max_wait_s=0.01))


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [(4000, 3000), (3000, 4000), (640, 480), (300, 300)])
async def test_points_come_back_in_the_callers_pixels_whatever_the_image_size(size: tuple[int, int]) -> None:
    width, height = size
    right_eye = (width // 3, height // 3)
    gap = width // 4
    detector, mesh = SquaresDetector(), NoMesh()
    analyzer = _analyzer(detector, mesh)
    try:
        (face,) = await analyzer.analyze(_face_image(width, height, right_eye, gap), AnalyzeOptions())
    finally:
        await analyzer.close()
    # one canvas pixel is max(size)/768 image pixels; allow one of them
    tolerance = max(width, height) / 768 + 1
    assert abs(face.five_points.right_eye.x - (right_eye[0] + 0.5)) < tolerance
    assert abs(face.five_points.right_eye.y - (right_eye[1] + 0.5)) < tolerance
    assert abs(face.five_points.left_eye.x - (right_eye[0] + gap + 0.5)) < tolerance
    assert abs(face.pose.roll_deg) < 2
    assert face.pose.source is PoseSource.FIVE_POINTS  # the fake mesh model found nothing
    assert face.openness is None
    assert max(shape for _, shape in detector.calls) <= (768, 768, 3)
    assert mesh.crops == [(256, 256, 3)]


@pytest.mark.asyncio
@pytest.mark.parametrize(("quarter_turns", "roll"), [(1, -90.0), (2, 180.0), (3, 90.0)])
async def test_a_turned_face_is_found_on_a_turned_canvas_and_mapped_back(quarter_turns: int, roll: float) -> None:
    upright = _face_image(1600, 1200, (500, 400), 400)
    image = np.ascontiguousarray(np.rot90(upright, quarter_turns))
    h, w = upright.shape[:2]
    # where np.rot90 moved the centre of the red square (continuous coordinates)
    rx, ry = 500.0, 400.0
    expected = {1: (ry, w - rx), 2: (w - rx, h - ry), 3: (h - ry, rx)}[quarter_turns]
    detector, mesh = SquaresDetector(), NoMesh()
    analyzer = _analyzer(detector, mesh)
    try:
        (face,) = await analyzer.analyze(image, AnalyzeOptions())
        assert await analyzer.analyze(image, AnalyzeOptions(try_rotations=False)) == []
    finally:
        await analyzer.close()
    assert abs(face.five_points.right_eye.x - expected[0]) < 4
    assert abs(face.five_points.right_eye.y - expected[1]) < 4
    assert abs((face.pose.roll_deg - roll + 180) % 360 - 180) < 2
    assert face.box.contains(face.five_points.nose)


@pytest.mark.asyncio
async def test_only_canvases_of_one_shape_share_a_batch_and_the_model_runs_off_the_loop() -> None:
    landscape = _face_image(1600, 1200, (500, 400), 400)
    portrait = _face_image(1200, 1600, (400, 500), 400)
    detector, mesh = SquaresDetector(), NoMesh()
    analyzer = _analyzer(detector, mesh)
    try:
        results = await asyncio.gather(*(analyzer.analyze(img, AnalyzeOptions()) for img in [landscape, portrait] * 4))
    finally:
        await analyzer.close()
    assert [len(r) for r in results] == [1] * 8
    assert len(detector.calls) < 8
    assert not detector.mixed_shapes
    assert {shape for _, shape in detector.calls} == {(576, 768, 3), (768, 576, 3)}
    assert threading.main_thread().name not in detector.threads


@pytest.mark.asyncio
async def test_a_lone_photo_is_detected_without_waiting_for_companions_and_a_failed_one_is_not_waited_for() -> None:
    """Concurrent photos still share a pass (above); one alone goes to the detector at once, and
    an analysis that fails before its canvas is queued is no longer counted as on its way."""
    image = _face_image(640, 480, (250, 200), 120)

    class Timed(SquaresDetector):
        ran: list[float] = []

        def detect(self, canvases: Sequence[RGB], min_face_px: int) -> list[list[Detection]]:
            self.ran.append(time.monotonic())
            return super().detect(canvases, min_face_px)

    detector, mesh = Timed(), NoMesh()
    analyzer = _analyzer(detector, mesh)  # companions are waited for up to 10 ms
    queued: list[float] = []
    submit = analyzer.batcher.submit

    async def timed_submit(canvas: Any) -> Any:
        queued.append(time.monotonic())
        return await submit(canvas)

    analyzer.batcher.submit = timed_submit  # type: ignore[method-assign]
    try:
        for _ in range(5):
            await analyzer.analyze(image, AnalyzeOptions(try_rotations=False))
        waits = [ran - at for at, ran in zip(queued, Timed.ran, strict=True)]
        assert len(waits) == 5 and min(waits) < 0.005
        assert analyzer._approaching == 0
        with pytest.raises(Exception, match="empty"):
            await analyzer.analyze(np.zeros((0, 4, 3), np.uint8))
        slow = asyncio.ensure_future(analyzer.analyze(image))
        await asyncio.sleep(0)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert analyzer._approaching == 0
    finally:
        await analyzer.close()
