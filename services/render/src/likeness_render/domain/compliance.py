"""Compliance rules for ID photos: measurements in, a report of issues out.

Pure: the measurements come from the faces service (pose, eye and mouth state, and the
face's image quality: sharpness, exposure, clipping, lighting, all defined there, once) and
from the render pipeline (frame geometry, background, file size, and what the output shows
around the face: compliance_scene). Nothing here measures a face again.

Every issue says what to do: the messages give a direction ("lower your chin"), and
``Issue.remedy`` says whether the user must retake the photo or Likeness fixed it.
"""

from __future__ import annotations

from collections.abc import Iterator

from likeness_render.domain.compliance_pixels import measure_background_uniformity, measure_cutout
from likeness_render.domain.compliance_scene import measure_gaze, measure_scene
from likeness_render.domain.compliance_types import (
    DEFAULT_THRESHOLDS,
    ComplianceReport,
    CutoutMeasurements,
    FaceMeasurements,
    Issue,
    IssueCode,
    PhotoMeasurements,
    Remedy,
    SceneMeasurements,
    Severity,
    Thresholds,
)
from likeness_render.domain.specs import DEFAULT_DPI, Band, Spec


def check_compliance(
    m: PhotoMeasurements,
    spec: Spec,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    default_dpi: float = DEFAULT_DPI,
) -> ComplianceReport:
    """Judge ``m`` against ``spec``; one issue per failed rule, in a stable order."""
    return ComplianceReport(spec.id, tuple(_issues(m, spec, thresholds, default_dpi)))


def _issues(m: PhotoMeasurements, spec: Spec, t: Thresholds, default_dpi: float) -> Iterator[Issue]:
    if m.face_count == 0:
        yield Issue(IssueCode.NO_FACE, "No face was found in the photo.", 0, 1, 1)
    elif m.face_count > 1:
        yield Issue(
            IssueCode.MULTIPLE_FACES,
            f"{m.face_count} faces were found; an ID photo shows exactly one person.",
            m.face_count,
            1,
            1,
        )

    yield from _check_resolution(m, spec, t, default_dpi)
    face = m.face if m.face_count > 0 else None
    if face is not None:
        yield from _check_pose(face, t)
        yield from _check_gaze(face, t)
        yield from _check_expression(face, t)
        yield from _check_image_quality(face, t)
        yield from _check_geometry(face, spec, t, default_dpi)

    if m.cutout is not None:
        yield from _check_cutout(m.cutout, t)
    if m.scene is not None:
        yield from _check_scene(m.scene, t)

    yield from _outside(
        IssueCode.BACKGROUND_NOT_UNIFORM,
        "The background is not plain: shadows, gradients or objects are visible.",
        m.background_std,
        hi=t.max_background_std,
    )

    if m.file_size_kb is not None:
        lo, hi = spec.file_min_kb, spec.file_max_kb
        if (lo is not None and m.file_size_kb < lo) or (hi is not None and m.file_size_kb > hi):
            yield Issue(
                IssueCode.FILE_SIZE_OUT_OF_RANGE,
                f"The file is {m.file_size_kb:.1f} KB; this document requires {_range_text(lo, hi, 'KB')}.",
                m.file_size_kb,
                lo,
                hi,
            )


def _check_cutout(c: CutoutMeasurements, t: Thresholds) -> Iterator[Issue]:
    if c.islands > 0 or c.fringe_fraction > t.max_fringe_fraction or c.leftover_fraction > t.max_leftover_fraction:
        yield Issue(
            IssueCode.BACKGROUND_LEFTOVER,
            "Parts of the original background are still visible around the person. Retake the photo in front of "
            "a plain, light wall, standing about a metre away from it, with nothing else in the picture.",
            c.fringe_fraction if c.fringe_fraction > t.max_fringe_fraction else c.leftover_fraction,
            None,
            t.max_fringe_fraction if c.fringe_fraction > t.max_fringe_fraction else t.max_leftover_fraction,
        )
    if c.others_removed > 0:
        yield Issue(
            IssueCode.OTHER_PERSON,
            "Someone or something else was beside you in the photo; Likeness removed it from the background. "
            "Check that nothing of it is left.",
            c.others_removed,
            0,
            0,
            Severity.WARNING,
            Remedy.FIXED,
        )


def _check_resolution(m: PhotoMeasurements, spec: Spec, t: Thresholds, default_dpi: float) -> Iterator[Issue]:
    need_w, need_h = spec.size_px(default_dpi)
    if m.image_width_px < need_w or m.image_height_px < need_h:
        ratio = min(m.image_width_px / need_w, m.image_height_px / need_h)
        yield Issue(
            IssueCode.LOW_RESOLUTION,
            f"The image is {m.image_width_px}x{m.image_height_px} px; this document needs at least {need_w}x{need_h} px.",
            ratio,
            1.0,
            None,
        )
        return
    if m.source_px_per_mm is not None:
        required = spec.px_per_mm(default_dpi)
        scale = m.source_px_per_mm / required
        if scale < t.min_source_scale:
            yield Issue(
                IssueCode.LOW_RESOLUTION,
                f"The face in the original photo is too small: it had to be enlarged "
                f"{1 / scale:.1f}x. Move closer or use a higher-resolution photo.",
                scale,
                t.min_source_scale,
                None,
                # Enlarging softens the print but the geometry is right; the pipeline refuses
                # outright only past its hard upscale limit (LOW_RESOLUTION error there).
                Severity.WARNING,
            )


# What to do about a pose angle, by its sign (the faces service's conventions: roll > 0 when
# the subject's left eye is lower, yaw > 0 when the nose points to the image's left, i.e. the
# subject's right, pitch > 0 when the chin is up).
_POSE_DIRECTIONS = {
    IssueCode.HEAD_TILTED: (
        "Hold your head level: it leans towards your left shoulder.",
        "Hold your head level: it leans towards your right shoulder.",
    ),
    IssueCode.HEAD_TURNED: (
        "Turn your face a little to your left, straight towards the camera.",
        "Turn your face a little to your right, straight towards the camera.",
    ),
    IssueCode.HEAD_PITCHED: (
        "Lower your chin a little: the head is tipped back.",
        "Raise your chin a little: the head is tipped forward.",
    ),
}


def _check_pose(face: FaceMeasurements, t: Thresholds) -> Iterator[Issue]:
    for code, value, limit in (
        (IssueCode.HEAD_TILTED, face.roll_deg, t.max_roll_deg),
        (IssueCode.HEAD_TURNED, face.yaw_deg, t.max_yaw_deg),
        (IssueCode.HEAD_PITCHED, face.pitch_deg, t.max_pitch_deg),
    ):
        if value is not None and abs(value) > limit:
            positive, negative = _POSE_DIRECTIONS[code]
            yield Issue(code, positive if value > 0 else negative, value, -limit, limit)


def _check_gaze(face: FaceMeasurements, t: Thresholds) -> Iterator[Issue]:
    sideways, vertical = face.gaze_sideways, face.gaze_vertical
    if sideways is not None and abs(sideways) > t.max_gaze_sideways:
        # Irises towards the image's right: the subject looks to their own left.
        where = "to your left" if sideways > 0 else "to your right"
        yield Issue(
            IssueCode.GAZE_AWAY,
            f"Look straight into the camera: your eyes look {where}.",
            sideways,
            -t.max_gaze_sideways,
            t.max_gaze_sideways,
        )
    elif vertical is not None and abs(vertical - t.gaze_rest_height) > t.max_gaze_vertical:
        where = "down" if vertical > t.gaze_rest_height else "up"
        yield Issue(
            IssueCode.GAZE_AWAY,
            f"Look straight into the camera: your eyes look {where}.",
            vertical,
            t.gaze_rest_height - t.max_gaze_vertical,
            t.gaze_rest_height + t.max_gaze_vertical,
        )


def _check_scene(s: SceneMeasurements, t: Thresholds) -> Iterator[Issue]:
    if s.torso_cut_bottom > t.max_torso_cut_bottom or s.torso_cut_side > t.max_torso_cut_side:
        bottom = s.torso_cut_bottom > t.max_torso_cut_bottom
        yield Issue(
            IssueCode.SHOULDERS_CUT,
            "Your shoulders are cut off: the original photo ends inside the frame. Retake it from a little "
            "farther away, with your shoulders and the top of your chest in the picture.",
            s.torso_cut_bottom if bottom else s.torso_cut_side,
            0.0,
            t.max_torso_cut_bottom if bottom else t.max_torso_cut_side,
        )
    if s.hand_near_face > t.max_hand_near_face or s.object_near_face > t.max_object_near_face:
        hand = s.hand_near_face > t.max_hand_near_face
        what = "A hand is" if hand else "Something (a phone, a microphone) is"
        yield Issue(
            IssueCode.OBJECT_NEAR_FACE,
            f"{what} next to your face. Retake the photo with your hands down and nothing beside or in front of your face.",
            s.hand_near_face if hand else s.object_near_face,
            0.0,
            t.max_hand_near_face if hand else t.max_object_near_face,
        )
    if s.headwear:
        # A warning: documents that refuse hats accept a religious or medical head covering.
        yield Issue(
            IssueCode.HEADWEAR,
            "You seem to wear a hat or head covering. Take it off and retake the photo: most documents allow one "
            "only for religious or medical reasons, and then it must leave the whole face visible.",
            1.0,
            None,
            0.0,
            Severity.WARNING,
        )


def _check_expression(face: FaceMeasurements, t: Thresholds) -> Iterator[Issue]:
    eyes = [v for v in (face.left_eye_openness, face.right_eye_openness) if v is not None]
    yield from _outside(
        IssueCode.EYES_CLOSED, "The eyes must be open and clearly visible.", min(eyes) if eyes else None, lo=t.min_eye_openness
    )
    yield from _outside(
        IssueCode.MOUTH_OPEN, "The mouth must be closed with a neutral expression.", face.mouth_openness, hi=t.max_mouth_openness
    )


def _check_image_quality(face: FaceMeasurements, t: Thresholds) -> Iterator[Issue]:
    yield from _outside(IssueCode.BLURRY, "The face is out of focus or blurred by movement.", face.sharpness, lo=t.min_sharpness)
    dark = (face.exposure is not None and face.exposure < t.min_exposure) or (
        face.shadow_clipped_fraction is not None and face.shadow_clipped_fraction > t.max_shadow_clipped_fraction
    )
    bright = (face.exposure is not None and face.exposure > t.max_exposure) or (
        face.highlight_clipped_fraction is not None and face.highlight_clipped_fraction > t.max_highlight_clipped_fraction
    )
    if dark:
        yield Issue(
            IssueCode.UNDEREXPOSED,
            "The face is too dark; use more light in front of the face.",
            face.exposure,
            t.min_exposure,
            t.max_exposure,
        )
    if bright:
        yield Issue(
            IssueCode.OVEREXPOSED,
            "The face is too bright or washed out; reduce the light or avoid flash glare.",
            face.exposure,
            t.min_exposure,
            t.max_exposure,
        )
    if face.lighting_ratio is not None and face.lighting_ratio > 0:
        imbalance = max(face.lighting_ratio, 1.0 / face.lighting_ratio)
        if imbalance > t.max_lighting_ratio:
            yield Issue(
                IssueCode.UNEVEN_LIGHTING,
                "One side of the face is in shadow; light the face evenly from the front.",
                face.lighting_ratio,
                1.0 / t.max_lighting_ratio,
                t.max_lighting_ratio,
            )


def _outside(code: IssueCode, message: str, value: float | None, lo: float | None = None, hi: float | None = None) -> Iterator[Issue]:
    """``code`` when a measured ``value`` is below ``lo`` or above ``hi`` (a bound not given is open)."""
    if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        yield Issue(code, message, value, lo, hi)


def _check_geometry(face: FaceMeasurements, spec: Spec, t: Thresholds, default_dpi: float) -> Iterator[Issue]:
    scale = spec.px_per_mm(default_dpi)
    for code, what, mm, px, band_of in (
        (IssueCode.HEAD_HEIGHT_OUT_OF_RANGE, "head height (chin to crown)", face.head_height_mm, face.head_height_px, spec.head_band_mm),
        (
            IssueCode.EYE_LINE_OUT_OF_RANGE,
            "eye line above the bottom edge",
            face.eye_line_from_bottom_mm,
            face.eye_line_from_bottom_px,
            spec.eye_band_mm,
        ),
    ):
        # Measured in mm, else in output pixels.
        value = px / scale if mm is None and px is not None else mm
        if value is not None:
            yield from _check_band(code, what, value, band_of(default_dpi), t)


def _check_band(code: IssueCode, what: str, value: float, band: Band, t: Thresholds) -> Iterator[Issue]:
    tol = t.geometry_tolerance_mm
    if value < band.min - tol:
        stated = band.min_stated
    elif value > band.max + tol:
        stated = band.max_stated
    else:
        return
    source = "" if stated else " (a recommended range; this document states no limit here)"
    yield Issue(
        code,
        f"The {what} is {value:.1f} mm; allowed {band.min:.1f}-{band.max:.1f} mm{source}.",
        value,
        band.min,
        band.max,
        Severity.ERROR if stated else Severity.WARNING,
    )


def _range_text(lo: float | None, hi: float | None, unit: str) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g}-{hi:g} {unit}"
    if lo is not None:
        return f"at least {lo:g} {unit}"
    return f"at most {hi:g} {unit}"


__all__ = [
    "DEFAULT_THRESHOLDS",
    "ComplianceReport",
    "CutoutMeasurements",
    "FaceMeasurements",
    "Issue",
    "IssueCode",
    "PhotoMeasurements",
    "Remedy",
    "SceneMeasurements",
    "Severity",
    "Thresholds",
    "check_compliance",
    "measure_background_uniformity",
    "measure_cutout",
    "measure_gaze",
    "measure_scene",
]
