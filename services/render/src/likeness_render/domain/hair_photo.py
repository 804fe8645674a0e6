"""Photographic hair materials: real hair cut out of a public-domain portrait, kept in the
canonical head frame of hair_styles.py (origin between the eyes, x along the eye line, unit
the inter-ocular distance) with its hairline curve and ear anchors.

``extract`` makes one from a photo, its 478-point mesh and its person matte (render's
ID-photo matting): the matte is warped into the canonical canvas, the face (skin inside the
face oval), the ears, the neck and whatever lies below the jaw are taken out, and the
hair's own colour (the matting's background-free foreground) is kept. The hairline is, per
canonical x across the forehead, the lowest point the hair reaches; the ear anchors are where
the source's ears sit (beside mesh points 234 and 454). ``scripts/make_hair_materials.py``
runs it on the package-shipped portrait and writes the PNG + JSON render loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL

F32 = npt.NDArray[np.float32]
RgbImage = npt.NDArray[np.uint8]

# Below this canonical y the source's hair is left out (collar, shoulders, a suit's ring).
HAIR_BOTTOM = 1.25
# Mesh points at the sides of the face at ear height (subject's right, left).
EAR_POINTS = (234, 454)
# Hairline samples: canonical x from -HAIRLINE_HALF_WIDTH to +, this many.
HAIRLINE_HALF_WIDTH = 1.0
HAIRLINE_SAMPLES = 21


@dataclass(frozen=True)
class PhotoHair:
    """An RGBA canonical material (float 0..1, straight alpha) with its anchors."""

    rgba: F32
    origin: tuple[float, float]  # canvas pixel of the canonical origin
    px_per_iod: float
    hairline: tuple[tuple[float, float], ...]  # canonical (x, y), left to right
    ears: tuple[tuple[float, float], tuple[float, float]]  # canonical (x, y): subject's right, left
    credit: str


def extract(
    image: RgbImage,
    mesh: npt.NDArray[np.float64],
    alpha: F32,
    foreground: F32,
    to_image: npt.NDArray[np.float64],
    canvas: tuple[int, int, tuple[float, float], float],
    credit: str,
) -> PhotoHair:
    """The hair of ``image`` as a canonical material. ``to_image``: 2x3 canonical units ->
    image pixels (hair.canonical_to_image of the mesh); ``canvas``: width, height, origin
    and pixels per IOD of the material canvas; ``foreground``: the matting's colour."""
    w, h, origin, ppi = canvas
    ox, oy = origin
    canvas_to_canon = np.array([[1.0 / ppi, 0.0, -ox / ppi], [0.0, 1.0 / ppi, -oy / ppi], [0.0, 0.0, 1.0]])
    to_src = to_image @ canvas_to_canon  # canvas pixel -> source pixel
    warp = {"dsize": (w, h), "flags": cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, "borderMode": cv2.BORDER_CONSTANT}
    a = np.asarray(cv2.warpAffine(alpha.astype(np.float32), to_src, **warp), dtype=np.float32)  # type: ignore[call-overload]
    fg = np.asarray(cv2.warpAffine(foreground.astype(np.float32), to_src, **warp), dtype=np.float32)  # type: ignore[call-overload]
    src_u8 = np.clip(image, 0, 255).astype(np.uint8)
    photo = np.asarray(cv2.warpAffine(src_u8, to_src, **warp), dtype=np.uint8)  # type: ignore[call-overload]

    inv = cv2.invertAffineTransform(to_src)  # source pixel -> canvas pixel
    pts = mesh[:, :2] @ inv[:, :2].T + inv[:, 2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    cx, cy = (gx - ox) / ppi, (gy - oy) / ppi

    skin = _skin(photo, pts, ppi)
    # The face below the brows (the oval drawn in a little, so hair at the temples stays).
    oval_pts = pts[list(FACE_OVAL)]
    centre = oval_pts.mean(axis=0)
    inner = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inner, [np.round(centre + (oval_pts - centre) * 0.9).astype(np.int32)], 1)
    brow_y = float(pts[[70, 300], 1].min())
    face = ((inner > 0) & (gy > brow_y)).astype(np.float32)
    face = np.asarray(cv2.GaussianBlur(face, (0, 0), 0.03 * ppi), dtype=np.float32)
    # Hair: the person, minus strong skin (forehead, ears, neck), minus the face, above the
    # collar. Blond hair can read as skin in colour: what hair encloses is hair (holes
    # filled), and only clear skin is taken out.
    hair_hard = ((a > 0.5) & (skin < 0.8) & (face < 0.5) & (cy < HAIR_BOTTOM)).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (round(0.12 * ppi) | 1,) * 2)
    hair_hard = np.asarray(cv2.morphologyEx(hair_hard, cv2.MORPH_CLOSE, k), dtype=np.uint8)
    hair_hard = _fill_holes(hair_hard)
    soft = cv2.GaussianBlur(hair_hard.astype(np.float32), (0, 0), 0.015 * ppi)
    hair_a = np.clip(a * soft * (1.0 - face), 0.0, 1.0).astype(np.float32)
    # Forehead showing between the fringe's strands is skin, not hair: see-through there,
    # so the wearer's own forehead shows in the gaps.
    full_oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(full_oval, [np.round(oval_pts).astype(np.int32)], 1)
    forehead = cv2.GaussianBlur(full_oval.astype(np.float32), (0, 0), 0.03 * ppi)
    hair_a *= 1.0 - forehead * np.clip((skin - 0.4) / 0.3, 0.0, 1.0)
    # The cut at HAIR_BOTTOM fades over 0.15 IOD, so the ends look like ends.
    hair_a *= np.clip((HAIR_BOTTOM - cy) / 0.15, 0.0, 1.0)
    hair_a = _largest_pieces(hair_a)
    rgba = np.dstack([np.clip(fg / 255.0, 0.0, 1.0), hair_a]).astype(np.float32)
    return PhotoHair(rgba, (ox, oy), ppi, _hairline(hair_a, cx, cy), _ears(pts, ox, oy, ppi), credit)


def _skin(photo: RgbImage, pts: npt.NDArray[np.float64], ppi: float) -> F32:
    """Soft skin probability from the cheeks' colour (cheek patches beside the nose)."""
    lab = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    mask = np.zeros(photo.shape[:2], np.uint8)
    for poly in ((116, 117, 118, 100, 126, 142, 203, 206, 207, 187, 123), (345, 346, 347, 329, 355, 371, 423, 426, 427, 411, 352)):
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts[list(poly)]).astype(np.int32)), 1)
    vals = lab[mask > 0]
    med = np.median(vals, axis=0)
    sd = np.maximum(np.median(np.abs(vals - med), axis=0) * 1.4826, [6.0, 2.5, 2.5])
    d = np.abs(lab - med) / (sd * [2.5, 1.0, 1.0])
    p = np.clip(3.0 - d.max(axis=2), 0.0, 1.0).astype(np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.05 * ppi) | 1),) * 2)
    p = cv2.morphologyEx(cv2.morphologyEx(p, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
    return np.asarray(cv2.GaussianBlur(p, (0, 0), 0.02 * ppi), dtype=np.float32)


def _fill_holes(mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``mask`` with every region of 0s that does not reach the border set to 1."""
    h, w = mask.shape
    flood = np.pad(mask, 1).copy()
    seed = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, seed, (0, 0), 2)
    return np.where(flood[1:-1, 1:-1] == 2, 0, 1).astype(np.uint8)


def _largest_pieces(a: F32) -> F32:
    """Pieces of hair smaller than 2 % of the largest are left out (stray skin-coloured
    misses, a patch of the suit)."""
    hard = (a > 0.3).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if n <= 2:
        return a
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.isin(labels, [i + 1 for i, area in enumerate(areas) if area >= 0.02 * areas.max()])
    near = cv2.dilate(keep.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return np.where(near, a, 0.0).astype(np.float32)


def _hairline(a: F32, cx: F32, cy: F32) -> tuple[tuple[float, float], ...]:
    """Per canonical x across the forehead, the lowest canonical y the hair (alpha > 0.5)
    reaches above the brows."""
    out = []
    cols_x = cx[0]
    ys = cy[:, 0]
    for x in np.linspace(-HAIRLINE_HALF_WIDTH, HAIRLINE_HALF_WIDTH, HAIRLINE_SAMPLES):
        col = int(np.argmin(np.abs(cols_x - x)))
        above = (a[:, col] > 0.5) & (ys < -0.3)
        if above.any():
            out.append((float(x), float(ys[np.nonzero(above)[0].max()])))
    return tuple(out)


def _ears(pts: npt.NDArray[np.float64], ox: float, oy: float, ppi: float) -> tuple[tuple[float, float], tuple[float, float]]:
    r, left = ((pts[i] - [ox, oy]) / ppi for i in EAR_POINTS)
    return (float(r[0]), float(r[1])), (float(left[0]), float(left[1]))


def save(material: PhotoHair, png: Path) -> None:
    """The material as an RGBA PNG (8 bits) and its anchors as JSON beside it."""
    from PIL import Image  # only the material script writes files

    rgba8 = np.clip(material.rgba * 255.0 + 0.5, 0, 255).astype(np.uint8)
    Image.fromarray(rgba8, "RGBA").save(png, optimize=True)
    meta = {
        "origin": material.origin,
        "px_per_iod": material.px_per_iod,
        "hairline": material.hairline,
        "ears": material.ears,
        "credit": material.credit,
    }
    png.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")


def load(png: Path) -> PhotoHair:
    from PIL import Image

    meta = json.loads(png.with_suffix(".json").read_text())
    with Image.open(png) as img:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    rgba.setflags(write=False)
    return PhotoHair(
        rgba=rgba,
        origin=(float(meta["origin"][0]), float(meta["origin"][1])),
        px_per_iod=float(meta["px_per_iod"]),
        hairline=tuple((float(x), float(y)) for x, y in meta["hairline"]),
        ears=((float(meta["ears"][0][0]), float(meta["ears"][0][1])), (float(meta["ears"][1][0]), float(meta["ears"][1][1]))),
        credit=str(meta["credit"]),
    )


def recolour(rgba: F32, target_rgb: tuple[int, int, int], amount: float = 1.0) -> F32:
    """The same hair in another colour: Lab lightness and chroma moved so the hair's median
    lands on ``target_rgb`` while every strand keeps its light and dark (texture, sheen)."""
    rgb = np.ascontiguousarray(rgba[..., :3], dtype=np.float32)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    on = rgba[..., 3] > 0.5
    if not on.any():
        return rgba
    med = np.median(lab[on], axis=0)
    tgt = cv2.cvtColor(np.array([[target_rgb]], np.float32) / 255.0, cv2.COLOR_RGB2Lab)[0, 0]
    out = lab.copy()
    # Lightness: scaled, so shadows stay dark and highlights keep their ratio.
    out[..., 0] = lab[..., 0] * (tgt[0] / max(float(med[0]), 1.0))
    out[..., 1:] = lab[..., 1:] - med[1:] + tgt[1:]
    mixed = lab + (out - lab) * amount
    res = np.clip(cv2.cvtColor(mixed.astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)
    return np.dstack([res, rgba[..., 3]]).astype(np.float32)
