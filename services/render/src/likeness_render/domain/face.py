"""Face geometry the render pipeline needs, from a 478-point mesh and/or five points.

Coordinates are pixels of the image the face was found in, x right, y down. "Left" and
"right" are the subject's own sides (the subject's right eye is on the image's left), as in
the faces service's contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from likeness_imaging.face_mesh import (
    CHIN,
    FACE_OVAL,
    LEFT_EYE,
    LEFT_IRIS_CENTER,
    MESH_POINTS,
    MOUTH_LEFT_CORNER,
    MOUTH_RIGHT_CORNER,
    NOSE_TIP,
    RIGHT_EYE,
    RIGHT_IRIS_CENTER,
    SURFACE_POINTS,
)

FloatArray = npt.NDArray[np.float64]

# Five-point fallbacks, fitted on the 478-point mesh of frontal faces: the chin lies below the
# mouth by this fraction of the eye-to-mouth distance, and the crown (top of the hair)
# above the eyes by this fraction of the eye-to-chin distance. Only used without a mesh, or
# when the matte cannot show the crown (head cut off by the source's top edge).
CHIN_BELOW_MOUTH = 0.82
CROWN_ABOVE_EYES = 1.15


@dataclass(frozen=True)
class FaceGeometry:
    """One face. ``five_points`` order: right eye, left eye, nose tip, mouth right, mouth
    left (subject sides, like the faces service's ``FivePoints.as_tuple()``)."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    mesh: FloatArray | None = None  # (478, 2); (468, 2) without iris points also works
    five_points: FloatArray | None = None  # (5, 2)

    def __post_init__(self) -> None:
        if self.mesh is None and self.five_points is None:
            raise ValueError("a face needs its mesh or its five points")
        if self.mesh is not None and (self.mesh.ndim != 2 or self.mesh.shape[0] < SURFACE_POINTS):
            raise ValueError(f"mesh must be (478, 2) or (468, 2), got {self.mesh.shape}")
        if self.five_points is not None and self.five_points.shape != (5, 2):
            raise ValueError(f"five_points must be (5, 2), got {self.five_points.shape}")

    def _eye(self, iris: int, contour: tuple[int, ...], five_index: int) -> FloatArray:
        """An eye centre: the iris point, else the middle of the eye contour, else the five-point eye."""
        if self.mesh is not None:
            if self.mesh.shape[0] >= MESH_POINTS:
                return self.mesh[iris]
            return self.mesh[list(contour)].mean(axis=0)
        assert self.five_points is not None
        return self.five_points[five_index]

    @property
    def right_eye(self) -> FloatArray:
        return self._eye(RIGHT_IRIS_CENTER, RIGHT_EYE, 0)

    @property
    def left_eye(self) -> FloatArray:
        return self._eye(LEFT_IRIS_CENTER, LEFT_EYE, 1)

    @property
    def eye_centre(self) -> FloatArray:
        return (self.right_eye + self.left_eye) / 2.0

    @property
    def mouth_centre(self) -> FloatArray:
        if self.mesh is not None:
            return (self.mesh[MOUTH_RIGHT_CORNER] + self.mesh[MOUTH_LEFT_CORNER]) / 2.0
        assert self.five_points is not None
        return (self.five_points[3] + self.five_points[4]) / 2.0

    @property
    def chin(self) -> FloatArray:
        if self.mesh is not None:
            return self.mesh[CHIN]
        mouth = self.mouth_centre
        return mouth + CHIN_BELOW_MOUTH * (mouth - self.eye_centre)

    @property
    def roll_deg(self) -> float:
        """Angle of the right-eye → left-eye line from the image x axis (y down)."""
        d = self.left_eye - self.right_eye
        return math.degrees(math.atan2(float(d[1]), float(d[0])))

    @property
    def span_x(self) -> tuple[float, float]:
        """Horizontal extent of the face (mesh oval, else the box)."""
        if self.mesh is not None:
            xs = self.mesh[list(FACE_OVAL), 0]
            return float(xs.min()), float(xs.max())
        return self.box[0], self.box[2]

    @property
    def width(self) -> float:
        lo, hi = self.span_x
        return hi - lo

    @property
    def centre_x(self) -> float:
        lo, hi = self.span_x
        return (lo + hi) / 2.0

    def estimated_crown(self) -> FloatArray:
        """Crown from face proportions, for when the matte cannot show it."""
        eyes = self.eye_centre
        return eyes - CROWN_ABOVE_EYES * (self.chin - eyes)

    def transformed(self, affine: FloatArray) -> FaceGeometry:
        """The same face after a 2x3 affine map (e.g. source → output frame)."""

        def apply(points: FloatArray) -> FloatArray:
            return points @ affine[:, :2].T + affine[:, 2]

        x1, y1, x2, y2 = self.box
        corners = apply(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]], dtype=np.float64))
        box = (
            float(corners[:, 0].min()),
            float(corners[:, 1].min()),
            float(corners[:, 0].max()),
            float(corners[:, 1].max()),
        )
        return FaceGeometry(
            box=box,
            mesh=None if self.mesh is None else apply(self.mesh),
            five_points=None if self.five_points is None else apply(self.five_points),
        )

    def without_mesh(self) -> FaceGeometry:
        """Five points only (the shape the faces service returns when the mesh model fails)."""
        five = self.five_points if self.five_points is not None else self.derived_five_points()
        return FaceGeometry(box=self.box, mesh=None, five_points=five)

    def derived_five_points(self) -> FloatArray:
        if self.five_points is not None:
            return self.five_points
        assert self.mesh is not None
        m = self.mesh
        return np.stack([self.right_eye, self.left_eye, m[NOSE_TIP], m[MOUTH_RIGHT_CORNER], m[MOUTH_LEFT_CORNER]])
