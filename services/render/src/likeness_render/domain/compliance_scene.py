"""What an ID photo shows around the face, measured for the compliance rules: where the eyes
look, whether the torso ends in a straight cut inside the frame, and whether a hand or an
object is beside the face.

Also whether a hat is worn (the hairstyle check's measure, hair.wears_hat).

Pure measurements on an RGB image, the person's alpha (0..1) and the face's 478-point mesh,
all in the same pixels; the rules that judge them are in ``compliance``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import (
    CHIN,
    FACE_OVAL,
    FOREHEAD_TOP,
    LEFT_BROW,
    LEFT_EYE,
    LEFT_IRIS_CENTER,
    LIPS,
    MESH_POINTS,
    NOSTRILS,
    RIGHT_BROW,
    RIGHT_EYE,
    RIGHT_IRIS_CENTER,
)
from likeness_render.domain import hair
from likeness_render.domain.compliance_pixels import grown
from likeness_render.domain.compliance_types import SceneMeasurements

FloatArray = npt.NDArray[np.float64]
Alpha = npt.NDArray[np.floating] | npt.NDArray[np.uint8]

# Eye corners, each eye from the image's left to its right (subject's right eye: outer then
# inner corner; left eye: inner then outer).
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)
# Jaw corners (the oval's lowest points before the chin curve), where the neck begins.
JAW_CORNERS = (172, 397)

# The torso's outline: a point counts as an edge when the person (alpha >= 0.5) ends there
# and the background is clear (alpha <= 0.05) within this many pixels beyond it (the matte's
# edge is a few pixels soft).
EDGE_REACH_PX = 6
# Straight means within this fraction of the frame's width of a line (Douglas-Peucker), and
# no more than MAX_CUT_TILT_DEG off horizontal (bottom) or vertical (sides): the frame is
# levelled on the eyes, so a source's edge can lean by the head's roll.
STRAIGHT_TOLERANCE = 0.008
MAX_CUT_TILT_DEG = 15.0
# Beside the face: from just outside the oval (NEAR_GAP of the face's width) out to
# NEAR_REACH of it, from the brows down to a little below the chin; the neck (below the
# jaw, within NECK_HALF_WIDTH of the chin) is not "beside".
NEAR_GAP = 0.04
NEAR_REACH = 0.35
BELOW_CHIN = 0.1
NECK_HALF_WIDTH = 0.3
# Colour models (CIELAB): skin from the face itself (median and spread), hair from all of
# the person above the brows outside the face; a colour within MATCH_DELTA_E of one of the
# hair's few centres (shades: highlights, shadow) is hair.
MATCH_DELTA_E = 18.0
WORKING_FACE_PX = 120
MODEL_CENTRES = 6
CENTRE_SAMPLES = 2000  # hair pixels the centres are found from, at most
SKIN_MAX_MAHALANOBIS = 3.0
SKIN_MAX_LIGHTNESS_STEP = 35.0


def measure_gaze(mesh: FloatArray | None) -> tuple[float, float] | None:
    """(sideways, vertical): where the irises sit between the eye corners, both eyes averaged.

    Sideways: the iris centre's position along the corner-to-corner line (0 at its middle,
    > 0 towards the image's right), as a fraction of the eye's width; mirrored eyes cancel
    each other's anatomical offset, so a face looking into the camera measures about 0.
    Vertical: the iris centre's distance below the corner line, same unit (about -0.055 at
    rest: the iris centre sits a little above the corners). ``None`` without iris points.
    """
    if mesh is None or mesh.shape[0] < MESH_POINTS:
        return None
    along, across = [], []
    for iris, (a, b) in ((RIGHT_IRIS_CENTER, RIGHT_EYE_CORNERS), (LEFT_IRIS_CENTER, LEFT_EYE_CORNERS)):
        axis = mesh[b] - mesh[a]
        width2 = float(axis @ axis)
        if width2 < 1e-6:
            return None
        d = mesh[iris] - mesh[a]
        along.append(float(d @ axis) / width2)
        across.append(float(axis[0] * d[1] - axis[1] * d[0]) / width2)
    return sum(along) / 2 - 0.5, sum(across) / 2


def measure_torso_cut(alpha: Alpha, chin_y: float) -> tuple[float, float]:
    """(bottom, side): the longest straight stretch of the person's outline below ``chin_y``
    with clear background beyond it, facing down (fraction of the frame's width) or
    sideways (fraction of its height). A torso that reaches the frame's edges has none."""
    a = _unit_alpha(alpha)
    h, w = a.shape
    person, clear = a >= 0.5, a <= 0.05
    top = max(0, min(h, math.ceil(chin_y)))
    r = EDGE_REACH_PX
    tolerance = max(2.0, STRAIGHT_TOLERANCE * w)

    below = np.zeros_like(person)
    below[:-r] = clear[r:]
    bottom_hits = person & below
    bottom_hits[:top] = False
    lowest = h - 1 - np.argmax(bottom_hits[::-1], axis=0)
    bottom = [(x, int(lowest[x])) for x in np.flatnonzero(bottom_hits.any(axis=0))]

    left_clear = np.zeros_like(person)
    left_clear[:, r:] = clear[:, :-r]
    left_hits = person & left_clear
    left_hits[:top] = False
    first = np.argmax(left_hits, axis=1)
    left = [(int(first[y]), y) for y in np.flatnonzero(left_hits.any(axis=1))]

    right_clear = np.zeros_like(person)
    right_clear[:, :-r] = clear[:, r:]
    right_hits = person & right_clear
    right_hits[:top] = False
    last = w - 1 - np.argmax(right_hits[:, ::-1], axis=1)
    right = [(int(last[y]), y) for y in np.flatnonzero(right_hits.any(axis=1))]

    side = max(_longest_straight(left, False, tolerance), _longest_straight(right, False, tolerance))
    return _longest_straight(bottom, True, tolerance) / w, side / h


def _longest_straight(points: Sequence[tuple[int, int]], horizontal: bool, tolerance: float) -> float:
    """Length of the longest straight, nearly horizontal/vertical piece of an outline given
    as one point per column (horizontal) or row; jumps of more than a few pixels split it."""
    best = 0.0
    runs: list[list[tuple[int, int]]] = []
    for p in points:
        if runs:
            q = runs[-1][-1]
            along, across = (p[0] - q[0], abs(p[1] - q[1])) if horizontal else (p[1] - q[1], abs(p[0] - q[0]))
            if along <= 3 and across <= 3:
                runs[-1].append(p)
                continue
        runs.append([p])
    for run in runs:
        if len(run) < 2:
            continue
        corners = cv2.approxPolyDP(np.array(run, np.int32).reshape(-1, 1, 2), tolerance, False).reshape(-1, 2)
        for (x0, y0), (x1, y1) in itertools.pairwise(corners):
            dx, dy = abs(int(x1) - int(x0)), abs(int(y1) - int(y0))
            angle = math.degrees(math.atan2(dy, dx))
            if (angle if horizontal else 90.0 - angle) <= MAX_CUT_TILT_DEG:
                best = max(best, math.hypot(dx, dy))
    return best


def measure_near_face(image: npt.NDArray[np.uint8], alpha: Alpha, mesh: FloatArray) -> tuple[float, float]:
    """(hand, object): beside the face and within the person, the largest skin-coloured
    blob (not the neck) and the largest blob down to the jaw that is neither skin nor hair,
    each as a fraction of the face oval's area.

    Colour decides, so an object of the hair's own colour beside it (a black phone against
    black hair) is not told apart from the hair.
    """
    a = _unit_alpha(alpha)
    h, w = a.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and alpha {(h, w)} differ in size")
    oval_pts = mesh[list(FACE_OVAL)]
    face_w = float(oval_pts[:, 0].max() - oval_pts[:, 0].min())
    face_h = float(mesh[CHIN, 1] - mesh[FOREHEAD_TOP, 1])
    if face_w < 4 or face_h < 4:
        return 0.0, 0.0
    # Work in the box that holds the face, its surroundings and the clothing below it, at a
    # scale where the face is about WORKING_FACE_PX wide (areas are judged as fractions).
    x0 = max(0, int(oval_pts[:, 0].min() - NEAR_REACH * face_w - 2))
    x1 = min(w, int(oval_pts[:, 0].max() + NEAR_REACH * face_w + 3))
    y0 = max(0, int(mesh[FOREHEAD_TOP, 1] - 0.6 * face_h))
    y1 = h
    k = min(1.0, WORKING_FACE_PX / face_w)
    full = (max(1, round((y1 - y0) * k)), max(1, round((x1 - x0) * k)))
    m = (mesh - np.array([x0, y0], np.float64)) * k
    face_w, face_h = face_w * k, face_h * k
    reach = NEAR_REACH * face_w
    chin_x, chin_y = float(m[CHIN, 0]), float(m[CHIN, 1])
    # Nothing below the face oval and the "beside" band (down to a little below the chin) is
    # looked at, so only the box's rows down to there (with the features' growth and a
    # rounding margin) are made: the same pixels as the whole box's, cut short.
    bottom = max(float(m[list(FACE_OVAL), 1].max()), chin_y + BELOW_CHIN * face_h)
    box = (min(full[0], int(bottom) + max(1, round(0.04 * face_w)) + 3), full[1])
    crop = _resized_top(image[y0:y1, x0:x1], full, box[0])
    crop_alpha = _resized_top(a[y0:y1, x0:x1], full, box[0])
    person = crop_alpha >= 0.5

    oval = _polygon(box, m[list(FACE_OVAL)])
    features = np.zeros(box, bool)
    for contour in (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, LIPS, NOSTRILS):
        features |= _polygon(box, m[list(contour)])
    skin_where = oval & ~grown(features, max(1, round(0.04 * face_w))) & person
    if np.count_nonzero(skin_where) < 20:
        return 0.0, 0.0

    jaw_y = float(m[list(JAW_CORNERS), 1].mean())
    brow_y = float(m[list(RIGHT_BROW) + list(LEFT_BROW), 1].min())
    rows = np.arange(box[0], dtype=np.float32)[:, None]
    cols = np.arange(box[1], dtype=np.float32)[None, :]

    # Hair (or a hat, a headscarf): all of the person above the brows outside the face.
    hair_area = (rows < brow_y) & ~grown(oval, max(1, round(NEAR_GAP * face_w))) & person
    from_oval = cv2.distanceTransform((~oval).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_3)
    near = (from_oval <= reach) & (from_oval > NEAR_GAP * face_w) & person
    near &= (rows >= brow_y) & (rows <= chin_y + BELOW_CHIN * face_h)
    near &= ~((rows > jaw_y) & (np.abs(cols - chin_x) < NECK_HALF_WIDTH * face_w))
    if not near.any():
        return 0.0, 0.0

    lab = _lab(crop)
    skin_samples = lab[skin_where]
    centre = np.median(skin_samples, axis=0)
    spread = np.cov((skin_samples[:, 1:] - centre[1:]).T) + np.eye(2) * 4.0
    inverse = np.linalg.inv(spread)
    pixels = lab[near]
    d = pixels[:, 1:] - centre[1:]
    skin = (np.einsum("ni,ij,nj->n", d, inverse, d) <= SKIN_MAX_MAHALANOBIS**2) & (
        np.abs(pixels[:, 0] - centre[0]) <= SKIN_MAX_LIGHTNESS_STEP
    )
    # Beside the cheeks only hair, ears and skin belong; below the jaw collars and shoulders
    # do too, so objects are looked for down to the jaw (skin blobs below it as well).
    other = ~skin & ~_matches(pixels, _centres(lab[hair_area])) & np.broadcast_to(rows <= jaw_y, box)[near]

    area = float(oval.sum())
    return _largest(near, skin) / area, _largest(near, other) / area


def measure_scene(image: npt.NDArray[np.uint8], alpha: Alpha, mesh: FloatArray | None) -> SceneMeasurements:
    """Torso cut, and (with a mesh) hand and object near the face, on one photo."""
    chin_y = float(mesh[CHIN, 1]) if mesh is not None else image.shape[0] / 2
    bottom, side = measure_torso_cut(alpha, chin_y)
    hand, thing = measure_near_face(image, alpha, mesh) if mesh is not None else (0.0, 0.0)
    headwear = measure_headwear(image, alpha, mesh) if mesh is not None else False
    return SceneMeasurements(torso_cut_bottom=bottom, torso_cut_side=side, hand_near_face=hand, object_near_face=thing, headwear=headwear)


def measure_headwear(image: npt.NDArray[np.uint8], alpha: Alpha, mesh: FloatArray) -> bool:
    """Whether the person wears a hat (hair.wears_hat, the matte making sure the brim has the person
    above it, not the background); False for a face too small to tell."""
    try:
        to_image = hair.canonical_to_image(np.asarray(mesh, np.float64)[:, :2])
    except hair.HairError:
        return False
    return hair.wears_hat(image, to_image, np.asarray(alpha))


def _unit_alpha(alpha: Alpha) -> npt.NDArray[np.float32]:
    a = np.asarray(alpha)
    if a.ndim != 2:
        raise ValueError(f"alpha must be H×W, got {a.shape}")
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False)


def _resized_top(region: npt.NDArray[Any], size: tuple[int, int], rows: int) -> npt.NDArray[Any]:
    """The first ``rows`` rows of ``region`` resized (INTER_AREA) to ``size`` (height, width),
    from only the source rows they are made of.

    INTER_AREA's output row i averages the source rows from i/f to (i+1)/f, f being
    size / source height; given that scale instead of a size, OpenCV weighs those rows the
    same in a source cut a little below them. Should it not (the result is checked for its
    shape), the whole region is resized.
    """
    src_h, src_w = region.shape[:2]
    if size == (src_h, src_w):
        return region[:rows]
    fy, fx = size[0] / src_h, size[1] / src_w
    cut = math.ceil(rows / fy) + 2
    if cut < src_h:
        top = np.asarray(cv2.resize(region[:cut], None, fx=fx, fy=fy, interpolation=cv2.INTER_AREA))
        if top.shape[0] >= rows and top.shape[1] == size[1]:
            return top[:rows]
    return np.asarray(cv2.resize(region, size[::-1], interpolation=cv2.INTER_AREA))[:rows]


# OpenCV's 8-bit Lab to the usual units as one table per channel (L times 100/255, a and b
# less 128, in float32): a lookup instead of arithmetic on every pixel's channels.
_LEVELS = np.arange(256, dtype=np.float32)
LAB_UNITS = np.stack([_LEVELS * np.float32(100.0 / 255.0), _LEVELS - 128.0, _LEVELS - 128.0], axis=-1).reshape(256, 1, 3)


def _lab(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """CIELAB in its usual units (L 0..100), from OpenCV's fast 8-bit conversion (steps of
    0.4 L and 1 a/b: far finer than the colour differences judged here)."""
    return np.asarray(cv2.LUT(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab), LAB_UNITS))


def _polygon(shape: tuple[int, int], points: FloatArray) -> npt.NDArray[np.bool_]:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def _centres(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A few colour centres of ``samples`` (k-means, seeded: the same photo measures the same)."""
    if samples.shape[0] < MODEL_CENTRES * 4:
        return samples.astype(np.float32)
    # 2,000 samples and one k-means++ start: a third less CPU for the whole measure than 4,000
    # and two starts, for centres a few hair colours need (the measures moved by < 0.005).
    if samples.shape[0] > CENTRE_SAMPLES:
        samples = samples[np.random.default_rng(0).choice(samples.shape[0], CENTRE_SAMPLES, replace=False)]
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(samples.astype(np.float32), MODEL_CENTRES, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    return np.asarray(centres, np.float32)


def _matches(pixels: npt.NDArray[np.float32], centres: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    if centres.shape[0] == 0:
        return np.zeros(pixels.shape[0], bool)
    # The nearest centre's distance: squared distances summed as np.linalg.norm sums them, the
    # square root taken of the smallest only (it keeps the order, so the same value).
    d = pixels[:, None, :] - centres[None, :, :]
    nearest = np.sqrt(np.add.reduce(d * d, axis=-1).min(axis=1))
    return np.asarray(nearest <= MATCH_DELTA_E)


def _largest(region: npt.NDArray[np.bool_], flags: npt.NDArray[np.bool_]) -> int:
    """Pixels in the largest connected blob of ``region`` pixels whose ``flags`` are set."""
    mask = np.zeros(region.shape, np.uint8)
    mask[region] = flags
    # Labels alone (OpenCV's statistics cost several times the labelling); the areas counted here.
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    return int(np.bincount(labels[mask > 0], minlength=n)[1:].max()) if n > 1 else 0
