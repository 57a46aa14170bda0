#!/bin/bash
# The client library as a package (web/static/package.json): tsc --noEmit
# over examples that import it by package name (bundler resolution through
# "exports") and by path (a <script type=module>); the names calderwood.d.ts
# exports are the names calderwood.js exports at run time; Node resolves and
# loads the package; npm would pack exactly the module, its declarations and
# package.json; the package's version is the server's (Makefile VERSION), and
# it has no dependencies. Prints "client-types: N passed, N failed".
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$HERE"
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

if ! command -v node >/dev/null 2>&1; then
    echo "client-types: node is not installed (apt-get install nodejs npm)" >&2
    exit 1
fi
if [ ! -x node_modules/.bin/tsc ]; then
    npm ci --no-audit --no-fund --prefer-offline >/dev/null || {
        echo "client-types: npm ci failed" >&2
        exit 1
    }
fi

if node_modules/.bin/tsc --noEmit -p . >"$HERE/tsc.log" 2>&1; then ok; else
    bad "tsc --noEmit"
    cat "$HERE/tsc.log"
fi
rm -f "$HERE/tsc.log"

# Declared exports (values and classes, not types) against the module's own.
declared=$(grep -oE '^export (declare )?(const|function|class) [A-Za-z_]+' \
    "$ROOT/web/static/calderwood.d.ts" | awk '{ print $NF }' | sort | tr '\n' ' ')
actual=$(node --input-type=module -e "
    const m = await import('calderwood-client');
    console.log(Object.keys(m).sort().join(' '));" 2>&1)
[ "$declared" = "$actual " ] && ok || bad "exports: declared '$declared', module has '$actual'"

# Loads and works outside a browser page, through the package's exports.
out=$(node --input-type=module -e "
    import { Calderwood } from 'calderwood-client';
    const cw = new Calderwood({ baseUrl: 'http://127.0.0.1:1', storage: null });
    console.log(cw.wsUrl, cw.state);" 2>&1)
[ "$out" = "ws://127.0.0.1:1/ws idle" ] && ok || bad "import by package name: $out"

pkg=$ROOT/web/static/package.json
files=$(cd "$ROOT/web/static" && npm pack --dry-run --json 2>/dev/null |
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s)[0].files.map(f=>f.path).sort().join(' ')))")
[ "$files" = "calderwood.d.ts calderwood.js package.json" ] && ok || bad "npm pack would ship: $files"
deps=$(node -e "const p=require('$pkg');console.log(Object.keys({...p.dependencies,...p.peerDependencies,...p.optionalDependencies}).length)")
[ "$deps" = 0 ] && ok || bad "the package has dependencies"
version=$(node -p "require('$pkg').version")
make_version=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
[ "$version" = "$make_version" ] && ok || bad "package.json version $version, Makefile VERSION $make_version"

echo "client-types: $passed passed, $failed failed"
[ "$failed" = 0 ]
