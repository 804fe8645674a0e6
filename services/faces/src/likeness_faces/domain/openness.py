"""Eye and mouth openness from the 478-point mesh.

Ratios of lid (lip) gap to eye (mouth) width, so they do not depend on face size or roll.
"""

from __future__ import annotations

import numpy as np

from likeness_faces.domain.faces import Openness
from likeness_faces.domain.model_outputs import FloatArray
from likeness_imaging import face_mesh as mt

# Eye aspect ratio on MediaPipe's mesh: about 0.30 for an open eye, under 0.10 when shut.
EAR_CLOSED = 0.10
EAR_OPEN = 0.27
# Inner-lip gap over mouth width: 0 with lips together, about 0.5 for a wide-open mouth.
MOUTH_RATIO_OPEN = 0.5


def eye_aspect_ratio(mesh: FloatArray, indices: tuple[int, int, int, int, int, int]) -> float:
    p = mesh[list(indices), :2]
    width = float(np.linalg.norm(p[0] - p[3]))
    if width <= 0:
        return 0.0
    gap = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / 2
    return gap / width


def mouth_ratio(mesh: FloatArray) -> float:
    width = float(np.linalg.norm(mesh[mt.MOUTH_RIGHT_CORNER, :2] - mesh[mt.MOUTH_LEFT_CORNER, :2]))
    if width <= 0:
        return 0.0
    return float(np.linalg.norm(mesh[mt.UPPER_INNER_LIP, :2] - mesh[mt.LOWER_INNER_LIP, :2])) / width


def _unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def openness(mesh: FloatArray) -> Openness:
    span = EAR_OPEN - EAR_CLOSED
    return Openness(
        left_eye=_unit((eye_aspect_ratio(mesh, mt.LEFT_EYE_EAR) - EAR_CLOSED) / span),
        right_eye=_unit((eye_aspect_ratio(mesh, mt.RIGHT_EYE_EAR) - EAR_CLOSED) / span),
        mouth=_unit(mouth_ratio(mesh) / MOUTH_RATIO_OPEN),
    )
