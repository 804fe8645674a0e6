"""Outfit materials drawn by the project: clothing with alpha, fitted to the chin and shoulders.

Each outfit is a set of polygons in face-width units around the base of the neck, rasterised
anti-aliased at twice the size, shaded, and layered under the head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

RGB = npt.NDArray[np.uint8]
Poly = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Layer:
    colour: tuple[int, int, int]
    polygon: Poly
    shade: float = 0.18  # how much darker the sides and bottom get


@dataclass(frozen=True)
class Outfit:
    outfit_id: str
    name: str
    layers: tuple[Layer, ...]


_BODY = (
    (-0.40, -0.04),
    (-0.95, 0.12),
    (-1.60, 0.30),
    (-2.60, 0.60),
    (-4.0, 1.0),
    (-4.0, 5.0),
    (4.0, 5.0),
    (4.0, 1.0),
    (2.60, 0.60),
    (1.60, 0.30),
    (0.95, 0.12),
    (0.40, -0.04),
)
_SHIRT_V = ((-0.40, -0.04), (0.0, 1.15), (0.40, -0.04))
# Paired pieces are drawn on the subject's right (negative x) and mirrored.
_COLLAR = ((-0.40, -0.09), (-0.04, 0.17), (-0.19, 0.30), (-0.45, 0.05))
_TIE = ((-0.07, 0.12), (0.07, 0.12), (0.05, 0.26), (0.13, 1.05), (0.0, 1.20), (-0.13, 1.05), (-0.05, 0.26))
_LAPEL = ((-0.40, -0.04), (-0.02, 1.15), (-0.30, 0.62), (-0.62, 0.38), (-0.50, 0.16))
_CREW = ((-0.40, -0.04), (-0.30, 0.12), (0.0, 0.20), (0.30, 0.12), (0.40, -0.04))
_PLACKET = ((-0.035, 0.20), (0.035, 0.20), (0.035, 4.0), (-0.035, 4.0))


def _pair(colour: tuple[int, int, int], polygon: Poly, shade: float) -> tuple[Layer, Layer]:
    """A piece and its mirror image across the centre line (collars, lapels)."""
    return Layer(colour, polygon, shade), Layer(colour, tuple((-x, y) for x, y in polygon), shade)


_SUIT = (
    Layer((38, 42, 52), _BODY),
    Layer((246, 246, 244), _SHIRT_V, 0.08),
    Layer((120, 24, 40), _TIE, 0.25),
    *_pair((28, 31, 40), _LAPEL, 0.12),
    *_pair((250, 250, 248), _COLLAR, 0.06),
)
_BLAZER = (
    Layer((30, 40, 72), _BODY),
    Layer((44, 44, 48), _SHIRT_V, 0.10),
    Layer((40, 40, 44), _CREW, 0.05),
    *_pair((24, 32, 60), _LAPEL, 0.12),
)
_WHITE_SHIRT = (Layer((238, 238, 236), _BODY, 0.14), Layer((226, 226, 224), _PLACKET, 0.05), *_pair((248, 248, 246), _COLLAR, 0.06))

OUTFITS: dict[str, Outfit] = {
    o.outfit_id: o
    for o in (
        Outfit("suit", "Dark suit with white shirt and tie", _SUIT),
        Outfit("blazer", "Dark blazer over a dark top", _BLAZER),
        Outfit("white-shirt", "White shirt", _WHITE_SHIRT),
    )
}


def draw(outfit: Outfit, size: tuple[int, int], neck: tuple[float, float], face_width: float) -> tuple[RGB, npt.NDArray[np.float32]]:
    """The outfit as (rgb, alpha) for a frame of `size` (w, h), neck base at `neck`, scaled by face width."""
    w, h = size
    ss = 2  # supersample for smooth edges
    canvas = np.zeros((h * ss, w * ss, 3), np.float32)
    alpha = np.zeros((h * ss, w * ss), np.float32)
    nx, ny = neck[0] * ss, neck[1] * ss
    unit = face_width * ss
    ys = np.arange(h * ss, dtype=np.float32)[:, None]
    xs = np.arange(w * ss, dtype=np.float32)[None, :]
    for layer in outfit.layers:
        pts = np.array([[nx + dx * unit, ny + dy * unit] for dx, dy in layer.polygon], np.float32)
        mask = np.zeros((h * ss, w * ss), np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        m = mask.astype(np.float32) / 255.0
        # Soft light from the front: sides and lower parts a little darker, like cloth on a body.
        side = np.clip(np.abs(xs - nx) / (3.0 * unit), 0, 1) ** 1.5
        down = np.clip((ys - ny) / (3.0 * unit), 0, 1)
        shade = 1.0 - layer.shade * (0.7 * side + 0.3 * down)
        colour = np.array(layer.colour, np.float32)[None, None, :] * shade[..., None]
        # A soft shadow just inside each piece's edge reads as a fold or a seam, not a flat shape.
        edge = np.clip(m - cv2.GaussianBlur(m, (0, 0), max(1.0, 0.03 * unit)), 0, 1)
        colour = colour * (1.0 - 0.35 * edge[..., None])
        # A shadow the piece casts on what lies under it (collars on the jacket, the tie on the shirt).
        cast = np.clip(cv2.GaussianBlur(m, (0, 0), max(1.0, 0.04 * unit)) - m, 0, 1)
        canvas = canvas * (1.0 - 0.25 * cast[..., None])
        canvas = canvas * (1 - m[..., None]) + colour * m[..., None]
        alpha = np.maximum(alpha, m)
    # Fine, fixed-seed cloth grain so large areas do not look painted.
    grain = np.random.default_rng(7).normal(0.0, 2.2, canvas.shape[:2]).astype(np.float32)
    canvas = canvas + cv2.GaussianBlur(grain, (0, 0), 0.8)[..., None] * (alpha[..., None] > 0)
    rgb = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), a


def dress(image: RGB, person_alpha: npt.NDArray[np.float32], outfit: Outfit, neck: tuple[float, float], face_width: float) -> RGB:
    """Layer the outfit over the body and under the head (everything above the neck base stays on top)."""
    h, w = image.shape[:2]
    rgb, a = draw(outfit, (w, h), neck, face_width)
    out = image.astype(np.float32) * (1 - a[..., None]) + rgb.astype(np.float32) * a[..., None]
    # The head (and hair) above the collar line is never covered.
    above = (np.arange(h, dtype=np.float32)[:, None] < neck[1] - 0.12 * face_width).astype(np.float32)
    keep = (person_alpha * above)[..., None]
    out = out * (1 - keep) + image.astype(np.float32) * keep
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
