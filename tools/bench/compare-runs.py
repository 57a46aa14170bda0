#!/usr/bin/env python3
"""compare-runs.py - the headline figures of several `make bench` runs side by side.

Reads DIR/figures.json of each run directory given (written by make-report.py)
and prints a Markdown table, one column per run, with each column's ratio to the
first. `make bench-threads` uses it for --gateway-threads 1 against 2.

    tools/bench/compare-runs.py bench/results/DATE-threads-1 bench/results/DATE-threads-2
"""
import json
import os
import sys

# (key, label, format)
ROWS = [
    ("findmax_1conn_per_s", "find-max, 1 connection, visit-page (commands/s)", "{:,.0f}"),
    ("findmax_1conn_cpu_us", "  server CPU per command at its best step (µs)", "{:.1f}"),
    ("findmax_50users_per_s", "find-max, 50 users, add-to-cart (commands/s)", "{:,.0f}"),
    ("findmax_50users_cpu_us", "  server CPU per command at its best step (µs)", "{:.1f}"),
    ("rate10000_update_p50_ms", "10,000/s: update p50 (ms)", "{:.2f}"),
    ("rate10000_update_p99_ms", "10,000/s: update p99 (ms)", "{:.2f}"),
    ("rate10000_update_p999_ms", "10,000/s: update p99.9 (ms)", "{:.2f}"),
    ("rate10000_cpu_us", "10,000/s: server CPU per command (µs)", "{:.1f}"),
    ("fsync_p99_ms", "the disk's fdatasync p99 in the same run (ms)", "{:.2f}"),
    ("fanout_deliveries_per_s", "fan-out, 50 connections (deliveries/s)", "{:,.0f}"),
    ("fanout_cpu_us_per_delivery", "  server CPU per delivery (µs)", "{:.2f}"),
    ("idle15000_delivery_p99_ms", "one event to 15,000 idle connections: p99 (ms)", "{:.0f}"),
    ("idle15000_rss_kib", "15,000 idle connections: RSS each (KiB)", "{:.2f}"),
    ("queries_per_s", "POST /query, list-page-views (queries/s)", "{:,.0f}"),
]


def load(d):
    path = os.path.join(d, "figures.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("compare-runs.py: %s: %s" % (path, e))


def cell(v, fmt, base):
    """v formatted, with its ratio to base (None for the first column)."""
    if v is None or v < 0:
        return "–"
    text = fmt.format(v)
    if base is not None and base > 0:
        text += " (×%.2f)" % (v / base)
    return text


def main(dirs):
    if not dirs:
        sys.exit(__doc__.strip())
    runs = [load(d) for d in dirs]
    print("| | " + " | ".join("`%s`" % os.path.basename(os.path.normpath(d)) for d in dirs) + " |")
    print("|---|" + "---:|" * len(dirs))
    for key, label, fmt in ROWS:
        base = runs[0].get(key)
        cells = [cell(base, fmt, None)] + [cell(r.get(key), fmt, base) for r in runs[1:]]
        print("| %s | %s |" % (label, " | ".join(cells)))
    print("")
    for d, r in zip(dirs, runs):
        print("- `%s`: `%s`" % (os.path.basename(os.path.normpath(d)), r.get("server", "?")))


if __name__ == "__main__":
    main(sys.argv[1:])
