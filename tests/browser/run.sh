#!/bin/bash
# Browser tests: the console in Debian's headless Chromium, driven by
# playwright-core, against real servers on free loopback ports with fresh
# data directories (tests/browser/*.test.mjs, Node's built-in test runner).
#
#   tests/browser/run.sh                               # every file
#   tests/browser/run.sh tests/browser/login.test.mjs  # some files
#
# Installs what is missing: chromium with apt-get (as root; otherwise it prints
# the command and stops), the node modules from package-lock.json, and the
# server binary with make. BUILD selects the build directory (default build);
# CW_TEST_KEEP=1 keeps a failing test's data directory and server log.
# Writes docs/img/login.png and docs/img/console.png.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "browser: installing ${need_apt[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null || {
            echo "browser: apt-get install ${need_apt[*]} failed" >&2
            exit 1
        }
    else
        echo "browser: missing ${need_apt[*]}: run  sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
fi

if [ ! -d "$HERE/node_modules/playwright-core" ]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --prefer-offline) || {
        echo "browser: npm ci failed" >&2
        exit 1
    }
fi

if [ ! -x "$BUILD/calderwood" ]; then
    make --no-print-directory "$BUILD/calderwood" || exit 1
fi

if [ $# -gt 0 ]; then
    files=("$@")
else
    files=("$HERE"/*.test.mjs)
fi
# One file at a time: each starts Chromium and a server, and the restart test
# wants the machine to itself for its timing.
exec node --test --test-concurrency=1 --test-timeout=180000 --test-reporter=tap "${files[@]}"
