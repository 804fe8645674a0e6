"""One way to run an operator-supplied ONNX model: checked file, checked tensors, bounded inference.

A service that lets an operator mount a model (matting, segmentation, ...) names it with two
settings, a file path and its SHA-256. `load_onnx_model` reads the file once, refuses it when it
is missing or its digest differs (the bytes hashed are the bytes loaded), opens an
`onnxruntime` session (CUDA when the runtime has it and the caller allows it, otherwise CPU) and
checks the model's inputs and outputs against what the caller expects, so a wrong model fails at
start, not on the first request. `OnnxModel.run` (blocking) and `OnnxModel.infer` (off the event
loop) check every call's tensors and never run more than `max_concurrency` inferences at once.

onnxruntime is imported only when a model is loaded: services that never load one do not pay for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Device = Literal["auto", "cpu", "cuda"]
# A dimension the caller expects: a fixed size, or None for any size.
Dim = int | None

FLOAT32: np.dtype[Any] = np.dtype(np.float32)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
# onnxruntime's element type names for the numpy dtypes a caller may expect.
_ORT_TYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(bool)": np.dtype(np.bool_),
}


class ModelError(RuntimeError):
    """A model file cannot be used; the message says which setting or tensor is wrong."""


class ModelFileMissing(ModelError):
    pass


class ModelChecksumMismatch(ModelError):
    pass


class ModelSignatureMismatch(ModelError):
    """The model's inputs or outputs are not the ones the caller was built for."""


class ModelInputInvalid(ModelError, ValueError):
    """A call passed tensors the model does not take (a bug in the caller)."""


class ModelOutputInvalid(ModelError):
    """The model produced a tensor of another shape or type than it declared."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output the caller expects: its name (None: whatever the model calls it),
    its element type and its dimensions (None: any size)."""

    shape: tuple[Dim, ...]
    dtype: np.dtype[Any] = FLOAT32
    name: str | None = None

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name or '<any name>'}: {self.dtype.name}[{dims}]"


@dataclass(frozen=True)
class BoundTensor:
    """An input or output as the loaded model declares it, matched to what the caller expects."""

    name: str
    dtype: np.dtype[Any]
    # The model's own dimensions: an int when fixed, None when symbolic (any size at run time).
    shape: tuple[int | None, ...]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _model_dims(declared: Sequence[Any]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else None for d in declared)


def _bind(kind: str, declared: Sequence[Any], expected: Sequence[TensorSpec], label: str) -> tuple[BoundTensor, ...]:
    """Match the model's declared tensors to the expected ones, in order, or refuse the model."""
    if len(declared) != len(expected):
        names = ", ".join(t.name for t in declared)
        wanted = "; ".join(e.describe() for e in expected)
        raise ModelSignatureMismatch(f"{label}: the model has {len(declared)} {kind}s ({names}); expected {len(expected)} ({wanted})")
    bound = []
    for tensor, spec in zip(declared, expected, strict=True):
        dtype = _ORT_TYPES.get(tensor.type)
        dims = _model_dims(tensor.shape)
        problem = ""
        if spec.name is not None and tensor.name != spec.name:
            problem = f"is named {tensor.name!r}"
        elif dtype != spec.dtype:
            problem = f"has element type {tensor.type}"
        elif len(dims) != len(spec.shape):
            problem = f"has {len(dims)} dimensions {list(tensor.shape)}"
        else:
            for axis, (have, want) in enumerate(zip(dims, spec.shape, strict=True)):
                if want is not None and have is not None and have != want:
                    problem = f"has size {have} on axis {axis} {list(tensor.shape)}"
                    break
        if problem:
            raise ModelSignatureMismatch(f"{label}: {kind} {tensor.name!r} {problem}; expected {spec.describe()}")
        assert dtype is not None
        bound.append(BoundTensor(tensor.name, dtype, dims))
    return tuple(bound)


def _check_array(kind: str, tensor: BoundTensor, value: np.ndarray, label: str, error: type[ModelError]) -> None:
    if value.dtype != tensor.dtype:
        raise error(f"{label}: {kind} {tensor.name!r} is {value.dtype.name}, the model takes {tensor.dtype.name}")
    if value.ndim != len(tensor.shape) or any(w is not None and w != h for h, w in zip(value.shape, tensor.shape, strict=True)):
        dims = ["?" if d is None else d for d in tensor.shape]
        raise error(f"{label}: {kind} {tensor.name!r} has shape {list(value.shape)}, the model declares {dims}")


def _providers(ort: Any, device: Device, label: str) -> list[str]:
    available = set(ort.get_available_providers())
    if device == "cpu":
        return [_CPU]
    if _CUDA in available:
        return [_CUDA, _CPU]
    if device == "cuda":
        raise ModelError(f"{label}: CUDA was asked for but this onnxruntime has no {_CUDA} (it has {sorted(available)})")
    return [_CPU]


class OnnxModel:
    """A loaded, checked ONNX model. Build it with `load_onnx_model`."""

    def __init__(
        self,
        session: Any,
        inputs: tuple[BoundTensor, ...],
        outputs: tuple[BoundTensor, ...],
        *,
        label: str,
        sha256: str,
        max_concurrency: int,
    ) -> None:
        self._session = session
        self.inputs = inputs
        self.outputs = outputs
        self.label = label
        self.sha256 = sha256
        self.max_concurrency = max_concurrency
        self._running = threading.BoundedSemaphore(max_concurrency)
        # Created on first use, inside the running loop; bounds callers waiting for a worker thread.
        self._waiting: asyncio.Semaphore | None = None

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(self, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run the model (blocking) on inputs given by name or in declared order; outputs in declared order."""
        by_name = self._feeds(feeds)
        with self._running:
            raw = self._session.run([t.name for t in self.outputs], by_name)
        results = [np.asarray(value) for value in raw]
        for tensor, value in zip(self.outputs, results, strict=True):
            _check_array("output", tensor, value, self.label, ModelOutputInvalid)
        return results

    async def infer(self, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> list[np.ndarray]:
        """`run` in a worker thread, at most `max_concurrency` at a time; the event loop stays free."""
        if self._waiting is None:
            self._waiting = asyncio.Semaphore(self.max_concurrency)
        async with self._waiting:
            return await asyncio.to_thread(self.run, feeds)

    def _feeds(self, feeds: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        if isinstance(feeds, Mapping):
            names = {t.name for t in self.inputs}
            if set(feeds) != names:
                raise ModelInputInvalid(f"{self.label}: inputs {sorted(feeds)} given, the model takes {sorted(names)}")
            values = [feeds[t.name] for t in self.inputs]
        else:
            values = list(feeds)
            if len(values) != len(self.inputs):
                raise ModelInputInvalid(f"{self.label}: {len(values)} inputs given, the model takes {len(self.inputs)}")
        for tensor, value in zip(self.inputs, values, strict=True):
            _check_array("input", tensor, np.asarray(value), self.label, ModelInputInvalid)
        return {t.name: np.asarray(v) for t, v in zip(self.inputs, values, strict=True)}


def load_onnx_model(
    path: str | Path,
    sha256: str,
    *,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    label: str = "model",
    device: Device = "auto",
    max_concurrency: int = 1,
    threads: int = 0,
) -> OnnxModel:
    """Load the ONNX model at `path` after checking its SHA-256 and its signature.

    `label` names the model in every error, e.g. the settings that configure it
    ("LIKENESS_MATTING_MODEL_PATH"). `threads` is onnxruntime's intra-op thread count (0: its default).
    Raises ModelFileMissing, ModelChecksumMismatch, ModelSignatureMismatch or ModelError.
    """
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    expected_sha = sha256.strip().lower()
    if not _SHA256.match(expected_sha):
        raise ModelError(f"{label}: the SHA-256 setting must be 64 hex digits, got {len(sha256.strip())} characters")
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ModelFileMissing(f"{label}: model file {file} does not exist") from None
    except IsADirectoryError:
        raise ModelFileMissing(f"{label}: {file} is a directory, not a model file") from None
    except OSError as exc:
        raise ModelFileMissing(f"{label}: model file {file} cannot be read ({exc.strerror or type(exc).__name__})") from None
    actual_sha = sha256_hex(data)
    if actual_sha != expected_sha:
        raise ModelChecksumMismatch(f"{label}: model file {file} has SHA-256 {actual_sha}, the setting says {expected_sha}; refusing it")

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=options, providers=_providers(ort, device, label))
    except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
        raise ModelError(f"{label}: {file} is not a model onnxruntime can run ({type(exc).__name__}: {str(exc)[:300]})") from None
    bound_inputs = _bind("input", session.get_inputs(), inputs, label)
    bound_outputs = _bind("output", session.get_outputs(), outputs, label)
    return OnnxModel(session, bound_inputs, bound_outputs, label=label, sha256=actual_sha, max_concurrency=max_concurrency)


def load_configured_model(
    path: str,
    sha256: str,
    *,
    setting: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    device: Device = "auto",
    max_concurrency: int = 1,
    threads: int = 0,
) -> OnnxModel | None:
    """The model two settings `<setting>_PATH` and `<setting>_SHA256` name, or None when both are empty.

    A path without a digest (or a digest without a path) is refused: an operator who mounts a
    model states which one, so a swapped file is caught at start.
    """
    if not path.strip() and not sha256.strip():
        return None
    if not path.strip():
        raise ModelError(f"{setting}_SHA256 is set but {setting}_PATH is empty")
    if not sha256.strip():
        raise ModelError(f"{setting}_PATH is set but {setting}_SHA256 is empty: state the model file's SHA-256")
    return load_onnx_model(
        path.strip(),
        sha256,
        inputs=inputs,
        outputs=outputs,
        label=f"{setting}_PATH",
        device=device,
        max_concurrency=max_concurrency,
        threads=threads,
    )
