"""MTCNN (facenet-pytorch) run on a batch of equally sized canvases.

Calls facenet-pytorch's detect_face directly rather than MTCNN.detect: the smallest face
size then varies per call, and the outputs stay plain arrays per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch.models.mtcnn import ONet, PNet, RNet
from facenet_pytorch.models.utils.detect_face import detect_face

from likeness_faces.adapters.model_files import ModelPaths
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.domain.model_outputs import Detection

# facenet-pytorch's defaults: per-stage score thresholds and the pyramid's scale step.
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709


def _load(net: torch.nn.Module, path: object) -> torch.nn.Module:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # a verified file that still fails to load is a broken install
        raise ModelFilesError(
            f"MTCNN weights {getattr(path, 'name', path)} could not be loaded ({type(exc).__name__}); reinstall facenet-pytorch==2.5.3"
        ) from exc
    return net.eval()


class MtcnnDetector:
    """Not thread-safe: call from one thread (the micro-batcher's worker)."""

    def __init__(self, paths: ModelPaths, device: torch.device) -> None:
        self.device = device
        self.pnet = _load(PNet(pretrained=False), paths.pnet).to(device)
        self.rnet = _load(RNet(pretrained=False), paths.rnet).to(device)
        self.onet = _load(ONet(pretrained=False), paths.onet).to(device)
        self.forward_passes = 0

    def detect(self, canvases: Sequence[npt.NDArray[np.uint8]], min_face_px: int) -> list[list[Detection]]:
        """One forward pass over every canvas (all of one shape); per canvas, its faces in
        canvas pixels (continuous coordinates), best score first."""
        batch = np.stack(list(canvases))
        with torch.inference_mode():
            boxes_per_image, points_per_image = detect_face(
                batch,
                min_face_px,
                self.pnet,
                self.rnet,
                self.onet,
                list(STAGE_THRESHOLDS),
                PYRAMID_FACTOR,
                self.device,
            )
        self.forward_passes += 1
        results: list[list[Detection]] = []
        for boxes, points in zip(boxes_per_image, points_per_image, strict=True):
            rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
            marks = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
            faces = [
                # MTCNN reports pixel indices; +0.5 moves them to pixel centres in
                # continuous coordinates, the convention of every other frame here.
                Detection(box=row[:4] + 0.5, score=float(row[4]), points=mark + 0.5)
                for row, mark in zip(rows, marks, strict=True)
            ]
            faces.sort(key=lambda d: d.score, reverse=True)
            results.append(faces)
        return results
