#!/usr/bin/env bash
# nginx for the deployment test (tests/serve/test_serve_nginx.py): installs Debian's nginx when it
# is missing and we are root, then prints where its binary is.
#
#   NGINX=$(bash scripts/nginx.sh)      # the path of the nginx binary, on stdout only
#
# The test starts its own nginx with its own configuration on a free loopback port; the system
# service is never started or changed (Debian's package may start it: it is stopped again).
set -euo pipefail

log() { echo "nginx.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_nginx() {
  local found
  found=$(command -v nginx 2>/dev/null || true)
  [[ -z $found && -x /usr/sbin/nginx ]] && found=/usr/sbin/nginx
  [[ -n $found ]] && echo "$found"
}

if ! binary=$(find_nginx); then
  [[ $EUID -eq 0 ]] || die "nginx is not installed and we are not root to install it"
  command -v apt-get >/dev/null || die "nginx is missing and there is no apt-get to install it"
  log "installing Debian's nginx with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Never let the package start the system service on port 80.
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends nginx >&2
  [[ $made_policy == 1 ]] && rm -f "$policy"
  binary=$(find_nginx) || die "apt-get installed nginx, but no nginx binary was found"
fi
log "using $("$binary" -v 2>&1)"
echo "$binary"
