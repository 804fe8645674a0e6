#!/usr/bin/env bash
# The whole suite. Uses LIKENESS_DATABASE_URL when given (CI), else the tests start an embedded PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure_chromium.sh
.venv/bin/python -m pytest "$@"
