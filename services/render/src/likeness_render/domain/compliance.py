"""Compliance rules for ID photos: measurements in, a report of issues out.

Pure: the measurements come from the faces service and the render pipeline; the few
image measures that are plain pixel statistics live here so their definitions and the
thresholds that judge them sit side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from likeness_render.domain.specs import DEFAULT_DPI, Band, Spec


class IssueCode(StrEnum):
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    LOW_RESOLUTION = "LOW_RESOLUTION"
    HEAD_TILTED = "HEAD_TILTED"
    HEAD_TURNED = "HEAD_TURNED"
    HEAD_PITCHED = "HEAD_PITCHED"
    EYES_CLOSED = "EYES_CLOSED"
    MOUTH_OPEN = "MOUTH_OPEN"
    BLURRY = "BLURRY"
    UNDEREXPOSED = "UNDEREXPOSED"
    OVEREXPOSED = "OVEREXPOSED"
    UNEVEN_LIGHTING = "UNEVEN_LIGHTING"
    BACKGROUND_NOT_UNIFORM = "BACKGROUND_NOT_UNIFORM"
    HEAD_HEIGHT_OUT_OF_RANGE = "HEAD_HEIGHT_OUT_OF_RANGE"
    EYE_LINE_OUT_OF_RANGE = "EYE_LINE_OUT_OF_RANGE"
    FILE_SIZE_OUT_OF_RANGE = "FILE_SIZE_OUT_OF_RANGE"


class Severity(StrEnum):
    ERROR = "error"  # an authority following the spec would refuse the photo
    WARNING = "warning"  # judged against a fallback bound the spec does not state


@dataclass(frozen=True)
class Thresholds:
    """Every limit the rules use, in one place. Angles in degrees, fractions 0-1,
    luminance on the 0-255 scale (Rec. 601 luma of sRGB)."""

    # ICAO Doc 9303 / ISO/IEC 19794-5 ask for a frontal pose within about ±5° of roll,
    # yaw and pitch; landmark-based pose estimates carry a few degrees of noise, so the
    # limits are widened to what photo-booth software commonly enforces (roll 8°,
    # yaw/pitch 10°) to avoid refusing good photos on estimator noise.
    max_roll_deg: float = 8.0
    max_yaw_deg: float = 10.0
    max_pitch_deg: float = 10.0
    # Eye openness 0 (shut) to 1 (wide open), i.e. 1 - the eyeBlink blendshape. A relaxed
    # open eye scores about 0.7-1.0; squints and downward gaze dip to about 0.5; a blink in
    # progress is below 0.35. Checked per eye: one closed eye is as refusable as two.
    min_eye_openness: float = 0.35
    # Mouth openness 0-1 as the faces service measures it: inner-lip gap over mouth width,
    # scaled so 1.0 is a wide-open mouth (gap half the width). A closed mouth reads under
    # 0.05, a natural smile showing teeth 0.25-0.35 (several authorities, the US among them,
    # accept it), talking or gaping 0.5 and more. 0.45 refuses an open mouth, not a smile.
    max_mouth_openness: float = 0.45
    # Variance of the Laplacian of the face normalised to 128 px height (see
    # measure_sharpness). The sharp astronaut test face (125 px, measured as is) scores
    # about 860, and about 420 when the photo was upscaled 2-4x first; a Gaussian blur of
    # sigma 1 px at that scale gives about 65 and sigma 1.5 px, clearly soft, about 24.
    min_sharpness: float = 40.0
    # Face luma. Dark skin well exposed has a mean around 60-100, so the dark limit is set
    # well below it to judge exposure, not complexion; clipping fractions catch the rest.
    min_face_luma: float = 45.0
    max_face_luma: float = 215.0
    # More than 5 % of face pixels crushed to black or blown to white loses the detail
    # (eye corners, skin texture) face matching relies on.
    max_shadow_clipped_fraction: float = 0.05
    max_highlight_clipped_fraction: float = 0.05
    # ICAO asks for even lighting without shadows on the face. A 1.5:1 luma ratio between
    # the face halves (about 0.6 stop) is where a side shadow becomes visible in print.
    max_lighting_ratio: float = 1.5
    # Std of the background border in luma/channel levels. A re-rendered plain background
    # scores ~0-2 and a real plain backdrop 3-8 (sensor noise, gentle falloff); above 12,
    # gradients, shadows or objects are visible.
    max_background_std: float = 12.0
    # Upscaling a source by more than 1.25x (source px per output mm under 80 % of the
    # output's px per mm) softens the print visibly.
    min_source_scale: float = 0.8
    # Tolerance on head height and eye line, in mm: the crop is planned to the band, so
    # this only absorbs landmark noise (about half a pixel at 300 dpi is 0.04 mm; 0.1 mm
    # leaves room for sub-pixel estimates at lower resolutions).
    geometry_tolerance_mm: float = 0.1


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class FaceMeasurements:
    """Measurements of the subject's face. Any ``None`` skips the rules that need it."""

    yaw_deg: float | None = None
    pitch_deg: float | None = None
    roll_deg: float | None = None
    left_eye_openness: float | None = None  # 0 shut .. 1 open
    right_eye_openness: float | None = None
    mouth_openness: float | None = None  # 0 closed .. 1 wide open
    sharpness: float | None = None  # see measure_sharpness
    exposure_mean: float | None = None  # face luma mean, 0-255
    shadow_clipped_fraction: float | None = None  # face pixels with luma <= 5
    highlight_clipped_fraction: float | None = None  # face pixels with luma >= 250
    lighting_ratio: float | None = None  # left/right face-half luma (image left / right)
    # Geometry in the output frame. mm wins when both are given; px is converted with the
    # spec's px_per_mm.
    head_height_mm: float | None = None
    head_height_px: float | None = None
    eye_line_from_bottom_mm: float | None = None
    eye_line_from_bottom_px: float | None = None


@dataclass(frozen=True)
class PhotoMeasurements:
    face_count: int
    image_width_px: int
    image_height_px: int
    face: FaceMeasurements | None = None  # the subject; None when face_count == 0
    background_std: float | None = None  # see measure_background_uniformity
    file_size_kb: float | None = None  # of the encoded output, KB = 1024 B
    # Source pixels per mm of the output frame (source head px / output head mm): how
    # much the source had to be scaled up to fill the frame.
    source_px_per_mm: float | None = None


@dataclass(frozen=True)
class Issue:
    code: IssueCode
    message: str
    measured: float | None
    allowed_min: float | None
    allowed_max: float | None
    severity: Severity


@dataclass(frozen=True)
class ComplianceReport:
    spec_id: str
    issues: tuple[Issue, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        """No error-level issue (warnings allowed)."""
        return not any(i.severity is Severity.ERROR for i in self.issues)

    @property
    def codes(self) -> frozenset[IssueCode]:
        return frozenset(i.code for i in self.issues)


def check_compliance(
    m: PhotoMeasurements,
    spec: Spec,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    *,
    default_dpi: float = DEFAULT_DPI,
) -> ComplianceReport:
    """Judge ``m`` against ``spec``; one issue per failed rule, in a stable order."""
    t = thresholds
    issues = _IssueList()
    add = issues.add

    if m.face_count == 0:
        add(IssueCode.NO_FACE, "No face was found in the photo.", 0, 1, 1)
    elif m.face_count > 1:
        add(
            IssueCode.MULTIPLE_FACES,
            f"{m.face_count} faces were found; an ID photo shows exactly one person.",
            m.face_count,
            1,
            1,
        )

    _check_resolution(m, spec, t, default_dpi, add)
    face = m.face if m.face_count > 0 else None
    if face is not None:
        _check_pose(face, t, add)
        _check_expression(face, t, add)
        _check_image_quality(face, t, add)
        _check_geometry(face, spec, t, default_dpi, add)

    if m.background_std is not None and m.background_std > t.max_background_std:
        add(
            IssueCode.BACKGROUND_NOT_UNIFORM,
            "The background is not plain: shadows, gradients or objects are visible.",
            m.background_std,
            None,
            t.max_background_std,
        )

    if m.file_size_kb is not None:
        lo, hi = spec.file_min_kb, spec.file_max_kb
        if (lo is not None and m.file_size_kb < lo) or (hi is not None and m.file_size_kb > hi):
            add(
                IssueCode.FILE_SIZE_OUT_OF_RANGE,
                f"The file is {m.file_size_kb:.1f} KB; this document requires {_range_text(lo, hi, 'KB')}.",
                m.file_size_kb,
                lo,
                hi,
            )
    return ComplianceReport(spec.id, tuple(issues.items))


class _AddIssue(Protocol):
    def __call__(
        self,
        code: IssueCode,
        message: str,
        measured: float | None,
        lo: float | None,
        hi: float | None,
        severity: Severity = Severity.ERROR,
    ) -> None: ...


class _IssueList:
    def __init__(self) -> None:
        self.items: list[Issue] = []

    def add(
        self,
        code: IssueCode,
        message: str,
        measured: float | None,
        lo: float | None,
        hi: float | None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        self.items.append(Issue(code, message, measured, lo, hi, severity))


def _check_resolution(m: PhotoMeasurements, spec: Spec, t: Thresholds, default_dpi: float, add: _AddIssue) -> None:
    need_w, need_h = spec.size_px(default_dpi)
    if m.image_width_px < need_w or m.image_height_px < need_h:
        ratio = min(m.image_width_px / need_w, m.image_height_px / need_h)
        add(
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
            add(
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


def _check_pose(face: FaceMeasurements, t: Thresholds, add: _AddIssue) -> None:
    for code, value, limit, what in (
        (IssueCode.HEAD_TILTED, face.roll_deg, t.max_roll_deg, "tilted sideways"),
        (IssueCode.HEAD_TURNED, face.yaw_deg, t.max_yaw_deg, "turned to one side"),
        (IssueCode.HEAD_PITCHED, face.pitch_deg, t.max_pitch_deg, "tipped up or down"),
    ):
        if value is not None and abs(value) > limit:
            add(
                code,
                f"The head is {what} by {abs(value):.0f}°; face the camera straight on (at most {limit:g}°).",
                value,
                -limit,
                limit,
            )


def _check_expression(face: FaceMeasurements, t: Thresholds, add: _AddIssue) -> None:
    eyes = [v for v in (face.left_eye_openness, face.right_eye_openness) if v is not None]
    if eyes and min(eyes) < t.min_eye_openness:
        add(
            IssueCode.EYES_CLOSED,
            "The eyes must be open and clearly visible.",
            min(eyes),
            t.min_eye_openness,
            None,
        )
    if face.mouth_openness is not None and face.mouth_openness > t.max_mouth_openness:
        add(
            IssueCode.MOUTH_OPEN,
            "The mouth must be closed with a neutral expression.",
            face.mouth_openness,
            None,
            t.max_mouth_openness,
        )


def _check_image_quality(face: FaceMeasurements, t: Thresholds, add: _AddIssue) -> None:
    if face.sharpness is not None and face.sharpness < t.min_sharpness:
        add(
            IssueCode.BLURRY,
            "The face is out of focus or blurred by movement.",
            face.sharpness,
            t.min_sharpness,
            None,
        )
    dark = (face.exposure_mean is not None and face.exposure_mean < t.min_face_luma) or (
        face.shadow_clipped_fraction is not None and face.shadow_clipped_fraction > t.max_shadow_clipped_fraction
    )
    bright = (face.exposure_mean is not None and face.exposure_mean > t.max_face_luma) or (
        face.highlight_clipped_fraction is not None and face.highlight_clipped_fraction > t.max_highlight_clipped_fraction
    )
    if dark:
        add(
            IssueCode.UNDEREXPOSED,
            "The face is too dark; use more light in front of the face.",
            face.exposure_mean,
            t.min_face_luma,
            t.max_face_luma,
        )
    if bright:
        add(
            IssueCode.OVEREXPOSED,
            "The face is too bright or washed out; reduce the light or avoid flash glare.",
            face.exposure_mean,
            t.min_face_luma,
            t.max_face_luma,
        )
    if face.lighting_ratio is not None and face.lighting_ratio > 0:
        imbalance = max(face.lighting_ratio, 1.0 / face.lighting_ratio)
        if imbalance > t.max_lighting_ratio:
            add(
                IssueCode.UNEVEN_LIGHTING,
                "One side of the face is in shadow; light the face evenly from the front.",
                face.lighting_ratio,
                1.0 / t.max_lighting_ratio,
                t.max_lighting_ratio,
            )


def _check_geometry(face: FaceMeasurements, spec: Spec, t: Thresholds, default_dpi: float, add: _AddIssue) -> None:
    scale = spec.px_per_mm(default_dpi)
    head = face.head_height_mm
    if head is None and face.head_height_px is not None:
        head = face.head_height_px / scale
    eye = face.eye_line_from_bottom_mm
    if eye is None and face.eye_line_from_bottom_px is not None:
        eye = face.eye_line_from_bottom_px / scale
    if head is not None:
        _check_band(
            IssueCode.HEAD_HEIGHT_OUT_OF_RANGE,
            "head height (chin to crown)",
            head,
            spec.head_band_mm(default_dpi),
            t,
            add,
        )
    if eye is not None:
        _check_band(
            IssueCode.EYE_LINE_OUT_OF_RANGE,
            "eye line above the bottom edge",
            eye,
            spec.eye_band_mm(default_dpi),
            t,
            add,
        )


def _check_band(code: IssueCode, what: str, value: float, band: Band, t: Thresholds, add: _AddIssue) -> None:
    tol = t.geometry_tolerance_mm
    if value < band.min - tol:
        stated = band.min_stated
    elif value > band.max + tol:
        stated = band.max_stated
    else:
        return
    source = "" if stated else " (a recommended range; this document states no limit here)"
    add(
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


# ------------------------------------------------------------------ pixel measurements

FloatImage = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FaceBox:
    """Face rectangle in image pixels (top-left corner and size)."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Exposure:
    mean: float
    shadow_clipped_fraction: float
    highlight_clipped_fraction: float


# Luma at or below / at or above these is treated as clipped: JPEG ringing keeps truly
# clipped areas a few levels off 0 and 255.
SHADOW_CLIP_LUMA = 5
HIGHLIGHT_CLIP_LUMA = 250
# Sharpness is measured on the face rescaled to this height, so that the score does not
# depend on how many pixels the face spans. Small enough that nearly every face is reduced
# (area averaging is well behaved, while enlarging would blur or, linearly interpolated,
# add Laplacian spikes at the source grid), large enough that eyelashes and hair resolve.
SHARPNESS_FACE_HEIGHT = 128


def luma(image: npt.NDArray[np.uint8]) -> FloatImage:
    """Rec. 601 luma (the JPEG weighting) of an RGB or grey uint8 image, 0-255."""
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected an H×W×3 RGB or H×W image, got shape {image.shape}")
    rgb = image[..., :3].astype(np.float64)
    return rgb @ np.array([0.299, 0.587, 0.114])


def measure_background_uniformity(
    image: npt.NDArray[np.uint8],
    person_mask: npt.NDArray[np.bool_] | npt.NDArray[np.floating] | npt.NDArray[np.uint8],
    border_fraction: float = 0.05,
) -> float | None:
    """Standard deviation of the background along the image border.

    The border band (``border_fraction`` of the shorter side, at least 2 px) is where the
    background shows in every ID-photo composition; person pixels (mask > 0.5, or > 127
    for uint8 masks) are excluded. Returns the largest per-channel std, so a colour
    gradient counts even when luma is flat; ``None`` when no background pixel is left.
    """
    h, w = image.shape[:2]
    if person_mask.shape[:2] != (h, w):
        raise ValueError(f"mask {person_mask.shape[:2]} does not match image {(h, w)}")
    person = person_mask > (127 if person_mask.dtype == np.uint8 else 0.5)
    band = max(2, round(min(h, w) * border_fraction))
    border = np.zeros((h, w), dtype=bool)
    border[:band, :] = border[-band:, :] = True
    border[:, :band] = border[:, -band:] = True
    pixels = image[border & ~person]
    if pixels.shape[0] == 0:
        return None
    pixels = pixels.reshape(pixels.shape[0], -1).astype(np.float64)
    return float(pixels.std(axis=0).max())


def _inner_face(image: npt.NDArray[np.uint8], box: FaceBox) -> FloatImage:
    """Luma of the inner face: 10-90 % of the box width and 20-85 % of its height, which
    leaves out the hair line, ears, chin edge and any background a loose box includes."""
    y = luma(image)
    h, w = y.shape
    x0 = max(0, math.floor(box.x + 0.10 * box.width))
    x1 = min(w, math.ceil(box.x + 0.90 * box.width))
    y0 = max(0, math.floor(box.y + 0.20 * box.height))
    y1 = min(h, math.ceil(box.y + 0.85 * box.height))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError("face box lies outside the image or is too small to measure")
    return y[y0:y1, x0:x1]


def measure_lighting_balance(image: npt.NDArray[np.uint8], face_box: FaceBox) -> float:
    """Mean luma of the left half of the inner face over that of the right half (image
    left/right). 1.0 is even; >1 the image-left side is brighter."""
    face = _inner_face(image, face_box)
    mid = face.shape[1] // 2
    left, right = face[:, :mid].mean(), face[:, mid:].mean()
    # One luma level keeps a black half from dividing by zero without moving real ratios.
    return float((left + 1.0) / (right + 1.0))


def measure_exposure(image: npt.NDArray[np.uint8], face_box: FaceBox) -> Exposure:
    """Mean luma and clipped fractions of the inner face."""
    face = _inner_face(image, face_box)
    return Exposure(
        mean=float(face.mean()),
        shadow_clipped_fraction=float((face <= SHADOW_CLIP_LUMA).mean()),
        highlight_clipped_fraction=float((face >= HIGHLIGHT_CLIP_LUMA).mean()),
    )


def measure_sharpness(image: npt.NDArray[np.uint8], face_box: FaceBox) -> float:
    """Variance of the 4-neighbour Laplacian of the face box's luma, reduced to
    ``SHARPNESS_FACE_HEIGHT`` px high when taller (smaller faces are measured as they are;
    LOW_RESOLUTION is the rule for those)."""
    h, w = image.shape[:2]
    x0, x1 = max(0, math.floor(face_box.x)), min(w, math.ceil(face_box.x + face_box.width))
    y0, y1 = max(0, math.floor(face_box.y)), min(h, math.ceil(face_box.y + face_box.height))
    if x1 - x0 < 3 or y1 - y0 < 3:
        raise ValueError("face box lies outside the image or is too small to measure")
    # Luma of the face only: a 12 MP source would otherwise be converted whole.
    y = luma(image[y0:y1, x0:x1])
    y0, y1, x0, x1 = 0, y1 - y0, 0, x1 - x0
    crop = y[y0:y1, x0:x1]
    # Only ever reduce: enlarging a small face would blur it and read as a focus problem.
    scale = min(1.0, SHARPNESS_FACE_HEIGHT / crop.shape[0])
    if scale < 1.0:
        size = (max(3, round(crop.shape[1] * scale)), max(3, round(crop.shape[0] * scale)))
        face = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), dtype=np.float64)
    else:
        face = crop
    lap = face[:-2, 1:-1] + face[2:, 1:-1] + face[1:-1, :-2] + face[1:-1, 2:] - 4 * face[1:-1, 1:-1]
    return float(lap.var())
