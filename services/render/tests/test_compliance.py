from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from likeness_render.domain.compliance import (
    DEFAULT_THRESHOLDS,
    FaceMeasurements,
    IssueCode,
    PhotoMeasurements,
    Severity,
    Thresholds,
    check_compliance,
    measure_background_uniformity,
    measure_cutout,
)
from likeness_render.domain.compliance_pixels import grown
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.domain.specs import Spec

T = DEFAULT_THRESHOLDS


@pytest.fixture(scope="module")
def us_passport() -> Spec:
    return load_catalog().get("us-passport")  # 2x2 in, 600x600 px at 300 dpi


GOOD_FACE = FaceMeasurements(
    yaw_deg=2.0,
    pitch_deg=-3.0,
    roll_deg=1.0,
    left_eye_openness=0.9,
    right_eye_openness=0.85,
    mouth_openness=0.02,
    sharpness=0.9,
    exposure=0.55,
    shadow_clipped_fraction=0.0,
    highlight_clipped_fraction=0.001,
    lighting_ratio=1.1,
    head_height_mm=30.0,
    eye_line_from_bottom_mm=31.0,
)
GOOD = PhotoMeasurements(
    face_count=1,
    image_width_px=600,
    image_height_px=600,
    face=GOOD_FACE,
    background_std=2.0,
    file_size_kb=120.0,
    source_px_per_mm=20.0,
)


def _with_face(**changes: Any) -> PhotoMeasurements:
    return replace(GOOD, face=replace(GOOD_FACE, **changes))


def test_a_good_photo_passes(us_passport: Spec) -> None:
    report = check_compliance(GOOD, us_passport)
    assert report.issues == () and report.passed and report.spec_id == "us-passport"


def test_thresholds_are_icao_ish() -> None:
    assert (T.max_roll_deg, T.max_yaw_deg, T.max_pitch_deg) == (8.0, 10.0, 10.0)


Case = tuple[IssueCode, PhotoMeasurements, PhotoMeasurements]


def _edge(code: IssueCode, field: str, limit: float, step: float, *, upper: bool) -> Case:
    """A face measure `step` past an upper (or lower) `limit` raises `code`; `step` inside it does not."""
    past = step if upper else -step
    return code, _with_face(**{field: limit + past}), _with_face(**{field: limit - past})


# One row per rule: measurements just outside the limit raise the code, just inside do not.
CASES: list[Case] = [
    (IssueCode.HEAD_TILTED, _with_face(roll_deg=-8.5), _with_face(roll_deg=-7.5)),
    (IssueCode.HEAD_TURNED, _with_face(yaw_deg=10.5), _with_face(yaw_deg=-9.5)),
    (IssueCode.HEAD_PITCHED, _with_face(pitch_deg=-10.5), _with_face(pitch_deg=9.5)),
    (IssueCode.EYES_CLOSED, _with_face(right_eye_openness=T.min_eye_openness - 0.05),
     _with_face(left_eye_openness=T.min_eye_openness + 0.05)),
    _edge(IssueCode.MOUTH_OPEN, "mouth_openness", T.max_mouth_openness, 0.05, upper=True),
    _edge(IssueCode.BLURRY, "sharpness", T.min_sharpness, 0.02, upper=False),
    _edge(IssueCode.UNDEREXPOSED, "exposure", T.min_exposure, 0.01, upper=False),
    _edge(IssueCode.UNDEREXPOSED, "shadow_clipped_fraction", T.max_shadow_clipped_fraction, 0.01, upper=True),
    _edge(IssueCode.OVEREXPOSED, "exposure", T.max_exposure, 0.01, upper=True),
    _edge(IssueCode.OVEREXPOSED, "highlight_clipped_fraction", T.max_highlight_clipped_fraction, 0.01, upper=True),
    (IssueCode.UNEVEN_LIGHTING, _with_face(lighting_ratio=1.6), _with_face(lighting_ratio=1.45)),
    (IssueCode.UNEVEN_LIGHTING, _with_face(lighting_ratio=1 / 1.6), _with_face(lighting_ratio=0.7)),
    (IssueCode.BACKGROUND_NOT_UNIFORM, replace(GOOD, background_std=T.max_background_std + 1),
     replace(GOOD, background_std=T.max_background_std - 1)),
    (IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, _with_face(head_height_mm=24.5), _with_face(head_height_mm=25.05)),
    (IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, _with_face(head_height_mm=35.5), _with_face(head_height_mm=34.9)),
    # 425 px at 600 px / 50.8 mm is 35.98 mm: too tall; 400 px is 33.9 mm.
    (IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, _with_face(head_height_mm=None, head_height_px=425),
     _with_face(head_height_mm=None, head_height_px=400)),
    (IssueCode.EYE_LINE_OUT_OF_RANGE, _with_face(eye_line_from_bottom_mm=27.5),
     _with_face(eye_line_from_bottom_mm=28.5)),
    (IssueCode.EYE_LINE_OUT_OF_RANGE, _with_face(eye_line_from_bottom_mm=None, eye_line_from_bottom_px=420),
     _with_face(eye_line_from_bottom_mm=None, eye_line_from_bottom_px=400)),
    (IssueCode.LOW_RESOLUTION, replace(GOOD, image_width_px=599), replace(GOOD, image_width_px=601)),
    (IssueCode.MULTIPLE_FACES, replace(GOOD, face_count=2), replace(GOOD, face_count=1)),
    (IssueCode.NO_FACE, replace(GOOD, face_count=0, face=None), GOOD),
]  # fmt: skip


@pytest.mark.parametrize(("code", "bad", "ok"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_rule_is_raised_and_not_raised(us_passport: Spec, code: IssueCode, bad: PhotoMeasurements, ok: PhotoMeasurements) -> None:
    bad_report = check_compliance(bad, us_passport)
    assert bad_report.codes == {code}, bad_report.issues
    assert not bad_report.passed
    issue = bad_report.issues[0]
    assert issue.severity is Severity.ERROR and issue.message
    assert issue.allowed_min is not None or issue.allowed_max is not None
    ok_report = check_compliance(ok, us_passport)
    assert code not in ok_report.codes, ok_report.issues


def test_enlarged_source_is_a_low_resolution_warning(us_passport: Spec) -> None:
    # The output needs 600/50.8 = 11.8 px/mm: 9 source px/mm is a 1.31x enlargement. The
    # geometry is still right, so it warns; a too-small output image is the error case.
    (issue,) = check_compliance(replace(GOOD, source_px_per_mm=9.0), us_passport).issues
    assert (issue.code, issue.severity) == (IssueCode.LOW_RESOLUTION, Severity.WARNING)
    assert issue.measured == pytest.approx(9.0 / (600 / 50.8))
    assert issue.allowed_min == T.min_source_scale
    assert check_compliance(replace(GOOD, source_px_per_mm=10.0), us_passport).issues == ()


def test_issue_carries_measured_value_and_limits(us_passport: Spec) -> None:
    (issue,) = check_compliance(_with_face(roll_deg=12.0), us_passport).issues
    assert (issue.code, issue.measured, issue.allowed_min, issue.allowed_max) == (
        IssueCode.HEAD_TILTED, 12.0, -8.0, 8.0,
    )  # fmt: skip
    (head,) = check_compliance(_with_face(head_height_mm=36.2), us_passport).issues
    assert (head.measured, head.allowed_min, head.allowed_max) == (36.2, 25.0, 35.0)


def test_file_size_band_follows_the_spec() -> None:
    cn = load_catalog().get("cn-resident-id")  # 14-20 KB, 358x441 px
    good = replace(GOOD, image_width_px=358, image_height_px=441, face=None, face_count=1)
    for kb, raised in ((13.9, True), (14.0, False), (20.0, False), (25.0, True)):
        report = check_compliance(replace(good, file_size_kb=kb), cn)
        assert (IssueCode.FILE_SIZE_OUT_OF_RANGE in report.codes) is raised, kb
    issue = check_compliance(replace(good, file_size_kb=25.0), cn).issues[0]
    assert (issue.allowed_min, issue.allowed_max) == (14.0, 20.0)
    # A spec that states no band never raises it.
    us = load_catalog().get("us-passport")
    assert check_compliance(replace(GOOD, file_size_kb=9000.0), us).issues == ()


def test_no_face_skips_the_face_rules(us_passport: Spec) -> None:
    report = check_compliance(replace(GOOD, face_count=0, face=replace(GOOD_FACE, roll_deg=40)), us_passport)
    assert report.codes == {IssueCode.NO_FACE}


def test_unstated_bounds_only_warn() -> None:
    ae = load_catalog().get("ae-id-card")  # head >= 38 mm stated; the max is derived
    base = replace(GOOD, image_width_px=472, image_height_px=709, source_px_per_mm=None)
    below = check_compliance(replace(base, face=replace(GOOD_FACE, head_height_mm=37.0,
                                                        eye_line_from_bottom_mm=None)), ae)  # fmt: skip
    assert [(i.code, i.severity) for i in below.issues] == [(IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, Severity.ERROR)]
    above = check_compliance(replace(base, face=replace(GOOD_FACE, head_height_mm=45.0,
                                                        eye_line_from_bottom_mm=None)), ae)  # fmt: skip
    assert [(i.code, i.severity) for i in above.issues] == [(IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, Severity.WARNING)]
    assert above.passed  # warnings do not fail the photo
    # No eye line is stated for this spec: the ISO default band (30-42 mm) only warns.
    eye = check_compliance(replace(base, face=replace(GOOD_FACE, head_height_mm=40.0,
                                                      eye_line_from_bottom_mm=45.0)), ae)  # fmt: skip
    assert [(i.code, i.severity) for i in eye.issues] == [(IssueCode.EYE_LINE_OUT_OF_RANGE, Severity.WARNING)]


def test_thresholds_can_be_tightened(us_passport: Spec) -> None:
    strict = Thresholds(max_roll_deg=2.0)
    assert IssueCode.HEAD_TILTED in check_compliance(_with_face(roll_deg=3.0), us_passport, strict).codes
    assert check_compliance(_with_face(roll_deg=3.0), us_passport).issues == ()


# ------------------------------------------------------------------ pixel measurements


def _std(image: np.ndarray, mask: np.ndarray) -> float:
    value = measure_background_uniformity(image, mask)
    assert value is not None
    return value


def test_background_uniformity_of_a_plain_and_a_busy_background() -> None:
    image = np.full((200, 160, 3), (230, 230, 230), dtype=np.uint8)
    mask = np.zeros((200, 160), dtype=bool)
    mask[60:, 40:120] = True  # head and shoulders reaching the bottom border
    image[mask] = np.random.default_rng(0).integers(0, 256, (int(mask.sum()), 3), dtype=np.uint8)
    # The colourful person touching the border is excluded: the background is flat.
    assert measure_background_uniformity(image, mask) == pytest.approx(0.0)
    # The same mask as floats or 0-255 bytes means the same.
    assert measure_background_uniformity(image, mask.astype(np.float32)) == pytest.approx(0.0)
    assert measure_background_uniformity(image, mask.astype(np.uint8) * 255) == pytest.approx(0.0)
    # A shadow on one side of the backdrop is not uniform.
    shadowed = image.copy()
    shadowed[:, :30][~mask[:, :30]] = (150, 150, 150)
    assert _std(shadowed, mask) > T.max_background_std
    # A colour cast at almost unchanged luma (a luma std would miss it) counts too.
    tinted = image.copy()
    tinted[:, :80][~mask[:, :80]] = (200, 240, 255)
    assert abs(float(np.array([0.299, 0.587, 0.114]) @ np.array([-30, 10, 25]))) < 0.5
    assert _std(tinted, mask) > T.max_background_std
    # The real astronaut photo has a flag and a shuttle model behind her.
    astro = data.astronaut()
    person = np.zeros(astro.shape[:2], dtype=bool)
    person[40:, 100:420] = True
    assert _std(astro, person) > T.max_background_std


def test_background_uniformity_without_background_pixels() -> None:
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    assert measure_background_uniformity(image, np.ones((50, 50), dtype=bool)) is None
    with pytest.raises(ValueError, match="does not match"):
        measure_background_uniformity(image, np.ones((40, 50), dtype=bool))


@pytest.mark.parametrize("radius", [3, 6, 9, 15, 23, 31])
def test_cutout_growth_is_the_elliptical_dilation_pixel_for_pixel(radius: int) -> None:
    # The cut-out's rings are grown as stacked rectangles: they must be exactly what OpenCV's
    # elliptical kernel gives, on a real silhouette (skimage's horse), a head-and-shoulders
    # shape and scattered specks (a lone pixel grows into the kernel itself).
    horse = ~data.horse()
    portrait = np.zeros((531, 413), np.uint8)
    cv2.ellipse(portrait, (206, 200), (90, 120), 0, 0, 360, 1, -1)
    cv2.fillPoly(portrait, [np.array([[40, 531], [120, 330], [290, 330], [380, 531]], np.int32)], 1)
    specks = np.random.default_rng(radius).random((120, 170)) > 0.995
    for mask in (horse, portrait.astype(bool), specks):
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        expected = cv2.dilate(mask.astype(np.uint8), kernel) > 0
        np.testing.assert_array_equal(grown(mask, radius), expected)


def test_cutout_islands_are_the_blobs_apart_from_the_person() -> None:
    # A person on white; blobs of another colour: apart and large (counted), apart and small
    # (not), touching the person on a side or only at a corner (theirs, not counted), and a
    # large one joined to the person through a thin bridge (still theirs).
    background = np.full((120, 160, 3), 255, np.uint8)
    person = np.zeros((120, 160), bool)
    person[40:120, 60:100] = True
    image = background.copy()
    image[person] = (90, 70, 60)
    blobs = np.zeros((120, 160), bool)
    blobs[5:10, 5:10] = True  # 25 px apart: an island
    blobs[5:9, 150:154] = True  # 16 px apart: an island (over 15)
    blobs[20:23, 20:25] = True  # 15 px apart: too small
    blobs[60:70, 50:60] = True  # against the person's left side
    blobs[30:40, 100:110] = True  # meets the person's top right corner diagonally only
    blobs[100:110, 120:140] = True  # 200 px, joined by a one-pixel line
    blobs[105, 100:120] = True
    image[blobs] = (200, 40, 40)
    m = measure_cutout(image, person, background)
    assert m.islands == 2
    assert measure_cutout(image, person, background, t=replace(T, island_px=14)).islands == 3
