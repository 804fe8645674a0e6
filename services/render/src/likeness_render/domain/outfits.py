"""Outfits that fit: garment materials (RGBA with anchor points) warped to a person's shoulders and neck.

A material is an RGBA image with three anchors: the centre of its neck opening and the wearer's
left and right shoulder joints (image coordinates; the wearer's left is the image's right). To
dress a photo, the anchors are mapped onto the neck and the shoulder joints that the pose model
found, the neckline is raised until it sits above the person's own collar (found as the
non-skin part of the person below the chin), and the garment is clipped to the person's
silhouette, widened only out to the shoulder points. Whatever of the original clothes the
neck opening would still show is covered with the garment's own colour, so no second collar
remains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_EYE, LIPS, RIGHT_EYE
from likeness_render.domain.face import FaceGeometry

RGB = npt.NDArray[np.uint8]
RGBA = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.float32]
Point = tuple[float, float]

MIN_SIDE = 64
MAX_SIDE = 4096
# Shoulder joints seen at least this surely by the pose model, inside the photo, count as visible.
MIN_SHOULDER_VISIBILITY = 0.5
# Share of the person's original clothes the fitted neckline may leave visible before it is raised further.
COLLAR_SLACK = 0.005


class OutfitError(ValueError):
    """A garment material cannot be registered; the message says why."""


class TooLittleTorso(ValueError):
    """The photo does not show enough of the shoulders to fit an outfit; the message says what is missing."""


@dataclass(frozen=True)
class Body:
    """Shoulder joints of the person in some image's pixels (subject's left is the image's right)."""

    left_shoulder: Point
    right_shoulder: Point
    visibility: float  # the lower of the two shoulders' visibility (0..1)

    def transformed(self, affine: npt.NDArray[np.float64]) -> Body:
        def move(p: Point) -> Point:
            x, y = affine @ np.array([p[0], p[1], 1.0])
            return float(x), float(y)

        return Body(move(self.left_shoulder), move(self.right_shoulder), self.visibility)

    def scaled(self, k: float) -> Body:
        return Body(
            (self.left_shoulder[0] * k, self.left_shoulder[1] * k),
            (self.right_shoulder[0] * k, self.right_shoulder[1] * k),
            self.visibility,
        )

    @property
    def span(self) -> float:
        return float(np.hypot(self.left_shoulder[0] - self.right_shoulder[0], self.left_shoulder[1] - self.right_shoulder[1]))


def torso_problem(body: Body | None, size: tuple[int, int], face: FaceGeometry) -> str | None:
    """Why an outfit cannot be fitted to this photo (None when it can): both shoulder joints must be seen
    and lie inside the photo, below the chin and about as far apart as a body's shoulders are."""
    w, h = size
    if body is None:
        return "no shoulders were found in the photo; use a photo that shows the head and shoulders"
    if body.visibility < MIN_SHOULDER_VISIBILITY:
        return "the shoulders are not visible in the photo; use a photo that shows the head and shoulders"
    for name, (x, y) in (("left", body.left_shoulder), ("right", body.right_shoulder)):
        if not (-0.02 * w <= x <= 1.02 * w and 0 <= y <= h - 1):
            return f"the {name} shoulder is outside the photo; use a photo that shows the head and both shoulders"
    chin_y = float(face.chin[1])
    if min(body.left_shoulder[1], body.right_shoulder[1]) <= chin_y:
        return "the shoulders are not below the chin; use an upright photo that shows the head and shoulders"
    if body.span < 1.2 * face.width:
        return "the shoulders are hidden or turned away; face the camera with both shoulders in the photo"
    return None


@dataclass(frozen=True)
class Garment:
    """A registered garment material. `rgba` is read-only; its colour runs on beyond the alpha
    (bled outward) so a garment stretched past its own edge keeps its colour."""

    id: str
    name: str
    rgba: RGBA
    neck: Point
    left_shoulder: Point  # the wearer's left: the image's right
    right_shoulder: Point
    description: str = ""

    @property
    def width(self) -> int:
        return int(self.rgba.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgba.shape[0])


class GarmentStore(Protocol):
    def put(self, garment: Garment) -> None: ...

    def get(self, garment_id: str) -> Garment | None: ...

    def list_garments(self) -> list[Garment]: ...


class InMemoryGarmentStore:
    """Garments in registration order (an operator's garment of an existing id replaces it)."""

    def __init__(self, garments: Sequence[Garment] = ()) -> None:
        self._items: dict[str, Garment] = {}
        for g in garments:
            self.put(g)

    def put(self, garment: Garment) -> None:
        self._items[garment.id] = garment

    def get(self, garment_id: str) -> Garment | None:
        return self._items.get(garment_id)

    def list_garments(self) -> list[Garment]:
        return list(self._items.values())


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    if not s:
        raise OutfitError(f"outfit name {name!r} gives an empty id")
    return s


def _alpha_at(alpha: Mask, p: Point, r: int) -> float:
    h, w = alpha.shape
    x, y = round(p[0]), round(p[1])
    return float(alpha[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)].mean())


def check_garment(name: str, rgba: RGBA, neck: Point, left_shoulder: Point, right_shoulder: Point) -> None:
    """Refuses a material that cannot be fitted: wrong pixel format or size, anchors outside the image,
    in the wrong order or shape, a neck anchor that is not in an opening, shoulders not covered."""
    if not name.strip():
        raise OutfitError("outfit name is empty")
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise OutfitError(f"an outfit image must be RGBA (a PNG with transparency), got {rgba.dtype} {rgba.shape}")
    h, w = rgba.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise OutfitError(f"outfit image is {w}x{h}; sides must be {MIN_SIDE}..{MAX_SIDE} px")
    for label, (x, y) in (("neck", neck), ("left shoulder", left_shoulder), ("right shoulder", right_shoulder)):
        if not (np.isfinite(x) and np.isfinite(y) and 0 <= x < w and 0 <= y < h):
            raise OutfitError(f"the {label} anchor ({x:g}, {y:g}) is outside the {w}x{h} image")
    lx, ly = left_shoulder
    rx, ry = right_shoulder
    span = float(np.hypot(lx - rx, ly - ry))
    if not rx < neck[0] < lx:
        raise OutfitError("the neck anchor must lie between the shoulders, the wearer's right shoulder on the image's left")
    if span < 0.2 * w:
        raise OutfitError(f"the shoulder anchors are {span:.0f} px apart; they must span at least a fifth of the image width")
    if abs(np.degrees(np.arctan2(ly - ry, lx - rx))) > 20:
        raise OutfitError("the shoulder anchors must be about level (tilted by at most 20 degrees)")
    if neck[1] > (ly + ry) / 2 - 0.1 * span:
        raise OutfitError("the neck anchor must sit above the shoulder line (by at least a tenth of the shoulder span)")
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    r = max(1, round(0.02 * span))
    if _alpha_at(alpha, neck, r) > 0.5:
        raise OutfitError("the neck anchor must lie in the neck opening (a transparent area of the image)")
    for label, p in (("left shoulder", left_shoulder), ("right shoulder", right_shoulder)):
        if _alpha_at(alpha, p, r) < 0.5:
            raise OutfitError(f"the garment does not cover its {label} anchor (the image is transparent there)")


def bleed(rgba: RGBA) -> RGBA:
    """The same material with the colour of its edges carried smoothly into the transparent parts
    (push-pull: averages of the opaque colour at ever coarser scales fill what finer ones lack)."""
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    if alpha.min() >= 1.0 or alpha.max() <= 0.0:
        return rgba
    colour = rgba[..., :3].astype(np.float32) * alpha[..., None]
    levels = [(colour, alpha)]
    while min(levels[-1][1].shape) > 2:
        c, a = levels[-1]
        levels.append((cv2.pyrDown(c), cv2.pyrDown(a)))
    c, a = levels[-1]
    filled = c / np.maximum(a, 1e-6)[..., None]
    for c, a in reversed(levels[:-1]):
        up = cv2.resize(filled, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = c / np.maximum(a, 1e-6)[..., None]
        weight = np.clip(a * 4.0, 0.0, 1.0)[..., None]
        filled = own * weight + up * (1.0 - weight)
    out = rgba.copy()
    solid = rgba[..., 3:] >= 250
    out[..., :3] = np.where(solid, rgba[..., :3], np.clip(filled + 0.5, 0, 255).astype(np.uint8))
    return out


def make_garment(
    name: str, rgba: RGBA, neck: Point, left_shoulder: Point, right_shoulder: Point, garment_id: str | None = None, description: str = ""
) -> Garment:
    check_garment(name, rgba, neck, left_shoulder, right_shoulder)
    frozen = np.ascontiguousarray(bleed(rgba))
    frozen.setflags(write=False)
    as_point = lambda p: (float(p[0]), float(p[1]))  # noqa: E731
    return Garment(
        garment_id or slug(name), name.strip(), frozen, as_point(neck), as_point(left_shoulder), as_point(right_shoulder), description
    )


# --- fitting ---------------------------------------------------------------------------------


def _lab(image: RGB) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def face_region(face: FaceGeometry, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """The face's oval (from the mesh; from the box when there is none)."""
    mask = np.zeros(shape, np.uint8)
    if face.mesh is not None:
        cv2.fillPoly(mask, [np.round(face.mesh[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    else:
        x1, y1, x2, y2 = face.box
        cv2.ellipse(mask, (round((x1 + x2) / 2), round((y1 + y2) / 2)), (round((x2 - x1) / 2), round((y2 - y1) / 2)), 0, 0, 360, 1, -1)
    return mask > 0


def skin_like(image: RGB, face: FaceGeometry) -> npt.NDArray[np.bool_]:
    """Pixels of this face's skin colour, lit or in shadow: the hue of the cheeks, a chroma within a
    range of theirs, a lightness from deep shadow to highlight (white, black, navy cloth are not)."""
    oval = face_region(face, image.shape[:2])
    inner = cv2.erode(oval.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
    if face.mesh is not None:
        cut = np.zeros(image.shape[:2], np.uint8)
        for part in (LEFT_EYE, RIGHT_EYE, LIPS):
            cv2.fillPoly(cut, [cv2.convexHull(np.round(face.mesh[list(part), :2]).astype(np.int32))], 1)
        inner &= ~(cv2.dilate(cut, np.ones((9, 9), np.uint8)) > 0)
    return skin_from(image, inner)


def skin_from(image: RGB, sample: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels of the skin colour seen in `sample` (a bare-skin area of the same photo)."""
    lab = _lab(image)
    samples = lab[sample]
    if len(samples) < 50:
        return np.zeros(image.shape[:2], bool)
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    s_hue = np.degrees(np.arctan2(samples[:, 2], samples[:, 1]))
    s_chroma = np.hypot(samples[:, 1], samples[:, 2])
    h0, c0, l0 = float(np.median(s_hue)), float(np.median(s_chroma)), float(np.median(samples[:, 0]))
    h_spread = max(6.0, 2.5 * float(np.median(np.abs(s_hue - h0))) * 1.4826)
    near_hue = np.abs((hue - h0 + 180.0) % 360.0 - 180.0) < h_spread + 6.0
    near_chroma = (chroma > 0.45 * c0) & (chroma < 1.7 * c0 + 4.0)
    light = (lab[..., 0] > 0.35 * l0) & (lab[..., 0] < l0 + 25.0)
    return near_hue & near_chroma & light


def body_zone(face: FaceGeometry, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Where clothes can be: below the chin under the face (leaving the chin's own shadow), rising
    beside the head towards the shoulders (up to a face width's half above the chin), never the face."""
    h, w = shape
    cx, chin_y, fw = float(face.chin[0]), float(face.chin[1]), face.width
    dx = np.abs(np.arange(w, dtype=np.float32) - cx)
    top = chin_y + 0.06 * fw - np.clip(1.2 * (dx - 0.3 * fw), 0.0, 0.6 * fw)
    zone = np.arange(h, dtype=np.float32)[:, None] > top[None, :]
    return zone & ~face_region(face, shape)


def original_clothes(image: RGB, person: Mask, face: FaceGeometry) -> npt.NDArray[np.bool_]:
    """The person's own clothes (and anything else on the body that is not skin) around and below the neck."""
    h, w = image.shape[:2]
    clothes = (person >= 0.5) & body_zone(face, (h, w)) & ~skin_like(image, face)
    # Specks (a shadow fold on the neck, a freckle) are not clothes, nor is the chin's shadow: clothes
    # reach down to the bottom of the photo (or out to its sides), a shadow on the skin does not.
    opened = cv2.morphologyEx(clothes.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return reaching_the_edge(opened > 0)


def reaching_the_edge(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The parts of `mask` connected to the bottom row or the lower half of the side columns."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    h = mask.shape[0]
    edge = np.concatenate([labels[-1], labels[h // 2 :, 0], labels[h // 2 :, -1]])
    keep = np.zeros(count, bool)
    keep[np.unique(edge)] = True
    keep[0] = False
    return keep[labels]


@dataclass(frozen=True)
class Fitted:
    rgb: RGB
    alpha: Mask
    neck: Point  # where the material's neck anchor landed
    covered_fill: int  # original-clothes pixels covered by the garment's colour beyond its own shape


def _affine(g: Garment, neck: Point, body: Body, lift: float) -> npt.NDArray[np.float64]:
    """Material anchors onto the neck and the shoulders; a neckline raised by `lift` px above its natural
    place takes the shoulders up by part of it, so the cloth is stretched only a little."""
    up = 0.6 * lift
    dst = np.array(
        [neck, (body.left_shoulder[0], body.left_shoulder[1] - up), (body.right_shoulder[0], body.right_shoulder[1] - up)], np.float32
    )
    src = np.array([g.neck, g.left_shoulder, g.right_shoulder], np.float32)
    return cv2.getAffineTransform(src, dst).astype(np.float64)


def _neck_candidates(face: FaceGeometry, body: Body, g: Garment) -> tuple[float, list[float]]:
    """(natural height, heights to try) for the neck anchor: from its natural place (the material's own
    neck-to-shoulder proportion) up to just under the chin, lowest first."""
    shoulder_y = (body.left_shoulder[1] + body.right_shoulder[1]) / 2
    g_span = float(np.hypot(g.left_shoulder[0] - g.right_shoulder[0], g.left_shoulder[1] - g.right_shoulder[1]))
    rise = ((g.left_shoulder[1] + g.right_shoulder[1]) / 2 - g.neck[1]) / g_span * body.span
    natural = shoulder_y - rise
    top = float(face.chin[1]) + 0.05 * face.width
    if natural <= top:
        return natural, [natural]
    return natural, [float(y) for y in np.linspace(natural, top, 10)]


def fit(garment: Garment, image: RGB, person: Mask, face: FaceGeometry, body: Body) -> Fitted:
    """The garment warped onto this photo (rgb, alpha at the photo's size)."""
    h, w = image.shape[:2]
    clothes = original_clothes(image, person, face)
    total = int(clothes.sum())
    chin_x = float(face.chin[0])
    mid_x = (body.left_shoulder[0] + body.right_shoulder[0]) / 2
    neck_x = 0.5 * (chin_x + mid_x)
    src_alpha = garment.rgba[..., 3]
    best: tuple[int, float, npt.NDArray[np.float64]] | None = None
    natural, heights = _neck_candidates(face, body, garment)
    for y in heights:
        m = _affine(garment, (neck_x, y), body, natural - y)
        a = cv2.warpAffine(src_alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        shown = int((clothes & (a < 128)).sum())
        if best is None or shown < best[0]:
            best = (shown, y, m)
        if shown <= COLLAR_SLACK * max(total, 1):
            break
    assert best is not None
    _, neck_y, m = best
    rgba = cv2.warpAffine(garment.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    # Not wider than the body: the person's silhouette, widened only out to the shoulder joints
    # (below the neck opening); never over the face.
    hull = np.zeros((h, w), np.uint8)
    (lx, ly), (rx, ry) = body.left_shoulder, body.right_shoulder
    hull_poly = np.array([[rx, ry], [neck_x, neck_y], [lx, ly], [lx, h + 10], [rx, h + 10]], np.float32)
    cv2.fillPoly(hull, [np.round(hull_poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_AA, shift=4)
    allowed = np.maximum(person.astype(np.float32), hull.astype(np.float32))
    allowed[face_region(face, (h, w))] = 0.0
    # The person's own clothes the opening would still show are covered in the garment's colour.
    fill = clothes & (alpha < 0.5)
    fill = cv2.dilate(fill.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    fill &= body_zone(face, (h, w))
    soft_fill = cv2.GaussianBlur(fill.astype(np.float32), (0, 0), 0.8)
    rgb = rgba[..., :3]
    if fill.any():
        rgb = _carry_cloth(rgb, alpha >= 0.9, (soft_fill > 0) & (alpha < 0.9), cloth_colour(garment), face.width)
    alpha = np.clip(np.maximum(alpha, soft_fill) * allowed, 0.0, 1.0)
    return Fitted(np.ascontiguousarray(rgb), alpha, (neck_x, neck_y), int(fill.sum()))


def _carry_cloth(
    rgb: RGB, own: npt.NDArray[np.bool_], need: npt.NDArray[np.bool_], cloth: npt.NDArray[np.float32], face_width: float
) -> RGB:
    """`rgb` with the `need` pixels in the garment's body cloth colour (a little darker further from the
    garment's own pixels, like cloth turning from the light), so a covered collar reads as the same cloth."""
    dist = cv2.distanceTransform((~own).astype(np.uint8), cv2.DIST_L2, 5) if own.any() else np.zeros(own.shape, np.float32)
    shade = 1.0 - 0.12 * np.clip(dist / (0.4 * face_width), 0.0, 1.0)
    out = rgb.copy()
    out[need] = np.clip(cloth[None, :] * shade[need][:, None] + 0.5, 0, 255).astype(np.uint8)
    return out


def cloth_colour(garment: Garment) -> npt.NDArray[np.float32]:
    """The garment's body cloth: the median colour of its opaque pixels around the shoulder anchors."""
    h, w = garment.rgba.shape[:2]
    span = float(np.hypot(garment.left_shoulder[0] - garment.right_shoulder[0], garment.left_shoulder[1] - garment.right_shoulder[1]))
    r = max(2, round(0.08 * span))
    picked = []
    for x, y in (garment.left_shoulder, garment.right_shoulder):
        patch = garment.rgba[max(0, round(y) - r) : min(h, round(y) + r + 1), max(0, round(x) - r) : min(w, round(x) + r + 1)].reshape(
            -1, 4
        )
        picked.append(patch[patch[:, 3] >= 230, :3])
    pixels = np.concatenate(picked)
    return np.median(pixels, axis=0).astype(np.float32) if len(pixels) else np.zeros(3, np.float32)


@dataclass(frozen=True)
class Wear:
    """A garment to put on, and the shoulders of the person who wears it (in the source photo's pixels)."""

    garment: Garment
    body: Body


def dress(image: RGB, person: Mask, garment: Garment, face: FaceGeometry, body: Body, taken: RGB | None = None) -> tuple[RGB, Fitted]:
    """`image` with the garment fitted over the body and under the head; the person's own clothes are
    looked for in `taken` (the same framing before any change; `image` when None)."""
    fitted = fit(garment, image if taken is None else taken, person, face, body)
    a = fitted.alpha[..., None]
    out = image.astype(np.float32) * (1 - a) + fitted.rgb.astype(np.float32) * a
    # A soft shadow of the chin and jaw on the collar, as a light from the front and above casts.
    h, w = image.shape[:2]
    face_mask = face_region(face, (h, w)).astype(np.float32)
    shadow = cv2.GaussianBlur(np.roll(face_mask, max(1, round(0.04 * face.width)), axis=0), (0, 0), max(1.0, 0.05 * face.width))
    out *= 1.0 - 0.25 * (shadow * fitted.alpha * (1 - face_mask))[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), fitted


def edit_area(garment: Mask, face: FaceGeometry) -> tuple[tuple[float, float, float, float], Mask]:
    """What an AI edit of a fitted outfit may see and change: the box of the garment below the
    chin (the torso and neck; never the face) and the garment's coverage inside it, with the face
    region and everything above the box cleared. ValueError when the garment shows nowhere below the chin."""
    h, w = garment.shape
    region = np.clip(garment.astype(np.float32), 0.0, 1.0)
    region[face_region(face, (h, w))] = 0.0
    top = int(np.ceil(max(0.0, float(face.chin[1]))))
    region[:top] = 0.0
    ys, xs = np.nonzero(region > 0.5)
    if len(xs) < 64:
        raise ValueError("the outfit shows too little below the chin to edit")
    pad = max(2, round(0.01 * max(h, w)))
    box = (
        float(max(0, xs.min() - pad)),
        float(max(top, ys.min() - pad)),
        float(min(w, xs.max() + 1 + pad)),
        float(min(h, ys.max() + 1)),
    )
    return box, region
