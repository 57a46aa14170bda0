#!/bin/bash
# The distributed deployment's tests (tests/cluster/*.test.mjs): a real
# nats-server with JetStream on disk and a throwaway PostgreSQL cluster,
# both in temporary directories, both stopped by the PID or data directory
# this script started; calderwood gateways and processors are started and
# killed by the tests themselves.
#
#   tests/cluster/run.sh [--node-test-option...] [files...]   # BUILD selects the build
#   BUILD=build/san tests/cluster/run.sh --test-name-pattern='kill -9'
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}
command -v nats-server >/dev/null || { echo "cluster: no nats-server (apt-get install nats-server)" >&2; exit 1; }
[ -d tests/e2e/node_modules/ws ] || (cd tests/e2e && npm ci --no-audit --no-fund --prefer-offline) ||
    { echo "cluster: npm ci failed" >&2; exit 1; }

dir=$(mktemp -d /tmp/cw-cluster-XXXXXX)
nats_pid=
pg_dir=
stop() {
    [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null && wait "$nats_pid" 2>/dev/null
    [ -n "$pg_dir" ] && tests/pg/cluster.sh stop "$pg_dir"
    [ -n "${CW_TEST_KEEP:-}" ] || rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# A free loopback port: the kernel picks one, nats-server is told it.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/jetstream" -l "$dir/nats.log" &
nats_pid=$!
for _ in $(seq 100); do
    grep -q "Server is ready" "$dir/nats.log" 2>/dev/null && break
    kill -0 "$nats_pid" 2>/dev/null || { cat "$dir/nats.log" >&2; exit 1; }
    sleep 0.1
done
grep -q "Server is ready" "$dir/nats.log" || { echo "cluster: nats-server did not start" >&2; exit 1; }
eval "$(tests/pg/cluster.sh start)" || exit 1
pg_dir=$CW_PG_DIR
export CW_NATS_URL="nats://127.0.0.1:$port" CW_NATS_PID=$nats_pid CW_CLUSTER_DIR=$dir

opts=()
files=()
for a in "$@"; do
    case $a in --*) opts+=("$a") ;; *) files+=("$a") ;; esac
done
[ ${#files[@]} -gt 0 ] || files=("$HERE"/*.test.mjs)
node --test --test-concurrency=1 --test-reporter=tap "${opts[@]}" "${files[@]}"
