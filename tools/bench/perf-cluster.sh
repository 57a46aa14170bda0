#!/bin/bash
# perf-cluster.sh - instructions and CPU time per committed command, per
# process of the local cluster, around one fixed-rate step.
#
# Starts the cluster of tools/cluster.sh (nats-server, PostgreSQL, two
# processors, two gateways, a query node, nginx) on a free base port, runs
# `calderwood-bench rate` straight at gateway 1 with `perf stat -e
# instructions:u,task-clock,raw_syscalls:sys_enter,context-switches` attached
# to every process (PostgreSQL: the postmaster and its children), and divides
# by the commands the processors committed in the step (their /metrics).
# Instructions and system calls are what to compare across builds on a loaded
# machine; task-clock and context switches are given beside them.
#
# Usage: tools/bench/perf-cluster.sh [RATE [SECONDS]]   (default 5000 for 6 s)
# Environment: BUILD (default build), KEEP=1 leaves the cluster up (prints its dir),
# PERF_RECORD="gw1 nats" also records `perf record -g` profiles of those processes (into
# PERF_OUT, default /tmp; PERF_RECORD_OPTS replaces -g, e.g. "--call-graph dwarf");
# CALLGRIND="gw2 query proc1" runs those nodes under callgrind and prints their
# instructions per committed command, counted from before the bench starts to
# after the last commit (so keep gw1, which also hashes the bench's password,
# out of it; perf stat's instructions need a PMU, which a VM may not have).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
RATE=${1:-5000}
SECS=${2:-6}
WORK=$(mktemp -d /tmp/cw-perf-cluster-XXXXXX)
D=$WORK/cluster
PASSWORD=perf-password

P=$("$ROOT/tools/cluster.sh" free-base)
cleanup() {
    [ "${KEEP:-0}" = 1 ] && { echo "cluster left up in $D (BASE_PORT=$P)"; return; }
    BUILD=$BUILD "$ROOT/tools/cluster.sh" down "$D" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BIN=$ROOT/$BUILD/calderwood
if [ -n "${CALLGRIND:-}" ]; then
    # cluster.sh runs $BIN for every node: this wrapper puts the chosen ones under callgrind.
    cat >"$WORK/node.sh" <<WRAP
#!/bin/bash
for n in $CALLGRIND; do
    case "\$*" in *"--data $D/\$n "*)
        exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.\$n" "$BIN" "\$@" ;;
    esac
done
exec "$BIN" "\$@"
WRAP
    chmod +x "$WORK/node.sh"
    BIN=$WORK/node.sh
fi
BIN=$BIN BASE_PORT=$P DEMO_PASSWORD=$PASSWORD NODE_ARGS="--login-rate 100000 --login-burst 100000" \
    BUILD=$BUILD "$ROOT/tools/cluster.sh" up "$D" >"$WORK/up.log" 2>&1 ||
    { cat "$WORK/up.log"; exit 1; }

committed() {
    for p in $((P + 4)) $((P + 5)); do curl -s -m 5 "http://127.0.0.1:$p/metrics"; done |
        awk '/^calderwood_batch_commands_total /{ c += $2 } /^calderwood_batches_total /{ b += $2 }
             END { printf "%d %d\n", c, b }'
}

names="gw1 gw2 proc1 proc2 query nats nginx postgres"
pids_of() {
    case $1 in
    nginx) local m; m=$(cat "$D/nginx.pid"); echo "$m$(ps -o pid= --ppid "$m" | tr -d ' ' | sed 's/^/,/' | tr -d '\n')" ;;
    postgres) local m; m=$(head -n 1 "$(cat "$D/pg-dir")/data/postmaster.pid")
        echo "$m$(ps -o pid= --ppid "$m" | tr -d ' ' | sed 's/^/,/' | tr -d '\n')" ;;
    *) cat "$D/$1.pid" ;;
    esac
}

# A warm-up, so logins, connections and caches are not in the measured step.
"$ROOT/$BUILD/calderwood-bench" rate --command visit-page --rate 1000 --duration 2 --warmup 0 \
    --grace 2 --server "127.0.0.1:$((P + 1))" --email demo@calderwood.local --password "$PASSWORD" \
    >/dev/null 2>&1
sleep 1

for n in ${CALLGRIND:-}; do callgrind_control -z "$(cat "$D/$n.pid")" >/dev/null 2>&1; done
cg_before=$(committed)

# The bench logs in (a password hash) and connects first: the window opens
# 2 s into its run and closes before its end, and the commands committed
# within the window are what the CPU is divided by.
"$ROOT/$BUILD/calderwood-bench" rate --command visit-page --rate "$RATE" --duration $((SECS + 3)) \
    --warmup 0 --grace 3 --server "127.0.0.1:$((P + 1))" --email demo@calderwood.local \
    --password "$PASSWORD" >"$WORK/bench.out" 2>&1 &
bench=$!
sleep 2
load=$(cut -d' ' -f1-3 /proc/loadavg)
perf_pids=()
for n in $names; do
    perf stat -x, -e instructions:u,task-clock,raw_syscalls:sys_enter,context-switches -p "$(pids_of "$n")" -o "$WORK/$n.perf" &
    perf_pids+=($!)
done
for n in ${PERF_RECORD:-}; do
    perf record ${PERF_RECORD_OPTS:--g} -o "$WORK/$n.data" -p "$(pids_of "$n")" >/dev/null 2>&1 &
    perf_pids+=($!)
done
before=$(committed)
sleep "$SECS"
after=$(committed)
for p in "${perf_pids[@]}"; do kill -INT "$p"; done
wait "${perf_pids[@]}" 2>/dev/null
wait $bench
last=""
for _ in $(seq 60); do now=$(committed); [ "$now" = "$last" ] && break; last=$now; sleep 1; done
cg_after=$(committed)
for n in ${CALLGRIND:-}; do callgrind_control -d "$(cat "$D/$n.pid")" >/dev/null 2>&1; done
n=$(( ${after% *} - ${before% *} ))
b=$(( ${after#* } - ${before#* } ))
echo "build $BUILD, rate $RATE/s at gw1, a window of $SECS s: $n commands committed in $b batches; load average $load .. $(cut -d' ' -f1-3 /proc/loadavg)"
tail -n 1 "$WORK/bench.out" | cut -c1-200
printf '%-9s %12s %10s %12s %12s\n' process "instr/cmd" "us/cmd" "syscalls/cmd" "switches/cmd"
perf_files=()
for nm in $names; do perf_files+=("$WORK/$nm.perf"); done
awk -F, -v n="$n" '
    function row(name, i, c, s, w) {
        printf "%-9s %12s %10.1f %12.2f %12.2f\n", name, (i > 0 ? sprintf("%.0f", i / n) : "n/a"),
            c * 1000 / n, s / n, w / n
    }
    function done_file() {
        if (nm == "") return
        row(nm, i, c, s, w); ti += i; tc += c; ts += s; tw += w
        i = c = s = w = 0
    }
    FNR == 1 { done_file(); nm = FILENAME; sub(/.*\//, "", nm); sub(/\.perf$/, "", nm) }
    $3 ~ /instructions/ { i = $1 + 0 }
    $3 ~ /task-clock/ { c = $1 + 0 }
    $3 ~ /sys_enter/ { s = $1 + 0 }
    $3 ~ /context-switches/ { w = $1 + 0 }
    END { done_file(); row("total", ti, tc, ts, tw) }' "${perf_files[@]}"
for nm in ${PERF_RECORD:-}; do
    mkdir -p "${PERF_OUT:-/tmp}" && cp "$WORK/$nm.data" "${PERF_OUT:-/tmp}/perf-$nm.data"
done
cg_n=$(( ${cg_after% *} - ${cg_before% *} ))
for nm in ${CALLGRIND:-}; do
    f=$(ls -t "$WORK/cg.$nm".* 2>/dev/null | head -n 1)
    i=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    awk -v nm="$nm" -v i="${i:-0}" -v n="$cg_n" \
        'BEGIN { printf "callgrind %-6s %10.0f instructions per committed command (%d commands)\n", nm, i / n, n }'
    mkdir -p "${PERF_OUT:-/tmp}" && cp "$f" "${PERF_OUT:-/tmp}/callgrind-$nm.out"
done
