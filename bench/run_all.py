"""Run every benchmark (bench/*/bench_*.py) in turn: `make bench`.

Each benchmark measures against a baseline in the same run and prints the ratios; this
only runs them one after another, with the repository's sources importable, and exits
non-zero when any of them fails (after running the rest).

    .venv/bin/python bench/run_all.py [--quick] [--only faces idphoto]

--quick is passed on to each benchmark that accepts it (fewer rounds: a smoke run whose
numbers are not for comparison).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def benchmarks(folder: Path = BENCH) -> dict[str, Path]:
    """<folder>/<name>/bench_*.py by name (the folder's, or folder/file when it holds several)."""
    paths = sorted(folder.glob("*/bench_*.py"))
    crowded = {p.parent for p in paths if sum(q.parent == p.parent for q in paths) > 1}
    return {(f"{p.parent.name}/{p.stem}" if p.parent in crowded else p.parent.name): p for p in paths}


def accepts_quick(path: Path) -> bool:
    return '"--quick"' in path.read_text()


def environment() -> dict[str, str]:
    """The sources of every library and service first on PYTHONPATH, as in a checkout."""
    paths = [str(ROOT / "libs" / "protos")] + [str(p) for p in sorted(ROOT.glob("libs/*/src"))]
    paths += [str(p) for p in sorted(ROOT.glob("services/*/src"))]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def main(argv: list[str] | None = None, folder: Path = BENCH) -> None:
    found = benchmarks(folder)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to the benchmarks that take it")
    parser.add_argument("--only", nargs="+", choices=sorted(found), metavar="NAME", help=f"run only these ({', '.join(found)})")
    args = parser.parse_args(argv)
    selected = {name: path for name, path in found.items() if not args.only or name in args.only}
    env = environment()
    failed: list[str] = []
    for name, path in selected.items():
        command = [sys.executable, str(path)] + (["--quick"] if args.quick and accepts_quick(path) else [])
        print(f"=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
        print(f"=== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)
    print(f"all {len(selected)} benchmarks ran")


if __name__ == "__main__":
    main()
