"""The Tiltfile, executed as Starlark against stand-ins that take the same arguments as
Tilt's built-ins, checked against the chart it deploys and the Dockerfiles it builds."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import starlark


def covered(path: str, roots: list[str]) -> bool:
    return any(path.rstrip("/") == r.rstrip("/") or path.startswith(r.rstrip("/") + "/") for r in roots)


def image_builds(tilt: Any) -> dict[str, dict[str, Any]]:
    builds = {b["ref"]: b for b in tilt.named("docker_build_with_restart")}
    assert len(builds) == len(tilt.named("docker_build_with_restart")), "an image is built twice"
    return builds


def resources(tilt: Any) -> dict[str, dict[str, Any]]:
    return {r["workload"]: r for r in tilt.named("k8s_resource")}


@pytest.fixture(scope="module")
def chart(tilt: Any) -> Any:
    (rendered,) = tilt.helm_renders
    return rendered


def test_tiltfile_runs(tilt: Any) -> None:
    assert tilt.calls, "the Tiltfile did nothing"


def test_every_service_image_is_built_from_its_dockerfile(
    tilt: Any, svc: str, repo: Path, dockerfiles: dict[str, Any], bake_targets: dict[str, Any]
) -> None:
    build = image_builds(tilt)[f"likeness-{svc}"]
    assert build["context"] == "."
    dockerfile = build["kwargs"]["dockerfile"]
    assert dockerfile == bake_targets[svc]["dockerfile"] and (repo / dockerfile).is_file()
    # The restart wrapper replaces the image's ENTRYPOINT, so it must run the same thing.
    assert build["entrypoint"] == dockerfiles[svc].entry_command()


def test_build_context_holds_everything_the_dockerfile_copies(
    tilt: Any, svc: str, dockerfiles: dict[str, Any], repo: Path, install_plan: Any
) -> None:
    # `only` narrows the context; a COPY of a path outside it fails the build in Tilt only.
    only = image_builds(tilt)[f"likeness-{svc}"]["kwargs"]["only"]
    for _, inst, sources, _ in dockerfiles[svc].copies():
        if "from" not in inst.flags:
            for src in sources:
                # A whole folder (libs/) may reach the context in part: what the service needs.
                partly = (repo / src).is_dir() and any(covered(root, [src]) for root in only)
                assert covered(src, only) or partly, f"{src} is not in the Tilt build context {only}"
    # ... and the part it holds is every library the image installs, and no other.
    folders, _ = install_plan(repo, svc)
    assert {f for f in only if f.startswith("libs/")} == {f for f in folders if f.startswith("libs/")}


def test_build_args_are_the_bake_targets(tilt: Any, svc: str, dockerfiles: dict[str, Any], bake_targets: dict[str, Any]) -> None:
    declared = {a.raw.split("=")[0] for s in dockerfiles[svc].stages for a in s.all("ARG")}
    declared |= set(dockerfiles[svc].global_args)
    build_args = image_builds(tilt)[f"likeness-{svc}"]["kwargs"]["build_args"]
    assert set(build_args) <= declared
    # Tilt builds what `make images` builds, plus the bases and the dev owner of /app.
    added = {"SOURCE_OWNER", "BUILD_BASE", "RUNTIME_BASE"}
    assert {k: v for k, v in build_args.items() if k not in added} == bake_targets[svc]["args"]
    assert build_args["BUILD_BASE"] == "localhost/likeness-base-build:k"
    gl = bake_targets[svc]["args"].get("GL") == "1"
    assert build_args["RUNTIME_BASE"] == f"localhost/likeness-base-runtime{'-gl' if gl else ''}:k"
    # Synced files are written by the container user, so it must own /app in dev images.
    user = dockerfiles[svc].final.all("USER")[-1].args
    assert build_args["SOURCE_OWNER"] == user


def test_faces_lock_can_be_chosen_from_the_environment(tiltfile_runner: Any) -> None:
    run = tiltfile_runner({"LIKENESS_FACES_LOCK": "faces-cpu"})
    builds = {b["ref"]: b for b in run.named("docker_build_with_restart")}
    assert builds["likeness-faces"]["kwargs"]["build_args"]["LOCK"] == "faces-cpu"
    assert "requirements/lock/faces-cpu.txt" in builds["likeness-faces"]["kwargs"]["only"]
    # Unset, the Dockerfile's own default (the service's lock) applies.
    assert "LOCK" not in image_builds(tiltfile_runner())["likeness-faces"]["kwargs"]["build_args"]


def test_live_update_syncs_source_into_the_image_layout(tilt: Any, svc: str, repo: Path) -> None:
    build = image_builds(tilt)[f"likeness-{svc}"]
    steps = build["live_update"]
    assert steps[0]["step"] == "fall_back_on", "fall_back_on must come first"
    syncs = [s for s in steps if s["step"] == "sync"]
    assert f"services/{svc}/src" in {s["local_path"] for s in syncs}
    for step in syncs:
        assert (repo / step["local_path"]).is_dir(), f"{step['local_path']} does not exist"
        assert step["remote_path"] == "/app/" + step["local_path"]
        assert covered(step["local_path"], build["kwargs"]["only"])
    # Changes that alter installed packages or generated code must rebuild, not sync.
    rebuild = steps[0]["files"]
    assert "protos" in rebuild and f"services/{svc}/pyproject.toml" in rebuild
    assert not any(covered(f, [s["local_path"] for s in syncs]) for f in rebuild)


def test_restart_trigger_is_writable_by_the_app_user(tilt: Any, svc: str, dev_render: Any) -> None:
    build = image_builds(tilt)[f"likeness-{svc}"]
    restart_file = build["restart_file"]
    # /app belongs to the app user in dev images; /tmp is an emptyDir in the pod.
    assert restart_file.startswith("/app/")
    mounts = {m["mountPath"] for m in dev_render.container(svc)["volumeMounts"]}
    assert not any(restart_file.startswith(m.rstrip("/") + "/") for m in mounts)
    assert dev_render.container(svc)["securityContext"]["readOnlyRootFilesystem"] is False


def test_chart_is_rendered_with_the_dev_values(tilt: Any, repo: Path) -> None:
    (call,) = tilt.named("helm")
    assert call["pathToChartDir"] == "k8s/likeness"
    assert call["values"] == ["k8s/likeness/values-dev.yaml"]
    assert call["namespace"], "addresses in the chart name the namespace; it must be set"
    namespaces = [d["documents"][0] for d in (c["yaml"] for c in tilt.named("k8s_yaml")) if d.get("blob") == "yaml"]
    assert {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": call["namespace"]}} in namespaces


def test_built_images_are_the_ones_the_chart_runs(tilt: Any, chart: Any) -> None:
    run_images = {
        c["image"].split(":")[0] for d in chart.of_kind("Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert set(image_builds(tilt)) == run_images


def test_every_workload_is_a_labelled_resource(tilt: Any, chart: Any) -> None:
    workloads = set(chart.of_kind("Deployment")) | set(chart.of_kind("StatefulSet"))
    declared = resources(tilt)
    assert set(declared) == workloads
    for workload, resource in declared.items():
        assert resource["labels"], f"{workload} has no label"


def test_ports_are_forwarded(tilt: Any, svc: str, chart: Any, release: tuple[str, str]) -> None:
    name = f"{release[0]}-{svc}"
    resource = resources(tilt)[name]
    assert resource["new_name"] == svc
    container = chart.get("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    container_ports = {p["containerPort"] for p in container["ports"]}
    forwarded = {(p["local_port"], p["container_port"]) for p in resource["port_forwards"]}
    grpc = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert (grpc, grpc) in forwarded
    if svc == "gateway":
        assert (8080, 8080) in forwarded
    assert {c for _, c in forwarded} <= container_ports


def test_services_with_a_database_wait_for_it(tilt: Any, svc: str, chart: Any, release: tuple[str, str]) -> None:
    resource = resources(tilt)[f"{release[0]}-{svc}"]
    env = {e["name"] for e in chart.get("Deployment", f"{release[0]}-{svc}")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert ("postgresql" in resource["resource_deps"]) == ("LIKENESS_DATABASE_URL" in env)


def test_protos_are_regenerated_on_change(tilt: Any, repo: Path) -> None:
    (protos,) = [r for r in tilt.named("local_resource") if r["name"] == "protos"]
    assert "protos" in protos["deps"]
    command = shlex.split(protos["cmd"])
    # The repository's one development environment (docs/DEVELOPING.md) has grpcio-tools.
    assert command[0] == ".venv/bin/python"
    assert command[1] == "scripts/gen_protos.py" and (repo / command[1]).is_file()


def test_standins_reject_arguments_tilt_does_not_take(repo: Path, tiltfile_runner: Any) -> None:
    # The checks above trust the stand-ins' signatures; show that they bite.
    source = (repo / "Tiltfile").read_text().replace("labels=['services'],", "labels=['services'], colour='blue',")
    assert "colour" in source
    with pytest.raises(starlark.StarlarkError, match="colour"):
        tiltfile_runner(source=source)
