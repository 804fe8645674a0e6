"""The CPU detection path (channels-last RNet/ONet) finds what facenet-pytorch's own detect_face
finds, at the same places to float rounding; and a large smallest face is looked for on a smaller
canvas without losing the face or its landmarks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
import pytest
import torch
from facenet_pytorch.models.utils.detect_face import detect_face

from likeness_faces.adapters.models import FaceModels
from likeness_faces.adapters.mtcnn_detector import PYRAMID_FACTOR, STAGE_THRESHOLDS, detect_cpu, pyramid
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
            assert np.abs(got - expected).max() < 0.01
            assert got[:, 4].min() > 0.95
            their_points = np.asarray(theirs[1][i], dtype=np.float64).reshape(-1, 5, 2)
            our_points = np.asarray(ours[1][i], dtype=np.float64).reshape(-1, 5, 2)
            assert our_points.shape == (len(got), 5, 2)
            assert np.abs(np.sort(our_points, axis=0) - np.sort(their_points, axis=0)).max() < 0.01


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
