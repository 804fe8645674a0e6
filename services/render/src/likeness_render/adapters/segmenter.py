"""MediaPipe selfie segmentation: a coarse person mask (the model sees 256x256)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from likeness_render.adapters.model_files import model_path


class SelfieSegmenter:
    """Loads the model once; ``mask`` is safe to call from several threads."""

    def __init__(self, model_dir: Path | None = None) -> None:
        options = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation.tflite", model_dir))),
            output_confidence_masks=True,
            output_category_mask=False,
        )
        self._segmenter = vision.ImageSegmenter.create_from_options(options)
        self._lock = threading.Lock()

    def mask(self, image_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Person confidence 0..1 at the image's size."""
        with self._lock:
            result = self._segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image_rgb)))
        mask = np.asarray(result.confidence_masks[-1].numpy_view(), dtype=np.float32)
        if mask.ndim == 3:
            mask = mask[..., 0]
        return np.clip(mask, 0.0, 1.0)

    def close(self) -> None:
        self._segmenter.close()

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
