#!/bin/bash
# A throwaway PostgreSQL 15 cluster for the tests: its data directory and
# unix socket in a fresh temporary directory, no TCP listener, trust
# authentication for the one role "calderwood".
#
#   eval "$(tests/pg/cluster.sh start)"   # exports CW_PG_DIR and CW_TEST_STORE
#   tests/pg/cluster.sh stop "$CW_PG_DIR" # pg_ctl stop on that data directory, then removes it
#   tests/pg/cluster.sh restart "$CW_PG_DIR"  # immediate stop, then start (a crash and recovery)
#   tests/pg/cluster.sh crash "$CW_PG_DIR"    # the immediate stop alone (data kept) ...
#   tests/pg/cluster.sh recover "$CW_PG_DIR"  # ... and the start, for a test that acts between
#
# As root the server runs as the unprivileged user postgres (PostgreSQL
# refuses to run as root). CW_TEST_STORE names the maintenance database;
# tests create a database of their own in it (tests/harness.h).
set -eu
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_server() {
    local dir=$1
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 \
        -o "-k $dir -c listen_addresses='' -c max_connections=200" start >/dev/null
}

case "${1:-}" in
start)
    [ -x "$BIN/initdb" ] || { echo "cluster.sh: no $BIN/initdb (apt-get install postgresql)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/cw-pg-XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$BIN/initdb" -D "$dir/data" -A trust -U calderwood -E UTF8 --no-instructions \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    start_server "$dir" || { cat "$dir/server.log" >&2; exit 1; }
    echo "export CW_PG_DIR='$dir'"
    echo "export CW_TEST_STORE='postgres://calderwood@/postgres?host=$dir'"
    ;;
stop)
    dir=${2:?usage: cluster.sh stop DIR}
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    [ -n "${CW_TEST_KEEP:-}" ] || rm -rf "$dir"
    ;;
restart)
    dir=${2:?usage: cluster.sh restart DIR}
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    start_server "$dir"
    ;;
crash)
    dir=${2:?usage: cluster.sh crash DIR}
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
recover)
    dir=${2:?usage: cluster.sh recover DIR}
    start_server "$dir"
    ;;
*)
    echo "usage: cluster.sh start | stop DIR | restart DIR | crash DIR | recover DIR" >&2
    exit 2
    ;;
esac
