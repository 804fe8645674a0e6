"""The PyTorch runner of MediaPipe's .tflite networks computes what TFLite's own interpreter
(LiteRT) computes, on the three networks of face_landmarker.task, for any batch size; a file
with an operator it does not implement is refused by name."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from likeness_faces.adapters import tflite_torch
from likeness_faces.adapters.model_files import default_model_dir

NETWORKS = ("face_landmarks_detector.tflite", "face_blendshapes.tflite", "face_detector.tflite")


def _network(name: str) -> bytes:
    with zipfile.ZipFile(default_model_dir() / "face_landmarker.task") as bundle:
        return bundle.read(name)


def _litert(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]


def _inputs(graph: tflite_torch.TfliteGraph, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = graph.input_shapes[0]
    x = rng.random((count, *shape[1:]), dtype=np.float32)
    if len(shape) == 3:  # the blendshape network's landmark coordinates, in pixels
        x *= 256
    return x


def _relative(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / max(float(np.linalg.norm(expected)), 1e-12))


@pytest.mark.parametrize("name", NETWORKS)
def test_each_network_computes_what_tflite_computes(name: str) -> None:
    model = _network(name)
    graph = tflite_torch.load(model)
    for seed in (1, 2):
        x = _inputs(graph, 1, seed)
        with torch.inference_mode():
            ours = [t.numpy() for t in graph(torch.from_numpy(x))]
        theirs = _litert(model, x)
        assert len(ours) == len(theirs)
        for got, expected in zip(ours, theirs, strict=True):
            got = got.reshape(expected.shape)
            assert np.isfinite(got).all()
            # float32 throughout, as XNNPACK computes it: only summation order differs
            assert _relative(got, expected) < 1e-4, name


@pytest.mark.parametrize("name", NETWORKS)
def test_a_batch_gives_what_each_item_gives_alone(name: str) -> None:
    graph = tflite_torch.load(_network(name))
    x = torch.from_numpy(_inputs(graph, 3, 7))
    with torch.inference_mode():
        together = graph(x)
        alone = [graph(x[i : i + 1]) for i in range(3)]
    for k, output in enumerate(together):
        assert output.shape[0] == 3
        for i in range(3):
            torch.testing.assert_close(output[i : i + 1], alone[i][k], rtol=1e-4, atol=1e-4)


def test_the_landmark_network_runs_its_operators_in_file_order() -> None:
    graph = tflite_torch.load(_network("face_landmarks_detector.tflite"))
    # its float16 weights were widened at load, as TFLite's DEQUANTIZE does once
    assert "DEQUANTIZE" not in graph.operators
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D"} <= set(graph.operators)
    assert not any(buffer.dtype == torch.float16 for buffer in graph.buffers())


def test_a_network_with_an_operator_it_lacks_is_refused_by_name() -> None:
    # render's person matte: a decoder that upsamples with operators the face networks never use
    model = (default_model_dir() / "selfie_segmentation.tflite").read_bytes()
    with pytest.raises(tflite_torch.UnsupportedModelError, match="not supported"):
        tflite_torch.load(model)


@pytest.mark.parametrize("size,kernel,stride,expected", [(256, 3, 2, (0, 1)), (255, 3, 2, (1, 1)), (7, 5, 1, (2, 2)), (8, 2, 2, (0, 0))])
def test_same_padding_is_tensorflows(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert tflite_torch.same_padding(size, kernel, stride) == expected


def test_a_file_that_is_not_a_model_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"PK\x03\x04" + bytes(60))  # a zip, say, not the flatbuffer inside it
    with pytest.raises(tflite_torch.UnsupportedModelError, match="TFL3"):
        tflite_torch.load(path)
