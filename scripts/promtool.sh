#!/usr/bin/env bash
# promtool for the alert-rule tests (tests/integration/test_prometheus_rules.py): Debian's
# prometheus package (which ships promtool), installed when missing; prints where promtool is.
#
#   PROMTOOL=$(bash scripts/promtool.sh)   # the path of promtool, on stdout only
#
# Only promtool is used; Prometheus itself is never started.
set -euo pipefail
exec bash "$(dirname "$0")/debian-tool.sh" promtool /usr/bin/promtool prometheus
