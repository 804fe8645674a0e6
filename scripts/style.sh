#!/usr/bin/env bash
# Format and lint exactly what git tracks (what CI sees), before a commit.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.py')
.venv/bin/ruff format -q $files
.venv/bin/ruff check -q --fix $files
.venv/bin/ruff check -q $files
.venv/bin/ruff format --check -q $files
