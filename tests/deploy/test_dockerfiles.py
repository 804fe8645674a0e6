"""Each service's Dockerfile, read as Docker would: what it copies exists and is in the
build context, it installs what the service's pyproject needs, and the image it makes
runs the right module as a non-root user on a read-only filesystem."""

from __future__ import annotations

import glob
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

OPENCV_NEEDING_GL = {"mediapipe", "opencv-python", "opencv-contrib-python"}


def dev_pins(repo: Path) -> dict[str, str]:
    pins = {}
    for line in (repo / "requirements" / "dev.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = str(req.specifier)
    return pins


def local_sources(dockerfile: Any) -> list[str]:
    return [src for _, inst, sources, _ in dockerfile.copies() if "from" not in inst.flags for src in sources]


def pyproject(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"{path} is missing"
    return tomllib.loads(path.read_text())


def first_party_libraries(repo: Path) -> dict[str, str]:
    """Distribution name -> libs/<dir> for every shared library with a pyproject."""
    return {
        canonicalize_name(pyproject(p)["project"]["name"]): str(p.parent.relative_to(repo))
        for p in sorted((repo / "libs").glob("*/pyproject.toml"))
    }


def dependency_closure(repo: Path, svc: str) -> tuple[set[str], set[str]]:
    """(libs/<dir> folders, third-party distribution names) the service needs, transitively."""
    libraries = first_party_libraries(repo)
    folders: set[str] = set()
    third_party: set[str] = set()
    todo = [repo / "services" / svc / "pyproject.toml"]
    while todo:
        for dep in pyproject(todo.pop())["project"].get("dependencies", []):
            name = canonicalize_name(Requirement(dep).name)
            if name.startswith("likeness"):
                assert name in libraries, f"{svc} needs {name}, which no libs/*/pyproject.toml provides"
                if libraries[name] not in folders:
                    folders.add(libraries[name])
                    todo.append(repo / libraries[name] / "pyproject.toml")
            else:
                third_party.add(name)
    return folders, third_party


def editable_installs(dockerfile: Any) -> set[str]:
    found: set[str] = set()
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            if "pip install" in run.args:
                found |= set(re.findall(r"-e\s+(\S+)", run.args))
    return found


# ------------------------------------------------------------------------- structure


def test_bases_are_python_slim(dockerfiles: dict[str, Any], svc: str) -> None:
    dockerfile = dockerfiles[svc]
    assert dockerfile.global_args["PYTHON_IMAGE"] == "python:3.11-slim"
    names = {s.name for s in dockerfile.stages}
    for stage in dockerfile.stages:
        assert stage.base == "${PYTHON_IMAGE}" or stage.base in names, stage.base
    assert dockerfile.final.base == "${PYTHON_IMAGE}"
    assert len(dockerfile.stages) >= 3, "protos, build and runtime stages expected"


def test_copy_from_names_an_earlier_stage(dockerfiles: dict[str, Any], svc: str) -> None:
    dockerfile = dockerfiles[svc]
    for stage, inst, _, _ in dockerfile.copies():
        if "from" in inst.flags:
            earlier = [s.name for s in dockerfile.stages[: dockerfile.stages.index(stage)]]
            assert inst.flags["from"] in earlier, f"line {inst.line}"


def test_copy_sources_exist(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    missing = [src for src in local_sources(dockerfiles[svc]) if not glob.glob(str(repo / src))]
    assert missing == [], f"services/{svc}/Dockerfile copies paths that do not exist: {missing}"


def test_copy_sources_survive_dockerignore(dockerfiles: dict[str, Any], svc: str, repo: Path, dockerignore: Any) -> None:
    for src in local_sources(dockerfiles[svc]):
        path = repo / src
        if path.is_dir():
            files = [str(p.relative_to(repo)) for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            kept = [f for f in files if not dockerignore.excluded(f)]
            assert kept, f"{src}: .dockerignore leaves nothing of it in the context"
            for required in ("pyproject.toml",):
                if (path / required).exists():
                    assert not dockerignore.excluded(f"{src.rstrip('/')}/{required}"), f"{src}/{required} ignored"
            code = [f for f in files if f.endswith(".py") and "/src/" in f"/{f}"]
            assert all(not dockerignore.excluded(f) for f in code), f"{src}: source files ignored"
        else:
            assert not dockerignore.excluded(src), f"{src} is excluded by .dockerignore"


def test_dockerignore_keeps_out_what_must_not_ship(dockerignore: Any) -> None:
    for path in (
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        ".git/HEAD",
        "services/render/tests/test_render.py",
        "libs/platform/src/likeness_platform/__pycache__/db.cpython-311.pyc",
        "libs/protos/likeness/faces/v1/faces_pb2.py",
        "libs/protos/likeness/__init__.py",
        "README.md",
    ):
        assert dockerignore.excluded(path), path
    for path in (
        "protos/likeness/faces/v1/faces.proto",
        "libs/protos/pyproject.toml",
        "libs/platform/src/likeness_platform/db.py",
        "services/render/migrations/001_render.sql",
        "scripts/fetch_models.py",
    ):
        assert not dockerignore.excluded(path), path


# ----------------------------------------------------------------------- entry point


def test_entry_module_exists(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    (entrypoint,) = dockerfiles[svc].final.all("ENTRYPOINT")
    assert entrypoint.exec_form() == ["python", "-m", f"likeness_{svc}.main"]
    main = repo / "services" / svc / "src" / f"likeness_{svc}" / "main.py"
    assert main.is_file(), f"{main.relative_to(repo)} does not exist"
    assert re.search(r"^if __name__ == [\"']__main__[\"']:", main.read_text(), re.M), f"{main} does nothing when run with -m"


def test_exposes_the_service_ports(dockerfiles: dict[str, Any], svc: str, grpc_ports: dict[str, int]) -> None:
    (expose,) = dockerfiles[svc].final.all("EXPOSE")
    expected = {grpc_ports[svc], grpc_ports[svc] + 1000} | ({8080} if svc == "gateway" else set())
    assert {int(p) for p in expose.args.split()} == expected


# ---------------------------------------------------------------------------- runtime


def test_runs_as_a_non_root_user(dockerfiles: dict[str, Any], svc: str) -> None:
    final = dockerfiles[svc].final
    user = final.all("USER")[-1].args
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    assert any(f"--uid {uid}" in run.args for run in final.all("RUN")), "user not created"


def final_env(dockerfile: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    for inst in dockerfile.final.all("ENV"):
        for match in re.finditer(r"(\w+)=(\S+)", inst.args):
            env[match.group(1)] = match.group(2)
    return env


def test_works_on_a_read_only_root_filesystem(dockerfiles: dict[str, Any], svc: str) -> None:
    env = final_env(dockerfiles[svc])
    assert env["HOME"].startswith("/tmp") and env["XDG_CACHE_HOME"].startswith("/tmp")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    build = dockerfiles[svc].stage("build")
    assert any("compileall" in run.args for run in build.all("RUN")), "bytecode must be compiled at build time"
    for key in ("MPLCONFIGDIR", "TORCH_HOME"):
        if key in env:
            assert env[key].startswith("/tmp"), key


def test_application_tree_mirrors_the_repository(dockerfiles: dict[str, Any], svc: str) -> None:
    # Services find their migrations relative to their package and Tilt syncs into /app
    # by repository path: both need /app to be a copy of the checkout's layout.
    final = dockerfiles[svc].final
    assert final.all("WORKDIR")[-1].args == "/app"
    copies = [(inst.flags.get("from"), sources, dest) for stage, inst, sources, dest in dockerfiles[svc].copies() if stage is final]
    assert ("build", ["/app"], "/app") in copies
    assert ("build", ["/opt/venv"], "/opt/venv") in copies
    (chown,) = [inst.flags["chown"] for stage, inst, s, _ in dockerfiles[svc].copies() if stage is final and s == ["/app"]]
    assert chown == "${SOURCE_OWNER}"
    assert any(a.args == "SOURCE_OWNER=0:0" for a in final.all("ARG")), "production images keep /app root-owned"


# ----------------------------------------------------------------------- dependencies


def test_installs_every_first_party_library_it_needs(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    folders, _ = dependency_closure(repo, svc)
    installed = editable_installs(dockerfiles[svc])
    assert installed == folders | {f"services/{svc}"}
    copied = {dest.rstrip("/") for _, _, _, dest in dockerfiles[svc].copies()}
    for folder in folders | {f"services/{svc}"}:
        assert folder in copied, f"{folder} is installed but never copied whole"


def test_dependency_layer_reads_every_pyproject(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    folders, _ = dependency_closure(repo, svc)
    (run,) = [r for r in dockerfiles[svc].stage("build").all("RUN") if "tomllib" in r.args]
    for folder in folders | {f"services/{svc}"}:
        assert f"{folder}/pyproject.toml" in run.args, folder


def test_generated_protos_are_built_in_the_image(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    dockerfile = dockerfiles[svc]
    protos = dockerfile.stage("protos")
    runs = [r.args for r in protos.all("RUN")]
    tools_pin = dev_pins(repo)["grpcio-tools"]
    assert f"pip install grpcio-tools{tools_pin}" in runs
    assert "python scripts/gen_protos.py" in runs
    build_copies = [(inst.flags.get("from"), sources) for stage, inst, sources, _ in dockerfile.copies() if stage.name == "build"]
    assert ("protos", ["/app/libs/protos/"]) in build_copies


def test_model_files_are_baked_in_where_needed(dockerfiles: dict[str, Any], svc: str) -> None:
    dockerfile = dockerfiles[svc]
    fetching = [s for s in dockerfile.stages if any("fetch_models.py" in r.args for r in s.all("RUN"))]
    if svc not in ("faces", "render"):
        assert fetching == []
        return
    (stage,) = fetching
    (run,) = [r for r in stage.all("RUN") if "fetch_models.py" in r.args]
    model_dir = re.search(r"--dir (\S+)", run.args).group(1)
    assert "--check" in run.args, "the build must fail on a missing or corrupt model file"
    copies = [(inst.flags.get("from"), sources, dest) for st, inst, sources, dest in dockerfile.copies() if st is dockerfile.final]
    assert (stage.name, [model_dir], model_dir) in copies
    assert final_env(dockerfile)["LIKENESS_MODEL_DIR"] == model_dir


def test_torch_comes_from_a_configurable_index(dockerfiles: dict[str, Any], repo: Path) -> None:
    build = dockerfiles["faces"].stage("build")
    assert any(a.args.startswith("TORCH_INDEX_URL=") for a in build.all("ARG"))
    (run,) = [r for r in build.all("RUN") if "torch==" in r.args]
    pins = dev_pins(repo)
    assert '--index-url "${TORCH_INDEX_URL}"' in run.args
    assert f"torch{pins['torch']}" in run.args.split()
    assert f"torchvision{pins['torchvision']}" in run.args.split()


def test_opencv_gets_its_system_libraries(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    _, third_party = dependency_closure(repo, svc)
    installs_gl = any("libgl1" in r.args and "libglib2.0-0" in r.args for r in dockerfiles[svc].final.all("RUN"))
    if third_party & OPENCV_NEEDING_GL:
        assert installs_gl, f"{svc} pulls in {sorted(third_party & OPENCV_NEEDING_GL)} but not libGL/GLib"


def test_parser_reads_continuations_and_flags(tmp_path: Path, dockerfile_parser: Any) -> None:
    # The checks above are only as good as the parser.
    path = tmp_path / "Dockerfile"
    path.write_text(
        "ARG BASE=python:3.11-slim\nFROM ${BASE} AS one\nRUN a \\\n    # note\n    && b\n"
        'FROM ${BASE}\nCOPY --from=one --chown=1:1 /x /y\nCOPY a b c/\nENTRYPOINT ["python", "-m", "m"]\n'
    )
    parsed = dockerfile_parser(path)
    assert parsed.global_args == {"BASE": "python:3.11-slim"}
    assert [s.name for s in parsed.stages] == ["one", None]
    assert " ".join(parsed.stage("one").all("RUN")[0].args.split()) == "a && b"
    copies = [(i.flags, s, d) for _, i, s, d in parsed.copies()]
    assert copies == [({"from": "one", "chown": "1:1"}, ["/x"], "/y"), ({}, ["a", "b"], "c/")]
    assert parsed.final.all("ENTRYPOINT")[0].exec_form() == ["python", "-m", "m"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("**\n!libs/\n", "libs/a/b.py", False),
        ("**\n!libs/\n**/tests\n", "libs/a/tests/t.py", True),
        ("**\n!scripts/x.py\n", "scripts/y.py", True),
        ("*.md\n", "docs/a.md", False),
        ("**/*.md\n", "docs/a.md", True),
    ],
)
def test_dockerignore_matcher(tmp_path: Path, patterns: str, path: str, excluded: bool, dockerignore: Any) -> None:
    ignore_file = tmp_path / ".dockerignore"
    ignore_file.write_text(patterns)
    assert type(dockerignore).load(ignore_file).excluded(path) is excluded
