# One command runner. `make run` and `make test` do all set-up on a fresh machine with python3.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := $(UV) run --frozen

.PHONY: setup run test lint bench system-deps clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: setup
	$(PY) ltfu init
	$(PY) ltfu demo
	$(PY) ltfu status

test: setup
	@bash scripts/system-deps.sh
	$(PY) ruff check monitoring dashboard tests
	$(PY) mypy monitoring
	$(PY) pytest -n 2 -q

lint: setup
	$(PY) ruff check monitoring dashboard tests
	$(PY) ruff format --check monitoring dashboard tests
	$(PY) mypy monitoring

bench: setup
	$(PY) python -m bench.run

clean:
	rm -rf ltfu-data .pytest_cache test-artifacts
