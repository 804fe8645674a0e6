"""The ID-photo pipeline: find the crown, place the head, matte, retouch, new background, outfit.

Pure: the segmentation model comes in as a function, so the whole pipeline runs the same
in tests and in the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain import matte, outfits, retouch
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.framing import FrameSpec, Placement, crown_from_matte, plan

RGB = npt.NDArray[np.uint8]
Segment = Callable[[RGB], npt.NDArray[np.float32]]
# A matting model: the person's alpha (0..1) in an output-size crop.
Matting = Callable[[RGB], npt.NDArray[np.float32]]
# The crown is looked for on a small copy: the selfie model sees 256 px anyway.
CROWN_WORKING_SIDE = 512


@dataclass(frozen=True)
class Options:
    background: str = "spec"  # spec | solid | gradient | keep
    colours: tuple[str, ...] = ()
    smoothing: int = 0
    whitening: int = 0
    outfit_id: str = ""


@dataclass(frozen=True)
class Composed:
    image: RGB
    alpha: npt.NDArray[np.float32]
    placement: Placement
    face: FaceGeometry  # in output pixels
    crown_from_matte: bool
    background: RGB | None = None  # the new background alone; None when the photo's own was kept
    silhouette: npt.NDArray[np.bool_] | None = None  # the person by the segmentation, before the matte's edge
    others_removed: int = 0  # other people or large objects the cut-out left out
    garment: npt.NDArray[np.float32] | None = None  # the outfit's coverage (0..1, output pixels); None without an outfit


@dataclass(frozen=True)
class CrownMask:
    """The person mask the crown is looked for in: `k` times the size of the source it was made for."""

    mask: npt.NDArray[np.float32]
    k: float


def crown_mask(source_shape: tuple[int, ...], segment: Segment, preview: RGB) -> CrownMask:
    """The segmentation find_crown needs, from `preview` (the source or a smaller copy of it, same framing).

    It needs no face, so it can be made while the faces are still being looked for.
    """
    h, w = source_shape[:2]
    k = min(1.0, CROWN_WORKING_SIDE / max(h, w))
    target = (max(1, round(w * k)), max(1, round(h * k)))
    small = cv2.resize(preview, target, interpolation=cv2.INTER_AREA) if preview.shape[1::-1] != target else preview
    return CrownMask(segment(small), k)


def find_crown(
    source: RGB, face: FaceGeometry, segment: Segment, preview: RGB | None = None, mask: CrownMask | None = None
) -> tuple[npt.NDArray[np.float64], bool]:
    """Top of the hair above the face centre, from the matte; the proportions' estimate when the head touches the top.

    `preview` is a smaller copy of `source` (same framing) to work from when one is at hand;
    `mask` is crown_mask's result when it was already made.
    """
    if mask is None:
        mask = crown_mask(source.shape, segment, preview if preview is not None else source)
    k = mask.k
    lo, hi = face.span_x
    # The middle half of the face's width: the crown, not the shoulders or a raised hand.
    quarter = (hi - lo) / 4
    top = crown_from_matte(mask.mask, (lo + quarter) * k, (hi - quarter) * k, float(face.eye_centre[1]) * k)
    centre_x = face.centre_x
    if top is None:
        return face.estimated_crown(), False
    return np.array([centre_x, top / k], np.float64), True


def _background(options: Options, spec_backgrounds: tuple[str, ...], size: tuple[int, int]) -> RGB:
    w, h = size
    if options.background == "solid":
        return matte.solid(w, h, options.colours[0])
    if options.background == "gradient":
        return matte.gradient(w, h, options.colours[0], options.colours[1])
    return matte.solid(w, h, (spec_backgrounds or ("#ffffff",))[0])


def compose(
    source: RGB,
    face: FaceGeometry,
    segment: Segment,
    frame: FrameSpec,
    spec_backgrounds: tuple[str, ...],
    options: Options,
    preview: RGB | None = None,
    matting: Matting | None = None,
    wear: outfits.Wear | None = None,
    mask: CrownMask | None = None,
) -> Composed:
    """The finished ID photo at the frame's exact pixel size (`preview`: an optional smaller copy of the source;
    `wear`: the garment of `options.outfit_id` and the person's shoulders in the source's pixels; `mask`:
    crown_mask's result when it was made while the face was looked for).

    With `matting` (an operator's model), the model's alpha of the crop replaces the selfie
    mask and the edge solve; the crown is still found with `segment` on a small copy.
    """
    crown, from_matte = find_crown(source, face, segment, preview, mask)
    placement = plan(crown, face.chin, face.eye_centre, face.centre_x, face.roll_deg, frame)
    size = (frame.width_px, frame.height_px)
    affine = placement.affine.copy()
    src = source
    # Big reductions alias under warpAffine: shrink with area averaging first, to about twice the output scale.
    if placement.scale < 0.5:
        k = min(1.0, 2.0 * placement.scale)
        src = cv2.resize(source, (max(1, round(source.shape[1] * k)), max(1, round(source.shape[0] * k))), interpolation=cv2.INTER_AREA)
        affine[:, :2] /= k
    framed = cv2.warpAffine(src, affine, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = _inside(src.shape[:2], affine, size)
    face_out = face.transformed(placement.affine)

    keep = options.background == "keep"
    centre = face_out.eye_centre
    eyes = (float(centre[0]), float(centre[1]))
    if matting is None:
        cut = matte.cut_out(framed, segment(framed) * inside, eyes)
    else:
        cut = matte.cut_out(framed, matting(framed) * inside, eyes, refined=True)
    # Where the frame reaches past the source there is no person to show, whatever the solver made of the border.
    alpha = cut.alpha * inside
    image = framed
    background = None
    if not keep:
        retouched = retouch.beautify(image, face_out.mesh, options.smoothing, options.whitening)
        # The retouch changes skin only; its change is added to the person's solved colour.
        foreground = cut.foreground
        if retouched is not image:
            foreground = foreground + (retouched.astype(np.float32) - image.astype(np.float32))
        background = _background(options, spec_backgrounds, size)
        image = matte.composite(foreground, alpha, background)
    garment = None
    if options.outfit_id:
        if wear is None or wear.garment.id != options.outfit_id:
            raise KeyError(options.outfit_id)
        # The collar is found on the framed photo as taken (before a new background or retouch).
        image, fitted = outfits.dress(image, alpha, wear.garment, face_out, wear.body.transformed(placement.affine), framed)
        garment = fitted.alpha
    # The person as the segmentation saw them, and whatever the matte solved firmly beyond it (a hat's brim).
    silhouette = (cut.person & inside) | (alpha >= 0.5)
    return Composed(image, alpha, placement, face_out, from_matte, background, silhouette, cut.others_removed, garment)


def _inside(src_shape: tuple[int, ...], affine: npt.NDArray[np.float64], size: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """The output pixels whose every source sample lies inside the source (`affine`: source to output).

    When the output's corners map at least a pixel inside the source, all of it does (the map
    is affine): no warp of a plane of ones is needed.
    """
    w, h = size
    back = cv2.invertAffineTransform(affine)
    corners = np.array([[0.0, 0.0, 1.0], [w - 1.0, 0.0, 1.0], [0.0, h - 1.0, 1.0], [w - 1.0, h - 1.0, 1.0]]) @ back.T
    sh, sw = src_shape[0], src_shape[1]
    if corners[:, 0].min() >= 1.0 and corners[:, 0].max() <= sw - 2.0 and corners[:, 1].min() >= 1.0 and corners[:, 1].max() <= sh - 2.0:
        return np.ones((h, w), bool)
    valid = cv2.warpAffine(np.ones((sh, sw), np.float32), affine, size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    return np.asarray(valid > 0.99)


def border_std(image: RGB, alpha: npt.NDArray[np.float32], border_frac: float = 0.06) -> float:
    """Spread of the background along the top and side borders (people are not in it)."""
    h, w = image.shape[:2]
    b = max(2, round(min(h, w) * border_frac))
    region = np.zeros((h, w), bool)
    region[:b, :] = True
    region[: h // 2, :b] = True
    region[: h // 2, w - b :] = True
    region &= alpha < 0.05
    if np.count_nonzero(region) < 20:
        return 0.0
    # Luma of the rows that hold the borders only (the lower half is not looked at).
    top = max(b, h // 2)
    luma = image[:top].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(luma[region[:top]].std())
