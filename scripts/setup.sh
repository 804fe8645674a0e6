#!/usr/bin/env bash
# Idempotent set-up shared by `make run` and `make test`: venv, packages, generated code, models.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.likeness-installed
if [ ! -f "$stamp" ] || [ requirements/dev.txt -nt "$stamp" ]; then
  echo "setup: installing requirements (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements/dev.txt
  # mediapipe pulls opencv-contrib; a second OpenCV build would shadow it.
  .venv/bin/python -m pip uninstall --quiet -y opencv-python opencv-python-headless >/dev/null 2>&1 || true
  touch "$stamp"
fi

# Source folders on the path: edits need no reinstall (images install the packages properly).
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
{
  echo "$PWD/libs/platform/src"
  echo "$PWD/libs/imaging/src"
  echo "$PWD/libs/client/src"
  echo "$PWD/libs/protos"
  for s in services/*/src; do echo "$PWD/$s"; done
} > "$site/likeness-dev.pth"

# The operators' `likeness` command (libs/client; images install it from its pyproject's [project.scripts]).
printf '#!%s\nfrom likeness_client.cli import main\n\nmain()\n' "$PWD/.venv/bin/python" > .venv/bin/likeness
chmod +x .venv/bin/likeness

.venv/bin/python scripts/gen_protos.py
.venv/bin/python scripts/fetch_models.py
