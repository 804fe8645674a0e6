"""Merging detections of the same faces found under different turns of one image."""

from __future__ import annotations

from collections.abc import Iterable

from likeness_faces.domain.model_outputs import Detection

# Boxes of one face found upright and found sideways overlap well above this; boxes of
# neighbours in a group photo well below it.
SAME_FACE_IOU = 0.3


def iou(a: Detection, b: Detection) -> float:
    x1, y1 = max(a.box[0], b.box[0]), max(a.box[1], b.box[1])
    x2, y2 = min(a.box[2], b.box[2]), min(a.box[3], b.box[3])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def strongest_per_face(detections: Iterable[Detection], same_face_iou: float = SAME_FACE_IOU) -> list[Detection]:
    """One detection per face region, the best-scoring one: the turn under which a face
    looks most like a face is the one whose box and five points are right. All detections
    must already be in the same (the caller's) pixel frame."""
    kept: list[Detection] = []
    for candidate in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(iou(candidate, k) < same_face_iou for k in kept):
            kept.append(candidate)
    return kept
