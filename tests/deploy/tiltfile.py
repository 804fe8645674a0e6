"""The Tiltfile executed by a Starlark interpreter against stand-ins for Tilt's built-ins."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import helm_python as helm
import starlark as sl
import yaml

from tests.deploy.rendering import REPO, Rendered, load_yaml, merge


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

    def local(command, quiet=False, command_bat="", echo_off=False, env=None, dir="", stdin=None):
        # Only the bases script runs at load time; it prints one image reference per base.
        assert command == "bash scripts/images_base.sh --docker", command
        return "BUILD_BASE=localhost/likeness-base-build:k\nRUNTIME_BASE=localhost/likeness-base-runtime:k\nRUNTIME_GL_BASE=localhost/likeness-base-runtime-gl:k\n"

    fns = {
        "local": local,
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
