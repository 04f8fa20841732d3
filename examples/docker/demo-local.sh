#!/usr/bin/env bash
# demo.sh without Docker: the same image entrypoint (`lsinit -- node app.mjs` with
# examples/docker/litestream.yml), run as PID 1 of a fresh PID namespace by
# `unshare --pid --fork --mount-proc`, the way a container runs it:
#   the app writes → SIGTERM to PID 1 (what `docker stop` sends) → the database file is deleted →
#   started again → lsinit restores the database before the app starts.
#
# Needs Linux, root (for unshare), and a built checkout (`npm ci` or `npm run build`).
# Run from anywhere: ./examples/docker/demo-local.sh
# Environment: WRITE_SECONDS (default 4); WORK (a directory for data/, replica/ and the logs;
# default: a new temp directory, removed at the end unless KEEP=1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WRITE_SECONDS=${WRITE_SECONDS:-4}
own_work=0
if [ -n "${WORK:-}" ]; then mkdir -p "$WORK"; else WORK=$(mktemp -d) && own_work=1; fi

step() { printf '\n==> %s\n' "$*"; }
upid=''
cleanup() {
  # A demo interrupted half-way must not leave its "container" running.
  if [ -n "$upid" ] && kill -0 "$upid" 2>/dev/null; then
    pkill -KILL -P "$upid" 2>/dev/null || true
    wait "$upid" 2>/dev/null || true
  fi
  if [ "$own_work" = 1 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

[ -f "$ROOT/dist/cli/main.js" ] || { echo "demo-local: run 'npm run build' first" >&2; exit 1; }
command -v unshare >/dev/null || { echo "demo-local: unshare (util-linux) is required" >&2; exit 1; }

# The container's /data and /replica volumes become $WORK/data and $WORK/replica.
mkdir -p "$WORK/data" "$WORK/replica"
sed -e "s#/data/#$WORK/data/#g" -e "s#/replica/#$WORK/replica/#g" \
  "$ROOT/examples/docker/litestream.yml" >"$WORK/litestream.yml"

# "docker run": lsinit as PID 1, logging to $1. Sets upid (the unshare process, outside the namespace).
start() {
  APP_DB="$WORK/data/app.db" LITESTREAM_CONFIG="$WORK/litestream.yml" \
    unshare --pid --fork --mount-proc node "$ROOT/bin/lsinit.js" -- node "$ROOT/examples/quickstart/app.mjs" >"$1" 2>&1 &
  upid=$!
}

# "docker stop": SIGTERM to the namespace's PID 1 (unshare itself ignores it); sets code to its
# exit code. Not called as $(stop): `wait` only works in the shell that started unshare.
stop() {
  local inner='' i
  code=0
  for ((i = 0; i < 50; i++)); do
    inner=$(pgrep -P "$upid" || true)
    [ -n "$inner" ] && break
    sleep 0.1
  done
  [ -n "$inner" ] || { echo "demo-local: PID 1 of the namespace not found" >&2; return 1; }
  kill -TERM "$inner"
  wait "$upid" || code=$?
  upid=''
}

# Print the first line of log $1 matching $2, waiting up to $3 seconds.
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if grep -m1 -E "$2" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "demo-local: timed out waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}

step "start: no backup yet, so the app starts with an empty database and writes a row a second"
start "$WORK/run1.log"
wait_log "$WORK/run1.log" 'app: [0-9]+ visits in' 30
sleep "$WRITE_SECONDS"

step "stop: SIGTERM to PID 1 → lsinit forwards it → the app writes its last row → final sync"
stop
tail -n 6 "$WORK/run1.log"
written=$(sed -n -E 's/^app: SIG[A-Z]+: last write done, ([0-9]+) visits.*/\1/p' "$WORK/run1.log" | tail -n 1)
echo "exit code: $code; rows written: ${written:-?}"
[ "$code" = 0 ] || { echo "demo-local: FAIL: expected exit code 0" >&2; exit 1; }
[ -n "$written" ] || { echo "demo-local: FAIL: the app did not report its last write" >&2; exit 1; }

step "disaster: delete the database file (and its -wal/-shm)"
rm -fv "$WORK/data/app.db" "$WORK/data/app.db-wal" "$WORK/data/app.db-shm"

step "start again: lsinit restores the database from the replica, then starts the app"
start "$WORK/run2.log"
first=$(wait_log "$WORK/run2.log" 'app: [0-9]+ visits in' 60)
grep -E 'restor' "$WORK/run2.log" || true
echo "$first"
restored=$(printf '%s\n' "$first" | sed -n -E 's/^app: ([0-9]+) visits in.*/\1/p')
stop
echo "exit code: $code"

if [ "$restored" = "$written" ] && [ "$code" = 0 ]; then
  echo "demo-local: PASS: the app wrote $written rows; after the database was deleted it started with $restored"
else
  echo "demo-local: FAIL: the app wrote $written rows but started with ${restored:-?} after the restore (exit code $code)" >&2
  exit 1
fi
