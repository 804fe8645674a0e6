"""Image quality of a face region: sharpness, exposure, clipping, lighting balance and size.

The one definition of these measures in Likeness: render's compliance checks judge the
numbers measured here and do not measure them again.

Measured on an upright crop resampled to a fixed size, so a number means the same for a
face of 80 or 800 pixels and for a portrait stored sideways. Sharpness looks at the whole
crop (hair and face edges carry the focus); exposure, clipping and lighting look only at the
inner face, which leaves out the hair line, ears, chin edge and any background the box
includes (a white ID-photo backdrop is not a blown-out face).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from likeness_faces.domain import face_crop
from likeness_faces.domain.faces import Box, FaceQuality, Point2

QUALITY_CROP_PX = 128
# Laplacian variance at which sharpness reads 0.5. Measured on the 128 px crop: focused
# portraits (skimage's astronaut, matplotlib's grace_hopper) read 0.93–0.99, the astronaut
# blurred by a Gaussian of sigma 2.3 px at that size about 0.35, of sigma 3.5 px about 0.2.
SHARPNESS_HALF_POINT = 200.0
# Luma at or below / at or above these is clipped: JPEG ringing keeps truly clipped areas a
# few levels off 0 and 255.
CLIP_LOW = 5
CLIP_HIGH = 250
# The inner face within the upright crop (whose side is the face box's long side): 20–80 %
# of its width and 20–85 % of its height.
INNER_X = (0.20, 0.80)
INNER_Y = (0.20, 0.85)


def _luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    luma: npt.NDArray[np.float64] = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma


def _inner(luma: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    h, w = luma.shape
    return luma[round(INNER_Y[0] * h) : round(INNER_Y[1] * h), round(INNER_X[0] * w) : round(INNER_X[1] * w)]


def measure(image: npt.NDArray[np.uint8], box: Box, roll_deg: float, right_eye: Point2, left_eye: Point2) -> FaceQuality:
    face_size = max(box.width, box.height)
    sideways = 45.0 < abs(roll_deg) < 135.0
    center = box.center
    crop = face_crop.extract(
        image,
        face_crop.plan(center.x, center.y, face_size, roll_deg, margin=1.0, size=QUALITY_CROP_PX),
    )
    luma = _luma(crop)
    variance = float(cv2.Laplacian(luma, cv2.CV_64F, ksize=3).var())
    inner = _inner(luma)
    mid = inner.shape[1] // 2
    # One luma level keeps a black half from dividing by zero without moving real ratios.
    lighting = float((inner[:, :mid].mean() + 1.0) / (inner[:, mid:].mean() + 1.0))
    return FaceQuality(
        sharpness=variance / (variance + SHARPNESS_HALF_POINT),
        exposure=float(inner.mean() / 255.0),
        shadow_clipped_fraction=float(np.mean(inner <= CLIP_LOW)),
        highlight_clipped_fraction=float(np.mean(inner >= CLIP_HIGH)),
        lighting_ratio=lighting,
        face_size_px=float(box.width if sideways else box.height),
        inter_eye_px=math.hypot(left_eye.x - right_eye.x, left_eye.y - right_eye.y),
    )
