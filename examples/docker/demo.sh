#!/usr/bin/env bash
# lsinit in Docker, end to end:
#   the app writes → `docker stop` (SIGTERM) → the database file is deleted → the container is
#   started again → lsinit restores the database from the replica before the app starts.
#
# Needs a running Docker engine. Run from anywhere: ./examples/docker/demo.sh
# Environment: WRITE_SECONDS (how long the app writes, default 5), KEEP=1 to keep the volumes.
# demo-local.sh is the same demo without Docker (lsinit as PID 1 of an `unshare` namespace).
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=lsinit-demo
NAME=lsinit-demo
DATA=lsinit-demo-data
REPLICA=lsinit-demo-replica
WRITE_SECONDS=${WRITE_SECONDS:-5}

step() { printf '\n==> %s\n' "$*"; }
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  if [ "${KEEP:-0}" != 1 ]; then docker volume rm -f "$DATA" "$REPLICA" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Print the first log line of container $1 that matches $2, waiting up to $3 seconds.
wait_log() {
  local i out
  for ((i = 0; i < $3 * 10; i++)); do
    # Not `docker logs | grep -m1`: under pipefail, docker's SIGPIPE would fail the match.
    out=$(docker logs "$1" 2>&1)
    if grep -m1 -E "$2" <<<"$out"; then return 0; fi
    sleep 0.1
  done
  echo "demo: timed out waiting for /$2/ in the logs of $1" >&2
  docker logs "$1" >&2 || true
  return 1
}

step "build the lsinit image and the demo app image"
docker build -f docker/Dockerfile -t lsinit:local .
docker build -f examples/docker/Dockerfile -t "$IMAGE" .

step "fresh volumes: $DATA (/data, the database) and $REPLICA (/replica, the backup)"
docker rm -f "$NAME" >/dev/null 2>&1 || true
docker volume rm -f "$DATA" "$REPLICA" >/dev/null
docker volume create "$DATA" >/dev/null
docker volume create "$REPLICA" >/dev/null

step "start: no backup yet, so the app starts with an empty database and writes a row a second"
docker run -d --name "$NAME" -v "$DATA:/data" -v "$REPLICA:/replica" "$IMAGE" >/dev/null
wait_log "$NAME" 'app: [0-9]+ visits in' 30
sleep "$WRITE_SECONDS"

step "docker stop: SIGTERM → lsinit forwards it → the app writes its last row → final sync"
docker stop -t 10 "$NAME" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
docker logs "$NAME" 2>&1 | tail -n 6
written=$(docker logs "$NAME" 2>&1 | sed -n -E 's/^app: SIG[A-Z]+: last write done, ([0-9]+) visits.*/\1/p' | tail -n 1)
echo "container exit code: $code; rows written: ${written:-?}"
[ "$code" = 0 ] || { echo "demo: FAIL: expected exit code 0" >&2; exit 1; }
[ -n "$written" ] || { echo "demo: FAIL: the app did not report its last write" >&2; exit 1; }
docker rm "$NAME" >/dev/null

step "disaster: delete the database file (and its -wal/-shm) from the data volume"
docker run --rm -v "$DATA:/data" --entrypoint sh "$IMAGE" -c 'rm -fv /data/app.db /data/app.db-wal /data/app.db-shm'

step "start again: lsinit restores /data/app.db from the replica, then starts the app"
docker run -d --name "$NAME" -v "$DATA:/data" -v "$REPLICA:/replica" "$IMAGE" >/dev/null
first=$(wait_log "$NAME" 'app: [0-9]+ visits in' 60)
docker logs "$NAME" 2>&1 | grep -E 'restor' || true
echo "$first"
restored=$(printf '%s\n' "$first" | sed -n -E 's/^app: ([0-9]+) visits in.*/\1/p')
docker stop -t 10 "$NAME" >/dev/null

if [ "$restored" = "$written" ]; then
  echo "demo: PASS: the app wrote $written rows; after the database was deleted it started with $restored"
else
  echo "demo: FAIL: the app wrote $written rows but started with ${restored:-?} after the restore" >&2
  exit 1
fi
