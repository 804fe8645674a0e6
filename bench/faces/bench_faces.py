"""Throughput of FaceAnalyzer against a naive per-request MTCNN loop, same images, same run.

Baseline: what a first implementation does: one default `MTCNN(keep_all=True)` and, per
request, `mtcnn.detect(image, landmarks=True)` on the full-resolution photo (smallest face
20 px, so the pyramid scans 12 MP). It returns boxes and five points only.

FaceAnalyzer does more per image (by default also the 478-point mesh on a full-resolution
crop, head pose, eye/mouth state and quality), measured at concurrency 1 (one request at
a time) and at concurrency 8 (eight requests in flight, as gRPC handlers would be); the
detection-only mode (AnalyzeOptions with the mesh off) is measured too.

Photos are phone-sized: skimage's astronaut and matplotlib's grace_hopper upscaled into
12 MP (4000×3000, 3000×4000) and 2–4 MP frames. Both sides use the same torch thread count.

Run: PYTHONPATH=services/faces/src .venv/bin/python bench/faces/bench_faces.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from facenet_pytorch import MTCNN
from photos import photos

from likeness_faces.adapters.model_files import default_model_dir
from likeness_faces.adapters.models import load_models
from likeness_faces.domain.faces import AnalyzeOptions
from likeness_faces.service import FaceAnalyzer

RGB = npt.NDArray[np.uint8]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the photo set for FaceAnalyzer")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="one round: a smoke run (bench/run_all.py --quick)")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1

    images = photos()
    models = load_models(default_model_dir(), torch_threads=args.threads)
    print(f"device {models.device}, torch threads {torch.get_num_threads()}, {len(images)} photos: {', '.join(name for name, _ in images)}")

    naive = MTCNN(keep_all=True, device=models.device)
    naive.detect(images[2][1])  # warm-up: first calls allocate

    def baseline() -> None:
        for _, image in images:
            boxes, _probs, _points = naive.detect(image, landmarks=True)
            assert boxes is not None and len(boxes) >= 1

    full = AnalyzeOptions()
    detect_only = AnalyzeOptions(eye_mouth_state=False)
    requests = [image for _ in range(args.rounds) for _, image in images]

    async def sequential(analyzer: FaceAnalyzer, options: AnalyzeOptions) -> None:
        for image in requests:
            assert len(await analyzer.analyze(image, options)) == 1

    async def concurrent(analyzer: FaceAnalyzer, options: AnalyzeOptions, in_flight: int) -> None:
        gate = asyncio.Semaphore(in_flight)

        async def one(image: RGB) -> None:
            async with gate:
                assert len(await analyzer.analyze(image, options)) == 1

        await asyncio.gather(*(one(image) for image in requests))

    print("baseline: naive MTCNN.detect per request at full resolution")
    start = time.perf_counter()
    baseline()
    elapsed = time.perf_counter() - start
    base = len(images) / elapsed
    print(f"  {'MTCNN.detect loop':44s} {len(images):3d} images in {elapsed:6.2f} s = {base:6.2f} images/s")

    rates: dict[str, float] = {}

    async def ours() -> None:
        analyzer = FaceAnalyzer(models.detector, models.landmarker)
        try:
            await analyzer.analyze(images[0][1], full)  # warm-up
            for label, options in (("full analysis", full), ("detection only", detect_only)):
                print(f"FaceAnalyzer, {label}")
                for in_flight in (1, 8):
                    batches, items = analyzer.batcher.batches_run, analyzer.batcher.items_run
                    start = time.perf_counter()
                    if in_flight == 1:
                        await sequential(analyzer, options)
                    else:
                        await concurrent(analyzer, options, in_flight)
                    rate = len(requests) / (time.perf_counter() - start)
                    rates[f"{label}, concurrency {in_flight}"] = rate
                    print(
                        f"  {f'concurrency {in_flight}':44s} {len(requests):3d} images = {rate:6.2f} images/s"
                        f"  ({analyzer.batcher.items_run - items} detections in "
                        f"{analyzer.batcher.batches_run - batches} MTCNN passes)"
                    )
            await over_grpc(analyzer)
        finally:
            await analyzer.close()

    async def over_grpc(analyzer: FaceAnalyzer) -> None:
        """The same photos as a client sees the service: JPEG bytes over gRPC (decoding included)."""
        import grpc

        from likeness.common.v1 import common_pb2
        from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
        from likeness_faces.grpc_api import FacesServicer, service_name
        from likeness_imaging.codec import encode_jpeg
        from likeness_platform.devpki import DevPki
        from likeness_platform.logging import configure_logging
        from likeness_platform.server import start_server
        from likeness_platform.settings import ServiceSettings

        configure_logging("bench", "warning")
        # mTLS as in the mesh: the service presents faces' certificate, the client render's.
        pki = DevPki(Path(tempfile.mkdtemp(prefix="likeness-bench-pki-")))
        settings = ServiceSettings(grpc_port=0, metrics_port=-1, health_port=-1, **pki.ensure("faces").settings())
        cert, key, ca = pki.ensure("render").read()

        def register(server: grpc.aio.Server) -> list[str]:
            faces_pb2_grpc.add_FacesServicer_to_server(FacesServicer(analyzer, None, 60_000_000), server)
            return [service_name()]

        running = await start_server("faces", settings, register)
        blobs = [encode_jpeg(image, 92) for image in requests]
        try:
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{running.port}",
                grpc.ssl_channel_credentials(ca, key, cert),
                options=[("grpc.max_send_message_length", 64 << 20)],
            ) as channel:
                stub = faces_pb2_grpc.FacesStub(channel)
                print("Faces service over gRPC, full analysis (client sends JPEG bytes)")
                for in_flight in (1, 8):
                    gate = asyncio.Semaphore(in_flight)

                    async def one(blob: bytes, gate: asyncio.Semaphore = gate) -> None:
                        async with gate:
                            reply = await stub.Analyze(faces_pb2.AnalyzeRequest(image=common_pb2.ImageRef(data=blob)), timeout=120)
                            assert len(reply.faces) == 1

                    start = time.perf_counter()
                    await asyncio.gather(*(one(blob) for blob in blobs))
                    rate = len(blobs) / (time.perf_counter() - start)
                    rates[f"gRPC service, concurrency {in_flight}"] = rate
                    print(f"  {f'concurrency {in_flight}':44s} {len(blobs):3d} images = {rate:6.2f} images/s")
        finally:
            await running.stop(0)

    asyncio.run(ours())
    print("ratios against the baseline (same photos, same run):")
    for label, rate in rates.items():
        print(f"  {label:44s} {rate / base:6.1f}x")
    models.close()


if __name__ == "__main__":
    main()
