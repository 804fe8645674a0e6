"""The phone-sized test photos bench_faces.py and bench_faces_gpu.py share."""

from __future__ import annotations

import cv2
import matplotlib.cbook
import numpy as np
import numpy.typing as npt
import skimage.data
from PIL import Image

RGB = npt.NDArray[np.uint8]


def _place(portrait: RGB, width: int, height: int, face_height_share: float, left_share: float) -> RGB:
    """The portrait scaled so it is face_height_share of the frame's height, on a soft
    gradient background (a flat one would flatter the baseline's pyramid)."""
    ramp = np.linspace(90, 190, width, dtype=np.float32)[None, :, None]
    frame = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8).copy()
    scale = height * face_height_share / portrait.shape[0]
    pw, ph = int(portrait.shape[1] * scale), int(portrait.shape[0] * scale)
    resized = cv2.resize(portrait, (pw, ph), interpolation=cv2.INTER_CUBIC)
    x = int((width - pw) * left_share)
    y = (height - ph) // 2
    frame[y : y + ph, x : x + pw] = resized
    return frame


def photos() -> list[tuple[str, RGB]]:
    astronaut = np.ascontiguousarray(skimage.data.astronaut())
    grace = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    return [
        ("astronaut 12MP 4000x3000", _place(astronaut, 4000, 3000, 0.85, 0.4)),
        ("grace 12MP 3000x4000", _place(grace, 3000, 4000, 0.70, 0.5)),
        ("astronaut 3MP 2000x1500", _place(astronaut, 2000, 1500, 0.90, 0.7)),
        ("grace 2.8MP 1536x1824", _place(grace, 1536, 1824, 0.95, 0.5)),
        ("astronaut 4MP 2304x1728", _place(astronaut, 2304, 1728, 0.60, 0.2)),
        ("grace 12MP 4000x3000", _place(grace, 4000, 3000, 0.80, 0.6)),
    ]
