#!/bin/bash
# compare-threads.sh - the same calderwood-bench runs against servers with
# --gateway-threads 1 and 2 (or the counts given), interleaved in one run so
# the machine's other load disturbs both alike. Each run gets a fresh server
# and data directory. Prints one line per run: threads, case, and the JSON
# summary's figures; raw outputs go to OUT (default /tmp/cw-threads-bench).
#
# Usage: tools/bench/compare-threads.sh [--rounds N] [--duration S] [THREADS...]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
SERVER=$ROOT/$BUILD/calderwood
BENCH=$ROOT/$BUILD/calderwood-bench
ROUNDS=2
D=10
OUT=${OUT:-/tmp/cw-threads-bench}
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) D=$2; shift 2 ;;
    *) break ;;
    esac
done
COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1 2)
mkdir -p "$OUT"

run_case() { # threads name args...
    local t=$1 name=$2
    shift 2
    local data port spid
    data=$(mktemp -d /tmp/cw-threads-bench-data-XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo bench-password | "$SERVER" user add --data "$data" --email bench@bench.test \
        --first Bench --last Bench >/dev/null 2>&1
    "$SERVER" serve --data "$data" --listen "127.0.0.1:$port" --no-demo-user --login-rate 100000 \
        --login-burst 100000 --gateway-threads "$t" >"$OUT/server-$t-$name.log" 2>&1 </dev/null &
    spid=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
    timeout -k 10 300 "$BENCH" "$@" --server "127.0.0.1:$port" --server-pid "$spid" --quiet \
        >"$OUT/$t-$name.json" 2>"$OUT/$t-$name.err"
    tail -n 1 "$OUT/$t-$name.json" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
u = d.get("update_us", {})
print("threads=%s case=%-12s achieved=%8.0f/s update_p50=%7.1fms p99=%7.1fms lost=%d server_cpu=%5.1f%% us/cmd=%6.1f deliveries=%8s/s us/delivery=%s other_cpu=%5.1f%%" % (
    sys.argv[1], sys.argv[2], d.get("rate_achieved", 0), u.get("p50", 0) / 1000, u.get("p99", 0) / 1000,
    d.get("lost", -1), d.get("server_cpu_pct", 0), d.get("server_cpu_us_per_cmd", 0),
    d.get("deliveries_per_s", "-"), d.get("server_cpu_us_per_delivery", "-"), d.get("other_cpu_pct", 0)))
' "$t" "$name"
    kill -TERM "$spid"
    wait "$spid"
    rm -rf "$data"
}

echo "# load before: $(cat /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for t in "${COUNTS[@]}"; do
        run_case "$t" 1conn-5k rate --command visit-page --rate 5000 --duration "$D" --warmup 1
        run_case "$t" 50users-10k rate --command add-to-cart --users 50 --connections 50 \
            --rate 10000 --duration "$D" --warmup 1
        run_case "$t" 50users-40k rate --command add-to-cart --users 50 --connections 50 \
            --rate 40000 --duration "$D" --warmup 1
        run_case "$t" fanout50-1k rate --command visit-page --connections 1 --receivers 49 \
            --threads 2 --rate 1000 --duration "$D" --warmup 1
    done
done
echo "# load after: $(cat /proc/loadavg)"
