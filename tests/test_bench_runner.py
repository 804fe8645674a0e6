"""bench/run_all.py (`make bench`): runs every benchmark, passes --quick to those that take
it, and fails when one fails without skipping the rest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_run_all", REPO / "bench" / "run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_bench(folder: Path, name: str, body: str) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / f"bench_{name}.py").write_text(body)


def test_finds_every_benchmark_of_the_repository() -> None:
    found = run_all().benchmarks()
    scripts = sorted(REPO.glob("bench/*/bench_*.py"))
    per_folder = {p.parent: sum(q.parent == p.parent for q in scripts) for p in scripts}
    # A folder's name, or folder/script when the folder holds several benchmarks.
    assert set(found) == {p.parent.name if per_folder[p.parent] == 1 else f"{p.parent.name}/{p.stem}" for p in scripts}
    assert {"faces", "idphoto"} <= set(found)
    assert all(path.is_file() for path in found.values())


def test_runs_all_passes_quick_where_taken_and_reports_failures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log"
    record = f"import sys; open({str(log)!r}, 'a').write(__file__.split('/')[-1] + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n"
    write_bench(tmp_path, "alpha", record + 'QUICK = "--quick"\n')
    write_bench(tmp_path, "beta", record + "raise SystemExit(3)\n")
    write_bench(tmp_path, "gamma", record)
    with pytest.raises(SystemExit) as exc:
        run_all().main(["--quick"], folder=tmp_path)
    assert exc.value.code == 1
    assert [line.strip() for line in log.read_text().splitlines()] == ["bench_alpha.py --quick", "bench_beta.py", "bench_gamma.py"]
    assert "benchmarks failed: beta" in capsys.readouterr().err


def test_only_runs_the_named_ones(tmp_path: Path) -> None:
    write_bench(tmp_path, "alpha", "raise SystemExit(1)\n")
    write_bench(tmp_path, "beta", "print('ratio 1.0x')\n")
    run_all().main(["--only", "beta"], folder=tmp_path)
