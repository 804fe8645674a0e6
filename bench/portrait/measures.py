"""Quality measures for portraits and hairstyles, shared by bench/portrait and the tests.

- Identity: dlib's ResNet face descriptor (``face_recognition_models``); by its convention a
  distance below 0.6 means "the same person". An independent model: nothing in render uses it.
- Seam colour step: the CIEDE2000 difference between pixels just inside and just outside a
  blend mask's 0.5 contour, compared with the same step of the image the blend went into.
- Hairline sharpness: the steepest luminance slope across the hairline divided by the step's
  contrast (1 / edge width), in units of the inter-ocular distance; a drawn hair shape has a
  width of a pixel or two, a real hairline several.
- Ear preservation: the share of the ear's skin pixels (next to the face oval at ear height,
  skin-coloured in the original) that are still skin-coloured, or covered by the new hair,
  afterwards.
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


def skin_like(image: Rgb, mesh: npt.NDArray[np.float64], max_de: float = 14.0) -> npt.NDArray[np.bool_]:
    """Pixels within ``max_de`` ΔE00 of the cheeks' median colour."""
    d = iod(mesh)
    lab = rgb2lab(image)
    cheeks = []
    for i in (50, 280, 205, 425):  # mid-cheek mesh points
        x, y = mesh[i, :2].astype(int)
        r = max(1, int(0.12 * d))
        cheeks.append(lab[max(0, y - r) : y + r, max(0, x - r) : x + r].reshape(-1, 3))
    ref = np.median(np.concatenate(cheeks), axis=0)
    return np.asarray(deltaE_ciede2000(lab, np.broadcast_to(ref, lab.shape)) < max_de)


def ear_preservation(before: Rgb, after: Rgb, mesh: npt.NDArray[np.float64], covered: npt.NDArray[np.floating] | None = None) -> float:
    """Share of the original's ear-skin pixels that are still skin-like (or under new hair,
    ``covered`` > 0.5) afterwards; NaN when the original shows no ear skin."""
    skin_before = skin_like(before, mesh)
    skin_after = skin_like(after, mesh, max_de=18.0)
    kept, total = 0, 0
    for region in ear_regions(mesh, before.shape[:2]):
        ear = region & skin_before
        n = int(ear.sum())
        if n < 20:
            continue
        ok = skin_after[ear]
        if covered is not None:
            ok |= np.asarray(covered)[ear] > 0.5
        kept += int(ok.sum())
        total += n
    return kept / total if total else float("nan")
