"""FaceAnalyzer on real photos with the real models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data

from likeness_faces.adapters.models import FaceModels
from likeness_faces.domain.errors import AnalyzerClosedError, InvalidImageError
from likeness_faces.domain.faces import AnalyzeOptions, Face, PoseSource
from likeness_faces.service import FaceAnalyzer

RGB = npt.NDArray[np.uint8]
EVERYTHING = AnalyzeOptions(dense_landmarks=True, blendshapes=True, eye_mouth_state=True)
DETECT_ONLY = AnalyzeOptions(dense_landmarks=False, blendshapes=False, eye_mouth_state=False)


def _five(face: Face) -> npt.NDArray[np.float64]:
    return np.array([[p.x, p.y] for p in face.five_points.as_tuple()])


def _mesh(face: Face) -> npt.NDArray[np.float64]:
    assert face.mesh is not None
    return np.array([[p.x, p.y, p.z] for p in face.mesh])


def _grey_canvas(height: int, width: int) -> RGB:
    return np.full((height, width, 3), 128, dtype=np.uint8)


@pytest.mark.asyncio
@pytest.mark.parametrize("photo", ["astronaut", "grace_hopper"])
async def test_a_portrait_has_one_frontal_face_with_everything_inside_its_box(
    analyzer: FaceAnalyzer, photo: str, request: pytest.FixtureRequest
) -> None:
    image: RGB = request.getfixturevalue(photo)
    faces = await analyzer.analyze(image, EVERYTHING)

    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.99
    for point in face.five_points.as_tuple():
        assert face.box.contains(point)
    mesh = _mesh(face)
    assert mesh.shape == (478, 3)
    # the mesh reaches a little past the detector's box at the chin and the temples
    inside = [face.box.contains(p, slack=0.1 * face.box.width) for p in face.mesh or ()]
    assert all(inside)
    assert face.pose.source is PoseSource.MESH
    assert abs(face.pose.yaw_deg) < 15
    assert abs(face.pose.roll_deg) < 15
    assert face.blendshapes is not None and len(face.blendshapes) == 52
    assert face.openness is not None
    assert face.openness.left_eye > 0.7 and face.openness.right_eye > 0.7
    # the subject's right eye is on the image's left in an upright, non-mirrored photo
    assert face.five_points.right_eye.x < face.five_points.left_eye.x
    assert face.quality.sharpness > 0.8
    assert 0.2 < face.quality.exposure < 0.8
    assert face.quality.inter_eye_px == pytest.approx(float(np.linalg.norm(_five(face)[1] - _five(face)[0])), rel=0.15)


@pytest.mark.asyncio
async def test_grace_hopper_keeps_her_mouth_shut_and_the_astronaut_smiles(
    analyzer: FaceAnalyzer, astronaut: RGB, grace_hopper: RGB
) -> None:
    (grace,) = await analyzer.analyze(grace_hopper)
    (eileen,) = await analyzer.analyze(astronaut)
    assert grace.openness is not None and eileen.openness is not None
    assert grace.openness.mouth < 0.1
    assert eileen.openness.mouth > grace.openness.mouth + 0.15


@pytest.mark.asyncio
async def test_an_eye_painted_shut_reads_closed_on_the_right_side(analyzer: FaceAnalyzer, astronaut: RGB) -> None:
    (face,) = await analyzer.analyze(astronaut, EVERYTHING)
    mesh = _mesh(face)
    shut = astronaut.copy()
    # cover the subject's right eye (image left) with skin and draw a lash line
    eye = mesh[[33, 133, 159, 145, 160, 144], :2]
    x0, y0 = (eye.min(axis=0) - [4, 5]).astype(int)
    x1, y1 = (eye.max(axis=0) + 4).astype(int)
    shut[y0:y1, x0:x1] = astronaut[120:125, 200:205].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    cv2.line(shut, (int(x0) + 2, (int(y0) + int(y1)) // 2 + 2), (int(x1) - 2, (int(y0) + int(y1)) // 2 + 2), (60, 40, 40), 1)

    (painted,) = await analyzer.analyze(shut, EVERYTHING)
    assert painted.openness is not None and face.openness is not None
    assert painted.openness.right_eye < face.openness.right_eye - 0.3
    assert painted.openness.left_eye > 0.7


@pytest.mark.asyncio
@pytest.mark.parametrize("photo", [skimage.data.coffee, skimage.data.chelsea], ids=["coffee", "chelsea"])
async def test_photos_without_people_give_an_empty_list(analyzer: FaceAnalyzer, photo: object) -> None:
    assert callable(photo)
    assert await analyzer.analyze(np.ascontiguousarray(photo()), EVERYTHING) == []


@pytest.mark.asyncio
async def test_two_portraits_side_by_side_give_two_faces_largest_first(analyzer: FaceAnalyzer, astronaut: RGB, grace_hopper: RGB) -> None:
    small = cv2.resize(astronaut, (307, 307), interpolation=cv2.INTER_AREA)
    pair = _grey_canvas(600, 512 + 307)
    pair[100:407, :307] = small
    pair[:, 307:] = grace_hopper

    faces = await analyzer.analyze(pair, EVERYTHING)

    assert len(faces) == 2
    big, little = faces
    assert big.box.area > little.box.area
    assert big.box.x1 >= 307  # Grace, on the right
    assert little.box.x2 <= 307
    assert all(f.mesh is not None for f in faces)


@pytest.mark.asyncio
async def test_several_small_faces_in_a_group_photo_are_all_found(analyzer: FaceAnalyzer, astronaut: RGB, grace_hopper: RGB) -> None:
    group = _grey_canvas(1500, 2400)
    tile_a = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)  # face ≈ 70 px
    tile_g = cv2.resize(grace_hopper, (256, 300), interpolation=cv2.INTER_AREA)  # face ≈ 110 px
    for i, x in enumerate((100, 700, 1300, 1900)):
        tile = tile_a if i % 2 == 0 else tile_g
        y = 200 if i % 2 == 0 else 900
        group[y : y + tile.shape[0], x : x + tile.shape[1]] = tile

    faces = await analyzer.analyze(group, EVERYTHING)

    assert len(faces) == 4
    assert [f.box.area for f in faces] == sorted((f.box.area for f in faces), reverse=True)
    assert all(f.mesh is not None for f in faces)
    # Grace's tiles hold the bigger faces, so they come first
    assert all(f.box.y1 > 800 for f in faces[:2])


@pytest.mark.asyncio
@pytest.mark.parametrize(("quarter_turns", "expected_roll"), [(1, -90.0), (3, 90.0), (2, 180.0)])
async def test_a_portrait_stored_sideways_is_found_and_its_roll_reported(
    analyzer: FaceAnalyzer, astronaut: RGB, quarter_turns: int, expected_roll: float
) -> None:
    (upright,) = await analyzer.analyze(astronaut, EVERYTHING)
    turned = np.ascontiguousarray(np.rot90(astronaut, quarter_turns))

    faces = await analyzer.analyze(turned, EVERYTHING)

    assert len(faces) == 1
    face = faces[0]
    difference = (face.pose.roll_deg - upright.pose.roll_deg - expected_roll + 180) % 360 - 180
    assert abs(difference) < 10
    # the points are in the turned image's pixels: turning the upright points gives them
    h, w = astronaut.shape[:2]
    p = _five(upright)
    expected = {
        1: np.stack([p[:, 1], w - p[:, 0]], axis=1),
        2: np.stack([w - p[:, 0], h - p[:, 1]], axis=1),
        3: np.stack([h - p[:, 1], p[:, 0]], axis=1),
    }[quarter_turns]
    assert np.abs(_five(face) - expected).max() < 4
    assert abs(face.pose.yaw_deg - upright.pose.yaw_deg) < 5
    # face size is measured along the face, so it does not become the box width
    assert face.quality.face_size_px == pytest.approx(upright.quality.face_size_px, rel=0.05)


@pytest.mark.asyncio
async def test_a_12_megapixel_photo_gives_the_same_landmarks_as_the_original(analyzer: FaceAnalyzer, astronaut: RGB) -> None:
    factor, left, top = 5, 700, 300
    big = _grey_canvas(3000, 4000)
    big[top : top + 512 * factor, left : left + 512 * factor] = cv2.resize(
        astronaut, (512 * factor, 512 * factor), interpolation=cv2.INTER_CUBIC
    )

    (small_face,) = await analyzer.analyze(astronaut, EVERYTHING)
    faces = await analyzer.analyze(big, EVERYTHING)

    assert len(faces) == 1
    offset = np.array([left, top], dtype=np.float64)
    five_back = (_five(faces[0]) - offset) / factor
    assert np.abs(five_back - _five(small_face)).max() < 3
    # the mesh is fitted on a crop of the full-resolution photo, so it is tighter than that
    mesh_back = (_mesh(faces[0])[:, :2] - offset) / factor
    error = np.linalg.norm(mesh_back - _mesh(small_face)[:, :2], axis=1)
    assert error.mean() < 1.0 and error.max() < 2.5
    depth_error = np.abs(_mesh(faces[0])[:, 2] / factor - _mesh(small_face)[:, 2])
    assert depth_error.mean() < 1.5
    assert faces[0].quality.face_size_px == pytest.approx(small_face.quality.face_size_px * factor, rel=0.1)


@pytest.mark.asyncio
async def test_concurrent_calls_share_detector_passes(
    analyzer: FaceAnalyzer, models: FaceModels, astronaut: RGB, grace_hopper: RGB
) -> None:
    images = [astronaut, astronaut[:, ::-1], grace_hopper, grace_hopper[:, ::-1]] * 2
    passes_before = models.detector.forward_passes

    results = await asyncio.gather(*(analyzer.analyze(np.ascontiguousarray(i), DETECT_ONLY) for i in images))

    assert [len(r) for r in results] == [1] * len(images)
    passes = models.detector.forward_passes - passes_before
    assert passes == analyzer.batcher.batches_run
    assert passes < len(images)
    assert analyzer.batcher.largest_batch > 1


@pytest.mark.asyncio
async def test_analyze_many_answers_every_key_and_batches(analyzer: FaceAnalyzer, astronaut: RGB, grace_hopper: RGB) -> None:
    coffee = np.ascontiguousarray(skimage.data.coffee())
    images = [astronaut, coffee, grace_hopper, astronaut, grace_hopper, coffee]

    async def stream() -> AsyncIterator[tuple[str, RGB, AnalyzeOptions | None]]:
        for i, image in enumerate(images):
            yield f"img-{i}", image, DETECT_ONLY
        yield "broken", np.zeros((8, 8), dtype=np.uint8), None

    answers = {key: result async for key, result in analyzer.analyze_many(stream())}

    assert {k: len(v) for k, v in answers.items() if isinstance(v, list)} == {
        "img-0": 1,
        "img-1": 0,
        "img-2": 1,
        "img-3": 1,
        "img-4": 1,
        "img-5": 0,
    }
    assert isinstance(answers["broken"], InvalidImageError)
    assert analyzer.batcher.largest_batch > 1


@pytest.mark.asyncio
async def test_detection_only_skips_the_mesh_and_poses_from_five_points(analyzer: FaceAnalyzer, astronaut: RGB) -> None:
    (face,) = await analyzer.analyze(astronaut, DETECT_ONLY)
    assert face.mesh is None and face.blendshapes is None and face.openness is None
    assert face.pose.source is PoseSource.FIVE_POINTS
    assert abs(face.pose.yaw_deg) < 15
    (mirrored,) = await analyzer.analyze(np.ascontiguousarray(astronaut[:, ::-1]), DETECT_ONLY)
    assert abs(mirrored.pose.roll_deg + face.pose.roll_deg) < 3


@pytest.mark.asyncio
@pytest.mark.parametrize("options", [EVERYTHING, DETECT_ONLY], ids=["mesh", "five-points"])
async def test_a_face_turned_towards_the_image_right_has_negative_yaw(analyzer: FaceAnalyzer, options: AnalyzeOptions) -> None:
    # skimage's cameraman looks through his camera, towards the image's right
    cameraman = np.ascontiguousarray(np.repeat(skimage.data.camera()[:, :, None], 3, axis=2))
    (face,) = await analyzer.analyze(cameraman, options)
    (mirrored,) = await analyzer.analyze(np.ascontiguousarray(cameraman[:, ::-1]), options)
    assert face.pose.yaw_deg < -25
    assert mirrored.pose.yaw_deg > 25


@pytest.mark.asyncio
async def test_a_blurred_face_reads_less_sharp(analyzer: FaceAnalyzer, astronaut: RGB) -> None:
    (sharp,) = await analyzer.analyze(astronaut, DETECT_ONLY)
    (blurred,) = await analyzer.analyze(cv2.GaussianBlur(astronaut, (0, 0), 3), DETECT_ONLY)
    assert blurred.quality.sharpness < 0.4 < 0.8 < sharp.quality.sharpness


@pytest.mark.asyncio
async def test_max_faces_keeps_the_largest(analyzer: FaceAnalyzer, astronaut: RGB, grace_hopper: RGB) -> None:
    pair = _grey_canvas(600, 512 + 512)
    pair[:512, :512] = astronaut
    pair[:, 512:] = grace_hopper
    faces = await analyzer.analyze(pair, AnalyzeOptions(max_faces=1, eye_mouth_state=False))
    assert len(faces) == 1
    assert faces[0].box.x1 > 512


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64), dtype=np.uint8),
        np.zeros((64, 64, 4), dtype=np.uint8),
        np.zeros((64, 64, 3), dtype=np.float32),
        np.zeros((0, 64, 3), dtype=np.uint8),
    ],
    ids=["grey", "rgba", "float", "empty"],
)
async def test_anything_but_rgb_uint8_is_refused(analyzer: FaceAnalyzer, bad: npt.NDArray[np.generic]) -> None:
    with pytest.raises(InvalidImageError):
        await analyzer.analyze(bad)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_closed_analyzer_refuses_work(models: FaceModels, astronaut: RGB) -> None:
    face_analyzer = FaceAnalyzer(models.detector, models.landmarker)
    assert len(await face_analyzer.analyze(astronaut, DETECT_ONLY)) == 1
    await face_analyzer.close()
    with pytest.raises(AnalyzerClosedError):
        await face_analyzer.analyze(astronaut)
