#!/bin/bash
# Upgrades: a database made by an older calderwood (before-core-002.sql, a
# dump kept as a fixture) meets this binary. serve --no-migrate refuses it,
# naming the pending migration, and changes nothing; serve without it
# migrates at start-up and serves; the old data survives. A database that
# has a migration this binary does not know (from a newer version) is
# refused by serve and migrate alike, naming the newest migration known.
# Prints "upgrade: N passed, N failed". CW_TEST_KEEP=1 keeps the directory.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
CW=$ROOT/$BUILD/calderwood
FIXTURE=$ROOT/tests/upgrade/before-core-002.sql
. "$ROOT/tests/lib.sh"
scratch upgrade
expect() { # expect STATUS DESCRIPTION -- command... (killed after 120 s: a serve that should refuse)
    local want=$1 what=$2
    shift 3
    timeout 120 "$@" >"$DIR/out" 2>"$DIR/err"
    local got=$?
    if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, wanted $want"; cat "$DIR/err"; fi
}
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $1"; cat "$1"; fi; }
fixture() { # fixture DIR: a data directory holding the old database
    mkdir -p "$1" && sqlite3 "$1/calderwood.db" <"$FIXTURE"
}
q() { sqlite3 "$1/calderwood.db" "$2"; }
# serve_once DATA [flags...]: starts serve, waits until it listens, stops it with SIGTERM.
serve_once() {
    local data=$1
    shift
    local port
    port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
    "$CW" serve --data "$data" --listen "127.0.0.1:$port" --no-demo-user "$@" >"$DIR/serve.log" 2>&1 &
    SERVER=$!
    local deadline=$((SECONDS + 120))
    until grep -q "gateway.listening" "$DIR/serve.log"; do
        if ! kill -0 "$SERVER" 2>/dev/null; then
            wait "$SERVER"
            echo "serve (pid $SERVER, port $port) exited with status $? before listening; its log:"
            SERVER=
            return 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "serve (pid $SERVER, port $port) not listening after 120 s; its log:"
            return 1 # cleanup stops it
        fi
        sleep 0.1
    done
    kill -TERM "$SERVER"
    wait "$SERVER"
    local status=$?
    [ $status = 0 ] || echo "serve (pid $SERVER) exited with status $status after SIGTERM; its log:"
    SERVER=
    return $status
}

# --no-migrate on the old database: refused, named, nothing changed.
A=$DIR/a
fixture "$A"
q "$A" .dump >"$DIR/before.sql"
expect 1 "serve --no-migrate with a migration pending" -- "$CW" serve --data "$A" --no-migrate
# Every migration made since the fixture is pending; the core's comes first.
contains "$DIR/err" "[1-9][0-9]* migrations\? pending (the first: core:002-commands-by-key)" "pending named"
pending=$(sed -n 's/.* has \([0-9]*\) migrations\{0,1\} pending.*/\1/p' "$DIR/err")
contains "$DIR/err" "calderwood migrate" "the message says what to do"
q "$A" .dump | cmp -s - "$DIR/before.sql" && ok || bad "a refused start changed the database"

# Without --no-migrate the same start migrates and serves; the old data is all there.
if serve_once "$A"; then ok; else bad "serve on the old database"; cat "$DIR/serve.log"; fi
[ "$(q "$A" "SELECT COUNT(*) FROM schema_migrations WHERE id = 'core:002-commands-by-key'")" = 1 ] &&
    ok || bad "core:002 applied at start-up"
q "$A" "SELECT sql FROM sqlite_master WHERE name = 'commands'" | grep -q "uuid TEXT PRIMARY KEY" &&
    bad "commands still keyed by uuid" || ok
[ "$(q "$A" "SELECT COUNT(*) FROM commands")" = 1 ] && ok || bad "the old command survived"
expect 0 "events after the upgrade" -- "$CW" events --data "$A"
contains "$DIR/out" '"email":"ada@example.org"' "the old event survived"
expect 1 "the old user still holds her email" -- sh -c \
    "echo another-pass | '$CW' user add --data '$A' --email ada@example.org --first A --last L"
contains "$DIR/err" "email-taken" "the old projection answers"
# Now nothing is pending: --no-migrate starts.
if serve_once "$A" --no-migrate; then ok; else bad "serve --no-migrate, nothing pending"; cat "$DIR/serve.log"; fi

# migrate on another copy applies exactly the pending ones.
B=$DIR/b
fixture "$B"
expect 0 "migrate the old database" -- "$CW" migrate --data "$B"
contains "$DIR/out" "applied ${pending:-?} migrations\? to" "migrate applies what --no-migrate named"

# A newer database: a migration this binary does not know, in a namespace it knows.
q "$B" "INSERT INTO schema_migrations VALUES ('core:999-from-the-future', 0)"
q "$B" .dump >"$DIR/before.sql"
expect 1 "serve on a newer database" -- "$CW" serve --data "$B"
contains "$DIR/err" "has migration core:999-from-the-future" "the unknown migration named"
contains "$DIR/err" "newest this binary knows is core:002-commands-by-key" "the newest known named"
expect 1 "migrate on a newer database" -- "$CW" migrate --data "$B"
contains "$DIR/err" "newer calderwood" "migrate refuses too"
q "$B" .dump | cmp -s - "$DIR/before.sql" && ok || bad "a refused start changed the database"
q "$B" "DELETE FROM schema_migrations WHERE id = 'core:999-from-the-future';
        INSERT INTO schema_migrations VALUES ('demo:003-future', 0)"
expect 1 "a newer domain migration" -- "$CW" serve --data "$B"
contains "$DIR/err" "newest this binary knows is demo:002-cart" "the domain's newest named"
# A migration of a module not loaded now is not this binary's to judge.
q "$B" "DELETE FROM schema_migrations WHERE id = 'demo:003-future';
        INSERT INTO schema_migrations VALUES ('othermod:001-x', 0)"
expect 0 "another module's migration" -- "$CW" migrate --data "$B"

summary upgrade
