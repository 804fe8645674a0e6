"""Hairstyle catalog and its procedurally drawn hair materials.

Materials are RGBA images drawn here in a canonical head frame: the origin is the midpoint
of the eye centres, x runs along the eye line towards the subject's left eye, y runs down,
and the unit is the inter-ocular distance (IOD). In that frame MediaPipe's forehead-top
point (mesh index 10) sits at about y = -0.70, the brows at -0.33 and the chin at +1.75
(measured on frontal meshes). Strand texture is white noise smeared along a per-style flow
field (line-integral convolution), shaded with a dome normal and a strand-aligned sheen
(Kajiya-Kay), with an alpha edge that frays along the strands. Placing a material on a
photo is hair.py's work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# Canonical canvas: pixels per IOD and the extent in IOD units around the eye centre.
PX_PER_IOD = 96
X_RANGE = (-3.3, 3.3)
Y_RANGE = (-3.2, 4.4)
# The material is drawn down to here on the forehead, then cut back per photo.
MATERIAL_HAIRLINE = -0.5
# Photographic materials (hair_photo.py) ship here.
PHOTO_DIR = Path(__file__).resolve().parents[1] / "data" / "hair"

_SCALP_CENTRE_Y = -0.30
_SCALP_AX, _SCALP_AY = 1.22, 1.55
_WINDOW_CENTRE_Y, _WINDOW_AX, _WINDOW_AY = 0.30, 1.0, 1.12


class HairstyleNotFound(LookupError):
    """No hair material with that id."""


@dataclass(frozen=True)
class HairStyle:
    id: str
    name: str
    description: str
    colour: tuple[int, int, int]
    # Canonical y down to which the material may cover the face oval (a fringe); None: the
    # oval is left bare.
    fringe_to: float | None = None
    # A photographic material (data/hair/<photo>.png, hair_photo.py) instead of a drawn one,
    # recoloured to ``colour`` unless ``natural``.
    photo: str | None = None
    natural: bool = False


@dataclass(frozen=True)
class HairMaterial:
    """A drawn material: ``rgba`` float32 (H, W, 4) in 0..1 (straight, not premultiplied
    alpha), canonical frame with the eye centre at pixel ``origin``."""

    style: HairStyle
    rgba: F32
    origin: tuple[float, float]
    px_per_iod: float
    # Photographic materials: the hairline (canonical (x, y), left to right) and the source's
    # ear anchors (subject's right, left); empty for drawn ones.
    hairline: tuple[tuple[float, float], ...] = ()
    ears: tuple[tuple[float, float], ...] = ()
    credit: str = ""


HAIRSTYLES: dict[str, HairStyle] = {
    s.id: s
    for s in (
        HairStyle(
            "bob_natural",
            "Bob (photo)",
            "Real chin-length bob with a side-swept fringe, as photographed",
            (150, 112, 72),
            fringe_to=-0.33,
            photo="collins_bob",
            natural=True,
        ),
        HairStyle(
            "bob_brunette", "Brunette bob (photo)", "The photographed bob in dark brown", (66, 44, 30), fringe_to=-0.33, photo="collins_bob"
        ),
        HairStyle("bob_black", "Black bob (photo)", "The photographed bob in black", (28, 24, 24), fringe_to=-0.33, photo="collins_bob"),
        HairStyle(
            "bob_auburn", "Auburn bob (photo)", "The photographed bob in auburn", (120, 56, 32), fringe_to=-0.33, photo="collins_bob"
        ),
        HairStyle("short_crop", "Short crop", "Short textured crop brushed up and back", (62, 43, 31)),
        HairStyle("long_straight", "Long straight", "Long straight hair with a side part, past the shoulders", (96, 58, 34)),
        HairStyle("curly_afro", "Curly afro", "Rounded afro of tight curls", (40, 29, 23)),
        HairStyle("top_bun", "Top bun", "Sleek hair pulled up into a top knot", (150, 112, 72)),
    )
}


def hairstyles() -> list[HairStyle]:
    return list(HAIRSTYLES.values())


@cache
def hair_material(hairstyle_id: str) -> HairMaterial:
    """The drawn material for a style (drawn once per process)."""
    style = HAIRSTYLES.get(hairstyle_id)
    if style is None:
        raise HairstyleNotFound(f"no hairstyle {hairstyle_id!r}; known: {', '.join(HAIRSTYLES)}")
    if style.photo is not None:
        return _photo_material(style)
    return _DRAW[hairstyle_id](style)


def canvas_geometry() -> tuple[int, int, tuple[float, float], float]:
    """Width, height, origin pixel and pixels per IOD of the canonical material canvas."""
    c = _canvas()
    return c.w, c.h, c.origin, float(PX_PER_IOD)


def _photo_material(style: HairStyle) -> HairMaterial:
    from likeness_render.domain import hair_photo

    assert style.photo is not None
    photo = hair_photo.load(PHOTO_DIR / f"{style.photo}.png")
    rgba = photo.rgba if style.natural else hair_photo.recolour(photo.rgba, style.colour)
    rgba = np.array(rgba, dtype=np.float32)
    rgba.setflags(write=False)
    return HairMaterial(style, rgba, photo.origin, photo.px_per_iod, photo.hairline, photo.ears, photo.credit)


# --- drawing the materials -----------------------------------------------------------------


@dataclass(frozen=True)
class _Canvas:
    x: F32  # canonical x of each pixel
    y: F32
    w: int
    h: int
    origin: tuple[float, float]


def _canvas() -> _Canvas:
    w = round((X_RANGE[1] - X_RANGE[0]) * PX_PER_IOD)
    h = round((Y_RANGE[1] - Y_RANGE[0]) * PX_PER_IOD)
    ox, oy = -X_RANGE[0] * PX_PER_IOD, -Y_RANGE[0] * PX_PER_IOD
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return _Canvas(((gx - ox) / PX_PER_IOD).astype(np.float32), ((gy - oy) / PX_PER_IOD).astype(np.float32), w, h, (ox, oy))


def _ellipse(c: _Canvas, cx: float, cy: float, ax: float | F32, ay: float | F32) -> npt.NDArray[np.bool_]:
    return ((c.x - cx) / ax) ** 2 + ((c.y - cy) / ay) ** 2 <= 1.0


def _scalp(c: _Canvas, volume: float | F32) -> npt.NDArray[np.bool_]:
    return _ellipse(c, 0.0, _SCALP_CENTRE_Y, _SCALP_AX + volume, _SCALP_AY + volume)


def _window(c: _Canvas, grow: float = 0.0) -> npt.NDArray[np.bool_]:
    """Where the face is: the material leaves it bare. Its top is flat at MATERIAL_HAIRLINE,
    low on the forehead: placement cuts the hair back to where the subject's skin shows."""
    return _ellipse(c, 0.0, _WINDOW_CENTRE_Y, _WINDOW_AX + grow, _WINDOW_AY + grow) & (c.y > MATERIAL_HAIRLINE)


def _smooth_noise(c: _Canvas, sigma_px: float, seed: int) -> F32:
    n = np.random.default_rng(seed).normal(0.0, 1.0, (c.h, c.w)).astype(np.float32)
    n = np.asarray(cv2.GaussianBlur(n, (0, 0), sigma_px), dtype=np.float32)
    return n / max(float(n.std()), 1e-6)


def _normalise(vx: F32, vy: F32) -> tuple[F32, F32]:
    n = np.maximum(np.hypot(vx, vy), 1e-6)
    return (vx / n).astype(np.float32), (vy / n).astype(np.float32)


def _lic(noise: F32, fx: F32, fy: F32, steps: int, step_px: float = 1.0) -> F32:
    """Line-integral convolution: ``noise`` averaged along the streamlines of (fx, fy), which
    draws strands that follow the flow (a directional blur that bends)."""
    h, w = noise.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    flow = np.dstack([fx, fy]).astype(np.float32)
    acc = noise.copy()
    total = 1.0
    for sign in (1.0, -1.0):
        px, py = gx.copy(), gy.copy()
        for k in range(1, steps + 1):
            v = cv2.remap(flow, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            px += sign * step_px * v[..., 0]
            py += sign * step_px * v[..., 1]
            wgt = 0.5 + 0.5 * math.cos(math.pi * k / (steps + 1))  # Hann: strand ends fade
            acc += wgt * cv2.remap(noise, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            total += wgt
    return acc / total


def _strand_texture(c: _Canvas, fx: F32, fy: F32, steps: int, seed: int, fine: float = 0.55, coarse: float = 2.2) -> F32:
    """Strand brightness 0..1: fine strands over clumps, both following the flow."""
    rng = np.random.default_rng(seed)
    n_fine = rng.normal(0.0, 1.0, (c.h, c.w)).astype(np.float32)
    n_fine = np.asarray(cv2.GaussianBlur(n_fine, (0, 0), fine), dtype=np.float32)
    n_coarse = cv2.GaussianBlur(rng.normal(0.0, 1.0, (c.h, c.w)).astype(np.float32), (0, 0), coarse)
    n = n_fine / max(float(n_fine.std()), 1e-6) + 0.9 * n_coarse / max(float(n_coarse.std()), 1e-6)
    t = _lic(n, fx, fy, steps)
    # Averaging along long streamlines softens the strands; an unsharp mask crisps them.
    t = t + 0.8 * (t - cv2.GaussianBlur(t, (0, 0), 1.2))
    t = (t - float(t.mean())) / max(float(t.std()), 1e-6)
    return np.clip(0.5 + 0.24 * t, 0.0, 1.0).astype(np.float32)


def _shade(
    c: _Canvas, inside: npt.NDArray[np.bool_], fx: F32, fy: F32, tex: F32, style: HairStyle, dome_px: float, sheen: float = 1.0
) -> tuple[F32, F32]:
    """RGB (0..1) and alpha of a hair mass with strand texture ``tex`` flowing along (fx, fy)."""
    u8 = inside.astype(np.uint8)
    d_in = cv2.distanceTransform(u8, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - u8, cv2.DIST_L2, 5)
    sdf = (d_in - d_out).astype(np.float32)

    # A dome over the mass (rounded towards its edges) gives normals for light and sheen.
    height = np.sqrt(np.clip(sdf / dome_px, 0.0, 1.0)).astype(np.float32)
    height = cv2.GaussianBlur(height, (0, 0), 3.0)
    gy, gx = np.gradient(height * dome_px * 0.6)
    n = np.dstack([-gx, -gy, np.ones_like(gx)])
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    light = np.array([-0.35, -0.6, 0.72])
    light /= np.linalg.norm(light)
    diffuse = np.clip(n @ light, 0.0, 1.0).astype(np.float32)

    # Kajiya-Kay: the highlight lies where the strand tangent is across the half vector.
    tz = -(gx * fx + gy * fy)
    t3 = np.dstack([fx, fy, tz])
    t3 /= np.linalg.norm(t3, axis=2, keepdims=True)
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    cos_th = np.clip(t3 @ half, -1.0, 1.0)
    spec = (np.sqrt(1.0 - cos_th**2) ** 60).astype(np.float32) * sheen

    base = np.array(style.colour, np.float32) / 255.0
    lit = (0.30 + 0.95 * tex)[..., None] * (0.42 + 0.7 * diffuse)[..., None] * base
    tint = np.clip(base * 1.6 + 0.12, 0.0, 1.0)
    rgb = lit + (0.35 * spec * tex**1.5)[..., None] * tint
    # Roots darken next to the face: the hair mass shades its own edge there.
    rgb *= (1.0 - 0.25 * np.exp(-np.clip(sdf, 0, None) / (0.06 * PX_PER_IOD)))[..., None]

    # The edge frays along strands: bright (lifted) strands reach further out than dark ones.
    edge = 0.03 * PX_PER_IOD
    a = np.clip((sdf + (tex - 0.5) * 5.0 * edge) / (2.0 * edge) + 0.5, 0.0, 1.0)
    a = a * a * (3.0 - 2.0 * a)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), a.astype(np.float32)


def _material(style: HairStyle, c: _Canvas, rgb: F32, alpha: F32) -> HairMaterial:
    rgba = np.dstack([rgb, alpha]).astype(np.float32)
    rgba.setflags(write=False)
    return HairMaterial(style=style, rgba=rgba, origin=c.origin, px_per_iod=float(PX_PER_IOD))


def _flyaways(
    c: _Canvas,
    inside: npt.NDArray[np.bool_],
    allowed: npt.NDArray[np.bool_],
    fx: F32,
    fy: F32,
    rgb: F32,
    alpha: F32,
    count: int,
    length_px: int,
    seed: int,
    colour: tuple[int, int, int],
) -> None:
    """A few loose strands leaving the outline (where ``allowed``) along the flow, drawn in
    place into ``rgb`` and ``alpha``."""
    rng = np.random.default_rng(seed)
    u8 = inside.astype(np.uint8)
    ring = ((u8 - cv2.erode(u8, np.ones((3, 3), np.uint8))) > 0) & allowed
    ys, xs = np.nonzero(ring)
    if len(xs) == 0:
        return
    pick = rng.choice(len(xs), size=min(count, len(xs)), replace=False)
    layer = np.zeros((c.h, c.w), np.float32)
    for i in pick:
        x, y = float(xs[i]), float(ys[i])
        bend = rng.normal(0.0, 0.04)
        poly = [(x, y)]
        for _ in range(length_px):
            xi, yi = min(c.w - 1, max(0, round(x))), min(c.h - 1, max(0, round(y)))
            vx, vy = float(fx[yi, xi]), float(fy[yi, xi])
            vx, vy = vx - bend * vy, vy + bend * vx
            x, y = x + vx, y + vy
            poly.append((x, y))
        pts = np.round(np.array(poly) * 16).astype(np.int32)
        cv2.polylines(layer, [pts], False, float(rng.uniform(0.35, 0.8)), 1, cv2.LINE_AA, shift=4)
    add = layer * (1.0 - alpha)
    base = np.array(colour, np.float32) / 255.0 * 1.15
    rgb[:] = (rgb * alpha[..., None] + base * add[..., None]) / np.maximum(alpha + add, 1e-6)[..., None]
    alpha[:] = np.clip(alpha + add, 0.0, 1.0)


def _draw_short_crop(style: HairStyle) -> HairMaterial:
    c = _canvas()
    wobble = _smooth_noise(c, 6.0, 21) * 0.03
    inside = _scalp(c, 0.12 + wobble) & ~_window(c, -0.04)
    sideburn = (np.abs(c.x) > 0.86) & (np.abs(c.x) < 1.16) & (c.y < 0.32)
    inside &= (c.y < 0.02) | sideburn
    # Brushed up and back from the hairline: strands run away from a point below the eyes.
    fx, fy = _normalise(c.x * 1.0 + 0.25 * _smooth_noise(c, 12.0, 22), c.y - 0.6 + 0.25 * _smooth_noise(c, 12.0, 23))
    tex = _strand_texture(c, fx, fy, steps=7, seed=24, fine=0.5, coarse=1.4)
    rgb, a = _shade(c, inside, fx, fy, tex, style, dome_px=0.45 * PX_PER_IOD, sheen=0.7)
    return _material(style, c, rgb, a)


def _draw_long_straight(style: HairStyle) -> HairMaterial:
    c = _canvas()
    wobble = _smooth_noise(c, 8.0, 31) * 0.025
    cap = _scalp(c, 0.2 + wobble)
    y = c.y
    outer = 1.36 + 0.1 * np.clip(y, 0.0, None) + 0.03 * _smooth_noise(c, 10.0, 32)
    # Beside the jaw and the neck the curtains part; nothing hangs under the chin.
    inner = np.where(y < 0.5, 0.0, 0.68 + 0.03 * np.clip(y - 1.6, 0.0, None))
    ragged = 3.25 + 0.12 * _smooth_noise(c, 3.0, 33) + 0.1 * np.abs(c.x)
    curtains = (np.abs(c.x) < outer) & (np.abs(c.x) > inner) & (y > -0.6) & (y < ragged)
    inside = (cap | curtains) & ~_window(c, -0.03)
    # From a side part over the crown, then straight down past the face.
    part = np.array([0.35, -2.2])
    rx, ry = _normalise(c.x - part[0], c.y - part[1])
    down_x = 0.06 * np.sign(c.x) + 0.04 * _smooth_noise(c, 20.0, 34)
    wgt = np.clip((c.y + 1.0) / 0.9, 0.0, 1.0)
    fx, fy = _normalise(rx * (1 - wgt) + down_x * wgt, ry * (1 - wgt) + 1.0 * wgt)
    tex = _strand_texture(c, fx, fy, steps=26, seed=35)
    rgb, a = _shade(c, inside, fx, fy, tex, style, dome_px=0.5 * PX_PER_IOD)
    _flyaways(c, inside & (c.y < 0.0), ~_window(c, 0.25), fx, fy, rgb, a, count=40, length_px=30, seed=36, colour=style.colour)
    return _material(style, c, rgb, a)


def _draw_curly_afro(style: HairStyle) -> HairMaterial:
    c = _canvas()
    rng = np.random.default_rng(51)
    theta = np.arctan2(c.y + 0.95, c.x)
    # An irregular rim: many small lobes of random size and phase, not a cog.
    lumps = sum(rng.uniform(0.006, 0.018) * np.cos(k * theta + rng.uniform(0, 2 * math.pi)) for k in range(5, 40, 3))
    lumps = lumps + 0.03 * _smooth_noise(c, 5.0, 54)
    r = np.hypot(c.x / 2.0, (c.y + 0.95) / 1.9)
    inside = (r < 1.0 + lumps) & ~_window(c, -0.02) & (c.y < 1.0 - 0.25 * np.abs(c.x) ** 2 / 4.0)
    # Tight curls: a flow that turns every few pixels, smeared only a little.
    angle = _smooth_noise(c, 3.5, 52) * 2.2 * math.pi
    fx, fy = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    tex = _strand_texture(c, fx, fy, steps=4, seed=53, fine=0.6, coarse=1.6)
    # Coils drawn as small arcs on top give the curl its ringlets.
    coils = np.zeros((c.h, c.w), np.float32)
    ys, xs = np.nonzero(inside)
    for i in rng.choice(len(xs), size=min(9000, len(xs)), replace=False):
        rad = int(rng.integers(3, 7))
        start = int(rng.integers(0, 360))
        cv2.ellipse(
            coils,
            (int(xs[i]), int(ys[i])),
            (rad, max(2, rad - 1)),
            int(rng.integers(0, 180)),
            start,
            start + int(rng.integers(160, 300)),
            float(rng.uniform(-0.8, 1.0)),
            1,
            cv2.LINE_AA,
        )
    tex = np.clip(tex * 0.6 + 0.25 + 0.35 * cv2.GaussianBlur(coils, (0, 0), 0.5), 0.0, 1.0)
    # Curls bunch into clumps with darker gaps between them: volume, not a flat mat.
    clumps = _smooth_noise(c, 7.0, 55)
    tex = np.clip(tex * (0.85 + 0.18 * np.tanh(clumps)), 0.0, 1.0).astype(np.float32)
    rgb, a = _shade(c, inside, fx, fy, tex, style, dome_px=0.9 * PX_PER_IOD, sheen=0.35)
    return _material(style, c, rgb, a)


def _draw_top_bun(style: HairStyle) -> HairMaterial:
    c = _canvas()
    cap = _scalp(c, 0.06) & ~_window(c, -0.05) & (c.y < -0.05)
    bun_c = np.array([0.0, -2.05])
    bun = _ellipse(c, bun_c[0], bun_c[1], 0.56, 0.46)
    bx, by = c.x - bun_c[0], c.y - bun_c[1]
    # Cap: combed up towards the knot; bun: wound round it.
    ux, uy = _normalise(-bx, -by)
    tx, ty = _normalise(-by + 0.25 * bx, bx + 0.25 * by)
    fx = np.where(bun, tx, ux).astype(np.float32)
    fy = np.where(bun, ty, uy).astype(np.float32)
    tex = _strand_texture(c, fx, fy, steps=16, seed=61, coarse=1.6)
    cap_rgb, cap_a = _shade(c, cap, fx, fy, tex, style, dome_px=0.5 * PX_PER_IOD, sheen=1.2)
    bun_rgb, bun_a = _shade(c, bun, fx, fy, tex, style, dome_px=0.3 * PX_PER_IOD, sheen=1.0)
    # The knot sits behind the crown's front edge: it is drawn under the cap's top.
    shadow = cv2.GaussianBlur(cap_a, (0, 0), 6.0)
    bun_rgb = bun_rgb * (1.0 - 0.35 * shadow)[..., None]
    a = cap_a + bun_a * (1.0 - cap_a)
    rgb = (cap_rgb * cap_a[..., None] + bun_rgb * (bun_a * (1.0 - cap_a))[..., None]) / np.maximum(a, 1e-6)[..., None]
    return _material(style, c, rgb.astype(np.float32), a.astype(np.float32))


_DRAW = {
    "short_crop": _draw_short_crop,
    "long_straight": _draw_long_straight,
    "curly_afro": _draw_curly_afro,
    "top_bun": _draw_top_bun,
}
