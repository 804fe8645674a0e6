"""Fixtures for the deployment checks. The machinery lives beside this file, one concern a
module: rendering.py (the chart rendered by Helm's own engine, and the values it is rendered
with), dockerfiles.py (each service's Dockerfile and .dockerignore parsed) and tiltfile.py
(the Tiltfile executed against stand-ins for Tilt's built-ins).

Everything reaches the tests as fixtures (and `svc` as a parameter), so no test module has to
import these, whatever import mode pytest runs in.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.dockerfiles import Dockerfile, DockerIgnore, parse_dockerfile
from tests.deploy.rendering import (
    BAKE,
    CHART,
    DEV_VALUES,
    GRPC_PORTS,
    MINIMAL_VALUES,
    NAMESPACE,
    PRODUCTION_VALUES,
    RELEASE,
    REPO,
    SERVICES,
    Rendered,
    load_yaml,
    render,
)
from tests.deploy.tiltfile import TiltRun, run_tiltfile


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "svc" in metafunc.fixturenames:
        metafunc.parametrize("svc", SERVICES)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART


@pytest.fixture(scope="session")
def services() -> tuple[str, ...]:
    return SERVICES


@pytest.fixture(scope="session")
def grpc_ports() -> dict[str, int]:
    return dict(GRPC_PORTS)


@pytest.fixture(scope="session")
def release() -> tuple[str, str]:
    """(release name, namespace) every test render uses."""
    return RELEASE, NAMESPACE


@pytest.fixture(scope="session")
def render_chart() -> Any:
    return render


@pytest.fixture
def production_values() -> dict[str, Any]:
    return copy.deepcopy(PRODUCTION_VALUES)


@pytest.fixture(scope="session")
def dev_values() -> dict[str, Any]:
    return load_yaml(DEV_VALUES)


@pytest.fixture(scope="session")
def dev_render(dev_values: dict[str, Any]) -> Rendered:
    return render(dev_values)


@pytest.fixture(scope="session")
def prod_render() -> Rendered:
    return render(copy.deepcopy(PRODUCTION_VALUES))


@pytest.fixture
def minimal_values() -> dict[str, Any]:
    return copy.deepcopy(MINIMAL_VALUES)


@pytest.fixture(scope="session")
def renders(dev_render: Rendered, prod_render: Rendered) -> dict[str, Rendered]:
    """The three renders most checks look at: dev (Tilt), production (everything on) and minimal."""
    return {"dev": dev_render, "production": prod_render, "minimal": render(copy.deepcopy(MINIMAL_VALUES))}


@pytest.fixture(scope="session")
def dockerfile_parser() -> Any:
    return parse_dockerfile


@pytest.fixture(scope="session")
def install_plan() -> Any:
    """scripts/install_service.py's plan(root, service): (folders installed, requirements)."""
    spec = importlib.util.spec_from_file_location("_deploy_install_service", REPO / "scripts" / "install_service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plan


@pytest.fixture(scope="session")
def bake_targets() -> dict[str, dict[str, Any]]:
    """docker-bake.json's targets: each image's Dockerfile and build arguments."""
    targets: dict[str, dict[str, Any]] = json.loads(BAKE.read_text())["target"]
    return targets


@pytest.fixture(scope="session")
def dockerfiles(bake_targets: dict[str, dict[str, Any]]) -> dict[str, Dockerfile]:
    """Each service's Dockerfile as its bake target builds it."""
    return {svc: parse_dockerfile(REPO / bake_targets[svc]["dockerfile"], bake_targets[svc].get("args", {})) for svc in SERVICES}


@pytest.fixture(scope="session")
def dockerignore() -> DockerIgnore:
    return DockerIgnore.load(REPO / ".dockerignore")


@pytest.fixture(scope="session")
def tilt() -> TiltRun:
    return run_tiltfile()


@pytest.fixture(scope="session")
def tiltfile_runner() -> Any:
    return run_tiltfile
