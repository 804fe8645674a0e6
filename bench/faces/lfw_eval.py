"""Detector recall and precision of the faces service on skimage's LFW subset.

skimage.data.lfw_subset() holds 200 greyscale 25×25 crops: the first 100 are faces from
Labeled Faces in the Wild (cropped forehead to chin), the last 100 are random patches of
other pictures. MTCNN cannot see a face that fills a 25 px frame edge to edge (its smallest
face is 20 px and its box reaches past chin and brow), so each crop is

1. upscaled 8× with bicubic interpolation to 200×200,
2. padded by a quarter of that on every side by repeating the edge pixels (300×300), so
   the face no longer touches the frame,
3. turned into RGB by repeating the grey channel,

then run through FaceAnalyzer exactly as the service runs it (detection only, the same
canvas, thresholds and turns as production). A crop counts as "face found" when at least
one face is reported. Recall = faces found among the 100 faces; precision = faces found
among the 100 faces over crops with a face reported among all 200.

Run: PYTHONPATH=services/faces/src .venv/bin/python bench/faces/lfw_eval.py
"""

from __future__ import annotations

import argparse
import asyncio
import os

import cv2
import numpy as np
import numpy.typing as npt
import skimage.data
import torch

from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import load_models
from likeness_faces.domain.faces import AnalyzeOptions
from likeness_faces.service import FaceAnalyzer

UPSCALE = 8
PAD_FRACTION = 0.25


def prepare(crop: npt.NDArray[np.float64], upscale: int, pad_fraction: float) -> npt.NDArray[np.uint8]:
    grey = np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8)
    size = grey.shape[0] * upscale
    big = cv2.resize(grey, (size, size), interpolation=cv2.INTER_CUBIC)
    pad = round(size * pad_fraction)
    framed = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.repeat(framed[:, :, None], 3, axis=2))


async def evaluate(analyzer: FaceAnalyzer, images: list[npt.NDArray[np.uint8]], options: AnalyzeOptions) -> list[bool]:
    found: dict[int, bool] = {}
    async for index, faces in analyzer.analyze_many((i, image, options) for i, image in enumerate(images)):
        if not isinstance(faces, list):
            raise faces
        found[index] = len(faces) > 0
    return [found[i] for i in range(len(images))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upscale", type=int, default=UPSCALE)
    parser.add_argument("--pad", type=float, default=PAD_FRACTION)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()

    crops = skimage.data.lfw_subset()
    is_face = np.arange(len(crops)) < 100
    images = [prepare(c, args.upscale, args.pad) for c in crops]
    models = load_models(default_model_dir(), torch_threads=args.threads)
    print(
        f"lfw_subset: {len(crops)} crops ({is_face.sum()} faces), each 25x25 -> x{args.upscale} bicubic, "
        f"edge-padded by {args.pad:.0%} -> {images[0].shape[1]}x{images[0].shape[0]}; device {models.device}, "
        f"torch threads {torch.get_num_threads()}"
    )

    async def run() -> None:
        analyzer = FaceAnalyzer(models.detector, models.landmarker)
        try:
            for label, options in (
                ("production (turns tried when nothing upright)", AnalyzeOptions(eye_mouth_state=False)),
                ("upright only", AnalyzeOptions(eye_mouth_state=False, try_rotations=False)),
            ):
                found = np.array(await evaluate(analyzer, images, options))
                tp = int((found & is_face).sum())
                fp = int((found & ~is_face).sum())
                recall = tp / int(is_face.sum())
                precision = tp / (tp + fp) if tp + fp else float("nan")
                print(
                    f"{label:48s} recall {recall:.3f} ({tp}/{int(is_face.sum())})  "
                    f"precision {precision:.3f} ({tp}/{tp + fp})  false positives {fp}/{int((~is_face).sum())}"
                )
        finally:
            await analyzer.close()

    asyncio.run(run())
    models.close()


if __name__ == "__main__":
    main()
