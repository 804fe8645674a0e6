"""Placement of the head in the spec's frame: scale from the head-height band, vertical
position from the eye-line and top-margin bands, centred on the face, eyes levelled.

Everything is one affine map from source pixels to output pixels, so cropping, padding
(where the source is cut too tight), levelling and scaling happen in a single resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from likeness_platform.errors import FailedPrecondition


class LowResolution(FailedPrecondition):
    default_code = "LOW_RESOLUTION"


@dataclass(frozen=True)
class FrameSpec:
    """The spec's geometry in output pixels."""

    width_px: int
    height_px: int
    px_per_mm: float
    head_mm: tuple[float, float]
    eye_from_bottom_mm: tuple[float, float] | None
    top_margin_mm: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class Placement:
    affine: npt.NDArray[np.float64]  # 2x3, source -> output
    scale: float  # output px per source px
    crown_y: float  # output px
    chin_y: float
    eye_y: float
    head_px: float
    eye_from_bottom_px: float


def plan(
    crown: npt.NDArray[np.float64],
    chin: npt.NDArray[np.float64],
    eyes: npt.NDArray[np.float64],
    centre_x: float,
    roll_deg: float,
    frame: FrameSpec,
    max_upscale: float = 5.0,
) -> Placement:
    """Affine map that puts the head in the frame; LowResolution when the source is too small."""
    # Level the eyes: rotate about the eye centre by -roll.
    theta = math.radians(-roll_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    rot = np.array([[cos, -sin], [sin, cos]])

    def level(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return rot @ (np.asarray(p, np.float64) - eyes) + eyes

    crown_l, chin_l = level(crown), level(chin)
    centre_l = level(np.array([centre_x, eyes[1]]))
    head_src = float(chin_l[1] - crown_l[1])
    if head_src <= 1:
        raise FailedPrecondition("the head could not be measured in the photo", "HEAD_NOT_MEASURABLE")
    ppm = frame.px_per_mm
    head_lo, head_hi = frame.head_mm
    eye_frac = (float(eyes[1]) - float(crown_l[1])) / head_src  # eye line position within the head

    best: tuple[float, float, float] | None = None
    # Try head heights from the middle of the band outwards until the eye/top bands fit too.
    steps = [0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8, 0.1, 0.9]
    for t in steps:
        head_mm = head_lo + (head_hi - head_lo) * t
        window = _crown_window(head_mm, eye_frac, frame)
        if window is not None:
            lo, hi = window
            best = (head_mm, (lo + hi) / 2.0, 0.0)
            break
    if best is None:
        head_mm = (head_lo + head_hi) / 2.0
        best = (head_mm, _fallback_crown(head_mm, eye_frac, frame), 0.0)
    head_mm, crown_mm, _ = best
    head_out = head_mm * ppm
    scale = head_out / head_src
    if scale > max_upscale:
        need = head_out / max_upscale
        raise LowResolution(
            f"the photo is too small for this spec: the head is {head_src:.0f} px tall and needs at least {need:.0f} px "
            f"({head_out:.0f} px in the output, upscaled at most {max_upscale:g}x); use a photo taken closer or at higher resolution"
        )
    crown_y = crown_mm * ppm
    # Output = scale * (level(p) - crown_l) + (W/2 - ..., crown_y)
    tx = frame.width_px / 2.0 - scale * float(centre_l[0])
    ty = crown_y - scale * float(crown_l[1])
    # level(p) = rot @ (p - eyes) + eyes  => affine A = scale*rot, b = scale*(eyes - rot@eyes) + (tx, ty)
    a = scale * rot
    b = scale * (eyes - rot @ eyes) + np.array([tx, ty])
    affine = np.hstack([a, b[:, None]])
    chin_y = crown_y + head_out
    eye_y = crown_y + eye_frac * head_out
    return Placement(affine, scale, crown_y, chin_y, eye_y, head_out, frame.height_px - eye_y)


def _crown_window(head_mm: float, eye_frac: float, frame: FrameSpec) -> tuple[float, float] | None:
    """Range of crown positions (mm from the top) that satisfies the eye and top-margin bands."""
    height_mm = frame.height_px / frame.px_per_mm
    lo, hi = 0.0, height_mm - head_mm  # keep chin inside the frame
    if frame.eye_from_bottom_mm is not None:
        e_lo, e_hi = frame.eye_from_bottom_mm
        # eye from bottom = H - (crown + eye_frac*head)
        lo = max(lo, height_mm - e_hi - eye_frac * head_mm)
        hi = min(hi, height_mm - e_lo - eye_frac * head_mm)
    t_lo, t_hi = frame.top_margin_mm
    if t_lo is not None:
        lo = max(lo, t_lo)
    if t_hi is not None:
        hi = min(hi, t_hi)
    # A little air above the hair unless the spec says otherwise.
    if t_lo is None:
        lo = max(lo, min(0.06 * height_mm, hi))
    return (lo, hi) if lo <= hi else None


def _fallback_crown(head_mm: float, eye_frac: float, frame: FrameSpec) -> float:
    height_mm = frame.height_px / frame.px_per_mm
    if frame.eye_from_bottom_mm is not None:
        target_eye = sum(frame.eye_from_bottom_mm) / 2.0
        return max(0.0, height_mm - target_eye - eye_frac * head_mm)
    return max(0.0, (height_mm - head_mm) * 0.4)


def crown_from_matte(mask: npt.NDArray[np.float32], x_lo: float, x_hi: float, above_y: float, threshold: float = 0.5) -> float | None:
    """Top of the hair: the highest matte row above `above_y` within the face's columns; None when the head touches the top."""
    h, w = mask.shape
    x0, x1 = max(0, int(x_lo)), min(w, math.ceil(x_hi))
    y1 = min(h, int(above_y))
    if x1 <= x0 or y1 <= 0:
        return None
    column = (mask[:y1, x0:x1] > threshold).any(axis=1)
    rows = np.flatnonzero(column)
    if rows.size == 0:
        return None
    top = int(rows[0])
    return None if top <= 0 else float(top)
