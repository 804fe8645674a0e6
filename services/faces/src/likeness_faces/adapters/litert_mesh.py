"""The 478-point mesh and its 52 blendshapes on the CPU: the two networks of the verified
face_landmarker.task run by LiteRT (XNNPACK), one face per call, on the crop the analyzer cuts.

MediaPipe's FaceLandmarker runs the same two networks, but first looks for the face again in
the crop with a detector of its own and runs its graph around them: on the bench's portrait it
took 55 CPU ms per Analyze where this takes 48 (same run, 2 shared cores). MTCNN has found the
face already; the crop, the framing and the fits are mesh_bundle's, as on the CUDA path.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from likeness_faces.adapters.mesh_bundle import (
    BLENDSHAPE_LANDMARKS,
    CROP_MARGIN,
    Crop,
    at_input_size,
    bundle,
    canonical_face,
    fits,
)
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.domain.model_outputs import MeshFit
from likeness_imaging.face_mesh import MESH_POINTS

_SUBSET = np.array(BLENDSHAPE_LANDMARKS)
_UNIT = np.float32(1.0 / 255.0)


class _Networks:
    """One thread's interpreters (a LiteRT interpreter is not safe to share between threads)."""

    def __init__(self, landmarks: bytes, blendshapes: bytes) -> None:
        # One thread each: the analyzer already runs a face per worker thread, one per core.
        self.landmarks = Interpreter(model_content=landmarks, num_threads=1)
        self.blendshapes = Interpreter(model_content=blendshapes, num_threads=1)
        self.landmarks.allocate_tensors()
        self.blendshapes.allocate_tensors()
        self.pixels = self.landmarks.get_input_details()[0]["index"]
        outputs = {tuple(d["shape"]): d["index"] for d in self.landmarks.get_output_details()}
        try:
            self.points = outputs[(1, 1, 1, 3 * MESH_POINTS)]
            self.presence = outputs[(1, 1, 1, 1)]
        except KeyError:
            raise ModelFilesError(f"the mesh network's outputs are not the expected ones: {sorted(outputs)}; run `make setup`") from None
        self.subset = self.blendshapes.get_input_details()[0]["index"]
        self.shapes = self.blendshapes.get_output_details()[0]["index"]

    def run(
        self, pixels: npt.NDArray[np.uint8], shapes: bool = True
    ) -> tuple[npt.NDArray[np.float32], float, npt.NDArray[np.float32] | None]:
        """One INPUT_PX crop -> (478×3 points in input pixels, presence 0..1, 52 blendshapes; None without `shapes`)."""
        self.landmarks.set_tensor(self.pixels, (pixels.astype(np.float32) * _UNIT)[None])
        self.landmarks.invoke()
        points = self.landmarks.get_tensor(self.points).reshape(-1, 3)
        presence = 1.0 / (1.0 + float(np.exp(-float(self.landmarks.get_tensor(self.presence).reshape(())))))
        if not shapes:
            return points, presence, None
        # MediaPipe feeds the blendshape network the subset's x and y in the landmark image's pixels.
        self.blendshapes.set_tensor(self.subset, np.ascontiguousarray(points[_SUBSET, :2])[None])
        self.blendshapes.invoke()
        return points, presence, self.blendshapes.get_tensor(self.shapes).reshape(-1)


class LiteRtMeshLandmarker:
    """Thread-safe: each calling thread gets interpreters of its own (built on its first call)."""

    def __init__(self, task_path: Path) -> None:
        self._landmarks, self._blendshapes, geometry = bundle(task_path)
        self.canonical = canonical_face(geometry)
        self.crop_margin = CROP_MARGIN
        self._local = threading.local()
        # Built here once, so a file LiteRT cannot load stops the service at start, not a request.
        self._local.networks = self._networks_or_error(task_path.name)
        self._name = task_path.name

    def _networks_or_error(self, name: str) -> _Networks:
        try:
            return _Networks(self._landmarks, self._blendshapes)
        except (ValueError, RuntimeError) as exc:
            raise ModelFilesError(f"LiteRT could not load the mesh networks of {name}: {exc}; run `make setup`") from exc

    def fit(self, crop: Crop, blendshapes: bool = True) -> MeshFit | None:
        """The mesh in the crop's pixels (an upright face, any square size); None when the
        network says no face is there. Without `blendshapes` their network is not run (a tenth
        of the fit's time) and the fit has none."""
        pixels = at_input_size(crop)
        networks: _Networks | None = getattr(self._local, "networks", None)
        if networks is None:
            networks = self._local.networks = self._networks_or_error(self._name)
        points, presence, shapes = networks.run(pixels, blendshapes)
        return fits(
            points[None], np.array([presence], np.float32), None if shapes is None else shapes[None], [crop.shape[1]], self.canonical
        )[0]

    def close(self) -> None:
        return None
