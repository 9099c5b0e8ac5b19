#!/usr/bin/env bash
# promtool for the alert-rule tests (tests/integration/test_prometheus_rules.py): installs
# Debian's prometheus package (which ships promtool) when promtool is missing and we are root,
# then prints where promtool is.
#
#   PROMTOOL=$(bash scripts/promtool.sh)   # the path of promtool, on stdout only
#
# Only promtool is used; Prometheus itself is never started (the package's service is kept
# from starting while it installs).
set -euo pipefail

log() { echo "promtool.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_promtool() {
  local found
  found=$(command -v promtool 2>/dev/null || true)
  [[ -z $found && -x /usr/bin/promtool ]] && found=/usr/bin/promtool
  [[ -n $found ]] && echo "$found"
}

if ! binary=$(find_promtool); then
  [[ $EUID -eq 0 ]] || die "promtool is not installed and we are not root to install it"
  command -v apt-get >/dev/null || die "promtool is missing and there is no apt-get to install it"
  log "installing Debian's prometheus package (for promtool) with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends prometheus >&2
  [[ $made_policy == 1 ]] && rm -f "$policy"
  binary=$(find_promtool) || die "apt-get installed prometheus, but no promtool was found"
fi
log "using $("$binary" --version 2>&1 | head -1)"
echo "$binary"
