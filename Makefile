# One command runner. `make run` and `make test` do all set-up on a fresh machine with python3.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := $(UV) run --frozen

.PHONY: setup run test lint bench system-deps clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@# bytecode compiled once here (as pip does at install), not by every command's start-up
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(UV) run --frozen python -m compileall -q monitoring dashboard >/dev/null

run: setup
	$(PY) ltfu init
	@if $(PY) ltfu status --format json | grep -q '"patients": 0,'; then $(PY) ltfu demo; fi
	@if [ ! -f ltfu-data/demo-accounts.txt ]; then \
	  umask 077; : > ltfu-data/demo-accounts.txt.tmp; \
	  for role in viewer physician data_manager admin; do \
	    pw=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))'); \
	    { echo "$$pw" | $(PY) ltfu user add $$role --role $$role --by make-run >/dev/null 2>&1 \
	      || echo "$$pw" | $(PY) ltfu user reset $$role --by make-run >/dev/null; } \
	      && echo "$$role $$pw" >> ltfu-data/demo-accounts.txt.tmp; \
	  done; \
	  mv ltfu-data/demo-accounts.txt.tmp ltfu-data/demo-accounts.txt; \
	  echo "Demo accounts, one per role (user password; shown once, kept in ltfu-data/demo-accounts.txt):"; \
	  cat ltfu-data/demo-accounts.txt; \
	else echo "Demo accounts: see ltfu-data/demo-accounts.txt"; fi
	$(PY) ltfu status
	$(PY) ltfu serve --host 127.0.0.1 --port 8501

test: setup
	@bash scripts/system-deps.sh
	$(PY) ruff check monitoring dashboard tests bench
	$(PY) mypy monitoring dashboard
	$(PY) pytest -n 2 -q

lint: setup
	$(PY) ruff check monitoring dashboard tests bench
	$(PY) ruff format --check monitoring dashboard tests bench
	$(PY) mypy monitoring dashboard

# issue 14's table (bench/processes.md); larger sizes: LTFU_BENCH_SIZES=10000,50000,200000 make bench
bench: setup
	$(PY) python -m bench.processes

clean:
	rm -rf ltfu-data .pytest_cache test-artifacts
