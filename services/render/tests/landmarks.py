"""Real 478-point meshes for render's unit tests, straight from MediaPipe's face landmarker.

Test tooling only: the render service itself never runs a face model; it gets every mesh
from the faces service. The fusion, hair and template tests need real meshes of real
faces (and of their own outputs) without starting that service.
"""

from __future__ import annotations

from types import TracebackType

import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from likeness_render.adapters.model_files import model_path
from likeness_render.domain.face import FaceGeometry


class TestLandmarker:
    """Faces with meshes, largest first, in the image's pixels (the model file faces uses)."""

    __test__ = False  # not a test class

    def __init__(self, max_faces: int = 4) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("face_landmarker.task"))), num_faces=max_faces
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def detect(self, image_rgb: npt.NDArray[np.uint8]) -> list[FaceGeometry]:
        h, w = image_rgb.shape[:2]
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image_rgb)))
        faces = []
        for landmarks in result.face_landmarks:
            pts = np.array([[p.x * w, p.y * h] for p in landmarks], dtype=np.float64)
            x1, y1 = pts.min(axis=0)
            x2, y2 = pts.max(axis=0)
            faces.append(FaceGeometry(box=(float(x1), float(y1), float(x2), float(y2)), mesh=pts))
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> TestLandmarker:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
