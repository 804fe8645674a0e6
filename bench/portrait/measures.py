"""Quality measures for portraits and hairstyles, shared by bench/portrait and the tests.

- Identity: dlib's ResNet face descriptor (``face_recognition_models``); by its convention a
  distance below 0.6 means "the same person". An independent model: nothing in render uses it.
- Seam colour step: the CIEDE2000 difference between pixels just inside and just outside a
  blend mask's 0.5 contour, compared with the same step of the image the blend went into.
- Hairline sharpness: the steepest luminance slope across the hairline divided by the step's
  contrast (1 / edge width), in units of the inter-ocular distance; a drawn hair shape has a
  width of a pixel or two, a real hairline several.
- Ear preservation: of the ear skin the original shows (``ear_skin``: skin-coloured, on the
  person, nearer the cheeks than the hair and the backdrop, a patch joined to the face, beside
  the face oval at ear height), the share unchanged or covered by the new hair afterwards; the
  least-kept ear counts.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import numpy as np
import numpy.typing as npt
from skimage.color import deltaE_ciede2000, rgb2lab

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_BROW, LEFT_EYE, LEFT_IRIS_CENTER, RIGHT_BROW, RIGHT_EYE, RIGHT_IRIS_CENTER

Rgb = npt.NDArray[np.uint8]
SAME_PERSON = 0.6


def _dlib_models() -> Path:
    # The package's __init__ imports pkg_resources (absent here): find its folder without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed (requirements/dev.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class Identity:
    """128-d dlib descriptors; ``distance(a, b)`` of the largest face in each image."""

    def __init__(self) -> None:
        models = _dlib_models()
        self._detect = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(self, rgb: Rgb) -> npt.NDArray[np.float64] | None:
        img = np.ascontiguousarray(rgb)
        boxes = self._detect(img, 1)
        if not boxes:
            return None
        box = max(boxes, key=lambda r: r.width() * r.height())
        return np.asarray(self._net.compute_face_descriptor(img, self._shape(img, box), 1), dtype=np.float64)

    def descriptor_near(self, rgb: Rgb, centre: tuple[float, float]) -> npt.NDArray[np.float64] | None:
        """The face whose box centre is nearest ``centre`` (for several-face images)."""
        img = np.ascontiguousarray(rgb)
        boxes = self._detect(img, 1)
        if not boxes:
            return None
        box = min(boxes, key=lambda r: (r.center().x - centre[0]) ** 2 + (r.center().y - centre[1]) ** 2)
        return np.asarray(self._net.compute_face_descriptor(img, self._shape(img, box), 1), dtype=np.float64)

    @staticmethod
    def distance(a: npt.NDArray[np.float64] | None, b: npt.NDArray[np.float64] | None) -> float:
        if a is None or b is None:
            return float("nan")
        return float(np.linalg.norm(a - b))


def seam_step(image: Rgb, mask: npt.NDArray[np.floating], offset_px: float = 2.0) -> float:
    """Mean ΔE00 between pixels ``offset_px`` inside and outside the mask's 0.5 contour."""
    m = (np.asarray(mask) > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return float("nan")
    c = max(contours, key=len)[:, 0, :].astype(np.float64)
    # Normals from the contour's tangent (central differences along the closed curve).
    t = np.roll(c, -3, axis=0) - np.roll(c, 3, axis=0)
    n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    centre = c.mean(axis=0)
    flip = ((c - centre) * n).sum(axis=1) < 0
    n[flip] *= -1  # outward
    h, w = m.shape
    inside = np.round(c - n * offset_px).astype(int)
    outside = np.round(c + n * offset_px).astype(int)
    ok = (inside >= 0).all(1) & (outside >= 0).all(1) & (inside[:, 0] < w) & (outside[:, 0] < w) & (inside[:, 1] < h) & (outside[:, 1] < h)
    if not ok.any():
        return float("nan")
    lab = rgb2lab(image)
    a = lab[inside[ok, 1], inside[ok, 0]]
    b = lab[outside[ok, 1], outside[ok, 0]]
    return float(np.mean(deltaE_ciede2000(a, b)))


def _eye_centres(mesh: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    if mesh.shape[0] > LEFT_IRIS_CENTER:
        return mesh[RIGHT_IRIS_CENTER], mesh[LEFT_IRIS_CENTER]
    return mesh[list(RIGHT_EYE)].mean(0), mesh[list(LEFT_EYE)].mean(0)


def iod(mesh: npt.NDArray[np.float64]) -> float:
    r, left = _eye_centres(mesh)
    return float(np.linalg.norm(left - r))


def _luminance(rgb: Rgb) -> npt.NDArray[np.float32]:
    return np.asarray(rgb2lab(rgb)[..., 0], dtype=np.float32)


@dataclass(frozen=True)
class Hairline:
    sharpness: float  # median over forehead columns of max slope / contrast, per IOD
    columns: int  # how many columns showed a hairline step


def hairline_sharpness(image: Rgb, mesh: npt.NDArray[np.float64]) -> Hairline:
    """The hairline above the forehead, seen in vertical luminance profiles across the
    middle of the forehead (between the brows' middles), from the brows up to 1.6 IOD above
    the eyes: per column the largest skin-to-hair step (contrast ≥ 12 L*) and its sharpness."""
    d = iod(mesh)
    r_eye, l_eye = _eye_centres(mesh)
    roll = np.degrees(np.arctan2(l_eye[1] - r_eye[1], l_eye[0] - r_eye[0]))
    centre = (r_eye + l_eye) / 2
    # Upright, 40 px between the eyes: the measure does not depend on the photo's size.
    s = 40.0 / d
    rot = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(roll), s)
    rot[:, 2] += np.array([100.0, 120.0]) - centre
    up = cv2.warpAffine(image, rot, (200, 200), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    pts = mesh[:, :2] @ rot[:, :2].T + rot[:, 2]
    lum = cv2.GaussianBlur(_luminance(up), (0, 0), 0.7)
    brow_y = float(min(pts[list(RIGHT_BROW)][:, 1].min(), pts[list(LEFT_BROW)][:, 1].min()))
    xs = np.arange(int(pts[list(RIGHT_BROW)][:, 0].mean()), int(pts[list(LEFT_BROW)][:, 0].mean()) + 1)
    top = max(1, int(120 - 1.6 * 40))
    out = []
    for x in xs:
        prof = lum[top : int(brow_y) - 2, x][::-1]  # from the brows upwards
        if len(prof) < 10:
            continue
        win = 4  # 0.1 IOD
        before = np.convolve(prof, np.ones(win) / win, mode="valid")
        steps = before[:-win] - before[win:]  # skin (bright) to hair (darker), upwards
        if not len(steps):
            continue
        k = int(np.argmax(np.abs(steps)))
        contrast = abs(float(steps[k]))
        if contrast < 12.0:
            continue
        grad = np.abs(np.diff(prof[max(0, k) : k + 2 * win + 1]))
        out.append(float(grad.max()) / contrast * 40.0)
    if not out:
        return Hairline(float("nan"), 0)
    return Hairline(float(np.median(out)), len(out))


def ear_regions(mesh: npt.NDArray[np.float64], shape: tuple[int, int]) -> list[npt.NDArray[np.bool_]]:
    """Boxes beside the face oval at ear height (from the brows to the nose bottom), each
    0.55 IOD wide, on the image's left and right."""
    d = iod(mesh)
    oval = mesh[list(FACE_OVAL)]
    r_eye, l_eye = _eye_centres(mesh)
    y0 = int((r_eye[1] + l_eye[1]) / 2 - 0.25 * d)
    y1 = int((r_eye[1] + l_eye[1]) / 2 + 0.85 * d)
    band = oval[(oval[:, 1] >= y0) & (oval[:, 1] <= y1)]
    if not len(band):
        band = oval
    h, w = shape
    left_edge, right_edge = float(band[:, 0].min()), float(band[:, 0].max())
    out = []
    for xa, xb in ((left_edge - 0.55 * d, left_edge + 0.05 * d), (right_edge - 0.05 * d, right_edge + 0.55 * d)):
        m = np.zeros(shape, bool)
        m[max(0, y0) : min(h, y1), max(0, int(xa)) : min(w, int(xb))] = True
        oval_mask = np.zeros(shape, np.uint8)
        cv2.fillPoly(oval_mask, [np.round(oval).astype(np.int32)], 1)
        m &= oval_mask == 0
        out.append(m)
    return out


def _cheek_lab(lab: npt.NDArray[np.float64], mesh: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Median Lab of four mid-cheek patches."""
    d = iod(mesh)
    cheeks = []
    for i in (50, 280, 205, 425):  # mid-cheek mesh points
        x, y = mesh[i, :2].astype(int)
        r = max(1, int(0.12 * d))
        cheeks.append(lab[max(0, y - r) : y + r, max(0, x - r) : x + r].reshape(-1, 3))
    return np.asarray(np.median(np.concatenate(cheeks), axis=0), dtype=np.float64)


def skin_like(image: Rgb, mesh: npt.NDArray[np.float64], max_de: float = 14.0) -> npt.NDArray[np.bool_]:
    """Pixels within ``max_de`` ΔE00 of the cheeks' median colour."""
    lab = rgb2lab(image)
    ref = _cheek_lab(lab, mesh)
    return np.asarray(deltaE_ciede2000(lab, np.broadcast_to(ref, lab.shape)) < max_de)


def _oval_mask(mesh: npt.NDArray[np.float64], shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(mesh[list(FACE_OVAL)][:, :2]).astype(np.int32)], 1)
    return m


def hair_lab(image: Rgb, mesh: npt.NDArray[np.float64], person: npt.NDArray[np.floating]) -> npt.NDArray[np.float64] | None:
    """Median Lab of the head's own hair: person pixels 0.2..0.8 IOD above the top of the face
    oval (mesh point 10), across the forehead's width, that are not skin-coloured; None when
    fewer than 20 such pixels show (a bald head, a crop at the hairline)."""
    d = iod(mesh)
    lab = rgb2lab(image)
    r_eye, l_eye = _eye_centres(mesh)
    ex = (l_eye - r_eye)[:2] / d
    up = np.array([ex[1], -ex[0]])  # towards the top of the head
    top = mesh[10, :2]
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    rel = np.stack([xx - top[0], yy - top[1]], axis=-1)
    along, above = rel @ ex, rel @ up
    zone = (np.abs(along) < 0.6 * d) & (above > 0.2 * d) & (above < 0.8 * d) & (np.asarray(person) >= 0.5)
    ref = _cheek_lab(lab, mesh)
    not_skin = deltaE_ciede2000(lab, np.broadcast_to(ref, lab.shape)) >= 14.0
    vals = lab[zone & not_skin]
    if len(vals) < 20:
        return None
    return np.asarray(np.median(vals, axis=0), dtype=np.float64)


def ear_skin(image: Rgb, mesh: npt.NDArray[np.float64], person: npt.NDArray[np.floating]) -> list[npt.NDArray[np.bool_]]:
    """The ears' visible skin in ``image``, one mask per side (see ``ear_regions``): pixels in
    the box beside the face that are

    - skin-coloured: within 14 ΔE00 of the cheeks, and nearer the cheeks' colour than the head
      hair's (``hair_lab``: a light strand is hair) and than the backdrop's around that ear (a
      pale wall beside a pale face is no ear);
    - on the person (matte >= 0.25: the selfie matte is coarse and cuts into an earlobe);
    - in a patch, not a line: what a disc 0.1 IOD across cannot sit in is the mixed fringe
      along a silhouette or a strand's edge (dark hair against a pale wall mixes into every
      skin tone in between);
    - joined to the face: the patch reaches the face oval (an ear grows from the head; an
      island in the hair is not one)."""
    d = iod(mesh)
    shape = image.shape[:2]
    lab = rgb2lab(image)
    person = np.asarray(person)
    de_skin = deltaE_ciede2000(lab, np.broadcast_to(_cheek_lab(lab, mesh), lab.shape))
    cand = (de_skin < 14.0) & (person >= 0.25)
    hair_ref = hair_lab(image, mesh, person)
    if hair_ref is not None:
        cand &= de_skin < deltaE_ciede2000(lab, np.broadcast_to(hair_ref, lab.shape))
    oval = _oval_mask(mesh, shape)
    grow = max(1, round(0.06 * d))
    near_face = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))) > 0
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, round(0.1 * d) | 1),) * 2)
    reach = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * round(0.5 * d) + 1,) * 2)
    out = []
    for region in ear_regions(mesh, shape):
        here = cand.copy()
        around = (cv2.dilate(region.astype(np.uint8), reach) > 0) & (person < 0.1)
        if int(around.sum()) >= 20:
            back_ref = np.median(lab[around], axis=0)
            here &= de_skin < deltaE_ciede2000(lab, np.broadcast_to(back_ref, lab.shape))
        here = cv2.morphologyEx(here.astype(np.uint8), cv2.MORPH_OPEN, disc) > 0
        patch = (here & region) | (near_face & (here | (oval > 0)))
        count, labels = cv2.connectedComponents(patch.astype(np.uint8), connectivity=8)
        joined = np.zeros(count, bool)
        joined[np.unique(labels[oval > 0])] = True
        joined[0] = False
        out.append(joined[labels] & here & region)
    return out


def ear_preservation(
    before: Rgb,
    after: Rgb,
    mesh: npt.NDArray[np.float64],
    person: npt.NDArray[np.floating],
    covered: npt.NDArray[np.floating] | None = None,
    max_change: float = 10.0,
) -> float:
    """The least-kept ear's share of its skin pixels (``ear_skin`` of the original) that
    are unchanged afterwards (within ``max_change`` ΔE00 of the original pixel) or under the
    new hair (``covered`` > 0.5); NaN when the original shows no ear skin (under 20 pixels on
    either side). Unchanged, not merely still skin-coloured: a backdrop near the skin's
    colour filled in where an ear was is an erased ear."""
    lab_b, lab_a = rgb2lab(before), rgb2lab(after)
    shares = []
    for ear in ear_skin(before, mesh, person):
        n = int(ear.sum())
        if n < 20:
            continue
        ok = deltaE_ciede2000(lab_a[ear], lab_b[ear]) <= max_change
        if covered is not None:
            ok |= np.asarray(covered)[ear] > 0.5
        shares.append(float(ok.mean()))
    return min(shares) if shares else float("nan")


def ear_erasure(
    before: Rgb,
    after: Rgb,
    mesh: npt.NDArray[np.float64],
    person: npt.NDArray[np.floating],
    covered: npt.NDArray[np.floating],
    max_change: float = 10.0,
) -> float:
    """The most-erased ear's share of its skin pixels that changed (more than ``max_change``
    ΔE00) with no new hair over them (``covered`` <= 0.05): the ear turned into something
    else, the failure ``ear_preservation`` is there to catch, told apart from an ear under the
    new hair's translucent ends; NaN when no ear skin shows."""
    lab_b, lab_a = rgb2lab(before), rgb2lab(after)
    shares = []
    for ear in ear_skin(before, mesh, person):
        if int(ear.sum()) < 20:
            continue
        changed = deltaE_ciede2000(lab_a[ear], lab_b[ear]) > max_change
        shares.append(float((changed & (np.asarray(covered)[ear] <= 0.05)).mean()))
    return max(shares) if shares else float("nan")
