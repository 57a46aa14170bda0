#!/bin/bash
# The crash harness (tests/chaos/chaos.mjs): real servers killed and
# restarted under real WebSocket clients, then a one-line verdict.
#
#   tests/chaos/run.sh                    # the short form (make chaos)
#   tests/chaos/run.sh --soak --kills 200 --minutes 30   # the long one (make soak)
#   STORE=postgres tests/chaos/run.sh --minutes 2        # on a throwaway PostgreSQL cluster
#
# BUILD selects the build directory (default build). Options are chaos.mjs's.
# STORE=postgres runs it with the log in PostgreSQL: tests/pg/with-cluster.sh
# makes a throwaway cluster with an empty database, passed as --store, and
# stops it afterwards; the checks read that database with psql and pg_amcheck.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}

if [ "${STORE:-sqlite}" = postgres ] && [ -z "${CW_PG_STORE:-}" ]; then
    exec "$ROOT/tests/pg/with-cluster.sh" "$0" --store @STORE@ "$@"
fi
tools="node sqlite3"
[ -n "${CW_PG_STORE:-}" ] && tools="$tools psql"
for tool in $tools; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "chaos: $tool is not installed (tools/install-deps.sh)" >&2
        exit 1
    fi
done
# The clients use the e2e suite's `ws` package.
if [ ! -d "$ROOT/tests/e2e/node_modules/ws" ]; then
    (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --prefer-offline) || {
        echo "chaos: npm ci failed" >&2
        exit 1
    }
fi
if [ ! -x "$BUILD/calderwood" ]; then
    echo "chaos: $BUILD/calderwood is missing: run make $BUILD/calderwood first" >&2
    exit 1
fi
exec node "$HERE/chaos.mjs" "$@"
