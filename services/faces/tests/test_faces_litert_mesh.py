"""The mesh the faces service runs on the CPU (its two networks on LiteRT) against the same
networks on PyTorch and against MediaPipe's FaceLandmarker, on the same face crops."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch

from likeness_faces.adapters.litert_mesh import LiteRtMeshLandmarker
from likeness_faces.adapters.mesh_bundle import BLENDSHAPE_NAMES, CROP_MARGIN
from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import FaceModels
from likeness_faces.adapters.torch_mesh import TorchMeshLandmarker
from likeness_faces.domain import face_crop, head_pose, openness
from likeness_faces.domain.faces import AnalyzeOptions, PoseSource
from likeness_faces.service import FaceAnalyzer

from .mediapipe_landmarker import MeshLandmarker

RGB = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def litert_mesh() -> LiteRtMeshLandmarker:
    return LiteRtMeshLandmarker(default_model_dir() / "face_landmarker.task")


@pytest.fixture(scope="module")
def torch_mesh() -> Iterator[TorchMeshLandmarker]:
    landmarker = TorchMeshLandmarker(default_model_dir() / "face_landmarker.task", torch.device("cpu"))
    yield landmarker
    landmarker.close()


def _crop(models: FaceModels, image: RGB, size: int = 256) -> RGB:
    """The face's upright crop as the analyzer cuts it for the mesh networks."""
    face = models.detector.detect([image], 20)[0][0]
    (x1, y1, x2, y2), eyes = face.box, face.points
    roll = math.degrees(math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    plan = face_crop.plan((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1), roll, margin=CROP_MARGIN, size=size)
    return face_crop.extract(image, plan)


@pytest.fixture(scope="module")
def crops(models: FaceModels, astronaut: RGB, grace_hopper: RGB) -> list[RGB]:
    small = cv2.resize(grace_hopper, (256, 300), interpolation=cv2.INTER_AREA)
    return [_crop(models, image) for image in (astronaut, grace_hopper, np.ascontiguousarray(astronaut[:, ::-1]), small)]


def test_the_service_runs_the_mesh_on_litert_on_the_cpu(models: FaceModels) -> None:
    assert models.device.type == "cpu" and isinstance(models.landmarker, LiteRtMeshLandmarker)


def test_litert_computes_what_pytorch_computes(
    litert_mesh: LiteRtMeshLandmarker, torch_mesh: TorchMeshLandmarker, crops: list[RGB]
) -> None:
    """The same two networks run by two runtimes: float rounding apart."""
    for crop in crops:
        ours, theirs = litert_mesh.fit(crop), torch_mesh.fit(crop)
        assert ours is not None and theirs is not None
        np.testing.assert_allclose(ours.points, theirs.points, atol=0.05)
        for name in BLENDSHAPE_NAMES:
            assert ours.blendshapes[name] == pytest.approx(theirs.blendshapes[name], abs=2e-3), name
        assert ours.transform is not None and theirs.transform is not None
        np.testing.assert_allclose(ours.transform, theirs.transform, atol=1e-3)


def test_the_mesh_is_mediapipes_to_about_a_pixel(
    mediapipe_mesh: MeshLandmarker, litert_mesh: LiteRtMeshLandmarker, crops: list[RGB]
) -> None:
    for crop in crops:
        theirs, ours = mediapipe_mesh.fit(crop), litert_mesh.fit(crop)
        assert theirs is not None and ours is not None
        assert ours.points.shape == (478, 3)
        apart = np.linalg.norm(ours.points[:, :2] - theirs.points[:, :2], axis=1)
        # measured 0.4-1.2 px mean on these four (MediaPipe frames the face again itself)
        assert apart.mean() < 1.6 and np.percentile(apart, 95) < 4.0, (apart.mean(), np.percentile(apart, 95))
        a, b = openness.openness(theirs.points), openness.openness(ours.points)
        assert abs(a.left_eye - b.left_eye) < 0.12 and abs(a.right_eye - b.right_eye) < 0.12 and abs(a.mouth - b.mouth) < 0.12
        assert theirs.transform is not None and ours.transform is not None
        mine, its = head_pose.pose_from_transform(ours.transform, 0, 0), head_pose.pose_from_transform(theirs.transform, 0, 0)
        assert abs(mine.yaw_deg - its.yaw_deg) < 1.5 and abs(mine.pitch_deg - its.pitch_deg) < 1.5


def test_no_face_is_no_mesh(litert_mesh: LiteRtMeshLandmarker) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert litert_mesh.fit(noise) is None
    assert litert_mesh.fit(np.full((256, 256, 3), 128, dtype=np.uint8)) is None


def test_a_larger_crop_is_answered_in_its_own_pixels(models: FaceModels, litert_mesh: LiteRtMeshLandmarker, astronaut: RGB) -> None:
    small, large = litert_mesh.fit(_crop(models, astronaut, 256)), litert_mesh.fit(_crop(models, astronaut, 512))
    assert small is not None and large is not None
    assert np.abs(large.points[:, :2] / 2 - small.points[:, :2]).mean() < 1.0


def test_without_blendshapes_their_network_is_not_run_and_the_mesh_is_the_same(litert_mesh: LiteRtMeshLandmarker, crops: list[RGB]) -> None:
    class Counted(LiteRtMeshLandmarker):
        """Counts the blendshape network's runs in this thread's interpreters."""

        runs = 0

        def fit(self, crop: RGB, blendshapes: bool = True):  # type: ignore[no-untyped-def]
            networks = self._local.networks
            if not hasattr(networks, "counted"):
                invoke = networks.blendshapes.invoke

                def counted() -> None:
                    Counted.runs += 1
                    invoke()

                networks.blendshapes.invoke, networks.counted = counted, True
            return super().fit(crop, blendshapes)

    counted = Counted(default_model_dir() / "face_landmarker.task")
    for crop in crops:
        full, bare = counted.fit(crop), counted.fit(crop, blendshapes=False)
        assert full is not None and bare is not None
        np.testing.assert_array_equal(bare.points, full.points)
        np.testing.assert_array_equal(bare.transform, full.transform)
        assert bare.blendshapes == {} and set(full.blendshapes) == set(BLENDSHAPE_NAMES)
    assert Counted.runs == len(crops)


async def test_the_analyzer_asks_for_blendshapes_only_when_they_are_wanted(models: FaceModels, astronaut: RGB) -> None:
    asked: list[bool] = []

    class Spy(LiteRtMeshLandmarker):
        def fit(self, crop: RGB, blendshapes: bool = True):  # type: ignore[no-untyped-def]
            asked.append(blendshapes)
            return super().fit(crop, blendshapes)

    analyzer = FaceAnalyzer(models.detector, Spy(default_model_dir() / "face_landmarker.task"))
    try:
        (plain,) = await analyzer.analyze(astronaut, AnalyzeOptions(dense_landmarks=True))
        assert asked and not any(asked) and plain.blendshapes is None and plain.openness is not None
        asked.clear()
        (shaped,) = await analyzer.analyze(astronaut, AnalyzeOptions(blendshapes=True))
        assert asked and all(asked) and shaped.blendshapes is not None and len(shaped.blendshapes) == 52
    finally:
        await analyzer.close()


def test_crops_must_be_square_rgb(litert_mesh: LiteRtMeshLandmarker) -> None:
    with pytest.raises(ValueError, match="square RGB"):
        litert_mesh.fit(np.zeros((256, 200, 3), dtype=np.uint8))


def test_threads_fitting_at_once_each_get_what_one_thread_gets(litert_mesh: LiteRtMeshLandmarker, crops: list[RGB]) -> None:
    # Each thread runs interpreters of its own: none sees another's tensors half-written.
    alone = [litert_mesh.fit(crop) for crop in crops]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(litert_mesh.fit, crops * 8))
    for fit, expected in zip(together, alone * 8, strict=True):
        assert fit is not None and expected is not None
        np.testing.assert_array_equal(fit.points, expected.points)


async def test_the_analyzer_fits_litert_meshes_on_the_crops_it_expects(
    models: FaceModels, mediapipe_mesh: MeshLandmarker, litert_mesh: LiteRtMeshLandmarker, astronaut: RGB, grace_hopper: RGB
) -> None:
    options = AnalyzeOptions(dense_landmarks=True, blendshapes=True)
    ours = FaceAnalyzer(models.detector, litert_mesh)
    reference = FaceAnalyzer(models.detector, mediapipe_mesh)
    try:
        # the crop the networks expect, not the one MediaPipe's own detector re-frames
        assert ours._crop_margin == CROP_MARGIN and ours.mesh_batcher is None
        for image in (astronaut, grace_hopper):
            (face,), (their,) = await ours.analyze(image, options), await reference.analyze(image, options)
            assert face.mesh is not None and their.mesh is not None and face.blendshapes is not None
            apart = np.hypot(*(np.array([(p.x, p.y) for p in face.mesh]) - np.array([(p.x, p.y) for p in their.mesh])).T)
            assert apart.mean() < 3.0  # image pixels; a face about 200 px wide in these photos
            assert face.pose.source is their.pose.source is PoseSource.MESH
            assert face.pose.roll_deg == pytest.approx(their.pose.roll_deg, abs=2.0)
            assert face.pose.yaw_deg == pytest.approx(their.pose.yaw_deg, abs=2.0)
    finally:
        await ours.close()
        await reference.close()
