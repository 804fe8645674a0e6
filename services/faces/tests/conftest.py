"""Shared fixtures: the real models load once per test session; analyzers are per test
because each test runs on its own event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
import skimage.data
from PIL import Image

from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import FaceModels, load_models
from likeness_faces.service import FaceAnalyzer

from .mediapipe_landmarker import MeshLandmarker

RGB = npt.NDArray[np.uint8]


@pytest.fixture(scope="session")
def models() -> Iterator[FaceModels]:
    # two threads: the test machine's cores are shared with other jobs
    loaded = load_models(default_model_dir(), torch_threads=2)
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def mediapipe_mesh() -> Iterator[MeshLandmarker]:
    """MediaPipe's FaceLandmarker: the reference the service's mesh runners are held to."""
    landmarker = MeshLandmarker(default_model_dir() / "face_landmarker.task")
    yield landmarker
    landmarker.close()


@pytest_asyncio.fixture
async def analyzer(models: FaceModels) -> AsyncIterator[FaceAnalyzer]:
    face_analyzer = FaceAnalyzer(models.detector, models.landmarker)
    yield face_analyzer
    await face_analyzer.close()


@pytest.fixture(scope="session")
def astronaut() -> RGB:
    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def grace_hopper() -> RGB:
    return np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
