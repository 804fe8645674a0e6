"""Lay out one service and the first-party libraries it needs for its image.

Third-party packages come from requirements/lock/<service>.txt (pinned, with hashes) in
a layer of their own; this script only handles first-party code, so that a code edit
rebuilds a thin layer and never the layer of wheels:

    python install_service.py inputs SERVICE   # the third-party requirements (lock input)
    python install_service.py app SERVICE      # /app for the image (run in /app)

Which libs/<dir> a service needs is read from its pyproject.toml (likeness-* dependencies,
followed transitively), so the Dockerfiles list no libraries. `app` deletes the libraries
the service does not need, writes /app/site/likeness.pth (the source folders, found by
Python through the .pth the image's venv carries) and compiles the bytecode: no pip,
setuptools or package metadata is needed at run time, and /app keeps the repository
layout (migrations sit beside the packages, as in a checkout; Tilt syncs into place).
"""

from __future__ import annotations

import argparse
import compileall
import re
import shutil
import tomllib
from pathlib import Path

FIRST_PARTY = "likeness"


def _project(pyproject: Path) -> dict[str, object]:
    if not pyproject.is_file():
        raise SystemExit(f"{pyproject} is missing: is SERVICE the name of a folder under services/?")
    project: dict[str, object] = tomllib.loads(pyproject.read_text())["project"]
    return project


def _name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement, normalised (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise SystemExit(f"cannot read the requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def libraries(root: Path) -> dict[str, str]:
    """Distribution name -> libs/<dir> for every first-party library."""
    return {_name(str(_project(p)["name"])): p.parent.relative_to(root).as_posix() for p in sorted(root.glob("libs/*/pyproject.toml"))}


def plan(root: Path, service: str) -> tuple[list[str], list[str]]:
    """(folders to install, libraries first and the service last; third-party requirements)."""
    known = libraries(root)
    folders: list[str] = []
    third_party: list[str] = []
    todo = [f"services/{service}"]
    while todo:
        folder = todo.pop()
        folders.append(folder)
        dependencies = _project(root / folder / "pyproject.toml").get("dependencies", [])
        assert isinstance(dependencies, list)
        for requirement in dependencies:
            name = _name(requirement)
            if not name.startswith(FIRST_PARTY):
                if requirement not in third_party:
                    third_party.append(requirement)
            elif name not in known:
                raise SystemExit(f"{folder} depends on {name}, which no libs/*/pyproject.toml provides")
            elif known[name] not in folders and known[name] not in todo:
                todo.append(known[name])
    return folders[::-1], third_party


def source_folder(root: Path, folder: str) -> Path:
    """Where a project's packages live: src/ when it has one (setuptools' find where=)."""
    where = tomllib.loads((root / folder / "pyproject.toml").read_text())
    found = where.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {}).get("where", ["."])
    return (root / folder / found[0]).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("inputs", "app"))
    parser.add_argument("service", help="folder under services/")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository layout (default: the working directory)")
    args = parser.parse_args()
    if not args.service:
        raise SystemExit("no service given: build with --build-arg SERVICE=<folder under services/>")
    root = args.root.resolve()
    folders, third_party = plan(root, args.service)
    if args.step == "inputs":
        print("\n".join(third_party))
        return
    for lib in sorted(root.glob("libs/*")):
        if lib.relative_to(root).as_posix() not in folders:
            shutil.rmtree(lib)
    site = root / "site"
    site.mkdir(exist_ok=True)
    (site / "likeness.pth").write_text("".join(f"{source_folder(root, folder)}\n" for folder in folders))
    if not compileall.compile_dir(root, quiet=1):
        raise SystemExit("byte-compiling the application failed")


if __name__ == "__main__":
    main()
