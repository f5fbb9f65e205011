#!/usr/bin/env bash
# Builds respscope and runs it. With no upstream given (no --upstream flag and no
# RESPSCOPE_UPSTREAM), starts a local redis-server on 127.0.0.1:6379 when nothing listens
# there yet, and stops it again on exit. Extra arguments go to respscope.
#   deploy/run.sh
#   deploy/run.sh --upstream redis://10.0.0.5:6379 --listen 0.0.0.0:6380
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRESPSCOPE_TESTS=OFF >/dev/null
cmake --build build -j"${JOBS:-2}" --target respscope

redis_pid=""
cleanup() { [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [[ " $* " != *" --upstream "* && -z "${RESPSCOPE_UPSTREAM:-}" ]]; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "run: starting a local redis-server on 127.0.0.1:6379"
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no >/tmp/respscope-redis.log 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
fi
echo "run: starting respscope (by default clients on 127.0.0.1:6380, metrics and dashboard on" \
  "http://127.0.0.1:9190/; its start-up lines say where it listens)"
build/respscope "$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; cleanup' INT TERM
wait $child
