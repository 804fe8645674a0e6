"""Writes render's photographic hair materials (services/render/src/likeness_render/data/hair/):
real hair cut out of the public-domain portraits that ship inside packages.

Source: NASA's portrait of Eileen Collins (``skimage.data.astronaut()``, public domain),
upscaled to the material size as the demo templates are; landmarks from MediaPipe's face
landmarker, the matte from render's ID-photo matting on the selfie segmenter's mask.
Grace Hopper's portrait is not used: her hair is under a hat.

    .venv/bin/python scripts/make_hair_materials.py
"""

from __future__ import annotations

from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision
from skimage import data

from likeness_render.adapters.model_files import model_path
from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import hair_photo, hair_styles, matte, templates
from likeness_render.domain.hair import canonical_to_image

OUT = Path(__file__).resolve().parents[1] / "services/render/src/likeness_render/data/hair"


def main() -> None:
    image, _ = templates.at_material_size(data.astronaut())
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("face_landmarker.task"))), running_mode=vision.RunningMode.IMAGE
    )
    with vision.FaceLandmarker.create_from_options(options) as lm, SelfieSegmenter() as seg:
        h, w = image.shape[:2]
        found = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
        mesh = np.array([[p.x * w, p.y * h] for p in found.face_landmarks[0]], np.float64)
        coarse = seg.mask(image)
    centre = (float(mesh[:, 0].mean()), float(mesh[:, 1].mean()))
    cut = matte.cut_out(image, coarse, centre)
    c = hair_styles.canvas_geometry()
    material = hair_photo.extract(
        image, mesh, cut.alpha, cut.foreground, canonical_to_image(mesh), c, "NASA, Eileen Collins (public domain), via scikit-image"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    hair_photo.save(material, OUT / "collins_bob.png")
    print(f"wrote {OUT / 'collins_bob.png'}: hairline {len(material.hairline)} points, ears {material.ears}")


if __name__ == "__main__":
    main()
