"""Upright, fixed-size crops of one face, and the mapping from crop pixels back to the image.

The mesh model expects one upright face filling a good part of its input. Cutting each face
out with a margin, turning it so the eyes are level, lets it work on small faces in big
group photos and on portraits stored sideways, and its results are mapped back exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from likeness_faces.domain.model_outputs import FloatArray


@dataclass(frozen=True)
class AlignedCrop:
    """A similarity transform: crop = scale · R(-roll) · (image - center) + size / 2."""

    center_x: float
    center_y: float
    roll_deg: float
    scale: float  # crop pixels per image pixel
    size: int

    def matrix(self) -> FloatArray:
        """2×3 affine matrix from image to crop coordinates."""
        a = math.radians(self.roll_deg)
        c, s = math.cos(a) * self.scale, math.sin(a) * self.scale
        half = self.size / 2
        # R(-a) = [[cos, sin], [-sin, cos]]
        return np.array(
            [
                [c, s, half - c * self.center_x - s * self.center_y],
                [-s, c, half + s * self.center_x - c * self.center_y],
            ],
            dtype=np.float64,
        )

    def to_image(self, points: FloatArray) -> FloatArray:
        a = math.radians(self.roll_deg)
        c, s = math.cos(a), math.sin(a)
        local = (points[:, :2] - self.size / 2) / self.scale
        xs = self.center_x + c * local[:, 0] - s * local[:, 1]
        ys = self.center_y + s * local[:, 0] + c * local[:, 1]
        return np.stack([xs, ys], axis=1)


def plan(center_x: float, center_y: float, face_size: float, roll_deg: float, margin: float, size: int) -> AlignedCrop:
    """A crop whose side covers face_size × margin image pixels around the centre."""
    return AlignedCrop(
        center_x=center_x,
        center_y=center_y,
        roll_deg=roll_deg,
        scale=size / max(face_size * margin, 1.0),
        size=size,
    )


def extract(image: npt.NDArray[np.uint8], crop: AlignedCrop) -> npt.NDArray[np.uint8]:
    """The crop's pixels; outside the image the edge pixels are repeated."""
    matrix = crop.matrix()
    source = image
    if crop.scale < 0.5:
        # warpAffine samples bilinearly, which aliases when shrinking a big face from a
        # 12 MP photo several times over; shrink the region with area averaging first so
        # the warp works near 1:1.
        half_diag = crop.size / crop.scale * math.sqrt(0.5) + 2
        h, w = image.shape[:2]
        x0 = int(max(0, math.floor(crop.center_x - half_diag)))
        y0 = int(max(0, math.floor(crop.center_y - half_diag)))
        x1 = int(min(w, math.ceil(crop.center_x + half_diag)))
        y1 = int(min(h, math.ceil(crop.center_y + half_diag)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            rw = max(2, round((x1 - x0) * crop.scale))
            rh = max(2, round((y1 - y0) * crop.scale))
            source = np.asarray(cv2.resize(image[y0:y1, x0:x1], (rw, rh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            # region pixel q maps to image pixel q / r + origin
            to_region = np.diag([(x1 - x0) / rw, (y1 - y0) / rh])
            matrix = np.concatenate(
                [matrix[:, :2] @ to_region, (matrix[:, :2] @ np.array([x0, y0]) + matrix[:, 2])[:, None]],
                axis=1,
            )
    # warpAffine indexes pixels by their centres at integers, these matrices use continuous
    # coordinates (centres at +0.5): shift in and out so points map back to the pixel.
    matrix = matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([0.5, 0.5]) - 0.5
    warped = cv2.warpAffine(source, matrix, (crop.size, crop.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, dtype=np.uint8)
