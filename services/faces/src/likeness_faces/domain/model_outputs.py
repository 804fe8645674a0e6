"""What the models return for one face, in the pixel frame of the array they looked at."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# Moves N×2 points from one pixel frame to another.
PointMap = Callable[[FloatArray], FloatArray]


@dataclass(frozen=True)
class Detection:
    """box: (x1, y1, x2, y2); points: 5×2 in MTCNN's order, which for an upright face is
    subject's right eye, left eye, nose, right mouth corner, left mouth corner."""

    box: FloatArray
    score: float
    points: FloatArray

    def mapped(self, to_frame: PointMap) -> Detection:
        """The same face with box and points moved into another frame; the box stays
        axis-aligned, enclosing the mapped corners."""
        corners = np.array(
            [
                [self.box[0], self.box[1]],
                [self.box[2], self.box[1]],
                [self.box[0], self.box[3]],
                [self.box[2], self.box[3]],
            ]
        )
        moved = to_frame(corners)
        box = np.array([moved[:, 0].min(), moved[:, 1].min(), moved[:, 0].max(), moved[:, 1].max()])
        return Detection(box=box, score=self.score, points=to_frame(self.points))

    @property
    def area(self) -> float:
        return float(max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0))


@dataclass(frozen=True)
class MeshFit:
    """The mesh model's fit of one face.

    points: 478×3, x and y in pixels of the array it looked at, z in the same scale
        (MediaPipe's depth, origin near the head's centre, smaller is nearer the camera).
    blendshapes: the 52 scores by name; empty when they were not asked for.
    transform: MediaPipe's 4×4 facial transformation matrix (canonical face -> camera),
        None when the model gave none.
    """

    points: FloatArray
    blendshapes: dict[str, float]
    transform: FloatArray | None
