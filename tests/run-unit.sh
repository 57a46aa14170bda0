#!/bin/sh
# Runs each unit and integration test binary given as an argument and
# prints one closing line: "N passed, N failed" (binaries, not cases; each
# cmocka binary prints its own case counts above it).
passed=0
failed=0
failures=""
for t in "$@"; do
    echo "== $t"
    if "$t"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures="$failures $t"
    fi
done
[ -n "$failures" ] && echo "failed:$failures"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
