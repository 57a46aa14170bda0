#!/bin/bash
# The PostgreSQL matrix: starts a throwaway PostgreSQL 15 cluster
# (cluster.sh), runs the store-facing tests against it for each build
# directory given (default: build), and stops the cluster, also when a
# test fails or the run is interrupted.
#
#   tests/pg/run.sh build build/san
#
# Each test binary makes a database of its own in the cluster (harness.h).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
[ $# -gt 0 ] || set -- build
# The unit and integration tests that touch the store.
TESTS="test_store test_processor test_workers test_domain test_module_load test_crash test_pg_restart test_replay"

eval "$("$HERE/cluster.sh" start)" || exit 1
trap '"$HERE/cluster.sh" stop "$CW_PG_DIR"' EXIT
trap 'exit 130' INT TERM # so that EXIT's stop runs on a signal too
echo "pg: cluster in $CW_PG_DIR"
status=0
for build in "$@"; do
    bins=""
    for t in $TESTS; do bins="$bins $build/tests/$t"; done
    echo "== PostgreSQL: unit and integration tests, $build"
    # shellcheck disable=SC2086
    BUILD=$build tests/run-unit.sh $bins || status=1
    # The e2e files that exercise the store (commands, resume and catch-up,
    # queries, users and sessions, restarts), on both builds; the gateway's
    # own (HTTP, limits, timeouts, TLS, RFC 6455) gain nothing from another
    # store, and the disk-fault ones inject faults into SQLite's file I/O.
    files="tests/e2e/ws.test.mjs tests/e2e/resume.test.mjs tests/e2e/query.test.mjs tests/e2e/lifecycle.test.mjs tests/e2e/auth.test.mjs tests/e2e/admin.test.mjs"
    echo "== PostgreSQL: end-to-end tests, $build"
    # shellcheck disable=SC2086
    BUILD=$build tests/e2e/run.sh $files || status=1
    echo "== PostgreSQL: check and backup, $build"
    BUILD=$build "$HERE/check.sh" || status=1
done
[ $status -eq 0 ] && echo "pg: all passed" || echo "pg: FAILED"
exit $status
