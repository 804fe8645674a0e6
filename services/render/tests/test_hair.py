"""Hairstyle change on the astronaut portrait with the real landmarker and selfie matte."""

from __future__ import annotations

import cv2
import mediapipe as mp
import numpy as np
import numpy.typing as npt
import pytest
from mediapipe.tasks.python import BaseOptions, vision
from skimage import data

from likeness_imaging.face_mesh import FACE_OVAL, FOREHEAD_TOP, LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER
from likeness_render.adapters.model_files import model_path
from likeness_render.domain import hair

from .landmarks import TestLandmarker

Image3 = npt.NDArray[np.uint8]
Mesh = npt.NDArray[np.float64]
STRAIGHT = ("short_crop", "long_straight", "top_bun")


def _person_mask(image: Image3) -> npt.NDArray[np.float32]:
    """The selfie model straight through MediaPipe Tasks (the service's segmenter adapter is
    not what these tests are about)."""
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation.tflite"))),
        output_confidence_masks=True,
    )
    with vision.ImageSegmenter.create_from_options(options) as seg:
        result = seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        return np.asarray(result.confidence_masks[0].numpy_view(), dtype=np.float32).reshape(image.shape[:2]).copy()


@pytest.fixture(scope="module")
def astronaut() -> tuple[Image3, Mesh, npt.NDArray[np.float32]]:
    img = data.astronaut()
    with TestLandmarker() as lm:
        faces = lm.detect(img)
    assert len(faces) == 1 and faces[0].mesh is not None
    return img, faces[0].mesh, _person_mask(img)


def _canonical_y(mesh: Mesh, shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    inv = cv2.invertAffineTransform(hair.canonical_to_image(mesh))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]


def _inner_face(mesh: Mesh, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """The face oval drawn 15 % smaller about its centre, below the brows: the part of the
    face no hairstyle (fringe included) may touch."""
    oval = mesh[list(FACE_OVAL)]
    centre = oval.mean(axis=0)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(centre + (oval - centre) * 0.85).astype(np.int32)], 1)
    return (mask > 0) & (_canonical_y(mesh, shape) > -0.3)


def _own_hair(mesh: Mesh, person: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """The astronaut's own hair: person, outside the face oval, above the forehead line."""
    oval = np.zeros(person.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    return (person > 0.5) & (oval == 0) & (_canonical_y(mesh, person.shape) < -0.5)


@pytest.fixture(scope="module")
def outputs(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> dict[str, Image3]:
    img, mesh, person = astronaut
    return {s.id: hair.change_hairstyle(img, mesh, person, s.id) for s in hair.hairstyles()}


def test_at_least_four_styles() -> None:
    assert len(hair.hairstyles()) >= 4
    assert len({s.id for s in hair.hairstyles()}) == len(hair.hairstyles())


@pytest.mark.parametrize("style", [s.id for s in hair.hairstyles()])
def test_style_changes_the_hair_and_leaves_the_face(
    style: str, astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]], outputs: dict[str, Image3]
) -> None:
    img, mesh, person = astronaut
    out = outputs[style]
    assert out.shape == img.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - img.astype(int)).max(axis=2)
    region = _own_hair(mesh, person)
    assert region.sum() > 3000
    # New hair or background where her light-brown hair was: a large change on average.
    assert float(diff[region].mean()) > 25.0
    face = _inner_face(mesh, img.shape[:2])
    assert face.sum() > 3000
    assert int(diff[face].max()) <= 1


def test_styles_differ_from_each_other(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]], outputs: dict[str, Image3]) -> None:
    _, mesh, person = astronaut
    region = _own_hair(mesh, person)
    ids = list(outputs)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            d = np.abs(outputs[a].astype(int) - outputs[b].astype(int)).max(axis=2)
            assert float(d[region].mean()) > 10.0, (a, b)


def _texture(material: hair.HairMaterial) -> tuple[float, float, float]:
    """Fine-detail contrast and its orientation coherence inside the opaque part, and the
    width of the soft edge (pixels of partial alpha per pixel of outline)."""
    a = material.rgba[..., 3]
    lum = cv2.cvtColor(np.ascontiguousarray(material.rgba[..., :3]), cv2.COLOR_RGB2GRAY)
    core = cv2.erode((a > 0.98).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    detail = lum - cv2.GaussianBlur(lum, (0, 0), 2.0)
    gx = cv2.Sobel(detail, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(detail, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = (cv2.GaussianBlur(x, (0, 0), 4.0) for x in (gx * gx, gy * gy, gx * gy))
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / (jxx + jyy + 1e-9)
    contours, _ = cv2.findContours((a > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = sum(len(c) for c in contours)
    soft = int(((a > 0.02) & (a < 0.98)).sum())
    return float(detail[core].std() / lum[core].mean()), float(coherence[core].mean()), soft / outline


@pytest.mark.parametrize("style", [s.id for s in hair.hairstyles()])
def test_material_has_strands_and_a_soft_edge(style: str) -> None:
    material = hair.hair_material(style)
    contrast, coherence, soft_edge = _texture(material)
    if material.style.photo is not None:
        # Photographed hair: real strand detail (a flat blob has none: 0.0), finer than the
        # drawn noise; a real matte's soft edge; the anchors of its source came along.
        assert contrast > 0.04
        assert 1.0 < soft_edge < 8.0
        assert len(material.hairline) >= 15 and len(material.ears) == 2
        assert material.ears[0][0] < -0.8 and material.ears[1][0] > 0.8 and "public domain" in material.credit
        return
    # A shaded blob has no fine detail (0.0) and blurred isotropic noise has a coherence of
    # about 0.16; drawn straight strands run one way (0.85..0.98 measured), curls do not.
    assert contrast > 0.1
    if style in STRAIGHT:
        assert coherence > 0.6
    else:
        assert coherence < 0.4
    # A cut-out has 0..1 partial pixels per outline pixel; frayed hair has a few.
    assert 1.5 < soft_edge < 8.0


def test_placement_follows_eyes_and_forehead(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    _, mesh, _ = astronaut
    theta = np.radians(20.0)
    rot = np.array([[np.cos(theta), -np.sin(theta), 40.0], [np.sin(theta), np.cos(theta), -10.0]])
    turned = mesh @ rot[:, :2].T + rot[:, 2]
    a = hair.canonical_to_image(turned)
    eyes = np.array([[-0.5, 0.0], [0.5, 0.0]]) @ a[:, :2].T + a[:, 2]
    np.testing.assert_allclose(eyes, turned[[RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER]], atol=1e-6)
    a0 = hair.canonical_to_image(mesh)
    # The astronaut's own roll (about 3 degrees) plus the turn.
    turn = np.degrees(np.arctan2(a[1, 0], a[0, 0]) - np.arctan2(a0[1, 0], a0[0, 0]))
    assert turn == pytest.approx(20.0, abs=0.01)
    # Canonical forehead height lands on mesh point 10's height above the eye line.
    top = np.array([0.0, hair.CANONICAL_FOREHEAD]) @ a[:, :2].T + a[:, 2]
    up = a[:, 1] / np.linalg.norm(a[:, 1])
    eye_mid = turned[[RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER]].mean(axis=0)
    assert float((top - eye_mid) @ up) == pytest.approx(float((turned[FOREHEAD_TOP] - eye_mid) @ up), rel=1e-6)


def test_a_tilted_head_keeps_its_face(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    img, mesh, person = astronaut
    rot = cv2.getRotationMatrix2D((225.0, 140.0), -15.0, 1.0)
    img_r = np.asarray(cv2.warpAffine(img, rot, (512, 512), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)
    person_r = np.asarray(cv2.warpAffine(person, rot, (512, 512)), dtype=np.float32)
    mesh_r = mesh @ rot[:, :2].T + rot[:, 2]
    out = hair.change_hairstyle(img_r, mesh_r, person_r, "bob_brunette")
    diff = np.abs(out.astype(int) - img_r.astype(int)).max(axis=2)
    assert int(diff[_inner_face(mesh_r, (512, 512))].max()) <= 1
    assert float(diff[_own_hair(mesh_r, person_r)].mean()) > 25.0


def test_mask_dtypes_agree(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]], outputs: dict[str, Image3]) -> None:
    img, mesh, person = astronaut
    as_u8 = hair.change_hairstyle(img, mesh, np.round(person * 255).astype(np.uint8), "short_crop")
    assert float(np.abs(as_u8.astype(int) - outputs["short_crop"].astype(int)).mean()) < 0.5


def test_bad_inputs_are_refused(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    img, mesh, person = astronaut
    with pytest.raises(hair.HairstyleNotFound, match="mohawk"):
        hair.change_hairstyle(img, mesh, person, "mohawk")
    with pytest.raises(hair.HairError, match="person mask"):
        hair.change_hairstyle(img, mesh, person[:100], "short_crop")
    with pytest.raises(hair.HairError, match="mesh"):
        hair.change_hairstyle(img, mesh[:10], person, "short_crop")
    with pytest.raises(hair.HairError, match="too small"):
        hair.change_hairstyle(img, mesh * 0.01, person, "short_crop")


@pytest.mark.parametrize("style", ["short_crop", "top_bun"])
def test_own_hair_the_new_style_leaves_bare_becomes_background(
    style: str, astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]], outputs: dict[str, Image3]
) -> None:
    img, mesh, person = astronaut
    inv = cv2.invertAffineTransform(hair.canonical_to_image(mesh))
    yy, xx = np.mgrid[0:512, 0:512]
    cx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    cy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    # Her full bob reaches 1.45..1.65 IOD out beside the temples; these close styles do not.
    beside = (np.abs(cx) > 1.45) & (np.abs(cx) < 1.65) & (cy > -0.8) & (cy < 0.0) & (person > 0.5)
    backdrop = (np.abs(cx) > 2.3) & (np.abs(cx) < 2.8) & (cy > -1.5) & (cy < 0.0) & (person < 0.1)
    assert beside.sum() > 300 and backdrop.sum() > 1000

    def lab(im: Image3) -> npt.NDArray[np.float32]:
        return np.asarray(cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2Lab), dtype=np.float32)

    back = lab(img)[backdrop].mean(axis=0)
    before = float(np.linalg.norm(lab(img)[beside] - back, axis=1).mean())
    after = float(np.linalg.norm(lab(outputs[style])[beside] - back, axis=1).mean())
    # Hair there is about 50 Lab units from the backdrop; the fill is within the backdrop's
    # own mottling (its spread is about 5).
    assert before > 30.0
    assert after < 8.0


def test_a_large_photo_is_worked_at_material_scale_and_blended_at_full_size(
    astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]],
) -> None:
    img, mesh, person = astronaut
    # Three times the size: about 130 px between the eyes, past WORK_PX_PER_IOD.
    big = np.asarray(cv2.resize(img, (1536, 1536), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    big_person = np.asarray(cv2.resize(person, (1536, 1536), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    big_mesh = mesh * 3.0 + 1.0  # pixel centres: x_big = 3 x + 1 for a 3x resize
    out = hair.change_hairstyle(big, big_mesh, big_person, "curly_afro")
    assert out.shape == big.shape
    diff = np.abs(out.astype(int) - big.astype(int)).max(axis=2)
    assert int(diff[_inner_face(big_mesh, (1536, 1536))].max()) <= 1
    assert float(diff[_own_hair(big_mesh, big_person)].mean()) > 25.0


def test_a_hat_is_not_erased_the_style_is_refused(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    import matplotlib.cbook
    from PIL import Image

    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as im:
        hopper = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    with TestLandmarker() as lm:
        faces = lm.detect(hopper)
    assert faces and faces[0].mesh is not None
    mesh = faces[0].mesh
    # Grace Hopper wears her Navy cap: refused (a new style would erase it), in any colour.
    assert hair.wears_hat(hopper, hair.canonical_to_image(mesh))
    with pytest.raises(hair.HatPresent, match="hat"):
        hair.change_hairstyle(hopper, mesh, _person_mask(hopper), "bob_natural")
    dark = (hopper.astype(np.float32) * 0.55).astype(np.uint8)
    assert hair.wears_hat(dark, hair.canonical_to_image(mesh))
    # Eileen Collins' own hair is no hat, upright or tilted.
    img, a_mesh, _ = astronaut
    assert not hair.wears_hat(img, hair.canonical_to_image(a_mesh))
    rot = cv2.getRotationMatrix2D((256.0, 256.0), 10.0, 1.0)
    tilted = np.asarray(cv2.warpAffine(img, rot, (512, 512), borderMode=cv2.BORDER_REFLECT), dtype=np.uint8)
    assert not hair.wears_hat(tilted, hair.canonical_to_image(a_mesh @ rot[:, :2].T + rot[:, 2]))


@pytest.mark.parametrize("style", ["bob_brunette", "top_bun", "short_crop"])
def test_ears_are_kept_or_covered_by_the_new_hair(style: str, astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    img, mesh, person = astronaut
    res = hair.restyle_hair(img, mesh, person, style)
    assert res.coverage.shape == img.shape[:2] and res.coverage.min() >= 0.0 and res.coverage.max() <= 1.0
    # Her ears: skin-coloured person pixels beside the face oval at ear height.
    lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    cheek = np.median(lab[int(mesh[50, 1]) - 4 : int(mesh[50, 1]) + 4, int(mesh[50, 0]) - 4 : int(mesh[50, 0]) + 4].reshape(-1, 3), axis=0)
    skin = np.linalg.norm(lab - cheek, axis=2) < 14
    oval = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    iod = float(np.linalg.norm(mesh[LEFT_IRIS_CENTER] - mesh[RIGHT_IRIS_CENTER]))
    ears = np.zeros(img.shape[:2], bool)
    for idx, side in ((234, -1), (454, 1)):
        x, y = mesh[idx]
        x_lo, x_hi = sorted((int(x), int(x + side * 0.55 * iod)))
        ears[int(y - 0.3 * iod) : int(y + 0.6 * iod), x_lo:x_hi] = True
    ear = ears & skin & (person > 0.5) & (oval == 0)
    assert ear.sum() > 40
    diff = np.abs(res.image.astype(int) - img.astype(int)).max(axis=2)
    kept = (diff[ear] <= 12) | (res.coverage[ear] > 0.5)
    assert kept.mean() >= 0.9, kept.mean()


@pytest.mark.parametrize("style", ["bob_black", "bob_brunette"])
def test_a_dark_blunt_fringe_is_no_hat(
    astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]], outputs: dict[str, Image3], style: str
) -> None:
    # The photographed bobs give Collins a dark, even, straight-cut fringe: its edge is as
    # smooth as a brim, but the hair goes on down beside the face, so it is not refused.
    _, mesh, _ = astronaut
    fringe = outputs[style]
    to_image = hair.canonical_to_image(mesh)
    measures = hair.hat_measures(fringe, to_image)
    assert measures is not None
    share, residual, _, side, _ = measures
    assert share >= hair.HAT_EDGE_SHARE and residual < hair.HAT_EDGE_RESIDUAL  # brim-like by the edge alone
    assert side >= hair.HAT_SIDE_SHARE
    assert not hair.wears_hat(fringe, to_image)
    # The same fringe in a darker photo (people darker-skinned or photographed in shade).
    assert not hair.wears_hat((fringe.astype(np.float32) * 0.6).astype(np.uint8), to_image)
    # A second style on the fringed photo goes ahead (is not refused as a hat).
    assert hair.change_hairstyle(fringe, mesh, _person_mask(fringe), "short_crop").shape == fringe.shape


def _canonical_grid(mesh: Mesh, shape: tuple[int, int], scale: int = 1) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Canonical head coordinates of every pixel (of a ``scale`` times finer grid)."""
    inv = cv2.invertAffineTransform(hair.canonical_to_image(mesh))
    yy, xx = np.mgrid[0 : shape[0] * scale, 0 : shape[1] * scale] / scale + (0.5 / scale - 0.5)
    return inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2], inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]


def _dyed_black(img: Image3, mesh: Mesh, person: npt.NDArray[np.float32]) -> Image3:
    """Collins with her hair near-black (lightness 0.3x, chroma 0.4x: its strands stay)."""
    cx, cy = _canonical_grid(mesh, img.shape[:2])
    oval = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    hair_px = (person > 0.5) & (cv2.dilate(oval, np.ones((5, 5), np.uint8)) == 0) & (cy < 1.0) & (np.abs(cx) < 2.2)
    m = cv2.GaussianBlur(hair_px.astype(np.float32), (0, 0), 1.0)[..., None]
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    dyed = lab * np.array([0.3, 0.4, 0.4], np.float32)
    out = cv2.cvtColor(lab * (1 - m) + dyed * m, cv2.COLOR_Lab2RGB)
    return np.asarray(np.clip(out * 255 + 0.5, 0, 255), dtype=np.uint8)


def _black_hat(img: Image3, mesh: Mesh, fabric: float) -> Image3:
    """A near-black bowler drawn on: a crown over the head and a brim across the forehead
    (0.48 IOD above the eyes), wider than the head, shaded top to bottom, with ``fabric`` L*
    units of fine grain; anti-aliased (drawn 4x finer, then reduced)."""
    h, w = img.shape[:2]
    cx, cy = _canonical_grid(mesh, (h, w), 4)
    edge = -0.48 - 0.06 * cx**2
    crown = ((cx / 1.3) ** 2 + ((cy + 1.35) / 1.0) ** 2 < 1.0) & (cy < edge)
    brim = (np.abs(cx) < 1.75) & (cy < edge) & (cy > edge - 0.14)
    cover = cv2.resize((crown | brim).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)[..., None]
    shade = cv2.resize(
        np.clip(1.0 + 0.25 * (cy + 1.2) - 0.1 * np.abs(cx), 0.6, 1.4).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA
    )
    grain = cv2.GaussianBlur(np.random.default_rng(3).normal(0.0, 1.0, (h, w)).astype(np.float32), (0, 0), 0.6) * fabric
    felt = np.array([30.0, 28.0, 28.0], np.float32) * shade[..., None] + grain[..., None]
    return np.asarray(np.clip(img * (1 - cover) + felt * cover, 0, 255), dtype=np.uint8)


@pytest.mark.parametrize("fabric", [0.0, 2.0])
def test_a_black_hat_on_black_hair_is_a_hat(fabric: float, astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    # Hair of the hat's colour beside the temples makes the brim read like a blunt fringe by
    # the side share alone; the felt's lack of strand detail tells it apart.
    img, mesh, person = astronaut
    black = _dyed_black(img, mesh, person)
    to_image = hair.canonical_to_image(mesh)
    for photo in (_black_hat(black, mesh, fabric), (_black_hat(black, mesh, fabric) * 0.6).astype(np.uint8)):
        measures = hair.hat_measures(photo, to_image)
        assert measures is not None and measures[3] >= hair.HAT_SIDE_SHARE  # a fringe by the sides alone
        assert hair.wears_hat(photo, to_image)
        with pytest.raises(hair.HatPresent, match="hat"):
            hair.change_hairstyle(photo, mesh, person, "short_crop")


def test_black_hair_without_a_hat_is_restyled(astronaut: tuple[Image3, Mesh, npt.NDArray[np.float32]]) -> None:
    img, mesh, person = astronaut
    black = _dyed_black(img, mesh, person)
    to_image = hair.canonical_to_image(mesh)
    fringe = hair.change_hairstyle(black, mesh, person, "bob_black")  # a blunt black fringe on black hair
    for photo in (black, fringe, (black * 0.6).astype(np.uint8), (fringe * 0.6).astype(np.uint8)):
        assert not hair.wears_hat(photo, to_image)
    out = hair.change_hairstyle(fringe, mesh, person, "long_straight")
    assert out.shape == img.shape


def test_sparse_new_hair_over_a_kept_ear_thins_out_and_dense_hair_stays() -> None:
    alpha = np.tile(np.linspace(0.0, 1.0, 41, dtype=np.float32), (40, 1))
    ears = np.zeros(alpha.shape, bool)
    ears[10:30, :] = True
    out = hair.thin_over_ears(alpha, ears)
    core = slice(14, 26)
    a = alpha[core]
    # Over the ear: nothing under half of EAR_THIN, less in between, unchanged from EAR_THIN up.
    assert np.all(out[core][a <= hair.EAR_THIN / 2] == 0.0)
    mid = (a > hair.EAR_THIN / 2) & (a < hair.EAR_THIN)
    assert mid.any() and np.all(out[core][mid] < a[mid])
    assert np.array_equal(out[core][a >= hair.EAR_THIN], a[a >= hair.EAR_THIN])
    # No step where the thinning ends (a jump there would be 0.25): neighbouring values stay close.
    assert np.abs(np.diff(out[core], axis=1)).max() <= 0.1
    # Away from the ear nothing changes.
    assert np.array_equal(out[:5], alpha[:5]) and np.array_equal(out[35:], alpha[35:])
