"""Result and option types of a face analysis.

Conventions shared by every field:
- Coordinates are in pixels of the image the caller passed, x to the right and y down,
  continuous (the top-left corner of the image is (0, 0), its bottom-right corner is
  (width, height)).
- "Left" and "right" are the subject's own sides: in an upright, non-mirrored photo the
  subject's right eye is on the image's left.
- Angles are in degrees.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Point2:
    x: float
    y: float


@dataclass(frozen=True)
class Point3:
    """A mesh point; z is depth in the same pixel scale as x, smaller is nearer the camera."""

    x: float
    y: float
    z: float


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> Point2:
        return Point2((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def contains(self, point: Point2, slack: float = 0.0) -> bool:
        return self.x1 - slack <= point.x <= self.x2 + slack and self.y1 - slack <= point.y <= self.y2 + slack


@dataclass(frozen=True)
class FivePoints:
    """MTCNN's five landmarks, named by the subject's own sides."""

    right_eye: Point2
    left_eye: Point2
    nose: Point2
    mouth_right: Point2
    mouth_left: Point2

    def as_tuple(self) -> tuple[Point2, Point2, Point2, Point2, Point2]:
        return (self.right_eye, self.left_eye, self.nose, self.mouth_right, self.mouth_left)


class PoseSource(enum.Enum):
    MESH = "mesh"  # 478-point mesh and MediaPipe's facial transformation matrix
    FIVE_POINTS = "five_points"  # MTCNN's five points fitted to a generic head


@dataclass(frozen=True)
class HeadPose:
    """Head orientation relative to the camera.

    yaw_deg > 0: the face is turned towards the image's left (its nose points there).
    pitch_deg > 0: chin up (the nose points up).
    roll_deg: angle of the line from the subject's right eye to their left eye, measured
    from the image's x axis with y down, so > 0 means the face is turned clockwise in the
    picture; an upright face is near 0, a portrait turned a quarter counter-clockwise
    (np.rot90) near -90, a quarter clockwise near +90, upside down near ±180.
    Yaw and pitch are measured in the face's own frame, so they keep their meaning
    whatever the roll, and against the line of sight to the face. They are NaN in the rare
    case that five points coincide and do not determine a pose.
    """

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    source: PoseSource


@dataclass(frozen=True)
class Openness:
    """0 = closed, 1 = fully open; from the mesh's lid and lip distances."""

    left_eye: float
    right_eye: float
    mouth: float


@dataclass(frozen=True)
class FaceQuality:
    """Image quality of the face region (see domain.quality for how each is measured).

    sharpness: 0..1, variance of the Laplacian of the face resampled to a fixed size,
        squashed as v / (v + k); a focused portrait reads above 0.8, a visibly blurred
        one below 0.4.
    exposure: 0..1, mean luma (BT.601) of the inner face.
    shadow_clipped_fraction, highlight_clipped_fraction: 0..1, share of inner-face pixels
        with luma at the dark / bright end of the range (crushed shadows, blown highlights).
    lighting_ratio: mean luma of the inner face's image-left half over its image-right
        half, in the face's upright frame; 1 is even, > 1 the subject's right side is
        brighter.
    face_size_px: face height: the side of the face box along the face's own vertical
        (the box height for an upright face, its width for one lying sideways), pixels.
    inter_eye_px: distance between the eye centres, in image pixels.
    """

    sharpness: float
    exposure: float
    shadow_clipped_fraction: float
    highlight_clipped_fraction: float
    lighting_ratio: float
    face_size_px: float
    inter_eye_px: float

    @property
    def clipped_fraction(self) -> float:
        """Share of inner-face pixels clipped at either end."""
        return self.shadow_clipped_fraction + self.highlight_clipped_fraction


@dataclass(frozen=True)
class Face:
    """One face. mesh, blendshapes and openness are None when not asked for (see
    AnalyzeOptions) or when the mesh model could not fit this face (e.g. too small)."""

    box: Box
    score: float  # detector confidence, 0..1
    five_points: FivePoints
    pose: HeadPose
    quality: FaceQuality
    openness: Openness | None
    mesh: tuple[Point3, ...] | None  # 478 MediaPipe face-mesh points incl. 10 iris points
    blendshapes: Mapping[str, float] | None  # 52 ARKit-style names (e.g. "jawOpen") -> 0..1


@dataclass(frozen=True)
class AnalyzeOptions:
    """What to compute. The mesh model runs when any of dense_landmarks, blendshapes or
    eye_mouth_state is set; it also makes the pose more accurate (PoseSource.MESH).
    With all three off only the detector runs (fastest) and the pose comes from five points.
    """

    dense_landmarks: bool = False
    blendshapes: bool = False
    eye_mouth_state: bool = True
    max_faces: int = 0  # keep only the N largest faces; 0 keeps all
    try_rotations: bool = True  # unless a confident face is found upright, also look at 90/270/180° turns
    min_face_fraction: float = 0.0  # smallest face as a fraction of the long side; 0 = the analyzer's default

    @property
    def needs_mesh(self) -> bool:
        return self.dense_landmarks or self.blendshapes or self.eye_mouth_state
