"""MediaPipe's facial transformation matrix, computed from the 478-point mesh.

FaceLandmarker's geometry pipeline, for a mesh that came from elsewhere (the PyTorch mesh on
CUDA): the landmarks of the first 468 points, in the pixels of the square crop the model saw,
are put in a perspective camera's metric space (vertical field of view 63°, near plane 1, origin
at the top left, as FaceLandmarker configures it), their depth is rescaled in two passes, and a
weighted similarity fit of MediaPipe's canonical face (the 468 vertices and 33 Procrustes weights
of geometry_pipeline_metadata_landmarks.binarypb in face_landmarker.task) gives the 4×4
canonical-face -> camera matrix. head_pose.pose_from_transform reads yaw and pitch from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from likeness_faces.domain.model_outputs import FloatArray
from likeness_imaging.face_mesh import SURFACE_POINTS

VERTICAL_FOV_DEG = 63.0
NEAR = 1.0


@dataclass(frozen=True)
class CanonicalFace:
    vertices: FloatArray  # 468×3, MediaPipe's canonical face in centimetres
    weights: FloatArray  # 468 Procrustes weights (most are 0)


def similarity(source: FloatArray, target: FloatArray, weights: FloatArray) -> FloatArray:
    """The 4×4 similarities (scale · rotation, translation) that take source (P×3) onto each
    target (N×P×3) best in the weighted least-squares sense: MediaPipe's Procrustes solver
    (Umeyama's method), for N meshes at once. N×4×4."""
    sqrt_w = np.sqrt(weights)[:, None]
    ws, wt = source * sqrt_w, target * sqrt_w
    total = float(weights.sum())
    centre = (ws * sqrt_w).sum(axis=0) / total
    centred = ws - centre * sqrt_w
    u, _, vt = np.linalg.svd(wt.transpose(0, 2, 1) @ centred)
    u[np.linalg.det(u) * np.linalg.det(vt) < 0, :, 2] *= -1  # a rotation, never a reflection
    rotation = u @ vt
    scale = ((centred @ rotation.transpose(0, 2, 1)) * wt).sum(axis=(1, 2)) / float((centred * ws).sum())
    turned = scale[:, None, None] * rotation
    translation = ((wt - ws @ turned.transpose(0, 2, 1)) * sqrt_w).sum(axis=1) / total
    matrices = np.zeros((len(target), 4, 4))
    matrices[:, :3, :3], matrices[:, :3, 3], matrices[:, 3, 3] = turned, translation, 1.0
    return matrices


def transforms(points: FloatArray, width: float, height: float, face: CanonicalFace) -> FloatArray:
    """The facial transformation matrices of N meshes (points: N×478×3 or N×468×3, x and y in
    pixels of a width × height image, z in the scale of x): N×4×4."""
    screen = np.asarray(points, dtype=np.float64)[:, :SURFACE_POINTS]
    half_height = NEAR * math.tan(math.radians(VERTICAL_FOV_DEG) / 2)
    half_width = half_height * width / height
    # normalised image coordinates onto the near plane (origin at the top left: y flips)
    projected = np.empty_like(screen)
    projected[..., 0] = screen[..., 0] / width * 2 * half_width - half_width
    projected[..., 1] = (1 - screen[..., 1] / height) * 2 * half_height - half_height
    projected[..., 2] = screen[..., 2] / width * 2 * half_width
    depth_offset = projected[..., 2].mean(axis=1, keepdims=True)
    # every step after the depth offset is per point, and only weighted points move the fits
    used = face.weights > 0
    projected, vertices, weights = projected[:, used], face.vertices[used], face.weights[used]

    def metric(scale: FloatArray) -> FloatArray:
        out = projected.copy()
        out[..., 2] = (out[..., 2] - depth_offset + NEAR) / scale[:, None]
        out[..., :2] *= out[..., 2:3] / NEAR
        out[..., 2] *= -1  # to the canonical face's right-handed axes
        return out

    def fitted_scale(target: FloatArray) -> FloatArray:
        return np.linalg.norm(similarity(vertices, target, weights)[:, :3, 0], axis=1)

    first = fitted_scale(projected * np.array([1.0, 1.0, -1.0]))
    second = fitted_scale(metric(first))
    return similarity(vertices, metric(first * second), weights)
