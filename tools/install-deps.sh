#!/bin/sh
# Installs the Debian packages Calderwood needs to build and test, when any
# is missing. As root it runs apt-get; otherwise it prints the exact command.
set -e
PKGS="build-essential pkg-config libjansson-dev libsqlite3-dev libsodium-dev libcmocka-dev
libwebsockets-dev libwebsockets-evlib-ev libev-dev sqlite3 clang openssl
man-db curl libpq-dev postgresql libnats-dev nats-server nginx-light"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
# The benchmark report needs gnuplot (without X), python3 and curl.
[ -n "${CW_BENCH_DEPS:-}" ] && for p in gnuplot-nox python3 curl; do
    command -v "${p%-nox}" >/dev/null 2>&1 || missing="$missing $p"
done
# The browser tests drive Debian's Chromium.
[ -n "${CW_TEST_DEPS:-}" ] && [ ! -x /usr/bin/chromium ] && missing="$missing chromium"
# The end-to-end and browser tests run on Node.js; any node >= 18 will do.
command -v node >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "calderwood: missing packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
