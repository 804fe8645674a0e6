"""The batched PyTorch mesh (what the faces service runs on CUDA; here on CPU) against
MediaPipe's FaceLandmarker on the same face crops, and the analyzer's batched mesh path."""

from __future__ import annotations

import asyncio
import math
import zipfile
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch

from likeness_faces.adapters import tflite_torch
from likeness_faces.adapters.mesh_bundle import BLENDSHAPE_NAMES, CROP_MARGIN
from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import FaceModels
from likeness_faces.adapters.torch_mesh import TorchMeshLandmarker
from likeness_faces.domain import face_crop, face_geometry, head_pose, openness
from likeness_faces.domain.faces import AnalyzeOptions, PoseSource
from likeness_faces.service import FaceAnalyzer

from .mediapipe_landmarker import MeshLandmarker

RGB = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def torch_mesh() -> Iterator[TorchMeshLandmarker]:
    landmarker = TorchMeshLandmarker(default_model_dir() / "face_landmarker.task", torch.device("cpu"))
    yield landmarker
    landmarker.close()


def _crop(models: FaceModels, image: RGB, size: int = 256, margin: float = CROP_MARGIN) -> RGB:
    """The face's upright crop as the analyzer cuts it for a model with this margin."""
    found = models.detector.detect([image], 20)[0]
    assert found, "no face to crop"
    face = found[0]
    (x1, y1, x2, y2), eyes = face.box, face.points
    roll = math.degrees(math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    plan = face_crop.plan((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1), roll, margin=margin, size=size)
    return face_crop.extract(image, plan)


@pytest.fixture(scope="module")
def crops(models: FaceModels, astronaut: RGB, grace_hopper: RGB) -> list[RGB]:
    small = cv2.resize(grace_hopper, (256, 300), interpolation=cv2.INTER_AREA)
    return [_crop(models, image) for image in (astronaut, grace_hopper, np.ascontiguousarray(astronaut[:, ::-1]), small)]


def test_the_mesh_is_mediapipes_to_about_a_pixel(mediapipe_mesh: MeshLandmarker, torch_mesh: TorchMeshLandmarker, crops: list[RGB]) -> None:
    for crop in crops:
        theirs, ours = mediapipe_mesh.fit(crop), torch_mesh.fit(crop)
        assert theirs is not None and ours is not None
        assert ours.points.shape == (478, 3)
        apart = np.linalg.norm(ours.points[:, :2] - theirs.points[:, :2], axis=1)
        # measured 0.4-1.2 px mean on these four (MediaPipe frames the face again itself)
        assert apart.mean() < 1.6 and np.percentile(apart, 95) < 4.0, (apart.mean(), np.percentile(apart, 95))
        # depth in the same units as x (crop pixels)
        assert np.std(ours.points[:, 2]) == pytest.approx(np.std(theirs.points[:, 2]), rel=0.1)
        # what the analyzer derives from the mesh agrees too
        a, b = openness.openness(theirs.points), openness.openness(ours.points)
        assert abs(a.left_eye - b.left_eye) < 0.12 and abs(a.right_eye - b.right_eye) < 0.12 and abs(a.mouth - b.mouth) < 0.12
        assert set(ours.blendshapes) == set(theirs.blendshapes) == set(BLENDSHAPE_NAMES)
        for name in ("eyeBlinkLeft", "eyeBlinkRight", "jawOpen"):
            assert abs(ours.blendshapes[name] - theirs.blendshapes[name]) < 0.1, name
        # the head pose from our mesh's matrix (measured within 0.6° of MediaPipe's here)
        assert theirs.transform is not None and ours.transform is not None
        mine, its = head_pose.pose_from_transform(ours.transform, 0, 0), head_pose.pose_from_transform(theirs.transform, 0, 0)
        assert abs(mine.yaw_deg - its.yaw_deg) < 1.5 and abs(mine.pitch_deg - its.pitch_deg) < 1.5


def test_the_geometry_pipeline_is_mediapipes(mediapipe_mesh: MeshLandmarker, torch_mesh: TorchMeshLandmarker, crops: list[RGB]) -> None:
    """Given MediaPipe's own landmarks, face_geometry gives MediaPipe's own matrix."""
    for crop in crops:
        theirs = mediapipe_mesh.fit(crop)
        assert theirs is not None and theirs.transform is not None
        ours = face_geometry.transforms(theirs.points[None], crop.shape[1], crop.shape[0], torch_mesh.canonical)[0]
        np.testing.assert_allclose(ours, theirs.transform, atol=1e-4)
    # and for several meshes at once, each its own
    fits = [mediapipe_mesh.fit(crop) for crop in crops]
    stacked = face_geometry.transforms(np.stack([f.points for f in fits if f]), 256, 256, torch_mesh.canonical)
    for matrix, fit in zip(stacked, fits, strict=True):
        assert fit is not None and fit.transform is not None
        np.testing.assert_allclose(matrix, fit.transform, atol=1e-4)


def test_no_face_is_no_mesh(torch_mesh: TorchMeshLandmarker) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    grey = np.full((256, 256, 3), 128, dtype=np.uint8)
    assert torch_mesh.fit_many([noise, grey]) == [None, None]


def test_a_batch_gives_what_each_crop_gives_alone(torch_mesh: TorchMeshLandmarker, crops: list[RGB]) -> None:
    passes = torch_mesh.forward_passes
    together = torch_mesh.fit_many(crops)
    assert torch_mesh.forward_passes == passes + 1
    for crop, fit in zip(crops, together, strict=True):
        alone = torch_mesh.fit(crop)
        assert fit is not None and alone is not None
        np.testing.assert_allclose(fit.points, alone.points, atol=1e-2)


def test_a_larger_crop_is_answered_in_its_own_pixels(models: FaceModels, torch_mesh: TorchMeshLandmarker, astronaut: RGB) -> None:
    small, large = torch_mesh.fit(_crop(models, astronaut, 256)), torch_mesh.fit(_crop(models, astronaut, 512))
    assert small is not None and large is not None
    assert np.abs(large.points[:, :2] / 2 - small.points[:, :2]).mean() < 1.0


def test_crops_must_be_square_rgb(torch_mesh: TorchMeshLandmarker) -> None:
    with pytest.raises(ValueError, match="square RGB"):
        torch_mesh.fit(np.zeros((256, 200, 3), dtype=np.uint8))
    assert torch_mesh.fit_many([]) == []


async def test_the_analyzer_batches_the_faces_of_concurrent_requests(
    models: FaceModels, mediapipe_mesh: MeshLandmarker, torch_mesh: TorchMeshLandmarker, astronaut: RGB, grace_hopper: RGB
) -> None:
    options = AnalyzeOptions(dense_landmarks=True, blendshapes=True)
    batched = FaceAnalyzer(models.detector, torch_mesh)
    reference = FaceAnalyzer(models.detector, mediapipe_mesh)
    try:
        assert batched.mesh_batcher is not None and reference.mesh_batcher is None
        images = [astronaut, grace_hopper] * 4
        results = await asyncio.gather(*(batched.analyze(image, options) for image in images))
        expected = [await reference.analyze(image, options) for image in images[:2]]
    finally:
        await batched.close()
        await reference.close()
    assert batched.mesh_batcher.items_run == len(images)
    assert batched.mesh_batcher.batches_run < len(images)  # faces of different requests shared passes
    for faces, theirs in zip(results, expected * 4, strict=True):
        assert len(faces) == len(theirs) == 1
        face, their = faces[0], theirs[0]
        assert face.mesh is not None and their.mesh is not None and face.blendshapes is not None
        apart = np.hypot(*(np.array([(p.x, p.y) for p in face.mesh]) - np.array([(p.x, p.y) for p in their.mesh])).T)
        assert apart.mean() < 3.0  # image pixels; a face about 200 px wide in these photos
        assert face.pose.source is their.pose.source is PoseSource.MESH
        for mine, its in (
            (face.pose.yaw_deg, their.pose.yaw_deg),
            (face.pose.pitch_deg, their.pose.pitch_deg),
            (face.pose.roll_deg, their.pose.roll_deg),
        ):
            assert mine == pytest.approx(its, abs=2.0)
        assert face.openness is not None and their.openness is not None
        assert abs(face.openness.left_eye - their.openness.left_eye) < 0.15


def test_the_traced_networks_compute_what_the_graphs_compute_at_any_batch_size(torch_mesh: TorchMeshLandmarker) -> None:
    """The mesh runs its networks traced (one call, no GIL per operator); the trace was made at
    a batch of 2 and must not have baked that in."""
    with zipfile.ZipFile(default_model_dir() / "face_landmarker.task") as bundle:
        landmarks = tflite_torch.load(bundle.read("face_landmarks_detector.tflite"))
        blendshapes = tflite_torch.load(bundle.read("face_blendshapes.tflite"))
    rng = torch.Generator().manual_seed(4)
    for count in (1, 3, 7):
        for traced, graph, shape in (
            (torch_mesh._landmarks, landmarks, (256, 256, 3)),
            (torch_mesh._blendshapes, blendshapes, (146, 2)),
        ):
            x = torch.rand(count, *shape, generator=rng) * (1 if len(shape) == 3 else 256)
            with torch.inference_mode():
                got, expected = traced(x), graph(x)
            assert len(got) == len(expected)
            for a, b in zip(got, expected, strict=True):
                assert a.shape == b.shape and a.shape[0] == count
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    """One protobuf field (numbers and lengths below 128: single-byte varints)."""
    key = bytes([number << 3 | wire])
    return key + (bytes([len(payload)]) + payload if wire == 2 else payload)


def test_canonical_face_reads_the_task_files_metadata_and_refuses_a_broken_one() -> None:
    from likeness_faces.adapters import torch_mesh as module
    from likeness_faces.domain.errors import ModelFilesError

    with zipfile.ZipFile(default_model_dir() / "face_landmarker.task") as bundle:
        face = module.canonical_face(bundle.read("geometry_pipeline_metadata_landmarks.binarypb"))
    assert face.vertices.shape == (468, 3) and int((face.weights > 0).sum()) == 33
    # The canonical face is about a head's size in centimetres, centred near the origin.
    assert 10 < float(np.ptp(face.vertices[:, 1])) < 25 and abs(float(face.vertices[:, 0].mean())) < 1

    # The same numbers written as one packed run instead of one fixed32 field each read the same.
    vertex = np.arange(468 * 5, dtype="<f4")
    weight = _field(1, 0, bytes([7])) + _field(2, 5, np.float32(0.5).tobytes())
    mesh = b"".join(_field(3, 5, v.tobytes()) for v in vertex)
    packed = _field(3, 2, vertex[:20].tobytes())  # 80 bytes: a one-byte length
    mesh_packed = packed + b"".join(_field(3, 5, v.tobytes()) for v in vertex[20:])
    for body in (mesh, mesh_packed):
        metadata = b"\x0a" + _varint(len(body)) + body + _field(2, 2, weight)
        read = module.canonical_face(metadata)
        assert np.array_equal(read.vertices, vertex.reshape(-1, 5)[:, :3].astype(np.float64))
        assert read.weights[7] == 0.5 and read.weights.sum() == 0.5

    for broken in (b"\xff\xff\xff", b"", _field(2, 2, weight)):
        with pytest.raises(ModelFilesError, match=r"geometry metadata cannot be read|vertices"):
            module.canonical_face(broken)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
