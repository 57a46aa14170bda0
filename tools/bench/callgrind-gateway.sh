#!/bin/bash
# callgrind-gateway.sh - instructions per command of the gateway thread.
#
#   tools/bench/callgrind-gateway.sh [--server BIN] [--rate R] [--duration D]
#                                    [--command NAME] [--out DIR]
#
# Starts BIN (default build/calderwood) serve with --gateway-threads 1 under
# valgrind --tool=callgrind --separate-threads=yes on a fresh data directory,
# drives it with build/calderwood-bench rate (one connection, R commands/s for
# D s; default 1,000/s for 10 s), stops it with SIGTERM, and prints the
# inclusive instructions per command of the gateway thread's functions:
# run_loop is the whole thread (read, decode, validate, queue, ack, and the
# routing and writing of the update), cw_ws_on_data a read's messages up to
# their acks written, cw_wire_parse the decoding. The divisor is the number
# of messages the server decoded (on_message's calls), so commands the bench
# gave up on under valgrind's slowness still count right. Instruction counts
# do not depend on the machine's load; the rate only changes how many
# commands share a read or a commit, so compare runs made with the same one.
# Needs valgrind (callgrind_annotate), curl, python3 and bc.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=build/calderwood RATE=1000 DUR=10 CMD=visit-page OUT=
while [ $# -gt 0 ]; do
    case $1 in
    --server) BIN=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --command) CMD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--server BIN] [--rate R] [--duration D] [--command NAME] [--out DIR]" >&2; exit 2 ;;
    esac
done
BENCH=build/calderwood-bench
[ -x "$BENCH" ] || { echo "$BENCH is missing: make build/calderwood-bench" >&2; exit 1; }
OUT=${OUT:-$(mktemp -d /tmp/calderwood-cg-XXXXXX)}
mkdir -p "$OUT"
DATA=$(mktemp -d /tmp/calderwood-cg-data-XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SPID=
cleanup() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then kill -TERM "$SPID"; wait "$SPID"; fi
    rm -rf "$DATA"
}
trap cleanup EXIT

echo bench-password | "$BIN" user add --data "$DATA" --email bench@bench.test --first Bench \
    --last User >"$OUT/user-add.log" 2>&1 || { echo "user add failed: $OUT/user-add.log" >&2; exit 1; }
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.out" \
    "$BIN" serve --data "$DATA" --listen "127.0.0.1:$PORT" --no-demo-user --gateway-threads 1 \
    --login-rate 100000 --login-burst 100000 >"$OUT/server.log" 2>&1 </dev/null &
SPID=$!
for _ in $(seq 1200); do # valgrind starts slowly: up to 2 minutes
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && break
    kill -0 "$SPID" 2>/dev/null || { echo "the server exited: $OUT/server.log" >&2; exit 1; }
    sleep 0.1
done
"$BENCH" rate --server "127.0.0.1:$PORT" --rate "$RATE" --duration "$DUR" --command "$CMD" \
    --grace 60 --quiet >"$OUT/bench.json" 2>"$OUT/bench.err" || echo "calderwood-bench failed: $OUT/bench.err" >&2
kill -TERM "$SPID"
wait "$SPID"
SPID=

# The gateway thread is the one that ran cw_ws_on_data.
F=$(grep -l "cw_ws_on_data" "$OUT"/cg.out-* | head -1)
[ -n "$F" ] || { echo "no gateway thread in $OUT" >&2; exit 1; }
callgrind_annotate --inclusive=yes --threshold=100 "$F" >"$OUT/inclusive.txt" 2>/dev/null
callgrind_annotate --tree=caller --threshold=100 "$F" >"$OUT/callers.txt" 2>/dev/null
N=$(grep -B3 '\*  .*ws\.c:on_message \[' "$OUT/callers.txt" | grep -o '([0-9,]*x)' | tr -d '(),x' | head -1)
echo "$CMD at $RATE/s for $DUR s: $N messages decoded; callgrind files in $OUT"
for fn in run_loop cw_ws_on_data cw_wire_parse cw_coerce_command cw_ws_pump cw_inflight_add \
    cw_inflight_join send_ack cw_envelope_new cw_hub_drain_bus cw_inflight_routed cw_outcome_release; do
    ir=$(grep -m1 -E "[:/]$fn(\.[a-z0-9.]*)? \[" "$OUT/inclusive.txt" | awk '{gsub(",", "", $1); print $1}')
    [ -n "$ir" ] && printf "%-20s %8.0f instructions/command\n" "$fn" "$(echo "$ir / $N" | bc -l)"
done
