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
TESTS="test_store test_processor test_workers test_domain test_module_load test_crash test_replay"

eval "$("$HERE/cluster.sh" start)" || exit 1
trap '"$HERE/cluster.sh" stop "$CW_PG_DIR"' EXIT
echo "pg: cluster in $CW_PG_DIR"
status=0
for build in "$@"; do
    bins=""
    for t in $TESTS; do bins="$bins $build/tests/$t"; done
    echo "== PostgreSQL: unit and integration tests, $build"
    # shellcheck disable=SC2086
    BUILD=$build tests/run-unit.sh $bins || status=1
done
[ $status -eq 0 ] && echo "pg: all passed" || echo "pg: FAILED"
exit $status
