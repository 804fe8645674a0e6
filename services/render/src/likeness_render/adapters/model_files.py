"""Where the offline model files live (``$LIKENESS_MODEL_DIR``, fetched by scripts/fetch_models.py)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL_DIR = Path.home() / ".cache" / "likeness" / "models"


class ModelFileMissing(FileNotFoundError):
    """A model file is absent; the message names the file and how to fetch it."""


def model_path(name: str, model_dir: Path | None = None) -> Path:
    """Path of one model file, checked to exist."""
    base = model_dir or Path(os.environ.get("LIKENESS_MODEL_DIR", "") or DEFAULT_MODEL_DIR)
    path = base / name
    if not path.is_file():
        raise ModelFileMissing(f"model file {name} not found in {base}; run scripts/fetch_models.py")
    return path
