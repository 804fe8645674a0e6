"""services/Dockerfile (every service's image), read as Docker would with each service's
build arguments from docker-bake.json, and the lock files it installs from: what it copies
exists and is in the build context, the third-party layer holds exactly the locked packages
and no code, the final stage only copies (no pip, setuptools or apt), and the image runs the
right module as a non-root user on a read-only filesystem. `make images-smoke` then runs
the built images; these checks keep the recipe honest where no image is built."""

from __future__ import annotations

import glob
import importlib.util
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

OPENCV_NEEDING_GL = {"mediapipe", "opencv-python", "opencv-contrib-python"}
# libmediapipe.so loads EGL and GLES at import, whether or not a GPU is used.
MEDIAPIPE_NEEDS = {"libegl1", "libgles2"}
# Only where imported at run time: render's matte (scipy) and demo templates (scikit-image,
# matplotlib's sample images); MediaPipe (and the matplotlib its vision tasks import) only in
# render, which runs BlazePose through it: faces runs its networks on LiteRT itself.
RUN_TIME_ONLY_WHERE_USED = {
    "matplotlib": {"render"},
    "scikit-image": {"render"},
    "scipy": {"render"},
    "torch": {"faces"},
    "mediapipe": {"render"},
}
FINAL_STAGE_KEYWORDS = {"ARG", "ENV", "COPY", "WORKDIR", "USER", "EXPOSE", "ENTRYPOINT", "LABEL"}


def script(repo: Path, name: str) -> ModuleType:
    """A module of scripts/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"_deploy_{name}", repo / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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


def install_runs(dockerfile: Any, step: str) -> list[Any]:
    """The app stage's RUNs of scripts/install_service.py for `step`."""
    return [r for r in dockerfile.stage("app").all("RUN") if "install_service.py" in r.args and f" {step} " in f"{r.args} "]


def lock(repo: Path, name: str) -> dict[str, tuple[str, list[str]]]:
    """requirements/lock/<name>.txt: distribution -> (version, hashes)."""
    text = (repo / "requirements" / "lock" / f"{name}.txt").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", block)
        if match:
            entries[canonicalize_name(match.group(1))] = (match.group(3), re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def lock_name(dockerfile: Any) -> str:
    (copy,) = [
        i for st, i, sources, _ in dockerfile.copies() if st.name == "deps" and any(s.startswith("requirements/lock/") for s in sources)
    ]
    return Path(shlex.split(copy.args)[0]).stem


def covered(path: str, roots: set[str]) -> bool:
    path = path.rstrip("/")
    return any(path == r.rstrip("/") or path.startswith(r.rstrip("/") + "/") for r in roots)


def sources_before(dockerfile: Any, stage: Any, inst: Any | None = None) -> dict[str, str | None]:
    """Repository paths copied into `stage` before `inst` (all of them without one), each
    with the stage whose COPY took it from the context; COPY --from is followed into the
    earlier stages of the same Dockerfile."""
    stages = {s.name: s for s in dockerfile.stages if s.name}
    upto = stage.instructions.index(inst) if inst is not None else len(stage.instructions)
    found: dict[str, str | None] = {}
    for other in stage.instructions[:upto]:
        if other.keyword != "COPY":
            continue
        if "from" in other.flags:
            if other.flags["from"] in stages:
                found.update(sources_before(dockerfile, stages[other.flags["from"]]))
        else:
            parts = other.exec_form() or shlex.split(other.args)
            found.update({p.rstrip("/"): stage.name for p in parts[:-1]})
    return found


# ------------------------------------------------------------------------- structure


def test_bases_are_the_debootstrap_bases_by_id(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    # scripts/images.sh passes each base by image ID: a build is pinned to the exact base.
    dockerfile = dockerfiles[svc]
    assert set(dockerfile.global_args) >= {"BUILD_BASE", "RUNTIME_BASE"}
    names = {s.name for s in dockerfile.stages}
    for stage in dockerfile.stages[:-1]:
        assert stage.base == "${BUILD_BASE}" or stage.base in names, stage.base
    assert dockerfile.final.base == "${RUNTIME_BASE}"
    images = (repo / "scripts" / "images.sh").read_text()
    assert '--build-arg "BUILD_BASE=$BUILD_BASE"' in images and '--build-arg "RUNTIME_BASE=$base"' in images
    assert 'eval "$(bash scripts/images_base.sh)"' in images


def test_final_stage_only_copies(dockerfiles: dict[str, Any], svc: str) -> None:
    # No RUN: nothing can pip, apt or compile there, and the runtime base carries no pip,
    # setuptools or apt (scripts/images_base.sh purges them; the smoke test imports-checks).
    keywords = {inst.keyword for inst in dockerfiles[svc].final.instructions}
    assert keywords <= FINAL_STAGE_KEYWORDS, keywords - FINAL_STAGE_KEYWORDS


def test_runtime_base_has_no_installers(repo: Path) -> None:
    base = (repo / "scripts" / "images_base.sh").read_text()
    purged = re.search(r'BUILD_ONLY_PACKAGES="([^"]+)"', base).group(1).split()
    assert {"python3-pip", "python3-setuptools", "python3-venv", "python3-pip-whl", "python3-setuptools-whl"} <= set(purged)
    assert "dpkg --purge $BUILD_ONLY_PACKAGES" in base and "dpkg --purge --force-remove-essential apt" in base
    assert 'rm -rf "$root"/etc/apt' in base


def test_copy_from_names_an_earlier_stage(dockerfiles: dict[str, Any], svc: str) -> None:
    dockerfile = dockerfiles[svc]
    for stage, inst, _, _ in dockerfile.copies():
        if "from" in inst.flags:
            earlier = [s.name for s in dockerfile.stages[: dockerfile.stages.index(stage)]]
            assert inst.flags["from"] in earlier, f"line {inst.line}"


def test_copy_sources_exist(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    missing = [src for src in local_sources(dockerfiles[svc]) if not glob.glob(str(repo / src))]
    assert missing == [], f"services/Dockerfile ({svc}) copies paths that do not exist: {missing}"


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
        ".run/images/pip.conf",
        "services/render/tests/test_render.py",
        "libs/platform/src/likeness_platform/__pycache__/db.cpython-311.pyc",
        "libs/protos/likeness/faces/v1/faces_pb2.py",
        "libs/protos/likeness/__init__.py",
        "requirements/dev.txt",
        "README.md",
    ):
        assert dockerignore.excluded(path), path
    for path in (
        "protos/likeness/faces/v1/faces.proto",
        "libs/protos/pyproject.toml",
        "libs/platform/src/likeness_platform/db.py",
        "services/render/migrations/001_render.sql",
        "scripts/fetch_models.py",
        "scripts/install_service.py",
        "requirements/lock/faces.txt",
    ):
        assert not dockerignore.excluded(path), path


# ----------------------------------------------------------------------- entry point


def test_entry_module_exists(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    assert dockerfiles[svc].entry_command() == ["python", "-m", f"likeness_{svc}.main"]
    main = repo / "services" / svc / "src" / f"likeness_{svc}" / "main.py"
    assert main.is_file(), f"{main.relative_to(repo)} does not exist"
    assert re.search(r"^if __name__ == [\"']__main__[\"']:", main.read_text(), re.M), f"{main} does nothing when run with -m"


def test_exposes_the_service_ports(dockerfiles: dict[str, Any], svc: str, grpc_ports: dict[str, int]) -> None:
    (expose,) = dockerfiles[svc].final.all("EXPOSE")
    expected = {grpc_ports[svc], grpc_ports[svc] + 1000} | ({"gateway": {8080}, "admin": {8443}}.get(svc, set()))
    assert {int(p) for p in expose.args.split()} == expected


# ---------------------------------------------------------------------------- runtime


def test_runs_as_a_non_root_user(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    user = dockerfiles[svc].final.all("USER")[-1].args
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit()
    assert f"--uid {uid} --gid {gid}" in (repo / "scripts" / "images_base.sh").read_text(), "user not created in the base"


def final_env(dockerfile: Any) -> dict[str, str]:
    env: dict[str, str] = dockerfile.final_env()
    return env


def test_works_on_a_read_only_root_filesystem(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    env = final_env(dockerfiles[svc])
    assert env["HOME"].startswith("/tmp") and env["XDG_CACHE_HOME"].startswith("/tmp")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # The `app` step of scripts/install_service.py compiles everything under /app; pip
    # compiles the third-party packages as it installs them.
    assert install_runs(dockerfiles[svc], "app"), "bytecode must be compiled at build time"
    assert "compileall.compile_dir(root" in (repo / "scripts" / "install_service.py").read_text()
    for key in ("MPLCONFIGDIR", "TORCH_HOME"):
        if key in env:
            assert env[key].startswith("/tmp"), key


def test_application_tree_mirrors_the_repository(dockerfiles: dict[str, Any], svc: str) -> None:
    # Services find their migrations relative to their package and Tilt syncs into /app
    # by repository path: both need /app to be a copy of the checkout's layout.
    final = dockerfiles[svc].final
    assert final.all("WORKDIR")[-1].args == "/app"
    copies = [(inst.flags.get("from"), sources, dest) for stage, inst, sources, dest in dockerfiles[svc].copies() if stage is final]
    # Largest and least often changed first: packages, models, then the code.
    assert [c[0] for c in copies] == ["deps", "models", "app"]
    assert copies[0][1:] == (["/opt/venv"], "/opt/venv") and copies[2][1:] == (["/app"], "/app")
    (chown,) = [inst.flags["chown"] for stage, inst, s, _ in dockerfiles[svc].copies() if stage is final and s == ["/app"]]
    assert chown == "${SOURCE_OWNER}"
    assert any(a.args == "SOURCE_OWNER=0:0" for a in final.all("ARG")), "production images keep /app root-owned"


# ----------------------------------------------------------------------- dependencies


def test_installs_every_first_party_library_it_needs(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    folders, third_party = dependency_closure(repo, svc)
    planned, requirements = script(repo, "install_service").plan(repo, svc)
    assert set(planned) == folders | {f"services/{svc}"}
    assert planned[-1] == f"services/{svc}", "libraries come before the service"
    assert {canonicalize_name(Requirement(r).name) for r in requirements} == third_party
    dockerfile = dockerfiles[svc]
    (app,) = install_runs(dockerfile, "app")
    assert app.args.split()[-1].strip('"') == svc, "the build lays out another service than it copies"
    copied = sources_before(dockerfile, dockerfile.stage("app"), app)
    for folder in folders | {f"services/{svc}"}:
        assert covered(folder, copied), f"{folder} is needed but never copied whole"


def test_app_layout_puts_the_sources_on_the_path(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the app stage does, on a copy of the repository: the .pth lists the source
    # folders the service imports from, and libraries it does not use are gone.
    import shutil

    for folder in ("libs", "services/privacy"):
        shutil.copytree(repo / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    install = script(repo, "install_service")
    monkeypatch.setattr(sys, "argv", ["install_service.py", "app", "privacy", "--root", str(tmp_path)])
    install.main()
    listed = (tmp_path / "site" / "likeness.pth").read_text().split()
    assert sorted(listed) == [str(tmp_path / "libs/platform/src"), str(tmp_path / "libs/protos"), str(tmp_path / "services/privacy/src")]
    assert listed[-1] == str(tmp_path / "services/privacy/src")
    assert sorted(p.name for p in (tmp_path / "libs").iterdir()) == ["platform", "protos"]
    assert list((tmp_path / "services/privacy/src/likeness_privacy").glob("__pycache__/main.*.pyc"))


def test_dependency_layer_is_the_lock_and_no_code(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    # The third-party layer must change with the lock only, or each code edit re-ships
    # every package (for faces, gigabytes of torch).
    dockerfile = dockerfiles[svc]
    deps = dockerfile.stage("deps")
    assert set(sources_before(dockerfile, deps)) == {f"requirements/lock/{svc}.txt"}
    (install,) = [r for r in deps.all("RUN") if "pip" in r.args]
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", "--no-cache-dir", "-r /tmp/lock.txt"):
        assert flag in install.args, flag
    assert "python3 -m venv --without-pip /opt/venv" in install.args, "the runtime venv carries no pip"
    assert "site.addsitedir('/app/site')" in install.args


def test_lock_pins_what_the_pyprojects_ask_for(svc: str, repo: Path) -> None:
    locked = lock(repo, svc)
    _, requirements = script(repo, "install_service").plan(repo, svc)
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is missing from requirements/lock/{svc}.txt: run scripts/images_lock.sh {svc}"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"requirements/lock/{svc}.txt has {name}=={locked[name][0]}, the pyproject asks for {requirement.specifier}: run scripts/images_lock.sh {svc}"
        )
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash in requirements/lock/{svc}.txt"


def test_locks_carry_heavy_packages_only_where_used(svc: str, repo: Path) -> None:
    locked = set(lock(repo, svc))
    for package, users in RUN_TIME_ONLY_WHERE_USED.items():
        assert (package in locked) == (svc in users), f"{package} in {svc}'s image: {package in locked}"
    # Installers stay out of the images; sounddevice (MediaPipe's audio) needs PortAudio.
    assert not locked & {"pip", "setuptools", "wheel", "sounddevice"}, locked & {"pip", "setuptools", "wheel", "sounddevice"}


def test_heavy_packages_are_imported_where_locked(repo: Path) -> None:
    # The reverse of the above: each service's code really imports what its lock carries for it.
    code = "\n".join(p.read_text() for p in (repo / "services" / "render" / "src").rglob("*.py"))
    for module in ("scipy", "skimage", "matplotlib", "mediapipe", "ai_edge_litert"):
        assert re.search(rf"^\s*(from|import) {module}\b", code, re.M), module
    faces = "\n".join(p.read_text() for p in (repo / "services" / "faces" / "src").rglob("*.py"))
    for module in ("torch", "ai_edge_litert"):
        assert re.search(rf"^\s*(from|import) {module}\b", faces, re.M), module
    assert not re.search(r"^\s*(from|import) mediapipe\b", faces, re.M)


def test_protoc_lock_matches_the_dev_pin(repo: Path) -> None:
    assert f"=={lock(repo, 'protoc')['grpcio-tools'][0]}" == dev_pins(repo)["grpcio-tools"]


def test_install_plan_refuses_an_unknown_service(repo: Path, tmp_path: Path) -> None:
    install = script(repo, "install_service")
    with pytest.raises(SystemExit, match="SERVICE"):
        install.plan(repo, "no-such-service")
    # A first-party dependency no library provides is named, not skipped.
    (tmp_path / "services" / "x").mkdir(parents=True)
    (tmp_path / "services" / "x" / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["likeness-nothing"]\n')
    with pytest.raises(SystemExit, match="likeness-nothing"):
        install.plan(tmp_path, "x")


def test_every_service_has_a_complete_bake_target(bake_targets: dict[str, Any], dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    target = bake_targets[svc]
    assert target["context"] == "." and (repo / target["dockerfile"]).is_file()
    assert target["tags"] == [f"likeness-{svc}"]
    dockerfile = dockerfiles[svc]
    declared = {a.raw.split("=")[0]: "=" in a.raw for s in dockerfile.stages for a in s.all("ARG")}
    declared |= {k: True for k in dockerfile.global_args}
    assert set(target["args"]) <= set(declared), f"build args the Dockerfile does not declare: {set(target['args']) - set(declared)}"
    required = {name for name, has_default in declared.items() if not has_default and name not in dockerfile.global_args}
    assert required <= set(target["args"]), f"{svc} leaves {required - set(target['args'])} unset"
    assert lock_name(dockerfile) == svc


def test_bake_builds_every_service_and_nothing_else(bake_targets: dict[str, Any], services: tuple[str, ...], repo: Path) -> None:
    assert set(bake_targets) == set(services)
    bake = json.loads((repo / "docker-bake.json").read_text())
    assert sorted(bake["group"]["default"]["targets"]) == sorted(services)
    # One recipe for every service: no per-service Dockerfiles.
    assert {t["dockerfile"] for t in bake_targets.values()} == {"services/Dockerfile"}
    assert [p.relative_to(repo).as_posix() for p in (repo / "services").rglob("Dockerfile")] == ["services/Dockerfile"]


def test_a_build_without_service_stops_with_a_message(dockerfile_parser: Any, repo: Path) -> None:
    dockerfile = dockerfile_parser(repo / "services" / "Dockerfile", {})
    guard = [r for s in dockerfile.stages for r in s.all("RUN") if "--build-arg SERVICE" in r.args]
    assert guard and guard[0].args.startswith('test -n ""'), "an empty SERVICE must fail the build before anything is copied"


def test_generated_protos_are_built_in_the_image(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    dockerfile = dockerfiles[svc]
    runs = " && ".join(r.args for r in dockerfile.stage("protos").all("RUN"))
    assert "--require-hashes" in runs and "/tmp/protoc.txt" in runs
    assert re.search(r"python (/app/)?scripts/gen_protos.py", runs)
    app_copies = [(inst.flags.get("from"), sources) for stage, inst, sources, _ in dockerfile.copies() if stage.name == "app"]
    assert ("protos", ["/app/libs/protos/"]) in app_copies


def model_names_in_source(repo: Path, svc: str, known: set[str]) -> set[str]:
    code = "\n".join(p.read_text() for p in (repo / "services" / svc / "src").rglob("*.py"))
    return {name for name in known if name in code}


def fetched_models(dockerfile: Any, known: set[str]) -> tuple[set[str], set[str], Any]:
    """(files fetched, files checked, the stage) of the image's model stage."""
    (stage,) = [s for s in dockerfile.stages if any("fetch_models.py" in r.args for r in s.all("RUN"))]
    (run,) = [r for r in stage.all("RUN") if "fetch_models.py" in r.args]
    fetched: set[str] = set()
    checked: set[str] = set()
    for command in re.split(r"&&|;|\bthen\b", run.args):
        words = command.split()
        if any(w.endswith("fetch_models.py") for w in words):
            names = {w for w in words if w in known}
            (checked if "--check" in words else fetched).update(names)
    return fetched, checked, stage


def test_model_files_are_baked_in_where_needed(dockerfiles: dict[str, Any], svc: str, repo: Path) -> None:
    # Exactly the files the service's code opens: a missing one stops the service at
    # start, a surplus one is dead weight in every pull.
    known = {m.name for m in script(repo, "fetch_models").MODELS}
    dockerfile = dockerfiles[svc]
    fetched, checked, stage = fetched_models(dockerfile, known)
    assert fetched == model_names_in_source(repo, svc, known)
    assert checked == fetched, "the build must fail on a missing or corrupt model file"
    (run,) = [r for r in stage.all("RUN") if "fetch_models.py" in r.args]
    if not fetched:
        # fetch_models.py without names fetches everything; the image must not ask it to.
        assert 'if [ -n "" ]' in run.args
    model_dir = re.search(r"--dir (\S+)", run.args).group(1)
    copies = [(inst.flags.get("from"), sources, dest) for st, inst, sources, dest in dockerfile.copies() if st is dockerfile.final]
    assert (stage.name, [model_dir], model_dir) in copies
    assert final_env(dockerfile)["LIKENESS_MODEL_DIR"] == model_dir


def test_every_model_file_is_opened_somewhere(repo: Path) -> None:
    # fetch_models.py downloads only what a service (or a test judging one) opens.
    code = "\n".join(p.read_text() for p in repo.glob("services/*/*/**/*.py"))
    for model in script(repo, "fetch_models").MODELS:
        assert model.name in code, f"{model.name} is fetched but nothing opens it"


def test_opencv_gets_its_system_libraries(bake_targets: dict[str, Any], svc: str, repo: Path) -> None:
    # The GL runtime base has OpenCV's libGL/GLib and the EGL/GLES loaders MediaPipe links;
    # a service gets it when its lock has OpenCV or MediaPipe, and only then.
    locked = set(lock(repo, svc))
    base = (repo / "scripts" / "images_base.sh").read_text()
    gl_packages = set(re.search(r'GL_PACKAGES="([^"]+)"', base).group(1).split())
    assert {"libgl1", "libglib2.0-0"} | MEDIAPIPE_NEEDS <= gl_packages
    assert (bake_targets[svc]["args"].get("GL") == "1") == bool(locked & OPENCV_NEEDING_GL), svc
    # The plain runtime base has none of them.
    runtime = set(re.search(r"^RUNTIME_PACKAGES=(\S+)", base, re.M).group(1).split(","))
    assert not runtime & gl_packages


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


def test_parser_applies_build_args_in_scope(tmp_path: Path, dockerfile_parser: Any) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(
        'ARG BASE=python:3.11-slim\nFROM ${BASE} AS one\nARG NAME\nARG EMPTY=""\nCOPY services/${NAME}/ x/\nRUN echo "${EMPTY}" ${OTHER}\n'
        'FROM ${BASE}\nCOPY services/${NAME}/ y/\nARG NAME\nENV APP=m_${NAME}.main\nENTRYPOINT ["/bin/sh", "-c", "exec python -m \\"${APP}\\" \\"$@\\"", "--"]\n'
    )
    parsed = dockerfile_parser(path, {"NAME": "billing"})
    assert parsed.stages[0].base == "${BASE}"
    assert [d for _, _, _, d in parsed.copies()] == ["x/", "y/"]
    assert [s for _, _, s, _ in parsed.copies()] == [["services/billing/"], ["services/${NAME}/"]]  # ARG not yet in scope
    assert parsed.stage("one").all("RUN")[0].args == 'echo "" ${OTHER}'
    assert parsed.entry_command() == ["python", "-m", "m_billing.main"]
