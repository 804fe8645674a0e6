"""MediaPipe's FaceLandmarker (478 points, 52 blendshapes, facial transform) on one crop: the
reference the service's mesh runners (LiteRT on the CPU, PyTorch on CUDA) are held to.

Test tooling only: the service runs the same two networks itself (adapters/litert_mesh.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from likeness_faces.domain.model_outputs import MeshFit

# The crop holds the face we want in its centre but may hold part of a neighbour's face
# too: ask for two and keep the one nearest the centre.
FACES_PER_CROP = 2


class MeshLandmarker:
    """Thread-safe: a lock serialises calls because a Tasks object is not re-entrant."""

    def __init__(self, model_path: Path) -> None:
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=FACES_PER_CROP,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self._lock = threading.Lock()

    def fit(self, crop: npt.NDArray[np.uint8], blendshapes: bool = True) -> MeshFit | None:
        """The face nearest the crop's centre, in crop pixels; None when none is found."""
        size_y, size_x = crop.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        with self._lock:
            result = self._landmarker.detect(image)
        best: MeshFit | None = None
        best_distance = float("inf")
        for i, landmarks in enumerate(result.face_landmarks):
            points = np.array([[p.x * size_x, p.y * size_y, p.z * size_x] for p in landmarks], dtype=np.float64)
            centre = points[:, :2].mean(axis=0)
            distance = float(np.hypot(centre[0] - size_x / 2, centre[1] - size_y / 2))
            if distance >= best_distance:
                continue
            best_distance = distance
            shapes = result.face_blendshapes[i] if i < len(result.face_blendshapes) else []
            matrices = result.facial_transformation_matrixes
            best = MeshFit(
                points=points,
                blendshapes={c.category_name: float(c.score) for c in shapes if c.category_name},
                transform=np.asarray(matrices[i], dtype=np.float64) if i < len(matrices) else None,
            )
        return best

    def close(self) -> None:
        with self._lock:
            self._landmarker.close()
