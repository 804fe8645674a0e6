"""The 478-point mesh and its 52 blendshapes on PyTorch, many faces per forward pass.

The same two networks the CPU path runs on LiteRT (litert_mesh.py), read from the same verified
face_landmarker.task by tflite_torch, for the CUDA path: many crops per pass. The crop, the
framing and the fits are mesh_bundle's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from likeness_faces.adapters import tflite_torch
from likeness_faces.adapters.mesh_bundle import (
    BLENDSHAPE_LANDMARKS,
    CROP_MARGIN,
    INPUT_PX,
    Crop,
    at_input_size,
    bundle,
    canonical_face,
    fits,
)
from likeness_faces.adapters.torch_trace import traced
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.domain.model_outputs import MeshFit


class TorchMeshLandmarker:
    """Thread-safe (a lock around the networks); fit_many is the batched call."""

    def __init__(self, task_path: Path, device: torch.device) -> None:
        landmarks, blendshapes, geometry = bundle(task_path)
        self.canonical = canonical_face(geometry)
        try:
            # One TorchScript call per pass (adapters/torch_trace.py); the batch size stays free.
            self._landmarks = traced(tflite_torch.load(landmarks, device), (INPUT_PX, INPUT_PX, 3), device)
            self._blendshapes = traced(tflite_torch.load(blendshapes, device), (len(BLENDSHAPE_LANDMARKS), 2), device)
        except tflite_torch.UnsupportedModelError as exc:
            raise ModelFilesError(f"{task_path.name}: {exc}") from exc
        self.device = device
        self.crop_margin = CROP_MARGIN
        self._subset = torch.tensor(BLENDSHAPE_LANDMARKS, device=device)
        self._lock = threading.Lock()
        self.forward_passes = 0

    def fit(self, crop: Crop, blendshapes: bool = True) -> MeshFit | None:
        # The blendshapes are always computed here: on the device they cost next to nothing.
        return self.fit_many([crop])[0]

    def fit_many(self, crops: Sequence[Crop]) -> list[MeshFit | None]:
        """Per crop (upright faces, any square size), the mesh in that crop's pixels; None
        where the network says no face is there."""
        if not crops:
            return []
        sizes = [crop.shape[1] for crop in crops]
        batch = np.stack([at_input_size(crop) for crop in crops])
        with self._lock, torch.inference_mode():
            pixels = torch.from_numpy(batch).to(self.device, non_blocking=True)
            points, presence = self._run(pixels)
            self.forward_passes += 1
            points_np, presence_np = points.float().cpu().numpy(), presence.float().cpu().numpy()
            shapes_np = self._shapes(points).float().cpu().numpy()
        return fits(points_np, presence_np, shapes_np, sizes, self.canonical)

    def _run(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 N×256×256×3 -> (N×478×3 points in input pixels, N presence scores)."""
        x = pixels.to(torch.float32) / 255.0
        mesh, presence_logit, _ = self._landmarks(x)
        points = mesh.reshape(mesh.shape[0], -1, 3)
        return points, torch.sigmoid(presence_logit.reshape(-1))

    def _shapes(self, points: torch.Tensor) -> torch.Tensor:
        # MediaPipe feeds the blendshape network the subset's x and y in the landmark image's
        # pixels; the network normalises position and scale itself, so input pixels do
        (shapes,) = self._blendshapes(points[:, self._subset, :2].contiguous())
        return shapes.reshape(points.shape[0], -1)

    def close(self) -> None:
        return None
