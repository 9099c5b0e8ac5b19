#!/usr/bin/env bash
# nginx for the deployment tests (tests/serve/test_serve_nginx.py, the rollout cycle on
# PostgreSQL): Debian's nginx, installed when missing; prints where its binary is.
#
#   NGINX=$(bash scripts/nginx.sh)      # the path of the nginx binary, on stdout only
#
# The tests start their own nginx with their own configuration on a free loopback port; the
# system service is never started or changed.
set -euo pipefail
exec bash "$(dirname "$0")/debian-tool.sh" nginx /usr/sbin/nginx nginx
