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


def test_demo_looks(landmarker: TestLandmarker, segmenter: _SelfieSegmenter) -> None:
    plan = templates.plan_demo(segmenter)
    astro_faces, hopper_faces = landmarker.detect(plan.astronaut), landmarker.detect(plan.hopper)
    looks = templates.demo_looks(plan, astro_faces[0], hopper_faces[0])
    assert len({templates.slug(look.name) for look in looks}) == len(looks) == 4
    by_style = {look.style: look for look in looks}
    assert set(by_style) == {"documentary", "official", "studio", "duo"}
    for look in looks:
        h, w = look.image.shape[:2]
        assert look.image.dtype == np.uint8 and look.image.ndim == 3 and max(h, w) >= templates.MIN_LONG_SIDE
        assert look.alpha.shape == (h, w) and look.alpha.dtype == np.float32
        assert "public domain" in look.description
        if look.style != "duo":  # each single look still shows a face to face analysis
            assert len(landmarker.detect(look.image)) == 1

    # The photographs are the photographs (upscaled to material size), not filtered.
    astro = cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    assert float(np.abs(by_style["documentary"].image.astype(float) - astro).mean()) < 1.0
    studio = by_style["studio"].image
    # The backdrop is new (the flag at the top-left corner is gone)...
    assert float(np.abs(studio[:120, :120].astype(float) - astro[:120, :120]).mean()) > 40
    # ...and the face is the source's own (the matte keeps it).
    assert float(np.abs(studio[200:300, 380:520].astype(float) - astro[200:300, 380:520]).mean()) < 3
    # A clean matte: the person is one piece, nothing of the flag is left beside it.
    alpha = by_style["studio"].alpha
    n, _ = cv2.connectedComponents((alpha > 0.5).astype(np.uint8))
    assert n == 2 and alpha[:150, :150].max() < 0.05
    duo = by_style["duo"]
    left, right = duo.alpha[:, : duo.image.shape[1] // 2], duo.alpha[:, duo.image.shape[1] // 2 :]
    assert left.max() > 0.99 and right.max() > 0.99 and duo.alpha[:10].max() == 0.0  # the mount is not a person


def test_materials_are_upscaled_to_the_material_size_and_keep_their_matte() -> None:
    img = np.zeros((300, 400, 3), np.uint8)
    img[100:200, 150:250] = 200
    alpha = np.zeros((300, 400), np.float32)
    alpha[100:200, 150:250] = 1.0
    big, big_alpha = templates.at_material_size(img, alpha)
    assert big.shape == (768, 1024, 3) and big_alpha is not None and big_alpha.shape == (768, 1024)
    assert big_alpha[384, 512] == pytest.approx(1.0) and big_alpha[10, 10] == 0.0
    same, _ = templates.at_material_size(np.zeros((1100, 900, 3), np.uint8))
    assert same.shape == (1100, 900, 3)
    # An operator's RGBA PNG carries its own matte.
    import io

    out = io.BytesIO()
    Image.fromarray(np.dstack([img, (alpha * 255).astype(np.uint8)])).save(out, format="PNG")
    read = templates.png_alpha(out.getvalue())
    assert read is not None and read.shape == (300, 400) and read[150, 200] == 1.0 and read[0, 0] == 0.0
    rgb_only = io.BytesIO()
    Image.fromarray(img).save(rgb_only, format="PNG")
    assert templates.png_alpha(rgb_only.getvalue()) is None
    mesh = np.random.default_rng(0).uniform(100, 200, (478, 2))
    with pytest.raises(templates.TemplateError, match="matte"):
        templates.register_template("M", "s", img, [FaceGeometry(box=(100, 100, 200, 200), mesh=mesh)], alpha=alpha[:10])
