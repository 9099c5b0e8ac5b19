# Two entry points, both self-contained on a fresh machine:
#   make run   install, then serve the bundled starter library over MCP (HTTP, SQLite store)
#   make test  install, then run the whole test suite with coverage, ruff and mypy
# `make run LIBRARY=path HOST=0.0.0.0 PORT=9000` serves another library, address or port.
# `make install-cli` puts the `tallinn` command on PATH (uv's tool folder).
SHELL := /bin/bash
UV ?= uv
LIBRARY ?=
HOST ?= 127.0.0.1
PORT ?= 8000
library_option = $(if $(LIBRARY),--library "$(LIBRARY)")

.PHONY: run test install install-uv install-cli lint typecheck bench

install-uv:
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet "uv>=0.5"

install: install-uv
	$(UV) sync --locked --all-extras

run: install
	$(UV) run tallinn check $(library_option)
	$(UV) run tallinn serve --http --host "$(HOST)" --port "$(PORT)" $(library_option)

test: install
	bash scripts/test.sh

# The tool gets the versions of the lock file, as `make install` does.
install-cli: install-uv
	@constraints=$$(mktemp); trap 'rm -f "$$constraints"' EXIT; \
	$(UV) export --locked --quiet --no-hashes --no-dev --all-extras --no-emit-project \
	  -o "$$constraints" >/dev/null && \
	$(UV) tool install --quiet --reinstall --constraints "$$constraints" ".[postgres]"
	@bin=$$($(UV) tool dir --bin); \
	echo "installed $$bin/tallinn"; \
	case ":$$PATH:" in *":$$bin:"*) ;; \
	  *) echo "$$bin is not on PATH: run  export PATH=\"$$bin:\$$PATH\"  (or: uv tool update-shell)";; \
	esac

lint: install
	$(UV) run ruff check src tests benchmarks
	$(UV) run ruff format --check src tests benchmarks

typecheck: install
	$(UV) run mypy

bench: install
	$(UV) run python benchmarks/bench_library.py
