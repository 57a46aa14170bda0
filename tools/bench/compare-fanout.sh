#!/bin/bash
# compare-fanout.sh - fan-out figures of two server binaries side by side,
# interleaved round by round so the machine's other load disturbs both alike:
# one page-view to K idle connections (delivery p99, server CPU per
# delivery), 1 sender + 49 receivers at a fixed rate (deliveries/s,
# server CPU per delivery), and 50 users' private add-to-cart at that rate
# (server CPU per command: what waking only the concerned threads saves). Each run gets a fresh server and data directory.
#
# Usage: tools/bench/compare-fanout.sh [--rounds N] [--conns K] [--rate R]
#            [--threads T] NAME=BINARY...
# (the load generator is $BUILD/calderwood-bench; raw outputs go to OUT)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
BENCH=$ROOT/$BUILD/calderwood-bench
ROUNDS=2 CONNS=15000 RATE=20000 THREADS=2 EVENTS=20
OUT=${OUT:-/tmp/cw-fanout-bench}
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [options] NAME=BINARY..." >&2; exit 2; }
mkdir -p "$OUT"

run_case() { # label binary case args...
    local label=$1 server=$2 name=$3
    shift 3
    local data port spid
    data=$(mktemp -d /tmp/cw-fanout-bench-data-XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo bench-password | "$server" user add --data "$data" --email bench@bench.test \
        --first Bench --last Bench >/dev/null 2>&1
    "$server" serve --data "$data" --listen "127.0.0.1:$port" --no-demo-user --login-rate 100000 \
        --login-burst 100000 --gateway-threads "$THREADS" >"$OUT/server-$label-$name.log" 2>&1 </dev/null &
    spid=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
    timeout -k 10 300 "$BENCH" "$@" --server "127.0.0.1:$port" --server-pid "$spid" --quiet \
        >"$OUT/$label-$name.json" 2>"$OUT/$label-$name.err"
    tail -n 1 "$OUT/$label-$name.json" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
dl = d.get("delivery_us", {})
if "delivery_us" not in d:
    dl = d.get("update_us", {})
print("%-6s %-15s load=%s delivery_p50=%6.1fms p99=%6.1fms deliveries=%9s/s server_cpu=%5.1f%% us/delivery=%6.3f us/cmd=%s rss/conn=%s KiB other_cpu=%5.1f%%" % (
    sys.argv[1], sys.argv[2], sys.argv[3], dl.get("p50", 0) / 1000, dl.get("p99", 0) / 1000,
    d.get("deliveries_per_s", "-"), d.get("server_cpu_pct", -1), d.get("server_cpu_us_per_delivery", -1),
    d.get("server_cpu_us_per_cmd", "-"), d.get("rss_per_conn_kib", "-"), d.get("other_cpu_pct", 0)))
' "$label" "$name" "$(cut -d' ' -f1 /proc/loadavg)"
    kill -TERM "$spid"
    wait "$spid"
    rm -rf "$data"
}

echo "# load before: $(cat /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    for pair in "$@"; do
        label=${pair%%=*} bin=${pair#*=}
        run_case "$label" "$bin" "conns$CONNS" connections --connections "$CONNS" --threads 2 \
            --events "$EVENTS" --settle 2
        run_case "$label" "$bin" "fanout50-$RATE" rate --command visit-page --connections 1 \
            --receivers 49 --threads 2 --rate "$RATE" --duration 10 --warmup 1
        run_case "$label" "$bin" "50users-$RATE" rate --command add-to-cart --users 50 \
            --connections 50 --rate "$RATE" --duration 10 --warmup 1
    done
done
echo "# load after: $(cat /proc/loadavg)"
