#!/usr/bin/env python3
"""cluster-report.py - report.md of `make bench-cluster` from run-cluster.sh's raw outputs.

For each system (the cluster through nginx, the cluster straight at one
gateway, --role all on SQLite): the highest rate with update p99.9 < 100 ms
on 1 and on 50 connections, the latency at 10,000 commands/s, and CPU per
command committed for each process (from /proc/PID/stat around each step,
divided by the commands the processors committed meanwhile).

Usage: cluster-report.py --raw DIR --out FILE [--elapsed S]
"""
import argparse
import json
import os

SYSTEMS = [("cluster-nginx", "cluster, through nginx"), ("cluster-gw1", "cluster, straight at gateway 1"),
           ("all-direct", "`--role all`, SQLite")]
ROLES = ["gw1", "gw2", "proc1", "proc2", "query", "nats", "nginx", "postgres", "all"]


def read(raw, name, default=None):
    try:
        with open(os.path.join(raw, name)) as f:
            return f.read()
    except OSError:
        return default


def last_json(raw, name):
    text = read(raw, name + ".json")
    if not text:
        return None
    lines = [l for l in text.splitlines() if l.strip().startswith("{")]
    return json.loads(lines[-1]) if lines else None


def findmax(raw, name):
    """find-max's result, or, when the run was stopped before it ended, its best passing step."""
    d = last_json(raw, name)
    if d and d.get("mode") == "find-max":
        # No failing step: the search ran out of steps, so the figure is a floor.
        return d, " (no step failed)" if d.get("first_failing_rate", -1) < 0 else ""
    text = read(raw, name + ".out") or ""
    steps = [json.loads(l) for l in text.splitlines() if l.startswith('{"mode":"find-max-step"')]
    passed = [x for x in steps if x.get("pass")]
    if not passed:
        return None, " (stopped, no step passed)" if steps else ""
    best = max(passed, key=lambda x: x["rate_asked"])
    return {"max_rate": best["rate_asked"], "best": best}, " (stopped by the time budget after %d steps)" % len(steps)


def ratios(raw):
    """One line per cluster entry point: its find-max over `--role all`'s, 1 and 50 connections."""
    out = []
    for key, label in SYSTEMS[:-1]:
        cells = []
        for load in ("1conn", "50conn"):
            (c, cn), (a, an) = findmax(raw, key + "-findmax-" + load), findmax(raw, "all-direct-findmax-" + load)
            if not (c and a and a.get("max_rate")):
                cells.append("–")
                continue
            # A search that found no failing step gives a floor, not a maximum.
            bound = {(False, False): "", (True, False): " or more", (False, True): " or less",
                     (True, True): " (neither search found a failing step: not a ratio)"}[(bool(cn), bool(an))]
            cells.append("%.0f %%%s" % (100.0 * c["max_rate"] / a["max_rate"], bound))
        out.append("- %s: %s on 1 connection, %s on 50." % (label, cells[0], cells[1]))
    return out


def num(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


def pct(d, metric, p):
    h = (d or {}).get(metric + "_us") or {}
    v = h.get(p)
    return None if v is None else v / 1000.0


def cpu(raw, name, clk):
    """{role: CPU seconds} over the step, and (commands, commit seconds, batches) committed."""
    before, after = read(raw, name + ".cpu-before"), read(raw, name + ".cpu-after")
    mb, ma = read(raw, name + ".metrics-before"), read(raw, name + ".metrics-after")
    if not (before and after and mb and ma):
        return None, None
    b = dict(l.split() for l in before.split("\n") if l.strip())
    a = dict(l.split() for l in after.split("\n") if l.strip())
    secs = {r: (int(a[r]) - int(b.get(r, 0))) / clk for r in a}
    c0, s0, n0 = mb.split()
    c1, s1, n1 = ma.split()
    return secs, (int(c1) - int(c0), float(s1) - float(s0), int(n1) - int(n0))


def cpu_table(raw, names, clk):
    out = ["| step | commands committed | " + " | ".join(ROLES) + " | total | commit (µs/cmd) | mean batch |",
           "|---|---:|" + "---:|" * (len(ROLES) + 3)]
    for name in names:
        secs, counts = cpu(raw, name, clk)
        if not secs or not counts or counts[0] <= 0:
            out.append("| %s | – |%s" % (name, " – |" * (len(ROLES) + 3)))
            continue
        n, commit_s, batches = counts
        cells = [num(secs[r] * 1e6 / n, "{:.1f}") if r in secs else "" for r in ROLES]
        total = sum(secs.values()) * 1e6 / n
        out.append("| %s | %s | %s | **%.1f** | %s | %s |" % (
            name, num(n), " | ".join(cells), total, num(commit_s * 1e6 / n, "{:.1f}"),
            num(n / batches if batches else None, "{:.1f}")))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--elapsed", type=int)
    a = ap.parse_args()
    raw = a.raw
    clk = os.sysconf("SC_CLK_TCK")
    md = ["# Calderwood distributed mode: benchmark", ""]
    md.append("`make bench-cluster` (tools/bench/run-cluster.sh): the local cluster of `make cluster` "
              "(nats-server with JetStream on disk, PostgreSQL, two processors, two gateways, a query node, "
              "nginx) and one `--role all` server on SQLite, measured one after the other in the same run on "
              "the same machine (%s cores, every process sharing them). Load average at the start: %s; at the "
              "end: %s.%s" % (
                  (read(raw, "nproc.txt") or "?").strip(), (read(raw, "loadavg-start.txt") or "?").strip(),
                  (read(raw, "loadavg-end.txt") or "?").strip(),
                  " The run took %d s." % a.elapsed if a.elapsed else ""))
    md += ["", "## Highest rate with update p99.9 < 100 ms, nothing lost", "",
           "| system | 1 connection (visit-page) | its update p99.9 | 50 connections (add-to-cart, 50 users) | its update p99.9 |",
           "|---|---:|---:|---:|---:|"]
    for key, label in SYSTEMS:
        (f1, n1), (f50, n50) = findmax(raw, key + "-findmax-1conn"), findmax(raw, key + "-findmax-50conn")
        md.append("| %s | %s/s%s | %s ms | %s/s%s | %s ms |" % (
            label, num((f1 or {}).get("max_rate")), n1, num(pct((f1 or {}).get("best"), "update", "p99.9"), "{:.1f}"),
            num((f50 or {}).get("max_rate")), n50, num(pct((f50 or {}).get("best"), "update", "p99.9"), "{:.1f}")))
    md += ["", "Against `--role all`, the issue's target being at least 50 %:", ""] + ratios(raw)
    md += ["", "## At 10,000 commands/s asked (1 connection, visit-page)", "",
           "| system | achieved /s | ack p50 | ack p99 | update p50 | update p99 | update p99.9 | lost | errors | load avg |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, label in SYSTEMS:
        d = last_json(raw, key + "-rate-10000")
        if not d:
            md.append("| %s | – | | | | | | | | |" % label)
            continue
        md.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, num(d.get("rate_achieved")), num(pct(d, "ack", "p50"), "{:.1f}"),
            num(pct(d, "ack", "p99"), "{:.1f}"), num(pct(d, "update", "p50"), "{:.1f}"),
            num(pct(d, "update", "p99"), "{:.1f}"), num(pct(d, "update", "p99.9"), "{:.1f}"),
            d.get("lost"), d.get("errored"), " ".join((read(raw, key + "-rate-10000.loadavg") or "").split()[:3])))
    md += ["", "Latencies in ms, from each command's intended send time (coordinated omission corrected).", "",
           "## CPU per command committed, by process (µs)", "",
           "Each process's CPU time over the step (/proc/PID/stat, 10 ms ticks; nginx with its workers, "
           "PostgreSQL with its backends) divided by the commands the processors committed meanwhile; "
           "commit = the processors' BEGIN-to-COMMIT time (`calderwood_commit_seconds`) summed, per command. rate-1000 is a rate every system sustains; rate-10000 is beyond the cluster's, so its batches are large.", ""]
    names = [k + "-" + s for k, _ in SYSTEMS for s in ("rate-1000", "rate-10000")]
    md += cpu_table(raw, names, clk)
    md += ["", "The same over the find-max runs (these include the logins of their users, 50 password "
           "hashes on the gateways for the 50-connection runs, so they overstate the gateways):", ""]
    names = [k + "-" + s for k, _ in SYSTEMS for s in ("findmax-1conn", "findmax-50conn")]
    md += cpu_table(raw, names, clk)
    md += ["", "## Steps", "", "| step | exit status | seconds |", "|---|---|---:|"]
    for line in (read(raw, "status.tsv") or "").splitlines():
        parts = line.split("\t")
        md.append("| " + " | ".join(parts + [""] * (3 - len(parts))) + " |")
    md += ["", "Commands: `raw/commands.tsv`; each step's output, JSON and the CPU and /metrics readings "
           "around it are in `raw/`."]
    with open(a.out, "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
