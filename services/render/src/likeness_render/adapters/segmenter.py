"""Selfie segmentation: a coarse person mask (the model sees 256x256), run by LiteRT.

The model is MediaPipe's selfie segmenter, and it is fed as MediaPipe's ImageSegmenter feeds
it: the whole image stretched onto the 256x256 input corner to corner (bilinear, edges
repeated), values 0..1, and the confidence scaled back to the image's size (bilinear). The
masks are MediaPipe's to float rounding where the image is 256x256 or an integer multiple of
it, and within a few hundredths at a handful of edge pixels otherwise (its warp rounds its
sampling positions differently). Without MediaPipe's graph around the model a mask of an ID
photo's size took 10-30 % less CPU (8.8-11.6 ms against 11.8-13.2, same run, a slow hour).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter

from likeness_render.adapters.model_files import FETCH_HINT, ModelFileCorrupt, model_path

INPUT_PX = 256
_UNIT = np.float32(1.0 / 255.0)


class _Model:
    """One thread's interpreter (a LiteRT interpreter is not safe to share between threads)."""

    def __init__(self, model: bytes) -> None:
        # One thread: render already runs one photo per core on its own threads.
        self.interpreter = Interpreter(model_content=model, num_threads=1)
        self.interpreter.allocate_tensors()
        (given,), (made,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if tuple(given["shape"]) != (1, INPUT_PX, INPUT_PX, 3) or tuple(made["shape"])[:3] != (1, INPUT_PX, INPUT_PX):
            raise ValueError(f"not the selfie segmenter: input {tuple(given['shape'])}, output {tuple(made['shape'])}")
        self.given, self.made = given["index"], made["index"]

    def run(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """256x256 RGB -> 256x256 person confidence."""
        self.interpreter.set_tensor(self.given, (pixels.astype(np.float32) * _UNIT)[None])
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_tensor(self.made)[0, :, :, 0], np.float32)


class SelfieSegmenter:
    """Loads the model once; ``mask`` is safe to call from several threads (each runs an interpreter of its own)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        path = model_path("selfie_segmentation.tflite", model_dir)
        self._model = path.read_bytes()
        self._local = threading.local()
        try:
            # Built here once, so a file LiteRT cannot load stops the service at start (as every
            # unusable model file does), not a request.
            self._local.model = _Model(self._model)
        except (ValueError, RuntimeError) as exc:
            raise ModelFileCorrupt(f"LiteRT could not load {path.name}: {exc}; {FETCH_HINT}") from exc

    def mask(self, image_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Person confidence 0..1 at the image's size (`image_rgb`: H×W×3 uint8)."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8 or 0 in image_rgb.shape:
            raise ValueError(f"the segmenter takes H×W×3 uint8 RGB, got {image_rgb.shape} {image_rgb.dtype}")
        h, w = image_rgb.shape[:2]
        model: _Model | None = getattr(self._local, "model", None)
        if model is None:
            model = self._local.model = _Model(self._model)
        # Output pixel (x, y) samples the image at (x w / 256, y h / 256): its corners on the image's corners.
        stretch = np.array([[w / INPUT_PX, 0.0, 0.0], [0.0, h / INPUT_PX, 0.0]])
        pixels = cv2.warpAffine(
            np.ascontiguousarray(image_rgb),
            stretch,
            (INPUT_PX, INPUT_PX),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        confidence = model.run(pixels)
        if (h, w) != confidence.shape:
            confidence = np.asarray(cv2.resize(confidence, (w, h), interpolation=cv2.INTER_LINEAR))
        return np.clip(confidence, 0.0, 1.0)

    def close(self) -> None:
        self._local = threading.local()

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
