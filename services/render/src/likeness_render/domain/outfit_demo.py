"""The demo garment materials, made at start-up from package data (nothing downloaded, nothing committed).

No photograph of clothing alone ships in an installed package under a licence fit for a product.
The public-domain portraits there are the next best thing, and one of them gives a photographic
garment: the navy uniform (jacket, white shirt collar, black tie) Grace Hopper wears in
matplotlib's ``grace_hopper.jpg`` (U.S. Navy, public domain), cut out below her chin with the
person matte, her neck left open, the name tag and ribbons painted out, anchors from the pose
model (``navy_uniform``). Her neck showed down to the tie knot: the lower part of that V is closed
with her collar's white shirt under a rounded neckline (on another wearer it would show their own
top as a dark bib), and skin-warm specks her cut kept on the collar are painted white.

The other demo garments' shapes are drawn here (suit, blazer, white shirt: jacket, lapels,
collar, tie), and their cloth is photographic: the luminance texture of that same navy jacket
laid over each piece and shaded like cloth on a body. Their neck opening follows a neck: straight
up its sides, then a rounded V to the front centre, the collar wings (or a crew band) hugging it,
the cloth just inside its rim shaded. Each material is an RGBA image with its
anchors (neck opening, shoulder joints), registered like an operator's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain.outfits import RGB, Body, Garment, OutfitError, make_garment, skin_from

Poly = Sequence[tuple[float, float]]
# Material pixels per unit (a face width); the canvas spans +-3.2 units across, -0.7..3.6 down.
UNIT = 160
_X0, _X1, _Y0, _Y1 = -3.2, 3.2, -0.7, 3.6
NECK = (0.0, -0.30)  # the middle of the neck opening, above the collar points
SHOULDERS = (1.25, 0.42)  # the wearer's shoulder joints, inside the shoulder line


@dataclass(frozen=True)
class Layer:
    colour: tuple[int, int, int]
    polygon: Poly
    shade: float = 0.18  # how much darker the sides and bottom get
    weave: float = 1.0  # how strongly the cloth texture shows


_BODY = (
    (-0.38, -0.30), (-0.62, -0.04), (-0.95, 0.12), (-1.60, 0.30), (-2.60, 0.60), (-3.6, 1.0),
    (-3.6, 4.0), (3.6, 4.0), (3.6, 1.0), (2.60, 0.60), (1.60, 0.30), (0.95, 0.12), (0.62, -0.04), (0.38, -0.30),
)  # fmt: skip
_SHIRT_V = ((-0.40, -0.30), (-0.40, -0.04), (0.0, 1.15), (0.40, -0.04), (0.40, -0.30))
# The neck opening (cut out of every piece): straight up the sides of the neck, then a rounded V
# to its lowest point at the front centre, as a shirt collar closes under the chin.
_OPENING = (
    (-0.34, -0.75), (-0.34, -0.24), (-0.32, -0.14), (-0.27, -0.05), (-0.19, 0.02), (-0.09, 0.07), (0.0, 0.09),
    (0.09, 0.07), (0.19, 0.02), (0.27, -0.05), (0.32, -0.14), (0.34, -0.24), (0.34, -0.75),
)  # fmt: skip
# Paired pieces are drawn on the wearer's right (negative x) and mirrored.
# A collar wing: up the side of the neck to the back, down round the front to its point.
_COLLAR = (
    (-0.35, -0.34), (-0.41, -0.30), (-0.46, -0.12), (-0.50, 0.04), (-0.20, 0.32), (-0.02, 0.15),
    (-0.10, 0.08), (-0.20, 0.03), (-0.28, -0.04), (-0.33, -0.14), (-0.34, -0.24),
)  # fmt: skip
# The collar's stand behind the neck, seen inside the wings at the sides.
_BAND = ((-0.37, -0.36), (0.37, -0.36), (0.37, -0.10), (0.0, 0.16), (-0.37, -0.10))
_TIE = ((-0.07, 0.10), (0.07, 0.10), (0.05, 0.26), (0.13, 1.05), (0.0, 1.20), (-0.13, 1.05), (-0.05, 0.26))
_TIE_RUN = ((-0.05, 0.26), (0.05, 0.26), (0.13, 1.05), (0.13, 4.0), (-0.13, 4.0), (-0.13, 1.05))
_LAPEL = ((-0.44, 0.0), (-0.02, 1.15), (-0.30, 0.62), (-0.62, 0.38), (-0.52, 0.14))
# A crew neck: a rib band round the opening, following it up the sides of the neck.
_CREW = (
    (-0.35, -0.30), (-0.44, -0.28), (-0.43, -0.12), (-0.36, 0.02), (-0.24, 0.11), (0.0, 0.18), (0.24, 0.11), (0.36, 0.02),
    (0.43, -0.12), (0.44, -0.28), (0.35, -0.30), (0.34, -0.24), (0.32, -0.14), (0.27, -0.05), (0.19, 0.02), (0.09, 0.07),
    (0.0, 0.09), (-0.09, 0.07), (-0.19, 0.02), (-0.27, -0.05), (-0.32, -0.14), (-0.34, -0.24),
)  # fmt: skip
_PLACKET = ((-0.035, 0.20), (0.035, 0.20), (0.035, 4.0), (-0.035, 4.0))


def _pair(colour: tuple[int, int, int], polygon: Poly, shade: float, weave: float = 1.0) -> tuple[Layer, Layer]:
    """A piece and its mirror image across the centre line (collars, lapels)."""
    return Layer(colour, polygon, shade, weave), Layer(colour, tuple((-x, y) for x, y in polygon), shade, weave)


_SUIT = (
    Layer((40, 44, 56), _BODY),
    Layer((246, 246, 244), _SHIRT_V, 0.08, 0.5),
    Layer((120, 24, 40), _TIE, 0.25, 0.6),
    Layer((120, 24, 40), _TIE_RUN, 0.25, 0.6),
    *_pair((30, 33, 44), _LAPEL, 0.12),
    Layer((250, 250, 248), _BAND, 0.06, 0.4),
    *_pair((250, 250, 248), _COLLAR, 0.06, 0.4),
)
_BLAZER = (
    Layer((32, 42, 76), _BODY),
    Layer((44, 44, 48), _SHIRT_V, 0.10),
    Layer((40, 40, 44), _CREW, 0.05),
    *_pair((26, 34, 64), _LAPEL, 0.12),
)
_WHITE_SHIRT = (
    Layer((236, 236, 234), _BODY, 0.16, 0.5),
    Layer((224, 224, 222), _PLACKET, 0.05, 0.4),
    Layer((246, 246, 244), _BAND, 0.06, 0.4),
    *_pair((248, 248, 246), _COLLAR, 0.06, 0.4),
)

DEMO = (
    ("suit", "Dark suit with white shirt and tie", _SUIT),
    ("blazer", "Dark blazer over a dark top", _BLAZER),
    ("white-shirt", "White shirt", _WHITE_SHIRT),
)


def wool_texture(size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Relative luminance detail (mean 0, about +-1) of real wool cloth, tiled to `size` (w, h): the
    navy jacket in Grace Hopper's portrait (a patch clear of badges and ribbons), mirrored so
    tiles meet without seams."""
    photo = _hopper()
    patch = cv2.cvtColor(photo[528:596, 300:440], cv2.COLOR_RGB2GRAY).astype(np.float32)  # the jacket below the ribbons
    # Upscaled twice: the photo is small, a weave a material shows at 160 px per face width is coarser.
    patch = cv2.resize(patch, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    detail = patch - cv2.GaussianBlur(patch, (0, 0), 6.0)
    detail /= max(float(detail.std()), 1e-3)
    tile = np.concatenate([detail, detail[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    w, h = size
    reps = (h // tile.shape[0] + 1, w // tile.shape[1] + 1)
    return np.ascontiguousarray(np.tile(tile, reps)[:h, :w])


def paint(layers: Sequence[Layer], weave: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """The layered pieces as one RGBA material on the demo canvas (edges anti-aliased)."""
    w, h = round((_X1 - _X0) * UNIT), round((_Y1 - _Y0) * UNIT)
    canvas = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    nx, ny = -_X0 * UNIT, -_Y0 * UNIT
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    # Soft light from the front: sides and lower parts a little darker, like cloth on a body.
    falloff = (0.7 * np.clip(np.abs(xs - nx) / (3.0 * UNIT), 0, 1) ** 1.5 + 0.3 * np.clip((ys - ny) / (3.0 * UNIT), 0, 1)).astype(
        np.float32
    )
    fine = cv2.resize(weave, (w, h), interpolation=cv2.INTER_LINEAR)
    for layer in layers:
        pts = np.array([[nx + dx * UNIT, ny + dy * UNIT] for dx, dy in layer.polygon], np.float32)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        m = mask.astype(np.float32) / np.float32(255.0)
        base = np.array(layer.colour, np.float32)
        # Cloth texture: a multiplicative luminance change, stronger on dark cloth (wool) than on a shirt.
        strength = np.float32(layer.weave * (0.04 if base.mean() < 128 else 0.015))
        # A soft shadow just inside each piece's edge reads as a fold or a seam, not a flat shape.
        edge = np.clip(m - cv2.GaussianBlur(m, (0, 0), max(1.0, 0.03 * UNIT)), 0, 1)
        gain = (1.0 - np.float32(layer.shade) * falloff) * (1.0 + strength * fine) * (1.0 - np.float32(0.35) * edge)
        colour = base[None, None, :] * gain[..., None]
        # A shadow the piece casts on what lies under it (collars on the jacket, the tie on the shirt).
        cast = np.clip(cv2.GaussianBlur(m, (0, 0), max(1.0, 0.04 * UNIT)) - m, 0, 1)
        keep = ((1.0 - np.float32(0.25) * cast) * (1 - m))[..., None]
        canvas = canvas * keep + colour * m[..., None]
        alpha = np.maximum(alpha, m)
    # The neck opening, cut out of every piece; just inside its rim the cloth turns away from the
    # light (the inside of the collar, the neck's shadow on it), darkest at the edge.
    hole = np.zeros((h, w), np.uint8)
    pts = np.array([[nx + dx * UNIT, ny + dy * UNIT] for dx, dy in _OPENING], np.float32)
    cv2.fillPoly(hole, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    open_ = hole.astype(np.float32) / np.float32(255.0)
    rim = np.clip(cv2.GaussianBlur(open_, (0, 0), 0.035 * UNIT) - open_, 0, 1) * 2.0
    canvas *= (1.0 - np.float32(0.30) * np.clip(rim, 0, 1))[..., None]
    alpha = alpha * (1.0 - open_)
    return np.dstack([np.clip(canvas + 0.5, 0, 255), np.clip(alpha * 255.0 + 0.5, 0, 255)]).astype(np.uint8)


def anchors() -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    """(neck, wearer's left shoulder, wearer's right shoulder) in demo-canvas pixels."""

    def px(x: float, y: float) -> tuple[float, float]:
        return ((x - _X0) * UNIT, (y - _Y0) * UNIT)

    return px(*NECK), px(SHOULDERS[0], SHOULDERS[1]), px(-SHOULDERS[0], SHOULDERS[1])


def _hopper() -> npt.NDArray[np.uint8]:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


# In matplotlib's 512x600 grace_hopper.jpg: the name tag and the ribbon bar (x1, y1, x2, y2), painted out of the jacket.
_BADGES = ((68, 472, 178, 528), (308, 474, 470, 540))


def _close_collar(photo: RGB, cloth: npt.NDArray[np.bool_], neck: tuple[float, float], span: float) -> tuple[RGB, npt.NDArray[np.bool_]]:
    """The uniform's neck opening made a shirt's: her neck showed down to the tie knot, which on
    another wearer is a dark gap of their own top (or a painted neck); the lower part of that V is
    closed with the white shirt of her collar, under a rounded neckline, its upper rim shaded by
    the neck. Returns the photo and the cloth mask with the shirt front added."""
    h, w = cloth.shape
    ys, xs = np.mgrid[0:h, 0:w]
    # The opening: not cloth, with cloth on both sides in its row, within reach of the neck.
    left = np.maximum.accumulate(cloth, axis=1)
    right = np.maximum.accumulate(cloth[:, ::-1], axis=1)[:, ::-1]
    near = (np.abs(xs - neck[0]) < 0.3 * span) & (ys > neck[1] - 0.1 * span) & (ys < neck[1] + 0.3 * span)
    opening = left & right & ~cloth & near
    # A rounded neckline: its lowest point a little under the neck anchor, rising to the sides.
    rim = neck[1] + 0.04 * span - 1.2 * (xs - neck[0]) ** 2 / span
    lab = cv2.cvtColor(photo, cv2.COLOR_RGB2LAB).astype(np.float32)
    # Her neck's skin in shadow that the cut kept (a warm stripe on a collar wing, a speck above the
    # knot): shirt too. Navy cloth, the white collar and the black tie are not warm.
    warm = cloth & near & (lab[..., 1] - 128 > 6) & (lab[..., 2] - 128 > 10) & (lab[..., 0] > 60)
    front = (opening & (ys > rim)) | warm
    if not front.any():
        return photo, cloth
    # The rim where neck and collar met is half skin: the front takes in the light pixels beside it.
    beside = cv2.dilate(front.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    front |= beside & cloth & near & (lab[..., 0] > 110) & (ys > rim)
    # The shirt's white: the collar's own (light, nearly grey pixels of the cloth near the neck).
    white = cloth & near & (lab[..., 0] > 200) & (np.hypot(lab[..., 1] - 128, lab[..., 2] - 128) < 10)
    if white.sum() < 50:
        return photo, cloth
    shirt = np.median(photo[white].astype(np.float32), axis=0)
    # Shaded under the neckline (the neck's shadow) and toward the collar wings (a fold).
    below_rim = np.clip((ys - rim) / (0.04 * span), 0.0, 1.0)
    shade = 0.9 + 0.1 * below_rim
    out = photo.astype(np.float32)
    out[front] = shirt * shade[front][:, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), cloth | front


def navy_uniform(segment: Callable[[RGB], npt.NDArray[np.float32]], body: Callable[[RGB], Body | None]) -> Garment | None:
    """A photographic garment: the jacket, white shirt collar and black tie Grace Hopper wears in her
    portrait (U.S. Navy, public domain, via matplotlib), cut out with the person matte below the chin,
    her neck left transparent above a shirt front, the name tag and ribbons painted out; anchors from
    the pose model.
    None when the portrait is not the one this cut was made for."""
    photo = _hopper()
    if photo.shape[:2] != (600, 512):
        return None
    found = body(photo)
    if found is None:
        return None
    span = found.span
    shoulder_y = (found.left_shoulder[1] + found.right_shoulder[1]) / 2
    mid_x = (found.left_shoulder[0] + found.right_shoulder[0]) / 2
    top = shoulder_y - 0.27 * span  # just under the chin
    h, w = photo.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    neck_sample = (np.abs(xs - mid_x) < 0.05 * span) & (ys > top + 0.02 * span) & (ys < top + 0.08 * span)
    skin = skin_from(photo, neck_sample)
    skin = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    skin = cv2.morphologyEx(skin, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    # The neck's rim against the collar is half skin, half shadow: the cut keeps clear of it.
    # Bare skin is only around the neck (red ribbons and the gold button are not skin).
    skin = (cv2.dilate(skin, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))) > 0) & (ys < top + 0.3 * span)
    person = segment(photo) >= 0.5
    cloth = person & (ys > top) & ~skin
    # Only the cloth connected to the body (not flecks of the flag or hair).
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cloth.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    cloth = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    neck = (mid_x, top + 0.05 * span)
    photo, cloth = _close_collar(photo, cloth, neck, span)
    alpha = cv2.GaussianBlur(cloth.astype(np.float32), (0, 0), 0.7)
    badges = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in _BADGES:
        badges[y1:y2, x1:x2] = 1
    clean = cv2.inpaint(photo, cv2.dilate(badges, np.ones((7, 7), np.uint8)), 9, cv2.INPAINT_TELEA)
    # The painted-out areas get the jacket's weave back.
    weave = wool_texture((w, h))
    patched = clean.astype(np.float32) * (1.0 + 0.05 * weave * badges.astype(np.float32))[..., None]
    rgba = np.dstack([np.clip(patched + 0.5, 0, 255), np.clip(alpha * 255.0 + 0.5, 0, 255)]).astype(np.uint8)
    try:
        return make_garment(
            "Navy uniform jacket", rgba, neck, found.left_shoulder, found.right_shoulder, garment_id="navy-uniform",
            description="Photographic: the uniform in Grace Hopper's portrait (U.S. Navy, public domain, via matplotlib), badges painted out.",
        )  # fmt: skip
    except OutfitError:
        return None


def demo_garments(
    segment: Callable[[RGB], npt.NDArray[np.float32]] | None = None, body: Callable[[RGB], Body | None] | None = None
) -> list[Garment]:
    """The demo set (under a second of CPU): the drawn garments, and the photographic uniform when a
    person matte and the pose model are at hand."""
    w, h = round((_X1 - _X0) * UNIT), round((_Y1 - _Y0) * UNIT)
    weave = wool_texture((w, h))
    neck, left, right = anchors()
    credit = "Drawn shapes; cloth texture from the jacket in Grace Hopper's portrait (U.S. Navy, public domain, via matplotlib)."
    made = [make_garment(name, paint(layers, weave), neck, left, right, garment_id=gid, description=credit) for gid, name, layers in DEMO]
    if segment is not None and body is not None:
        uniform = navy_uniform(segment, body)
        if uniform is not None:
            made.append(uniform)
    return made
