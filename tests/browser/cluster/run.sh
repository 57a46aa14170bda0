#!/bin/bash
# make test-cluster-browser: the local cluster of `make cluster`
# (tools/cluster.sh: nats-server, PostgreSQL, two processors, two gateways,
# a query node, nginx in front), started on free loopback ports in a
# temporary directory, with two headless Chromium tabs through nginx on
# different gateways (tests/browser/cluster/*.test.mjs); then stopped by
# `tools/cluster.sh down`, which stops exactly what it started. Not part of
# make test. BUILD selects the build; CW_TEST_KEEP=1 keeps the directory.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
cd "$ROOT"
export BUILD=${BUILD:-build}
command -v nginx >/dev/null || { echo "cluster-browser: no nginx (apt-get install nginx)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "cluster-browser: no nats-server (apt-get install nats-server)" >&2; exit 1; }

# BASE_PORT: one whose seven ports (P..P+5 and P+22, see tools/cluster.sh) are all free now.
base=$(node -e '
const net = require("net");
const free = (p) => new Promise((r) => { const s = net.createServer().once("error", () => r(false)).listen(p, "127.0.0.1", () => s.close(() => r(true))); });
(async () => {
    for (let i = 0; i < 200; i++) {
        const p = 20000 + Math.floor(Math.random() * 30000);
        if ((await Promise.all([0, 1, 2, 3, 4, 5, 22].map((d) => free(p + d)))).every(Boolean)) return console.log(p);
    }
    process.exit(1);
})();') || { echo "cluster-browser: no free ports" >&2; exit 1; }

dir=$(mktemp -d /tmp/cw-cluster-browser-XXXXXX)
down() {
    BUILD=$BUILD tools/cluster.sh down "$dir/c" >/dev/null
    [ -n "${CW_TEST_KEEP:-}" ] && echo "cluster-browser: kept $dir" || rm -rf "$dir"
}
trap down EXIT
trap 'exit 130' INT TERM
out=$(BASE_PORT=$base BUILD=$BUILD tools/cluster.sh up "$dir/c") || { echo "$out" >&2; exit 1; }
echo "$out" | sed 's/^/# /'
password=$(echo "$out" | sed -n 's/^Log in as demo@calderwood.local with password //p')
[ -n "$password" ] || { echo "cluster-browser: no demo password in the output above" >&2; exit 1; }
export CW_CLUSTER_URL="http://127.0.0.1:$base" CW_CLUSTER_PASSWORD=$password
export CW_CLUSTER_GATEWAYS="$((base + 1)),$((base + 2))" CW_CLUSTER_DIR="$dir/c"
tests/browser/run.sh "${@:-$HERE/two-gateways.test.mjs}"
