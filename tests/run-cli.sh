#!/bin/bash
# The command-line interface as a user meets it: each subcommand's help,
# errors as one clear line with a non-zero exit, user add, the user and
# session administration (without a server; through one), the event export
# in both formats, migrations, a module whose migration fails, one writer
# per data directory, and a taken address.
# Prints "cli: N passed, N failed". CW_TEST_KEEP=1 keeps the data directory.
set -u
BUILD=${BUILD:-build}
CW="$BUILD/calderwood"
DIR=$(mktemp -d /tmp/cw-cli-XXXXXX)
[ -n "${CW_TEST_KEEP:-}" ] || trap 'rm -rf "$DIR"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
# expect STATUS DESCRIPTION -- command...: runs it, checks the exit status.
expect() {
    local want=$1 what=$2
    shift 3
    "$@" >"$DIR/out" 2>"$DIR/err"
    local got=$?
    if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, wanted $want"; cat "$DIR/err"; fi
}
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $1"; cat "$1"; fi; }
lacks() { if grep -q -- "$2" "$1"; then bad "$3: '$2' found in $1"; else ok; fi; }
# serve binds its address first: every serve here gets a free one, not the default 8080.
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }

D="$DIR/data"
for sub in serve user session events replay migrate backup check; do
    expect 0 "$sub --help" -- "$CW" $sub --help
    contains "$DIR/out" "usage: calderwood" "$sub --help"
done
expect 2 "no subcommand" -- "$CW"
expect 2 "unknown subcommand" -- "$CW" frobnicate
contains "$DIR/err" "unknown subcommand 'frobnicate'" "unknown subcommand message"
expect 2 "unknown option" -- "$CW" migrate --nope
contains "$DIR/err" "unknown option '--nope'" "unknown option message"
expect 2 "integer out of range" -- "$CW" serve --max-batch 0 --data "$D"
contains "$DIR/err" "max-batch must be between 1 and 65536" "range message"

expect 0 "migrate" -- "$CW" migrate --data "$D"
contains "$DIR/out" "applied [1-9][0-9]* migrations" "first migrate applies"
expect 0 "migrate again" -- "$CW" migrate --data "$D"
contains "$DIR/out" "applied 0 migrations" "second migrate applies nothing"
# --store names the database by URL; the default is sqlite:DATA/calderwood.db.
expect 0 "migrate --store sqlite:" -- "$CW" migrate --data "$D" --store "sqlite:$D/calderwood.db"
contains "$DIR/out" "applied 0 migrations to sqlite:$D/calderwood.db" "--store is the default db"
expect 1 "unknown store scheme" -- "$CW" migrate --data "$D" --store "mysql://h/db"
contains "$DIR/err" "unknown store 'mysql'" "unknown scheme message"
expect 1 "store URL with a password" -- "$CW" migrate --data "$D" \
    --store "postgres://cw:s3cr3t@127.0.0.1:1/none?connect_timeout=5"
lacks "$DIR/err" "s3cr3t" "a password never printed"

echo "s3cret-pass" >"$DIR/pw"
expect 0 "user add" -- "$CW" user add --data "$D" --email " Grace@Example.org" --first Grace \
    --last Hopper --password-file "$DIR/pw"
contains "$DIR/out" "registered grace@example.org as user" "user add output"
expect 1 "user add taken" -- sh -c "echo another-pass | $CW user add --data $D --email grace@example.org --first G --last H"
contains "$DIR/err" "email-taken" "taken email message"
[ "$(wc -l <"$DIR/err")" = 1 ] && ok || bad "taken email: one line"
expect 1 "user add bad email" -- sh -c "echo another-pass | $CW user add --data $D --email nobody --first G --last H"
contains "$DIR/err" "email" "bad email names the field"
expect 1 "user add short password" -- sh -c "echo short | $CW user add --data $D --email a@b.co --first G --last H"
contains "$DIR/err" "password" "short password names the field"
expect 2 "user add missing flags" -- "$CW" user add --data "$D" --email x@y.z

expect 0 "events jsonl" -- "$CW" events --data "$D"
[ "$(wc -l <"$DIR/out")" = 1 ] && ok || bad "one event exported"
contains "$DIR/out" '"meta":{"admin":{"uid":[0-9]*,"pid":[0-9]*,"via":"local"}}' "the event says who added the user"
contains "$DIR/out" '"name":"user-registered"' "jsonl has the event"
lacks "$DIR/out" "password" "export leaves out the password hash"
lacks "$DIR/out" 'argon2' "export leaves out the hash value"
expect 0 "events csv" -- "$CW" events --data "$D" --format csv
contains "$DIR/out" "^position,uuid,command_uuid,name,version" "csv header"
[ "$(wc -l <"$DIR/out")" = 2 ] && ok || bad "csv: header and one row"
expect 0 "events filtered" -- "$CW" events --data "$D" --name page-view
[ -s "$DIR/out" ] && bad "name filter" || ok
expect 0 "events after" -- "$CW" events --data "$D" --after 1
[ -s "$DIR/out" ] && bad "after filter" || ok
expect 2 "events bad format" -- "$CW" events --data "$D" --format xml
expect 1 "events missing db" -- "$CW" events --data "$DIR/none"
contains "$DIR/err" "no database" "missing database message"

# Administration without a server: each command is events, each refusal one line.
# (A copy of the data: the event counts above stay as they are.)
A="$DIR/admin"
cp -r "$D" "$A"
expect 0 "user list" -- "$CW" user list --data "$A"
contains "$DIR/out" "^EMAIL  *NAME  *STATUS  *SESSIONS  *REGISTERED  *USER" "user list header"
contains "$DIR/out" "^grace@example.org  *Grace Hopper  *enabled  *0 " "user list row"
expect 0 "user list jsonl" -- "$CW" user list --data "$A" --format jsonl
contains "$DIR/out" '^{"user_uuid":"[0-9a-f-]*","email":"grace@example.org",.*"disabled":false,.*"open_sessions":0}$' "user list jsonl row"
expect 2 "user list bad format" -- "$CW" user list --data "$A" --format xml
expect 0 "user passwd" -- sh -c "echo new-password-1 | $CW user passwd --data $A --email GRACE@example.org"
contains "$DIR/out" "changed the password of grace@example.org; ended 0 sessions" "passwd output"
expect 1 "user passwd empty" -- sh -c "echo | $CW user passwd --data $A --email grace@example.org"
contains "$DIR/err" "password must be at least 8 bytes" "empty password refused"
expect 1 "user passwd no stdin" -- "$CW" user passwd --data "$A" --email grace@example.org </dev/null
contains "$DIR/err" "no password given" "no password message"
expect 1 "user disable unknown user" -- "$CW" user disable --data "$A" --email nobody@example.org
[ "$(cat "$DIR/err")" = "calderwood: no user with that email (unknown-user)" ] && ok || bad "unknown user: one line"
expect 0 "user disable" -- "$CW" user disable --data "$A" --email grace@example.org
contains "$DIR/out" "disabled grace@example.org; ended 0 sessions" "disable output"
expect 0 "user list shows disabled" -- "$CW" user list --data "$A"
contains "$DIR/out" "^grace@example.org  *Grace Hopper  *disabled " "disabled in the list"
expect 1 "user disable twice" -- "$CW" user disable --data "$A" --email grace@example.org
contains "$DIR/err" "already-disabled" "disable twice refused"
expect 0 "user enable" -- "$CW" user enable --data "$A" --email grace@example.org
contains "$DIR/out" "enabled grace@example.org" "enable output"
expect 1 "user enable twice" -- "$CW" user enable --data "$A" --email grace@example.org
contains "$DIR/err" "not-disabled" "enable twice refused"
expect 2 "user disable without email" -- "$CW" user disable --data "$A"
expect 2 "user frobnicate" -- "$CW" user frobnicate --data "$A" --email grace@example.org
contains "$DIR/err" "unknown user subcommand 'frobnicate'" "unknown user subcommand"
expect 0 "session list" -- "$CW" session list --data "$A"
[ "$(cat "$DIR/out")" = "$(printf 'SESSION%31sEMAIL  STARTED%15sUSER' '' '')" ] && ok || { bad "session list: header only"; cat "$DIR/out"; }
expect 1 "session end unknown" -- "$CW" session end --data "$A" --session 01a23765-60d8-7010-946a-c60963288b2b
contains "$DIR/err" "no open session with that uuid (no-session)" "session end unknown"
expect 1 "session end bad uuid" -- "$CW" session end --data "$A" --session nope
contains "$DIR/err" "session_uuid must be" "bad session uuid names the field"
expect 1 "session end by user without sessions" -- "$CW" session end --data "$A" --user grace@example.org
contains "$DIR/err" "no-session" "no session to end"
expect 2 "session end with both" -- "$CW" session end --data "$A" --user grace@example.org --session x
expect 2 "session end with neither" -- "$CW" session end --data "$A"
expect 0 "the audit trail" -- "$CW" events --data "$A" --after 1
[ "$(sed 's/.*"name":"\([a-z-]*\)".*/\1/' "$DIR/out" | tr '\n' ' ')" = "user-password-changed user-disabled user-enabled " ] &&
    ok || { bad "audit trail: passwd, disable, enable"; cat "$DIR/out"; }
lacks "$DIR/out" "argon2" "the new hash is not exported"
# Sessions (none can be opened without a server): the e2e test admin.test.mjs.

# backup and check (the copy under load is tests/e2e/backup.test.mjs).
echo "other-pass-1" | "$CW" user add --data "$D" --email ada@example.org --first Ada --last Lovelace >/dev/null
expect 0 "backup" -- "$CW" backup --data "$D" --into "$DIR/b.db"
contains "$DIR/err" "backup: wrote $DIR/b.db: [0-9]* bytes, events up to position 2" "backup's final line"
contains "$DIR/err" "pages (100%)" "backup's progress line"
[ -e "$DIR/b.db.tmp" ] && bad "backup left its .tmp" || ok
expect 1 "backup over a file" -- "$CW" backup --data "$D" --into "$DIR/b.db"
contains "$DIR/err" "b.db exists; give --force to replace it" "backup refuses to overwrite"
expect 0 "backup --force" -- "$CW" backup --data "$D" --into "$DIR/b.db" --force
expect 1 "backup into a missing directory" -- "$CW" backup --data "$D" --into "$DIR/nowhere/b.db"
contains "$DIR/err" "cannot create $DIR/nowhere/b.db.tmp" "missing directory message"
expect 1 "backup onto the database" -- "$CW" backup --data "$D" --into "$D/calderwood.db" --force
contains "$DIR/err" "is the database itself" "backup onto itself message"
expect 1 "backup into a directory" -- "$CW" backup --data "$D" --into "$DIR" --force
contains "$DIR/err" "is a directory" "backup into a directory message"
expect 1 "backup of no database" -- "$CW" backup --data "$DIR/none" --into "$DIR/x.db"
contains "$DIR/err" "no database at" "backup of no database message"
expect 2 "backup without --into" -- "$CW" backup --data "$D"
expect 1 "backup of PostgreSQL" -- "$CW" backup --store "postgres://cw@127.0.0.1:1/none" --into "$DIR/pg.db"
contains "$DIR/err" "pg_dump.*pg_basebackup.*docs/POSTGRES.md" "PostgreSQL backup points to its tools"
[ -e "$DIR/pg.db" ] && bad "PostgreSQL backup wrote a file" || ok
expect 1 "check of no database" -- "$CW" check --data "$DIR/none"
contains "$DIR/err" "no database at $DIR/none/calderwood.db" "check of no database message"
expect 0 "check a backup" -- "$CW" check --store "sqlite:$DIR/b.db"
for c in migrations integrity positions commands projections; do contains "$DIR/out" "^$c *ok" "check $c ok"; done
contains "$DIR/out" "all 5 checks passed" "check summary"
# Each check fails on the damage it is for, naming the first difference.
cp "$DIR/b.db" "$DIR/alt.db"
sqlite3 "$DIR/alt.db" "UPDATE users SET first_name = 'Mallory' WHERE email = 'ada@example.org'"
expect 1 "check an altered projection" -- "$CW" check --store "sqlite:$DIR/alt.db"
contains "$DIR/out" '^projections *FAILED: table users, key (user_uuid="[0-9a-f-]*"), column first_name: "Mallory" in the database, "Ada" in the replay' "check names the first difference"
contains "$DIR/out" "^positions *ok" "an altered projection leaves positions ok"
contains "$DIR/err" "FAILED 1 of 5 checks" "check's error line"
cp "$DIR/b.db" "$DIR/gap.db"
sqlite3 "$DIR/gap.db" "INSERT INTO events SELECT 4, uuid || 'x', command_uuid, name, version, data, meta, user_uuid, client_id, client_seq, recorded_at FROM events WHERE position = 2"
expect 1 "check a gap" -- "$CW" check --store "sqlite:$DIR/gap.db"
contains "$DIR/out" "^positions *FAILED: gap after position 2: the next is 4" "check names the gap"
contains "$DIR/out" "^commands *FAILED: event 4 belongs to no command" "check names the orphan event"
cp "$DIR/b.db" "$DIR/cmd.db"
sqlite3 "$DIR/cmd.db" "UPDATE commands SET last_position = 3 WHERE first_position = 2"
expect 1 "check a command claiming another's event" -- "$CW" check --store "sqlite:$DIR/cmd.db"
contains "$DIR/out" "^commands *FAILED: command [0-9a-f-]* (register-user, outcome ok) names positions 2 to 3, of which 1 are its events" "check names the command"
cp "$DIR/b.db" "$DIR/new.db"
sqlite3 "$DIR/new.db" "INSERT INTO schema_migrations VALUES ('core:999-from-the-future', 0)"
expect 1 "check an unknown migration" -- "$CW" check --store "sqlite:$DIR/new.db"
contains "$DIR/out" "^migrations *FAILED: .*has migration core:999-from-the-future, and the newest this binary knows is core:" "check names the unknown migration"
sqlite3 "$DIR/new.db" "DELETE FROM schema_migrations WHERE id LIKE 'core:999%'; INSERT INTO schema_migrations VALUES ('elsewhere:001-tables', 0)"
expect 1 "check a module's database without the module" -- "$CW" check --store "sqlite:$DIR/new.db"
contains "$DIR/out" "^migrations *FAILED: migration elsewhere:001-tables is of no domain this binary has loaded: give its --module" "check names the missing module"

# A module whose second migration fails: start-up stops, nothing of it remains.
cp "$D/calderwood.db" "$DIR/before.db"
expect 1 "serve with failing migration" -- "$CW" serve --data "$D" --listen "127.0.0.1:$(free_port)" --module "$BUILD/tests/bad_migration.so"
contains "$DIR/err" "migration badmod:002-broken failed" "failing migration named"
sqlite3 "$D/calderwood.db" "SELECT name FROM sqlite_master WHERE name LIKE 'bad_module_more'" >"$DIR/t"
[ -s "$DIR/t" ] && bad "failed migration left its table" || ok
sqlite3 "$D/calderwood.db" "SELECT id FROM schema_migrations WHERE id = 'badmod:002-broken'" >"$DIR/t"
[ -s "$DIR/t" ] && bad "failed migration recorded" || ok
expect 1 "serve with missing module" -- "$CW" serve --data "$D" --listen "127.0.0.1:$(free_port)" --module "$DIR/nope.so"
contains "$DIR/err" "cannot load module" "missing module message"

# serve starts, makes its key 0600, and stops cleanly on SIGTERM.
"$CW" serve --data "$DIR/srv" --listen "127.0.0.1:$(free_port)" >"$DIR/serve.out" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$DIR/srv/secret.key" ] && grep -q "Calderwood is running" "$DIR/serve.out" && break; sleep 0.1; done
[ "$(stat -c %a "$DIR/srv/secret.key" 2>/dev/null)" = 600 ] && ok || bad "secret key mode 600"
[ "$(stat -c %s "$DIR/srv/secret.key" 2>/dev/null)" = 32 ] && ok || bad "secret key 32 bytes"
kill -TERM $pid
wait $pid && ok || bad "serve exits 0 on SIGTERM"
contains "$DIR/serve.out" "serve.stopped" "serve logs a clean stop"
chmod 644 "$DIR/srv/secret.key"
expect 1 "serve refuses a readable key" -- "$CW" serve --data "$DIR/srv" --listen "127.0.0.1:$(free_port)"
contains "$DIR/err" "readable by others" "key mode message"

# One writer per data directory: beside a running server, a second serve
# and migrate each refuse with one line naming it and write nothing; events
# still reads, and user add goes through the server. (timeout: without the lock they would run.) A taken address is one line too, and serve
# then leaves a new data directory without a database.
port=$(free_port)
"$CW" serve --data "$DIR/one" --listen "127.0.0.1:$port" --no-demo-user >"$DIR/one.out" 2>&1 &
pid=$!
for _ in $(seq 600); do grep -q "Calderwood is running" "$DIR/one.out" && break; sleep 0.1; done
contains "$DIR/one.out" "Calderwood is running" "first server started"
one_line() { [ "$(wc -l <"$DIR/err")" = 1 ] && ok || { bad "$1: not one line"; cat "$DIR/err"; }; }
expect 1 "second serve on the same data" -- timeout 60 "$CW" serve --data "$DIR/one" --listen "127.0.0.1:$(free_port)"
contains "$DIR/err" "in use by calderwood serve (pid $pid): stop it before running serve" "second serve names the first"
one_line "second serve"
expect 1 "migrate beside serve" -- timeout 60 "$CW" migrate --data "$DIR/one"
contains "$DIR/err" "in use by calderwood serve (pid $pid): stop it before running migrate" "migrate names the server"
one_line "migrate beside serve"
# The admin commands go through the running server instead (its socket, 0600).
[ "$(stat -c %a "$DIR/one/calderwood.sock" 2>/dev/null)" = 600 ] && ok || bad "admin socket mode 600"
expect 0 "user add beside serve" -- timeout 60 "$CW" user add --data "$DIR/one" --email late@example.org --first L --last Ate --password-file "$DIR/pw"
contains "$DIR/out" "registered late@example.org as user" "user add through the server"
expect 1 "user enable beside serve" -- timeout 60 "$CW" user enable --data "$DIR/one" --email late@example.org
[ "$(cat "$DIR/err")" = "calderwood: the user is not disabled (not-disabled)" ] && ok || bad "refusal through the server: one line"
expect 0 "user list beside serve" -- "$CW" user list --data "$DIR/one"
contains "$DIR/out" "^late@example.org " "user list beside serve"
expect 1 "check beside serve" -- timeout 60 "$CW" check --data "$DIR/one"
contains "$DIR/err" "in use by calderwood serve (pid $pid): stop it before running check" "check names the server"
expect 0 "backup beside serve" -- timeout 60 "$CW" backup --data "$DIR/one" --into "$DIR/one.db"
expect 0 "events beside serve" -- "$CW" events --data "$DIR/one"
contains "$DIR/out" '"email":"late@example.org".*"via":"socket"' "user add went through the server"
contains "$DIR/one.out" "admin.command command=register-user uid=[0-9]* pid=[0-9]* outcome=ok" "the server logs it"
expect 1 "serve on a taken port" -- timeout 60 "$CW" serve --data "$DIR/two" --listen "127.0.0.1:$port"
[ "$(cat "$DIR/err")" = "calderwood: cannot listen on 127.0.0.1:$port: address already in use" ] && ok ||
    { bad "taken port: not exactly the one line"; cat "$DIR/err"; }
[ -e "$DIR/two/calderwood.db" ] && bad "serve on a taken port made a database" || ok
kill -TERM $pid
wait $pid && ok || bad "first server exits 0"
[ -e "$DIR/one/calderwood.sock" ] && bad "the stopped server left its socket" || ok
expect 0 "migrate after the server stopped" -- "$CW" migrate --data "$DIR/one"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
