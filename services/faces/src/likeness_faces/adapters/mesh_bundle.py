"""What the mesh networks share whatever runs them (LiteRT on the CPU, PyTorch on CUDA): the
networks and the canonical face read from the verified face_landmarker.task, the input crop, and
the fits made of the networks' outputs.

The framing is the analyzer's: the crop it cuts (upright from MTCNN's eyes, centred on its box)
is the network's input as it is, so it cuts CROP_MARGIN times MTCNN's box. FaceLandmarker
(MediaPipe's task) finds the face again in the crop with its own detector and cuts a square 1.5
times that box; on crops of 1.3 to 2.0 times MTCNN's box, the landmarks' mean distance from
FaceLandmarker's (on a 256-pixel crop) was smallest at 1.5: 0.4-0.7 px on three portraits and
1.2 px on a small one (tests/test_faces_torch_mesh.py and test_faces_litert_mesh.py hold both
runners to this).

The facial transformation matrix (head pose) comes from the mesh by FaceLandmarker's own
geometry pipeline (domain/face_geometry.py) with the canonical face the same .task file holds.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from google.protobuf import empty_pb2
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from likeness_faces.domain import face_geometry
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.domain.model_outputs import MeshFit
from likeness_imaging.face_mesh import SURFACE_POINTS

INPUT_PX = 256  # the landmark network's input side
CROP_MARGIN = 1.5  # crop side over MTCNN's box side that frames a face as FaceLandmarker does
# A face is there when the network's presence score (a sigmoid) passes this; MediaPipe's
# FaceLandmarker drops a face under its default min_tracking_confidence of 0.5 the same way.
MIN_PRESENCE = 0.5

# face_blendshapes_graph.cc (MediaPipe): the 146 landmarks the blendshape network reads,
# and the names of its 52 outputs in order.
BLENDSHAPE_LANDMARKS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473,
    474, 475, 476, 477,
)  # fmt: skip
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

Crop = npt.NDArray[np.uint8]


def bundle(task_path: Path) -> tuple[bytes, bytes, bytes]:
    """The landmark and blendshape networks and the geometry pipeline's metadata."""
    names = ("face_landmarks_detector.tflite", "face_blendshapes.tflite", "geometry_pipeline_metadata_landmarks.binarypb")
    try:
        with zipfile.ZipFile(task_path) as bundle:
            landmarks, blendshapes, geometry = (bundle.read(name) for name in names)
            return landmarks, blendshapes, geometry
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelFilesError(f"{task_path.name} does not hold the mesh networks ({exc}); run `make setup`") from exc


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's fields in order, read without its schema (MediaPipe's geometry
    protos are not in its wheel): (number, value), an int for varint and fixed fields, the
    raw bytes for length-delimited ones."""
    message = empty_pb2.Empty()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(str(exc)) from exc
    return [(field.field_number, field.data) for field in UnknownFieldSet(message)]


def _floats(values: list[int | bytes]) -> npt.NDArray[np.float64]:
    """A repeated float field's values, each one fixed32 or packed runs of them."""
    parts = [np.frombuffer(v, dtype="<f4") if isinstance(v, bytes) else np.array([v], dtype="<u4").view("<f4") for v in values]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def canonical_face(metadata: bytes) -> face_geometry.CanonicalFace:
    """MediaPipe's GeometryPipelineMetadata: field 1 the canonical mesh (its field 3 the vertex
    buffer, five floats per vertex: x, y, z, u, v), field 2 the Procrustes weights (each a
    landmark id, field 1, and a weight, field 2)."""
    try:
        mesh = next(v for n, v in _fields(metadata) if n == 1)
        if not isinstance(mesh, bytes):
            raise ValueError("the canonical mesh is not a message")
        vertices = _floats([v for n, v in _fields(mesh) if n == 3]).reshape(-1, 5)[:, :3]
        weights = np.zeros(len(vertices))
        for number, value in _fields(metadata):
            if number == 2 and isinstance(value, bytes):
                entry = dict(_fields(value))
                weights[int(entry.get(1, 0))] = _floats([entry.get(2, 0)])[0]
    except (StopIteration, ValueError, IndexError) as exc:
        raise ModelFilesError(f"the face geometry metadata cannot be read ({exc}); run `make setup`") from exc
    if len(vertices) != SURFACE_POINTS or not weights.any():
        raise ModelFilesError(f"the canonical face has {len(vertices)} vertices and no weights; run `make setup`")
    return face_geometry.CanonicalFace(vertices=vertices, weights=weights)


def fits(
    points: npt.NDArray[np.float32],
    presence: npt.NDArray[np.float32],
    shapes: npt.NDArray[np.float32] | None,
    sizes: list[int],
    canonical: face_geometry.CanonicalFace,
) -> list[MeshFit | None]:
    """Per crop, the mesh in that crop's pixels (`sizes`: each crop's side) from the networks'
    outputs for N crops (points N×478×3 in input pixels, presence N scores 0..1, shapes N×52, or
    None when the blendshape network was not run: the fits have none); None where the presence
    score says no face is there."""
    present = presence >= MIN_PRESENCE
    matrices = np.zeros((len(sizes), 4, 4))
    if present.any():
        matrices[present] = face_geometry.transforms(points[present], INPUT_PX, INPUT_PX, canonical)
    out: list[MeshFit | None] = []
    for i, size in enumerate(sizes):
        if not present[i]:
            out.append(None)
            continue
        out.append(
            MeshFit(
                points=points[i].astype(np.float64) * (size / INPUT_PX),
                blendshapes={} if shapes is None else {name: float(v) for name, v in zip(BLENDSHAPE_NAMES, shapes[i], strict=True)},
                transform=matrices[i],
            )
        )
    return out


def at_input_size(crop: Crop) -> Crop:
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        raise ValueError(f"the mesh needs square RGB crops, got {crop.shape}")
    if crop.shape[0] == INPUT_PX:
        return np.ascontiguousarray(crop)
    interpolation = cv2.INTER_AREA if crop.shape[0] > INPUT_PX else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(crop, (INPUT_PX, INPUT_PX), interpolation=interpolation), dtype=np.uint8)
