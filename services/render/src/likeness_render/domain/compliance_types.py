"""The vocabulary of the ID-photo compliance rules: issue codes, thresholds, measurements, reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
    SHOULDERS_CUT = "SHOULDERS_CUT"
    GAZE_AWAY = "GAZE_AWAY"
    OBJECT_NEAR_FACE = "OBJECT_NEAR_FACE"
    HEADWEAR = "HEADWEAR"


class Remedy(StrEnum):
    RETAKE = "retake"  # the user must take the photo again (the message says how)
    FIXED = "fixed"  # Likeness corrected it in this output; reported so the user knows


class Severity(StrEnum):
    ERROR = "error"  # an authority following the spec would refuse the photo
    WARNING = "warning"  # judged against a fallback bound the spec does not state, or allowed in some cases (a religious head covering)


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
    # Eye openness 0 (shut) to 1 (wide open): the faces service's, from the mesh's lid gap. A relaxed
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
    # Gaze: the irises' place between the eye corners, as a fraction of the eye's width
    # (0 = centred; see compliance_scene.measure_gaze). An eyeball's radius is about 0.4 of
    # the eye's width, so 0.09 is a look about 13° away from the camera. Faces looking into
    # the camera (the test portraits) measure within ±0.03; an iris moved a quarter of the
    # eye's width sideways measures 0.14-0.26. Up/down is noisier (the lids follow the eye):
    # only a clear look up or down, beyond 0.10 of the eye's width from the usual resting
    # height (0.055 above the corner line), is refused.
    max_gaze_sideways: float = 0.09
    max_gaze_vertical: float = 0.10
    gaze_rest_height: float = -0.055
    # The torso ending in a straight line inside the frame (the source photo's edge): a
    # straight stretch of the person's outline below the chin with background beyond it,
    # as a fraction of the frame's width (bottom) or height (sides). Whole torsos reach the
    # frame's bottom (0 here) and arms' sides measure under 0.11 on the test portraits.
    max_torso_cut_bottom: float = 0.12
    max_torso_cut_side: float = 0.2
    # Something beside the face, within the person's outline, as a fraction of the face
    # oval's area: the largest skin-coloured blob (ears and jaw edges of the test portraits
    # measure under 0.045, a hand raised to the cheek 0.17-0.19) and the largest blob down
    # to the jaw that is neither skin nor hair (under 0.005 on the test portraits; a phone
    # held to the ear about 0.18).
    max_hand_near_face: float = 0.1
    max_object_near_face: float = 0.06
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
    # Where the eyes look (see compliance_scene.measure_gaze): > 0 towards the image's right
    # / down, as a fraction of the eye's width.
    gaze_sideways: float | None = None
    gaze_vertical: float | None = None


@dataclass(frozen=True)
class SceneMeasurements:
    """What the photo shows around the face (compliance_scene measures it on the output)."""

    torso_cut_bottom: float = 0.0  # longest straight bottom edge of the person, fraction of the frame's width
    torso_cut_side: float = 0.0  # longest straight side edge below the chin, fraction of the frame's height
    hand_near_face: float = 0.0  # largest skin blob beside the face, fraction of the face oval
    object_near_face: float = 0.0  # largest blob of neither skin, hair nor clothing there, same scale
    headwear: bool = False  # a hat's brim across the forehead, with the person above it (hair.wears_hat)


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
    scene: SceneMeasurements | None = None  # see compliance_scene.measure_scene; None when not measured


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
