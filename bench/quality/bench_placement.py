"""How steady the cut-out is when the face's landmarks move by a fraction of a pixel.

Two landmarkers (MediaPipe's on the CPU, faces' LiteRT mesh) place the same face up to about a
pixel apart, and an ID photo's frame follows the landmarks: a matte that passes on one
placement and leaves half a shoulder transparent on the next is unstable, whatever the suite
says. Each photo of the ID-photo suite (tests/test_idphoto.py's JPEGs: the astronaut, Grace Hopper) is made into
each of its specs in-process (MediaPipe's landmarker as render's tests use it, the selfie
segmenter, a plain new background) with the landmarks moved by every (dx, dy) of a grid of
half and quarter pixels, and the pipeline's own output check (compliance.measure_cutout) is
taken on each. Printed per case: the worst fringe and leftover over the shifts, the most
islands, and how many shifts the check would report BACKGROUND_LEFTOVER for; beside them, the
same with another revision's matte.py (--baseline) in the same run.

    .venv/bin/python bench/quality/bench_placement.py [--baseline REV] [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: the suite's photos and specs

from bench_quality import matte_module  # it puts render's tests (landmarks) on the path
from landmarks import TestLandmarker

from likeness_render.adapters.segmenter import SelfieSegmenter
from likeness_render.domain import compliance, idphoto, matte
from likeness_render.domain.face import FaceGeometry
from likeness_render.domain.spec_loading import load_catalog
from likeness_render.domain.specs import Spec
from likeness_render.usecases.id_photo import frame_of
from tests.test_idphoto import SOURCES, SPECS

SHIFTS = [(dx, dy) for dx in (-0.5, 0.0, 0.5) for dy in (-0.5, -0.25, 0.0, 0.25, 0.5)]


def _portraits() -> dict[str, np.ndarray]:
    """The suite's photos (tests/test_idphoto.py's JPEGs), decoded."""
    return {name: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")) for name, jpeg in SOURCES.items()}


def _worst(
    source: np.ndarray, face: FaceGeometry, spec: Spec, segment: idphoto.Segment, shifts: list[tuple[float, float]]
) -> tuple[float, float, int, int]:
    """(worst fringe, worst leftover, most islands, shifts reported as BACKGROUND_LEFTOVER)."""
    limits = compliance.DEFAULT_THRESHOLDS
    fringe = leftover = 0.0
    islands = failed = 0
    for dx, dy in shifts:
        moved = face.transformed(np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]))
        made = idphoto.compose(source, moved, segment, frame_of(spec, 300), spec.background, idphoto.Options())
        m = compliance.measure_cutout(made.image, made.silhouette, made.background, made.others_removed)
        fringe, leftover, islands = max(fringe, m.fringe_fraction), max(leftover, m.leftover_fraction), max(islands, m.islands)
        failed += m.islands > 0 or m.fringe_fraction > limits.max_fringe_fraction or m.leftover_fraction > limits.max_leftover_fraction
    return fringe, leftover, islands, failed


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The cut-out's output check over sub-pixel shifts of the landmarks, now and at a baseline revision"
    )
    parser.add_argument("--baseline", default="main", help="git revision whose matte.py runs beside this one (default: main)")
    parser.add_argument("--quick", action="store_true", help="the astronaut only, three specs, five shifts")
    args = parser.parse_args()
    portraits = _portraits()
    specs, shifts = SPECS, SHIFTS
    if args.quick:
        portraits = {"astronaut": portraits["astronaut"]}  # the suite's first photo
        specs, shifts = ("us-passport", "de-passport", "us-visa-digital"), [(0.0, dy) for dy in (-0.5, -0.25, 0.0, 0.25, 0.5)]
    versions: dict[str, ModuleType] = {"now": matte, args.baseline: matte_module(args.baseline)}
    catalog = load_catalog()
    print(f"{len(shifts)} landmark shifts per case; worst over them: fringe %, leftover %, islands; shifts the output check fails")
    print(f"{'case':34s} {'now':>28s} {args.baseline:>28s}")
    totals = dict.fromkeys(versions, 0)
    with TestLandmarker() as landmarker, SelfieSegmenter() as segmenter:
        for name, source in portraits.items():
            face = landmarker.detect(source)[0]
            for spec_id in specs:
                spec = catalog.get(spec_id)
                row = []
                for label, module in versions.items():
                    idphoto.matte = module  # compose's cut-out is this revision's
                    try:
                        fringe, leftover, islands, failed = _worst(source, face, spec, segmenter.mask, shifts)
                    finally:
                        idphoto.matte = matte
                    totals[label] += failed
                    row.append(f"{100 * fringe:6.2f} {100 * leftover:6.2f} {islands:3d} {failed:3d}/{len(shifts):<3d}")
                print(f"{name + ' ' + spec_id:34s} {row[0]:>28s} {row[1]:>28s}", flush=True)
    cases = len(portraits) * len(specs) * len(shifts)
    print(f"placements the output check fails: now {totals['now']} of {cases}, {args.baseline} {totals[args.baseline]} of {cases}")


if __name__ == "__main__":
    main()
