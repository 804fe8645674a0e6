"""Beauty: skin-only smoothing and brightening, levels 0-10 (0 leaves the photo untouched)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

RGB = npt.NDArray[np.uint8]


def skin_mask(shape: tuple[int, int], mesh: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Face oval minus eyes, brows and lips, feathered; 0..1."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 255)
    face_w = float(np.ptp(mesh[list(FACE_OVAL), 0]))
    grow = max(1, round(face_w * 0.03))
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS):
        hole = np.zeros_like(mask)
        cv2.fillPoly(hole, [cv2.convexHull(np.round(mesh[list(part)]).astype(np.int32))], 255)
        mask[cv2.dilate(hole, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0] = 0
    feather = max(1.0, face_w * 0.025)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), feather)


def beautify(image: RGB, mesh: npt.NDArray[np.float64] | None, smoothing: int, whitening: int) -> RGB:
    """Smooth and brighten skin only; both 0 returns the input unchanged."""
    smoothing, whitening = max(0, min(10, smoothing)), max(0, min(10, whitening))
    if (smoothing == 0 and whitening == 0) or mesh is None:
        return image
    mask = skin_mask(image.shape[:2], mesh)[..., None]
    out = image.astype(np.float32)
    if smoothing:
        face_w = float(np.ptp(mesh[list(FACE_OVAL), 0]))
        d = max(3, int(face_w / 25) | 1)
        smooth = cv2.bilateralFilter(image, d, 20 + 4 * smoothing, d).astype(np.float32)
        out = out + (smooth - out) * mask * (smoothing / 10.0)
    if whitening:
        # Brighten towards white in a curve that protects highlights.
        gain = 0.25 * whitening / 10.0
        lifted = out + (255.0 - out) * gain
        out = out + (lifted - out) * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
