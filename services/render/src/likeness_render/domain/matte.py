"""Cutting the person out at output resolution and compositing onto a new background.

The selfie model answers at 256x256: upsampled, its edge is a few pixels off and soft in the
wrong places. The cut-out works on the output-size crop:

1. the coarse mask is made a single person: only the component that holds the face is kept
   (a neighbour's shoulder, a flag pole, a blob of curtain go), and holes inside the person
   that do not reach the frame's border are filled (an ear rim, a gap in the hair);
2. a trimap marks a band around that silhouette as unknown;
3. Levin et al.'s closed-form matting solves the alpha of the band's pixels: the matting
   Laplacian is assembled from the 3x3 windows that touch the band only and solved with
   conjugate gradients, so the cost follows the band's length, not the picture's area
   (pymatting's solver, which builds it for every pixel, checks it in the tests);
4. the person's own colour in the edge pixels is solved from I = aF + (1 - a)B with the old
   background B taken from beside each pixel, and backdrop light on the rim (a green screen
   tints a white collar, magenta a dark strand of hair) is unmixed: its chroma and lightness
   come off, and a cast of the backdrop's hue that is left takes the chroma of the person's
   interior nearby, so the old background does not tint the new one.

The rim is measured from the solved alpha's own edge, not the mask's: the mask may reach well
outside the person, with the backdrop's light on what it calls the inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from scipy import ndimage, sparse

RGB = npt.NDArray[np.uint8]
Alpha = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

# Half-width of the unknown band, as a fraction of the crop's short side: the coarse mask's
# misplacement is about two model cells (the model sees 256 px across the crop).
BAND_FRACTION = 1 / 80
MIN_BAND_PX = 3
# Holes in the person at most this fraction of the crop are filled (ears, hair gaps); a
# larger enclosed region is real background (an arm on a hip).
MAX_HOLE_FRACTION = 0.02
# Alpha below this is dropped and above 1 - this is made solid: solver noise, not hair.
ALPHA_NOISE = 0.1
# The solved alpha's outer end is cut off here: the faint outer tail of a soft edge is a halo of
# the old background's light on a plain new one (an ID photo's edge is crisp), not hair.
ALPHA_OUTER = 0.35
# The unknown band reaches this share of its inner width outside the coarse silhouette.
OUTSIDE_SHARE = 0.67
# Where the coarse mask is undecided (between this and 1 - this) near the silhouette's edge, the
# trimap does not take its side: a plateau of ~0.5 over a black collar would otherwise cut a notch.
DOUBT = 0.25
# ... up to this many band radii from the edge.
DOUBT_REACH = 3
# The colour guess that starts the solve there takes its colour means on a grid this much coarser.
GUESS_STEP = 2
# ... and a doubted pixel whose colour is at least the second of these (RGB distance) from every sure
# background pixel's colour in the frame starts as person (from the first, in part): the old
# background is what the solve must find, and a colour it does not have is not it.
UNLIKE_BACK = (20.0, 50.0)
# ... measured on an RGB grid of cells this wide, where this many background pixels make a colour.
RGB_CELL = 16
BACKGROUND_MIN_PX = 3
# A region of the mask apart from the person this large (of the frame) is someone or something else.
OTHER_FRACTION = 0.01
# Enough for the band (a few pixels wide: information crosses it in a few dozen steps).
CG_ITERATIONS = 60
# The alpha is solved on a half-size copy when that copy's short side is still at least this.
SOLVE_MIN_SIDE = 180
# Backdrop light is removed up to half this many band radii inside the alpha's edge.
SPILL_DEPTH = 6
# A rim pixel whose chroma points this much closer (cosine) to the backdrop's than the interior's
# does has a cast of the backdrop; twice this closer, its chroma is the interior's.
SPILL_COS = 0.2
# At most this share of a rim pixel's light is taken for the backdrop's (unmixing divides by the rest).
MAX_SPILL_SHARE = 0.4
# The interior's colour field (a mean over SPILL_DEPTH band radii) is taken on a grid this much coarser.
INTERIOR_STEP = 3
# Interior pixels with a chroma (RGB distance from their grey) above this count as coloured.
COLOURED = 12.0
# ... and their colour speaks for the interior where they are at least this share of it (less: in part).
COLOURED_SHARE = 0.6


@dataclass(frozen=True)
class CutOut:
    alpha: Alpha  # (H, W) 0..1
    foreground: npt.NDArray[np.float32]  # (H, W, 3) 0..255: the person's colour without the old background
    person: Mask  # the cleaned hard silhouette the trimap was built from
    others_removed: int = 0  # other large regions of the mask (a neighbour, a big object) left out


def band_radius(shape: tuple[int, int]) -> int:
    return max(MIN_BAND_PX, round(min(shape) * BAND_FRACTION))


def others(coarse: Alpha, person: Mask) -> int:
    """Regions of the coarse mask apart from `person` of at least OTHER_FRACTION of the frame."""
    rest = ((coarse >= 0.5) & ~person).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= OTHER_FRACTION * coarse.size).sum()) if count > 1 else 0


def single_person(coarse: Alpha, seed: tuple[float, float]) -> Mask:
    """The coarse mask's component holding `seed` (x, y: the face centre), interior holes filled."""
    hard = (coarse >= 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    if count <= 1:
        return np.zeros(coarse.shape, bool)
    h, w = coarse.shape
    x, y = min(w - 1, max(0, round(seed[0]))), min(h - 1, max(0, round(seed[1])))
    label = labels[y, x]
    if label == 0:
        # The face centre fell on a hole in the mask: the largest component near it is the person.
        near = labels[max(0, y - h // 8) : y + h // 8, max(0, x - w // 8) : x + w // 8]
        found = np.bincount(near[near > 0].ravel(), minlength=count)
        label = int(found.argmax()) if found.any() else int(stats[1:, cv2.CC_STAT_AREA].argmax() + 1)
    person = labels == label
    return fill_holes(person, MAX_HOLE_FRACTION * h * w)


def fill_holes(person: Mask, max_area: float) -> Mask:
    """Background regions enclosed by the person (not touching the border) up to `max_area` px become person."""
    background = (~person).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    if count <= 2:
        return person
    h, w = person.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    touches = (x == 0) | (y == 0) | (x + bw == w) | (y + bh == h)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    fill = ~touches & small
    fill[0] = False
    return person | fill[labels]


def trimap(person: Mask, radius: int, outside: int | None = None) -> npt.NDArray[np.float64]:
    """1 sure person, 0 sure background, 0.5 the band from `radius` px inside the silhouette to `outside` px outside it."""
    out_r = radius if outside is None else outside

    def disc(r: int) -> npt.NDArray[np.uint8]:
        return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))

    p = person.astype(np.uint8)
    sure = cv2.erode(p, disc(radius), borderType=cv2.BORDER_REPLICATE) > 0
    maybe = cv2.dilate(p, disc(out_r), borderType=cv2.BORDER_REPLICATE) > 0
    out = np.full(person.shape, 0.5)
    out[sure] = 1.0
    out[~maybe] = 0.0
    return out


def with_doubt(tri: npt.NDArray[np.float64], coarse: Alpha, person: Mask, radius: int) -> tuple[npt.NDArray[np.float64], Mask]:
    """`tri` with the pixels near the silhouette's edge where `coarse` is undecided made unknown,
    and those pixels, the band's own among them.

    The solve starts from a colour guess at all of them, not from the band's ramp: where the
    mask wavers over a wide stretch (a shoulder in shadow at the frame's edge), a ramp start
    that says "half background" is what the solve's iterations still leave there, and the
    stretch comes out half transparent.
    """
    doubt = (coarse > DOUBT) & (coarse < 1.0 - DOUBT)
    if not doubt.any():
        return tri, doubt
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * DOUBT_REACH * radius + 1,) * 2)
    p = person.astype(np.uint8)
    near = (cv2.dilate(p, disc) > 0) & ~(cv2.erode(p, disc, borderType=cv2.BORDER_REPLICATE) > 0)
    doubt &= near
    out = tri.copy()
    out[doubt] = 0.5
    return out, doubt


def colour_guess(image: RGB, tri: npt.NDArray[np.float64], radius: int, at: Mask) -> npt.NDArray[np.float64]:
    """A first guess of alpha from colour alone at the `at` pixels (0 elsewhere): how much closer each
    is to the sure person's colour nearby than to the sure background's (over `radius` px around it).

    Where the mask is undecided over a wide stretch, the solve cannot pull its start far in the
    iterations it gets (in a flat region alpha is nearly free): the start has to be right. The
    colour means are smooth: they are taken on a grid GUESS_STEP times coarser.

    A mean of the sure person nearby may be no colour of the doubted stretch (a helmet ring's
    grey beside an orange sleeve), so the ratio calls it half and half: a pixel whose colour no
    sure background pixel of the frame comes close to starts as person instead.
    """
    h, w = tri.shape
    size = (max(1, w // GUESS_STEP), max(1, h // GUESS_STEP))
    img = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.float32)
    sure_front = np.asarray(cv2.resize((tri >= 1.0).astype(np.float32), size, interpolation=cv2.INTER_AREA), np.float32)
    sure_back = np.asarray(cv2.resize((tri <= 0.0).astype(np.float32), size, interpolation=cv2.INTER_AREA), np.float32)
    r = max(1, radius // GUESS_STEP)
    front, _ = _spread_mean(img, sure_front, r)
    back, _ = _spread_mean(img, sure_back, r)
    ys, xs = np.nonzero(at)
    cy, cx = np.minimum(ys // GUESS_STEP, size[1] - 1), np.minimum(xs // GUESS_STEP, size[0] - 1)
    colour = _planes(image[ys, xs].astype(np.float32))
    to_front, to_back = colour - _planes(front[cy, cx]), colour - _planes(back[cy, cx])
    d_front, d_back = np.sqrt(_plane_dot(to_front, to_front)), np.sqrt(_plane_dot(to_back, to_back))
    ratio = d_back / np.maximum(d_front + d_back, 1e-3)
    lo, hi = UNLIKE_BACK
    unlike = np.clip((_background_distance(img[sure_back > 0.99], image[ys, xs]) - lo) / (hi - lo), 0.0, 1.0)
    guess = np.zeros((h, w), np.float64)
    guess[ys, xs] = np.maximum(ratio, unlike)
    return guess


def _background_distance(background: npt.NDArray[np.float32], colours: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """RGB distance from each of `colours` to the closest colour the `background` pixels have, to
    within a cell of RGB_CELL units (inf when they have none).

    The background's colours are binned on an RGB grid (a cell counts when BACKGROUND_MIN_PX
    pixels fall in it: a stray pixel is not a colour of the wall) and the grid's distance
    transform is read at each colour's cell: the same small cost for a plain wall and a busy room.
    """
    levels = 256 // RGB_CELL
    cell = np.minimum(background.astype(np.intp) // RGB_CELL, levels - 1)
    counts = np.bincount((cell[:, 0] * levels + cell[:, 1]) * levels + cell[:, 2], minlength=levels**3)
    found = (counts >= BACKGROUND_MIN_PX).reshape(levels, levels, levels)
    if not found.any():
        return np.full(len(colours), np.inf, np.float32)
    distance = ndimage.distance_transform_edt(~found) * RGB_CELL
    at = colours.astype(np.intp) // RGB_CELL
    return np.asarray(distance[at[:, 0], at[:, 1], at[:, 2]], np.float32)


def connected_alpha(alpha: Alpha, core: Mask) -> Alpha:
    """Alpha of the parts connected to `core` only: specks the solver put out in the background go."""
    some = (alpha > ALPHA_NOISE).astype(np.uint8)
    count, labels = cv2.connectedComponents(some, connectivity=8)
    if count <= 2:
        return alpha
    keep = np.zeros(count, bool)
    keep[np.unique(labels[core & (some > 0)])] = True
    keep[0] = False
    return np.where(keep[labels], alpha, 0.0).astype(np.float32)


def _window_laplacian(
    image: npt.NDArray[np.float64], ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp], eps: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """For 3x3 windows centred at (ys, xs): their pixels' flat indices (n, 9) and each window's share
    of the matting Laplacian, delta_ij - (1 + c_i^T (Sigma + eps/9)^-1 c_j) / 9 (n, 9, 9), c the
    pixel colours minus the window mean.

    The symmetric 3x3 covariances are inverted by cofactors and the products are stacked
    matrix products: a few passes over the band's windows.
    """
    w = image.shape[1]
    flat = (ys * w + xs)[:, None] + (_WIN_DY * w + _WIN_DX)[None, :]
    # np.take and a matrix product for the window means: numpy's fancy-index gather and its
    # reduction over a length-9 axis are several times slower.
    colours = np.take(image.reshape(-1, 3), flat, axis=0)  # (n, 9, 3)
    centred = colours - np.matmul(_NINTHS, colours)
    across = np.ascontiguousarray(centred.transpose(0, 2, 1))
    cov = np.matmul(across, centred)
    cov /= 9.0
    reg = eps / 9.0
    a00, a01, a02 = cov[:, 0, 0] + reg, cov[:, 0, 1], cov[:, 0, 2]
    a11, a12, a22 = cov[:, 1, 1] + reg, cov[:, 1, 2], cov[:, 2, 2] + reg
    inv = np.empty_like(cov)
    inv[:, 0, 0] = a11 * a22 - a12 * a12
    inv[:, 0, 1] = a02 * a12 - a01 * a22
    inv[:, 0, 2] = a01 * a12 - a02 * a11
    inv[:, 1, 1] = a00 * a22 - a02 * a02
    inv[:, 1, 2] = a01 * a02 - a00 * a12
    inv[:, 2, 2] = a00 * a11 - a01 * a01
    inv[:, 1, 0], inv[:, 2, 0], inv[:, 2, 1] = inv[:, 0, 1], inv[:, 0, 2], inv[:, 1, 2]
    inv /= (a00 * inv[:, 0, 0] + a01 * inv[:, 0, 1] + a02 * inv[:, 0, 2])[:, None, None]
    vals = np.matmul(np.matmul(centred, inv), across)
    vals += 1.0
    vals *= -1.0 / 9.0
    vals[:, _NINE, _NINE] += 1.0
    return flat, vals


def _jacobi_cg(
    a: sparse.csr_matrix,
    b: npt.NDArray[np.floating],
    x0: npt.NDArray[np.floating],
    diag: npt.NDArray[np.floating],
    rtol: float,
    maxiter: int,
) -> npt.NDArray[np.floating]:
    """Conjugate gradients with a Jacobi preconditioner: scipy.sparse.linalg.cg's steps, without its
    per-step operator layers (the band's system is small: those were most of a step)."""
    x = np.array(x0, b.dtype)
    atol = rtol * float(np.linalg.norm(b))
    if atol == 0.0:
        return b
    r = b - a @ x if x.any() else b.copy()
    p = np.zeros_like(r)
    rho_prev = 1.0
    for step in range(maxiter):
        if np.linalg.norm(r) < atol:
            break
        z = r / diag
        rho = float(np.dot(r, z))
        if step > 0:
            p *= rho / rho_prev
            p += z
        else:
            p[:] = z
        q = a @ p
        size = rho / float(np.dot(p, q))
        x += size * p
        r -= size * q
        rho_prev = rho
    return x


# Offsets (dy, dx) in -2..2 of two pixels that share a 3x3 window, numbered 0..24 in raster order,
# and the number of the offset between pixels i and j of a window.
_OFFSET_DY, _OFFSET_DX = (a.ravel() for a in np.mgrid[-2:3, -2:3])
_WIN_DY, _WIN_DX = (a.ravel() for a in np.mgrid[-1:2, -1:2])
_PAIR_OFFSET = (_WIN_DY[None, :] - _WIN_DY[:, None] + 2) * 5 + (_WIN_DX[None, :] - _WIN_DX[:, None] + 2)
_NINE = np.arange(9)
_NINTHS = np.full((1, 9), 1.0 / 9.0)


def closed_form_alpha(
    image: RGB, tri: npt.NDArray[np.float64], eps: float = 1e-6, start: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64]:
    """Levin, Lischinski and Weiss's closed-form matting, built and solved for the unknown pixels' windows only.

    The matting Laplacian L = sum over 3x3 windows of (I - (1 + (Ii - mu)^T (Sigma + eps/9)^-1 (Ij - mu)) / 9)
    is assembled only from windows that touch an unknown pixel, and L_uu alpha_u = -L_uk alpha_k is solved
    with preconditioned conjugate gradients: the cost follows the band, not the picture.
    """
    h, w = tri.shape
    alpha = np.where(tri >= 1.0, 1.0, 0.0)
    unknown = tri == 0.5
    # Unknown pixels on the picture's own border cannot be window centres' neighbours on all sides:
    # they keep the nearest side's value.
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    centres[0, :] = centres[-1, :] = centres[:, 0] = centres[:, -1] = False
    ys, xs = np.nonzero(centres)
    if ys.size == 0:
        return alpha
    img = image.astype(np.float64) / 255.0
    order = np.full(h * w, -1, np.int64)
    reached = centres_reach(unknown, centres)
    flat_unknown = np.flatnonzero(unknown.ravel() & reached)
    order[flat_unknown] = np.arange(flat_unknown.size)
    if flat_unknown.size == 0:
        return alpha
    n = flat_unknown.size
    # L's entries of window k: delta_ij - (1 + c_i^T inv c_j) / 9, for its pixels i, j (3x3 each).
    pixels, vals = _window_laplacian(img, ys, xs, eps)
    # Two pixels share a window only within 2 px of each other: each unknown pixel's row of L has
    # at most 25 entries, one per offset. Sum every window's share into (unknown row, offset);
    # rows of known pixels go to a spare row n, dropped after the sum.
    u = order[pixels]  # each window pixel's unknown number, -1 when known
    keys = np.where(u >= 0, u, n)[:, :, None] * 25 + _PAIR_OFFSET[None]
    coef = np.bincount(keys.ravel(), weights=vals.ravel(), minlength=(n + 1) * 25).reshape(n + 1, 25)[:n]
    neighbours = np.clip(flat_unknown[:, None] + (_OFFSET_DY * w + _OFFSET_DX)[None], 0, h * w - 1)
    cols = order[neighbours]
    # Known neighbours go to the right-hand side; unknown ones make L_uu, a row's columns in order.
    rhs = -(np.where(cols < 0, coef, 0.0) * alpha.ravel()[neighbours]).sum(axis=1)
    entries = (cols >= 0) & (coef != 0.0)
    indptr = np.concatenate(([0], np.cumsum(entries.sum(axis=1))))
    # The solve in float32: half the memory traffic per step, and its rounding (~1e-7 of a
    # unit) far below the 1e-4 tolerance it stops at.
    luu = sparse.csr_matrix((coef[entries].astype(np.float32), cols[entries], indptr), shape=(n, n))
    # A tiny ridge keeps the system definite where a window's colours are flat.
    # Conjugate gradients with a Jacobi preconditioner, started from `start` or the trimap's middle.
    diag = (coef[:, 12] + 1e-9).astype(np.float32)
    first = (_ramp(tri) if start is None else start).ravel()[flat_unknown]
    solved = _jacobi_cg(luu, rhs.astype(np.float32), first, diag, 1e-4, CG_ITERATIONS)
    flat = alpha.ravel()
    flat[flat_unknown] = np.clip(solved, 0.0, 1.0)
    # Unknown pixels no window reached (the frame's outermost pixels): the value beside them.
    missed = unknown & ~reached.reshape(h, w)
    if missed.any():
        near = cv2.blur(flat.reshape(h, w).astype(np.float32), (3, 3))
        flat.reshape(h, w)[missed] = near[missed]
    return flat.reshape(h, w)


def _ramp(tri: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A first guess for the band: the share of the way from its outer to its inner side."""
    to_out = cv2.distanceTransform((tri > 0.0).astype(np.uint8), cv2.DIST_L2, 3)
    to_in = cv2.distanceTransform((tri < 1.0).astype(np.uint8), cv2.DIST_L2, 3)
    return np.asarray(to_out / np.maximum(to_out + to_in, 1e-6), np.float64)


def centres_reach(unknown: Mask, centres: Mask) -> npt.NDArray[np.bool_]:
    """Flat mask of the pixels some window centre in `centres` covers."""
    return (cv2.dilate(centres.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0).ravel()


def solve_alpha(image: RGB, tri: npt.NDArray[np.float64], start: npt.NDArray[np.float64] | None = None) -> Alpha:
    """The alpha of the trimap's unknown band (`start`: a first guess), with solver noise at either end cut off."""
    a = closed_form_alpha(image, tri, start=start)
    # Solver noise and the faint outer tail are cut off, and the ramp between is stretched over
    # what is left: a sliver less hair does not show, a faint veil of old background does.
    a = np.clip((a - ALPHA_OUTER) / (1.0 - ALPHA_OUTER - ALPHA_NOISE), 0.0, 1.0)
    return a.astype(np.float32)


def _local_mean(
    colours: npt.NDArray[np.float32], weight: npt.NDArray[np.float32], radius: int, weighted: npt.NDArray[np.float32] | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Weighted local mean colour over a (2 radius + 1) square, and the weight's own local mean
    (`weighted`: colours * weight, when the caller has it)."""
    box = (2 * radius + 1, 2 * radius + 1)
    mass = np.asarray(cv2.blur(weight, box), np.float32)
    total = np.asarray(cv2.blur(colours * _three(weight) if weighted is None else weighted, box), np.float32)
    total /= _three(np.maximum(mass, 1e-6))
    return total, mass


def _three(plane: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """A plane repeated as three channels: numpy's broadcast over a length-3 last axis runs a
    loop per pixel, several times slower than the same operation on whole arrays."""
    return np.asarray(cv2.merge((plane, plane, plane)), plane.dtype)


def _spread_mean(colours: npt.NDArray[np.float32], weight: npt.NDArray[np.float32], radius: int) -> tuple[npt.NDArray[np.float32], Mask]:
    """Local mean colour of the weighted pixels, reaching four times farther where they are sparse,
    and where there were any to average (elsewhere the pixel's own colour stands in)."""
    weighted = colours * _three(weight)
    mean, mass = _local_mean(colours, weight, radius, weighted)
    wide, wide_mass = _local_mean(colours, weight, 4 * radius, weighted)
    # Masked copies by OpenCV (numpy's where= over a broadcast channel axis is many times slower).
    sparse_here = mass < 0.02
    mean = np.asarray(cv2.copyTo(wide, sparse_here.view(np.uint8), mean), np.float32)
    known = ~sparse_here | (wide_mass >= 0.002)
    mean = np.asarray(cv2.copyTo(colours, (~known).view(np.uint8), mean), np.float32)
    return mean, known


class _Fields:
    """Smooth colour fields around the edge, at the solve's scale, read at full-size pixels.

    They are local means over several pixels: read at the nearest cell of the solve's grid they
    need no full-size copy (three RGB float images less to resize per photo).
    """

    def __init__(self, image: RGB, alpha: Alpha, radius: int, full: tuple[int, int]) -> None:
        self.img = image.astype(np.float32)
        self.radius = radius
        self.full = full  # (h, w) of the output
        # The old background's colour nearby, and the person's.
        self.back, self.back_known = _spread_mean(self.img, (alpha <= 0.0).astype(np.float32), radius)
        self.front, _ = _spread_mean(self.img, (alpha >= 1.0).astype(np.float32), radius)
        # Well inside: this far from any pixel the matte did not make solid (the mask's own edge may
        # lie well outside the person, with the backdrop's light on what it calls the inside).
        self.depth = SPILL_DEPTH * radius
        self.inner = cv2.distanceTransform((alpha >= 1.0).astype(np.uint8), cv2.DIST_L2, 3) > self.depth / 2

    def cells(self, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        hs, ws = self.inner.shape
        return (ys * hs) // self.full[0], (xs * ws) // self.full[1]

    def interior(self, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The person's colour well inside, near these cells (computed when a rim needs it): the mean
        of all of it, and the mean of its coloured part only (grey, black and white cloth left out).

        The second says which colours the person has nearby: skin beside a black collar keeps its
        warmth before a pink wall, where a mean with the black would call it the wall's light.
        Both average over `depth` cells: a grid INTERIOR_STEP times coarser is as good and a
        fraction of the work.
        """
        hs, ws = self.inner.shape
        step = max(1, min(INTERIOR_STEP, self.depth // 4))
        size = (max(1, ws // step), max(1, hs // step))
        img = np.asarray(cv2.resize(self.img, size, interpolation=cv2.INTER_AREA), np.float32)
        weight = np.asarray(cv2.resize(self.inner.astype(np.float32), size, interpolation=cv2.INTER_AREA), np.float32)
        radius = max(1, self.depth // step)
        field, _ = _spread_mean(img, weight, radius)
        chroma = img - img.mean(axis=2, keepdims=True)
        coloured = weight * (np.sqrt((chroma * chroma).sum(axis=2)) > COLOURED).astype(np.float32)
        hue, mass = _local_mean(img, coloured, radius)
        # Only where the coloured part is a fair share of the interior nearby: a few green pixels
        # seen through a gap in the hair are not the person's colour.
        inner_mass = cv2.blur(weight, (2 * radius + 1, 2 * radius + 1))
        share = np.clip(mass / np.maximum(inner_mass, 1e-6) / COLOURED_SHARE, 0.0, 1.0) * (mass > 0.02)
        hue = field + _three(share * share) * (hue - field)
        cy, cx = np.minimum(ys * size[1] // hs, size[1] - 1), np.minimum(xs * size[0] // ws, size[0] - 1)
        flat = cy * size[0] + cx
        return _rows(field, flat), _rows(hue, flat)


def foreground_colour(image: RGB, alpha: Alpha, back: npt.NDArray[np.float32], front: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The person's colour behind edge pixels (`image`, `alpha`, `back`, `front`: rows of them).

    The person's colour solves I = aF + (1 - a)B with B the old background beside the pixel,
    where a is large enough to trust, and is the person's colour nearby where it is not.
    """
    a = alpha[:, None]
    solved = np.clip((image - (1.0 - a) * back) / np.maximum(a, 0.05), 0.0, 255.0)
    trust = np.clip((a - 0.1) / 0.4, 0.0, 1.0)
    return np.asarray(trust * solved + (1.0 - trust) * front, np.float32)


def backdrop_strength(back: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """0..1 per row of old-background colours: how much of a colour of its own it has to spill.

    A grey or white wall has no direction to remove; a saturated one does.
    """
    planes = _planes(back)
    chroma = planes - _plane_mean(planes)
    return _strength(np.sqrt(_plane_dot(chroma, chroma)))


def _strength(norm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(np.clip((norm - 15.0) / 15.0, 0.0, 1.0), np.float32)


def remove_spill(
    fg: npt.NDArray[np.float32], bk: npt.NDArray[np.float32], inside: npt.NDArray[np.float32], hues: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """The old background's tint taken off rim pixels (rows: the person's colour, the old background's,
    the interior's nearby, and the interior's coloured part nearby: `inside` when None).

    A pixel's chroma along the old background's own chroma direction is limited to what the
    person's coloured interior nearby has along it: a green backdrop can no longer make a white
    collar green, while a green jumper stays green (and skin stays warm before a pink wall). The excess is the backdrop's light mixed in,
    I = (1 - s) F + s B with s the excess over the backdrop's own chroma: its lightness is
    unmixed too (a magenta rim would otherwise stay a pale stripe once grey). Where what is
    left still has the backdrop's hue (a dark strand of hair before magenta keeps a magenta
    cast however little chroma it has left), its chroma is taken toward the interior's nearby
    chroma, scaled to its lightness.
    """
    # Channel planes (3, n): each step's operands are contiguous rows (the same float32 arithmetic).
    fg, bk, inside = _planes(fg), _planes(bk), _planes(inside)
    inside_grey = _plane_mean(inside)
    own_c = inside - inside_grey
    if hues is None:
        hue_c = own_c
    else:
        hue_planes = _planes(hues)
        hue_c = hue_planes - _plane_mean(hue_planes)
    # Chroma as the colour minus its grey (mean of the channels), in RGB units.
    grey = _plane_mean(fg)
    fg_c = fg - grey
    bk_grey = _plane_mean(bk)
    bk_c = bk - bk_grey
    norm = np.sqrt(_plane_dot(bk_c, bk_c))
    direction = bk_c / np.maximum(norm, 1e-3)
    own = np.maximum(_plane_dot(own_c, direction), _plane_dot(hue_c, direction))
    along = _plane_dot(fg_c, direction)
    strength = _strength(norm)
    excess = np.maximum(along - np.maximum(own, 0.0), 0.0) * strength
    fg_c = fg_c - excess * direction
    share = np.clip(excess / np.maximum(norm, 1e-3), 0.0, MAX_SPILL_SHARE)
    grey = np.clip((grey - share * bk_grey) / (1.0 - share), 0.0, 255.0)
    # What is left: how much it points the backdrop's way (cosine), against how much the interior does.
    size = np.sqrt(_plane_dot(fg_c, fg_c))
    cos = _plane_dot(fg_c, direction) / np.maximum(size, 1e-3)
    own_cos = np.maximum(
        _plane_dot(own_c, direction) / np.maximum(np.sqrt(_plane_dot(own_c, own_c)), 1e-3),
        _plane_dot(hue_c, direction) / np.maximum(np.sqrt(_plane_dot(hue_c, hue_c)), 1e-3),
    )
    cast = np.clip((cos - np.maximum(own_cos, 0.0) - SPILL_COS) / SPILL_COS, 0.0, 1.0) * np.clip(size / 4.0, 0.0, 1.0) * strength
    # The interior's hue and saturation at this pixel's lightness (chroma in RGB units scales with it).
    target = own_c * np.clip(grey / np.maximum(inside_grey, 1.0), 0.0, 1.5)
    fg_c += cast * (target - fg_c)
    return np.asarray(np.clip(grey + fg_c, 0, 255), np.float32).T


def _planes(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(3, n) channel planes of (n, 3) rows."""
    return np.ascontiguousarray(rows.T)


def _plane_mean(c: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(n,) mean of (3, n) channel planes."""
    return np.asarray((c[0] + c[1] + c[2]) / 3.0, c.dtype)


def _plane_dot(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """(n,) dot products of (3, n) channel planes."""
    return np.asarray(a[0] * b[0] + a[1] * b[1] + a[2] * b[2], np.float32)


def person_colour(image: RGB, alpha: Alpha, fields: _Fields) -> npt.NDArray[np.float32]:
    """The person's colour at every pixel, free of the old background: the photo, solved in the
    edge and unmixed on the rim; only those pixels are computed.

    The rim's pixels and their cells are gathered by flat index (one take per array: numpy's
    two-index gathers of (n, 3) rows cost several times more).
    """
    out = image.astype(np.float32)
    # The rim: the person's pixels that are not well inside.
    inner = fields.inner
    if inner.shape != alpha.shape:
        inner = cv2.resize(inner.astype(np.uint8), alpha.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
    at = np.flatnonzero((alpha > 0.0) & ~inner)
    w = alpha.shape[1]
    cy, cx = fields.cells(at // w, at % w)
    cell = cy * fields.inner.shape[1] + cx
    pixels = out.reshape(-1, 3)
    a = alpha.ravel()[at]
    back = _rows(fields.back, cell)
    edge = np.flatnonzero(a < 1.0)
    colour = np.take(pixels, at, axis=0)
    if edge.size:
        solved = foreground_colour(_rows(colour, edge), a[edge], _rows(back, edge), _rows(fields.front, cell[edge]))
        _put_rows(colour, edge, solved)
    # Spill only from an old background that is near (and has a colour of its own).
    tinted = np.flatnonzero((backdrop_strength(back) > 0.0) & fields.back_known.ravel()[cell])
    if tinted.size:
        unmixed = remove_spill(_rows(colour, tinted), _rows(back, tinted), *fields.interior(cy[tinted], cx[tinted]))
        _put_rows(colour, tinted, unmixed)
    _put_rows(pixels, at, colour)
    return out


def _rows(a: npt.NDArray[np.float32], idx: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
    """Rows `idx` of the (..., 3) array `a` read as (n, 3) rows (np.take: numpy's fancy index is
    several times slower on narrow rows)."""
    return np.take(a.reshape(-1, 3), idx, axis=0)


def _put_rows(a: npt.NDArray[np.float32], idx: npt.NDArray[np.intp], rows: npt.NDArray[np.float32]) -> None:
    """Rows `idx` of the contiguous (n, 3) float32 array `a` set to `rows`, each row moved as one
    12-byte item (twice as fast as numpy's fancy-index assignment of narrow rows)."""
    item = np.dtype((np.void, 12))
    a.view(item).reshape(-1)[idx] = np.ascontiguousarray(rows, np.float32).view(item).reshape(-1)


def model_alpha(predicted: Alpha, person: Mask) -> Alpha:
    """A matting model's alpha made one person: what is not connected to `person` goes, its holes are solid.

    `person` is `single_person` of the prediction (the face's component, small enclosed holes filled).
    """
    alpha = np.asarray(predicted, np.float32)
    # Faint haze (at most ALPHA_NOISE) and whatever is not connected to the person go.
    core = cv2.erode(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    alpha = connected_alpha(alpha, core if core.any() else person)
    # An ear rim or a gap in the hair the model let through, enclosed by the person: solid.
    alpha[person & (alpha < 0.5)] = 1.0
    return alpha


def cut_out(image: RGB, coarse: Alpha, face_centre: tuple[float, float], refined: bool = False) -> CutOut:
    """Alpha and spill-free foreground of the one person whose face is at `face_centre`.

    `coarse` is the selfie model's mask, or with `refined` a matting model's alpha at the
    image's resolution: that is kept (one person, holes filled) instead of being solved.

    The alpha and the smooth colour fields around the edge are solved at half the output's
    size when that is still over SOLVE_MIN_SIDE px (a 300 dpi ID photo): a quarter of the
    unknowns, and at most a half-pixel of softness, which print does not show. The person's
    colour is then solved at full size for the rim pixels only, the fields read on the solve's grid.
    """
    if image.shape[:2] != coarse.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {coarse.shape} differ in size")
    h, w = coarse.shape
    # A model's alpha is used at full size (its detail is the point of it).
    k = 2 if min(h, w) >= 2 * SOLVE_MIN_SIDE and not refined else 1
    small_img, small_coarse = image, coarse
    if k > 1:
        size = (round(w / k), round(h / k))
        small_img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small_coarse = cv2.resize(coarse, size, interpolation=cv2.INTER_AREA)
    person = single_person(small_coarse, (face_centre[0] / k, face_centre[1] / k))
    if not person.any():
        return CutOut(np.zeros(coarse.shape, np.float32), image.astype(np.float32), np.zeros(coarse.shape, bool))
    removed = others(small_coarse, person)
    radius = band_radius(small_coarse.shape)
    if refined:
        alpha = model_alpha(small_coarse, person)
    else:
        # The selfie model's upsampled mask spills over the person's edge more often than it falls
        # short of it: the band reaches less far out than in.
        band = trimap(person, radius, max(2, round(radius * OUTSIDE_SHARE)))
        # Where the mask is undecided near the edge, the solve decides, started from the colours.
        tri, doubt = with_doubt(band, small_coarse, person, radius)
        start = None
        if doubt.any():
            start = np.where(doubt, colour_guess(small_img, tri, DOUBT_REACH * radius, doubt), _ramp(band))
        alpha = solve_alpha(small_img, tri, start)
        core = tri == 1.0
        alpha = connected_alpha(alpha, core if core.any() else person)
    fields = _Fields(small_img, alpha, radius, (h, w))
    if k > 1:
        full = (w, h)
        alpha = cv2.resize(alpha, full, interpolation=cv2.INTER_LINEAR)
        alpha[alpha < 0.02] = 0.0
        alpha[alpha > 0.98] = 1.0
        person = cv2.resize(person.astype(np.uint8), full, interpolation=cv2.INTER_NEAREST) > 0
    fg = person_colour(image, alpha, fields)
    return CutOut(alpha, fg, person, removed)


def composite(foreground: npt.NDArray[np.float32] | RGB, alpha: Alpha, background: npt.NDArray[np.float32] | RGB) -> RGB:
    """Person (already free of the old background's colour) over a new background."""
    # The same float32 arithmetic, in place, with alpha spread to three channels first: numpy's
    # broadcast over a length-3 last axis runs a loop per pixel.
    a = np.asarray(cv2.merge((alpha, alpha, alpha)), np.float32)
    out = np.multiply(foreground, a, dtype=np.float32)
    # 1 - a, as -(a - 1) in place (the same rounding), times the background.
    a -= 1.0
    np.negative(a, out=a)
    a *= background
    out += a
    out += 0.5
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def solid(width: int, height: int, colour: str) -> RGB:
    """A plain background of a '#rrggbb' colour."""
    # One row filled, then copied down row by row: np.full with a colour per pixel runs numpy's
    # broadcast over a length-3 axis, about 60 times slower (2-3 ms for an ID photo's size).
    out = np.empty((height, width, 3), np.uint8)
    out[:] = np.full((1, width, 3), hex_rgb(colour), dtype=np.uint8)
    return out


def gradient(width: int, height: int, top: str, bottom: str) -> RGB:
    """A vertical gradient from `top` to `bottom`."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    a, b = np.array(hex_rgb(top), np.float32), np.array(hex_rgb(bottom), np.float32)
    column = a * (1.0 - t) + b * t
    return np.broadcast_to(column, (height, width, 3)).round().astype(np.uint8)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b); ValueError otherwise."""
    c = colour.strip().lstrip("#")
    if len(c) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in c):
        raise ValueError(f"not a hex colour: {colour!r}")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)
