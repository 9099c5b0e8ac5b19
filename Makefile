# Two entry points, both self-contained on a fresh machine:
#   make run   install, then serve the bundled starter library over MCP (HTTP, SQLite store)
#   make test  install, then run the whole test suite with coverage, ruff and mypy
SHELL := /bin/bash
UV ?= uv

.PHONY: run test install lint typecheck bench

install:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv>=0.5"
	$(UV) sync --locked --all-extras

run: install
	$(UV) run tallinn check
	$(UV) run tallinn serve --http

test: install
	bash scripts/test.sh

lint: install
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks

typecheck: install
	$(UV) run mypy

bench: install
	$(UV) run python benchmarks/bench_library.py
