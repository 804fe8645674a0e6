"""Quarter turns of an image and the mapping of points back to the unturned image.

Used to find portraits whose pixels are stored sideways or upside down (no EXIF applied):
the detector looks at a turned copy and the results are mapped back, so callers only
ever see coordinates of the image they sent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from likeness_faces.domain.model_outputs import FloatArray, PointMap


def turn(image: npt.NDArray[np.uint8], quarter_turns: int) -> npt.NDArray[np.uint8]:
    """The image turned counter-clockwise by quarter_turns × 90°, as np.rot90 does."""
    return np.ascontiguousarray(np.rot90(image, quarter_turns % 4))


def unturn_points(quarter_turns: int, width: int, height: int) -> PointMap:
    """Maps points of turn(image, quarter_turns) back to image, whose size is width × height.

    Continuous coordinates: pixel (column c, row r) covers [c, c+1) × [r, r+1).
    """
    k = quarter_turns % 4

    def back(points: FloatArray) -> FloatArray:
        xs, ys = points[:, 0], points[:, 1]
        if k == 0:
            out = (xs, ys)
        elif k == 1:  # turned counter-clockwise: x' = y, y' = width - x
            out = (width - ys, xs)
        elif k == 2:
            out = (width - xs, height - ys)
        else:  # turned clockwise: x' = height - y, y' = x
            out = (ys, height - xs)
        return np.stack(out, axis=1).astype(np.float64)

    return back
