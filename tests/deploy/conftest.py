"""Fixtures for the deployment checks: the chart rendered by Helm's own engine
(helm-python-sdk binds the Helm v4 Go SDK, so no helm binary is needed), each service's
Dockerfile parsed with the build arguments docker-bake.json gives it, and the Tiltfile
executed against stand-ins for Tilt's built-ins.

Everything reaches the tests as fixtures (and `svc` as a parameter), so nothing has to
import this module, whatever import mode pytest runs in.
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import starlark as sl
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "k8s" / "likeness"
DEV_VALUES = CHART / "values-dev.yaml"
BAKE = REPO / "docker-bake.json"
SERVICES = ("gateway", "ingestion", "faces", "render", "billing", "privacy")
GRPC_PORTS = {"gateway": 50050, "ingestion": 50051, "faces": 50052, "render": 50053, "billing": 50054, "privacy": 50055}
RELEASE = "likeness"
NAMESPACE = "likeness-test"

# A complete production-style configuration: every optional feature on, every secret from
# an existing Secret. Tests that need a variation copy and change it.
PRODUCTION_VALUES: dict[str, Any] = {
    "image": {"registry": "registry.example.com/likeness", "tag": "1.2.3"},
    "imagePullSecrets": ["regcred"],
    "otel": {"exporter": "otlp", "endpoint": "http://otel-collector.observability:4317"},
    "privacyKeys": {"existingSecret": "likeness-keys"},
    "billingKeys": {"existingSecret": "likeness-billing"},
    "appStore": {
        "bundleId": "com.example.idphoto",
        "appId": "1234567890",
        "environment": "Production",
        "existingSecret": "likeness-appstore",
    },
    "blobs": {
        "backend": "s3",
        "s3": {"bucket": "likeness-blobs", "region": "eu-central-1", "existingSecret": "likeness-s3"},
    },
    "redis": {"url": "redis://:pw@redis.cache:6379/0"},
    "networkPolicy": {
        "gatewayHttpFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "healthFrom": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
        "egress": {
            "postgresql": {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [5432]},
            "objectStorage": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [443]},
            "otlp": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}], "ports": [4317]},
            "redis": {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cache"}}}], "ports": [6379]},
        },
    },
    "database": {"existingSecret": "likeness-db", "existingSecretKey": "url", "existingSecretMigrationKey": "migration-url"},
    "services": {
        **{svc: {"tls": {"existingSecret": f"likeness-{svc}-tls"}} for svc in SERVICES},
        "faces": {"gpu": {"enabled": True, "count": 2}, "tls": {"existingSecret": "likeness-faces-tls"}},
        "privacy": {
            "grpcFrom": [{"namespaceSelector": {"matchLabels": {"team": "ops"}}}],
            "tls": {"existingSecret": "likeness-privacy-tls"},
        },
        "billing": {
            "egress": [{"to": [{"ipBlock": {"cidr": "17.0.0.0/8"}}], "ports": [{"port": 443, "protocol": "TCP"}]}],
            "tls": {"existingSecret": "likeness-billing-tls"},
        },
    },
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


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


# ---------------------------------------------------------------------------- chart


@dataclass
class Rendered:
    """The manifests of one render, indexed by kind and name."""

    documents: list[dict[str, Any]]

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.documents if d["kind"] == kind}

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.of_kind(kind)
        assert name in found, f"no {kind} {name}; have {sorted(found)}"
        return found[name]

    def deployment(self, svc: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{svc}")

    def container(self, svc: str) -> dict[str, Any]:
        (container,) = self.deployment(svc)["spec"]["template"]["spec"]["containers"]
        return container

    def env(self, svc: str) -> dict[str, Any]:
        """Container env as name -> value, or name -> ("secret", name, key)."""
        result: dict[str, Any] = {}
        for var in self.container(svc).get("env", []):
            assert var["name"] not in result, f"{svc}: {var['name']} set twice"
            if "value" in var:
                result[var["name"]] = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                result[var["name"]] = ("secret", ref["name"], ref["key"])
        return result


def render(values: dict[str, Any]) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    documents = []
    for name, text in sorted(manifests.items()):
        if not name.endswith((".yaml", ".yml")):
            continue
        documents.extend(d for d in yaml.safe_load_all(text) if d)
    return Rendered(documents)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge the way Helm coalesces values files (maps merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


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


# ---------------------------------------------------------------------- Dockerfiles


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]
    args: str  # with ${NAME} of the build arguments in scope replaced by their values
    line: int
    raw: str = ""  # as written

    def exec_form(self) -> list[str] | None:
        text = self.args.strip()
        if text.startswith("["):
            return json.loads(text)
        return None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]
    build_args: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise AssertionError(f"{self.path}: no stage named {name!r}")

    def final_env(self) -> dict[str, str]:
        """ENV of the image (values as written, without quotes)."""
        env: dict[str, str] = {}
        for inst in self.final.all("ENV"):
            for match in re.finditer(r"(\w+)=(\S+)", inst.args):
                env[match.group(1)] = match.group(2)
        return env

    def entry_command(self) -> list[str]:
        """The command the image runs, a `sh -c` entry point resolved against its ENV."""
        (entrypoint,) = self.final.all("ENTRYPOINT")
        command = entrypoint.exec_form()
        assert command, f"{self.path}: ENTRYPOINT must be in exec form"
        if command[:2] != ["/bin/sh", "-c"]:
            return command
        env = self.final_env()
        words = shlex.split(_VARIABLE.sub(lambda m: env[m.group(1)], command[2]))
        assert words[0] == "exec", "the shell must exec the service, so that it is PID 1 and gets SIGTERM"
        assert words[-1] == "$@", "arguments given to the container must reach the service"
        return words[1:-1]

    def copies(self) -> list[tuple[Stage, Instruction, list[str], str]]:
        """Every COPY/ADD as (stage, instruction, sources, destination)."""
        out = []
        for stage in self.stages:
            for inst in stage.instructions:
                if inst.keyword in ("COPY", "ADD"):
                    parts = inst.exec_form() or shlex.split(inst.args)
                    out.append((stage, inst, parts[:-1], parts[-1]))
        return out


_FLAG = re.compile(r"^--([a-z-]+)(?:=(\S*))?\s+")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def parse_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> Dockerfile:
    """A parser for the subset of Dockerfile syntax the repository uses (no heredocs).

    As `docker build --build-arg` would, `build_args` override ARG defaults; `${NAME}` of an
    ARG in scope (declared in the stage, a global ARG re-declared there) is replaced by its
    value in every instruction but FROM, RUN included (where the shell would expand it)."""
    build_args = build_args or {}
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append((start, pending + stripped))
        pending = ""
    assert not pending, f"{path}: file ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    scope: dict[str, str] = {}
    for number, text in logical:
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while (m := _FLAG.match(rest + " ")) and keyword != "RUN":
            flags[m.group(1)] = m.group(2) or ""
            rest = (rest + " ")[m.end() :].strip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
            scope = {}
        elif not stages:
            assert keyword == "ARG", f"{path}:{number}: only ARG may precede the first FROM"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            expanded = _VARIABLE.sub(lambda m, scope=scope: scope.get(m.group(1), m.group(0)), rest)
            stages[-1].instructions.append(Instruction(keyword, flags, expanded, number, rest))
            if keyword == "ARG":
                key, has_default, default = rest.partition("=")
                if not has_default:
                    default = global_args.get(key, "")
                elif default[:1] in "\"'" and default[:1] == default[-1:] and len(default) > 1:
                    default = default[1:-1]  # Docker removes the quotes of ARG X="..."
                scope[key] = build_args.get(key, default)
    return Dockerfile(path, global_args, stages, dict(build_args))


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


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go filepath.Match plus `**`) as a regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


@dataclass
class DockerIgnore:
    rules: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def load(cls, path: Path) -> DockerIgnore:
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((negate, _ignore_regex(line)))
        return cls(rules)

    def excluded(self, rel: str) -> bool:
        """Whether the builder leaves `rel` (a file path) out of the context. As in
        moby's patternmatcher, a pattern also matches everything below a matching folder."""
        parents = [rel]
        parts = rel.split("/")
        parents += ["/".join(parts[:n]) for n in range(1, len(parts))]
        result = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in parents):
                result = not negate
        return result


@pytest.fixture(scope="session")
def dockerignore() -> DockerIgnore:
    return DockerIgnore.load(REPO / ".dockerignore")


# ------------------------------------------------------------------------- Tiltfile


@dataclass
class TiltRun:
    """What the Tiltfile asked Tilt to do."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    helm_renders: list[Rendered] = field(default_factory=list)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [args for call, args in self.calls if call == name]


def _standins(run: TiltRun, env: dict[str, str]) -> dict[str, Any]:
    """Python stand-ins with the parameter names of Tilt's own built-ins, so an argument
    Tilt does not take fails here as it would in Tilt."""

    def record(name: str, fn: Any) -> Any:
        signature = inspect.signature(fn)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            run.calls.append((name, dict(bound.arguments)))
            return fn(*args, **kwargs)

        return call

    def docker_build(
        ref,
        context,
        build_args=None,
        dockerfile="Dockerfile",
        dockerfile_contents="",
        live_update=(),
        match_in_env_vars=False,
        ignore=(),
        only=(),
        entrypoint=(),
        target="",
        ssh="",
        network="",
        secret="",
        extra_tag="",
        container_args=None,
        cache_from=(),
        pull=False,
        platform="",
        env_vars=None,
    ):
        return None

    def docker_build_with_restart(
        ref,
        context,
        entrypoint,
        live_update,
        base_suffix="-base",
        restart_file="/tmp/.restart-proc",
        trigger=(),
        exit_policy="restart",
        **kwargs,
    ):
        # The extension passes the remaining keyword arguments on to docker_build.
        inspect.signature(docker_build).bind(ref, context, **kwargs)
        if not live_update:
            raise ValueError("docker_build_with_restart requires at least one live_update step")
        return None

    def deploy_cert_manager(registry="quay.io/jetstack", version="v1.3.1", load_to_kind=False, kind_cluster_name="kind"):
        return None

    def helm_(pathToChartDir, name="", namespace="", values=(), set=(), kube_version="", skip_crds=False):
        merged: dict[str, Any] = {}
        for values_file in [values] if isinstance(values, str) else values:
            merged = merge(merged, load_yaml(REPO / values_file))
        with helm.Chart.load(REPO / pathToChartDir) as chart:
            manifests = chart.render(merged, name=name or "chart", namespace=namespace or "default")
        docs = [d for n, t in sorted(manifests.items()) if n.endswith(".yaml") for d in yaml.safe_load_all(t) if d]
        run.helm_renders.append(Rendered(docs))
        return {"blob": "helm", "documents": docs}

    def k8s_yaml(yaml, allow_duplicates=False):
        return None

    def k8s_resource(
        workload="",
        new_name="",
        port_forwards=(),
        extra_pod_selectors=(),
        trigger_mode=None,
        resource_deps=(),
        objects=(),
        auto_init=True,
        pod_readiness="",
        links=(),
        labels=(),
        discovery_strategy="",
    ):
        return None

    def local_resource(
        name,
        cmd="",
        deps=(),
        trigger_mode=None,
        resource_deps=(),
        ignore=(),
        auto_init=True,
        serve_cmd="",
        cmd_bat="",
        serve_cmd_bat="",
        allow_parallel=False,
        links=(),
        tags=(),
        env=None,
        serve_env=None,
        readiness_probe=None,
        dir="",
        serve_dir="",
        labels=(),
    ):
        return None

    def encode_yaml(obj):
        return {"blob": "yaml", "documents": [obj]}

    def port_forward(local_port, container_port=None, name="", link_path="", host=""):
        return {"local_port": local_port, "container_port": container_port or local_port, "name": name}

    def sync(local_path, remote_path):
        return {"step": "sync", "local_path": local_path, "remote_path": remote_path}

    def run_(cmd, trigger=(), echo_off=False):
        return {"step": "run", "cmd": cmd, "trigger": trigger}

    def fall_back_on(files):
        return {"step": "fall_back_on", "files": [files] if isinstance(files, str) else files}

    def restart_container():
        return {"step": "restart_container"}

    def getenv(key, default=None):
        return env.get(key, default)

    def read_json(paths, default=None):
        path = REPO / paths
        if not path.exists() and default is not None:
            return default
        return json.loads(path.read_text())

    fns = {
        "docker_build": docker_build,
        "docker_build_with_restart": docker_build_with_restart,
        "deploy_cert_manager": deploy_cert_manager,
        "helm": helm_,
        "k8s_yaml": k8s_yaml,
        "k8s_resource": k8s_resource,
        "local_resource": local_resource,
        "encode_yaml": encode_yaml,
        "port_forward": port_forward,
        "sync": sync,
        "run": run_,
        "fall_back_on": fall_back_on,
        "restart_container": restart_container,
        "_os_getenv": getenv,
        "read_json": read_json,
    }
    return {name: record(name, fn) for name, fn in fns.items()}


EXTENSIONS = {"ext://restart_process": ("docker_build_with_restart",), "ext://cert_manager": ("deploy_cert_manager",)}


def run_tiltfile(env: dict[str, str] | None = None, source: str | None = None) -> TiltRun:
    """Execute the repository's Tiltfile (or `source` in its place) with `env` as os.environ."""
    run = TiltRun()
    standins = _standins(run, env or {})
    dialect = sl.Dialect.extended()  # Tilt allows top-level if/for and keyword-only args
    globals_ = sl.Globals.extended_by([sl.LibraryExtension.StructType, sl.LibraryExtension.Print, sl.LibraryExtension.Json])

    def load_extension(module_id: str) -> sl.FrozenModule:
        if module_id not in EXTENSIONS:
            raise ValueError(f"Tiltfile loads {module_id!r}, which the stand-ins do not provide")
        module = sl.Module()
        for name in EXTENSIONS[module_id]:
            module.add_callable(name, standins[name])
        return module.freeze()

    module = sl.Module()
    for name, fn in standins.items():
        if name not in ("docker_build_with_restart", "deploy_cert_manager"):  # only reachable through load(), as in Tilt
            module.add_callable(name, fn)
    # Tilt's `os` module; Starlark has no modules, so a struct of functions stands in.
    sl.eval(module, sl.parse("tilt_os", "os = struct(getenv = _os_getenv)", dialect), globals_)
    if source is None:
        source = (REPO / "Tiltfile").read_text()
    sl.eval(module, sl.parse("Tiltfile", source, dialect), globals_, sl.FileLoader(load_extension))
    return run


@pytest.fixture(scope="session")
def tilt() -> TiltRun:
    return run_tiltfile()


@pytest.fixture(scope="session")
def tiltfile_runner() -> Any:
    return run_tiltfile
