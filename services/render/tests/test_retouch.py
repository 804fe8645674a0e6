"""Beauty keeps the person's colour: L* up, hue and chroma kept, no visible edge, pores kept."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import color

from likeness_imaging.face_mesh import FACE_OVAL, LEFT_EYE, LIPS, RIGHT_EYE
from likeness_render.domain import retouch

from .landmarks import TestLandmarker


@pytest.fixture(scope="module")
def grace() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        image = np.asarray(Image.open(fh).convert("RGB"))
    with TestLandmarker() as marks:
        mesh = marks.detect(image)[0].mesh
    assert mesh is not None
    return image, mesh


def _cheeks(mesh: npt.NDArray[np.float64], shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    for part in (LEFT_EYE, RIGHT_EYE, LIPS):
        cv2.fillPoly(mask, [cv2.convexHull(np.round(mesh[list(part)]).astype(np.int32))], 0)
    return cv2.erode(mask, np.ones((9, 9), np.uint8)) > 0


def test_level_zero_leaves_the_photo_alone(grace: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]) -> None:
    image, mesh = grace
    assert retouch.beautify(image, mesh, 0, 0) is image
    assert retouch.beautify(image, None, 5, 5) is image


@pytest.mark.parametrize("level", [3, 5, 10])
def test_whitening_raises_lightness_and_keeps_hue_and_chroma(
    grace: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]], level: int
) -> None:
    image, mesh = grace
    out = retouch.beautify(image, mesh, level, level)
    skin = _cheeks(mesh, image.shape)
    before, after = color.rgb2lab(image)[skin], color.rgb2lab(out)[skin]
    assert after[:, 0].mean() > before[:, 0].mean() + 0.5 * level
    chroma_before = np.hypot(before[:, 1], before[:, 2]).mean()
    chroma_after = np.hypot(after[:, 1], after[:, 2]).mean()
    assert abs(chroma_after / chroma_before - 1.0) < 0.15
    hue_shift = np.degrees(np.arctan2(after[:, 2].mean(), after[:, 1].mean()) - np.arctan2(before[:, 2].mean(), before[:, 1].mean()))
    assert abs(hue_shift) < 5.0


def test_the_retouched_area_has_no_visible_edge(grace: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]) -> None:
    image, mesh = grace
    out = retouch.beautify(image, mesh, 0, 10)
    lab0, lab1 = color.rgb2lab(image), color.rgb2lab(out)
    # The change (averaged over 2 px) between pixels 2 px apart may only drift, never step.
    change = cv2.GaussianBlur((lab1 - lab0).astype(np.float32), (0, 0), 2.0).astype(np.float64)
    steps = color.deltaE_ciede2000(lab0[:, 2:] + change[:, 2:], lab0[:, 2:] + change[:, :-2])
    steps_v = color.deltaE_ciede2000(lab0[2:] + change[2:], lab0[2:] + change[:-2])
    changed = np.linalg.norm(change, axis=-1) > 0.5
    worst = np.percentile(np.concatenate([steps[changed[:, 2:]], steps_v[changed[2:]]]), 99.9)
    assert worst <= 4.0
    # The forehead above the oval's top and the neck below the chin are retouched too.
    top, chin = mesh[10], mesh[152]
    height = chin[1] - top[1]
    for x, y in ((top[0], top[1] - 0.05 * height), (chin[0], chin[1] + 0.12 * height)):
        assert np.linalg.norm(change[round(y), round(x)]) > 0.5


def test_smoothing_keeps_pore_texture(grace: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]) -> None:
    image, mesh = grace
    out = retouch.beautify(image, mesh, 10, 0)
    skin = retouch.skin_mask(image, mesh) > 0.9

    def fine(rgb: npt.NDArray[np.uint8]) -> float:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[skin].mean())

    def blotches(rgb: npt.NDArray[np.uint8]) -> float:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.GaussianBlur(grey, (0, 0), 1.5) - cv2.GaussianBlur(grey, (0, 0), 6.0))[skin].mean())

    assert blotches(out) < 0.99 * blotches(image)  # smoother
    assert fine(out) > 0.5 * fine(image)  # but not plastic
