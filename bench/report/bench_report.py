"""CPU of the compliance report's pixel measurements that render makes for every ID photo.

Composes US passport photos (600x600) and schengen-visa photos (413x531) of the astronaut
and Grace Hopper in-process (MediaPipe's landmarker as render's unit tests use it, the
selfie segmenter, a plain new background), then times measure_near_face, measure_torso_cut,
measure_cutout and border_std with time.process_time over many rounds, interleaved with the
same functions from git revision BASELINE (loaded from `git show`) as the same-run
baseline, and checks that both measure the same values (measure_near_face to 0.01: its
k-means now starts once from fewer samples).

    PYTHONPATH=... .venv/bin/python bench/report/bench_report.py [--rounds 20] [--baseline REV]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parents[2]
# The revision before the report's measurements were made cheaper.
BASELINE = "ff57e72"
DOMAIN = "services/render/src/likeness_render/domain"


def _module(rev: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, name, "exec"), module.__dict__)
    return module


def _photos() -> list[Any]:
    sys.path.insert(0, str(ROOT / "services/render/tests"))
    from landmarks import TestLandmarker  # render's test tooling: the faces service's landmarker in-process

    from likeness_render.adapters.segmenter import SelfieSegmenter
    from likeness_render.domain import idphoto
    from likeness_render.domain.spec_loading import load_catalog
    from likeness_render.usecases.id_photo import frame_of

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        grace = np.asarray(Image.open(fh).convert("RGB"))
    catalog = load_catalog()
    out = []
    with TestLandmarker() as landmarker, SelfieSegmenter() as segmenter:
        for source in (np.asarray(data.astronaut()), grace):
            face = landmarker.detect(source)[0]
            for spec_id in ("us-passport", "schengen-visa"):
                spec = catalog.get(spec_id)
                out.append(idphoto.compose(source, face, segmenter.mask, frame_of(spec, 300), spec.background, idphoto.Options()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU of the compliance report's pixel measurements, now against a baseline revision")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    args = parser.parse_args()

    from likeness_render.domain import compliance_pixels, compliance_scene, idphoto

    old_scene = _module(args.baseline, f"{DOMAIN}/compliance_scene.py", "baseline_compliance_scene")
    old_pixels = _module(args.baseline, f"{DOMAIN}/compliance_pixels.py", "baseline_compliance_pixels")
    old_idphoto = _module(args.baseline, f"{DOMAIN}/idphoto.py", "baseline_idphoto")
    photos = _photos()

    steps: dict[str, Callable[[Any, Any], Any]] = {
        "measure_near_face": lambda mods, c: mods[0].measure_near_face(c.image, c.alpha, c.face.mesh),
        "measure_torso_cut": lambda mods, c: mods[0].measure_torso_cut(c.alpha, float(c.face.mesh[152, 1])),
        "measure_cutout": lambda mods, c: mods[1].measure_cutout(c.image, c.silhouette, c.background, c.others_removed),
        "border_std": lambda mods, c: mods[2].border_std(c.image, c.alpha),
    }
    versions = {args.baseline: (old_scene, old_pixels, old_idphoto), "now": (compliance_scene, compliance_pixels, idphoto)}
    for name, step in steps.items():
        for c in photos:
            before, after = (step(mods, c) for mods in versions.values())
            if name == "measure_near_face":
                # Its hair colours come from fewer samples and one k-means start now: the same to 0.01 of the face's area.
                assert np.allclose(before, after, atol=0.01), f"{name} differs: {before} != {after}"
            else:
                assert before == after, f"{name} differs: {before} != {after}"
    spent = {(name, v): 0.0 for name in steps for v in versions}
    for r in range(args.rounds):
        order = list(versions) if r % 2 else list(versions)[::-1]
        for name, step in steps.items():
            for v in order:
                start = time.process_time()
                for c in photos:
                    step(versions[v], c)
                spent[name, v] += time.process_time() - start
    per = args.rounds * len(photos)
    print(f"{len(photos)} photos x {args.rounds} rounds, CPU ms per photo (same values measured; near the face to 0.01)")
    print(f"{'step':20s} {args.baseline:>10s} {'now':>10s}")
    for name in [*steps, "total"]:
        row = [sum(spent[n, v] for n in steps) if name == "total" else spent[name, v] for v in versions]
        print(f"{name:20s} {row[0] / per * 1000:10.2f} {row[1] / per * 1000:10.2f}")


if __name__ == "__main__":
    main()
