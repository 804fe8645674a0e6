"""Template materials: registration computes the meshes of every face once; the demo catalog
is generated from package-shipped public-domain portraits."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import matplotlib.cbook
import mediapipe as mp
import numpy as np
import numpy.typing as npt
import pytest
from mediapipe.tasks.python import BaseOptions, vision
from PIL import Image
from skimage import data

from likeness_render.adapters.landmarker import FaceLandmarkerRunner
from likeness_render.adapters.model_files import model_path
from likeness_render.domain import templates
from likeness_render.domain.face import FaceGeometry


@pytest.fixture(scope="module")
def landmarker() -> Iterator[FaceLandmarkerRunner]:
    with FaceLandmarkerRunner(max_faces=4) as runner:
        yield runner


class _SelfieSegmenter:
    """The selfie model straight through MediaPipe Tasks (the service's own segmenter
    adapter is not what these tests are about)."""

    def __init__(self) -> None:
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation.tflite"))),
            output_confidence_masks=True,
        )
        self._seg = vision.ImageSegmenter.create_from_options(options)

    def __call__(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        result = self._seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        mask = np.asarray(result.confidence_masks[0].numpy_view(), dtype=np.float32)
        return mask.reshape(image.shape[:2]).copy()

    def close(self) -> None:
        self._seg.close()


@pytest.fixture(scope="module")
def segmenter() -> Iterator[_SelfieSegmenter]:
    seg = _SelfieSegmenter()
    yield seg
    seg.close()


@pytest.fixture(scope="module")
def hopper() -> npt.NDArray[np.uint8]:
    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def test_register_computes_a_read_only_mesh_per_face(landmarker: FaceLandmarkerRunner) -> None:
    img = data.astronaut()
    t = templates.register_template("Astronaut Studio", "studio", img, landmarker)
    assert t.id == "astronaut-studio"
    assert (t.width, t.height) == (512, 512)
    assert t.face_count == 1
    mesh = t.meshes[0]
    assert mesh.shape == (478, 2)
    # The mesh lies on the face: the landmarker's box for the astronaut is about x 180..270.
    assert 170 < mesh[:, 0].mean() < 280
    with pytest.raises(ValueError):
        mesh[0, 0] = 0.0
    with pytest.raises(ValueError):
        t.image[0, 0, 0] = 0
    # The caller's array is copied, not frozen under them.
    img[0, 0, 0] = 1


def test_faces_the_landmarker_misses_in_a_wide_image_are_found_in_windows(
    landmarker: FaceLandmarkerRunner, hopper: npt.NDArray[np.uint8]
) -> None:
    small_hopper = cv2.resize(hopper, (437, 512), interpolation=cv2.INTER_AREA)
    wide = np.concatenate([data.astronaut(), small_hopper], axis=1)
    # The landmarker's own short-range detector sees only one face in the whole frame...
    assert len(landmarker.detect(wide)) == 1
    faces = templates.detect_all_faces(wide, landmarker)
    # ...the sliding windows find both, once each, ordered left to right.
    assert len(faces) == 2
    assert faces[0].box[2] < 512 < faces[1].box[0]


def test_register_refuses_an_image_without_a_face(landmarker: FaceLandmarkerRunner) -> None:
    with pytest.raises(templates.TemplateError, match="no face"):
        templates.register_template("Coffee", "still", data.coffee(), landmarker)
    with pytest.raises(templates.TemplateError, match="uint8"):
        templates.register_template("Grey", "still", data.camera(), landmarker)  # type: ignore[arg-type]
    with pytest.raises(templates.TemplateError, match="at least"):
        templates.register_template("Tiny", "still", np.zeros((32, 32, 3), np.uint8), landmarker)


def test_in_memory_store() -> None:
    class _OneFace:
        def detect(self, image_rgb: npt.NDArray[np.uint8]) -> list[FaceGeometry]:
            mesh = np.tile([[40.0, 40.0]], (478, 1)) + np.random.default_rng(0).uniform(0, 20, (478, 2))
            return [FaceGeometry(box=(40, 40, 60, 60), mesh=mesh)]

    img = np.zeros((128, 128, 3), np.uint8)
    a = templates.register_template("One", "s", img, _OneFace())
    b = templates.register_template("Two", "s", img, _OneFace())
    store: templates.TemplateStore = templates.InMemoryTemplateStore([a])
    store.put(b)
    assert [t.id for t in store.list_templates()] == ["one", "two"]
    assert store.get("two") is b
    assert store.delete("one") is True
    assert store.delete("one") is False
    with pytest.raises(templates.TemplateNotFound):
        store.get("one")


def test_demo_catalog(landmarker: FaceLandmarkerRunner, segmenter: _SelfieSegmenter, hopper: npt.NDArray[np.uint8]) -> None:
    catalog = templates.build_demo_templates(landmarker, segmenter)
    assert len(catalog) >= 4
    assert len({t.id for t in catalog}) == len(catalog)
    by_style = {t.style: t for t in catalog}
    assert set(by_style) == {"studio", "painterly", "vintage", "mono", "duo"}
    for t in catalog:
        assert t.image.shape == (t.height, t.width, 3)
        assert t.face_count == (2 if t.style == "duo" else 1)
        assert "public domain" in t.description

    astro = data.astronaut()
    studio = by_style["studio"].image
    # The backdrop is new (the flag at the top-left corner is gone)...
    assert float(np.abs(studio[:60, :60].astype(float) - astro[:60, :60]).mean()) > 40
    # ...and the face is the source's own (the matte keeps it).
    assert float(np.abs(studio[100:150, 190:260].astype(float) - astro[100:150, 190:260]).mean()) < 3

    mono = by_style["mono"].image.astype(float)
    assert float(np.abs(mono[..., 0] - mono[..., 1]).max()) <= 1  # grey

    sepia = cv2.cvtColor(by_style["painterly"].image, cv2.COLOR_RGB2HSV)
    hues = sepia[..., 0][sepia[..., 1] > 40]
    # One warm hue throughout (OpenCV hue 0..180: orange-brown is 8..20).
    assert np.percentile(hues, 5) >= 5 and np.percentile(hues, 95) <= 22

    film = by_style["vintage"].image.astype(float)
    # Lifted blacks: nothing in a faded print reaches true black.
    assert np.percentile(film.min(axis=2), 0.5) > 8 and np.percentile(astro.min(axis=2), 0.5) < 2
