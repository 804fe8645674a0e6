"""Loading every model of the faces service once per process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from likeness_faces.adapters import model_files
from likeness_faces.adapters.litert_mesh import LiteRtMeshLandmarker
from likeness_faces.adapters.mtcnn_detector import MtcnnDetector
from likeness_faces.adapters.torch_mesh import TorchMeshLandmarker
from likeness_platform.cpus import usable_cores


@dataclass
class FaceModels:
    detector: MtcnnDetector
    landmarker: LiteRtMeshLandmarker | TorchMeshLandmarker
    device: torch.device

    def close(self) -> None:
        self.landmarker.close()


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def load_models(model_dir: Path | None = None, *, device: torch.device | None = None, torch_threads: int | None = None) -> FaceModels:
    """Checks every model file's SHA-256, then loads MTCNN (CUDA when present) and the mesh:
    its networks on LiteRT on the CPU, the same networks on PyTorch (batched) on CUDA. Raises ModelFilesError, naming the fix, when a file is missing
    or corrupt.

    torch_threads: intra-op threads for MTCNN on CPU; default half the cores this process
    may run on (at least one). The micro-batcher runs one MTCNN call at a time, but beside it
    the mesh model, crops and decodes run in their own threads: with one torch thread per core
    the two overlap on the same cores, and waking torch's workers for MTCNN's many small
    operations costs more than it saves. In a same-run bench/load A/B on 2 shared cores, one
    thread took faces from 55/44 to 47/41 CPU ms per photo.
    """
    paths = model_files.verify(model_dir if model_dir is not None else model_files.default_model_dir())
    chosen = device if device is not None else pick_device()
    if chosen.type == "cpu":
        torch.set_num_threads(max(1, torch_threads if torch_threads is not None else usable_cores() // 2))
    landmarker = LiteRtMeshLandmarker(paths.landmarker) if chosen.type == "cpu" else TorchMeshLandmarker(paths.landmarker, chosen)
    return FaceModels(detector=MtcnnDetector(paths, chosen), landmarker=landmarker, device=chosen)
