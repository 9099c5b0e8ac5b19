#!/usr/bin/env bash
# Chromium for the dashboard's browser test (tests/serve/test_dashboard_browser.py): installs
# Debian's chromium when it is missing and we are root, then prints where its binary is.
#
#   CHROMIUM=$(bash scripts/chromium.sh)   # the path of the browser, on stdout only
#
# The test drives it headless through Playwright (a dev dependency), with this binary: no
# browser is downloaded at run time.
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_chromium() {
  local found
  found=$(command -v chromium 2>/dev/null || true)
  [[ -z $found && -x /usr/bin/chromium ]] && found=/usr/bin/chromium
  [[ -n $found ]] && echo "$found"
}

if ! binary=$(find_chromium); then
  [[ $EUID -eq 0 ]] || die "chromium is not installed and we are not root to install it"
  command -v apt-get >/dev/null || die "chromium is missing and there is no apt-get to install it"
  log "installing Debian's chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
  binary=$(find_chromium) || die "apt-get installed chromium, but no chromium binary was found"
fi
log "using $binary"
echo "$binary"
