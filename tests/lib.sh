# tests/lib.sh - what the shell test scripts share: a scratch directory
# removed on exit (kept with CW_TEST_KEEP=1), the server they started stopped
# by its PID, pass/fail counting and waiting for a line.
#
#   . "$ROOT/tests/lib.sh"; scratch NAME   # sets DIR=/tmp/cw-NAME-XXXXXX
#   ...; SERVER=$!                          # the PID cleanup stops
#   summary NAME                            # prints the counts; fails if any failed
#
# shellcheck shell=bash
SERVER=
passed=0
failed=0

scratch() {
    DIR=$(mktemp -d "/tmp/cw-$1-XXXXXX")
    trap cleanup EXIT
}

cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    [ -n "${CW_TEST_KEEP:-}" ] || rm -rf "$DIR"
}

ok() { passed=$((passed + 1)); }
bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}

# wait_for FILE PATTERN SECONDS: until a line of FILE matches, or fail.
wait_for() {
    local deadline=$((SECONDS + $3))
    until grep -q -- "$2" "$1" 2>/dev/null; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

summary() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}
