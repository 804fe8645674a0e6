"""The ONNX model backend: checked file, checked signature, numerically right, bounded concurrency.

Every model here is built by the test with the `onnx` package, so nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from likeness_imaging.model_backend import (
    ModelChecksumMismatch,
    ModelError,
    ModelFileMissing,
    ModelInputInvalid,
    ModelOutputInvalid,
    ModelSignatureMismatch,
    TensorSpec,
    load_configured_model,
    load_onnx_model,
    sha256_hex,
)

WEIGHTS = np.array([0.5, -0.25, 0.75], dtype=np.float32)
BIAS = np.float32(-0.1)


def _save(model: onnx.ModelProto, path: Path) -> tuple[Path, str]:
    model.ir_version = 10
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    path.write_bytes(data)
    return path, sha256_hex(data)


def conv_sigmoid_model(path: Path, channels: int = 3) -> tuple[Path, str]:
    """image [1, C, H, W] -> alpha [1, 1, H, W] = sigmoid(1x1 conv with WEIGHTS + BIAS)."""
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, channels, 1, 1], WEIGHTS[:channels].tolist())
    bias = helper.make_tensor("b", TensorProto.FLOAT, [1], [float(BIAS)])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["alpha"])],
        "conv_sigmoid",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, "h", "w"])],
        [helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, "h", "w"])],
        initializer=[weights, bias],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def identity_model(path: Path, declared_out: list[Any]) -> tuple[Path, str]:
    """x -> y unchanged, with y declaring `declared_out` (which may lie)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, declared_out)],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


IMAGE_IN = (TensorSpec((1, 3, None, None), name="image"),)
ALPHA_OUT = (TensorSpec((1, 1, None, None)),)


def expected_alpha(image: np.ndarray) -> np.ndarray:
    z = np.einsum("c,nchw->nhw", WEIGHTS, image.astype(np.float64))[:, None] + BIAS
    return 1.0 / (1.0 + np.exp(-z))


def test_loads_and_infers_numerically(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    model = load_onnx_model(path, sha.upper(), inputs=IMAGE_IN, outputs=ALPHA_OUT, label="TEST_MODEL", device="cpu")
    assert model.providers == ["CPUExecutionProvider"]
    assert model.sha256 == sha
    assert model.inputs[0].name == "image" and model.inputs[0].shape == (1, 3, None, None)
    assert model.outputs[0].name == "alpha"
    image = np.random.default_rng(1).uniform(-2, 2, (1, 3, 5, 7)).astype(np.float32)
    (alpha,) = model.run({"image": image})
    assert alpha.shape == (1, 1, 5, 7) and alpha.dtype == np.float32
    np.testing.assert_allclose(alpha, expected_alpha(image), atol=1e-6)
    # By position too, any spatial size.
    other = np.zeros((1, 3, 2, 3), np.float32)
    (alpha0,) = model.run([other])
    np.testing.assert_allclose(alpha0, 1 / (1 + np.exp(0.1)), atol=1e-6)


def test_refuses_a_file_whose_digest_differs(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(ModelChecksumMismatch) as info:
        load_onnx_model(path, wrong, inputs=IMAGE_IN, outputs=ALPHA_OUT, label="LIKENESS_X_MODEL_PATH")
    message = str(info.value)
    assert sha in message and wrong in message and "LIKENESS_X_MODEL_PATH" in message
    # One byte changed in the file: refused although the setting is the original digest.
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelChecksumMismatch):
        load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT)


def test_refuses_missing_files_and_malformed_digests(tmp_path: Path) -> None:
    _, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    with pytest.raises(ModelFileMissing, match="does not exist"):
        load_onnx_model(tmp_path / "absent.onnx", sha, inputs=IMAGE_IN, outputs=ALPHA_OUT)
    with pytest.raises(ModelFileMissing, match="directory"):
        load_onnx_model(tmp_path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT)
    with pytest.raises(ModelError, match="64 hex digits"):
        load_onnx_model(tmp_path / "m.onnx", "abc123", inputs=IMAGE_IN, outputs=ALPHA_OUT)


def test_refuses_bytes_that_are_not_a_model(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx graph at all")
    with pytest.raises(ModelError, match="not a model onnxruntime can run"):
        load_onnx_model(junk, sha256_hex(junk.read_bytes()), inputs=IMAGE_IN, outputs=ALPHA_OUT)


@pytest.mark.parametrize(
    ("inputs", "outputs", "needle"),
    [
        ((TensorSpec((1, 4, None, None)),), ALPHA_OUT, "size 3 on axis 1"),
        ((TensorSpec((1, 3, None)),), ALPHA_OUT, "4 dimensions"),
        ((TensorSpec((1, 3, None, None), np.dtype(np.uint8)),), ALPHA_OUT, "element type tensor(float)"),
        ((TensorSpec((1, 3, None, None), name="input"),), ALPHA_OUT, "named 'image'"),
        (IMAGE_IN, (TensorSpec((1, 2, None, None)),), "output 'alpha' has size 1 on axis 1"),
        (IMAGE_IN, (*ALPHA_OUT, TensorSpec((1, 3, None, None))), "1 outputs"),
        ((*IMAGE_IN, TensorSpec((1,))), ALPHA_OUT, "1 inputs"),
    ],
)
def test_refuses_a_model_with_another_signature(
    tmp_path: Path, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...], needle: str
) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    with pytest.raises(ModelSignatureMismatch) as info:
        load_onnx_model(path, sha, inputs=inputs, outputs=outputs, label="LIKENESS_X_MODEL_PATH")
    assert needle in str(info.value) and "LIKENESS_X_MODEL_PATH" in str(info.value)


def test_checks_every_call(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    model = load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT)
    with pytest.raises(ModelInputInvalid, match="float64"):
        model.run({"image": np.zeros((1, 3, 4, 4))})
    with pytest.raises(ModelInputInvalid, match=r"shape \[1, 4, 4, 4\]"):
        model.run({"image": np.zeros((1, 4, 4, 4), np.float32)})
    with pytest.raises(ModelInputInvalid, match="'other'"):
        model.run({"other": np.zeros((1, 3, 4, 4), np.float32)})
    with pytest.raises(ModelInputInvalid, match="2 inputs given"):
        model.run([np.zeros((1, 3, 4, 4), np.float32)] * 2)


def test_refuses_outputs_that_contradict_the_declared_shape(tmp_path: Path) -> None:
    path, sha = identity_model(tmp_path / "id.onnx", ["n", 4])
    model = load_onnx_model(path, sha, inputs=(TensorSpec((None, 4)),), outputs=(TensorSpec((None, 4)),))
    (y,) = model.run([np.arange(8, dtype=np.float32).reshape(2, 4)])
    np.testing.assert_array_equal(y, np.arange(8).reshape(2, 4))
    # A model whose declared output (3 rows) is not what it produces (the input's rows).
    path, sha = identity_model(tmp_path / "liar.onnx", [3, 4])
    liar = load_onnx_model(path, sha, inputs=(TensorSpec((None, 4)),), outputs=(TensorSpec((None, 4)),))
    with pytest.raises(ModelOutputInvalid, match=r"shape \[2, 4\]"):
        liar.run([np.zeros((2, 4), np.float32)])


def test_configured_model_needs_path_and_digest_together(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    kwargs: dict[str, Any] = {"setting": "LIKENESS_MATTING_MODEL", "inputs": IMAGE_IN, "outputs": ALPHA_OUT}
    assert load_configured_model("", "", **kwargs) is None
    with pytest.raises(ModelError, match="LIKENESS_MATTING_MODEL_SHA256 is empty"):
        load_configured_model(str(path), "", **kwargs)
    with pytest.raises(ModelError, match="LIKENESS_MATTING_MODEL_PATH is empty"):
        load_configured_model(" ", sha, **kwargs)
    model = load_configured_model(str(path), sha, **kwargs)
    assert model is not None and model.label == "LIKENESS_MATTING_MODEL_PATH"


def test_device_choice(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    auto = load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT, device="auto")
    assert auto.providers[0] == ("CUDAExecutionProvider" if has_cuda else "CPUExecutionProvider")
    if has_cuda:
        assert load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT, device="cuda").providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(ModelError, match="CUDA was asked for"):
            load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT, device="cuda")


class _SlowSession:
    """Wraps a real session, records how many runs overlap."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.05)
        try:
            return list(self.inner.run(names, feeds))
        finally:
            with self.lock:
                self.now -= 1


async def test_infer_runs_off_the_loop_at_most_max_concurrency_at_once(tmp_path: Path) -> None:
    path, sha = conv_sigmoid_model(tmp_path / "m.onnx")
    model = load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT, max_concurrency=2)
    slow = _SlowSession(model._session)
    model._session = slow
    images = [np.full((1, 3, 3, 3), i / 4, np.float32) for i in range(6)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    tick_task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(model.infer({"image": image}) for image in images))
    finally:
        tick_task.cancel()
    assert slow.peak == 2  # overlapped, but never more than two
    assert ticks >= 10  # the loop kept running during ~150 ms of blocking inference
    for image, (alpha,) in zip(images, results, strict=True):
        np.testing.assert_allclose(alpha, expected_alpha(image), atol=1e-6)
    with pytest.raises(ValueError, match="max_concurrency"):
        load_onnx_model(path, sha, inputs=IMAGE_IN, outputs=ALPHA_OUT, max_concurrency=0)
