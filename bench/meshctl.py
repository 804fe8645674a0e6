"""Start a local mesh for a benchmark (the `make run` runner, free ports, quiet logs)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_mesh_runner():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("likeness_mesh_runner", ROOT / "scripts" / "mesh.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["likeness_mesh_runner"] = module
    spec.loader.exec_module(module)
    return module


def start(services: tuple[str, ...], **env: str):  # type: ignore[no-untyped-def]
    runner = load_mesh_runner()
    mesh = runner.Mesh(
        Path(tempfile.mkdtemp(prefix="likeness-bench-")),
        database_url=os.environ.get("LIKENESS_DATABASE_URL", ""),
        free_ports=True,
        quiet=True,
        services=services,
        extra_env={"LIKENESS_LOG_LEVEL": "warning", **env},
    )
    # A benchmark that fails (or is interrupted) before its own down() must not leave the services running.
    atexit.register(mesh.down)
    mesh.up()
    return mesh


DEVICE = {"platform": "ios", "model": "bench", "os_version": "18", "app_version": "1", "language": "en", "age_confirmed": True}
