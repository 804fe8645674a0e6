"""Start-up refuses missing or corrupt model files with a message that says how to fix it."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from likeness_faces.adapters import model_files
from likeness_faces.adapters.litert_mesh import LiteRtMeshLandmarker
from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import load_models
from likeness_faces.domain.errors import ModelFilesError


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A copy of the real, verified model folder that a test may damage."""
    real = model_files.default_model_dir() / model_files.LANDMARKER_FILE
    target = tmp_path / "models"
    target.mkdir()
    shutil.copyfile(real, target / model_files.LANDMARKER_FILE)
    return target


@pytest.fixture
def mtcnn_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mtcnn"
    shutil.copytree(model_files.mtcnn_weights_dir(), target)
    return target


def test_good_files_pass(model_dir: Path, mtcnn_dir: Path) -> None:
    paths = model_files.verify(model_dir, mtcnn_dir)
    assert paths.landmarker == model_dir / model_files.LANDMARKER_FILE
    assert paths.onet == mtcnn_dir / "onet.pt"


def test_a_missing_landmarker_names_the_file_and_the_fix(model_dir: Path, mtcnn_dir: Path) -> None:
    (model_dir / model_files.LANDMARKER_FILE).unlink()
    with pytest.raises(ModelFilesError) as caught:
        model_files.verify(model_dir, mtcnn_dir)
    message = str(caught.value)
    assert "face_landmarker.task is missing" in message
    assert "make setup" in message and "scripts/fetch_models.py" in message


def test_a_corrupt_landmarker_is_refused(model_dir: Path, mtcnn_dir: Path) -> None:
    path = model_dir / model_files.LANDMARKER_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match=r"face_landmarker\.task .* is corrupt.*fetch_models\.py"):
        model_files.verify(model_dir, mtcnn_dir)


def test_damaged_mtcnn_weights_point_at_the_package(model_dir: Path, mtcnn_dir: Path) -> None:
    (mtcnn_dir / "rnet.pt").write_bytes(b"not a model")
    (mtcnn_dir / "onet.pt").unlink()
    with pytest.raises(ModelFilesError) as caught:
        model_files.verify(model_dir, mtcnn_dir)
    message = str(caught.value)
    assert "rnet.pt" in message and "onet.pt is missing" in message
    assert "facenet-pytorch==2.5.3" in message


def test_load_models_stops_on_a_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesError, match="run `make setup`"):
        load_models(tmp_path / "empty")


def test_mesh_networks_litert_cannot_load_stop_the_start_with_the_fix(tmp_path: Path) -> None:
    # A bundle whose networks are not TFLite models: caught at load, not at the first request.
    task = tmp_path / model_files.LANDMARKER_FILE
    with zipfile.ZipFile(task, "w") as bundle:
        with zipfile.ZipFile(default_model_dir() / model_files.LANDMARKER_FILE) as real:
            bundle.writestr("geometry_pipeline_metadata_landmarks.binarypb", real.read("geometry_pipeline_metadata_landmarks.binarypb"))
        bundle.writestr("face_landmarks_detector.tflite", b"not a model")
        bundle.writestr("face_blendshapes.tflite", b"not a model either")
    with pytest.raises(ModelFilesError, match=r"LiteRT could not load the mesh networks of face_landmarker\.task.*make setup"):
        LiteRtMeshLandmarker(task)
