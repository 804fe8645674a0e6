"""An operator's ONNX matting model: loaded from settings, run on the crop, its alpha used for the ID photo.

The models are built by the tests with the `onnx` package: a chroma key whose alpha is known
exactly on a two-colour scene, and a fixed-size model that answers a constant alpha map (a
person, a hole in them, a speck apart from them), run through the whole ID-photo composition.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import pytest
from matplotlib import cbook
from onnx import TensorProto, helper
from PIL import Image

from likeness_imaging.model_backend import ModelSignatureMismatch, sha256_hex
from likeness_render.adapters.matting_model import MattingModel, load_matting_model
from likeness_render.domain import idphoto, matte
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.main import RenderSettings, build
from likeness_render.usecases.id_photo import frame_of

from .landmarks import TestLandmarker

# Render refuses to start without a blob-name key; any 32 random bytes do here.
KEY = base64.b64encode(os.urandom(32)).decode()

SUBJECT = np.array([200, 170, 150], np.float64)
GREEN = np.array([20, 200, 40], np.float64)


def _save(model: onnx.ModelProto, path: Path) -> str:
    model.ir_version = 10
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    return sha256_hex(data)


def chroma_key_model(path: Path) -> str:
    """alpha = clip(w . x + b, 0, 1) with x = 2 * rgb / 255 - 1, w and b chosen so SUBJECT -> 1, GREEN -> 0."""
    xs, xg = 2 * SUBJECT / 255 - 1, 2 * GREEN / 255 - 1
    d = xs - xg
    w = d / float(d @ d)
    b = -float(w @ xg)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w", "b"], ["z"]),
            helper.make_node("Clip", ["z", "lo", "hi"], ["alpha"]),
        ],
        "chroma_key",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], w.tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, [1], [b]),
            helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("hi", TensorProto.FLOAT, [], [1.0]),
        ],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def constant_alpha_model(path: Path, alpha: npt.NDArray[np.float32]) -> str:
    """Fixed input [1, 3, S, S]; answers `alpha` (S x S) whatever the image (plus 0 x the image, so it reads it)."""
    s = alpha.shape[0]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
            helper.make_node("Mul", ["grey", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "map"], ["alpha"]),
        ],
        "constant_alpha",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, s, s])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, s, s])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("map", TensorProto.FLOAT, [1, 1, s, s], alpha.ravel().tolist()),
        ],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def two_colour_scene(h: int, w: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """SUBJECT over GREEN with a soft round edge; the alpha is quantised the way the uint8 image is."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    alpha = np.clip((min(h, w) * 0.35 - np.hypot(yy - h / 2, xx - w / 2)) / 6.0, 0.0, 1.0)
    image = np.round(alpha[..., None] * SUBJECT + (1 - alpha[..., None]) * GREEN).astype(np.uint8)
    return image, alpha


def test_a_chroma_key_model_gives_the_scenes_alpha(tmp_path: Path) -> None:
    sha = chroma_key_model(tmp_path / "key.onnx")
    matting = load_matting_model(str(tmp_path / "key.onnx"), sha, side=256)
    assert matting is not None
    image, truth = two_colour_scene(256, 256)
    alpha = matting(image)
    assert alpha.shape == (256, 256) and alpha.dtype == np.float32
    np.testing.assert_allclose(alpha, truth, atol=0.01)  # uint8 rounding of the scene only
    # Another size: scaled to a 32-multiple input (long side 256) and the alpha scaled back.
    assert matting.input_size(300, 200) == (256, 160)
    image, truth = two_colour_scene(200, 300)
    alpha = matting(image)
    assert alpha.shape == (200, 300)
    assert float(np.abs(alpha - truth).mean()) < 0.01


def test_the_input_range_setting_matters(tmp_path: Path) -> None:
    sha = chroma_key_model(tmp_path / "key.onnx")
    image, truth = two_colour_scene(64, 64)
    wrong = load_matting_model(str(tmp_path / "key.onnx"), sha, side=64, input_range="0..1")
    assert wrong is not None
    assert float(np.abs(wrong(image) - truth).mean()) > 0.1  # the key was built for -1..1


def test_settings_off_and_bad_models_refused(tmp_path: Path) -> None:
    assert load_matting_model("", "") is None
    # A model with three output channels is not a matting model.
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["alpha"])],
        "rgb_out",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 3, "h", "w"])],
    )
    sha = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "rgb.onnx")
    with pytest.raises(ModelSignatureMismatch, match="LIKENESS_MATTING_MODEL_PATH"):
        load_matting_model(str(tmp_path / "rgb.onnx"), sha)
    with pytest.raises(ValueError, match="input range"):
        MattingModel(load_matting_model(str(tmp_path / "key.onnx"), chroma_key_model(tmp_path / "key.onnx")).model, input_range="0..255")  # type: ignore[union-attr,arg-type]


async def test_render_does_not_start_with_a_model_that_differs_from_its_digest(tmp_path: Path) -> None:
    sha = chroma_key_model(tmp_path / "key.onnx")
    wrong = "f" * 64 if sha != "f" * 64 else "e" * 64
    with pytest.raises(SystemExit, match=r"render cannot start: LIKENESS_MATTING_MODEL_PATH: .* has SHA-256"):
        await build(RenderSettings(blob_name_key=KEY, matting_model_path=str(tmp_path / "key.onnx"), matting_model_sha256=wrong))
    with pytest.raises(SystemExit, match="LIKENESS_MATTING_MODEL_SHA256 is empty"):
        await build(RenderSettings(blob_name_key=KEY, matting_model_path=str(tmp_path / "key.onnx")))
    with pytest.raises(SystemExit, match="does not exist"):
        await build(RenderSettings(blob_name_key=KEY, matting_model_path=str(tmp_path / "absent.onnx"), matting_model_sha256=sha))


def _person_map(s: int) -> tuple[npt.NDArray[np.float32], tuple[slice, slice], tuple[slice, slice]]:
    """A head-and-shoulders alpha on an S x S grid (the shoulders overlap the head), with a hole inside and a speck apart from it."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    head = np.clip((0.22 * s - np.hypot(xx - s / 2, (yy - 0.42 * s) * 0.8)) / 1.5, 0, 1)
    body = np.clip((np.minimum(yy - 0.66 * s, 0.4 * s - np.abs(xx - s / 2))) / 1.5, 0, 1)
    alpha = np.maximum(head, body)
    hole = (slice(int(0.82 * s), int(0.88 * s)), slice(int(0.45 * s), int(0.55 * s)))
    alpha[hole] = 0.0
    speck = (slice(2, 6), slice(2, 6))
    alpha[speck] = 1.0
    return alpha.astype(np.float32), hole, speck


def test_an_id_photo_uses_the_models_alpha(tmp_path: Path) -> None:
    s = 64
    person, hole, speck = _person_map(s)
    sha = constant_alpha_model(tmp_path / "const.onnx", person)
    matting = load_matting_model(str(tmp_path / "const.onnx"), sha)
    assert matting is not None and matting.input_size(413, 531) == (s, s)
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo = np.asarray(Image.open(fh).convert("RGB"))
    # The photo ends at the chest; the frame reaches lower. Rows repeated so the whole frame is photo.
    source = cv2.copyMakeBorder(photo, 0, 400, 200, 200, cv2.BORDER_REPLICATE)
    with TestLandmarker() as marks:
        face = marks.detect(source)[0]
    seen: list[tuple[int, ...]] = []

    def segment(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        seen.append(image.shape[:2])
        return np.ones(image.shape[:2], np.float32)  # the crown search's mask only

    spec = load_catalog().get("schengen-visa")
    frame = frame_of(spec, 300)
    made = idphoto.compose(source, face, segment, frame, spec.background, idphoto.Options(), None, matting)
    h, w = made.image.shape[:2]
    assert (w, h) == (frame.width_px, frame.height_px)
    assert (h, w) not in seen  # the selfie mask was not used for the cut-out
    expected = cv2.resize(person, (w, h), interpolation=cv2.INTER_LINEAR)
    expected[expected <= matte.ALPHA_NOISE] = 0.0  # faint haze is dropped as the model's noise
    ky, kx = h / s, w / s

    def scaled(region: tuple[slice, slice], grow: int) -> tuple[slice, slice]:
        ys, xs = region
        return (
            slice(max(0, int(ys.start * ky) - grow), int(ys.stop * ky) + grow),
            slice(max(0, int(xs.start * kx) - grow), int(xs.stop * kx) + grow),
        )

    hole_px, speck_px = scaled(hole, -3), scaled(speck, 3)
    assert made.alpha[speck_px].max() == 0.0  # not connected to the person: gone
    assert made.alpha[hole_px].min() == 1.0  # enclosed by the person: filled
    # Elsewhere the model's alpha as it is (a grid cell around the hole and the speck: the upsampling's reach).
    cell = int(max(ky, kx)) + 2
    rest = np.ones((h, w), bool)
    rest[scaled(hole, cell)] = rest[scaled(speck, cell)] = False
    assert float(np.abs(made.alpha - expected)[rest].max()) < 1e-5
    assert ((made.alpha > 0) & (made.alpha < 1)).sum() > 2000  # the soft edge came through
    # Outside the person the new background, exactly; inside it the photo.
    assert made.background is not None
    assert (made.image[made.alpha == 0.0] == made.background[made.alpha == 0.0]).all()
    assert float(np.abs(made.image[made.alpha == 1.0].astype(float) - made.background[made.alpha == 1.0]).mean()) > 40
