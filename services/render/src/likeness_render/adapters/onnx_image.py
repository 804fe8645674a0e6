"""What render's image models (matting, face restoration) share: how an RGB crop becomes the model's input."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

# How a model wants its pixels scaled: -1..1 (MODNet, GFPGAN, CodeFormer) or 0..1.
InputRange = Literal["-1..1", "0..1"]


def check_input_range(value: str) -> None:
    if value not in get_args(InputRange):
        raise ValueError(f"input range must be -1..1 or 0..1, not {value!r}")


def model_input(rgb: npt.NDArray[np.uint8], input_range: InputRange) -> npt.NDArray[np.float32]:
    """An (H, W, 3) uint8 image as the [1, 3, H, W] float32 batch the model takes, scaled to `input_range`."""
    x = rgb.astype(np.float32) * np.float32(1 / 255)
    if input_range == "-1..1":
        x = x * np.float32(2) - np.float32(1)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
