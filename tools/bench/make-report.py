#!/usr/bin/env python3
"""make-report.py - turns the raw outputs of tools/bench/run-suite.sh into
bench/results/<date>/report.md and its gnuplot figures.

Reads OUT/raw/: the JSON summary lines of each step (<step>.json), the
HdrHistogram-format distributions (<step>-<name>.hgrm), commands.tsv,
status.tsv, incidents.txt, server-command.txt. Writes OUT/report.md and
OUT/*.png (gnuplot, pngcairo). Only reads what the suite wrote; a step
that failed shows as "no result" rather than stopping the report.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import subprocess

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--server-bin", required=True)
p.add_argument("--bench-bin", required=True)
p.add_argument("--elapsed", type=int, default=0)
p.add_argument("--quick", action="store_true")
args = p.parse_args()
OUT = args.out
RAW = os.path.join(OUT, "raw")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def lines(name):
    path = os.path.join(RAW, name + ".json")
    out = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def last(name, mode=None):
    for d in reversed(lines(name)):
        if mode is None or d.get("mode") == mode:
            return d
    return None


def read(path, default=""):
    try:
        return open(path).read()
    except OSError:
        return default


# The store the suite's server ran on (run-suite.sh --store), for the durability rows.
DURABILITY = ("PostgreSQL, synchronous_commit=on"
              if "--store postgres" in read(os.path.join(RAW, "server-command.txt"))
              else "SQLite WAL, synchronous=FULL")


def ms(us):
    return "–" if us is None else ("%.2f" % (us / 1000.0) if us < 100000 else "%.0f" % (us / 1000.0))


def hv(h, key):
    """A latency of histogram h in ms, or a dash when it recorded nothing."""
    return "–" if not h or not h.get("count") else ms(h.get(key))


def num(v, fmt="{:,.0f}"):
    return "–" if v is None else fmt.format(v)


def get(d, *path):
    for k in path:
        if d is None or k not in d:
            return None
        d = d[k]
    return d



def metrics(path):
    """Prometheus text -> {name{labels}: value}."""
    out = {}
    for line in read(path).splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def server_view(name):
    """What the server's /metrics say about one step: the difference after - before."""
    a = metrics(os.path.join(RAW, name + ".metrics-before"))
    b = metrics(os.path.join(RAW, name + ".metrics-after"))
    if not a or not b:
        return None
    d = {k: b[k] - a.get(k, 0) for k in b}
    buckets = sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in d.items()
                     if k.startswith("calderwood_commit_seconds_bucket") and "+Inf" not in k)
    n = d.get("calderwood_commit_seconds_count", 0)
    view = {"batches": d.get("calderwood_batches_total", 0), "commits": n,
            "batch_avg": d.get("calderwood_batch_commands_total", 0) / max(d.get("calderwood_batches_total", 0), 1),
            "commit_mean_ms": 1000 * d.get("calderwood_commit_seconds_sum", 0) / n if n else None,
            "slow_closed": d.get("calderwood_connections_closed_slow_total", 0),
            "overloaded": d.get('calderwood_commands_total{outcome="overloaded"}', 0)}
    below10 = next((v for le, v in buckets if abs(le - 0.01) < 1e-9), None)
    below100 = next((v for le, v in buckets if abs(le - 0.1) < 1e-9), None)
    view["over10"] = None if below10 is None else n - below10
    view["over100"] = None if below100 is None else n - below100
    # the smallest bucket bound holding 99 % / all of the commits
    view["p99_le"] = next((le for le, v in buckets if n and v >= 0.99 * n), None)
    view["max_le"] = next((le for le, v in buckets if n and v >= n), None)
    return view

# ---------------------------------------------------------------- machine
cpu_model = "unknown"
for line in read("/proc/cpuinfo").splitlines():
    if line.startswith("model name"):
        cpu_model = line.split(":", 1)[1].strip()
        break
cores = os.cpu_count()
kernel = " ".join(platform.uname()[i] for i in (0, 2, 4))
mem = "?"
for line in read("/proc/meminfo").splitlines():
    if line.startswith("MemTotal"):
        mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)


def git(*a):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(a), capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


commit = git("rev-parse", "--short", "HEAD") or "unknown"
dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""

# ---------------------------------------------------------------- results
rates = []
for path in glob.glob(os.path.join(RAW, "rate-*.json")):
    d = last(os.path.basename(path)[:-5], "rate")
    if d:
        rates.append(d)
rates.sort(key=lambda d: d["rate_asked"])
by_rate = {int(d["rate_asked"]): d for d in rates}
def find_max(name):
    """The find-max result and its steps; when the run was cut short (timeout),
    the result is made from the steps it finished, marked incomplete."""
    steps = [d for d in lines(name) if d.get("mode") == "find-max-step"]
    fm = last(name, "find-max")
    if fm is None and steps:
        ok = [d for d in steps if d["pass"]]
        best = max(ok, key=lambda d: d["rate_asked"]) if ok else None
        lo = best["rate_asked"] if best else 0
        bad = [d["rate_asked"] for d in steps if not d["pass"] and d["rate_asked"] > lo]
        fm = {"mode": "find-max", "max_rate": lo, "first_failing_rate": min(bad) if bad else -1,
              "step_duration_s": steps[0]["duration_s"], "best": best, "incomplete": True}
    return fm, steps


fm1, steps1 = find_max("findmax-1conn")
fm50, steps50 = find_max("findmax-50users")
fmf, stepsf = find_max("findmax-fanout50")
conns = []
for path in glob.glob(os.path.join(RAW, "conns-*.json")):
    d = last(os.path.basename(path)[:-5], "connections")
    if d:
        conns.append(d)
conns.sort(key=lambda d: d["connections"])
query = last("query-list-page-views", "query")
fprobe = last("fsync-probe", "fsync")
status = {}
for line in read(os.path.join(RAW, "status.tsv")).splitlines():
    f = line.split("\t")
    if len(f) == 3:
        status[f[0]] = (f[1], f[2])
commands = []
for line in read(os.path.join(RAW, "commands.tsv")).splitlines():
    f = line.split("\t", 1)
    if len(f) == 2:
        commands.append(f)
incidents = read(os.path.join(RAW, "incidents.txt")).strip()

# ---------------------------------------------------------------- plots
GP_HEAD = 'set terminal pngcairo size 960,600 font "sans,10"\nset grid\nset key left top\n'


def gnuplot(name, script):
    gp = os.path.join(RAW, name + ".gp")
    with open(gp, "w") as f:
        f.write(GP_HEAD + 'set output "%s"\n' % os.path.join(OUT, name + ".png") + script)
    r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
    if r.returncode:
        print("gnuplot %s: %s" % (name, r.stderr))
        return False
    return True


def hgrm(path):
    return os.path.exists(path) and os.path.getsize(path) > 200


PCT_AXIS = (
    'set logscale x\nset xrange [1:1000000]\n'
    'set xtics ("0%%" 1, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "99.999%%" 100000, "99.9999%%" 1000000)\n'
    'set xlabel "percentile"\nset logscale y\nset ylabel "latency (ms)"\n'
)
figures = {}

series = []
for d in rates:
    path = os.path.join(RAW, "rate-%d-update.hgrm" % d["rate_asked"])
    if hgrm(path):
        series.append('"%s" using 4:1 with lines lw 2 title "%s commands/s"' % (path, num(d["rate_asked"])))
if fm1 and hgrm(os.path.join(RAW, "findmax-1conn-update.hgrm")):
    series.append('"%s" using 4:1 with lines lw 2 dt 2 title "%s commands/s (find-max result)"'
                  % (os.path.join(RAW, "findmax-1conn-update.hgrm"), num(fm1["max_rate"])))
if series and gnuplot("latency-by-percentile", PCT_AXIS + "set key right bottom\n" +
                      'set title "update latency by percentile, 1 connection, visit-page (intended send -> own update)"\n'
                      "plot " + ", \\\n     ".join(series) + "\n"):
    figures["percentiles"] = "latency-by-percentile.png"

series = []
for d in rates:
    path = os.path.join(RAW, "rate-%d-ack.hgrm" % d["rate_asked"])
    if hgrm(path):
        series.append('"%s" using 4:1 with lines lw 2 title "%s commands/s"' % (path, num(d["rate_asked"])))
if series and gnuplot("ack-latency-by-percentile", PCT_AXIS + "set key right bottom\n" +
                      'set title "ack latency by percentile, 1 connection, visit-page (intended send -> cmd-ack)"\n'
                      "plot " + ", \\\n     ".join(series) + "\n"):
    figures["ack"] = "ack-latency-by-percentile.png"


def dat(name, rows):
    path = os.path.join(RAW, name + ".dat")
    with open(path, "w") as f:
        for r in rows:
            f.write(" ".join(str(x) for x in r) + "\n")
    return path


def p999(d, key):
    v = get(d, key, "p99.9")
    return None if v is None or get(d, key, "count") == 0 else v / 1000.0


def ok_run(d):
    return d["lost"] == 0 and not d["closed"] and not d["errored"] and not d.get("deliveries_lost")


def tp_series(runs, key, x_of):
    good = sorted((x_of(d), p999(d, key)) for d in runs if p999(d, key) and ok_run(d))
    bad = sorted((x_of(d), p999(d, key)) for d in runs if p999(d, key) and not ok_run(d))
    return good, bad


tp1, tp1_bad = tp_series(rates + steps1, "update_us", lambda d: d["rate_sent"])
tp50, tp50_bad = tp_series(steps50, "update_us", lambda d: d["rate_sent"])
if tp1 or tp50 or tp1_bad or tp50_bad:
    plots = []
    if tp1:
        plots.append('"%s" using 1:2 with linespoints pt 7 lw 2 lc rgb "#9400d3" title "1 connection, visit-page"' % dat("tp-1conn", tp1))
    if tp50:
        plots.append('"%s" using 1:2 with linespoints pt 5 lw 2 lc rgb "#009e73" title "50 users x 1 connection, add-to-cart"' % dat("tp-50users", tp50))
    if tp1_bad:
        plots.append('"%s" using 1:2 with points pt 2 ps 2 lw 2 lc rgb "#9400d3" title "1 connection: lost commands or connection closed"' % dat("tp-1conn-bad", tp1_bad))
    if tp50_bad:
        plots.append('"%s" using 1:2 with points pt 2 ps 2 lw 2 lc rgb "#009e73" title "50 users: lost commands or connection closed"' % dat("tp-50users-bad", tp50_bad))
    plots.append('100 with lines dt 2 lc rgb "red" title "bound: 100 ms"')
    if gnuplot("throughput-vs-p999",
               'set title "update latency p99.9 vs command rate (each point: one rate run or find-max step)"\n'
               'set xlabel "commands/s (sent, open loop)"\nset ylabel "update p99.9 (ms)"\nset logscale y\n'
               'set key left top\nset format x "%.1s%c"\nplot ' + ", \\\n     ".join(plots) + "\n"):
        figures["throughput"] = "throughput-vs-p999.png"

tpf, tpf_bad = tp_series(stepsf, "delivery_us", lambda d: d["rate_sent"] * (d["connections"] + d["receivers"]))
if tpf or tpf_bad:
    plots = []
    if tpf:
        plots.append('"%s" using 1:2 with linespoints pt 7 lw 2 title "delivery p99.9"' % dat("tp-fanout", tpf))
    if tpf_bad:
        plots.append('"%s" using 1:2 with points pt 2 ps 2 lw 2 title "lost commands or connections closed"' % dat("tp-fanout-bad", tpf_bad))
    plots.append('100 with lines dt 2 lc rgb "red" title "bound: 100 ms"')
    if gnuplot("fanout-deliveries-vs-p999",
               'set title "fan-out: 50 connections receive every page-view (1 sender + 49 receivers)"\n'
               'set xlabel "update deliveries/s offered (commands/s x 50)"\nset ylabel "delivery p99.9 (ms)"\n'
               'set logscale y\nset key left top\nset format x "%.1s%c"\nplot ' + ", \\\n     ".join(plots) + "\n"):
        figures["fanout_rate"] = "fanout-deliveries-vs-p999.png"

fc = [(d["connections"], get(d, "delivery_us", "p50") / 1e3, get(d, "delivery_us", "p99") / 1e3,
       get(d, "delivery_us", "max") / 1e3) for d in conns if get(d, "delivery_us", "count")]
if fc and gnuplot("fanout-vs-connections",
                  'set title "one page-view fanned out to K idle connections: delivery latency"\n'
                  'set xlabel "connections (K)"\nset ylabel "send -> read on each connection (ms)"\n'
                  'plot "{0}" using 1:2 with linespoints pt 7 lw 2 title "p50", '
                  '"{0}" using 1:3 with linespoints pt 5 lw 2 title "p99", '
                  '"{0}" using 1:4 with linespoints pt 9 lw 2 title "max"\n'.format(dat("fanout-conns", fc))):
    figures["fanout_conns"] = "fanout-vs-connections.png"

# ---------------------------------------------------------------- summary
def verdict(ok):
    return "–" if ok is None else ("met" if ok else "**missed**")


r10 = by_rate.get(10000)
r50 = by_rate.get(50000)
c15 = next((d for d in conns if d["connections"] >= 15000), None)
fm1_best = get(fm1, "best")
fmf_best = get(fmf, "best")
rows = []


def row(issue, target, measured, ok, where):
    rows.append("| %s | %s | %s | %s | %s |" % (issue, target, measured, verdict(ok), where))


if r50:
    ok = r50["lost"] == 0 and r50["update_us"]["count"] > 0 and r50["update_us"]["p99.9"] < 100000 and r50["rate_achieved"] >= 0.99 * 50000
    row("3", "1 connection, visit-page: 50,000 commands/s end to end, update p99.9 < 100 ms",
        "%s/s achieved, update p99.9 %s ms, lost %d%s" % (num(r50["rate_achieved"]), hv(r50["update_us"], "p99.9"), r50["lost"],
                                                        ", connection closed by the server %s" % json.dumps(r50["closed"]) if r50["closed"] else ""),
        ok, "§1 rate-50000")
if r10:
    row("3", "update p99 < 5 ms at 10,000 commands/s",
        "p99 %s ms" % hv(r10["update_us"], "p99"), r10["lost"] == 0 and r10["update_us"]["p99"] < 5000, "§1 rate-10000")


def findmax_rows(issue, one_conn, fifty_users):
    """find-max against an issue's targets (update p99.9 < 100 ms, zero loss)."""
    for fm, what, target, where in ((fm1, "1 connection, visit-page", one_conn, "§2"),
                                    (fm50, "50 users x 1 connection, add-to-cart", fifty_users, "§3")):
        if fm:
            row(issue, "find-max, %s >= %s commands/s" % (what, num(target)),
                "%s commands/s" % num(fm["max_rate"]), fm["max_rate"] >= target, where)


def fanout_row(issue, target):
    """The fan-out find-max's deliveries against an issue's target (delivery p99.9 < 100 ms)."""
    if fmf:
        dps = get(fmf_best, "deliveries_per_s")
        row(issue, "fan-out, 50 connections: >= %s deliveries/s at delivery p99.9 < 100 ms" % num(target),
            "%s deliveries/s (%s commands/s x 50)" % (num(dps), num(fmf["max_rate"])),
            dps is not None and dps >= target, "§4")


findmax_rows("5", 150000, 150000)
fanout_row("5", 2000000)
if r10:
    row("5", "10,000 commands/s, 1 connection: update p99 < 1 ms, p99.9 < 3 ms",
        "p99 %s ms, p99.9 %s ms" % (hv(r10["update_us"], "p99"), hv(r10["update_us"], "p99.9")),
        r10["update_us"]["p99"] < 1000 and r10["update_us"]["p99.9"] < 3000, "§1 rate-10000")
    us_cmd = r10.get("server_cpu_us_per_cmd")
    row("5", "server CPU <= 25 us per command at 10,000 commands/s (1 connection)",
        "%s us/command (server %s of one core)" % (num(us_cmd, "{:.1f}"), num(r10.get("server_cpu_pct"), "{:.0f}%")),
        None if us_cmd is None else us_cmd <= 25, "§1 rate-10000")
if fmf_best and fmf_best.get("server_cpu_us_per_delivery") is not None:
    row("5", "server CPU per delivered message (fan-out, fixed rate)",
        "%.2f us/delivery at %s deliveries/s" % (fmf_best["server_cpu_us_per_delivery"], num(fmf_best["deliveries_per_s"])),
        None, "§4")
if c15:
    row("5", "15,000 idle connections: server RSS <= 6 KiB per connection",
        "%s KiB/connection (%d of %d open)" % (num(c15.get("rss_per_conn_kib"), "{:.2f}"), c15["opened"], c15["connections"]),
        None if c15.get("rss_per_conn_kib") is None else c15["rss_per_conn_kib"] <= 6, "§5")
    row("5", "one event to all 15,000: delivery p99 < 50 ms",
        "p99 %s ms (first event %s ms)" % (ms(get(c15, "delivery_us", "p99")), ms(get(c15, "first_event_us", "p99"))),
        get(c15, "delivery_us", "p99") is not None and c15["delivered"] == c15["expected"] and c15["delivery_us"]["p99"] < 50000, "§5")
if query:
    row("5", "/query list-page-views limit 10 >= 20,000 queries/s (keep-alive)",
        "%s queries/s, p99 %s ms" % (num(query["queries_per_s"]), ms(query["latency_us"]["p99"])),
        query["queries_per_s"] >= 20000 and query["errors"] == 0, "§6")
# Issue 12: the server adds at most 0.3 ms to the disk's own fdatasync p99 (same run).
ADDED_GOAL_US = 300


def added_p99(probe, run):
    """update p99 at 10,000/s minus the disk's fdatasync p99, in µs (None if either is missing)."""
    if not probe or not run or not get(probe, "fdatasync_us", "count") or not get(run, "update_us", "count"):
        return None
    return run["update_us"]["p99"] - probe["fdatasync_us"]["p99"]


added = added_p99(fprobe, r10)
if fprobe or r10:
    row("12", "10,000 commands/s, 1 connection: update p99 <= the disk's fdatasync p99 + 0.3 ms (same run)",
        "update p99 %s ms, fdatasync p99 %s ms: %s" % (
            hv(get(r10, "update_us"), "p99"), hv(get(fprobe, "fdatasync_us"), "p99"),
            "–" if added is None else "%+.2f ms" % (added / 1000.0)),
        None if added is None else added <= ADDED_GOAL_US, "§1 fsync-probe, rate-10000")
# Issue 12's targets, each from the same steps as the rows above.
fm50_best = get(fm50, "best")
findmax_rows("12", 180000, 120000)
for best, bound, what in ((fm1_best, 6, "1 connection"), (fm50_best, 9, "50 users")):
    us = get(best, "server_cpu_us_per_cmd")
    if best:
        row("12", "server CPU per command at saturation (%s, find-max's best step) <= %d us" % (what, bound),
            "%s us/command at %s/s" % (num(us, "{:.1f}"), num(best.get("rate_achieved"))),
            None if us is None or us < 0 else us <= bound, "§2" if bound == 6 else "§3")
if r10 and r10.get("server_cpu_us_per_cmd") is not None:
    row("12", "server CPU <= 30 us per command at 10,000 commands/s (1 connection)",
        "%s us/command" % num(r10["server_cpu_us_per_cmd"], "{:.1f}"), r10["server_cpu_us_per_cmd"] <= 30,
        "§1 rate-10000")
if c15:
    p99 = get(c15, "delivery_us", "p99")
    row("12", "one event to 15,000 idle connections: delivery p99 < 40 ms", "p99 %s ms" % ms(p99),
        p99 is not None and c15["delivered"] == c15["expected"] and p99 < 40000, "§5")
    rss = c15.get("rss_per_conn_kib")
    row("12", "15,000 idle connections: <= 2 KiB of RSS each", "%s KiB/connection" % num(rss, "{:.2f}"),
        None if rss is None else rss <= 2, "§5")
fanout_row("12", 4000000)
row("5", "durability on", DURABILITY + " (the server's default; no option turns it off)", True, "")

# The headline figures, machine-readable, for tools/bench/compare-runs.py.
figures = {
    "server": read(os.path.join(RAW, "server-command.txt")).strip().replace(ROOT + "/", ""),
    "findmax_1conn_per_s": get(fm1, "max_rate"),
    "findmax_1conn_cpu_us": get(fm1_best, "server_cpu_us_per_cmd"),
    "findmax_50users_per_s": get(fm50, "max_rate"),
    "findmax_50users_cpu_us": get(fm50_best, "server_cpu_us_per_cmd"),
    "rate10000_update_p50_ms": None if not r10 else r10["update_us"]["p50"] / 1000.0,
    "rate10000_update_p99_ms": None if not r10 else r10["update_us"]["p99"] / 1000.0,
    "rate10000_update_p999_ms": None if not r10 else r10["update_us"]["p99.9"] / 1000.0,
    "rate10000_cpu_us": get(r10, "server_cpu_us_per_cmd"),
    "fsync_p99_ms": None if not get(fprobe, "fdatasync_us", "count") else fprobe["fdatasync_us"]["p99"] / 1000.0,
    "fanout_deliveries_per_s": get(fmf_best, "deliveries_per_s"),
    "fanout_cpu_us_per_delivery": get(fmf_best, "server_cpu_us_per_delivery"),
    "idle15000_delivery_p99_ms": None if get(c15, "delivery_us", "p99") is None else c15["delivery_us"]["p99"] / 1000.0,
    "idle15000_rss_kib": get(c15, "rss_per_conn_kib"),
    "queries_per_s": get(query, "queries_per_s"),
}
with open(os.path.join(OUT, "figures.json"), "w") as f:
    json.dump(figures, f, indent=1)
    f.write("\n")

# ---------------------------------------------------------------- report
R = []
w = R.append
date = os.path.basename(os.path.normpath(OUT))
w("# Calderwood benchmark report — %s" % date)
w("")
if args.quick:
    w("**Quick run (`--quick`): short steps, for checking the suite only; the figures are not comparable.**")
    w("")
w("Generated by `make bench` (tools/bench/run-suite.sh) in %d s. Load generator: `calderwood-bench` "
  "(tools/bench/, an epoll WebSocket/HTTP client, no libwebsockets), on the same machine as the server, over loopback." % args.elapsed)
w("")
w("## Machine and build")
w("")
w("| | |")
w("|---|---|")
w("| CPU | %s |" % cpu_model)
w("| cores | %s |" % cores)
w("| memory | %s |" % mem)
w("| kernel | %s |" % kernel)
w("| commit | %s%s |" % (commit, dirty))
w("| server | `%s` (normal build: `-O2 -g`) |" % read(os.path.join(RAW, "server-command.txt")).strip().replace(ROOT + "/", ""))
w("| durability | %s: each batch is durable before its acks' updates go out |" % DURABILITY)
w("| load average | %s at the start, %s at the end (1, 5, 15 min) |" % (
    " ".join(read(os.path.join(RAW, "loadavg-start.txt")).split()[:3]) or "?",
    " ".join(read(os.path.join(RAW, "loadavg-end.txt")).split()[:3]) or "?"))
w("| load generator | shares the 2 cores with the server; its own CPU use is in every result (`bench_cpu_pct`) |")
w("")
w("The server and the load generator compete for the same cores, and other processes on this machine "
  "may have run at the same time: treat single figures as one sample, not a promise.")
w("")
w("## Summary against the targets (issues 3, 5 and 12)")
w("")
w("Issue 12 replaced issue 5's throughput, CPU and fan-out targets with higher ones; both are checked.")
w("")
w("| issue | target | measured | | where |")
w("|---|---|---|---|---|")
R.extend(rows)
w("")
repeats = []
for name, _ in commands:
    for d in lines(name):
        if d.get("attempts", 1) > 1:
            repeats.append("%s%s at %s/s: %d attempts; other processes used %s %% of a core in the discarded ones" % (
                name, " step %d" % d["step"] if "step" in d else "", num(d.get("rate_asked")), d["attempts"],
                ", ".join("%.0f" % x for x in d.get("disturbed_other_cpu_pct", []))))
quiet_waits = []
for name, _ in commands:
    q = last(name + ".quiet")
    if q and not q.get("quiet"):
        quiet_waits.append("%s: started with other processes at %.0f %% of a core after waiting %.0f s" % (
            name, q["other_cpu_pct"], q["waited_s"]))
if repeats or quiet_waits:
    w("## Disturbed runs")
    w("")
    w("Other processes shared the machine during the suite. A rate run or find-max step during which "
      "they used more than 40 % of one core was repeated (at most twice, within the time budget); "
      "every figure above is from the last attempt, whose *other CPU* column shows what remained.")
    w("")
    for x in repeats + quiet_waits:
        w("- " + x)
    w("")
# Warnings and errors the server logged, grouped by event: a server-side cause
# (a retried batch, a slow consumer closed) next to the figures it explains.
warn = {}
for line in read(os.path.join(RAW, "server.log")).splitlines():
    f = line.split(" ", 3)
    if len(f) >= 3 and f[1] in ("warn", "error"):
        key = (f[1], f[2])
        if key not in warn:
            warn[key] = [0, line]
        warn[key][0] += 1
if warn:
    w("## Server warnings and errors during the suite")
    w("")
    w("| level | event | count | first occurrence |")
    w("|---|---|---|---|")
    for (level, event), (count, first) in sorted(warn.items(), key=lambda kv: -kv[1][0]):
        w("| %s | `%s` | %d | `%s` |" % (level, event, count, first[:160].replace("|", "\\|")))
    w("")
if incidents:
    w("## Incidents")
    w("")
    w("```")
    w(incidents)
    w("```")
    w("")

# 1
w("## 1. One connection, visit-page, fixed rates")
w("")
w("Open loop: each command has an intended send time (rate R, evenly spaced); ack and update latency "
  "count from it (coordinated omission corrected), the first second is left out (warm-up). "
  "*update* = intended send time → the command's own `update` on the same connection.")
w("")
w("| rate asked | sent/s | achieved/s | ack p50 | ack p99 | update p50 | update p99 | update p99.9 | update max | lost | errors | closed | server CPU | server µs/cmd | bench CPU | send lag p99.9 | other CPU |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for d in rates:
    w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
        num(d["rate_asked"]), num(d["rate_sent"]), num(d["rate_achieved"]),
        hv(d["ack_us"], "p50"), hv(d["ack_us"], "p99"), hv(d["update_us"], "p50"), hv(d["update_us"], "p99"),
        hv(d["update_us"], "p99.9"), hv(d["update_us"], "max"), d["lost"],
        json.dumps(d["errors"]) if d["errors"] else "0", json.dumps(d["closed"]) if d["closed"] else "–",
        num(d.get("server_cpu_pct"), "{:.0f}%"), num(d.get("server_cpu_us_per_cmd"), "{:.1f}"), num(d["bench_cpu_pct"], "{:.0f}%"),
        hv(d["send_lag_us"], "p99.9"), num(d.get("other_cpu_pct"), "{:.0f}%")))
w("")
w("Latencies in ms. *lost*: no ack or no update 5 s after the window. *closed*: connections the server "
  "closed (code: count). CPU in % of one core. *send lag*: how late the load generator wrote commands "
  "after their intended time (already inside the latencies; large values mean the bench thread was not "
  "scheduled). *other CPU*: the rest of the machine (other processes) during the run.")
w("")
w("### The disk's own limit: fdatasync beside the update latency at 10,000/s")
w("")
if fprobe:
    v10 = server_view("rate-10000") if r10 else None
    w("Right before rate-10000, `calderwood-bench fsync` wrote %s bytes (three WAL frames of 8 KiB pages, a commit "
      "of a few commands) at the next offset of a preallocated file in the server's data directory (%s, device %s) "
      "and called fdatasync, one after another, %s s (%s syncs/s, other CPU %s): what one commit costs this disk "
      "with nothing else to do. The server's commit is the same write and fdatasync of its WAL." % (
          num(fprobe["size"]), fprobe["fs"], fprobe["device"], fprobe["duration_s"],
          num(fprobe["syncs_per_s"]), num(fprobe.get("other_cpu_pct"), "{:.0f}%")))
    w("")
    if DURABILITY.startswith("PostgreSQL"):
        w("**This run's store was PostgreSQL**: its commits are PostgreSQL's WAL flushes, so the probe "
          "(in the server's data directory) stands for them only if PostgreSQL's cluster is on the same device.")
        w("")
    w("| latency (ms) | p50 | p99 | p99.9 | max | count |")
    w("|---|---|---|---|---|---|")
    for label, h in (("disk: fdatasync", fprobe["fdatasync_us"]),
                     ("disk: write + fdatasync", fprobe["write_fdatasync_us"]),
                     ("group commit floor at %s/s (model)" % num(fprobe.get("floor_rate")), fprobe.get("floor_us")),
                     ("server: update at 10,000/s (rate-10000)", get(r10, "update_us"))):
        w("| %s | %s | %s | %s | %s | %s |" % (label, hv(h, "p50"), hv(h, "p99"), hv(h, "p99.9"),
                                             hv(h, "max"), num(get(h, "count") if h else None)))
    w("")
    if added is not None:
        w("**The server adds %+.2f ms at p99** to the disk's fdatasync p99 (goal: at most +%.1f ms: %s)%s." % (
            added / 1000.0, ADDED_GOAL_US / 1000.0, verdict(added <= ADDED_GOAL_US),
            "" if not v10 else "; at 10,000/s the server committed %s batches of %.1f commands on average "
              "(one fdatasync each)" % (num(v10["batches"]), v10["batch_avg"])))
        w("")
        fl = get(fprobe, "floor_us")
        if fl and fl.get("count"):
            w("Against the group commit floor (below) the server adds %+.2f ms at p50 and %+.2f ms at p99." % (
                (r10["update_us"]["p50"] - fl["p50"]) / 1000.0, (r10["update_us"]["p99"] - fl["p99"]) / 1000.0))
            w("")
    w("*Group commit floor*: the update latency a server costing nothing would have on these syncs. "
      "It has one writer, so a command that arrives while a batch is being synced waits for that sync, "
      "then for its own batch's: with the probe's syncs back to back as the commits, an arrival (evenly "
      "spaced at the rate) during sync i is durable when sync i+1 ends. Its percentiles are above the "
      "fdatasync ones (each arrival waits for at least one whole sync, and long syncs catch more arrivals); "
      "the server's own cost is the distance from the floor to the update row, as far as the disk behaved "
      "alike in the two windows (compare their *other CPU*).")
    w("")
else:
    w("No result (see raw/fsync-probe.err).")
    w("")
if "percentiles" in figures:
    w("![update latency by percentile](%s)" % figures["percentiles"])
    w("")
if "ack" in figures:
    w("![ack latency by percentile](%s)" % figures["ack"])
    w("")


def steps_table(title, steps, metric, per):
    w(title)
    w("")
    w("| step | rate asked | sent/s | achieved/s | %s p50 | %s p99 | %s p99.9 | max | lost | errors | closed | pass | server CPU | bench CPU (max thread) | other CPU |" % (metric, metric, metric))
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for d in steps:
        h = d[metric + "_us"]
        w("| %d | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s (%s) | %s |" % (
            d["step"], num(d["rate_asked"]), num(d["rate_sent"]), num(d["rate_achieved"]),
            hv(h, "p50"), hv(h, "p99"), hv(h, "p99.9"), hv(h, "max"), d["lost"],
            json.dumps(d["errors"]) if d["errors"] else "0", json.dumps(d["closed"]) if d["closed"] else "–",
            "yes" if d["pass"] else "no", num(d.get("server_cpu_pct"), "{:.0f}%"),
            num(d["bench_cpu_pct"], "{:.0f}%"), num(d["bench_thread_cpu_max_pct"], "{:.0f}%"),
            num(d.get("other_cpu_pct"), "{:.0f}%")))
    w("")


# 2
w("## 2. find-max, one connection, visit-page (the seed's method)")
w("")
if fm1:
    w("**Result: %s commands/s** with update p99.9 < 100 ms and zero loss (first failing rate: %s; steps of %s s)%s." % (
        num(fm1["max_rate"]), num(fm1["first_failing_rate"]) if fm1["first_failing_rate"] > 0 else "none up to the ceiling", fm1["step_duration_s"],
        " — incomplete: the run was stopped by the suite's time limit" if fm1.get("incomplete") else ""))
    w("")
    steps_table("Steps (latencies in ms):", steps1, "update", 1)
else:
    w("No result (see raw/findmax-1conn.err).")
    w("")
if "throughput" in figures:
    w("![update p99.9 vs rate](%s)" % figures["throughput"])
    w("")

# 3
w("## 3. find-max, 50 users × 1 connection, add-to-cart")
w("")
w("Each user has one connection; each cart event goes only to its sender, so there is no fan-out. "
  "The 49 extra users are registered by calderwood-bench with `register-user` commands over the first "
  "user's WebSocket, then log in with POST /login (the server runs with a raised login rate limit).")
w("")
if fm50:
    w("**Result: %s commands/s** with update p99.9 < 100 ms and zero loss (first failing rate: %s)%s." % (
        num(fm50["max_rate"]), num(fm50["first_failing_rate"]) if fm50["first_failing_rate"] > 0 else "none",
        " — incomplete: the run was stopped by the suite's time limit" if fm50.get("incomplete") else ""))
    w("")
    steps_table("Steps (latencies in ms):", steps50, "update", 1)
else:
    w("No result (see raw/findmax-50users.err).")
    w("")

# 4
w("## 4. Fan-out: 50 connections receive every visit-page")
w("")
w("1 sender + 49 receivers (one user, `rate --connections 1 --receivers 49`): every page-view goes to "
  "all 50 connections, so each command is 50 deliveries. Each command carries its intended send time in "
  "`meta.bt`; every connection times its copy (*delivery* latency). The bound is delivery p99.9 < 100 ms, "
  "zero loss, no delivery missing.")
w("")
if fmf:
    b = fmf_best or {}
    w("**Result: %s commands/s = %s deliveries/s** (delivery p99.9 %s ms; bench threads at most %s busy, "
      "server %s CPU: %s)." % (
          num(fmf["max_rate"]), num(b.get("deliveries_per_s")), ms(get(b, "delivery_us", "p99.9")),
          num(b.get("bench_thread_cpu_max_pct"), "{:.0f}%"), num(b.get("server_cpu_pct"), "{:.0f}%"),
          "the load generator may have been the limit" if (b.get("bench_thread_cpu_max_pct") or 0) > 90
          else "the load generator was not saturated: the server was the limit"))
    w("")
    w("| step | commands/s | deliveries/s | delivery p50 | p99 | p99.9 | max | lost | deliveries lost | closed | pass | server CPU | server µs/delivery | bench CPU (max thread) | other CPU |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for d in stepsf:
        h = d["delivery_us"]
        w("| %d | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s (%s) | %s |" % (
            d["step"], num(d["rate_sent"]), num(d["deliveries_per_s"]), hv(h, "p50"), hv(h, "p99"), hv(h, "p99.9"),
            hv(h, "max"), d["lost"], num(d.get("deliveries_lost")),
            json.dumps(d["closed"]) if d["closed"] else "–", "yes" if d["pass"] else "no",
            num(d.get("server_cpu_pct"), "{:.0f}%"), num(d.get("server_cpu_us_per_delivery"), "{:.2f}"),
            num(d["bench_cpu_pct"], "{:.0f}%"), num(d["bench_thread_cpu_max_pct"], "{:.0f}%"),
            num(d.get("other_cpu_pct"), "{:.0f}%")))
    w("")
else:
    w("No result (see raw/findmax-fanout50.err).")
    w("")
if "fanout_rate" in figures:
    w("![fan-out deliveries/s vs p99.9](%s)" % figures["fanout_rate"])
    w("")

# 5
w("## 5. Idle authenticated connections: memory and one fan-out")
w("")
w("Each K runs on a freshly started server (same database), so the heap earlier steps grew does "
  "not hide what connections cost. K WebSockets (one user) are opened and left idle; the server's "
  "VmRSS is read before and after (2 s settle). Then one page-view at a time (%s events) is sent from another connection and every "
  "connection times its copy (send → read)." % (conns[0]["events"] if conns else "–"))
w("")
w("| K | opened | connect time | RSS before | RSS after | RSS per connection | delivery p50 | p99 | max | first event p99 | delivered/expected | server µs/delivery | bench µs/delivery |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for d in conns:
    w("| %s | %d | %.2f s | %s KiB | %s KiB | %s KiB | %s | %s | %s | %s | %d/%d | %s | %s |" % (
        num(d["connections"]), d["opened"], d["connect_s"], num(d.get("rss_before_kib")), num(d.get("rss_after_kib")),
        num(d.get("rss_per_conn_kib"), "{:.2f}"), hv(d["delivery_us"], "p50"), hv(d["delivery_us"], "p99"),
        hv(d["delivery_us"], "max"), hv(d["first_event_us"], "p99"), d["delivered"], d["expected"],
        num(d.get("server_cpu_us_per_delivery"), "{:.2f}"), num(d.get("bench_cpu_us_per_delivery"), "{:.2f}")))
w("")
w("Latencies in ms. Above 15,000 connections the load generator binds them to several 127.0.0.x source addresses.")
w("")
if "fanout_conns" in figures:
    w("![fan-out latency vs connections](%s)" % figures["fanout_conns"])
    w("")

# 6
w("## 6. Queries: POST /query list-page-views (limit 10), keep-alive")
w("")
if query:
    w("**%s queries/s** over %d keep-alive connections, flat out (one request in flight per connection): "
      "latency p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms; statuses %s; server %s CPU, %s µs/query; bench %s CPU." % (
          num(query["queries_per_s"]), query["connections"], ms(query["latency_us"]["p50"]), ms(query["latency_us"]["p99"]),
          ms(query["latency_us"]["p99.9"]), ms(query["latency_us"]["max"]), json.dumps(query["status"]),
          num(query.get("server_cpu_pct"), "{:.0f}%"), num(query.get("server_cpu_us_per_query"), "{:.1f}"),
          num(query["bench_cpu_pct"], "{:.0f}%")))
else:
    w("No result (see raw/query-list-page-views.err).")
w("")

# server view
w("## The server's view of each step (/metrics before and after)")
w("")
w("Commit = one write transaction of a batch of commands, fsynced (WAL, synchronous=FULL). "
  "Commit times come from the server's histogram buckets (so p99 and max are bucket bounds).")
w("")
w("| step | batches | commands per batch | commit mean | commits > 10 ms | commits > 100 ms | commit p99 ≤ | commit max ≤ | closed as slow | overloaded |")
w("|---|---|---|---|---|---|---|---|---|---|")
for name, _ in commands:
    v = server_view(name)
    if not v or name == "fsync-probe":  # the probe does not use the server
        continue
    w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        name, num(v["batches"]), num(v["batch_avg"], "{:.1f}"),
        "–" if v["commit_mean_ms"] is None else "%.2f ms" % v["commit_mean_ms"],
        num(v["over10"]), num(v["over100"]),
        "–" if v["p99_le"] is None else "%g ms" % (v["p99_le"] * 1000),
        "–" if v["max_le"] is None else "%g ms" % (v["max_le"] * 1000),
        num(v["slow_closed"]), num(v["overloaded"])))
w("")

# commands
w("## Exact commands")
w("")
w("The server (fresh data directory, user made first with "
  "`echo bench-password | calderwood user add --data DATA --email bench@bench.test --first Bench --last User`):")
w("")
w("```")
w(read(os.path.join(RAW, "server-command.txt")).strip().replace(ROOT + "/", ""))
w("```")
w("")
w("Each step (exit status, seconds):")
w("")
w("```")
for name, cmd in commands:
    st = status.get(name)
    w("# %s: exit %s, %s s" % (name, st[0] if st else "?", st[1] if st else "?"))
    w(cmd.replace(ROOT + "/", ""))
w("```")
w("")
w("Raw outputs (stdout with the full percentile distributions, stderr, JSON lines, .hgrm files, the "
  "server log and its final /metrics) are in `raw/` next to this report (not committed).")
w("")
with open(os.path.join(OUT, "report.md"), "w") as f:
    f.write("\n".join(R))
print("wrote %s/report.md with %d figures" % (OUT, len(figures)))
