#!/usr/bin/env bash
# buf breaking (FILE) against main. On main itself, or before main has contracts, there is nothing to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then
  .venv/bin/buf breaking --against '.git#branch=main'
else
  echo "buf breaking: no contracts on main yet; skipped comparison"
fi
