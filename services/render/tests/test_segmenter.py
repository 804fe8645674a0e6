"""Render's selfie segmenter (the model run by LiteRT) against MediaPipe's ImageSegmenter with the
same model file: the masks the ID-photo pipeline, the outfits and the templates are cut with."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import matplotlib.cbook
import mediapipe as mp
import numpy as np
import numpy.typing as npt
import pytest
import skimage.data
from mediapipe.tasks.python import BaseOptions, vision
from PIL import Image

from likeness_render.adapters.model_files import ModelFileCorrupt, model_path
from likeness_render.adapters.segmenter import SelfieSegmenter

RGB = npt.NDArray[np.uint8]


@pytest.fixture(scope="module")
def segmenter() -> Iterator[SelfieSegmenter]:
    with SelfieSegmenter() as s:
        yield s


@pytest.fixture(scope="module")
def mediapipes() -> Iterator[vision.ImageSegmenter]:
    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation.tflite"))),
        output_confidence_masks=True,
        output_category_mask=False,
    )
    with vision.ImageSegmenter.create_from_options(options) as theirs:
        yield theirs


def _theirs(segmenter: vision.ImageSegmenter, image: RGB) -> npt.NDArray[np.float32]:
    result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
    mask = np.asarray(result.confidence_masks[-1].numpy_view(), np.float32)
    return np.clip(mask[..., 0] if mask.ndim == 3 else mask, 0.0, 1.0)


def _photos() -> dict[str, RGB]:
    grace = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    astronaut = np.ascontiguousarray(skimage.data.astronaut())
    return {
        "astronaut 512x512": astronaut,
        "grace 512x600": grace,
        "grace 480x640": cv2.resize(grace, (480, 640), interpolation=cv2.INTER_AREA),
        "grace wide 700x300": cv2.resize(grace, (700, 300), interpolation=cv2.INTER_AREA),
        "astronaut 413x531": cv2.resize(astronaut, (413, 531), interpolation=cv2.INTER_AREA),
    }


def test_the_mask_is_mediapipes(segmenter: SelfieSegmenter, mediapipes: vision.ImageSegmenter) -> None:
    for name, image in _photos().items():
        ours, theirs = segmenter.mask(image), _theirs(mediapipes, image)
        assert ours.shape == image.shape[:2] and ours.dtype == np.float32
        assert ours.min() >= 0.0 and ours.max() <= 1.0
        apart = np.abs(ours - theirs)
        if name == "astronaut 512x512":
            # twice the model's input: both warps sample the same places
            assert apart.max() < 1e-4, name
        # measured: mean 1e-4 to 2.3e-4, max 0.04 to 0.14 at a few edge pixels
        assert apart.mean() < 1e-3 and np.percentile(apart, 99.9) < 0.05 and apart.max() < 0.3, (name, apart.mean(), apart.max())
        assert ((ours >= 0.5) != (theirs >= 0.5)).mean() < 5e-4, name


def test_threads_masking_at_once_each_get_what_one_thread_gets(segmenter: SelfieSegmenter) -> None:
    photos = list(_photos().values())
    alone = [segmenter.mask(image) for image in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(segmenter.mask, photos * 6))
    for mask, expected in zip(together, alone * 6, strict=True):
        np.testing.assert_array_equal(mask, expected)


def test_a_file_litert_cannot_load_stops_the_start_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "selfie_segmentation.tflite").write_bytes(b"not a model")
    # render's start-up turns this error into "render cannot start: ..." (main.py), as for a missing file.
    with pytest.raises(ModelFileCorrupt, match=r"LiteRT could not load selfie_segmentation\.tflite.*fetch_models"):
        SelfieSegmenter(tmp_path)


@pytest.mark.parametrize(
    "image",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3), np.float32), np.zeros((0, 64, 3), np.uint8)],
)
def test_what_is_not_an_rgb_image_is_refused_clearly(segmenter: SelfieSegmenter, image: npt.NDArray[np.generic]) -> None:
    with pytest.raises(ValueError, match="H×W×3 uint8 RGB"):
        segmenter.mask(image)  # type: ignore[arg-type]
