# Likeness — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup run test lint security protos bench clean images images-smoke images-lock

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) scripts/mesh.py

test: setup
	@bash scripts/test.sh

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check libs services tests scripts bench
	$(PY) -m mypy
	.venv/bin/buf lint
	@bash scripts/buf_breaking.sh
	.venv/bin/lint-imports

security: setup
	$(PY) scripts/security_scan.py code
	$(PY) scripts/security_scan.py deps $${LIKENESS_ADVISORY_DIR:+--advisories "$$LIKENESS_ADVISORY_DIR"}

protos: setup
	$(PY) scripts/gen_protos.py

bench: setup
	$(PY) bench/run_all.py

# Container images with buildah (no Docker daemon): scripts/images.sh, then the whole mesh
# from the images with the chart's security context and one real ID photo (scripts/images_smoke.py).
images:
	@bash scripts/images.sh

images-smoke: setup
	$(PY) scripts/images_smoke.py

# After a dependency change: requirements/lock/*.txt (needs uv).
images-lock:
	@bash scripts/images_lock.sh

clean:
	rm -rf .run libs/protos/likeness
