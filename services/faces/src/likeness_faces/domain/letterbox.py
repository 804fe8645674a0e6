"""Fitting images of any size into the few fixed canvas shapes the detector batches on.

MTCNN can only run a batch of equally sized arrays, and its cost is set by the canvas size
over the smallest face it looks for, not by the photo's resolution. So every image is
resized (down, or up when small) to fit one of three canvases of the same long side —
landscape 4:3, portrait 3:4 or square, whichever wastes least — and padded with mid-grey,
which MTCNN's normalisation turns into zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from likeness_faces.domain.model_outputs import FloatArray

PAD_VALUE = 127


@dataclass(frozen=True)
class Letterbox:
    """The image was resized to resized_width × resized_height and placed at the canvas's
    top-left corner."""

    image_width: int
    image_height: int
    resized_width: int
    resized_height: int
    canvas_width: int
    canvas_height: int

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return (self.canvas_height, self.canvas_width)

    @property
    def scale(self) -> float:
        """Canvas pixels per image pixel (the mean of the two axes, which differ by rounding)."""
        return (self.resized_width / self.image_width + self.resized_height / self.image_height) / 2

    def to_image(self, points: FloatArray) -> FloatArray:
        factors = np.array([self.image_width / self.resized_width, self.image_height / self.resized_height])
        mapped: FloatArray = np.asarray(points * factors, dtype=np.float64)
        return mapped


def canvas_shapes(long_side: int) -> list[tuple[int, int]]:
    """(width, height) of the canvases for a long side; short sides rounded to 4 px."""
    short = round(long_side * 3 / 4 / 4) * 4
    return [(long_side, short), (short, long_side), (long_side, long_side)]


def plan(width: int, height: int, long_side: int) -> Letterbox:
    best: tuple[float, int, int, float] | None = None
    for cw, ch in canvas_shapes(long_side):
        scale = min(cw / width, ch / height)
        fill = (width * scale) * (height * scale) / (cw * ch)
        if best is None or fill > best[0] + 1e-9:
            best = (fill, cw, ch, scale)
    assert best is not None
    _, cw, ch, scale = best
    return Letterbox(
        image_width=width,
        image_height=height,
        resized_width=min(cw, max(1, round(width * scale))),
        resized_height=min(ch, max(1, round(height * scale))),
        canvas_width=cw,
        canvas_height=ch,
    )


def resize(image: npt.NDArray[np.uint8], box: Letterbox) -> npt.NDArray[np.uint8]:
    """The image at the size it takes on the canvas."""
    return scaled(image, box.resized_width, box.resized_height)


def scaled(image: npt.NDArray[np.uint8], w: int, h: int) -> npt.NDArray[np.uint8]:
    """The image at w × h.

    Shrinking averages every source pixel (OpenCV's INTER_AREA; plain bilinear downscaling
    aliases, and MTCNN's pyramid then finds a face a few pixels elsewhere in a re-encoded copy
    of the same photo). INTER_AREA at a fractional ratio is slow on a large image (40-75 ms
    for 12 MP), at a whole-number ratio it is a fast block average: so the image is first
    reduced by the largest whole factor f that keeps it at least w × h, and only the small
    rest is resampled fractionally (12 MP to a 768 canvas: 75 -> about 15 ms). The last
    src % f rows and columns are left out of the blocks: the content moves by less than one
    target pixel at the far edge.
    """
    src_h, src_w = image.shape[:2]
    if src_w == w and src_h == h:
        return image
    if w > src_w or h > src_h:
        return np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    factor = min(src_w // w, src_h // h)
    if factor >= 2:
        blocks_w, blocks_h = src_w // factor, src_h // factor
        blocks = cv2.resize(image[: blocks_h * factor, : blocks_w * factor], (blocks_w, blocks_h), interpolation=cv2.INTER_AREA)
        image = np.asarray(blocks, dtype=np.uint8)
        if (blocks_w, blocks_h) == (w, h):
            return image
    return np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def pad(resized: npt.NDArray[np.uint8], box: Letterbox) -> npt.NDArray[np.uint8]:
    """The canvas: the image (resized unless already at the box's size) at the top-left, grey around."""
    resized = resize(resized, box)
    canvas = np.full((box.canvas_height, box.canvas_width, 3), PAD_VALUE, dtype=np.uint8)
    canvas[: box.resized_height, : box.resized_width] = resized
    return canvas


def apply(image: npt.NDArray[np.uint8], box: Letterbox) -> npt.NDArray[np.uint8]:
    return pad(resize(image, box), box)
