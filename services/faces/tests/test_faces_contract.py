"""The faces.v1 contract as the servicer fills it: explicit presence (a measure faces did not
compute is unset, a measured 0 is set) and stream errors with stable codes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from likeness.faces.v1 import faces_pb2
from likeness_faces.domain.errors import InvalidImageError
from likeness_faces.domain.faces import Box, Face, FaceQuality, FivePoints, HeadPose, Openness, Point2, PoseSource
from likeness_faces.grpc_api import face_pb, stream_error
from likeness_platform import errors

QUALITY = FaceQuality(
    sharpness=0.9,
    exposure=0.5,
    shadow_clipped_fraction=0.0,
    highlight_clipped_fraction=0.25,
    lighting_ratio=1.1,
    face_size_px=120.0,
    inter_eye_px=50.0,
)
FIVE = FivePoints(Point2(40, 50), Point2(90, 50), Point2(65, 75), Point2(45, 100), Point2(85, 100))


def _face(pose: HeadPose, openness: Openness | None, quality: FaceQuality = QUALITY) -> Face:
    return Face(Box(10, 10, 120, 140), 0.99, FIVE, pose, quality, openness, None, None)


def test_measured_values_are_present_even_when_zero() -> None:
    out = face_pb(_face(HeadPose(0.0, 0.0, 0.0, PoseSource.MESH), Openness(left_eye=0.0, right_eye=1.0, mouth=0.0)))
    assert all(out.pose.HasField(n) for n in ("yaw", "pitch", "roll")) and out.pose.yaw == 0.0
    assert out.HasField("left_eye_openness") and out.left_eye_openness == 0.0
    assert out.HasField("mouth_openness") and out.mouth_openness == 0.0 and out.right_eye_openness == 1.0
    q = out.quality
    assert q.HasField("shadow_clipped_fraction") and q.shadow_clipped_fraction == 0.0
    assert q.highlight_clipped_fraction == 0.25 and q.clipped_fraction == 0.25
    assert (q.sharpness, q.exposure, q.face_size_px, q.inter_eye_px) == pytest.approx((0.9, 0.5, 120.0, 50.0))
    assert q.lighting_ratio == pytest.approx(1.1)


def test_what_faces_did_not_compute_is_unset() -> None:
    # No mesh (so no eye/mouth state) and five points that do not determine yaw and pitch.
    out = face_pb(_face(HeadPose(math.nan, math.nan, 3.0, PoseSource.FIVE_POINTS), None))
    assert not out.HasField("left_eye_openness") and not out.HasField("right_eye_openness") and not out.HasField("mouth_openness")
    assert not out.pose.HasField("yaw") and not out.pose.HasField("pitch")
    assert out.pose.HasField("roll") and out.pose.roll == pytest.approx(3.0)
    assert len(out.mesh) == 0 and len(out.blendshapes) == 0
    # A measure that came out undefined is left unset too, never sent as 0.
    broken = face_pb(_face(HeadPose(1.0, 2.0, 3.0, PoseSource.MESH), None, replace(QUALITY, lighting_ratio=math.nan)))
    assert not broken.quality.HasField("lighting_ratio") and broken.quality.HasField("exposure")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("not an image", "CORRUPT_IMAGE"), faces_pb2.ANALYZE_ERROR_CODE_CORRUPT_IMAGE),
        (errors.InvalidArgument("empty", "EMPTY"), faces_pb2.ANALYZE_ERROR_CODE_EMPTY),
        (errors.InvalidArgument("no image", "MISSING_IMAGE"), faces_pb2.ANALYZE_ERROR_CODE_MISSING_IMAGE),
        (errors.NotFound("no such upload", "UPLOAD_NOT_FOUND"), faces_pb2.ANALYZE_ERROR_CODE_UPLOAD_NOT_FOUND),
        (errors.Unavailable("ingestion is down"), faces_pb2.ANALYZE_ERROR_CODE_UNAVAILABLE),
        (InvalidImageError("image is empty"), faces_pb2.ANALYZE_ERROR_CODE_INVALID_IMAGE),
    ],
)
def test_stream_errors_carry_a_stable_code(error: Exception, code: int) -> None:
    answer = stream_error("k", error)  # type: ignore[arg-type]
    assert answer.id == "k" and answer.WhichOneof("outcome") == "error"
    assert answer.error.code == code and answer.error.message
