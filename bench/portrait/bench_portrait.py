"""Portraits and hairstyles: how they look in numbers (quality.py: identity, skin, seams,
hairline, ears), then the latency of one portrait (face fusion) and one hairstyle change
against the landmarker passes they need, in the same run.

Baseline: the 478-point landmarker on the user image and on the template image (what a
pipeline without registered template meshes would run for every request). Portrait: the
landmarker on the user image only (template meshes are computed at registration) plus the
fusion. Hairstyle: landmarker + selfie matte + the hair change, cycling through styles.
Users: grace_hopper at 512x600 and the same photo upscaled to 12 MP (4000x3000 canvas).

    .venv/bin/python bench/portrait/bench_portrait.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import matplotlib.cbook
import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision
from PIL import Image
from skimage import data

from likeness_render.adapters.model_files import model_path
from likeness_render.domain import fusion, hair, templates

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality

RUNS = 20
WARMUP = 3


def timed(fn: Callable[[int], object], runs: int | None = None) -> list[float]:
    runs = runs or RUNS
    for i in range(WARMUP):
        fn(i)
    out = []
    for i in range(runs):
        t = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t)
    return out


def p(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1000.0


def row(name: str, samples: list[float], base: list[float]) -> None:
    ratio = statistics.median(samples) / statistics.median(base)
    print(f"  {name:<46} p50 {p(samples, 50):7.1f} ms  p95 {p(samples, 95):7.1f} ms  x{ratio:5.2f} of baseline")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="strength 60 only and fewer timing runs: a smoke run")
    ap.add_argument("--out", type=Path, default=None, help="write before/after PNGs of the quality pass here")
    ap.add_argument("--latency-only", action="store_true", help="skip the quality pass")
    args = ap.parse_args()
    if not args.latency_only:
        quality.run(out_dir=args.out, strengths=[60] if args.quick else [30, 60, 100])
    global RUNS
    if args.quick:
        RUNS = 5
    cv2.setNumThreads(2)
    with Image.open(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as im:
        user = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[:] = user[5, 5]
    scaled = cv2.resize(user, (2560, 3000), interpolation=cv2.INTER_CUBIC)
    big[:, 720:3280] = scaled
    template_img = data.astronaut()
    # Hairstyles need a bare head (Grace Hopper wears her cap: refused): Eileen Collins, also on a 12 MP canvas.
    big_astro = np.zeros((3000, 4000, 3), np.uint8)
    big_astro[:] = template_img[5, 5]
    big_astro[:, 500:3500] = cv2.resize(template_img, (3000, 3000), interpolation=cv2.INTER_CUBIC)

    seg_options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_path=str(model_path("selfie_segmentation.tflite"))), output_confidence_masks=True
    )
    lm = quality.Landmarker()
    with vision.ImageSegmenter.create_from_options(seg_options) as seg:
        template = templates.register_template("Bench", "studio", template_img, lm.faces(template_img))
        t_meshes = list(template.meshes)
        styles = [s.id for s in hair.hairstyles()]
        for s in styles:
            hair.hair_material(s)  # drawn once per process; not part of a request

        def baseline(user_img: npt.NDArray[np.uint8]) -> Callable[[int], object]:
            return lambda i: (lm.faces(user_img), lm.faces(template_img))

        def portrait(user_img: npt.NDArray[np.uint8]) -> Callable[[int], object]:
            def run(i: int) -> object:
                faces = lm.faces(user_img)
                assert faces and faces[0].mesh is not None
                return fusion.fuse(template_img, t_meshes, [(user_img, faces[0].mesh)], strength=80)

            return run

        user_mesh = lm.faces(user)[0].mesh
        assert user_mesh is not None

        def fuse_only(i: int) -> object:
            return fusion.fuse(template_img, t_meshes, [(user, user_mesh)], strength=80)

        def hairstyle(user_img: npt.NDArray[np.uint8]) -> Callable[[int], object]:
            def run(i: int) -> object:
                faces = lm.faces(user_img)
                assert faces and faces[0].mesh is not None
                # The selfie model sees 256 px: segmenting a 1024 px copy and scaling the
                # matte up is what a service does with a 12 MP upload.
                hh, ww = user_img.shape[:2]
                k = min(1.0, 1024 / max(hh, ww))
                small = cv2.resize(user_img, (round(ww * k), round(hh * k)), interpolation=cv2.INTER_AREA) if k < 1 else user_img
                res = seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(small)))
                mask = np.array(res.confidence_masks[0].numpy_view()).reshape(small.shape[:2])
                if k < 1:
                    mask = cv2.resize(mask, (ww, hh), interpolation=cv2.INTER_LINEAR)
                return hair.change_hairstyle(user_img, faces[0].mesh, mask, styles[i % len(styles)])

            return run

        astro_mesh = t_meshes[0]
        astro_mask = seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=template_img)).confidence_masks[0].numpy_view()
        astro_mask = np.array(astro_mask).reshape(512, 512)

        def hair_only(i: int) -> object:
            return hair.change_hairstyle(template_img, astro_mesh, astro_mask, styles[i % len(styles)])

        print(f"bench/portrait: {RUNS} runs each after {WARMUP} warm-up, cv2 threads 2, template astronaut 512x512")
        for label, user_img, bare in (("user 512x600", user, template_img), ("user 12 MP", big, big_astro)):
            base = timed(baseline(user_img))
            print(f" {label}")
            row("baseline: landmarker on user + template", base, base)
            row("portrait: landmarker on user + fuse", timed(portrait(user_img)), base)
            row("hairstyle (Collins): landmarker + matte + change", timed(hairstyle(bare)), base)
            if user_img is user:
                row("  fuse alone (meshes given)", timed(fuse_only), base)
                row("  hair change alone, astronaut (mesh, matte given)", timed(hair_only), base)


if __name__ == "__main__":
    main()
