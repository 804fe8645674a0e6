"""An operator's ONNX face-restoration model in portrait fusion: loaded from settings (digest and
signature checked), run on each fused face crop and blended back under the face mask only.

The models are built here with the `onnx` package: a "negative" (y = -x in -1..1, so every
pixel it touched is 255 - v, easy to see) and an "identity" at a fixed size."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from skimage import data

from likeness_imaging.model_backend import ModelChecksumMismatch, ModelSignatureMismatch, sha256_hex
from likeness_render.adapters.face_model import FaceRestorer, load_face_model
from likeness_render.domain import fusion
from likeness_render.main import RenderSettings, build

from .landmarks import TestLandmarker

# Render refuses to start without a blob-name key; any 32 random bytes do here.
KEY = base64.b64encode(os.urandom(32)).decode()

Mesh = npt.NDArray[np.float64]


def _save(model: onnx.ModelProto, path: Path) -> str:
    model.ir_version = 10
    onnx.checker.check_model(model)
    raw = model.SerializeToString()
    path.write_bytes(raw)
    return sha256_hex(raw)


def negative_model(path: Path) -> str:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["face"], ["restored"])],
        "negative",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("restored", TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def fixed_identity_model(path: Path, side: int) -> str:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["face"], ["restored"])],
        "identity",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("restored", TensorProto.FLOAT, [1, 3, side, side])],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.fixture(scope="module")
def faces() -> Iterator[tuple[tuple[npt.NDArray[np.uint8], Mesh], tuple[npt.NDArray[np.uint8], Mesh]]]:
    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as im:
        hopper = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    astro = data.astronaut()
    with TestLandmarker() as lm:
        h_mesh, a_mesh = lm.detect(hopper)[0].mesh, lm.detect(astro)[0].mesh
    assert h_mesh is not None and a_mesh is not None
    yield (astro, a_mesh), (hopper, h_mesh)


def test_the_model_runs_on_the_fused_face_only(tmp_path: Path, faces: tuple) -> None:
    (t_img, t_mesh), user = faces
    restorer = load_face_model(str(tmp_path / "neg.onnx"), negative_model(tmp_path / "neg.onnx"))
    assert isinstance(restorer, FaceRestorer)
    plain, masks = fusion.fuse(t_img, [t_mesh], [user], 60)
    restored, _ = fusion.fuse(t_img, [t_mesh], [user], 60, restore=restorer)
    mask = masks[0]
    amount = fusion.appearance_weight(0.6)
    inner = mask > 0.99
    assert inner.sum() > 2000
    # Under the mask the model's answer (the negative) is blended in by the appearance weight...
    want = plain[inner].astype(float) * (1 - amount) + (255.0 - plain[inner]) * amount
    assert float(np.abs(restored[inner] - want).mean()) < 1.5
    # ...and outside it nothing changed.
    assert np.array_equal(restored[mask == 0], plain[mask == 0])
    # Strength 0 is the template, model or not.
    assert np.array_equal(fusion.fuse(t_img, [t_mesh], [user], 0, restore=restorer).image, t_img)


def test_a_fixed_size_model_is_fed_its_size(tmp_path: Path, faces: tuple) -> None:
    (t_img, t_mesh), user = faces
    restorer = load_face_model(str(tmp_path / "id.onnx"), fixed_identity_model(tmp_path / "id.onnx", 64), input_range="0..1")
    assert restorer is not None
    crop = t_img[100:300, 150:350]
    out = restorer(np.ascontiguousarray(crop))
    assert out.shape == crop.shape  # resized to 64 for the model, back to the crop's size
    fused = fusion.fuse(t_img, [t_mesh], [user], 100, restore=restorer).image
    assert fused.shape == t_img.shape


def test_no_model_is_the_classical_pipeline_and_bad_models_are_refused(tmp_path: Path) -> None:
    assert load_face_model("", "") is None
    sha = negative_model(tmp_path / "neg.onnx")
    with pytest.raises(ModelChecksumMismatch):
        load_face_model(str(tmp_path / "neg.onnx"), "0" * 64 if sha != "0" * 64 else "1" * 64)
    # One channel out is a matting model, not a face model.
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["face"], ["restored"], axes=[1], keepdims=1)],
        "grey",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("restored", TensorProto.FLOAT, [1, 1, "h", "w"])],
    )
    grey = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "grey.onnx")
    with pytest.raises(ModelSignatureMismatch, match="LIKENESS_FACE_MODEL_PATH"):
        load_face_model(str(tmp_path / "grey.onnx"), grey)


async def test_render_does_not_start_with_a_face_model_it_cannot_check(tmp_path: Path) -> None:
    sha = negative_model(tmp_path / "neg.onnx")
    wrong = "f" * 64 if sha != "f" * 64 else "e" * 64
    with pytest.raises(SystemExit, match=r"render cannot start: LIKENESS_FACE_MODEL_PATH: .* has SHA-256"):
        await build(RenderSettings(blob_name_key=KEY, face_model_path=str(tmp_path / "neg.onnx"), face_model_sha256=wrong))
    with pytest.raises(SystemExit, match="LIKENESS_FACE_MODEL_SHA256 is empty"):
        await build(RenderSettings(blob_name_key=KEY, face_model_path=str(tmp_path / "neg.onnx")))
