#!/usr/bin/env bash
# syscalls.sh - system calls and context switches per command, per thread.
#
# Starts a fresh server (build/calderwood) on a free loopback port with a fresh
# data directory, drives it with build/calderwood-bench, and once commands flow
# counts every system call of every server thread for WINDOW seconds with
# `perf trace -s` (in-kernel counting: it does not stop the threads as strace
# does, so batches keep the size they have without it). Reads /metrics and
# /proc/PID/task/*/status before and after the window, and prints one table:
# thread, syscall, calls, calls per command, calls per commit.
#
# Usage: tools/bench/syscalls.sh moderate|saturate [OUT_DIR]
#   moderate  10,000 visit-page/s on 1 connection (the suite's rate-10000)
#   saturate  add-to-cart on 50 users x 1 connection at 60,000/s (more than
#             the server takes on this machine: it runs flat out)
# Environment: RATE (commands/s), WINDOW (seconds counted, default 6), SERVER, BENCH, SERVER_ARGS
# (extra arguments for calderwood serve).
# Counts per command do not depend on the machine's load; times do.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=${1:?moderate or saturate}
OUT=${2:-$(mktemp -d /tmp/cw-syscalls-XXXXXX)}
SERVER=${SERVER:-$ROOT/build/calderwood}
BENCH=${BENCH:-$ROOT/build/calderwood-bench}
WINDOW=${WINDOW:-6}
mkdir -p "$OUT"
case "$MODE" in
moderate) LOAD=(rate --command visit-page --rate "${RATE:-10000}") ;;
saturate) LOAD=(rate --command add-to-cart --users 50 --connections 50 --rate "${RATE:-60000}") ;;
*) echo "syscalls.sh: moderate or saturate" >&2; exit 2 ;;
esac

DATA=$(mktemp -d /tmp/cw-syscalls-data-XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
SPID="" BPID=""
cleanup() {
    [ -z "$BPID" ] || kill "$BPID" 2>/dev/null || true
    if [ -n "$SPID" ]; then
        kill -TERM "$SPID" 2>/dev/null || true
        wait "$SPID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap cleanup EXIT

echo bench-password | "$SERVER" user add --data "$DATA" --email bench@bench.test --first B --last U \
    >"$OUT/user-add.log" 2>&1
# shellcheck disable=SC2086
"$SERVER" serve --data "$DATA" --listen "$ADDR" --no-demo-user --login-rate 100000 \
    --login-burst 100000 ${SERVER_ARGS:-} >"$OUT/server.log" 2>&1 </dev/null &
SPID=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://$ADDR/health" && break
    sleep 0.1
done
metric() { curl -s "http://$ADDR/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
snapshot() { # threads' names and context switches, then the engine's counters
    for t in /proc/"$SPID"/task/*; do
        printf '%s %s %s %s\n' "$(basename "$t")" "$(cat "$t/comm")" \
            "$(awk '/^voluntary_ctxt/ { print $2 }' "$t/status")" \
            "$(awk '/^nonvoluntary_ctxt/ { print $2 }' "$t/status")"
    done >"$OUT/$1.threads"
    printf '%s %s\n' "$(metric calderwood_batch_commands_total)" "$(metric calderwood_batches_total)" \
        >"$OUT/$1.engine"
}

"$BENCH" "${LOAD[@]}" --duration $((WINDOW + 6)) --server "$ADDR" --server-pid "$SPID" \
    >"$OUT/bench.out" 2>"$OUT/bench.err" &
BPID=$!
# The window opens once commands flow (a few thousand committed), not after a guess.
for _ in $(seq 300); do
    c=$(metric calderwood_batch_commands_total)
    [ "${c:-0}" -gt 2000 ] && break
    kill -0 "$BPID" 2>/dev/null || { echo "the load generator stopped early" >&2; exit 1; }
    sleep 0.1
done
uptime >"$OUT/uptime"
snapshot before
timeout -s INT "$WINDOW" perf trace -s -p "$SPID" -o "$OUT/trace.txt" >/dev/null 2>&1 || true
snapshot after
wait "$BPID" || true
BPID=""
python3 "$ROOT/tools/bench/syscalls-table.py" "$OUT" | tee "$OUT/table.md"
echo "raw files: $OUT" >&2
