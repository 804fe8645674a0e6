"""Image quality of a face region: sharpness, exposure and size.

Measured on an upright crop resampled to a fixed size, so a number means the same for a
face of 80 or 800 pixels and for a portrait stored sideways.
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
CLIP_LOW = 5
CLIP_HIGH = 250


def _luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    luma: npt.NDArray[np.float64] = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma


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
    return FaceQuality(
        sharpness=variance / (variance + SHARPNESS_HALF_POINT),
        exposure=float(luma.mean() / 255.0),
        clipped_fraction=float(np.mean((luma <= CLIP_LOW) | (luma >= CLIP_HIGH))),
        face_size_px=float(box.width if sideways else box.height),
        inter_eye_px=math.hypot(left_eye.x - right_eye.x, left_eye.y - right_eye.y),
    )
