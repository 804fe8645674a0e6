"""An operator-mounted ONNX portrait-matting model (MODNet-style): RGB in, alpha out.

Off unless LIKENESS_MATTING_MODEL_PATH and LIKENESS_MATTING_MODEL_SHA256 name a file; then it
is loaded at start (likeness_imaging.model_backend: digest and signature checked, a wrong file
stops the service) and predicts the alpha of every ID photo's output-size crop in place of the
selfie mask + closed-form solve.

The model takes one float32 image [N, 3, H, W] (N 1 or free, H and W fixed or free) and gives
one float32 alpha [N, 1, H, W] in 0..1. Free sizes: the crop is scaled so its long side is
LIKENESS_MATTING_MODEL_SIDE, both sides rounded to a multiple of 32 (what MODNet-like encoders
need). Pixels are scaled to -1..1 (MODNet) or 0..1 (LIKENESS_MATTING_MODEL_INPUT_RANGE).
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.model_backend import OnnxModel, TensorSpec, load_configured_model
from likeness_render.adapters.onnx_image import InputRange, check_input_range, model_input

RGB = npt.NDArray[np.uint8]
Alpha = npt.NDArray[np.float32]

SETTING = "LIKENESS_MATTING_MODEL"
INPUTS = (TensorSpec((None, 3, None, None)),)
OUTPUTS = (TensorSpec((None, 1, None, None)),)
STRIDE = 32


class MattingModel:
    """Callable: an (H, W, 3) uint8 RGB crop -> its (H, W) float32 alpha in 0..1."""

    def __init__(self, model: OnnxModel, side: int = 512, input_range: InputRange = "-1..1") -> None:
        if side < STRIDE:
            raise ValueError(f"the matting model's input side must be at least {STRIDE}")
        check_input_range(input_range)
        self.model = model
        self.side = side
        self.input_range = input_range
        _, _, fixed_h, fixed_w = model.inputs[0].shape
        self._fixed = (fixed_w, fixed_h) if fixed_h is not None and fixed_w is not None else None

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model sees for a crop of this size."""
        if self._fixed is not None:
            return int(self._fixed[0]), int(self._fixed[1])
        k = self.side / max(width, height)
        return (max(STRIDE, round(width * k / STRIDE) * STRIDE), max(STRIDE, round(height * k / STRIDE) * STRIDE))

    def __call__(self, image: RGB) -> Alpha:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError("the matting model takes an (H, W, 3) uint8 RGB image")
        h, w = image.shape[:2]
        tw, th = self.input_size(w, h)
        scaled = image if (tw, th) == (w, h) else cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if tw < w else cv2.INTER_LINEAR)
        (out,) = self.model.run([model_input(scaled, self.input_range)])
        alpha = np.asarray(out[0, 0], np.float32)
        if alpha.shape != (th, tw):
            raise ValueError(f"the matting model answered {alpha.shape} for an input of {(th, tw)}")
        if (tw, th) != (w, h):
            alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)


def load_matting_model(path: str, sha256: str, side: int = 512, input_range: InputRange = "-1..1") -> MattingModel | None:
    """The configured model, or None when neither setting is set (ModelError when it cannot be used)."""
    model = load_configured_model(path, sha256, setting=SETTING, inputs=INPUTS, outputs=OUTPUTS)
    return None if model is None else MattingModel(model, side, input_range)
