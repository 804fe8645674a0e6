"""Hairstyle change: a drawn hair material (hair_styles.py) placed on a face by its landmarks.

Materials live in a canonical head frame: the origin is the midpoint of the eye centres, x
runs along the eye line towards the subject's left eye, y runs down, and the unit is the
inter-ocular distance (IOD).

On a photo, the material is scaled and rotated from the eye line (IOD and angle) and the
forehead height; the person's own hair where the new hair does not cover it is replaced by
a background estimate, and the face inside the mesh's face oval is never painted over
(except under a fringe, above the brows).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL, FOREHEAD_TOP, LEFT_EYE, LEFT_IRIS_CENTER, RIGHT_EYE, RIGHT_IRIS_CENTER, SURFACE_POINTS
from likeness_render.domain.hair_styles import (
    F32,
    HAIRSTYLES,
    HairMaterial,
    HairStyle,
    HairstyleNotFound,
    hair_material,
    hairstyles,
)

__all__ = [
    "HAIRSTYLES",
    "HairError",
    "HairMaterial",
    "HairResult",
    "HairStyle",
    "HairstyleNotFound",
    "HatPresent",
    "canonical_to_image",
    "change_hairstyle",
    "hair_material",
    "hairstyles",
    "restyle_hair",
    "wears_hat",
]

RgbImage = npt.NDArray[np.uint8]

# Where mesh point 10 (top of the face oval) sits, in IOD below (negative: above) the eyes.
CANONICAL_FOREHEAD = -0.70
# The forehead height sets the vertical scale, but a squinting mesh or a fringe-pushed
# landmark must not squash or stretch the hair: its ratio to the IOD is kept in this band.
VERTICAL_SCALE_BAND = (0.85, 1.2)

# Below this canonical line (just above the brows) the face oval is never painted over.
FACE_LINE = -0.45

# The layers of a hairstyle change are computed at about this many pixels between the eyes
# (the material is drawn at hair_styles.PX_PER_IOD) and only blended at the photo's full size.
WORK_PX_PER_IOD = 110.0
# Canonical box where the subject's own hair is looked for (and removed where uncovered).
HEAD_ZONE_BOX = (-2.1, -3.0, 2.1, 1.35)
# Where an ear may be (kept when skin-coloured and joined to the face): an ellipse centred
# EAR_OUT outside mesh point 234 / 454 (the face's edge at the tragus) and EAR_DOWN below it,
# with these half-axes (canonical units). Tall enough for the lobe: Grace Hopper's ears run
# from about 0.3 above to 0.75 below those points, and her lobes were erased with 0.15 / 0.4.
EAR_OUT = 0.14
EAR_DOWN = 0.22
EAR_HALF_WIDTH = 0.3
EAR_HALF_HEIGHT = 0.55
# New hair over a kept ear thinner than this (coverage) is thinned out further (thin_over_ears).
EAR_THIN = 0.5


class HairError(ValueError):
    """The inputs cannot take a hairstyle; the message says which one and why."""


class HatPresent(HairError):
    """The subject wears a hat: a new hairstyle would have to erase it, so none is made."""


class HairResult(NamedTuple):
    image: RgbImage
    coverage: npt.NDArray[np.float32]  # (H, W) 0..1: where the new hair lies


# Hat check (``wears_hat``), in the canonical frame at this many px per IOD: a hat's brim
# crosses the forehead as one continuous, smooth edge (in at least HAT_EDGE_SHARE of the
# columns, within HAT_EDGE_RESIDUAL IOD of a parabola) with even fabric above it (median
# fine-detail amplitude under HAT_TEXTURE L* units); a hairline is ragged and hair is
# strand-textured. Measured: Grace Hopper's cap 1.00 / 0.016 / 0.6; Eileen Collins' hair
# 0.91 / 0.05 / 2.2 (0.77 / 0.09 at 1024 px).
HAT_PPI = 40
HAT_EDGE_SHARE = 0.95
HAT_EDGE_RESIDUAL = 0.03
HAT_TEXTURE = 1.2
# A blunt dark fringe has the same smooth edge and even colour, but it is hair that goes on
# down beside the face: when at least HAT_SIDE_SHARE of the pixels beside one temple (canonical
# |x| 1.05..1.35, from 0.3 IOD above the eye line to the eye line) are within 15 Lab units of
# the colour above the edge, it is a fringe, not a brim. Measured: Hopper's cap 0.12-0.29 (also
# darkened); the black bob on Collins 1.0 (0.35 on the other side), brunette bob 0.51-0.91.
HAT_SIDE_SHARE = 0.45
# ...unless what lies above the edge is much smoother than the same-coloured hair beside the
# temple: a dark hat on dark hair has both the brim's edge and hair of its colour at the sides,
# but felt or cotton lacks the strands' fine detail. The ratio of the above-edge texture to the
# side hair's (on the side with the larger share, over its pixels of the above colour):
# measured 0.96-1.48 for the fringes that reach this test (the photographed bobs and curls on
# Collins, her own hair dyed black; also darkened to 0.6); a drawn black hat on that black
# hair 0.18-0.55 with fabric detail of 0 to 3 L* units, 0.7 at 4 (a hat with hair-like detail,
# a coarse knit, is not told apart).
HAT_SIDE_TEXTURE_RATIO = 0.6
# With the person's matte at hand (an ID photo's compliance check), what lies above the edge must
# be the person in at least this share: a hat is worn, a bald head's edge has the background above.
# Measured on US passport photos: Hopper's cap 1.0 (whole and cropped); a bald scalp drawn over
# Collins' hair 0.0 (without this test it reads as a hat: edge share 1.0, residual 0.008, texture 0).
HAT_PERSON_SHARE = 0.5


def change_hairstyle(
    image_rgb: RgbImage,
    mesh: npt.NDArray[np.floating],
    person_mask: npt.NDArray[np.floating] | npt.NDArray[np.uint8] | npt.NDArray[np.bool_],
    hairstyle_id: str,
) -> RgbImage:
    """``image_rgb`` with its subject's hair replaced by the material ``hairstyle_id``.

    ``mesh``: the subject's (478, 2|3) MediaPipe mesh in image pixels; ``person_mask``:
    (H, W) person matte, float 0..1, uint8 0..255 or bool. HatPresent when the subject
    wears a hat (it is not erased).
    """
    return restyle_hair(image_rgb, mesh, person_mask, hairstyle_id).image


def restyle_hair(
    image_rgb: RgbImage,
    mesh: npt.NDArray[np.floating],
    person_mask: npt.NDArray[np.floating] | npt.NDArray[np.uint8] | npt.NDArray[np.bool_],
    hairstyle_id: str,
) -> HairResult:
    """``change_hairstyle``, and where the new hair lies."""
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise HairError(f"image must be (H, W, 3) uint8 RGB, got {image_rgb.dtype} {image_rgb.shape}")
    h, w = image_rgb.shape[:2]
    pts = np.asarray(mesh, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < SURFACE_POINTS or pts.shape[1] not in (2, 3) or not np.isfinite(pts[:, :2]).all():
        raise HairError(f"mesh must be a finite (478, 2) or (478, 3) array, got {pts.shape}")
    pts = pts[:, :2]
    raw_mask = np.asarray(person_mask)
    if raw_mask.ndim == 3 and raw_mask.shape[2] == 1:
        raw_mask = raw_mask[..., 0]
    if raw_mask.shape != (h, w):
        raise HairError(f"person mask is {raw_mask.shape}, the image {(h, w)}")
    material = hair_material(hairstyle_id)

    to_image = canonical_to_image(pts)
    if wears_hat(image_rgb, to_image, raw_mask):
        raise HatPresent("the photo shows a hat: a new hairstyle would erase it; use a photo without one")
    roi = _footprint(material, to_image, w, h, extra=HEAD_ZONE_BOX)
    x0, y0, x1, y1 = roi
    rw, rh = x1 - x0, y1 - y0
    img = image_rgb[y0:y1, x0:x1]
    person_roi = _as_unit_mask(raw_mask[y0:y1, x0:x1])

    # A 12 MP selfie puts 400 px between the eyes; the material has 96. The layers are
    # worked out at about the material's scale and only the final blend runs at full size.
    scale = min(1.0, WORK_PX_PER_IOD / _iod(pts))
    ww, wh = max(8, round(rw * scale)), max(8, round(rh * scale))
    sx, sy = ww / rw, wh / rh
    to_work = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])
    work_img, work_person = img, person_roi
    if scale < 1.0:
        work_img = np.asarray(cv2.resize(img, (ww, wh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        work_person = np.asarray(cv2.resize(person_roi, (ww, wh), interpolation=cv2.INTER_AREA), dtype=np.float32)
    local = pts @ to_work[:, :2].T + to_work[:, 2]
    to_local = np.vstack([to_work, [0.0, 0.0, 1.0]]) @ np.vstack([to_image, [0.0, 0.0, 1.0]])
    layers = _layers(material, work_img, work_person, local, to_local[:2])

    if scale < 1.0:
        layers = _Layers(*(np.asarray(cv2.resize(x, (rw, rh), interpolation=cv2.INTER_LINEAR), dtype=np.float32) for x in layers))
    alpha, hair_rgb, erase, plate, shadow = layers
    # In place, in float32: at 12 MP this blend is most of the cost.
    e3 = erase[..., None]
    clean = img.astype(np.float32)
    clean -= (clean - plate) * e3
    clean *= (1.0 - 0.3 * shadow)[..., None]
    clean += (hair_rgb - clean) * alpha[..., None]
    out = image_rgb.copy()
    # convertScaleAbs rounds and saturates to uint8 (values are never negative here).
    out[y0:y1, x0:x1] = cv2.convertScaleAbs(clean)
    coverage = np.zeros((h, w), np.float32)
    coverage[y0:y1, x0:x1] = alpha
    return HairResult(out, coverage)


def wears_hat(image_rgb: RgbImage, to_image: npt.NDArray[np.float64], person: npt.NDArray[np.generic] | None = None) -> bool:
    """Whether a hat sits where the hairline would be (see HAT_* for the measure).

    ``person``: the subject's matte in the image's pixels (0..1 float, 0..255 uint8 or bool), when
    known. What lies above the edge must then be the person (HAT_PERSON_SHARE): a bald or shaved
    head against a plain wall has the same smooth edge with even colour above it, but that colour
    is the background.
    """
    scan = _hat_scan(image_rgb, to_image)
    m = scan.measures
    if m is None or m[0] < HAT_EDGE_SHARE or m[1] >= HAT_EDGE_RESIDUAL or m[2] >= HAT_TEXTURE:
        return False
    if not (m[3] < HAT_SIDE_SHARE or m[2] < HAT_SIDE_TEXTURE_RATIO * m[4]):
        return False
    if person is None:
        return True
    assert scan.band is not None  # there is a band whenever the measures pass
    # The matte over the band above the edge (read only for a photo the measures already call a hat).
    return float(_hat_crop(_as_unit_mask(np.asarray(person)), to_image)[scan.band].mean()) >= HAT_PERSON_SHARE


def hat_measures(image_rgb: RgbImage, to_image: npt.NDArray[np.float64]) -> tuple[float, float, float, float, float] | None:
    """(edge share, edge residual in IOD, texture in L* units, side share, side texture in L*
    units) of the edge above the forehead (see HAT_*); None when there is no band above the
    edge to measure."""
    return _hat_scan(image_rgb, to_image).measures


class _HatScan(NamedTuple):
    measures: tuple[float, float, float, float, float] | None
    band: tuple[slice, slice] | None  # the band above the edge, in the canonical crop (rows, columns)


def _hat_crop(image: npt.NDArray[Any], to_image: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    """The canonical head window x -1.6..1.6, y -1.9..0.1 at HAT_PPI pixels per IOD."""
    ppi = HAT_PPI
    w, h = int(3.2 * ppi), int(2.0 * ppi)
    canon = np.array([[1.0 / ppi, 0.0, -1.6], [0.0, 1.0 / ppi, -1.9], [0.0, 0.0, 1.0]])
    return np.asarray(
        cv2.warpAffine(image, to_image @ canon, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    )


def _hat_scan(image_rgb: RgbImage, to_image: npt.NDArray[np.float64]) -> _HatScan:
    ppi = HAT_PPI
    crop = _hat_crop(image_rgb, to_image)
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    fy = int((1.9 - 0.45) * ppi)  # mid-forehead
    xs = range(int(0.9 * ppi), int(2.3 * ppi))  # canonical x -0.7..0.7
    skin = np.median(lab[fy - 3 : fy + 3, xs.start : xs.stop].reshape(-1, 3), axis=0)
    far = np.linalg.norm(lab - skin, axis=2) > 20.0
    edge = np.full(len(xs), np.nan)
    for i, x in enumerate(xs):
        up = far[:fy, x][::-1]
        run = np.nonzero(np.convolve(up, np.ones(3), "valid") == 3)[0]
        if len(run):
            edge[i] = fy - run[0]
    found = ~np.isnan(edge)
    if found.sum() < 3:
        return _HatScan((float(found.mean()), float("inf"), float("inf"), 0.0, 0.0), None)
    t = np.arange(len(xs))
    residual = float(np.std(edge[found] - np.polyval(np.polyfit(t[found], edge[found], 2), t[found]))) / ppi
    top = int(np.nanmedian(edge))
    band = (slice(max(0, top - int(0.4 * ppi)), max(1, top - int(0.1 * ppi))), slice(xs.start, xs.stop))
    if lab[band].size == 0:
        return _HatScan(None, None)
    texture = _detail(lab[band][..., 0])
    above = np.median(lab[band].reshape(-1, 3), axis=0)
    sides = []
    for xa, xb in ((0.25, 0.55), (2.65, 2.95)):  # canonical x -1.35..-1.05 and 1.05..1.35
        rows, cols = slice(int(1.6 * ppi), int(2.0 * ppi)), slice(int(xa * ppi), int(xb * ppi))
        like = np.linalg.norm(lab[rows, cols] - above, axis=2) < 15.0
        side_texture = _detail(lab[rows, cols, 0], like) if like.sum() >= 8 else 0.0
        sides.append((float(like.mean()), side_texture))
    share, side_texture = max(sides)
    return _HatScan((float(found.mean()), residual, texture, share, side_texture), band)


def _detail(lum: npt.NDArray[np.generic], where: npt.NDArray[np.bool_] | None = None) -> float:
    """Median fine-detail amplitude of a lightness patch (over ``where`` when given)."""
    f = np.asarray(lum, np.float32)
    d = np.abs(f - cv2.GaussianBlur(f, (0, 0), 1.5))
    return float(np.median(d if where is None else d[where]))


class _Layers(NamedTuple):
    alpha: F32  # new hair coverage
    hair_rgb: F32  # new hair colour, 0..255
    erase: F32  # where the subject's own hair gives way to the background
    plate: F32  # the background estimate, 0..255
    shadow: F32  # contact shadow of the new hair on the forehead


def _layers(
    material: HairMaterial, img: RgbImage, person_roi: F32, local: npt.NDArray[np.float64], to_local: npt.NDArray[np.float64]
) -> _Layers:
    """Everything but the final blend, in the working frame ``img`` (``local``: the mesh in
    it; ``to_local``: canonical units to its pixels)."""
    rh, rw = img.shape[:2]
    src_affine = to_local @ _canvas_to_canonical(material)
    hair = np.asarray(
        cv2.warpAffine(material.rgba, src_affine, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0),
        dtype=np.float32,
    )
    alpha = np.clip(hair[..., 3], 0.0, 1.0)

    cx, cy = _canonical_coords(to_local, (0, 0, rw, rh))
    oval = np.zeros((rh, rw), np.uint8)
    cv2.fillPoly(oval, [np.round(local[list(FACE_OVAL)]).astype(np.int32)], 255)
    oval_f = oval.astype(np.float32) / 255.0
    skin = _skin_probability(img, local)

    # The face stays the subject's own. Below the brows the material is cut along the face
    # oval; on the forehead it is cut where the skin shows, so it covers the subject's own
    # fringe but not a bare forehead. A fringe style hangs over the forehead regardless.
    # Only not-skin reached from the top of the oval without crossing skin is hair: a pale
    # wrinkle or a shadow mid-forehead is no fringe. Columns approximate "down", which
    # holds for the roll a portrait has.
    passable = (skin < 0.5) | (oval == 0)
    from_top = np.logical_and.accumulate(passable, axis=0) if abs(_roll_deg(local)) < 45 else passable
    hair_on_forehead = cv2.GaussianBlur(from_top.astype(np.float32), (0, 0), 0.8)
    protect = np.maximum(oval_f * (cy > FACE_LINE), oval_f * (cy <= FACE_LINE) * (1.0 - hair_on_forehead))
    if material.style.fringe_to is not None:
        protect *= cy > material.style.fringe_to
    protect = cv2.GaussianBlur(protect.astype(np.float32), (0, 0), 0.8) * oval_f
    alpha = (alpha * (1.0 - protect)).astype(np.float32)

    hair_rgb = _grade_to_scene(hair[..., :3], img, local)

    # The subject's own hair: the person outside the face oval, in the head zone (above the
    # mouth, and beside the face down to the jaw), except skin-coloured ears. Hair hanging
    # lower stays: below the jaw a collar or a shoulder is likelier than hair.
    head_zone = ((cy < 0.9) | ((np.abs(cx) > 0.85) & (cy < HEAD_ZONE_BOX[3]))) & (np.abs(cx) < HEAD_ZONE_BOX[2]) & (cy > HEAD_ZONE_BOX[1])
    oval_grown = cv2.dilate(oval, np.ones((3, 3), np.uint8)) > 0
    # The ears: an ellipse beside each side of the face at ear height (EAR_*: an ear runs from
    # about the eye line to below the nose's base; above that, beside the temple, it is hair).
    # Anything there close to the subject's own cheek colour is ear, kept (a loose threshold:
    # an ear in shadow is darker than the cheek). Below the ears, beside the jaw, clearly
    # skin-coloured pixels are the neck behind the jaw line, kept too.
    to_canon = cv2.invertAffineTransform(to_local)
    ears = np.zeros((rh, rw), bool)
    for idx, side in ((234, -1.0), (454, 1.0)):
        ex, ey = to_canon[:, :2] @ local[idx] + to_canon[:, 2]
        ears |= (((cx - (ex + side * EAR_OUT)) / EAR_HALF_WIDTH) ** 2 + ((cy - (ey + EAR_DOWN)) / EAR_HALF_HEIGHT) ** 2) < 1.0
    neck = (np.abs(cx) > 0.6) & (cy > 0.3) & (cy < HEAD_ZONE_BOX[3]) & (skin > 0.5)
    keep = (ears & (skin > 0.25)) | neck
    # An ear joins the head: skin-like patches there that do not touch the face oval are a
    # tuft of old hair near the skin's colour, not an ear.
    count, labels = cv2.connectedComponents((keep | oval_grown).astype(np.uint8), connectivity=8)
    attached = np.zeros(count, bool)
    attached[np.unique(labels[oval_grown])] = True
    attached[0] = False
    ear_skin = cv2.dilate((attached[labels] & keep).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    alpha = thin_over_ears(alpha, ear_skin)
    own_hair = (person_roi > 0.5) & head_zone & ~oval_grown & ~ear_skin
    # The matte's edge and hair wisps a few pixels out go too, or a halo stays.
    grow = max(1, round(0.04 * _iod(local)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    uncovered = (cv2.dilate(own_hair.astype(np.uint8), kernel) > 0) & ~oval_grown & ~ear_skin

    # The fill must come from the background only: the whole person (face included) is
    # treated as unknown, so no skin colour bleeds into where hair was.
    unknown = (person_roi > 0.25) | uncovered
    plate = _background_fill(img, unknown)
    erase = cv2.GaussianBlur(uncovered.astype(np.float32), (0, 0), 1.0)
    # The blur's soft edge must not reach into the face or an ear: they are kept whole.
    erase = np.where(oval_grown | ear_skin, 0.0, erase).astype(np.float32)

    # A soft contact shadow where the hair meets the forehead sells the layering.
    shadow = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.05 * _iod(local))) * (1.0 - alpha) * protect * (cy < FACE_LINE)
    return _Layers(
        alpha, hair_rgb.astype(np.float32), np.asarray(erase, np.float32), plate.astype(np.float32), np.asarray(shadow, np.float32)
    )


def thin_over_ears(alpha: F32, ears: npt.NDArray[np.bool_]) -> F32:
    """New hair's coverage with its see-through ends thinned over kept ears: coverage under
    EAR_THIN fades to none at half of it (the ear mask feathered by a pixel), so strands too
    sparse to cover an ear do not draw dark lines across it; denser hair is left as it is."""
    thin = np.clip((alpha - EAR_THIN / 2) / (EAR_THIN / 2), 0.0, 1.0)
    soft = cv2.GaussianBlur(ears.astype(np.float32), (0, 0), 1.0)
    return np.where(alpha < EAR_THIN, alpha * (1.0 - soft * (1.0 - thin)), alpha).astype(np.float32)


def canonical_to_image(mesh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """2x3 affine from canonical head units to image pixels: the eye line gives the x axis
    and its scale, the forehead height (to mesh point 10) the y scale."""
    right, left = _eye_centre(mesh, RIGHT_EYE, RIGHT_IRIS_CENTER), _eye_centre(mesh, LEFT_EYE, LEFT_IRIS_CENTER)
    centre = (right + left) / 2.0
    iod = float(np.linalg.norm(left - right))
    if iod < 4.0:
        raise HairError(f"eyes are {iod:.1f} px apart: the face is too small for a hairstyle")
    ex = (left - right) / iod
    ey = np.array([-ex[1], ex[0]])
    forehead = float((mesh[FOREHEAD_TOP] - centre) @ ey)
    sy = np.clip(forehead / CANONICAL_FOREHEAD, VERTICAL_SCALE_BAND[0] * iod, VERTICAL_SCALE_BAND[1] * iod)
    return np.column_stack([ex * iod, ey * sy, centre])


# --- placement helpers ---------------------------------------------------------------------


def _canvas_to_canonical(material: HairMaterial) -> npt.NDArray[np.float64]:
    """3x3 homogeneous map from material pixels to canonical units."""
    s = 1.0 / material.px_per_iod
    ox, oy = material.origin
    return np.array([[s, 0.0, -ox * s], [0.0, s, -oy * s], [0.0, 0.0, 1.0]])


def _footprint(
    material: HairMaterial, to_image: npt.NDArray[np.float64], w: int, h: int, extra: tuple[float, float, float, float]
) -> tuple[int, int, int, int]:
    """Image rectangle under the material's drawn (non-transparent) part and the canonical
    box ``extra`` (x0, y0, x1, y1)."""
    ys, xs = np.nonzero(material.rgba[..., 3] > 0.003)
    corners = np.array(
        [[xs.min(), ys.min(), 1], [xs.max() + 1, ys.min(), 1], [xs.min(), ys.max() + 1, 1], [xs.max() + 1, ys.max() + 1, 1]], float
    )
    canon = corners @ _canvas_to_canonical(material).T
    ex0, ey0, ex1, ey1 = extra
    box = np.array([[ex0, ey0], [ex1, ey0], [ex0, ey1], [ex1, ey1]])
    canon_pts = np.vstack([canon[:, :2], box])
    img_pts = canon_pts @ to_image[:, :2].T + to_image[:, 2]
    x0, y0 = np.floor(img_pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(img_pts.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise HairError("the face is outside the image")
    return x0, y0, x1, y1


def _canonical_coords(to_image: npt.NDArray[np.float64], roi: tuple[int, int, int, int]) -> tuple[F32, F32]:
    x0, y0, x1, y1 = roi
    inv = cv2.invertAffineTransform(to_image)
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    cx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    cy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    return cx.astype(np.float32), cy.astype(np.float32)


def _eye_centre(mesh: npt.NDArray[np.float64], contour: tuple[int, ...], iris: int) -> npt.NDArray[np.float64]:
    if mesh.shape[0] > iris:
        return mesh[iris]
    return mesh[list(contour)].mean(axis=0)


def _roll_deg(mesh: npt.NDArray[np.float64]) -> float:
    d = _eye_centre(mesh, LEFT_EYE, LEFT_IRIS_CENTER) - _eye_centre(mesh, RIGHT_EYE, RIGHT_IRIS_CENTER)
    return math.degrees(math.atan2(float(d[1]), float(d[0])))


def _iod(mesh: npt.NDArray[np.float64]) -> float:
    return float(np.linalg.norm(_eye_centre(mesh, LEFT_EYE, LEFT_IRIS_CENTER) - _eye_centre(mesh, RIGHT_EYE, RIGHT_IRIS_CENTER)))


def _as_unit_mask(m: npt.NDArray[np.generic]) -> F32:
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    return np.clip(m.astype(np.float32), 0.0, 1.0)


def _skin_stats(img: RgbImage, local: npt.NDArray[np.float64]) -> tuple[F32, F32]:
    """Lab centre and spread of the cheeks (under the eyes, beside the nose), robust: median
    and scaled MAD, so a glasses rim or a wrinkle in the patch does not widen "skin"."""
    mask = np.zeros(img.shape[:2], np.uint8)
    for poly in ((116, 117, 118, 100, 126, 142, 203, 206, 207, 187, 123), (345, 346, 347, 329, 355, 371, 423, 426, 427, 411, 352)):
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(local[list(poly)]).astype(np.int32)), 1)
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    vals = lab[mask > 0]
    if len(vals) < 8:
        vals = lab.reshape(-1, 3)
    med = np.median(vals, axis=0)
    mad = np.median(np.abs(vals - med), axis=0) * 1.4826
    return med.astype(np.float32), mad.astype(np.float32)


def _skin_probability(img: RgbImage, local: npt.NDArray[np.float64]) -> F32:
    """0..1 per pixel: how much it looks like the subject's cheeks in Lab (soft, cleaned of
    speckle), so hair, hats and background read as not-skin."""
    mu, sd = _skin_stats(img, local)
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    # Shading moves lightness far more than hue: a forehead in a brim's shadow is still
    # skin, so L counts at half weight. Floors on the spread: a very even cheek must not
    # make every shadow "not skin".
    d = (np.abs(lab - mu) / (np.maximum(sd, [8.0, 3.0, 3.0]) * [2.0, 1.0, 1.0])).max(axis=2)
    p = (np.clip(3.0 - d, 0.0, 1.0) * 255.0).astype(np.uint8)  # morphology is far faster on bytes
    iod = _iod(local)
    small = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.06 * iod) | 1),) * 2)
    # Freckles, age spots and a brow hair or two are skin too: holes up to about a sixth
    # of the IOD are closed.
    large = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.16 * iod) | 1),) * 2)
    p = cv2.morphologyEx(cv2.morphologyEx(p, cv2.MORPH_OPEN, small), cv2.MORPH_CLOSE, large)
    return np.asarray(cv2.GaussianBlur(p.astype(np.float32) / 255.0, (0, 0), max(0.8, 0.02 * iod)), dtype=np.float32)


def _grade_to_scene(hair_rgb: F32, img: RgbImage, local: npt.NDArray[np.float64]) -> F32:
    """Material colours (0..1) brought into the photo's grade: a mono or sepia photo gets
    hair with as little chroma as its skin has, a dim photo darker hair."""
    mu, _ = _skin_stats(img, local)
    lab = np.asarray(cv2.cvtColor(np.ascontiguousarray(hair_rgb, dtype=np.float32), cv2.COLOR_RGB2Lab), dtype=np.float32)
    # Typical well-exposed skin: L 65, chroma about 20.
    chroma = float(np.hypot(mu[1], mu[2]))
    lab[..., 1:] *= np.clip(chroma / 20.0, 0.0, 1.1)
    if chroma < 8.0:
        # A toned monochrome keeps its tone: shift the hair's hue onto the skin's.
        lab[..., 1:] += mu[1:] * 0.6
    lab[..., 0] *= np.clip(mu[0] / 65.0, 0.6, 1.25)
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0


def _background_fill(img: RgbImage, unknown: npt.NDArray[np.bool_]) -> F32:
    """Background estimate under ``unknown``: push-pull normalised convolution (averages of
    known pixels, coarse to fine), plus grain matched to the known background."""
    f = img.astype(np.float32)
    known = (~unknown).astype(np.float32)
    if known.sum() < 16:
        return f  # nothing known to fill from: keep the image
    levels: list[tuple[F32, F32]] = [(f * known[..., None], known)]
    while min(levels[-1][1].shape) > 4:
        c, k = levels[-1]
        levels.append((np.asarray(cv2.pyrDown(c), np.float32), np.asarray(cv2.pyrDown(k), np.float32)))
    c, k = levels[-1]
    fill = c / np.maximum(k, 1e-6)[..., None]
    for c, k in reversed(levels[:-1]):
        up = cv2.pyrUp(fill, dstsize=(k.shape[1], k.shape[0]))
        # Where this level has enough known support use its own average, else the coarser one.
        own = c / np.maximum(k, 1e-6)[..., None]
        wgt = np.clip(k * 4.0, 0.0, 1.0)[..., None]
        fill = own * wgt + up * (1.0 - wgt)
    noise_sd = _grain(f, known > 0.5)
    rng = np.random.default_rng(5)
    fill += cv2.GaussianBlur(rng.normal(0.0, 1.0, f.shape[:2]).astype(np.float32), (0, 0), 0.7)[..., None] * noise_sd * 1.6
    return np.asarray(fill, dtype=np.float32)


def _grain(f: F32, known: npt.NDArray[np.bool_]) -> float:
    hp = f - cv2.GaussianBlur(f, (0, 0), 2.0)
    vals = hp[known]
    if len(vals) < 16:
        return 0.0
    # The median absolute deviation ignores edges in the background that are not grain.
    return float(np.median(np.abs(vals)) * 1.4826)
