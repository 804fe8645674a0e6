"""Composition root of the faces service."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from likeness.faces.v1 import faces_pb2_grpc
from likeness_faces.adapters.models import FaceModels, load_models
from likeness_faces.domain.errors import ModelFilesError
from likeness_faces.grpc_api import FacesServicer, service_name
from likeness_faces.holder import StatelessHolder
from likeness_faces.service import AnalyzerConfig, FaceAnalyzer
from likeness_platform.clients import open_channel
from likeness_platform.dataholder import add_dataholder
from likeness_platform.logging import get_logger
from likeness_platform.server import Wiring, run_service
from likeness_platform.settings import ServiceSettings

log = get_logger("likeness.faces")


class FacesSettings(ServiceSettings):
    grpc_port: int = 50052
    # cpu | cuda | auto (CUDA when present).
    device: str = "auto"
    # Empty: $LIKENESS_MODEL_DIR or ~/.cache/likeness/models (see scripts/fetch_models.py).
    model_dir: str = ""
    max_pixels: int = 60_000_000
    # torch's intra-op threads for MTCNN on CPU; 0: half the usable cores (see load_models).
    torch_threads: int = 0
    # Detection canvases per MTCNN pass; 0: 8 on CPU, 128 on CUDA (where bench_faces_gpu.py
    # measured 1,200 canvases/s in batches of 128 and fewer per second in batches of 256).
    max_batch: int = 0
    # Threads that shrink photos, cut face crops and measure quality (beside the batchers'
    # own). On an H200 with 16 workers the batchers' GPU passes took 30-50 times as long as
    # alone (bench_faces_gpu.py --analyzer-only), so CUDA keeps the CPU's 2 until a
    # measured count beats it.
    cpu_workers: int = 2
    # How long a thread waiting for the GIL lets the running one go on (Python's
    # sys.setswitchinterval); 0: Python's 5 ms on CPU, 0.1 ms on CUDA. The batchers' threads
    # launch hundreds of small GPU operations per pass and retake the GIL after each: beside
    # one thread running Python, a tiny torch operation took 0.8 ms at 5 ms and 27 µs at
    # 0.1 ms (150 and 5 times its time alone), which is how a 100 ms MTCNN pass took 5 s on an
    # H200 beside 16 busy workers (bench/faces_gpu/NOTES.md).
    gil_switch_interval_ms: float = 0.0


def pick(device: str) -> torch.device | None:
    if device == "auto":
        return None
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("LIKENESS_DEVICE=cuda but no CUDA device is visible to this process")
    return torch.device(device)


def analyzer_config(settings: FacesSettings, device: torch.device) -> AnalyzerConfig:
    on_gpu = device.type == "cuda"
    return AnalyzerConfig(
        max_batch=settings.max_batch or (128 if on_gpu else 8),
        cpu_workers=settings.cpu_workers,
    )


def switch_interval_s(settings: FacesSettings, device: torch.device) -> float | None:
    """The GIL switch interval to set, in seconds; None: leave Python's."""
    if settings.gil_switch_interval_ms > 0:
        return settings.gil_switch_interval_ms / 1000
    return 0.0001 if device.type == "cuda" else None


@dataclass(kw_only=True)
class FacesWiring(Wiring[FacesSettings]):
    models: FaceModels
    analyzer: FaceAnalyzer


async def build(settings: FacesSettings) -> FacesWiring:
    """The faces service's one composition root; raises ModelFilesError when model files are missing."""
    models = load_models(
        Path(settings.model_dir) if settings.model_dir else None,
        device=pick(settings.device),
        torch_threads=settings.torch_threads or None,
    )
    log.info("models_loaded", device=str(models.device))
    interval = switch_interval_s(settings, models.device)
    if interval is not None:
        sys.setswitchinterval(interval)
    analyzer = FaceAnalyzer(models.detector, models.landmarker, analyzer_config(settings, models.device))
    ingestion = open_channel(settings.ingestion_addr, "faces", settings)

    def register(server: Any) -> list[str]:
        faces_pb2_grpc.add_FacesServicer_to_server(FacesServicer(analyzer, ingestion, settings.max_pixels), server)
        return [service_name(), add_dataholder(server, StatelessHolder())]

    async def close() -> None:
        await analyzer.close()
        models.close()
        await ingestion.close()

    return FacesWiring(settings=settings, register=register, closers=[close], models=models, analyzer=analyzer)


main = partial(run_service, "faces", FacesSettings, build, startup_errors=(ModelFilesError,))

if __name__ == "__main__":
    asyncio.run(main())
