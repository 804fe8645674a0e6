"""Install one service and the first-party libraries it needs into the image's venv.

Run by services/Dockerfile and services/faces/Dockerfile from /app, a copy of the
repository layout, in two steps so that a change to the code reuses the (slow) layer
of third-party packages:

    python install.py requirements SERVICE   # pip install what the pyproject files name
    python install.py app SERVICE            # editable installs, compiled bytecode

Which libs/<dir> a service needs is read from its pyproject.toml (likeness-* dependencies,
followed transitively), so the Dockerfiles list no libraries. `app` also deletes the
libraries the service does not need, so an image carries only its own code.
"""

from __future__ import annotations

import argparse
import compileall
import re
import shutil
import subprocess
import sys
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


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("requirements", "app"))
    parser.add_argument("service", help="folder under services/")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository layout (default: the working directory)")
    args = parser.parse_args()
    if not args.service:
        raise SystemExit("no service given: build with --build-arg SERVICE=<folder under services/>")
    root = args.root.resolve()
    folders, third_party = plan(root, args.service)
    if args.step == "requirements":
        if third_party:
            pip(*third_party)
        return
    pip("--no-deps", *(arg for folder in folders for arg in ("-e", str(root / folder))))
    for lib in sorted(root.glob("libs/*")):
        if lib.relative_to(root).as_posix() not in folders:
            shutil.rmtree(lib)
    if not compileall.compile_dir(root, quiet=1):
        raise SystemExit("byte-compiling the application failed")


if __name__ == "__main__":
    main()
