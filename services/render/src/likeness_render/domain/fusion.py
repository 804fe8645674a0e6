"""Face fusion: put a user's face into a template's face by the 478-point MediaPipe mesh.

Per template face: the user's mesh is aligned to the template's by a similarity transform;
the target geometry is a blend of the two (``geometry_weight(strength)``); the template's
head is reshaped to that geometry (a piecewise-affine "liquify" that fades out on a ring
around the face, so no second jaw line shows) and the user's face is warped onto it
triangle by triangle. Identity is kept: the face keeps the user's own skin tone and the
template's visible skin around it (forehead edge, ears, neck, hands) is recoloured towards
the user's, not the reverse (a grey or sepia print is the exception: there the face takes the
print's tone). Accessories on the template's face (glasses, strands over the eyes and
cheeks: neither skin nor a facial feature) are masked out so they cannot ghost through. The
face goes in with a Laplacian-pyramid (multi-band) blend under a feathered face-oval mask,
at the template's full resolution.

Coordinates are pixels, x right, y down; meshes are (478, 2) or (478, 3) (z is ignored).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_BROW, LEFT_EYE, LIPS, NOSTRILS, RIGHT_BROW, RIGHT_EYE, SURFACE_POINTS

RgbImage = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float64]

ALL_FACES = -1
# Iris points (468..477) sit inside the eye contour a few pixels from the lids: leaving them
# out of the triangulation avoids needle triangles that fold at the slightest pose change.
WARP_POINTS = SURFACE_POINTS
# A ring of fixed points this far out from the face-oval centre (as a multiple of the oval's
# radius in that direction) is where the reshaping of the template's head fades to nothing.
RING_SCALE = 1.6
RING_POINTS = 24
# The blend mask is the face oval pulled towards its centre: the outermost mesh ring runs
# along the hairline and jaw edge, where hair and background would come along with the
# user's face.
MASK_SHRINK = 0.9
# The user's face is resampled only from a crop around its mesh: a 12 MP upload then costs
# the same as a 512 px one.
CROP_MARGIN = 0.35
PYRAMID_LEVELS = 5
# Skin colour model: a pixel is skin within about this many robust spreads of the face's
# median skin colour; a template whose skin chroma spreads less than this (Lab units) is
# a grey or toned print.
SKIN_SIGMA = 2.5
MONO_CHROMA_SPREAD = 2.0
_TRIANGULATION_CACHE_SIZE = 64


class FusionError(ValueError):
    """The inputs cannot be fused; the message says which one and why."""


@dataclass(frozen=True)
class _Roi:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


class Fused(NamedTuple):
    """A fused template, and per fused template face the blend mask (float 0..1, template
    size) that took the user's face in."""

    image: RgbImage
    masks: dict[int, npt.NDArray[np.float32]]


def fuse(
    template_rgb: RgbImage,
    template_faces: Sequence[npt.NDArray[np.floating]],
    users: Sequence[tuple[RgbImage, npt.NDArray[np.floating]]],
    strength: int,
    face_index: int = ALL_FACES,
    person_alpha: npt.NDArray[np.floating] | None = None,
    restore: Callable[[RgbImage], RgbImage] | None = None,
) -> Fused:
    """Template with user faces fused in, and the blend masks that took them in.

    ``face_index`` = ``ALL_FACES``: template face i gets ``users[i]`` (faces beyond the
    number of users stay as they are). ``face_index`` = k >= 0: template face k gets
    ``users[0]``. ``strength`` 0..100: 0 is the template's face, 100 the user's geometry
    and features, skin tone included. ``person_alpha``: the template material's person
    matte (H, W), 0..1; when given, only skin on the person is recoloured. ``restore``: a
    learned face-restoration backend (a square RGB face crop in, the same size out), run on
    each fused face and blended back under its mask by the appearance weight; None: the
    classical pipeline alone.
    """
    _check_image(template_rgb, "template image")
    if not 0 <= strength <= 100:
        raise FusionError(f"strength must be 0..100, got {strength}")
    if not template_faces:
        raise FusionError("the template has no face to fuse into")
    if not users:
        raise FusionError("no user face given")
    if face_index == ALL_FACES:
        pairs = list(zip(range(len(template_faces)), users, strict=False))
    elif 0 <= face_index < len(template_faces):
        pairs = [(face_index, users[0])]
    else:
        raise FusionError(f"face_index {face_index} is out of range: the template has {len(template_faces)} face(s)")

    if person_alpha is not None and np.shape(person_alpha) != template_rgb.shape[:2]:
        raise FusionError(f"person matte is {np.shape(person_alpha)}, the template {template_rgb.shape[:2]}")
    out = template_rgb.copy()
    masks: dict[int, npt.NDArray[np.float32]] = {}
    for i, (user_rgb, user_mesh) in pairs:
        _check_image(user_rgb, f"user image {i}")
        t_mesh = _mesh_2d(template_faces[i], f"template face {i}")
        u_mesh = _mesh_2d(user_mesh, f"user face {i}")
        out, masks[i] = _fuse_one(out, t_mesh, user_rgb, u_mesh, strength / 100.0, person_alpha)
        if restore is not None and strength > 0:
            out = _restored(out, masks[i], restore, appearance_weight(strength / 100.0))
    return Fused(out, masks)


def similarity_transform(src: FloatArray, dst: FloatArray) -> FloatArray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` to ``dst``
    (Umeyama, reflections excluded)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1.0
    rot = u @ fix @ vt
    var = (s0**2).sum() / len(src)
    scale = float((sig * np.diag(fix)).sum() / var) if var > 0 else 1.0
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def apply_affine(points: FloatArray, affine: FloatArray) -> FloatArray:
    return points @ affine[:, :2].T + affine[:, 2]


def delaunay(points: FloatArray) -> npt.NDArray[np.int32]:
    """Delaunay triangles over ``points`` as (n, 3) vertex indices; cached by the points, so a
    template's triangulation is computed once."""
    key = np.ascontiguousarray(points, dtype=np.float32).tobytes()
    cached = _triangulation_cache.get(key)
    if cached is not None:
        _triangulation_cache.move_to_end(key)
        return cached
    tris = _delaunay(points)
    _triangulation_cache[key] = tris
    if len(_triangulation_cache) > _TRIANGULATION_CACHE_SIZE:
        _triangulation_cache.popitem(last=False)
    return tris


_triangulation_cache: OrderedDict[bytes, npt.NDArray[np.int32]] = OrderedDict()


def _delaunay(points: FloatArray) -> npt.NDArray[np.int32]:
    pts32 = np.asarray(points, dtype=np.float32)
    lo = np.floor(pts32.min(axis=0)) - 2
    hi = np.ceil(pts32.max(axis=0)) + 2
    subdiv = cv2.Subdiv2D((float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])))
    # Subdiv2D keeps float32 coordinates and merges duplicates: looking vertices up by their
    # exact float32 value maps each triangle corner back to a point index.
    index: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(pts32):
        key = (float(x), float(y))
        if key in index:
            continue
        index[key] = i
        subdiv.insert(key)
    tris = []
    for x1, y1, x2, y2, x3, y3 in subdiv.getTriangleList():
        corners = [index.get((float(x1), float(y1))), index.get((float(x2), float(y2))), index.get((float(x3), float(y3)))]
        if None in corners:
            continue  # a triangle on Subdiv2D's virtual outer vertices
        tris.append(corners)
    return np.asarray(tris, dtype=np.int32).reshape(-1, 3)


def geometry_weight(s: float) -> float:
    """How far the face's shape moves from the template's to the user's at strength ``s`` (0..1)."""
    return 1.0 - (1.0 - s) ** 2


def appearance_weight(s: float) -> float:
    """How much of the face's texture is the user's at strength ``s`` (0..1): identity lives in
    the texture as much as in the shape, so it rises fast (0.94 at the default 0.6)."""
    return 1.0 - (1.0 - s) ** 3


def _fuse_one(
    base: RgbImage,
    t_mesh: FloatArray,
    user_rgb: RgbImage,
    u_mesh: FloatArray,
    s: float,
    person_alpha: npt.NDArray[np.floating] | None = None,
) -> tuple[RgbImage, npt.NDArray[np.float32]]:
    h, w = base.shape[:2]
    g, a = geometry_weight(s), appearance_weight(s)
    t_pts = t_mesh[:WARP_POINTS]
    align = similarity_transform(u_mesh[:WARP_POINTS], t_pts)
    u_aligned = apply_affine(u_mesh[:WARP_POINTS], align)
    target = (1.0 - g) * t_pts + g * u_aligned

    ring = _ring(t_pts)
    roi = _roi(np.vstack([ring, target]), w, h)
    corners = np.array([[roi.x0, roi.y0], [roi.x1 - 1, roi.y0], [roi.x0, roi.y1 - 1], [roi.x1 - 1, roi.y1 - 1]], dtype=np.float64)
    fixed = np.vstack([ring, corners])
    # One triangulation serves both warps: it is taken on the template (stable, computed
    # once per template) and the same triangles are mapped in the target geometry.
    tris = delaunay(np.vstack([t_pts, fixed]))
    face_tris = tris[(tris < WARP_POINTS).all(axis=1)]

    src_t = np.vstack([t_pts, fixed])
    dst_all = np.vstack([target, fixed])
    crop, crop_mesh = _user_crop(user_rgb, u_mesh[:WARP_POINTS], float(np.sqrt(abs(np.linalg.det(align[:, :2])))))
    user_warped, covered = _piecewise_affine(crop, crop_mesh, target, face_tris, roi)

    local = target - [roi.x0, roi.y0]
    oval = local[list(FACE_OVAL)]
    t_local = t_pts - [roi.x0, roi.y0]
    t_stats = _skin_stats(base[roi.y0 : roi.y1, roi.x0 : roi.x1], _skin_mask(t_local, (roi.height, roi.width)))
    u_stats = _skin_stats(user_warped, _skin_mask(local, (roi.height, roi.width)) & covered)
    source = base
    if u_stats is not None and t_stats is not None and _is_monochrome(t_stats):
        # A black-and-white or toned print: the user's face takes the print's tone (a colour
        # face on a grey photograph would look pasted); lightness stays the user's own.
        user_warped = _match_lab(
            user_warped, base[roi.y0 : roi.y1, roi.x0 : roi.x1], _skin_mask(local, (roi.height, roi.width)) & covered, keep_lightness=True
        )
    elif u_stats is not None and t_stats is not None and a > 0:
        # The user's skin tone is kept; the template's visible skin (forehead edge, ears,
        # neck, hands) is recoloured towards it, so the face meets skin of its own colour.
        source = _recolour_skin(base, t_pts, t_stats, u_stats, a, person_alpha)
    # The template's head, reshaped to the target geometry (identity on the ring and beyond).
    reshaped, _ = _piecewise_affine(source, src_t, dst_all, tris, roi, identity_outside=True)
    out = source.copy()

    # Whatever on the template's face is not skin nor a facial feature (glasses, a fringe,
    # a hand) must not show through the user's face: there the user's texture is taken whole.
    accessory = _accessory_mask(reshaped, local, t_stats, covered)
    # (At strength 0 nothing of the user comes in, accessories included.)
    weight = np.maximum(a, accessory * min(1.0, 2.0 * a))[..., None]
    face = reshaped.astype(np.float32) * (1.0 - weight) + user_warped.astype(np.float32) * weight

    mask = _feathered_oval(oval, covered, (roi.height, roi.width))
    # The oval mask stops short of the face's edge; a glasses frame reaching past it is
    # taken in too, as far as the user's warped face reaches.
    inside = cv2.erode(covered.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    mask = np.maximum(mask, accessory * cv2.GaussianBlur(inside, (0, 0), 1.5) * min(1.0, 2.0 * a))
    blended = _pyramid_blend(face, reshaped.astype(np.float32), mask)
    out[roi.y0 : roi.y1, roi.x0 : roi.x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    full_mask = np.zeros(base.shape[:2], dtype=np.float32)
    full_mask[roi.y0 : roi.y1, roi.x0 : roi.x1] = mask
    return out, full_mask


class _SkinStats(NamedTuple):
    mean: npt.NDArray[np.float32]  # Lab
    spread: npt.NDArray[np.float32]  # robust standard deviation per channel


def _lab(img: RgbImage) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab), dtype=np.float32)


def _skin_stats(img: RgbImage, region: npt.NDArray[np.bool_]) -> _SkinStats | None:
    """Median and robust spread of the skin's Lab colour over ``region`` (glasses frames,
    moles and stray hair are outliers the median ignores)."""
    if int(region.sum()) < 32:
        return None
    vals = _lab(img)[region]
    med = np.median(vals, axis=0)
    mad = np.median(np.abs(vals - med), axis=0) * 1.4826
    return _SkinStats(med.astype(np.float32), np.maximum(mad, 0.5).astype(np.float32))


def _is_monochrome(stats: _SkinStats) -> bool:
    """Skin with almost no chroma spread and little chroma: a grey or sepia-toned print."""
    return float(np.hypot(stats.spread[1], stats.spread[2])) < MONO_CHROMA_SPREAD


def _skin_probability(lab: npt.NDArray[np.float32], stats: _SkinStats) -> npt.NDArray[np.float32]:
    """1 on the skin's colour, falling off with the distance in robust spreads (chroma
    weighs most: lightness varies with shading on the same skin)."""
    d = (lab - stats.mean) / np.maximum(stats.spread, [6.0, 2.5, 2.5]).astype(np.float32)
    dist2 = 0.15 * d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2
    return np.asarray(np.exp(-dist2 / (2.0 * SKIN_SIGMA**2)), dtype=np.float32)


def _recolour_skin(
    img: RgbImage,
    t_mesh: FloatArray,
    t_stats: _SkinStats,
    u_stats: _SkinStats,
    amount: float,
    person_alpha: npt.NDArray[np.floating] | None = None,
) -> RgbImage:
    """``img`` with the skin around one face (the head and what hangs below it: neck,
    ears, hands up to a face height away) moved from the template's skin colour to the
    user's, by ``amount``. Only skin connected to the face is touched: a beige backdrop of
    the same colour elsewhere stays."""
    h, w = img.shape[:2]
    oval = t_mesh[list(FACE_OVAL)]
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    fh = float(hi[1] - lo[1])
    x0, x1 = max(0, int(lo[0] - 1.2 * fh)), min(w, int(hi[0] + 1.2 * fh))
    y0, y1 = max(0, int(lo[1] - 0.6 * fh)), min(h, int(hi[1] + 2.0 * fh))
    sub = img[y0:y1, x0:x1]
    lab = _lab(sub)
    prob = _skin_probability(lab, t_stats)
    seed = np.zeros(prob.shape, np.uint8)
    cv2.fillPoly(seed, [np.round(oval - [x0, y0]).astype(np.int32)], 1)
    _, labels = cv2.connectedComponents((prob > 0.25).astype(np.uint8), connectivity=8)
    touching = np.unique(labels[(seed > 0) & (prob > 0.25)])
    keep = np.isin(labels, touching[touching > 0])
    grown = cv2.dilate(keep.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    weight = prob * grown
    if person_alpha is not None:
        weight = weight * np.asarray(person_alpha[y0:y1, x0:x1], dtype=np.float32)
    sigma = max(1.0, fh * 0.01)
    weight = cv2.GaussianBlur(weight.astype(np.float32), (0, 0), sigma) * amount
    gain = np.clip(u_stats.spread / t_stats.spread, 0.5, 2.0)
    gain[0] = np.clip(u_stats.mean[0] / max(float(t_stats.mean[0]), 1.0), 0.3, 2.0)
    moved = (lab - t_stats.mean) * gain + u_stats.mean
    out_lab = lab + (moved - lab) * weight[..., None]
    rgb = cv2.cvtColor(out_lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _accessory_mask(
    reshaped: RgbImage, pts: FloatArray, t_stats: _SkinStats | None, covered: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float32]:
    """Where the template's face shows neither its skin nor its eyes, brows, lips or
    nostrils (glasses frames and lenses, hair over the face), soft 0..1."""
    shape = reshaped.shape[:2]
    if t_stats is None:
        return np.zeros(shape, np.float32)
    face = np.zeros(shape, np.uint8)
    cv2.fillPoly(face, [np.round(pts[list(FACE_OVAL)]).astype(np.int32)], 1)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS):
        cv2.fillConvexPoly(face, cv2.convexHull(np.round(pts[list(part)]).astype(np.int32)), 0)
    # Only from the brows down: hair over the forehead is the template's hairstyle (and its
    # hairline), kept; glasses and strands over the eyes and cheeks are not.
    r_eye, l_eye = pts[list(RIGHT_EYE)].mean(axis=0), pts[list(LEFT_EYE)].mean(axis=0)
    iod = float(np.linalg.norm(l_eye - r_eye))
    along = (l_eye - r_eye) / max(iod, 1e-6)
    down = np.array([-along[1], along[0]])
    brows = pts[list(RIGHT_BROW) + list(LEFT_BROW)]
    brow_line = float(((brows - r_eye) @ down).min()) - 0.05 * iod
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    below_brows = (xx - r_eye[0]) * down[0] + (yy - r_eye[1]) * down[1] >= brow_line
    not_skin = 1.0 - _skin_probability(_lab(reshaped), t_stats)
    acc = (not_skin > 0.8) & (face > 0) & covered & below_brows
    # An accessory's soft edge and thin gaps (between frame and lens) go with it.
    r = max(1, round(iod * 0.06))
    acc_u8 = cv2.morphologyEx(acc.astype(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    acc_u8 = cv2.dilate(acc_u8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return np.asarray(cv2.GaussianBlur(acc_u8.astype(np.float32), (0, 0), max(1.0, r / 2.0)), dtype=np.float32)


def _restored(img: RgbImage, mask: npt.NDArray[np.float32], restore: Callable[[RgbImage], RgbImage], amount: float) -> RgbImage:
    """``img`` with the square crop around ``mask`` (1.5x its extent) restored by the backend
    and blended back under the mask."""
    ys, xs = np.nonzero(mask > 0.01)
    if len(xs) == 0:
        return img
    h, w = img.shape[:2]
    cx, cy = (xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0
    half = max(xs.max() - xs.min(), ys.max() - ys.min()) * 0.75 + 2
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, int(cx + half) + 1), min(h, int(cy + half) + 1)
    crop = np.ascontiguousarray(img[y0:y1, x0:x1])
    fixed = restore(crop)
    if fixed.shape != crop.shape or fixed.dtype != np.uint8:
        raise FusionError(f"the face model answered {fixed.dtype} {fixed.shape} for a crop of {crop.shape}")
    m = (mask[y0:y1, x0:x1] * amount)[..., None]
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip(crop.astype(np.float32) * (1.0 - m) + fixed.astype(np.float32) * m + 0.5, 0, 255).astype(np.uint8)
    return out


def _ring(t_pts: FloatArray) -> FloatArray:
    oval = t_pts[list(FACE_OVAL)]
    centre = oval.mean(axis=0)
    angles = np.linspace(0.0, 2.0 * math.pi, RING_POINTS, endpoint=False)
    rel = oval - centre
    oval_angles = np.arctan2(rel[:, 1], rel[:, 0])
    oval_radii = np.hypot(rel[:, 0], rel[:, 1])
    # Radius of the oval in each ring direction (nearest oval point by angle).
    diff = np.abs((angles[:, None] - oval_angles[None, :] + math.pi) % (2 * math.pi) - math.pi)
    radii = oval_radii[diff.argmin(axis=1)] * RING_SCALE
    return centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _roi(points: FloatArray, w: int, h: int) -> _Roi:
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 3
    roi = _Roi(max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1)))
    if roi.width < 8 or roi.height < 8:
        raise FusionError("the template face is too small or outside the image")
    return roi


def _user_crop(user_rgb: RgbImage, u_pts: FloatArray, scale: float) -> tuple[RgbImage, FloatArray]:
    """A crop of the user's face, resampled to the template's face size."""
    h, w = user_rgb.shape[:2]
    lo, hi = u_pts.min(axis=0), u_pts.max(axis=0)
    pad = (hi - lo) * CROP_MARGIN
    x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(hi + pad).astype(int), [w, h])
    if x1 - x0 < 8 or y1 - y0 < 8:
        raise FusionError("the user's face is too small or outside the image")
    crop = user_rgb[y0:y1, x0:x1]
    pts = u_pts - [x0, y0]
    if scale < 1.0:
        # Shrinking with area averaging: bilinear sampling of a much larger face would alias.
        nw, nh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        crop = np.asarray(cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        pts = pts * [nw / (x1 - x0), nh / (y1 - y0)]
    return np.ascontiguousarray(crop), pts


def _piecewise_affine(
    src: RgbImage,
    src_pts: FloatArray,
    dst_pts: FloatArray,
    tris: npt.NDArray[np.int32],
    roi: _Roi,
    identity_outside: bool = False,
) -> tuple[RgbImage, npt.NDArray[np.bool_]]:
    """``src`` warped so that ``src_pts`` land on ``dst_pts``, triangle by triangle, over
    ``roi`` of the destination; returns the ROI image and where a triangle covered it.
    ``identity_outside``: pixels no triangle covers (the rasteriser's last row and column)
    keep ``src``'s own pixel, for a warp of an image onto itself."""
    ids = np.zeros((roi.height, roi.width), dtype=np.int32)
    shift = 4  # sub-pixel vertex precision for the rasteriser
    dst_local = (dst_pts - [roi.x0, roi.y0]) * (1 << shift)
    dst_int = np.round(dst_local).astype(np.int32)
    for k, tri in enumerate(tris):
        cv2.fillConvexPoly(ids, dst_int[tri], k + 1, lineType=cv2.LINE_8, shift=shift)
    # The rasteriser leaves the odd pixel on a shared edge to neither triangle; a neighbour's
    # map is right there to within a fraction of a pixel (the warp is continuous).
    ids = np.where(ids == 0, cv2.dilate(ids.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32), ids)

    # Per triangle, the affine map destination -> source (what remap wants).
    d = dst_pts[tris] - [roi.x0, roi.y0]  # (n, 3, 2) in ROI coordinates
    s = src_pts[tris]
    d_h = np.concatenate([d, np.ones((len(tris), 3, 1))], axis=2)  # (n, 3, 3)
    det = np.linalg.det(d_h)
    ok = np.abs(det) > 1e-9
    maps = np.zeros((len(tris) + 1, 3, 2))
    # A degenerate destination triangle covers no pixel, so its map is never read.
    maps[1:][ok] = np.linalg.solve(d_h[ok], s[ok])

    ys, xs = np.nonzero(ids)
    m = maps[ids[ys, xs]]
    if identity_outside:
        map_x, map_y = np.meshgrid(np.arange(roi.x0, roi.x1, dtype=np.float32), np.arange(roi.y0, roi.y1, dtype=np.float32))
    else:
        map_x = np.full(ids.shape, -1.0, dtype=np.float32)
        map_y = np.full(ids.shape, -1.0, dtype=np.float32)
    map_x[ys, xs] = xs * m[:, 0, 0] + ys * m[:, 1, 0] + m[:, 2, 0]
    map_y[ys, xs] = xs * m[:, 0, 1] + ys * m[:, 1, 1] + m[:, 2, 1]
    warped = cv2.remap(src, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(warped, dtype=np.uint8), ids > 0


def _skin_mask(pts: FloatArray, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Cheek, forehead and chin skin: the colour statistics leave out eyes, brows and lips
    (and glasses frames mostly sit on the excluded eye band)."""
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pts[list(FACE_OVAL)]).astype(np.int32)], 1)
    for part in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS):
        hull = cv2.convexHull(np.round(pts[list(part)]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 0)
    iod = float(np.linalg.norm(pts[list(LEFT_EYE)].mean(axis=0) - pts[list(RIGHT_EYE)].mean(axis=0)))
    r = max(1, round(iod * 0.08))
    eroded = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return np.asarray(eroded) > 0


def _match_lab(src: RgbImage, ref: RgbImage, region: npt.NDArray[np.bool_], keep_lightness: bool = False) -> RgbImage:
    """``src`` with its Lab mean and spread over ``region`` moved to those of ``ref``."""
    if int(region.sum()) < 32:
        return src
    src_lab = cv2.cvtColor(src.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    ref_lab = cv2.cvtColor(ref.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    s_vals, r_vals = src_lab[region], ref_lab[region]
    s_mu, s_sd = s_vals.mean(axis=0), s_vals.std(axis=0)
    r_mu, r_sd = r_vals.mean(axis=0), r_vals.std(axis=0)
    # A near-grey template (sepia, black and white) has a tiny a/b spread: the ratio may go
    # that low. Upwards it stays near 1: a wrinkled or ruddy template would otherwise
    # exaggerate the user's blemishes and lip colour.
    gain = np.clip(r_sd / np.maximum(s_sd, 1e-3), 0.05, 1.3)
    if keep_lightness:
        gain[0], r_mu[0] = 1.0, s_mu[0]
    out = (src_lab - s_mu) * gain + r_mu
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _feathered_oval(oval: FloatArray, covered: npt.NDArray[np.bool_], shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    centre = oval.mean(axis=0)
    inner = centre + (oval - centre) * MASK_SHRINK
    mask = np.zeros(shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(inner).astype(np.int32)), 255)
    mask[~covered] = 0
    size = float(np.ptp(inner[:, 0]))
    # The feather is wide enough to hide the edge and narrow enough to stay on skin; the
    # erosion keeps the soft edge inside the hard one, so nothing outside the face leaks in.
    r = max(1, round(size * 0.04))
    eroded = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    sigma = max(1.0, size * 0.03)
    return np.asarray(cv2.GaussianBlur(eroded.astype(np.float32) / 255.0, (0, 0), sigma), dtype=np.float32)


def _pyramid_blend(fg: npt.NDArray[np.float32], bg: npt.NDArray[np.float32], mask: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Laplacian-pyramid blend: each frequency band is mixed under a mask blurred to the
    band's scale, so coarse colour changes spread wide and fine detail switches sharply.

    Chosen over ``cv2.seamlessClone`` and a plain feather by the colour step across the
    mask's edge (astronaut template, Grace Hopper user, strength 100, pixels 2 px either
    side of the mask's 0.5 contour): pyramid 26.0, feather 31.8, seamlessClone 33.0, the
    template itself 30.5 (mean |RGB difference|); the pyramid is also 3x faster than
    Poisson cloning, which bleeds the boundary colour into the whole face."""
    support = (mask > 0.01).astype(np.uint8)
    ys, xs = np.nonzero(support)
    if len(xs) == 0:
        return bg
    extent = max(int(np.ptp(xs)), int(np.ptp(ys))) + 1
    # Coarse bands reach about 2**levels px past the mask: the depth follows the face size
    # so that reach stays well inside the warped region.
    levels = int(np.clip(math.log2(max(2.0, extent / 8.0)), 1, PYRAMID_LEVELS))
    # What lies outside the mask must not leak in through the coarse bands.
    fg = np.where(mask[..., None] > 0, fg, bg)
    gm: list[npt.NDArray[Any]] = [mask]
    gf: list[npt.NDArray[Any]] = [fg]
    gb: list[npt.NDArray[Any]] = [bg]
    for _ in range(levels):
        gm.append(cv2.pyrDown(gm[-1]))
        gf.append(cv2.pyrDown(gf[-1]))
        gb.append(cv2.pyrDown(gb[-1]))
    out = gf[-1] * gm[-1][..., None] + gb[-1] * (1.0 - gm[-1][..., None])
    for i in range(levels - 1, -1, -1):
        size = (gf[i].shape[1], gf[i].shape[0])
        lf = gf[i] - cv2.pyrUp(gf[i + 1], dstsize=size)
        lb = gb[i] - cv2.pyrUp(gb[i + 1], dstsize=size)
        band = lf * gm[i][..., None] + lb * (1.0 - gm[i][..., None])
        out = cv2.pyrUp(out, dstsize=size) + band
    # Past the mask the result goes back to the template exactly, through a smooth window
    # (a hard cut there would leave a faint ring where the coarse bands end).
    reach = 2**levels
    grown = cv2.dilate(support, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
    window = np.clip(cv2.GaussianBlur(grown.astype(np.float32), (0, 0), reach / 2.0) * 2.0, 0.0, 1.0)
    return bg + (out - bg) * window[..., None]


def _check_image(img: npt.NDArray[np.generic], what: str) -> None:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise FusionError(f"{what} must be an (H, W, 3) uint8 RGB array, got {img.dtype} {img.shape}")


def _mesh_2d(mesh: npt.NDArray[np.floating], what: str) -> FloatArray:
    arr = np.asarray(mesh, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < WARP_POINTS or arr.shape[1] not in (2, 3):
        raise FusionError(f"{what}: mesh must be (478, 2) or (478, 3), got {arr.shape}")
    if not np.isfinite(arr[:, :2]).all():
        raise FusionError(f"{what}: mesh has non-finite points")
    return arr[:, :2]
