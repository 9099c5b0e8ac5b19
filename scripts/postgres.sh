#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests, listening on 127.0.0.1 only.
#
#   eval "$(bash scripts/postgres.sh start)"   # installs if missing, starts, prints the export
#   bash scripts/postgres.sh status             # prints the export if it is running
#   bash scripts/postgres.sh stop               # stops it and removes its folder
#
# stdout carries only `export TALLINN_TEST_PG=postgresql://postgres@127.0.0.1:PORT/tallinn_test`;
# everything else goes to stderr. State lives in $TALLINN_PG_DIR (default /tmp/tallinn-pg).
set -euo pipefail

ROOT=${TALLINN_PG_DIR:-/tmp/tallinn-pg}
STATE=$ROOT/state
DATABASE=tallinn_test

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

find_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -z "$dir" ]] && command -v pg_ctl >/dev/null; then
    dir=$(dirname "$(command -v pg_ctl)")
  fi
  [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && echo "$dir"
}

install_postgres() {
  [[ $EUID -eq 0 ]] || die "PostgreSQL is not installed and we are not root to install it"
  log "installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends postgresql >&2
}

# Run a command as the server's owner: postgres refuses to run as root.
as_owner() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url_for() { echo "postgresql://postgres@127.0.0.1:$1/$DATABASE"; }

running() {
  [[ -f "$STATE" ]] || return 1
  # shellcheck disable=SC1090
  source "$STATE"
  as_owner "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

start() {
  if running; then
    log "already running on port $PGPORT"
    echo "export TALLINN_TEST_PG=$(url_for "$PGPORT")"
    return
  fi
  [[ -e "$ROOT" ]] && stop_quietly

  local bindir
  bindir=$(find_bindir || true)
  if [[ -z "$bindir" ]]; then
    install_postgres
    bindir=$(find_bindir || true)
    [[ -n "$bindir" ]] || die "no initdb/pg_ctl found under /usr/lib/postgresql after install"
  fi
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir "$ROOT" --shell /usr/sbin/nologin postgres
  fi

  mkdir -p "$ROOT"
  chmod 755 "$ROOT"
  local data=$ROOT/data sock=$ROOT/sock logfile=$ROOT/postgres.log
  mkdir -p "$sock"
  [[ $EUID -eq 0 ]] && chown postgres: "$ROOT" "$sock"

  log "initdb with $bindir into $data"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$ROOT/initdb.log" 2>&1 || { cat "$ROOT/initdb.log" >&2; die "initdb failed"; }
  # Durability is worthless for a throw-away test server; speed is not.
  cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF

  local port started=""
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 20000))
    port_in_use "$port" && continue
    if as_owner "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 60 -o "-p $port" start >&2; then
      started=yes
      break
    fi
    log "could not start on port $port, trying another"
  done
  [[ -n "$started" ]] || { cat "$logfile" >&2 || true; die "PostgreSQL did not start"; }

  printf 'PGBIN=%q\nPGDATA=%q\nPGPORT=%q\n' "$bindir" "$data" "$port" >"$STATE"
  "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DATABASE" >&2
  log "PostgreSQL $("$bindir/pg_ctl" --version | awk '{print $3}') ready on 127.0.0.1:$port"
  echo "export TALLINN_TEST_PG=$(url_for "$port")"
}

stop_quietly() {
  if [[ -f "$STATE" ]]; then
    # shellcheck disable=SC1090
    source "$STATE"
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >&2 2>&1 || true
  fi
  rm -rf "$ROOT"
}

stop() {
  if ! [[ -e "$ROOT" ]]; then
    log "not running"
    return
  fi
  if running; then
    as_owner "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >&2
  fi
  rm -rf "$ROOT"
  log "stopped and removed $ROOT"
}

status() {
  running || die "not running"
  echo "export TALLINN_TEST_PG=$(url_for "$PGPORT")"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
