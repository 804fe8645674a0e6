"""MediaPipe FaceLandmarker runner (478 points). Production gets landmarks from the faces
service; this runner serves tests, tools and a render-only deployment."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import cv2
import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from likeness_render.adapters.model_files import model_path
from likeness_render.domain.face import FaceGeometry

# The landmarker's own detector is short-range and its mesh model sees 256 px: a working
# copy this size loses nothing and keeps a 12 MP source cheap.
WORKING_SIDE = 1024


class FaceLandmarkerRunner:
    """Loads the model once; ``detect`` is safe to call from several threads."""

    def __init__(self, model_dir: Path | None = None, max_faces: int = 1) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("face_landmarker.task", model_dir))),
            num_faces=max_faces,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._lock = threading.Lock()

    def detect(self, image_rgb: npt.NDArray[np.uint8]) -> list[FaceGeometry]:
        """Faces in ``image_rgb`` (H, W, 3 uint8), largest first, in its pixel coordinates."""
        h, w = image_rgb.shape[:2]
        scale = min(1.0, WORKING_SIDE / max(h, w))
        work = image_rgb
        if scale < 1.0:
            work = cv2.resize(image_rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        wh, ww = work.shape[:2]
        with self._lock:
            result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(work)))
        faces = []
        for landmarks in result.face_landmarks:
            # Normalised to the working copy; map to source pixels (continuous coordinates).
            pts = np.array([[p.x * ww, p.y * wh] for p in landmarks], dtype=np.float64) / scale
            x1, y1 = pts.min(axis=0)
            x2, y2 = pts.max(axis=0)
            faces.append(FaceGeometry(box=(float(x1), float(y1), float(x2), float(y2)), mesh=pts))
        faces.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return faces

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> FaceLandmarkerRunner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
