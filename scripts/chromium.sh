#!/usr/bin/env bash
# Chromium for the dashboard's browser tests (tests/serve/test_dashboard_browser.py, the
# rollout cycle on SQLite): Debian's chromium, installed when missing; prints where it is.
#
#   CHROMIUM=$(bash scripts/chromium.sh)   # the path of the browser, on stdout only
#
# The tests drive it headless through Playwright (a dev dependency), with this binary: no
# browser is downloaded at run time.
set -euo pipefail
exec bash "$(dirname "$0")/debian-tool.sh" chromium /usr/bin/chromium chromium fonts-dejavu-core
