#!/usr/bin/env bash
# `make test` again and again, each time from a fresh clone of HEAD, with a CPU hog beside it:
# the suite must pass on a busy 2-core machine.
#
#   bash scripts/test-under-load.sh [RUNS]     # default 10; prints one line a run
#
# Each clone goes into a folder of its own beside this checkout (so ../shared is found), and
# is removed after its run; the run's log stays in ${TMPDIR:-/tmp}. The Node tools are
# installed once into $TALLINN_NODE_CACHE (default: a folder under ${TMPDIR:-/tmp}).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-10}
rev=$(git -C "$root" rev-parse --short HEAD)
export TALLINN_NODE_CACHE=${TALLINN_NODE_CACHE:-${TMPDIR:-/tmp}/tallinn-node-under-load}
yes >/dev/null &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
failed=0
for run in $(seq 1 "$runs"); do
  clone=$(mktemp -d "$root/../.tallinn-under-load.XXXXXX")
  git clone --quiet "$root" "$clone" && git -C "$clone" checkout --quiet "$rev"
  log=${TMPDIR:-/tmp}/tallinn-under-load-$rev-$run.log
  started=$SECONDS
  (cd "$clone" && make test) >"$log" 2>&1
  code=$?
  summary=$(grep -E "passed|failed" "$log" | tail -n 1)
  echo "run $run of $runs, commit $rev: exit $code in $((SECONDS - started)) s; $summary"
  [[ $code == 0 ]] || failed=$((failed + 1))
  rm -rf "$clone"
done
echo "$((runs - failed)) of $runs runs green"
[[ $failed == 0 ]]
