"""Head pose (yaw, pitch, roll) from the mesh model's transform or from five points.

Roll always comes from the eye line in the caller's image, so it is right whatever frame
a model looked at. Yaw and pitch come from the direction the face points, turned by the
roll into the face's own upright frame, so a sideways portrait does not swap them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from likeness_faces.domain.faces import HeadPose, PoseSource
from likeness_faces.domain.model_outputs import FloatArray

# A generic head, OpenCV camera axes (x to the image's right for an upright face, y down,
# z away from the camera), origin at the nose tip, in MTCNN's point order, units of about a
# millimetre: eye centres 64 apart, mouth corners 50 apart. Eyes and mouth sit deeper
# behind the nose tip than on a real face on purpose: MTCNN's mouth corners rise with a
# smile, and a deeper model turns that into a smaller pitch error (a broad smile reads
# about 18° nose-down instead of 45°).
GENERIC_FIVE_POINTS = np.array(
    [
        [-32.0, -32.0, 45.0],  # right eye
        [32.0, -32.0, 45.0],  # left eye
        [0.0, 0.0, 0.0],  # nose tip
        [-25.0, 34.0, 45.0],  # right mouth corner
        [25.0, 34.0, 45.0],  # left mouth corner
    ]
)


def roll_from_eyes(right_eye: tuple[float, float], left_eye: tuple[float, float]) -> float:
    """Angle of the right-eye → left-eye line from the image x axis, degrees in (-180, 180]."""
    return math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))


def _face_frame_angles(dx: float, dy: float, toward_camera: float, turn_deg: float) -> tuple[float, float]:
    """Yaw and pitch of a facing direction given in image axes (x right, y down), after
    turning it by -turn_deg about the camera axis into the face's upright frame."""
    a = math.radians(-turn_deg)
    fx = math.cos(a) * dx - math.sin(a) * dy
    fy = math.sin(a) * dx + math.cos(a) * dy
    yaw = math.degrees(math.atan2(-fx, toward_camera))  # > 0: nose towards the image's left
    pitch = math.degrees(math.atan2(-fy, math.hypot(fx, toward_camera)))
    return yaw, pitch


def pose_from_transform(matrix: FloatArray, crop_roll_deg: float, roll_deg: float) -> HeadPose:
    """From MediaPipe's facial transformation matrix, estimated on a crop turned by
    crop_roll_deg. MediaPipe's axes: x right, y up, z towards the viewer; the canonical
    face looks along +z."""
    forward = np.asarray(matrix, dtype=np.float64)[:3, :3] @ np.array([0.0, 0.0, 1.0])
    # crop axes -> image axes is a turn by +crop_roll, image -> face frame by -roll
    yaw, pitch = _face_frame_angles(float(forward[0]), float(-forward[1]), float(forward[2]), roll_deg - crop_roll_deg)
    return HeadPose(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll_deg, source=PoseSource.MESH)


def pose_from_five_points(points: FloatArray, image_width: int, image_height: int) -> HeadPose:
    """Fits GENERIC_FIVE_POINTS to the five image points with a pinhole camera whose focal
    length is the image's long side (a phone's main camera is near that) and whose axis
    passes through the face, so that, as with the mesh model's crop, yaw and pitch are
    measured against the line of sight to the face, not the photo's centre."""
    roll = roll_from_eyes((points[0, 0], points[0, 1]), (points[1, 0], points[1, 1]))
    focal = float(max(image_width, image_height))
    centre = np.asarray(points, dtype=np.float64).mean(axis=0)
    camera = np.array([[focal, 0, centre[0]], [0, focal, centre[1]], [0, 0, 1]], dtype=np.float64)
    try:
        ok, rvec, _tvec = cv2.solvePnP(
            GENERIC_FIVE_POINTS,
            np.ascontiguousarray(points, dtype=np.float64),
            camera,
            None,
            flags=cv2.SOLVEPNP_SQPNP,
        )
    except cv2.error:
        ok = False
    if not ok:  # coincident points: the roll may still be right, yaw and pitch are unknown
        return HeadPose(yaw_deg=math.nan, pitch_deg=math.nan, roll_deg=roll, source=PoseSource.FIVE_POINTS)
    rotation, _ = cv2.Rodrigues(rvec)
    forward = rotation @ np.array([0.0, 0.0, -1.0])  # the model's nose points at the camera
    yaw, pitch = _face_frame_angles(float(forward[0]), float(forward[1]), float(-forward[2]), roll)
    return HeadPose(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, source=PoseSource.FIVE_POINTS)
