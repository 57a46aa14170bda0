#!/bin/bash
# A local distributed cluster on loopback, everything under one directory:
# nats-server (JetStream on disk), PostgreSQL (tests/pg/cluster.sh: socket
# only), two processors (one active, one standby), two gateways, one query
# node, and nginx in front (WebSocket upgrades proxied, /query to the query
# node, the rest to the gateways).
#
#   tools/cluster.sh up [DIR]     # make cluster      (DIR default ./cluster-data)
#   tools/cluster.sh down [DIR]   # make cluster-down: stops exactly what up started
#   tools/cluster.sh free-base    # prints a BASE_PORT whose ports are all free now (python3)
#
# BASE_PORT (default 8000): nginx on it, gateways +1 and +2, the query node
# +3, processors +4 and +5, nats-server +22. BUILD selects the binary.
# NODE_ARGS: more `serve` flags for every node (e.g. --login-rate 100000);
# DEMO_PASSWORD: the demo user's password (default: random, printed).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/${BUILD:-build}/calderwood}
cmd=${1:-}

# A base port whose cluster ports (P .. P+5, P+22) are all free now.
free_base() {
    python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randrange(20000, 60000)
    try:
        for q in [p + i for i in range(6)] + [p + 22]:
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        continue
else:
    raise SystemExit("cluster: no free base port")
PY
}
[ "$cmd" = free-base ] && { free_base; exit; }
DIR=$(mkdir -p "${2:-cluster-data}" && cd "${2:-cluster-data}" && pwd)
P=${BASE_PORT:-8000}

stop_pidfile() {
    local f=$1
    [ -f "$f" ] || return 0
    local pid
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
}

down() {
    [ -f "$DIR/nginx.pid" ] && nginx -c "$DIR/nginx.conf" -p "$DIR" -s quit 2>/dev/null && sleep 0.5
    for n in gw1 gw2 query proc1 proc2 nats; do stop_pidfile "$DIR/$n.pid"; done
    if [ -f "$DIR/pg-dir" ]; then
        "$ROOT/tests/pg/cluster.sh" stop "$(cat "$DIR/pg-dir")" || true
        rm -f "$DIR/pg-dir"
    fi
    echo "cluster in $DIR stopped"
}

wait_health() {
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "cluster: nothing answers /health on port $1 (see $DIR/$2.log)" >&2
    exit 1
}

node() { # node NAME ROLE PORT
    # shellcheck disable=SC2086 # NODE_ARGS is a list of flags: split on purpose
    "$BIN" serve --role "$2" --queue "nats://127.0.0.1:$((P + 22))" --store "$STORE" \
        --data "$DIR/$1" --listen "127.0.0.1:$3" --secret-key-file "$DIR/secret.key" \
        ${NODE_ARGS:-} </dev/null >"$DIR/$1.log" 2>&1 &
    echo $! >"$DIR/$1.pid"
    wait_health "$3" "$1"
}

write_nginx_conf() {
    cat >"$DIR/nginx.conf" <<CONF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log $DIR/nginx-access.log;
    client_body_temp_path $DIR/nginx-tmp;
    proxy_temp_path $DIR/nginx-tmp;
    upstream gateways { server 127.0.0.1:$((P + 1)); server 127.0.0.1:$((P + 2)); }
    upstream queries { server 127.0.0.1:$((P + 3)); }
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:$P;
        proxy_http_version 1.1;
        proxy_set_header Host \$http_host;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$connection_upgrade;
        proxy_read_timeout 1h;
        location = /query { proxy_pass http://queries; }
        location / { proxy_pass http://gateways; }
    }
}
CONF
}

up() {
    [ -x "$BIN" ] || { echo "cluster: $BIN is missing: make first" >&2; exit 1; }
    [ -f "$DIR/nats.pid" ] && { echo "cluster: $DIR already runs one (tools/cluster.sh down $DIR)" >&2; exit 1; }
    # Go runs a thread per core by default; here nats-server shares the cores with seven
    # other processes, and on two cores one thread saved it 15-18 % of its CPU per
    # command, most of it hand-offs between threads (docs/PERFORMANCE.md).
    local procs=$(($(nproc) / 2))
    GOMAXPROCS=$((procs > 0 ? procs : 1)) nats-server -a 127.0.0.1 -p $((P + 22)) -js \
        -sd "$DIR/jetstream" -l "$DIR/nats.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$DIR/nats.pid"
    eval "$("$ROOT/tests/pg/cluster.sh" start </dev/null 2>"$DIR/pg-start.log")"
    echo "$CW_PG_DIR" >"$DIR/pg-dir"
    psql "$CW_TEST_STORE" -qc "CREATE DATABASE calderwood"
    STORE="postgres://calderwood@/calderwood?host=$CW_PG_DIR"
    [ -f "$DIR/secret.key" ] || (umask 077 && head -c 32 /dev/urandom >"$DIR/secret.key")
    node proc1 processor $((P + 4))
    node proc2 processor $((P + 5))
    # Through the queue, as an operator would: the active processor writes it.
    local password
    password=${DEMO_PASSWORD:-$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')}
    printf '%s\n' "$password" | "$BIN" user add --data "$DIR/cli" --store "$STORE" \
        --queue "nats://127.0.0.1:$((P + 22))" --email demo@calderwood.local --first Demo \
        --last User >/dev/null
    node gw1 gateway $((P + 1))
    node gw2 gateway $((P + 2))
    node query query $((P + 3))
    mkdir -p "$DIR/nginx-tmp"
    write_nginx_conf
    nginx -c "$DIR/nginx.conf" -p "$DIR" </dev/null >>"$DIR/nginx-error.log" 2>&1
    wait_health "$P" nginx-error
    echo "Calderwood cluster: open http://127.0.0.1:$P/login"
    echo "Log in as demo@calderwood.local with password $password"
    for n in nats proc1 proc2 gw1 gw2 query nginx; do
        printf '  %-6s pid %-7s log %s\n' "$n" "$(cat "$DIR/$n.pid")" \
            "$DIR/$([ $n = nginx ] && echo nginx-error || echo $n).log"
    done
    echo "  postgres data and log in $CW_PG_DIR"
    echo "Stop it with: make cluster-down (or tools/cluster.sh down $DIR)"
}

case "$cmd" in
up) trap 'echo "cluster: start failed; stopping what started" >&2; down' ERR; up ;;
down) down ;;
*) echo "usage: tools/cluster.sh up|down [DIR] | free-base" >&2; exit 2 ;;
esac
