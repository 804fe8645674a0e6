"""Generate Python code for every contract under protos/ into libs/protos/ (package `likeness`).

Generated code is not committed: `make setup`, the Docker builds and the Tiltfile run this.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "libs" / "protos"


def main() -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / "likeness"
    if target.exists():
        shutil.rmtree(target)
    well_known = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={OUT}",
            f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}",
            *protos,
        ]
    )
    if code != 0:
        sys.exit(f"protoc failed with exit code {code}")
    # Regular packages (not namespace packages) so mypy and importers resolve them simply.
    for folder in [target, *[p for p in target.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    print(f"protos: generated {len(protos)} files into {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
