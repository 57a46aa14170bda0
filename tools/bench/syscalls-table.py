#!/usr/bin/env python3
"""syscalls-table.py OUT_DIR: the table of tools/bench/syscalls.sh.

Reads OUT_DIR/counts.csv (`perf stat --per-thread`: per thread, per system call),
OUT_DIR/{before,after}.threads (tid, name, voluntary and involuntary context
switches) and OUT_DIR/{before,after}.engine (commands and batches committed).

The counters span the same interval as the engine's counters (the whole run),
so calls per command and per commit are exact ratios; the processor's
fdatasync calls are shown as a check (one per commit).
Context switches and CPU time (/proc, 10 ms ticks) span it too.
"""
import os
import sys
from pathlib import Path


def read_threads(path):
    out = {}
    for line in Path(path).read_text().split("\n"):
        f = line.split()
        if len(f) == 6:
            out[f[0]] = (f[1], int(f[2]), int(f[3]), int(f[4]), int(f[5]))
    return out


def read_counts(path):
    """{(name, tid): {syscall: calls}} from `perf stat --per-thread -x,`;
    "other" is every call (raw_syscalls) less the ones counted one by one."""
    threads = {}
    for line in Path(path).read_text().split("\n"):
        f = line.split(",")
        if len(f) < 4 or not f[1].strip().isdigit():
            continue
        name, _, tid = f[0].strip().rpartition("-")
        calls = threads.setdefault((name, tid), {})
        event = f[3]
        if event == "raw_syscalls:sys_enter":
            calls["all"] = int(f[1])
        else:
            calls[event.replace("syscalls:sys_enter_", "")] = int(f[1])
    for calls in threads.values():
        total = calls.pop("all", 0)
        calls["other"] = total - sum(calls.values())
    return threads


def main():
    out = Path(sys.argv[1])
    e0 = [int(x) for x in (out / "before.engine").read_text().split()]
    e1 = [int(x) for x in (out / "after.engine").read_text().split()]
    cmds, batches = e1[0] - e0[0], e1[1] - e0[1]
    per_commit = cmds / batches if batches else 0
    trace = read_counts(out / "counts.csv")
    syncs = sum(c.get("fdatasync", 0) for (n, _), c in trace.items() if n == "cw-processor")
    commits, tcmds = batches, cmds
    t0, t1 = read_threads(out / "before.threads"), read_threads(out / "after.threads")
    print(f"run: {cmds} commands in {batches} commits ({per_commit:.2f} per commit); "
          f"processor fdatasyncs: {syncs}")
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
    hz = os.sysconf("SC_CLK_TCK")
    print("\n| thread | voluntary switches | involuntary | voluntary per command "
          "| user CPU µs per command | system CPU µs per command | CPU µs per commit |")
    print("|---|---|---|---|---|---|---|")
    for tid, (name, v1, i1, u1, s1) in sorted(t1.items()):
        if tid not in t0 or not cmds:
            continue
        _, v0, i0, u0, s0 = t0[tid]
        dv, di = v1 - v0, i1 - i0
        us = 1e6 / hz
        du, ds = (u1 - u0) * us, (s1 - s0) * us
        if dv or di or du or ds:
            print(f"| {name} {tid} | {dv} | {di} | {dv / cmds:.3f} | {du / cmds:.1f} "
                  f"| {ds / cmds:.1f} | {(du + ds) / batches:.0f} |")

if __name__ == "__main__":
    main()
