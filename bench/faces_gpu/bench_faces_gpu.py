"""Faces on a GPU: batched MTCNN and the batched 478-point mesh, images per second.

What the faces service runs with LIKENESS_DEVICE=cuda, without the gRPC layer, on the photos
of bench_faces.py (12 MP and 2-4 MP phone frames, one face each), fitted to the service's
768-pixel detection canvas:

- detection: facenet-pytorch's own detect_face on CUDA (the baseline: one resize kernel per
  candidate box) against detect_torch (every stage batched on the device), batches of 1 to 256
  canvases, uint8 upload included; their boxes are compared;
- mesh: TorchMeshLandmarker.fit_many (landmarks and blendshapes networks) on 256-pixel face
  crops, batches of 1 to 1024, float32 and, for comparison, float16 autocast (with its error);
- the service's path: FaceAnalyzer configured as on CUDA, 1 to 256 requests in flight, on the
  12 MP photos and on the 2-4 MP ones (decoding excluded: the service gets pixels from its
  gRPC layer).

Ratios are against the same run's baseline. Needs CUDA; the model files as `make setup` puts
them (or LIKENESS_MODEL_DIR).

Run: PYTHONPATH=services/faces/src:libs/imaging/src:libs/platform/src python bench/faces_gpu/bench_faces_gpu.py
(`--analyzer-only` for the service path alone; `--device cpu` runs the script on the CPU, a smoke
test whose numbers mean nothing). Without CUDA and without --device it says so and exits 0, so
`make bench` on a CPU machine skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from facenet_pytorch.models.utils.detect_face import detect_face

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faces"))
from photos import photos

from likeness_faces.adapters import model_files
from likeness_faces.adapters.mtcnn_detector import PYRAMID_FACTOR, STAGE_THRESHOLDS, MtcnnDetector, detect_torch
from likeness_faces.adapters.torch_mesh import TorchMeshLandmarker
from likeness_faces.domain import face_crop, letterbox
from likeness_faces.domain.faces import AnalyzeOptions
from likeness_faces.service import AnalyzerConfig, FaceAnalyzer

LONG_SIDE = 768  # AnalyzerConfig.detect_long_side
MIN_FACE = 20  # AnalyzerConfig.min_face_px


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of fn over repeats runs (fn synchronises: it returns host data)."""
    fn()  # warm-up: cuDNN picks its algorithms, the caching allocator fills
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class _Busy:
    """Wall time a model spends inside its calls (from its batcher's thread)."""

    def __init__(self, fn: Callable[..., list[object]]) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args: object) -> list[object]:
        start = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


async def through_the_analyzer(
    detector: MtcnnDetector,
    mesh: TorchMeshLandmarker,
    shots: list[tuple[str, np.ndarray]],
    rows: list[tuple[str, int, float]],
    args: argparse.Namespace,
) -> None:
    """The service's own path (FaceAnalyzer as main.py configures it on CUDA): many requests in
    flight; each photo shrunk and its face cut out on the CPU pool, canvases batched through
    MTCNN and faces through the mesh by the micro-batchers, stages overlapping. Each variant
    sets the CPU pool's size and Python's thread switch interval (how long a thread that wants
    the GIL may wait for it: the batchers' threads launch hundreds of small GPU operations per
    batch, each needing the GIL)."""
    full = AnalyzeOptions()
    groups = (("12 MP", [i for n, i in shots if "12MP" in n]), ("2-4 MP", [i for n, i in shots if "12MP" not in n]))
    default_interval = sys.getswitchinterval()
    print(f"FaceAnalyzer on CUDA, full analysis (mesh, pose, eye/mouth state, quality), {args.in_flight} requests in flight")
    for workers in args.workers:
        for interval in args.switch_interval:
            sys.setswitchinterval(interval)
            config = AnalyzerConfig(max_batch=128, cpu_workers=workers)
            detect, fit = _Busy(detector.detect), _Busy(mesh.fit_many)
            analyzer = FaceAnalyzer(
                SimpleNamespace(detect=detect), SimpleNamespace(fit=mesh.fit, fit_many=fit, crop_margin=mesh.crop_margin), config
            )  # type: ignore[arg-type]
            try:
                for label, images in groups:
                    await analyzer.analyze(images[0], full)  # warm-up
                    gate = asyncio.Semaphore(args.in_flight)

                    async def one(image: np.ndarray, gate: asyncio.Semaphore = gate, analyzer: FaceAnalyzer = analyzer) -> None:
                        async with gate:
                            assert len(await analyzer.analyze(image, full)) == 1

                    detect.seconds = fit.seconds = 0.0
                    detect.calls = fit.calls = 0
                    start = time.perf_counter()
                    await asyncio.gather(*(one(images[i % len(images)]) for i in range(args.requests)))
                    elapsed = time.perf_counter() - start
                    rate = args.requests / elapsed
                    rows.append((f"analyzer {label}, {workers} workers, switch {interval * 1e3:g} ms", args.in_flight, rate))
                    print(
                        f"  {label:7s} {workers:3d} workers, switch interval {interval * 1e3:5.2f} ms: {rate:8.1f} images/s;"
                        f" MTCNN {detect.calls} passes, {detect.seconds / max(detect.calls, 1) * 1e3:.1f} ms each;"
                        f" mesh {fit.calls} passes, {fit.seconds / max(fit.calls, 1) * 1e3:.1f} ms each"
                    )
            finally:
                await analyzer.close()
    sys.setswitchinterval(default_interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small batches only")
    parser.add_argument("--requests", type=int, default=512, help="requests per analyzer run")
    parser.add_argument("--in-flight", type=int, default=64, help="analyzer requests in flight")
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=[16, 4], help="CPU pool sizes to try")
    parser.add_argument(
        "--switch-interval", type=lambda v: [float(x) for x in v.split(",")], default=[0.005, 0.0002], help="GIL switch intervals (s)"
    )
    parser.add_argument("--analyzer-only", action="store_true", help="only the analyzer runs")
    parser.add_argument("--device", default="", help="cuda (what this measures; the default), or cpu for a smoke run of the script")
    args = parser.parse_args()
    if not args.device and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (--device cpu runs the script anyway, as a smoke test)")
        return
    args.device = args.device or "cuda"
    if args.quick:
        args.requests, args.workers, args.switch_interval = 16, args.workers[:1], args.switch_interval[:1]
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: this benchmark measures the GPU path")
        torch.backends.cudnn.benchmark = True
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    half_type = torch.float16 if device.type == "cuda" else torch.bfloat16

    paths = model_files.verify(model_files.default_model_dir())
    detector = MtcnnDetector(paths, device)
    mesh = TorchMeshLandmarker(paths.landmarker, device)
    rows: list[tuple[str, int, float]] = []
    if args.analyzer_only:
        asyncio.run(through_the_analyzer(detector, mesh, photos(), rows, args))
        return

    # the landscape photos share one canvas shape, as requests batched together do
    shots = [(name, image) for name, image in photos() if image.shape[1] > image.shape[0]]
    boxes = [letterbox.plan(image.shape[1], image.shape[0], LONG_SIDE) for _, image in shots]
    canvases = [letterbox.apply(image, box) for (_, image), box in zip(shots, boxes, strict=True)]
    print(f"{len(shots)} photos ({', '.join(n for n, _ in shots)}), canvas {canvases[0].shape[1]}x{canvases[0].shape[0]}")

    def batch_of(items: list[np.ndarray], size: int) -> np.ndarray:
        return np.stack([items[i % len(items)] for i in range(size)])

    def facenet(batch: np.ndarray) -> object:
        with torch.inference_mode():
            return detect_face(batch, MIN_FACE, detector.pnet, detector.rnet, detector.onet, list(STAGE_THRESHOLDS), PYRAMID_FACTOR, device)

    def ours(batch: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        with torch.inference_mode():
            pixels = torch.from_numpy(batch).to(device)
            return detect_torch(pixels, MIN_FACE, detector.pnet, detector.rnet, detector.onet)

    # agreement first: the same faces, the same boxes
    one = batch_of(canvases, len(canvases))
    theirs, _ = facenet(one)
    mine, _ = ours(one)
    worst = max(float(np.abs(np.asarray(a)[:, :4] - b[:, :4]).max()) for a, b in zip(theirs, mine, strict=True))
    print(f"detect_torch vs detect_face on {device.type}: faces per canvas {[len(b) for b in mine]}, largest box difference {worst:.3f} px")

    sizes = (1, 8, 32) if args.quick else (1, 8, 32, 128, 256)
    print("detection (768x576 canvases, uint8 upload included)")
    base_rate = 0.0
    for size in sizes:
        batch = batch_of(canvases, size)
        if size <= 32:
            seconds = timed(lambda batch=batch: facenet(batch), args.repeats)
            rate = size / seconds
            base_rate = rate if size == 1 else base_rate
            rows.append(("facenet detect_face", size, rate))
            print(f"  facenet detect_face  batch {size:4d}: {seconds * 1e3:8.1f} ms = {rate:8.1f} images/s")
        seconds = timed(lambda batch=batch: ours(batch), args.repeats)
        rows.append(("detect_torch", size, size / seconds))
        print(f"  detect_torch         batch {size:4d}: {seconds * 1e3:8.1f} ms = {size / seconds:8.1f} images/s")

    # mesh crops as the service cuts them, from the full photos
    crops = []
    for (_, image), box, canvas in zip(shots, boxes, canvases, strict=True):
        found, points = ours(canvas[None])
        x1, y1, x2, y2 = box.to_image(found[0][0, :4].reshape(2, 2) + 0.5).reshape(-1)
        eyes = box.to_image(points[0][0, :2] + 0.5)
        roll = math.degrees(math.atan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
        plan = face_crop.plan((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1), roll, margin=mesh.crop_margin, size=256)
        crops.append(face_crop.extract(image, plan))

    reference = mesh.fit_many(crops)
    on_cpu = TorchMeshLandmarker(paths.landmarker, torch.device("cpu")).fit_many(crops)
    apart = max(float(np.abs(a.points - b.points).max()) for a, b in zip(reference, on_cpu, strict=True) if a and b)
    print(
        f"mesh on {device.type} vs on the CPU: faces {sum(f is not None for f in reference)}/{len(crops)}, largest point difference {apart:.4f} px"
    )
    print("mesh (256x256 crops, landmarks + blendshapes networks)")
    for size in (1, 8, 64) if args.quick else (1, 8, 64, 256, 1024):
        batch = [crops[i % len(crops)] for i in range(size)]
        seconds = timed(lambda batch=batch: mesh.fit_many(batch), args.repeats)
        rows.append(("mesh float32", size, size / seconds))
        print(f"  float32              batch {size:4d}: {seconds * 1e3:8.1f} ms = {size / seconds:8.1f} faces/s")
    with torch.autocast(device.type, dtype=half_type):
        half = mesh.fit_many(crops)
        for size in (64, 256) if args.quick else (64, 256, 1024):
            batch = [crops[i % len(crops)] for i in range(size)]
            seconds = timed(lambda batch=batch: mesh.fit_many(batch), args.repeats)
            rows.append(("mesh float16 autocast", size, size / seconds))
            print(f"  float16 autocast     batch {size:4d}: {seconds * 1e3:8.1f} ms = {size / seconds:8.1f} faces/s")
    drift = max(float(np.abs(a.points - b.points).max()) for a, b in zip(reference, half, strict=True) if a and b)
    print(f"  float16 vs float32: largest point difference {drift:.3f} px on a 256-pixel crop")

    asyncio.run(through_the_analyzer(detector, mesh, photos(), rows, args))

    print(f"ratios against the baseline (facenet detect_face, one canvas at a time: {base_rate:.1f} images/s)")
    for label, size, rate in rows:
        print(f"  {label:24s} batch {size:4d} {rate / base_rate:8.1f}x")


if __name__ == "__main__":
    main()
