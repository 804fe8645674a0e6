"""The compliance codes about what an ID photo shows around the face: GAZE_AWAY,
SHOULDERS_CUT, OBJECT_NEAR_FACE and HEADWEAR. Each fires on a synthetic case and on real portraits
made to show the problem, and stays silent on the clean real portraits (so the tests can
fail both ways); pose issues say which way to move."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from likeness.render.v1 import render_pb2
from likeness_imaging.face_mesh import CHIN, FACE_OVAL, FOREHEAD_TOP, LEFT_EYE, RIGHT_EYE
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import hair, idphoto
from likeness_render.domain.compliance import (
    DEFAULT_THRESHOLDS,
    FaceMeasurements,
    IssueCode,
    PhotoMeasurements,
    Remedy,
    SceneMeasurements,
    Severity,
    check_compliance,
    measure_gaze,
    measure_scene,
)
from likeness_render.domain.compliance_scene import _lab, _resized_top, measure_near_face, measure_torso_cut
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.domain.specs import Spec
from likeness_render.grpc_api import report_pb
from likeness_render.usecases.id_photo import frame_of

from .landmarks import TestLandmarker

T = DEFAULT_THRESHOLDS
RGB = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def us_passport() -> Spec:
    return load_catalog().get("us-passport")


def _grace() -> RGB:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


SOURCES = {"astronaut": lambda: np.asarray(data.astronaut()), "grace": _grace}
# Rows of each source kept for a "cropped" copy: its bottom edge then lies inside the
# 2x2 in frame, across the chest.
CROPPED_ROWS = {"astronaut": 250, "grace": 430}


@pytest.fixture(scope="module")
def landmarker() -> TestLandmarker:
    with TestLandmarker() as lm:
        yield lm


@pytest.fixture(scope="module")
def segmenter() -> SelfieSegmenter:
    with SelfieSegmenter() as seg:
        yield seg


@pytest.fixture(scope="module")
def made(landmarker: TestLandmarker, segmenter: SelfieSegmenter, us_passport: Spec) -> dict[str, idphoto.Composed]:
    """US passport photos of the real portraits, whole and cropped above the chest."""
    out = {}
    for name, load in SOURCES.items():
        source = load()
        for variant, image in (("whole", source), ("cropped", np.ascontiguousarray(source[: CROPPED_ROWS[name]]))):
            out[f"{name}-{variant}"] = _compose(image, landmarker, segmenter, us_passport)
    return out


def _compose(image: RGB, landmarker: TestLandmarker, segmenter: SelfieSegmenter, spec: Spec) -> idphoto.Composed:
    face = landmarker.detect(image)[0]
    return idphoto.compose(image, face, segmenter.mask, frame_of(spec, 300), spec.background, idphoto.Options())


def _report(c: idphoto.Composed, spec: Spec) -> frozenset[IssueCode]:
    gaze = measure_gaze(c.face.mesh)
    assert gaze is not None
    face = FaceMeasurements(gaze_sideways=gaze[0], gaze_vertical=gaze[1])
    h, w = c.image.shape[:2]
    m = PhotoMeasurements(1, w, h, face, scene=measure_scene(c.image, c.alpha, c.face.mesh))
    return check_compliance(m, spec).codes


NEW_CODES = {IssueCode.GAZE_AWAY, IssueCode.SHOULDERS_CUT, IssueCode.OBJECT_NEAR_FACE}


@pytest.mark.parametrize("name", ["astronaut-whole", "grace-whole"])
def test_clean_real_portraits_raise_none_of_the_new_codes(made: dict[str, idphoto.Composed], us_passport: Spec, name: str) -> None:
    c = made[name]
    assert not (_report(c, us_passport) & NEW_CODES)
    scene = measure_scene(c.image, c.alpha, c.face.mesh)
    # Well inside the limits, not just under them (whole portraits measure up to 0.13 at the sides, cropped ones 0.53).
    assert scene.torso_cut_bottom == 0.0 and scene.torso_cut_side < T.max_torso_cut_side * 0.75
    assert scene.hand_near_face < T.max_hand_near_face / 2 and scene.object_near_face < T.max_object_near_face / 5


# ------------------------------------------------------------------------------ gaze


def _eye_mesh(iris_along: float, iris_across: float = -0.055) -> npt.NDArray[np.float64]:
    """A 478-point mesh whose eyes are 40 px wide and level, irises placed along/across them."""
    mesh = np.zeros((478, 2))
    for (a, b), iris, x0 in (((33, 133), 468, 100.0), ((362, 263), 473, 180.0)):
        mesh[a], mesh[b] = (x0, 200.0), (x0 + 40.0, 200.0)
        mesh[iris] = (x0 + 40.0 * (0.5 + iris_along), 200.0 + 40.0 * iris_across)
    return mesh


def test_gaze_is_the_iris_place_between_the_corners() -> None:
    assert measure_gaze(_eye_mesh(0.0)) == pytest.approx((0.0, -0.055))
    assert measure_gaze(_eye_mesh(0.2))[0] == pytest.approx(0.2)  # type: ignore[index]
    assert measure_gaze(_eye_mesh(0.0, 0.1))[1] == pytest.approx(0.1)  # type: ignore[index]
    assert measure_gaze(_eye_mesh(0.0)[:468]) is None  # no iris points: not measured


@pytest.mark.parametrize(
    ("sideways", "vertical", "fires", "where"),
    [
        (0.0, -0.055, False, ""),
        (0.085, -0.055, False, ""),
        (0.12, -0.055, True, "to your left"),
        (-0.12, -0.055, True, "to your right"),
        (0.0, 0.06, True, "down"),
        (0.0, -0.17, True, "up"),
        (0.0, 0.04, False, ""),
    ],
)
def test_gaze_away_fires_beyond_its_limits_and_says_where(
    us_passport: Spec, sideways: float, vertical: float, fires: bool, where: str
) -> None:
    m = PhotoMeasurements(1, 600, 600, FaceMeasurements(gaze_sideways=sideways, gaze_vertical=vertical))
    issues = [i for i in check_compliance(m, us_passport).issues if i.code is IssueCode.GAZE_AWAY]
    assert bool(issues) is fires
    if fires:
        (issue,) = issues
        assert issue.message.startswith("Look straight into the camera") and where in issue.message
        assert (issue.severity, issue.remedy) == (Severity.ERROR, Remedy.RETAKE)


def _look_aside(image: RGB, mesh: npt.NDArray[np.float64], fraction: float) -> RGB:
    """The same photo with both irises moved sideways inside the eyes by ``fraction`` of
    the eye's width (the vacated side filled with the eye's own sclera colour)."""
    out = image.copy()
    for contour, (a, b) in ((RIGHT_EYE, (33, 133)), (LEFT_EYE, (362, 263))):
        pts = mesh[list(contour)].astype(np.float32)
        x0, y0 = np.floor(pts.min(0)).astype(int) - 1
        x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
        patch = image[y0:y1, x0:x1]
        dx = round(fraction * float(np.linalg.norm(mesh[b] - mesh[a])))
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        inside = mask[y0:y1, x0:x1].astype(bool)
        sclera = np.percentile(patch[inside].reshape(-1, 3), 90, axis=0)
        moved = np.roll(patch, dx, axis=1)
        moved[:, :dx] = sclera
        out[y0:y1, x0:x1][inside] = moved[inside]
    return out


def test_real_portrait_with_eyes_turned_aside_is_gaze_away(landmarker: TestLandmarker, us_passport: Spec) -> None:
    source = np.asarray(data.astronaut())
    straight = landmarker.detect(source)[0]
    assert abs(measure_gaze(straight.mesh)[0]) < 0.04  # type: ignore[index]
    aside = _look_aside(source, straight.mesh, 0.25)
    found = landmarker.detect(aside)[0]  # the real landmarker finds the moved irises
    sideways, vertical = measure_gaze(found.mesh)  # type: ignore[misc]
    m = PhotoMeasurements(1, 600, 600, FaceMeasurements(gaze_sideways=sideways, gaze_vertical=vertical))
    issue = next(i for i in check_compliance(m, us_passport).issues if i.code is IssueCode.GAZE_AWAY)
    assert sideways > T.max_gaze_sideways and "to your left" in issue.message


# ------------------------------------------------------------------------ shoulders cut


def _person(h: int = 600, w: int = 600, bottom: int | None = None, left: int | None = None) -> npt.NDArray[np.float32]:
    """A soft-edged head and shoulders reaching the frame's bottom, optionally cut off by a
    straight source edge (the rows from ``bottom`` down, the columns left of ``left``)."""
    alpha = np.zeros((h, w), np.float32)
    cv2.ellipse(alpha, (w // 2, 230), (110, 145), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (w // 2 - 70, 330), (w // 2 + 70, 470), 1.0, -1)  # the neck
    cv2.ellipse(alpha, (w // 2, h + 60), (w // 2 - 15, 230), 0, 0, 360, 1.0, -1)  # rounded shoulders
    alpha = cv2.GaussianBlur(alpha, (7, 7), 1.5)
    if bottom is not None:
        alpha[bottom:] = 0.0
    if left is not None:
        alpha[:, :left] = 0.0
    return alpha


def test_a_straight_end_of_the_torso_inside_the_frame_is_measured() -> None:
    clean_bottom, clean_side = measure_torso_cut(_person(), chin_y=375)
    assert clean_bottom == 0.0 and clean_side < T.max_torso_cut_side * 0.6  # the neck's sides are short
    bottom, _ = measure_torso_cut(_person(bottom=520), chin_y=375)
    assert bottom > 0.7  # across the whole torso: 452 of 600 px at that row
    _, side = measure_torso_cut(_person(left=160), chin_y=375)
    assert side > T.max_torso_cut_side  # from the shoulder down to the frame's bottom
    # The same edge tilted by the head's roll (the frame is levelled on the eyes) still counts.
    tilted = _person()
    rows, cols = np.mgrid[0:600, 0:600]
    tilted[rows > 500 + 0.08 * cols] = 0.0
    assert measure_torso_cut(tilted, chin_y=375)[0] > 0.5
    # A uint8 matte reads the same as a float one.
    assert measure_torso_cut((_person(bottom=520) * 255).astype(np.uint8), chin_y=375)[0] == pytest.approx(bottom)


def test_shoulders_cut_is_a_retake_with_a_direction(us_passport: Spec) -> None:
    for scene in (SceneMeasurements(torso_cut_bottom=0.5), SceneMeasurements(torso_cut_side=0.3)):
        (issue,) = check_compliance(PhotoMeasurements(1, 600, 600, scene=scene), us_passport).issues
        assert (issue.code, issue.severity, issue.remedy) == (IssueCode.SHOULDERS_CUT, Severity.ERROR, Remedy.RETAKE)
        assert "farther away" in issue.message
    assert not check_compliance(PhotoMeasurements(1, 600, 600, scene=SceneMeasurements(0.1, 0.15)), us_passport).issues


@pytest.mark.parametrize("name", ["astronaut", "grace"])
def test_real_source_ending_above_the_frame_bottom_is_shoulders_cut(
    made: dict[str, idphoto.Composed], us_passport: Spec, name: str
) -> None:
    cropped, whole = made[f"{name}-cropped"], made[f"{name}-whole"]
    assert IssueCode.SHOULDERS_CUT in _report(cropped, us_passport)
    assert IssueCode.SHOULDERS_CUT not in _report(whole, us_passport)


# ----------------------------------------------------------------------- object near face


def _face_size(mesh: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    xs = mesh[list(FACE_OVAL), 0]
    return float(xs.min()), float(xs.max()), float(mesh[CHIN, 1] - mesh[FOREHEAD_TOP, 1])


def _with_phone(c: idphoto.Composed, colour: tuple[int, int, int]) -> tuple[RGB, npt.NDArray[np.float32]]:
    """A phone held to the ear: a slab beside the face, part of the person's matte."""
    mesh = c.face.mesh
    assert mesh is not None
    lo, hi, face_h = _face_size(mesh)
    face_w = hi - lo
    image, alpha = c.image.copy(), c.alpha.copy()
    x0, x1 = int(hi + 0.02 * face_w), int(hi + 0.35 * face_w)
    y0, y1 = int(mesh[CHIN, 1] - 0.75 * face_h), int(mesh[CHIN, 1] - 0.1 * face_h)
    image[y0:y1, x0:x1] = colour
    alpha[y0:y1, x0:x1] = 1.0
    return image, alpha


def _with_hand(image: RGB, mesh: npt.NDArray[np.float64]) -> tuple[RGB, npt.NDArray[np.bool_]]:
    """A hand raised to the cheek, in the subject's own skin (a cheek patch), shaped as a
    palm and four fingers; returns the image and where the hand is."""
    h, w = image.shape[:2]
    lo, hi, face_h = _face_size(mesh)
    face_w = hi - lo
    cheek = mesh[205]
    r = int(0.05 * face_w)
    patch = image[int(cheek[1]) - r : int(cheek[1]) + r, int(cheek[0]) - r : int(cheek[0]) + r]
    skin = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = np.zeros((h, w), np.uint8)
    cx, cy = int(lo - 0.12 * face_w), int(mesh[CHIN, 1] - 0.2 * face_h)
    cv2.ellipse(mask, (cx, cy), (int(0.15 * face_w), int(0.25 * face_h)), 0, 0, 360, 1, -1)
    for i in range(4):
        finger = (cx + int((i - 1.5) * 0.07 * face_w), cy - int(0.28 * face_h))
        cv2.ellipse(mask, finger, (int(0.03 * face_w), int(0.14 * face_h)), 0, 0, 360, 1, -1)
    out = image.copy()
    out[mask > 0] = skin[mask > 0]
    return out, mask > 0


@pytest.mark.parametrize("name", ["astronaut-whole", "grace-whole"])
def test_a_phone_beside_the_face_is_an_object_near_face(made: dict[str, idphoto.Composed], us_passport: Spec, name: str) -> None:
    c = made[name]
    image, alpha = _with_phone(c, (190, 190, 195))
    hand, thing = measure_near_face(image, alpha, c.face.mesh)
    assert thing > T.max_object_near_face and hand < T.max_hand_near_face
    scene = measure_scene(image, alpha, c.face.mesh)
    issues = check_compliance(PhotoMeasurements(1, 600, 600, scene=scene), us_passport).issues
    (issue,) = [i for i in issues if i.code is not IssueCode.HEADWEAR]  # Grace Hopper wears her cap
    assert (issue.code, issue.remedy) == (IssueCode.OBJECT_NEAR_FACE, Remedy.RETAKE)
    assert "phone" in issue.message


@pytest.mark.parametrize("name", ["astronaut-whole", "grace-whole"])
def test_a_hand_at_the_cheek_is_an_object_near_face(made: dict[str, idphoto.Composed], name: str) -> None:
    c = made[name]
    assert c.face.mesh is not None
    image, where = _with_hand(c.image, c.face.mesh)
    alpha = np.maximum(c.alpha, where.astype(np.float32))
    hand, _ = measure_near_face(image, alpha, c.face.mesh)
    assert hand > T.max_hand_near_face
    # Outside the person's matte, the same pixels are background: nothing to report.
    assert measure_near_face(image, c.alpha * ~where, c.face.mesh)[0] < T.max_hand_near_face


def test_a_hand_the_cut_out_keeps_is_reported_on_the_real_pipeline(
    landmarker: TestLandmarker, segmenter: SelfieSegmenter, us_passport: Spec
) -> None:
    source = np.asarray(data.astronaut())
    face = landmarker.detect(source)[0]
    assert face.mesh is not None
    with_hand, _ = _with_hand(source, face.mesh)
    c = _compose(with_hand, landmarker, segmenter, us_passport)
    issue_codes = _report(c, us_passport)
    assert IssueCode.OBJECT_NEAR_FACE in issue_codes


# ------------------------------------------------------------------------------ headwear


@pytest.mark.parametrize("variant", ["whole", "cropped"])
def test_a_cap_is_headwear_a_warning_and_her_hair_is_none(made: dict[str, idphoto.Composed], us_passport: Spec, variant: str) -> None:
    cap, own_hair = made[f"grace-{variant}"], made[f"astronaut-{variant}"]
    assert measure_scene(cap.image, cap.alpha, cap.face.mesh).headwear
    assert not measure_scene(own_hair.image, own_hair.alpha, own_hair.face.mesh).headwear
    report = check_compliance(PhotoMeasurements(1, 600, 600, scene=SceneMeasurements(headwear=True)), us_passport)
    (issue,) = report.issues
    # A warning: a religious or medical head covering is allowed by most documents.
    assert (issue.code, issue.severity, issue.remedy) == (IssueCode.HEADWEAR, Severity.WARNING, Remedy.RETAKE)
    assert report.passed and "religious" in issue.message
    assert IssueCode.HEADWEAR in _report(cap, us_passport) and IssueCode.HEADWEAR not in _report(own_hair, us_passport)


def _bald(c: idphoto.Composed) -> tuple[RGB, npt.NDArray[np.float32]]:
    """Collins' ID photo with a bald head drawn in: her hair above the brows becomes a scalp of her
    forehead's colour inside a skull-shaped ellipse, and background (white, outside the matte) beyond
    it. Crude, but it has what matters here: a smooth edge with even colour above it, like a brim."""
    assert c.face.mesh is not None
    inv = cv2.invertAffineTransform(hair.canonical_to_image(c.face.mesh))
    h, w = c.image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2], inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    skin = np.median(c.image[(np.abs(cx) < 0.3) & (cy > -0.5) & (cy < -0.4)], axis=0)
    skull = (cx / 1.2) ** 2 + ((cy + 0.3) / 1.5) ** 2 < 1.0
    scalp = skull & (cy < -0.42)
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(c.face.mesh[list(FACE_OVAL)]).astype(np.int32)], 1)
    away = (cy < 0.4) & (c.alpha > 0.02) & ~skull & (oval == 0)
    image = c.image.astype(np.float32)
    image[scalp] = skin * np.clip(1.0 + 0.06 * (cy[scalp] + 0.45), 0.9, 1.02)[:, None]
    image[away] = 255.0
    alpha = c.alpha.copy()
    alpha[away], alpha[scalp] = 0.0, 1.0
    return np.asarray(cv2.GaussianBlur(image, (0, 0), 0.7), dtype=np.uint8), alpha


def test_a_bald_head_on_the_plain_background_is_no_hat(made: dict[str, idphoto.Composed]) -> None:
    c = made["astronaut-whole"]
    assert c.face.mesh is not None
    to_image = hair.canonical_to_image(c.face.mesh)
    for image, alpha in (_bald(c), ((_bald(c)[0] * 0.6).astype(np.uint8), _bald(c)[1])):
        # By the edge and the colour above it alone, the scalp reads as a brim...
        assert hair.wears_hat(image, to_image)
        # ...but above it is the background, not the person.
        assert not hair.wears_hat(image, to_image, alpha)
        assert not measure_scene(image, alpha, c.face.mesh).headwear


def test_no_hairstyle_of_the_catalog_reads_as_headwear(landmarker: TestLandmarker, segmenter: SelfieSegmenter) -> None:
    # Collins in every catalog style, as a US passport and a Schengen photo. The brunette bob is the
    # closest call: a brim-smooth fringe (edge share 1.0, residual 0.02) whose texture (1.22 L*) and
    # side share (0.44) sit just past HAT_TEXTURE and HAT_SIDE_SHARE.
    source = np.asarray(data.astronaut())
    face = landmarker.detect(source)[0]
    assert face.mesh is not None
    person = segmenter.mask(source)
    catalog = load_catalog()
    for style in hair.HAIRSTYLES:
        styled = hair.change_hairstyle(source, face.mesh, person, style)
        for spec_id in ("us-passport", "schengen-visa"):
            c = _compose(styled, landmarker, segmenter, catalog.get(spec_id))
            assert not measure_scene(c.image, c.alpha, c.face.mesh).headwear, (style, spec_id)


# ------------------------------------------------------------------ directions and remedy


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"pitch_deg": 14.0}, "Lower your chin"),
        ({"pitch_deg": -14.0}, "Raise your chin"),
        ({"yaw_deg": 15.0}, "to your left"),
        ({"yaw_deg": -15.0}, "to your right"),
        ({"roll_deg": 12.0}, "left shoulder"),
        ({"roll_deg": -12.0}, "right shoulder"),
    ],
)
def test_pose_issues_say_which_way_to_move(us_passport: Spec, change: dict[str, float], text: str) -> None:
    face = replace(FaceMeasurements(), **change)
    (issue,) = check_compliance(PhotoMeasurements(1, 600, 600, face), us_passport).issues
    assert text in issue.message and "°" not in issue.message


def test_the_contract_carries_the_remedy(us_passport: Spec) -> None:
    scene = SceneMeasurements(torso_cut_bottom=0.5)
    report = check_compliance(PhotoMeasurements(1, 600, 600, scene=scene), us_passport)
    (issue,) = report_pb(report, {}).issues
    assert (issue.code, issue.remedy) == ("SHOULDERS_CUT", render_pb2.REMEDY_RETAKE)


@pytest.mark.parametrize("name", list(SOURCES))
def test_the_near_face_box_top_is_the_whole_box_resized_cut_short(name: str) -> None:
    # Only the box's upper rows are resized (from the source rows they are made of): they must
    # be the very pixels of the whole box resized, for colour and alpha, at scales from a
    # large face's to a near-working size's.
    image = SOURCES[name]()
    alpha = image[..., 1].astype(np.float32) / 255.0
    for k in (0.17, 0.31, 0.5, 0.77, 0.96):
        for y0, x0, x1 in ((0, 0, image.shape[1]), (37, 51, image.shape[1] - 23)):
            for region in (image[y0:, x0:x1], alpha[y0:, x0:x1]):
                size = (max(1, round(region.shape[0] * k)), max(1, round(region.shape[1] * k)))
                whole = cv2.resize(region, size[::-1], interpolation=cv2.INTER_AREA)
                for rows in (1, size[0] // 3, size[0] - 5, size[0]):
                    np.testing.assert_array_equal(_resized_top(region, size, rows), whole[:rows])


def test_lab_is_opencv_8_bit_lab_in_the_usual_units() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (64, 80, 3), np.uint8)
    lab8 = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    expected = np.stack([lab8[..., 0] * np.float32(100.0 / 255.0), lab8[..., 1] - 128.0, lab8[..., 2] - 128.0], axis=-1)
    np.testing.assert_array_equal(_lab(rgb), expected)
