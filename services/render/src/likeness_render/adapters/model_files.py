"""Where the offline model files live (``$LIKENESS_MODEL_DIR``, fetched by scripts/fetch_models.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DEFAULT_MODEL_DIR = Path.home() / ".cache" / "likeness" / "models"
FETCH_HINT = "run scripts/fetch_models.py"


class ModelFileMissing(FileNotFoundError):
    """A model file is absent; the message names the file and how to fetch it."""


class ModelFileCorrupt(ValueError):
    """A model file's SHA-256 is not the pinned one; the message names the file and how to fix it."""


def model_path(name: str, model_dir: Path | None = None) -> Path:
    """Path of one model file, checked to exist."""
    base = model_dir or Path(os.environ.get("LIKENESS_MODEL_DIR", "") or DEFAULT_MODEL_DIR)
    path = base / name
    if not path.is_file():
        raise ModelFileMissing(f"model file {name} not found in {base}; {FETCH_HINT}")
    return path


def verified_bytes(name: str, sha256: str, model_dir: Path | None = None) -> bytes:
    """The bytes of one model file, refused unless their SHA-256 is `sha256` (the digest pinned in
    scripts/fetch_models.py): a damaged or swapped file stops start-up instead of changing results."""
    path = model_path(name, model_dir)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelFileCorrupt(
            f"model file {name} in {path.parent} is corrupt (sha256 {actual[:12]}…, expected {sha256[:12]}…); {FETCH_HINT}"
        )
    return data
