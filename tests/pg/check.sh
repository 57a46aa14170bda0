#!/bin/bash
# `calderwood check` and `backup` on PostgreSQL (run by tests/pg/run.sh with
# CW_TEST_STORE set): check passes on a good database and names the first
# difference in an altered projection; backup refuses and points to pg_dump.
set -u
BUILD=${BUILD:-build}
CW="$BUILD/calderwood"
DIR=$(mktemp -d /tmp/cw-pgcheck-XXXXXX)
DB="cw_check_$$_$(basename "$BUILD")"
psql "$CW_TEST_STORE" -qc "CREATE DATABASE \"$DB\"" || exit 1
trap 'psql "$CW_TEST_STORE" -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)"; rm -rf "$DIR"' EXIT
URL=$(echo "$CW_TEST_STORE" | sed "s|^\([a-z]*://[^/?]*\)/[^?]*|\1/$DB|")
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; cat "$DIR/out" "$DIR/err"; }

for who in ada; do
    echo "password-$who-1" | "$CW" user add --store "$URL" --email "$who@example.org" --first "$who" --last X >/dev/null || bad "user add $who"
done
"$CW" check --store "$URL" >"$DIR/out" 2>"$DIR/err" && ok || bad "check on a good database"
grep -q "^projections *ok (5 tables, 1 rows" "$DIR/out" && ok || bad "projections compared"
grep -q "^integrity *skipped" "$DIR/out" && ok || bad "integrity skipped"
psql "$URL" -qc "UPDATE users SET last_name = 'Y' WHERE email = 'ada@example.org'"
"$CW" check --store "$URL" >"$DIR/out" 2>"$DIR/err" && bad "check on an altered projection passed" || ok
grep -q '^projections *FAILED: table users, key (user_uuid="[0-9a-f-]*"), column last_name: "Y" in the database, "X" in the replay' "$DIR/out" && ok || bad "first difference named"
"$CW" backup --store "$URL" --into "$DIR/b.db" >"$DIR/out" 2>"$DIR/err" && bad "backup of PostgreSQL ran" || ok
grep -q "pg_dump" "$DIR/err" && ok || bad "backup points to pg_dump"
echo "pg check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
