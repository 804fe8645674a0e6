"""The mesh runner of `make run`, importable by tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_path = Path(__file__).resolve().parents[2] / "scripts" / "mesh.py"
_spec = importlib.util.spec_from_file_location("likeness_mesh_runner", _path)
assert _spec and _spec.loader
mesh_runner = importlib.util.module_from_spec(_spec)
sys.modules["likeness_mesh_runner"] = mesh_runner
_spec.loader.exec_module(mesh_runner)

Mesh = mesh_runner.Mesh
