#!/bin/bash
# Runs groups of test commands side by side, each group's commands one after
# another, every output line prefixed with its group's name, then prints each
# group's verdict and time. Exits non-zero if any group failed.
#
#   tests/run-groups.sh plain "make test-all" sanitized "make test-all SANITIZE=..."
#
# `make test` runs the plain and the sanitized halves of the suite this way:
# most tests wait on the disk, the network or a child process, so two
# streams keep a 2-core machine busier than one.
#
# The groups' lines interleave, and CI may keep only the end of the output,
# so a failed group's own last lines are printed again after the verdicts.
set -u
[ $(($# % 2)) = 0 ] && [ $# -gt 0 ] || {
    echo "usage: run-groups.sh NAME COMMAND [NAME COMMAND]..." >&2
    exit 2
}
RC=$(mktemp -d /tmp/cw-groups-XXXXXX)
trap 'rm -rf "$RC"' EXIT
trap 'kill 0' INT TERM
names=()
start=$SECONDS
while [ $# -gt 0 ]; do
    name=$1 cmd=$2
    shift 2
    names+=("$name")
    {
        t0=$SECONDS
        bash -c "$cmd" 2>&1
        echo "$? $((SECONDS - t0))" >"$RC/$name"
    } | tee "$RC/$name.log" | sed -u "s/^/[$name] /" &
done
wait
status=0
for name in "${names[@]}"; do
    read -r rc secs <"$RC/$name" 2>/dev/null || rc=1 secs=?
    if [ "$rc" = 0 ]; then verdict=passed; else verdict="FAILED (exit $rc)"; status=1; fi
    echo "tests: $name $verdict in ${secs}s"
done
for name in "${names[@]}"; do
    read -r rc _ <"$RC/$name" 2>/dev/null || rc=1
    [ "$rc" = 0 ] && continue
    echo "tests: the last lines of $name:"
    tail -n 60 "$RC/$name.log" | sed "s/^/[$name] /"
done
echo "tests: $((SECONDS - start))s in all"
exit $status
