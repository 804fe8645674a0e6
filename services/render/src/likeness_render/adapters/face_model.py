"""An operator-mounted ONNX face-restoration model (GFPGAN / CodeFormer-style): an aligned face
crop in, the same crop restored out. Portrait fusion runs it on each fused face and blends the
answer back under the face mask, so the classical warp's softness and seams are redrawn by a
learned model; with no model mounted the classical pipeline runs alone.

Off unless LIKENESS_FACE_MODEL_PATH and LIKENESS_FACE_MODEL_SHA256 name a file; then it is
loaded at start (likeness_imaging.model_backend: digest and signature checked, a wrong file
stops the service). The model takes one float32 image [N, 3, H, W] and gives one float32
image of the same shape; a free size is LIKENESS_FACE_MODEL_SIDE square, a fixed one is
honoured. Pixels are scaled to -1..1 (GFPGAN, CodeFormer) or 0..1
(LIKENESS_FACE_MODEL_INPUT_RANGE), the answer read back the same way.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from likeness_imaging.model_backend import OnnxModel, TensorSpec, load_configured_model
from likeness_render.adapters.onnx_image import InputRange, check_input_range, model_input

RGB = npt.NDArray[np.uint8]

SETTING = "LIKENESS_FACE_MODEL"
INPUTS = (TensorSpec((None, 3, None, None)),)
OUTPUTS = (TensorSpec((None, 3, None, None)),)


class FaceRestorer:
    """Callable: an (H, W, 3) uint8 RGB face crop -> the restored crop, same size."""

    def __init__(self, model: OnnxModel, side: int = 512, input_range: InputRange = "-1..1") -> None:
        if side < 32:
            raise ValueError("the face model's input side must be at least 32")
        check_input_range(input_range)
        self.model = model
        self.side = side
        self.input_range = input_range
        _, _, fixed_h, fixed_w = model.inputs[0].shape
        self._size = (int(fixed_w), int(fixed_h)) if fixed_h is not None and fixed_w is not None else (side, side)

    def __call__(self, crop: RGB) -> RGB:
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError("the face model takes an (H, W, 3) uint8 RGB crop")
        h, w = crop.shape[:2]
        tw, th = self._size
        scaled = crop if (tw, th) == (w, h) else cv2.resize(crop, (tw, th), interpolation=cv2.INTER_AREA if tw < w else cv2.INTER_CUBIC)
        (out,) = self.model.run([model_input(scaled, self.input_range)])
        y = np.asarray(out[0], np.float32)
        if y.shape != (3, th, tw):
            raise ValueError(f"the face model answered {y.shape} for an input of {(3, th, tw)}")
        y = np.nan_to_num(y.transpose(1, 2, 0), nan=0.0)
        if self.input_range == "-1..1":
            y = (y + 1.0) * 0.5
        rgb = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if (tw, th) != (w, h):
            rgb = np.asarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if tw > w else cv2.INTER_CUBIC), dtype=np.uint8)
        return rgb


def load_face_model(path: str, sha256: str, side: int = 512, input_range: InputRange = "-1..1") -> FaceRestorer | None:
    """The configured model, or None when neither setting is set (ModelError when it cannot be used)."""
    model = load_configured_model(path, sha256, setting=SETTING, inputs=INPUTS, outputs=OUTPUTS)
    return None if model is None else FaceRestorer(model, side, input_range)
