#!/bin/bash
# End-to-end tests: the real server binary, driven over HTTP and WebSocket by
# Node's built-in test runner (tests/e2e/*.test.mjs).
#
#   tests/e2e/run.sh                      # every file
#   tests/e2e/run.sh tests/e2e/ws.test.mjs  # some files
#
# BUILD selects the build directory (default build); CW_TEST_KEEP=1 keeps a
# failing test's data directory and server log. Node modules are installed
# from package-lock.json only when node_modules is absent.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}

if ! command -v node >/dev/null 2>&1; then
    echo "e2e: node is not installed (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ ! -d "$HERE/node_modules/ws" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --prefer-offline) || {
        echo "e2e: npm ci failed" >&2
        exit 1
    }
fi
if [ ! -x "$BUILD/calderwood" ]; then
    echo "e2e: $BUILD/calderwood is missing: run make $BUILD/calderwood first" >&2
    exit 1
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=("$HERE"/*.test.mjs)
fi
exec node --test --test-concurrency=2 --test-reporter=tap "${files[@]}"
