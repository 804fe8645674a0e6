"""Indices into MediaPipe's 478-point face mesh that the measures here rely on.

Names are the subject's sides: index 33 is the outer corner of the eye that an upright,
non-mirrored photo shows on the image's left, i.e. the subject's right eye.
"""

from __future__ import annotations

MESH_POINTS = 478

# Six points per eye in the order p1..p6 of the eye-aspect-ratio formula:
# corner, upper lid, upper lid, other corner, lower lid, lower lid.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)

RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473

UPPER_INNER_LIP = 13
LOWER_INNER_LIP = 14
MOUTH_RIGHT_CORNER = 61
MOUTH_LEFT_CORNER = 291
