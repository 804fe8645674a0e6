"""Shoulders from BlazePose (MediaPipe's pose detector + full landmark model, from the pinned wheel).

The two ``.tflite`` files come from the ``mediapipe==0.10.21`` wheel (scripts/fetch_models.py)
and are checked against their SHA-256 before anything reads them. They carry no TFLite
metadata, which the Tasks ``PoseLandmarker`` of ``mediapipe==1.2.2`` needs for its input
normalisation: the metadata the legacy MediaPipe graphs configured in code is added here, in
memory (input range -1..1 for the detector, 0..1 for the landmark model, as
``pose_detection_cpu.pbtxt`` / ``pose_landmark_by_roi_cpu.pbtxt`` set it), and the two are
packed into a ``.task`` bundle that never touches the disk.
"""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path
from types import TracebackType

import cv2
import flatbuffers
import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.metadata import metadata_schema_py_generated as md
from mediapipe.tasks.metadata import schema_py_generated as tfl
from mediapipe.tasks.python import BaseOptions, vision

from likeness_render.adapters.model_files import verified_bytes
from likeness_render.domain.outfits import Body

# The digests pinned in scripts/fetch_models.py (a service image cannot import it).
POSE_DETECTOR = ("pose_detection.tflite", "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c")
POSE_LANDMARKS = ("pose_landmark_full.tflite", "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f")
# The model sees 256 px; a larger copy only costs time.
WORKING_SIDE = 512
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12


def _with_input_metadata(model: bytes, mean: float, std: float) -> bytes:
    """The TFLite model with metadata that declares an RGB image input normalised as (x - mean) / std."""
    parsed = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(model, 0))
    graph = parsed.subgraphs[0]
    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = [mean], [std]
    unit = md.ProcessUnitT()
    unit.optionsType, unit.options = md.ProcessUnitOptions.NormalizationOptions, norm
    image = md.ImagePropertiesT()
    image.colorSpace = md.ColorSpaceType.RGB
    content = md.ContentT()
    content.contentPropertiesType, content.contentProperties = md.ContentProperties.ImageProperties, image
    tensor_in = md.TensorMetadataT()
    tensor_in.name, tensor_in.content, tensor_in.processUnits = "image", content, [unit]
    outputs = []
    for index in graph.outputs:
        feature = md.ContentT()
        feature.contentPropertiesType, feature.contentProperties = md.ContentProperties.FeatureProperties, md.FeaturePropertiesT()
        tensor_out = md.TensorMetadataT()
        tensor_out.name, tensor_out.content = graph.tensors[index].name, feature
        outputs.append(tensor_out)
    sub = md.SubGraphMetadataT()
    sub.inputTensorMetadata, sub.outputTensorMetadata = [tensor_in], outputs
    meta = md.ModelMetadataT()
    meta.name, meta.subgraphMetadata, meta.minParserVersion = "blazepose", [sub], "1.0.0"
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), b"M001")
    buffer = tfl.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Output()), np.uint8)
    parsed.buffers.append(buffer)
    entry = tfl.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(parsed.buffers) - 1
    parsed.metadata = [*(parsed.metadata or []), entry]
    builder = flatbuffers.Builder(0)
    builder.Finish(parsed.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def pose_bundle(model_dir: Path | None = None) -> bytes:
    """The PoseLandmarker ``.task`` bundle from the two verified model files (ModelFileCorrupt when one is not)."""
    detector = verified_bytes(*POSE_DETECTOR, model_dir)
    landmarks = verified_bytes(*POSE_LANDMARKS, model_dir)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("pose_detector.tflite", _with_input_metadata(detector, 127.5, 127.5))
        bundle.writestr("pose_landmarks_detector.tflite", _with_input_metadata(landmarks, 0.0, 255.0))
    return out.getvalue()


class PoseEstimator:
    """Loads and checks the pose model once; ``body`` may be called from several threads (one at a time runs)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=pose_bundle(model_dir)),
            num_poses=1,
            output_segmentation_masks=False,
        )
        self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._lock = threading.Lock()

    def body(self, image_rgb: npt.NDArray[np.uint8]) -> Body | None:
        """The shoulder joints in `image_rgb`'s pixels (None when no person is found)."""
        h, w = image_rgb.shape[:2]
        k = min(1.0, WORKING_SIDE / max(h, w))
        small = cv2.resize(image_rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA) if k < 1 else image_rgb
        with self._lock:
            result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(small)))
        if not result.pose_landmarks:
            return None
        marks = result.pose_landmarks[0]
        sh, sw = small.shape[:2]

        def point(i: int) -> tuple[float, float]:
            return float(marks[i].x * sw / k), float(marks[i].y * sh / k)

        seen = min(min(marks[i].visibility or 0.0, marks[i].presence or 0.0) for i in (LEFT_SHOULDER, RIGHT_SHOULDER))
        return Body(point(LEFT_SHOULDER), point(RIGHT_SHOULDER), float(seen))

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
