"""Template materials: registration keeps the meshes of every face (found by the faces
service; here by the test landmarker); the demo looks are generated from package-shipped
public-domain portraits."""

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

from likeness_render.adapters.model_files import model_path
from likeness_render.domain import templates
from likeness_render.domain.face import FaceGeometry

from .landmarks import TestLandmarker


@pytest.fixture(scope="module")
def landmarker() -> Iterator[TestLandmarker]:
    with TestLandmarker(max_faces=4) as runner:
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


def test_register_computes_a_read_only_mesh_per_face(landmarker: TestLandmarker) -> None:
    img = data.astronaut()
    t = templates.register_template("Astronaut Studio", "studio", img, landmarker.detect(img))
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


def test_faces_are_kept_left_to_right_and_faces_without_a_mesh_are_left_out() -> None:
    mesh = np.random.default_rng(0).uniform(0, 20, (478, 2))
    right = FaceGeometry(box=(300, 40, 360, 110), mesh=mesh + np.array([300.0, 40.0]))
    left = FaceGeometry(box=(20, 40, 80, 110), mesh=mesh + np.array([20.0, 40.0]))
    five_only = FaceGeometry(box=(150, 40, 210, 110), five_points=np.full((5, 2), 170.0))
    t = templates.register_template("Row", "s", np.zeros((200, 400, 3), np.uint8), [right, five_only, left])
    assert t.face_count == 2 and t.meshes[0][:, 0].mean() < 100 < 300 < t.meshes[1][:, 0].mean()


def test_register_refuses_an_image_without_a_face(landmarker: TestLandmarker) -> None:
    with pytest.raises(templates.TemplateError, match="no face"):
        templates.register_template("Coffee", "still", data.coffee(), landmarker.detect(data.coffee()))
    with pytest.raises(templates.TemplateError, match="uint8"):
        templates.check_template_image("Grey", data.camera())  # type: ignore[arg-type]
    with pytest.raises(templates.TemplateError, match="at least"):
        templates.check_template_image("Tiny", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(templates.TemplateError, match="empty"):
        templates.check_template_image("  ", data.astronaut())


def test_in_memory_store() -> None:
    mesh = np.tile([[40.0, 40.0]], (478, 1)) + np.random.default_rng(0).uniform(0, 20, (478, 2))
    one_face = [FaceGeometry(box=(40, 40, 60, 60), mesh=mesh)]
    img = np.zeros((128, 128, 3), np.uint8)
    a = templates.register_template("One", "s", img, one_face)
    b = templates.register_template("Two", "s", img, one_face)
    store: templates.TemplateStore = templates.InMemoryTemplateStore([a])
    store.put(b)
    assert [t.id for t in store.list_templates()] == ["one", "two"]
    assert store.get("two") is b
    assert store.delete("one") is True
    assert store.delete("one") is False
    with pytest.raises(templates.TemplateNotFound):
        store.get("one")


def test_demo_looks(landmarker: TestLandmarker, segmenter: _SelfieSegmenter, hopper: npt.NDArray[np.uint8]) -> None:
    plan = templates.plan_demo(segmenter)
    astro_faces, hopper_faces = landmarker.detect(plan.astronaut), landmarker.detect(plan.hopper)
    looks = [*plan.looks, templates.diptych_look(plan, astro_faces[0], hopper_faces[0])]
    assert len({templates.slug(look.name) for look in looks}) == len(looks) == 5
    by_style = {look.style: look for look in looks}
    assert set(by_style) == {"studio", "painterly", "vintage", "mono", "duo"}
    for look in looks:
        assert look.image.dtype == np.uint8 and look.image.ndim == 3
        assert "public domain" in look.description
        if look.style != "duo":  # each single look still shows a face to face analysis
            assert len(landmarker.detect(look.image)) == 1

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
