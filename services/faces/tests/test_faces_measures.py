"""Pure measures: head pose, eye and mouth openness, image quality."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from likeness_faces.domain import head_pose, openness, quality
from likeness_faces.domain.faces import Box, Point2, PoseSource
from likeness_imaging import face_mesh as mt


def _rotation(nose_right_deg: float, pitch_deg: float) -> npt.NDArray[np.float64]:
    """OpenCV camera axes; the model's nose points along -z. Turns the nose towards +x
    (image right) by nose_right_deg, then towards -y (image up) by pitch_deg."""
    y, p = math.radians(nose_right_deg), math.radians(pitch_deg)
    turn_right = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    tilt_up = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    return turn_right @ tilt_up


def _project(nose_right_deg: float, pitch_deg: float, in_plane_deg: float = 0.0) -> npt.NDArray[np.float64]:
    rotation = _rotation(nose_right_deg, pitch_deg)
    nose = rotation @ np.array([0, 0, -1.0])
    assert (nose[0] > 0) == (nose_right_deg > 0) or nose_right_deg == 0
    camera_points = head_pose.GENERIC_FIVE_POINTS @ rotation.T + np.array([0, 0, 700.0])
    image = 1000.0 * camera_points[:, :2] / camera_points[:, 2:3] + 500.0
    a = math.radians(in_plane_deg)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (image - 500.0) @ turn.T + 500.0


@pytest.mark.parametrize(
    ("right_eye", "left_eye", "roll"),
    [((0, 0), (10, 0), 0.0), ((0, 0), (10, 10), 45.0), ((0, 10), (0, 0), -90.0), ((0, 0), (0, 10), 90.0), ((10, 0), (0, 0), 180.0)],
)
def test_roll_is_the_eye_line_angle_clockwise_positive(right_eye: tuple[float, float], left_eye: tuple[float, float], roll: float) -> None:
    assert head_pose.roll_from_eyes(right_eye, left_eye) == pytest.approx(roll)


@pytest.mark.parametrize(("nose_right", "pitch"), [(0.0, 0.0), (25.0, 0.0), (-25.0, 0.0), (0.0, 20.0), (0.0, -20.0), (20.0, -15.0)])
@pytest.mark.parametrize("in_plane", [0.0, 90.0, -40.0])
def test_five_point_pose_recovers_a_known_head_turn_at_any_roll(nose_right: float, pitch: float, in_plane: float) -> None:
    pose = head_pose.pose_from_five_points(_project(nose_right, pitch, in_plane), 1000, 1000)
    assert pose.source is PoseSource.FIVE_POINTS
    # positive yaw is a face turned towards the image's left
    assert pose.yaw_deg == pytest.approx(-nose_right, abs=2.0)
    assert pose.pitch_deg == pytest.approx(pitch, abs=2.0)
    # the eye line of a face turned in depth tilts a little in the picture
    assert (pose.roll_deg - in_plane + 180) % 360 - 180 == pytest.approx(0, abs=3.0 + abs(nose_right * pitch) / 20)


def test_coincident_points_give_an_unknown_pose_not_a_made_up_one() -> None:
    pose = head_pose.pose_from_five_points(np.full((5, 2), 100.0), 1000, 1000)
    assert math.isnan(pose.yaw_deg) and math.isnan(pose.pitch_deg)


def _mediapipe_transform(nose_right_deg: float, pitch_deg: float) -> npt.NDArray[np.float64]:
    """MediaPipe axes: x right, y up, z towards the viewer; the face looks along +z."""
    y, p = math.radians(nose_right_deg), math.radians(pitch_deg)
    turn_right = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    tilt_up = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    matrix = np.eye(4)
    matrix[:3, :3] = turn_right @ tilt_up
    return matrix


@pytest.mark.parametrize(("nose_right", "pitch"), [(30.0, 0.0), (-30.0, 0.0), (0.0, 25.0), (15.0, -10.0)])
def test_mesh_pose_reads_the_transform_in_the_faces_own_frame(nose_right: float, pitch: float) -> None:
    matrix = _mediapipe_transform(nose_right, pitch)
    forward = matrix[:3, :3] @ np.array([0, 0, 1.0])
    assert (forward[0] > 0) == (nose_right > 0) or nose_right == 0
    yaw = -nose_right  # positive yaw is a face turned towards the image's left

    upright = head_pose.pose_from_transform(matrix, crop_roll_deg=0.0, roll_deg=0.0)
    assert upright.source is PoseSource.MESH
    assert (upright.yaw_deg, upright.pitch_deg) == pytest.approx((yaw, pitch), abs=0.5)
    # a crop already turned to the face's roll sees the same transform: same angles
    sideways = head_pose.pose_from_transform(matrix, crop_roll_deg=90.0, roll_deg=90.0)
    assert (sideways.yaw_deg, sideways.pitch_deg, sideways.roll_deg) == pytest.approx((yaw, pitch, 90.0), abs=0.5)
    # a crop that was turned 90° short of the face: the transform's yaw is the face's pitch
    short = head_pose.pose_from_transform(_mediapipe_transform(0.0, 20.0), crop_roll_deg=0.0, roll_deg=90.0)
    assert abs(short.yaw_deg) == pytest.approx(20.0, abs=0.5)
    assert short.pitch_deg == pytest.approx(0.0, abs=0.5)


def _eye(mesh: npt.NDArray[np.float64], indices: tuple[int, ...], x0: float, gap: float) -> None:
    # corner, upper, upper, corner, lower, lower on a 30 px wide eye
    xy = [(x0, 50), (x0 + 10, 50 - gap), (x0 + 20, 50 - gap), (x0 + 30, 50), (x0 + 20, 50 + gap), (x0 + 10, 50 + gap)]
    for i, (x, y) in zip(indices, xy, strict=True):
        mesh[i, :2] = (x, y)


def _synthetic_mesh(right_gap: float, left_gap: float, lip_gap: float) -> npt.NDArray[np.float64]:
    mesh = np.zeros((mt.MESH_POINTS, 3))
    _eye(mesh, mt.RIGHT_EYE_EAR, 0.0, right_gap)
    _eye(mesh, mt.LEFT_EYE_EAR, 60.0, left_gap)
    mesh[mt.MOUTH_RIGHT_CORNER, :2] = (10, 120)
    mesh[mt.MOUTH_LEFT_CORNER, :2] = (80, 120)
    mesh[mt.UPPER_INNER_LIP, :2] = (45, 120 - lip_gap / 2)
    mesh[mt.LOWER_INNER_LIP, :2] = (45, 120 + lip_gap / 2)
    return mesh


def test_openness_reads_each_eye_and_the_mouth() -> None:
    state = openness.openness(_synthetic_mesh(right_gap=0.5, left_gap=5.0, lip_gap=0.0))
    assert state.right_eye == 0.0
    assert state.left_eye == 1.0
    assert state.mouth == 0.0
    wide = openness.openness(_synthetic_mesh(right_gap=2.5, left_gap=2.5, lip_gap=40.0))
    assert 0.2 < wide.right_eye < 0.8 and wide.left_eye == wide.right_eye
    assert wide.mouth == 1.0


def test_openness_does_not_depend_on_size_or_roll() -> None:
    mesh = _synthetic_mesh(right_gap=2.5, left_gap=4.0, lip_gap=12.0)
    a = math.radians(70)
    turn = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    moved = mesh.copy()
    moved[:, :2] = 3.0 * mesh[:, :2] @ turn.T + 400
    before, after = openness.openness(mesh), openness.openness(moved)
    assert (after.left_eye, after.right_eye, after.mouth) == pytest.approx((before.left_eye, before.right_eye, before.mouth))


def _textured(seed: int = 0) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 216, size=(400, 400, 3), dtype=np.uint8)


def test_quality_measures_sharpness_exposure_and_size() -> None:
    box = Box(100, 100, 300, 300)
    eyes = (Point2(150, 180), Point2(250, 180))
    sharp = quality.measure(_textured(), box, 0.0, *eyes)
    blurred = quality.measure(cv2.GaussianBlur(_textured(), (0, 0), 4), box, 0.0, *eyes)
    flat = quality.measure(np.full((400, 400, 3), 128, np.uint8), box, 0.0, *eyes)
    blown = quality.measure(np.full((400, 400, 3), 255, np.uint8), box, 0.0, *eyes)

    assert sharp.sharpness > 0.9 and blurred.sharpness < 0.5 and flat.sharpness == 0.0
    assert flat.exposure == pytest.approx(128 / 255, abs=1e-3) and flat.clipped_fraction == 0.0
    assert blown.exposure == pytest.approx(1.0) and blown.clipped_fraction == 1.0
    assert sharp.face_size_px == 200 and sharp.inter_eye_px == pytest.approx(100)


def test_exposure_looks_only_at_the_face() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    image[100:300, 100:300] = 200  # a bright face on a black background
    measured = quality.measure(image, Box(110, 110, 290, 290), 0.0, Point2(150, 180), Point2(250, 180))
    assert measured.exposure == pytest.approx(200 / 255, abs=0.01)
    assert measured.clipped_fraction < 0.01
