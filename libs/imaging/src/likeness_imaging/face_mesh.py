"""Topology of MediaPipe's 478-point face mesh: the one place its point indices are named.

The faces service produces the mesh (468 surface points, then 10 iris points) and measures
eye and mouth state on it; render warps, retouches and frames faces with it. Both read the
indices from here so they cannot drift apart.

Names are the subject's own sides: index 33 is the outer corner of the eye that an upright,
non-mirrored photo shows on the image's left, i.e. the subject's right eye.
"""

from __future__ import annotations

MESH_POINTS = 478  # with the iris points
SURFACE_POINTS = 468  # without them (the face surface alone)

# Closed loops, ordered so they can be filled as polygons.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
NOSTRILS = (98, 97, 2, 326, 327, 294, 278, 344, 440, 275, 4, 45, 220, 115, 48, 64)

# Single points.
FOREHEAD_TOP = 10
CHIN = 152
NOSE_TIP = 4
RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473
UPPER_INNER_LIP = 13
LOWER_INNER_LIP = 14
MOUTH_RIGHT_CORNER = 61
MOUTH_LEFT_CORNER = 291

# Six points per eye in the order p1..p6 of the eye-aspect-ratio formula:
# corner, upper lid, upper lid, other corner, lower lid, lower lid.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
