"""Beauty: skin-only smoothing and brightening, levels 0-10 (0 leaves the photo untouched).

The retouch keeps the person's colour: brightening raises CIELAB L* and leaves a* and b*
(so hue and chroma) as they are, instead of mixing in white, which greys skin. It covers
all visible skin: the face oval grown over the forehead, ears and neck, weighted by how
close each pixel's colour is to the cheeks' (hair, clothes and the background stay out), and
feathered wide enough that no edge shows. Smoothing replaces the skin's middle frequencies
(blotches, fine wrinkles) by a bilateral filter's and keeps the finest band (pores).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

RGB = npt.NDArray[np.uint8]

# Cheek and forehead mesh points: skin in almost every face, where its colour is learnt.
SKIN_SAMPLE_POINTS = (50, 280, 101, 330, 205, 425, 151, 9, 108, 337)
# a*b* distance within which a pixel counts fully as skin, and the fall-off beyond it.
SKIN_AB_CORE = 14.0
SKIN_AB_SIGMA = 10.0
# L* gained at level 10 by a mid-tone (L* 50), per 100 L*: about 10 L* on typical skin.
LIFT_AT_MAX = 0.22
# Share of the pore band (finer than PORE_SIGMA_FRACTION of the face width) smoothing keeps.
PORE_SIGMA_FRACTION = 1 / 250
PORE_KEEP = 0.8


def _lab(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(image / 255.0, cv2.COLOR_RGB2Lab)


def skin_mask(image: RGB, mesh: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """0..1 skin weight: the face oval grown over forehead, ears and neck, of skin colour, eyes/brows/lips out, feathered."""
    h, w = image.shape[:2]
    oval = mesh[list(FACE_OVAL)]
    face_w = float(np.ptp(oval[:, 0]))
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [np.round(oval).astype(np.int32)], 255)
    # Ears and neck lie just outside the oval, the forehead's top just above it; the colour
    # term below keeps hair, collar and background out of the grown region.
    grow = max(1, round(face_w * 0.18))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    # Colour of the neighbourhood, not of single pixels: wrinkles and pores are skin too.
    lab = _lab(cv2.GaussianBlur(image.astype(np.float32), (0, 0), max(1.0, face_w * 0.01)))
    pts = np.clip(np.round(mesh[list(SKIN_SAMPLE_POINTS)]).astype(int), 0, [w - 1, h - 1])
    ab = np.median(lab[pts[:, 1], pts[:, 0], 1:], axis=0)
    distance = np.linalg.norm(lab[..., 1:] - ab, axis=-1)
    likeness = np.exp(-(np.maximum(distance - SKIN_AB_CORE, 0.0) ** 2) / (2 * SKIN_AB_SIGMA**2))
    weight = (region > 0) * likeness
    holes = np.zeros((h, w), np.uint8)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS):
        cv2.fillPoly(holes, [cv2.convexHull(np.round(mesh[list(part)]).astype(np.int32))], 255)
    keep_out = max(1, round(face_w * 0.03))
    holes = cv2.dilate(holes, np.ones((2 * keep_out + 1, 2 * keep_out + 1), np.uint8))
    weight = weight * (holes == 0)
    return cv2.GaussianBlur(weight.astype(np.float32), (0, 0), max(1.5, face_w * 0.06))


def beautify(image: RGB, mesh: npt.NDArray[np.float64] | None, smoothing: int, whitening: int) -> RGB:
    """Smooth and brighten skin only; both 0 returns the input unchanged."""
    smoothing, whitening = max(0, min(10, smoothing)), max(0, min(10, whitening))
    if (smoothing == 0 and whitening == 0) or mesh is None:
        return image
    mask = skin_mask(image, mesh)
    ys, xs = np.nonzero(mask > 1e-3)
    if ys.size == 0:
        return image
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    roi = image[y0:y1, x0:x1]
    weight = mask[y0:y1, x0:x1, None]
    out = roi.astype(np.float32)
    face_w = float(np.ptp(mesh[list(FACE_OVAL), 0]))
    if smoothing:
        d = max(3, int(face_w / 25) | 1)
        smooth = cv2.bilateralFilter(roi, d, 20 + 4 * smoothing, d).astype(np.float32)
        # Pores: the finest band of the original, put back over the smoothed copy.
        pores = out - cv2.GaussianBlur(out, (0, 0), max(0.6, face_w * PORE_SIGMA_FRACTION))
        smooth = smooth + PORE_KEEP * pores
        out = out + (smooth - out) * weight * (smoothing / 10.0)
    if whitening:
        lab = _lab(np.clip(out, 0, 255))
        lift = LIFT_AT_MAX * whitening / 10.0
        light = lab[..., 0]
        # A mid-tone lift (none at black or white): dark glasses frames and brows inside the
        # skin area are not greyed, highlights do not clip.
        lab[..., 0] = light + light * (100.0 - light) / 50.0 * lift * weight[..., 0]
        out = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0
    result = image.copy()
    result[y0:y1, x0:x1] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return result
