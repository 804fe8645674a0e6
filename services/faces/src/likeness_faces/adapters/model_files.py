"""Locating the model files the faces service needs and checking their SHA-256.

The digests are copied from scripts/fetch_models.py (which a service image cannot import)
and, for MTCNN, from the facenet-pytorch==2.5.3 wheel. A file that is missing or does not
match stops start-up with a message that says how to fix it, rather than a model that
fails later on a request or, worse, quietly returns different results.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from likeness_faces.domain.errors import ModelFilesError

FETCH_HINT = "run `make setup` or `python scripts/fetch_models.py`"
MTCNN_HINT = "reinstall it with `pip install --force-reinstall facenet-pytorch==2.5.3`"

LANDMARKER_FILE = "face_landmarker.task"
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

MTCNN_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


@dataclass(frozen=True)
class ModelPaths:
    landmarker: Path
    pnet: Path
    rnet: Path
    onet: Path


def default_model_dir() -> Path:
    """$LIKENESS_MODEL_DIR, else ~/.cache/likeness/models (where fetch_models.py puts them)."""
    return Path(os.environ.get("LIKENESS_MODEL_DIR", Path.home() / ".cache" / "likeness" / "models"))


def mtcnn_weights_dir() -> Path:
    """The folder inside the installed facenet-pytorch wheel that holds MTCNN's weights."""
    import facenet_pytorch

    return Path(facenet_pytorch.__file__).resolve().parent / "data"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _problem(path: Path, expected: str) -> str | None:
    if not path.is_file():
        return f"{path.name} is missing from {path.parent}"
    try:
        actual = sha256_of(path)
    except OSError as exc:
        return f"{path.name} in {path.parent} cannot be read ({exc.strerror})"
    if actual != expected:
        return f"{path.name} in {path.parent} is corrupt (sha256 {actual[:12]}…, expected {expected[:12]}…)"
    return None


def verify(model_dir: Path, mtcnn_dir: Path | None = None) -> ModelPaths:
    """Paths of every model file after checking each one; raises ModelFilesError listing
    every problem found and how to fix it."""
    weights = mtcnn_dir if mtcnn_dir is not None else mtcnn_weights_dir()
    paths = ModelPaths(
        landmarker=model_dir / LANDMARKER_FILE,
        pnet=weights / "pnet.pt",
        rnet=weights / "rnet.pt",
        onet=weights / "onet.pt",
    )
    messages: list[str] = []
    problem = _problem(paths.landmarker, LANDMARKER_SHA256)
    if problem:
        messages.append(f"{problem}; {FETCH_HINT} (set LIKENESS_MODEL_DIR if the models live elsewhere)")
    for path in (paths.pnet, paths.rnet, paths.onet):
        problem = _problem(path, MTCNN_SHA256[path.name])
        if problem:
            messages.append(f"{problem}: the facenet-pytorch install is damaged; {MTCNN_HINT}")
    if messages:
        raise ModelFilesError("face models cannot be loaded: " + "; ".join(messages))
    return paths
