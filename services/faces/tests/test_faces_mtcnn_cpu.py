"""The CPU detection path (resampling from summed-area tables, channels-last RNet/ONet) finds what
facenet-pytorch's own detect_face finds, at the same places to float rounding; its resampling is
torch's area interpolation bit for bit; and a large smallest face is looked for on a smaller
canvas without losing the face or its landmarks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
import torch
from facenet_pytorch.models.utils.detect_face import detect_face, imresample

from likeness_faces.adapters.models import FaceModels
from likeness_faces.adapters.mtcnn_detector import (
    PYRAMID_FACTOR,
    STAGE_THRESHOLDS,
    area_crops,
    area_resize,
    detect_cpu,
    detect_torch,
    pooling_windows,
    pyramid,
    summed_areas,
)
from likeness_faces.domain import letterbox
from likeness_faces.domain.faces import AnalyzeOptions
from likeness_faces.domain.model_outputs import Detection
from likeness_faces.service import FaceAnalyzer

RGB = npt.NDArray[np.uint8]


def _canvas(image: RGB, long_side: int) -> RGB:
    box = letterbox.plan(image.shape[1], image.shape[0], long_side)
    return letterbox.pad(letterbox.resize(image, box), box)


def _rows(boxes: object) -> npt.NDArray[np.float64]:
    """Boxes left to right (the faces here stand side by side; near-equal scores may swap)."""
    rows = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    return rows[np.argsort(rows[:, 0])]


def test_the_pyramid_is_facenets() -> None:
    scales = pyramid(576, 768, 20)
    assert scales[0] == pytest.approx(12 / 20)
    assert all(b / a == pytest.approx(PYRAMID_FACTOR) for a, b in itertools.pairwise(scales))
    assert 576 * scales[-1] >= 12 > 576 * scales[-1] * PYRAMID_FACTOR
    assert pyramid(20, 20, 48) == []


@pytest.mark.parametrize("long_side,min_face", [(768, 20), (768, 100), (384, 48)])
def test_cpu_detection_matches_facenets_detect_face(
    models: FaceModels, astronaut: RGB, grace_hopper: RGB, long_side: int, min_face: int
) -> None:
    pair = np.full((512, 1024, 3), 128, dtype=np.uint8)
    pair[:, :512] = astronaut
    pair[:, 512:] = cv2.resize(grace_hopper, (512, 512), interpolation=cv2.INTER_AREA)
    canvases = np.stack([_canvas(astronaut, long_side), _canvas(astronaut[:, ::-1].copy(), long_side)])
    d = models.detector
    for batch in (canvases, _canvas(pair, long_side)[None]):
        with torch.inference_mode():
            theirs = detect_face(batch, min_face, d.pnet, d.rnet, d.onet, list(STAGE_THRESHOLDS), PYRAMID_FACTOR, torch.device("cpu"))
            ours = detect_cpu(batch, min_face, d.pnet, d.rnet, d.onet)
        for i in range(len(batch)):
            expected, got = _rows(theirs[0][i]), _rows(ours[0][i])
            assert len(got) == len(expected) >= 1
            # the same faces at the same places, to float rounding (the same pixels go to the same nets)
            assert np.abs(got - expected).max() < 1e-3
            assert got[:, 4].min() > 0.95
            their_points = np.asarray(theirs[1][i], dtype=np.float64).reshape(-1, 5, 2)
            our_points = np.asarray(ours[1][i], dtype=np.float64).reshape(-1, 5, 2)
            assert our_points.shape == (len(got), 5, 2)
            assert np.abs(np.sort(our_points, axis=0) - np.sort(their_points, axis=0)).max() < 1e-3


@pytest.mark.parametrize("photo", [skimage.data.coffee, skimage.data.chelsea], ids=["coffee", "chelsea"])
@pytest.mark.parametrize("min_face", [20, 100])
def test_photos_without_people_have_no_faces_either_way(models: FaceModels, photo: object, min_face: int) -> None:
    assert callable(photo)
    batch = _canvas(np.ascontiguousarray(photo()), 768)[None]
    d = models.detector
    with torch.inference_mode():
        theirs = detect_face(batch, min_face, d.pnet, d.rnet, d.onet, list(STAGE_THRESHOLDS), PYRAMID_FACTOR, torch.device("cpu"))
        ours = detect_cpu(batch, min_face, d.pnet, d.rnet, d.onet)
    assert len(ours[0][0]) == len(np.asarray(theirs[0][0]).reshape(-1, 5)) == 0


@pytest.mark.parametrize("min_face", [20, 100])
def test_the_device_path_finds_what_the_cpu_path_finds(models: FaceModels, astronaut: RGB, grace_hopper: RGB, min_face: int) -> None:
    """detect_torch (what CUDA runs) on CPU tensors: the same boxes and points as detect_cpu,
    for a batch of photos with one, two and no faces (the float sums are the same sums)."""
    pair = np.full((512, 1024, 3), 128, dtype=np.uint8)
    pair[:, :512] = astronaut
    pair[:, 512:] = cv2.resize(grace_hopper, (512, 512), interpolation=cv2.INTER_AREA)
    one = np.full((600, 800, 3), 128, dtype=np.uint8)
    one[44:556, 144:656] = astronaut
    coffee = np.ascontiguousarray(skimage.data.coffee())
    batch = np.stack([_canvas(one, 768), _canvas(pair, 768), _canvas(coffee, 768)])  # all 768×576
    d = models.detector
    with torch.inference_mode():
        expected = detect_cpu(batch, min_face, d.pnet, d.rnet, d.onet)
        got = detect_torch(torch.from_numpy(batch), min_face, d.pnet, d.rnet, d.onet)
    assert [len(b) for b in got[0]] == [len(b) for b in expected[0]] == [1, 2, 0]
    for mine, theirs in zip(got[0] + got[1], expected[0] + expected[1], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-3)


def test_the_device_path_with_nothing_to_find(models: FaceModels) -> None:
    d = models.detector
    with torch.inference_mode():
        boxes, points = detect_torch(torch.full((2, 96, 128, 3), 200, dtype=torch.uint8), 20, d.pnet, d.rnet, d.onet)
    assert [b.shape[0] for b in boxes] == [p.shape[0] for p in points] == [0, 0]


def _torch_area(canvases: RGB, height: int, width: int) -> npt.NDArray[np.float32]:
    """facenet's imresample of the canvases' float copy, back to N×H×W×3."""
    imgs = torch.from_numpy(canvases).permute(0, 3, 1, 2).float()
    return imresample(imgs, (height, width)).permute(0, 2, 3, 1).numpy()


def test_pooling_windows_are_torchs() -> None:
    # 5 outputs over 12 inputs: [floor(12i/5), ceil(12(i+1)/5)), overlapping where 5 does not divide 12
    starts, ends = pooling_windows(12, 5)
    assert starts.tolist() == [0, 2, 4, 7, 9] and ends.tolist() == [3, 5, 8, 10, 12]
    # an upscale: every output sees one or two inputs, all of them seen
    starts, ends = pooling_windows(3, 7)
    assert starts.tolist() == [0, 0, 0, 1, 1, 2, 2] and ends.tolist() == [1, 1, 2, 2, 3, 3, 3]
    # one row of windows per length
    starts, ends = pooling_windows(np.array([12, 3]), 5)
    assert starts.shape == ends.shape == (2, 5) and ends[1].tolist() == [1, 2, 2, 3, 3]


@pytest.mark.parametrize(
    "shape,size",
    [
        ((576, 768), (70, 93)),  # a 768 canvas' pyramid at min_face_px 100
        ((576, 768), (346, 461)),  # and at 20
        ((768, 576), (13, 10)),  # its coarsest level
        ((97, 61), (29, 47)),  # sizes that divide nothing
        ((13, 9), (24, 24)),  # an upscale
        ((1, 40), (24, 24)),  # a one-pixel strip
        ((50, 50), (50, 50)),  # the identity
    ],
)
def test_area_resize_is_torchs_area_interpolation(shape: tuple[int, int], size: tuple[int, int]) -> None:
    canvases = np.random.default_rng(sum(shape) + sum(size)).integers(0, 256, (2, *shape, 3), dtype=np.uint8)
    ours = area_resize(summed_areas(canvases), *size)
    # bit for bit: the same window sums (exact either way) divided in the same order in float32
    np.testing.assert_array_equal(ours, _torch_area(canvases, *size))


@pytest.mark.parametrize("size", [24, 48])
def test_area_crops_are_imresample_of_each_clipped_region(size: int) -> None:
    rng = np.random.default_rng(size)
    canvases = rng.integers(0, 256, (3, 120, 160, 3), dtype=np.uint8)
    regions = [
        (0, 0, 120, 0, 160),  # a whole canvas
        (1, 10, 90, 20, 100),  # a downscale
        (2, 30, 37, 40, 45),  # an upscale
        (0, 5, 6, 7, 8),  # a single pixel
        (1, 0, 120, 159, 160),  # a one-pixel column clipped at the right edge
        (2, 119, 120, 0, 61),  # a one-pixel row at the bottom
    ]
    for _ in range(40):  # and random ones, any aspect
        y0, x0 = int(rng.integers(0, 120)), int(rng.integers(0, 160))
        regions.append((int(rng.integers(0, 3)), y0, int(rng.integers(y0 + 1, 121)), x0, int(rng.integers(x0 + 1, 161))))
    inds, top, bottom, left, right = (np.array(column, dtype=np.int64) for column in zip(*regions, strict=True))

    ours = area_crops(summed_areas(canvases), inds, top, bottom, left, right, size)

    assert ours.shape == (len(regions), size, size, 3)
    imgs = torch.from_numpy(canvases).permute(0, 3, 1, 2).float()
    for k, (i, y0, y1, x0, x1) in enumerate(regions):
        # detect_face's own cut: a slice of the float canvas, resampled on its own
        theirs = imresample(imgs[i, :, y0:y1, x0:x1].unsqueeze(0), (size, size))
        np.testing.assert_array_equal(ours[k], theirs[0].permute(1, 2, 0).numpy())


def test_an_empty_canvas_has_no_faces(models: FaceModels) -> None:
    d = models.detector
    with torch.inference_mode():
        boxes, points = detect_cpu(np.full((2, 288, 384, 3), 127, dtype=np.uint8), 48, d.pnet, d.rnet, d.onet)
    assert [len(b) for b in boxes] == [0, 0] and [len(p) for p in points] == [0, 0]


@pytest.mark.asyncio
async def test_a_large_smallest_face_is_looked_for_on_a_smaller_canvas(
    analyzer: FaceAnalyzer, models: FaceModels, grace_hopper: RGB
) -> None:
    photo = np.full((1600, 1200, 3), 236, dtype=np.uint8)  # a portrait photo, the face about 1/4 of its height
    photo[300:900, 300:812] = cv2.resize(grace_hopper, (512, 600), interpolation=cv2.INTER_CUBIC)
    sizes: list[tuple[int, int, int]] = []
    detect = models.detector.detect

    def spy(canvases: Sequence[RGB], min_face_px: int) -> list[list[Detection]]:
        sizes.append((*canvases[0].shape[:2], min_face_px))
        return detect(canvases, min_face_px)

    models.detector.detect = spy  # type: ignore[method-assign]
    try:
        (everywhere,) = await analyzer.analyze(photo, AnalyzeOptions(dense_landmarks=True))
        (large_only,) = await analyzer.analyze(photo, AnalyzeOptions(dense_landmarks=True, min_face_fraction=0.25))
    finally:
        del models.detector.detect
    assert sizes == [(768, 576, 20), (384, 288, 96)]
    assert large_only.box.width == pytest.approx(everywhere.box.width, rel=0.08)
    # the mesh is fitted on the full-resolution photo either way
    assert everywhere.mesh is not None and large_only.mesh is not None
    mesh_a = np.array([[p.x, p.y] for p in everywhere.mesh])
    mesh_b = np.array([[p.x, p.y] for p in large_only.mesh])
    assert np.linalg.norm(mesh_a - mesh_b, axis=1).mean() < 2.0


def test_the_traced_nets_are_the_nets_at_any_batch_and_image_size(models: FaceModels) -> None:
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    from likeness_faces.adapters import model_files
    from likeness_faces.adapters.mtcnn_detector import _load

    paths = model_files.verify(model_files.default_model_dir())
    d = models.detector
    rng = torch.Generator().manual_seed(9)
    cases = (
        (d.pnet, _load(PNet(pretrained=False), paths.pnet), [(1, 12, 12), (3, 69, 92), (2, 577, 769)]),
        (d.rnet, _load(RNet(pretrained=False), paths.rnet), [(1, 24, 24), (37, 24, 24)]),
        (d.onet, _load(ONet(pretrained=False), paths.onet), [(1, 48, 48), (5, 48, 48)]),
    )
    for traced, eager, shapes in cases:
        for count, height, width in shapes:
            x = torch.rand(count, 3, height, width, generator=rng) * 2 - 1
            with torch.inference_mode():
                for got, expected in zip(traced(x), eager(x), strict=True):
                    assert got.shape == expected.shape and got.shape[0] == count
                    torch.testing.assert_close(got, expected, rtol=0, atol=0)
