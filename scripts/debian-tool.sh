#!/usr/bin/env bash
# A tool a test needs, from Debian's packages: installs them when the command is missing and
# we are root, then prints where the command is (on stdout only).
#
#   bash scripts/debian-tool.sh COMMAND FALLBACK_PATH PACKAGE...
#
# scripts/nginx.sh, scripts/promtool.sh and scripts/chromium.sh say which. A package's system
# service is never started while it installs (policy-rc.d), and never changed.
set -euo pipefail

command_name=$1 fallback=$2
shift 2
log() { echo "$command_name: $*" >&2; }
die() { log "$*"; exit 1; }

find_command() {
  local found
  found=$(command -v "$command_name" 2>/dev/null || true)
  [[ -z $found && -x $fallback ]] && found=$fallback
  [[ -n $found ]] && echo "$found"
}

if ! binary=$(find_command); then
  [[ $EUID -eq 0 ]] || die "$command_name is not installed and we are not root to install it"
  command -v apt-get >/dev/null || die "$command_name is missing and there is no apt-get"
  log "installing Debian's $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "$@" >&2
  [[ $made_policy == 1 ]] && rm -f "$policy"
  binary=$(find_command) || die "apt-get installed $*, but no $command_name was found"
fi
log "using $binary"
echo "$binary"
