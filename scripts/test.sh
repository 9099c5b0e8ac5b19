#!/usr/bin/env bash
# The whole test suite: services, tests with coverage of src/ (>= 90%), ruff, mypy.
set -euo pipefail
cd "$(dirname "$0")/.."

# A real PostgreSQL for the store tests, unless one is given.
# Each run gets a folder of its own, so two runs on one machine never stop each other's server.
if [[ -z "${TALLINN_TEST_PG:-}" && -x scripts/postgres.sh ]]; then
  TALLINN_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tallinn-pg.XXXXXX")
  export TALLINN_PG_DIR
  eval "$(bash scripts/postgres.sh start)"
  trap 'bash scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi

uv run ruff check src tests benchmarks
uv run mypy
uv run coverage erase
uv run pytest --cov --cov-report=term --cov-report=xml "$@"
