#!/bin/bash
# Installing as a user would: make install into a scratch DESTDIR, build the
# test module against the installed header with pkg-config, run the installed
# binary with it, the installed example configuration and the installed web
# files (readiness and stopping seen through a real NOTIFY_SOCKET), check the
# man page renders without warnings and lists exactly the flags --help does,
# check the systemd unit, then make uninstall and find nothing left.
# Prints "install: N passed, N failed". CW_TEST_KEEP=1 keeps the directory.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SAN=
case "$BUILD" in */san) SAN=address,undefined ;; esac
. "$ROOT/tests/lib.sh"
scratch install
check() { # check DESCRIPTION command...: passes when the command succeeds
    local what=$1
    shift
    if "$@" >"$DIR/out" 2>&1; then ok; else bad "$what"; cat "$DIR/out"; fi
}
MAKE_ARGS=(--no-print-directory BUILD="$BUILD" SANITIZE="$SAN")

DEST=$DIR/root
P=$DEST/usr/local
make "${MAKE_ARGS[@]}" install DESTDIR="$DEST" >"$DIR/install.log" 2>&1 || {
    cat "$DIR/install.log"
    bad "make install"
    summary install
    exit 1
}
ok
for f in bin/calderwood include/calderwood.h lib/pkgconfig/calderwood.pc \
    share/man/man1/calderwood.1 lib/systemd/system/calderwood.service \
    share/calderwood/calderwood.conf.example etc/calderwood.conf share/calderwood/web/login.html \
    share/calderwood/web/console.html share/calderwood/web/static/calderwood.js; do
    [ -f "$P/$f" ] && ok || bad "installed $f"
done
[ -x "$P/bin/calderwood" ] && ok || bad "binary is executable"

# --version: version, commit, and each library's version.
CW=$P/bin/calderwood
check "--version" "$CW" --version
cp "$DIR/out" "$DIR/version"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
grep -qE "^calderwood [0-9]+\.[0-9]+\.[0-9]+ \(commit $commit\)$" "$DIR/version" && ok ||
    bad "--version names version and commit $commit: $(head -1 "$DIR/version")"
for lib in SQLite libpq libwebsockets jansson libsodium; do
    grep -qE "^$lib [0-9]+\.[0-9]+" "$DIR/version" && ok || bad "--version lacks $lib"
done
version=$(sed -n '1s/^calderwood \([^ ]*\) .*/\1/p' "$DIR/version")

# A module built from a copy of the test module, outside the tree, with only pkg-config's flags.
export PKG_CONFIG_PATH=$P/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
[ "$(pkg-config --modversion calderwood)" = "$version" ] && ok || bad "pkg-config version"
cflags=$(pkg-config --cflags calderwood)
case " $cflags " in *" -I$P/include "*) ok ;; *) bad "cflags point at the installed header: $cflags" ;; esac
mkdir "$DIR/mod"
cp tests/modules/test_module.c "$DIR/mod/mydomain.c"
# shellcheck disable=SC2086 # the flags are words
check "module built with pkg-config" \
    sh -c "cd '$DIR/mod' && cc -shared -fPIC -Wall -Werror $cflags mydomain.c -o mydomain.so"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

check "migrate with the module" "$CW" migrate --data "$DIR/data" --module "$DIR/mod/mydomain.so"
grep -q "applied [1-9]" "$DIR/out" && ok || bad "module migrations applied"
sqlite3 "$DIR/data/calderwood.db" "SELECT 1 FROM sqlite_master WHERE name = 'testmod_echoes'" \
    | grep -q 1 && ok || bad "the module's table exists"

# serve from a directory without web/: the pages come from share/calderwood/web.
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
"$BUILD/tests/notify_listen" "$DIR/notify" 120 >"$DIR/notify.log" 2>&1 &
LISTENER=$!
wait_for_socket() { for _ in $(seq 100); do [ -S "$DIR/notify" ] && return 0; sleep 0.1; done; return 1; }
wait_for_socket && ok || bad "notify socket bound"
(cd "$DIR" && NOTIFY_SOCKET="$DIR/notify" exec "$CW" serve --config "$P/etc/calderwood.conf" \
    --data "$DIR/data" --listen "127.0.0.1:$port" --module "$DIR/mod/mydomain.so" \
    >"$DIR/serve.log" 2>&1) &
SERVER=$!
if wait_for "$DIR/notify.log" "^READY=1$" 120; then ok; else
    bad "READY=1 on NOTIFY_SOCKET"
    cat "$DIR/serve.log"
fi
grep -q "gateway.listening" "$DIR/serve.log" && ok || bad "READY=1 came once listening"
code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1"; }
[ "$(code /health)" = 200 ] && ok || bad "GET /health"
[ "$(code /login)" = 200 ] && ok || bad "GET /login from the installed web files"
curl -s "http://127.0.0.1:$port/static/calderwood.js" | cmp -s - web/static/calderwood.js &&
    ok || bad "GET /static/calderwood.js serves the installed copy"
grep -q "Log in as" "$DIR/serve.log" && bad "example conf: no demo user" || ok
kill -TERM "$SERVER"
wait "$SERVER"
status=$?
SERVER=
[ "$status" = 0 ] && ok || bad "SIGTERM: exit $status, wanted 0"
wait "$LISTENER" && ok || bad "STOPPING=1 on NOTIFY_SOCKET"
grep -q "serve.stopped.*status=clean" "$DIR/serve.log" && ok || bad "SIGTERM drained cleanly"

# The man page: no warnings from man, and the same subcommands and flags as --help.
MAN=$P/share/man/man1/calderwood.1
MANWIDTH=80 man --warnings -l "$MAN" >"$DIR/man.txt" 2>"$DIR/man.err"
[ -s "$DIR/man.txt" ] && ok || bad "man -l renders the page"
[ -s "$DIR/man.err" ] && { bad "man -l warnings"; cat "$DIR/man.err"; } || ok
# roff source: `.SS name` opens a subcommand, `.TP` then `\fB\-\-flag` a flag.
sed 's/\\-/-/g' "$MAN" | awk '
    /^\.SS / { sub_ = $2; next }
    /^\.SH / { sub_ = "" }
    /^\.TP/ { tp = 1; next }
    tp && sub_ != "" { if (match($0, /^\\fB--[a-z0-9-]+/)) print sub_, substr($0, 6, RLENGTH - 5) }
    { tp = 0 }' | sort >"$DIR/man.flags"
subs=$("$CW" --help | awk '/^  [a-z]/ { print $1 }')
[ -n "$subs" ] && ok || bad "calderwood --help lists subcommands"
: >"$DIR/help.flags"
for s in $subs; do
    "$CW" "$s" --help | grep -oE '^  --[a-z0-9-]+' | sed "s/^  --/$s /" >>"$DIR/help.flags"
done
sort -o "$DIR/help.flags" "$DIR/help.flags"
[ "$(wc -l <"$DIR/help.flags")" -gt 20 ] && ok || bad "flags read from --help"
if diff "$DIR/help.flags" "$DIR/man.flags" >"$DIR/flags.diff"; then ok; else
    bad "--help and the man page list different flags (< --help, > man)"
    cat "$DIR/flags.diff"
fi
[ "$(awk '/^\.SS /{print $2}' "$MAN" | tr '\n' ' ')" = "$(echo $subs) " ] && ok ||
    bad "the man page has a section per subcommand"

# The unit: hardening present, and systemd's own checker finds nothing.
UNIT=$P/lib/systemd/system/calderwood.service
for line in Type=notify DynamicUser=yes StateDirectory=calderwood ProtectSystem=strict \
    NoNewPrivileges=yes Restart=on-failure KillSignal=SIGTERM \
    "ExecStart=/usr/local/bin/calderwood serve --config /usr/local/etc/calderwood.conf"; do
    grep -qx -- "$line" "$UNIT" && ok || bad "unit has $line"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart and the man page exist: point both into DESTDIR.
    sed "s|/usr/local/|$P/|g" "$UNIT" >"$DIR/calderwood.service"
    MANPATH=$P/share/man systemd-analyze verify "$DIR/calderwood.service" >"$DIR/verify" 2>&1
    if [ $? = 0 ] && [ ! -s "$DIR/verify" ]; then ok; else
        bad "systemd-analyze verify"
        cat "$DIR/verify"
    fi
else
    echo "install: systemd-analyze missing, unit not verified"
fi

# uninstall leaves nothing; an edited configuration is kept and named.
check "make uninstall" make "${MAKE_ARGS[@]}" uninstall DESTDIR="$DEST"
left=$(find "$DEST" ! -type d; find "$DEST" -name '*calderwood*')
[ -z "$left" ] && ok || bad "uninstall left: $left"
make "${MAKE_ARGS[@]}" install DESTDIR="$DEST" >/dev/null 2>&1
echo "listen 127.0.0.1:9999" >>"$P/etc/calderwood.conf"
check "uninstall after an edit" make "${MAKE_ARGS[@]}" uninstall DESTDIR="$DEST"
grep -q "kept .*calderwood.conf" "$DIR/out" && ok || bad "uninstall names the kept conf"
[ "$(find "$DEST" ! -type d)" = "$P/etc/calderwood.conf" ] && ok ||
    bad "only the edited conf stays: $(find "$DEST" ! -type d)"

summary install
