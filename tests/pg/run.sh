#!/bin/bash
# The PostgreSQL matrix: starts a throwaway PostgreSQL 15 cluster
# (cluster.sh), runs the store-facing tests against it for each build
# directory given (default: build), and stops the cluster, also when a
# test fails or the run is interrupted.
#
#   tests/pg/run.sh build build/san
#   CW_PG_E2E=all tests/pg/run.sh build build/san   # every e2e file (make test-pg-full)
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
    # The e2e files that exercise the store, on both builds: commands,
    # resume and catch-up, queries, users and sessions, restarts. (resume
    # once ran on the plain build only: under ASan beside the other half of
    # make test its writer, starved of CPU, was closed as a slow reader the
    # moment it fell behind; --slow-reader-grace now gives it 2 s.)
    files="ws resume query lifecycle auth admin"
    # And on the plain build /health and /metrics (http). Left out
    # of make test, for time (its budget) and because they judge timing on
    # a shared machine: limits (10,000 commands from 200 clients, 50 s or
    # more here; it passes on PostgreSQL), and the files that judge the
    # gateway before anything reaches the processor: strict, rfc6455,
    # timeouts and tls (framing, timers, TLS; tls's commands take ws's path
    # once decrypted), exhaustion (the descriptor limit; the store's
    # connections are opened at start). disk-full and disk-stall inject
    # their faults into SQLite's file I/O and skip themselves here, as does
    # backup's SQLite-only part.
    # CW_PG_E2E=all (make test-pg-full) runs every file there is, on either
    # build.
    [ "${build%/san}" = "$build" ] && files="$files http"
    if [ "${CW_PG_E2E:-}" = all ]; then
        files=""
        for f in tests/e2e/*.test.mjs; do files="$files $(basename "$f" .test.mjs)"; done
    fi
    paths=""
    for f in $files; do paths="$paths tests/e2e/$f.test.mjs"; done
    echo "== PostgreSQL: end-to-end tests, $build"
    # shellcheck disable=SC2086
    BUILD=$build tests/e2e/run.sh $paths || status=1
    echo "== PostgreSQL: check and backup, $build"
    BUILD=$build "$HERE/check.sh" || status=1
done
[ $status -eq 0 ] && echo "pg: all passed" || echo "pg: FAILED"
exit $status
