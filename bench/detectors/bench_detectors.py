"""Could a BlazeFace detector replace MTCNN where faces looks for one large face (an ID photo)?

Baseline in the same run: the faces service's own detection for an ID photo (MTCNN on the canvas
`FaceAnalyzer` makes for min_face_fraction 0.13). Against it, MediaPipe's two BlazeFace models on
LiteRT, fed as MediaPipe feeds them (the photo letterboxed onto the model's square input, values
-1..1): the short-range one inside face_landmarker.task (128 px) and the full-range sparse one
(192 px, fetched for render's tests). Every photo is first reduced as render reduces it before it asks
faces (its analysis copy, long side at most 1024), so each detector starts from what faces is sent.
For each photo: the best score, the box's IoU with MTCNN's,
how far the two eyes land from MTCNN's (in inter-eye distances), and the CPU per detection
(thread time, resizing included), best of several rounds.

MTCNN's score and BlazeFace's are not the same measure; a photo that a model misses (score
under 0.5) is a photo it could not be trusted with.

    python bench/detectors/bench_detectors.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from skimage import data

from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import load_models
from likeness_faces.domain.faces import AnalyzeOptions
from likeness_faces.service import FaceAnalyzer
from likeness_render.usecases.shared import analysis_copy

BENCH = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(BENCH / "faces"), str(BENCH / "load")]
from bench_load import photo  # noqa: E402
from photos import photos  # noqa: E402

RGB = npt.NDArray[np.uint8]
ID_PHOTO_MIN_FACE = 0.13


class BlazeFace:
    """One of MediaPipe's BlazeFace models: the best face as (score, box x1 y1 x2 y2, right eye, left eye)."""

    def __init__(self, model: bytes, strides: tuple[tuple[int, int], ...]) -> None:
        self.interpreter = Interpreter(model_content=model, num_threads=1)
        self.interpreter.allocate_tensors()
        given = self.interpreter.get_input_details()[0]
        self.side, self.given = int(given["shape"][1]), given["index"]
        outputs = sorted(self.interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]), reverse=True)
        self.boxes, self.scores = outputs[0]["index"], outputs[1]["index"]
        # MediaPipe's SSD anchors: per layer (stride, anchors per cell), row by row, centres in 0..1.
        centres = []
        for stride, per_cell in strides:
            cells = self.side // stride
            for y in range(cells):
                for x in range(cells):
                    centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
        self.anchors = np.array(centres, np.float32) * self.side

    def detect(self, image: RGB) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        h, w = image.shape[:2]
        k = self.side / max(h, w)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        canvas = np.zeros((self.side, self.side, 3), np.uint8)
        left, top = (self.side - nw) // 2, (self.side - nh) // 2
        canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        self.interpreter.set_tensor(self.given, (canvas.astype(np.float32) / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.boxes)[0]
        logits = self.interpreter.get_tensor(self.scores)[0, :, 0]
        best = int(np.argmax(logits))
        score = float(1.0 / (1.0 + np.exp(-np.clip(logits[best], -80.0, 80.0))))
        cx, cy = raw[best, :2] + self.anchors[best]
        bw, bh = raw[best, 2:4]
        offset = np.array([left, top], np.float64)
        corners = (np.array([[cx - bw / 2, cy - bh / 2], [cx + bw / 2, cy + bh / 2]]) - offset) / k
        eyes = (raw[best, 4:8].reshape(2, 2) + self.anchors[best] - offset) / k
        return score, corners.ravel(), eyes[0], eyes[1]


def iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def cpu_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        fn()
        best = min(best, time.thread_time() - started)
    return best * 1000


def images() -> list[tuple[str, RGB]]:
    """Render's analysis copies of bench/load's two photos, the astronaut as it is and bench/faces' phone-sized set."""
    out = [("bench/load small", np.asarray(Image.open(io.BytesIO(photo("small"))).convert("RGB")))]
    out.append(("bench/load 12 MP", np.asarray(Image.open(io.BytesIO(photo("upright-12mp"))).convert("RGB"))))
    out.append(("astronaut 512", np.ascontiguousarray(data.astronaut())))
    return [(name, np.ascontiguousarray(analysis_copy(image)[0])) for name, image in out + photos()]


def main(rounds: int) -> None:
    models = load_models()
    analyzer = FaceAnalyzer(models.detector, models.landmarker)
    search = analyzer._search(AnalyzeOptions(min_face_fraction=ID_PHOTO_MIN_FACE))
    model_dir = default_model_dir()
    blaze = {
        "short-range 128": BlazeFace(zipfile.ZipFile(model_dir / "face_landmarker.task").read("face_detector.tflite"), ((8, 2), (16, 6))),
        "full-range 192": BlazeFace((model_dir / "face_detection_full_range_sparse.tflite").read_bytes(), ((4, 1),)),
    }

    def mtcnn(image: RGB) -> Any:
        _, small = analyzer._shrink(image, search.long_side)
        canvas = analyzer._canvas(small, image.shape[1], image.shape[0], 0, search)
        found = models.detector.detect([canvas.pixels], canvas.min_face_px)[0]
        return [d.mapped(canvas.box.to_image) for d in found]

    print(f"bench/detectors: the best face per photo; CPU per detection, best of {rounds} rounds")
    print(f"{'photo':>26} {'detector':>16} {'score':>6} {'IoU':>5} {'eyes':>5} {'CPU ms':>7} {'/MTCNN':>7}")
    totals: dict[str, float] = {}
    misses: dict[str, int] = {}
    for name, image in images():
        found = mtcnn(image)
        if not found:
            print(f"{name:>26} {'MTCNN':>16} {'none':>6}")
            continue
        reference = max(found, key=lambda d: d.area)
        base = cpu_ms(lambda image=image: mtcnn(image), rounds)
        totals["MTCNN"] = totals.get("MTCNN", 0.0) + base
        print(f"{name:>26} {'MTCNN':>16} {reference.score:>6.3f} {'':>5} {'':>5} {base:>7.2f} {1.0:>7.2f}")
        gap = float(np.linalg.norm(reference.points[1] - reference.points[0]))
        for label, model in blaze.items():
            score, box, right, left = model.detect(image)
            spent = cpu_ms(lambda image=image, model=model: model.detect(image), rounds)
            totals[label] = totals.get(label, 0.0) + spent
            misses[label] = misses.get(label, 0) + (score < 0.5)
            eyes = (np.linalg.norm(right - reference.points[0]) + np.linalg.norm(left - reference.points[1])) / 2 / gap
            print(f"{'':>26} {label:>16} {score:>6.3f} {iou(box, reference.box):>5.2f} {eyes:>5.2f} {spent:>7.2f} {spent / base:>7.2f}")
    print("all photos, CPU ms: " + ", ".join(f"{label} {ms:.1f}" for label, ms in totals.items()))
    print("missed (score < 0.5): " + ", ".join(f"{label} {count}" for label, count in misses.items()))
    asyncio.run(analyzer.close())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 15 (a smoke run)")
    args = parser.parse_args()
    main(3 if args.quick else 15)
