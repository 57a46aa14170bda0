#!/usr/bin/env bash
# syscalls.sh - system calls and context switches per command, per thread.
#
# Starts a fresh server (build/calderwood) on a free loopback port with a fresh
# data directory, drives it with build/calderwood-bench, and counts every
# system call of every server thread over the whole run with
# `perf stat --per-thread` on the syscall tracepoints (in-kernel counters:
# exact, and they do not stop the threads as strace does, so batches keep the
# size they have; `perf trace -s` lost most events at 10,000/s). Reads /metrics and
# /proc/PID/task/*/status before and after, and prints one table:
# thread, syscall, calls, calls per command, calls per commit.
#
# Usage: tools/bench/syscalls.sh moderate|saturate [OUT_DIR]
#   moderate  10,000 visit-page/s on 1 connection (the suite's rate-10000)
#   saturate  add-to-cart on 50 users x 1 connection at 60,000/s (more than
#             the server takes on this machine: it runs flat out)
# Environment: RATE (commands/s), DURATION (seconds of sending, default 8),
# SERVER, BENCH, SERVER_ARGS (extra arguments for calderwood serve),
# DATA_PARENT (where the data directory goes, default /tmp; /dev/shm takes
# the disk out).
# Counts per commit and per socket read hardly depend on the machine's load;
# counts per command do, through the commands per commit and per read (a
# server short of CPU or a slow disk gathers more of them), so the table
# says both.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=${1:?moderate or saturate}
OUT=${2:-$(mktemp -d /tmp/cw-syscalls-XXXXXX)}
SERVER=${SERVER:-$ROOT/build/calderwood}
BENCH=${BENCH:-$ROOT/build/calderwood-bench}
DURATION=${DURATION:-8}
mkdir -p "$OUT"
case "$MODE" in
moderate) LOAD=(rate --command visit-page --rate "${RATE:-10000}") ;;
saturate) LOAD=(rate --command add-to-cart --users 50 --connections 50 --rate "${RATE:-60000}") ;;
*) echo "syscalls.sh: moderate or saturate" >&2; exit 2 ;;
esac

# Counted one by one; any other call shows in the row "other" (all calls minus these).
SYSCALLS="recvfrom read readv writev write sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex fcntl
pwrite64 pread64 fdatasync fsync mprotect madvise mmap munmap brk getrandom clock_gettime accept4 close
openat ioctl sched_yield nanosleep clock_nanosleep"

DATA=$(mktemp -d "${DATA_PARENT:-/tmp}/cw-syscalls-data-XXXXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT
SPID=""
cleanup() {
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
curl -sf -o /dev/null "http://$ADDR/health" || { echo "the server did not start (see $OUT/server.log)" >&2; exit 1; }
metric() { curl -s "http://$ADDR/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
snapshot() { # threads' names and context switches, then the engine's counters
    for t in /proc/"$SPID"/task/*; do
        # tid, name, voluntary and involuntary switches, user and system CPU (ticks)
        printf '%s %s %s %s %s\n' "$(basename "$t")" "$(cat "$t/comm")" \
            "$(awk '/^voluntary_ctxt/ { print $2 }' "$t/status")" \
            "$(awk '/^nonvoluntary_ctxt/ { print $2 }' "$t/status")" \
            "$(sed 's/.*) //' "$t/stat" | awk '{ print $12, $13 }')"
    done >"$OUT/$1.threads"
    printf '%s %s\n' "$(metric calderwood_batch_commands_total)" "$(metric calderwood_batches_total)" \
        >"$OUT/$1.engine"
}

# Counted from before the load generator connects until every answer is in:
# a window inside the run would count commands that were read before it
# (a backlog) against calls made in it. Logins and idle loop turns fall
# inside too: few calls next to tens of thousands of commands, but the
# password hashing of 50 logins shows in the worker threads' CPU.
uptime >"$OUT/uptime"
snapshot before
EVENTS=raw_syscalls:sys_enter
for sc in $SYSCALLS; do EVENTS+=,syscalls:sys_enter_$sc; done
perf stat --per-thread -x, -e "$EVENTS" -p "$SPID" -o "$OUT/counts.csv" >/dev/null 2>&1 &
PERF=$!
for _ in $(seq 100); do # until perf has its counters open
    readlink /proc/"$PERF"/fd/* 2>/dev/null | grep -q perf_event && break
    sleep 0.1
done
"$BENCH" "${LOAD[@]}" --duration "$DURATION" --server "$ADDR" --server-pid "$SPID" \
    >"$OUT/bench.out" 2>"$OUT/bench.err" || true
kill -INT "$PERF"
wait "$PERF" || true
snapshot after
python3 "$ROOT/tools/bench/syscalls-table.py" "$OUT" | tee "$OUT/table.md"
echo "raw files: $OUT" >&2
