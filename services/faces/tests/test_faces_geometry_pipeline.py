"""face_geometry's Procrustes fit recovers a known similarity; the canonical face is read from
face_landmarker.task, and unreadable metadata is a model-file error."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from likeness_faces.adapters.mesh_bundle import canonical_face
from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.domain import face_geometry
from likeness_faces.domain.errors import ModelFilesError


def _metadata() -> bytes:
    with zipfile.ZipFile(default_model_dir() / "face_landmarker.task") as bundle:
        return bundle.read("geometry_pipeline_metadata_landmarks.binarypb")


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_the_canonical_face_is_read_from_the_task_file() -> None:
    face = canonical_face(_metadata())
    assert face.vertices.shape == (468, 3)
    assert int((face.weights > 0).sum()) == 33  # MediaPipe's Procrustes landmark basis
    # a head about 15 cm wide, centred near the origin
    assert 10 < np.ptp(face.vertices[:, 0]) < 20 and abs(face.vertices.mean(axis=0)).max() < 5


def test_a_known_similarity_is_recovered_exactly() -> None:
    rng = np.random.default_rng(5)
    source = rng.normal(size=(40, 3))
    weights = rng.random(40)
    turns = [_rotation(rng) for _ in range(3)]
    scales, shifts = rng.uniform(0.5, 3, 3), rng.normal(size=(3, 3))
    targets = np.stack([s * source @ r.T + t for r, s, t in zip(turns, scales, shifts, strict=True)])
    matrices = face_geometry.similarity(source, targets, weights)
    for matrix, turn, scale, shift in zip(matrices, turns, scales, shifts, strict=True):
        np.testing.assert_allclose(matrix[:3, :3], scale * turn, atol=1e-9)
        np.testing.assert_allclose(matrix[:3, 3], shift, atol=1e-9)
        assert matrix[3].tolist() == [0, 0, 0, 1]


def test_a_mirror_image_is_fitted_by_a_rotation_not_a_reflection() -> None:
    rng = np.random.default_rng(6)
    source = rng.normal(size=(30, 3))
    mirrored = source * np.array([-1.0, 1.0, 1.0])
    matrix = face_geometry.similarity(source, mirrored[None], np.ones(30))[0]
    assert np.linalg.det(matrix[:3, :3]) > 0


@pytest.mark.parametrize("data", [b"", b"\x0a\x03\x18\x01", b"\xff\xff\xff"], ids=["empty", "no vertices", "garbage"])
def test_unreadable_metadata_is_a_model_file_error(data: bytes) -> None:
    with pytest.raises(ModelFilesError, match="make setup"):
        canonical_face(data)
