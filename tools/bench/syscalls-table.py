#!/usr/bin/env python3
"""syscalls-table.py OUT_DIR: the table of tools/bench/syscalls.sh.

Reads OUT_DIR/trace.txt (`perf trace -s`: per thread, per system call),
OUT_DIR/{before,after}.threads (tid, name, voluntary and involuntary context
switches) and OUT_DIR/{before,after}.engine (commands and batches committed).

perf trace starts counting some time after the `before` snapshot, so the
engine's counters span a little more than the trace does. The commits inside
the trace are therefore counted by the processor's own fdatasync calls (one
per commit), and commands as commits times the commands per commit of the
snapshots' window. Context switches are per snapshot window.
"""
import re
import sys
from pathlib import Path


def read_threads(path):
    out = {}
    for line in Path(path).read_text().split("\n"):
        f = line.split()
        if len(f) == 4:
            out[f[0]] = (f[1], int(f[2]), int(f[3]))
    return out


def read_trace(path):
    """{(name, tid): {syscall: calls}} from perf trace's summary."""
    threads, cur = {}, None
    for line in Path(path).read_text().split("\n"):
        m = re.match(r"^\s*(\S.*?) \((\d+)\), \d+ events", line)
        if m:
            cur = threads.setdefault((m.group(1), m.group(2)), {})
            continue
        m = re.match(r"^\s+([a-z_0-9]+)\s+(\d+)\s+\d+\s+[\d.]+", line)
        if m and cur is not None:
            cur[m.group(1)] = cur.get(m.group(1), 0) + int(m.group(2))
    return threads


def main():
    out = Path(sys.argv[1])
    e0 = [int(x) for x in (out / "before.engine").read_text().split()]
    e1 = [int(x) for x in (out / "after.engine").read_text().split()]
    cmds, batches = e1[0] - e0[0], e1[1] - e0[1]
    per_commit = cmds / batches if batches else 0
    trace = read_trace(out / "trace.txt")
    commits = sum(c.get("fdatasync", 0) for (n, _), c in trace.items() if n == "cw-processor")
    tcmds = commits * per_commit
    t0, t1 = read_threads(out / "before.threads"), read_threads(out / "after.threads")
    print(f"window: {cmds} commands in {batches} commits ({per_commit:.2f} per commit); "
          f"traced: {commits} processor fdatasyncs = commits, ~{tcmds:.0f} commands")
    print(f"load: {(out / 'uptime').read_text().strip()}\n")
    print("| thread | syscall | calls | per command | per commit |")
    print("|---|---|---|---|---|")
    totals = {}
    for (name, tid), calls in sorted(trace.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(calls.values())
        if not total or not tcmds:
            continue
        totals[(name, tid)] = total
        for sc, n in sorted(calls.items(), key=lambda kv: -kv[1]):
            if n / tcmds < 0.001:
                continue
            print(f"| {name} {tid} | {sc} | {n} | {n / tcmds:.3f} | {n / commits:.2f} |")
        print(f"| {name} {tid} | **all** | {total} | **{total / tcmds:.3f}** | {total / commits:.2f} |")
    grand = sum(totals.values())
    if tcmds:
        print(f"| all threads | **all** | {grand} | **{grand / tcmds:.3f}** | {grand / commits:.2f} |")
    print("\n| thread | voluntary switches | involuntary | voluntary per command |")
    print("|---|---|---|---|")
    for tid, (name, v1, i1) in sorted(t1.items()):
        if tid not in t0:
            continue
        dv, di = v1 - t0[tid][1], i1 - t0[tid][2]
        if dv or di:
            per = f"{dv / cmds:.3f}" if cmds else "-"
            print(f"| {name} {tid} | {dv} | {di} | {per} |")


if __name__ == "__main__":
    main()
