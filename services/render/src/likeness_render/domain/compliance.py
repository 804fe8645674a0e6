"""Compliance rules for ID photos: measurements in, a report of issues out.

Pure: the measurements come from the faces service (pose, eye and mouth state, and the
face's image quality: sharpness, exposure, clipping, lighting, all defined there, once) and
from the render pipeline (frame geometry, background, file size). Nothing here measures a
face again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

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
    BACKGROUND_LEFTOVER = "BACKGROUND_LEFTOVER"
    OTHER_PERSON = "OTHER_PERSON"


class Remedy(StrEnum):
    RETAKE = "retake"  # the user must take the photo again (the message says how)
    FIXED = "fixed"  # Likeness corrected it in this output; reported so the user knows


class Severity(StrEnum):
    ERROR = "error"  # an authority following the spec would refuse the photo
    WARNING = "warning"  # judged against a fallback bound the spec does not state


@dataclass(frozen=True)
class Thresholds:
    """Every limit the rules use, in one place. Angles in degrees, fractions 0-1,
    image-quality measures on the faces service's 0-1 scales."""

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
    # Sharpness 0..1 as the faces service measures it (Laplacian variance of the face on a
    # 128 px upright crop, squashed as v / (v + 200)). The astronaut test face (about 110 px)
    # reads 0.93 sharp, 0.70 under a Gaussian blur of sigma 1 px, 0.56 under sigma 1.5 px
    # (clearly soft in print) and 0.33 under sigma 2 px: 0.6 refuses the soft ones.
    min_sharpness: float = 0.6
    # Face exposure 0..1 (mean luma of the inner face, faces service). Dark skin well
    # exposed reads about 0.24-0.39, so the dark limit (45/255) is set well below it to
    # judge exposure, not complexion; clipping fractions catch the rest.
    min_exposure: float = 0.176
    max_exposure: float = 0.843
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
    # Old background left in the output (all judged against the new background, colour
    # difference over cutout_delta_e in CIELAB): any blob of more than island_px pixels
    # apart from the person shows as a blotch; over 0.5 % of the 3-15 px ring outside the
    # person differing reads as a halo (clean cut-outs of the test portraits measure 0-0.15 %
    # at every spec); over 0.2 % of the rest of the background is dirt or an object left in.
    cutout_delta_e: float = 10.0
    island_px: int = 15
    max_fringe_fraction: float = 0.005
    max_leftover_fraction: float = 0.002
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
    # Image quality of the face, as the faces service measures it (faces.v1.Quality).
    sharpness: float | None = None  # 0 blurred .. 1 sharp
    exposure: float | None = None  # mean luma of the inner face, 0..1
    shadow_clipped_fraction: float | None = None  # inner-face pixels crushed to black
    highlight_clipped_fraction: float | None = None  # inner-face pixels blown to white
    lighting_ratio: float | None = None  # one face half's luma over the other's; 1 is even
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
    cutout: CutoutMeasurements | None = None  # see measure_cutout; None when the background was kept


@dataclass(frozen=True)
class CutoutMeasurements:
    """How cleanly the person was cut out of the old background (measured on the output)."""

    islands: int  # blobs of more than Thresholds.island_px pixels unlike the new background, apart from the person
    fringe_fraction: float  # of the 3-15 px ring outside the silhouette, unlike the new background
    leftover_fraction: float  # of the background beyond that ring, unlike the new background
    others_removed: int = 0  # other people (or large objects) the cut-out took out of the frame


@dataclass(frozen=True)
class Issue:
    code: IssueCode
    message: str
    measured: float | None
    allowed_min: float | None
    allowed_max: float | None
    severity: Severity = Severity.ERROR
    remedy: Remedy = Remedy.RETAKE


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
        yield from _check_expression(face, t)
        yield from _check_image_quality(face, t)
        yield from _check_geometry(face, spec, t, default_dpi)

    if m.cutout is not None:
        yield from _check_cutout(m.cutout, t)

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


def _check_pose(face: FaceMeasurements, t: Thresholds) -> Iterator[Issue]:
    for code, value, limit, what in (
        (IssueCode.HEAD_TILTED, face.roll_deg, t.max_roll_deg, "tilted sideways"),
        (IssueCode.HEAD_TURNED, face.yaw_deg, t.max_yaw_deg, "turned to one side"),
        (IssueCode.HEAD_PITCHED, face.pitch_deg, t.max_pitch_deg, "tipped up or down"),
    ):
        if value is not None and abs(value) > limit:
            yield Issue(
                code,
                f"The head is {what} by {abs(value):.0f}°; face the camera straight on (at most {limit:g}°).",
                value,
                -limit,
                limit,
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


# ------------------------------------------------------------------ pixel measurements


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


def _lab(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(np.ascontiguousarray(image).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def _grown(mask: npt.NDArray[np.bool_], radius: int) -> npt.NDArray[np.bool_]:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return np.asarray(cv2.dilate(mask.astype(np.uint8), kernel) > 0)


def measure_cutout(
    image: npt.NDArray[np.uint8],
    silhouette: npt.NDArray[np.bool_],
    background: npt.NDArray[np.uint8],
    others_removed: int = 0,
    t: Thresholds = DEFAULT_THRESHOLDS,
) -> CutoutMeasurements:
    """Old background left in a composited output: islands, fringe and leftover (see CutoutMeasurements).

    ``background`` is the new background alone (same size); ``silhouette`` where the person is
    by a segmentation that did not make the matte's edge (the ring is measured from it, as an
    independent observer would). Colour difference is CIE76 in CIELAB.
    """
    if image.shape != background.shape or silhouette.shape != image.shape[:2]:
        raise ValueError(f"image {image.shape}, background {background.shape} and silhouette {silhouette.shape} differ in size")
    differs = np.linalg.norm(_lab(image) - _lab(background), axis=-1) > t.cutout_delta_e
    person = silhouette.astype(bool)
    near, ring_out = _grown(person, 3), _grown(person, 15)
    fringe_band = ring_out & ~near
    beyond = ~near
    # Blobs apart from the person: what differs, less everything that touches the person.
    count, labels = cv2.connectedComponents((differs | person).astype(np.uint8), connectivity=8)
    attached = np.zeros(count, bool)
    attached[np.unique(labels[person])] = True
    apart = differs & ~attached[labels]
    n, _, stats, _ = cv2.connectedComponentsWithStats(apart.astype(np.uint8), connectivity=8)
    islands = int((stats[1:, cv2.CC_STAT_AREA] > t.island_px).sum()) if n > 1 else 0
    return CutoutMeasurements(
        islands=islands,
        fringe_fraction=float(differs[fringe_band].mean()) if fringe_band.any() else 0.0,
        leftover_fraction=float(differs[beyond].mean()) if beyond.any() else 0.0,
        others_removed=others_removed,
    )
