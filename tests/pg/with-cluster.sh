#!/bin/bash
# Runs a command with a throwaway PostgreSQL 15 cluster (cluster.sh) that
# holds one empty database, calderwood; stops the cluster afterwards, also
# when the command fails or the run is interrupted. The command finds the
# database's URL in CW_PG_STORE; "@STORE@" in its arguments is replaced by it.
#
#   tests/pg/with-cluster.sh build/bench-engine --sweep --store @STORE@
#
# For the benchmarks (make bench-engine STORE=postgres, make bench
# STORE=postgres), which want a server of their own without an admin's help.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: with-cluster.sh COMMAND [ARG...]" >&2; exit 2; }
eval "$("$HERE/cluster.sh" start)" || exit 1
trap '"$HERE/cluster.sh" stop "$CW_PG_DIR"' EXIT
trap 'exit 130' INT TERM
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_owner "$BIN/createdb" -h "$CW_PG_DIR" -U calderwood calderwood || exit 1
export CW_PG_STORE="postgres://calderwood@/calderwood?host=$CW_PG_DIR"
echo "with-cluster: PostgreSQL in $CW_PG_DIR (settings: initdb's defaults, synchronous_commit=on)"
args=()
for a in "$@"; do args+=("${a//@STORE@/$CW_PG_STORE}"); done
"${args[@]}"
