#!/usr/bin/env python3
"""scaling.py - how the server's throughput and fan-out grow with the cores it gets.

A 2-core machine cannot give the server more cores than it has, so this gives it
less: each run puts `calderwood serve` in a CPU cgroup whose CFS quota is a
fraction of the machine (0.5, 1, 1.5 cores by default), with the load generator
outside it, and drives it past what it can take (open loop, a rate it cannot
reach: the achieved rate is its throughput). While commands flow it samples
every server thread's CPU time (/proc/PID/task/TID/schedstat, ns) and the
committed count (/metrics), so each run also says what one command costs each
thread, and how busy the single processor thread was: the ceiling on a larger
machine is where that thread reaches one core.

Usage: tools/bench/scaling.py [--quotas 0.5,1,1.5] [--threads 1,2] [--rounds N]
                              [--cases 1conn,50users,fanout] [--duration S]
Needs root (a cgroup v1 `cpu` hierarchy or cgroup v2 with the cpu controller).
Prints one line per run, then a table of medians in Markdown; raw JSON in OUT
(default /tmp/cw-scaling).
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
SERVER = os.path.join(BUILD, "calderwood")
BENCH = os.path.join(BUILD, "calderwood-bench")
PERIOD_US = 10000  # a short CFS period: a throttled server waits at most this long

CASES = {
    # name: (calderwood-bench rate arguments, the bench's figure that is the throughput;
    # None: commands committed per second while sampled)
    "1conn": (["--command", "visit-page", "--rate", "250000"], None),
    "50users": (["--command", "add-to-cart", "--users", "50", "--connections", "50",
                 "--rate", "150000"], None),
    "fanout": (["--command", "visit-page", "--connections", "1", "--receivers", "49",
                "--rate", "80000"], "deliveries_per_s"),
}


def usable(base, v2):
    """A v1 cpu hierarchy, or a v2 root that hands the cpu controller to its children."""
    if not v2:
        return os.path.exists(os.path.join(base, "cpu.cfs_quota_us"))
    control = os.path.join(base, "cgroup.subtree_control")
    return os.path.exists(control) and "cpu" in open(control).read().split()


class Cgroup:
    """One CPU cgroup with a quota, v1 or v2, removed on close."""

    def __init__(self, name):
        for base, v2 in (("/sys/fs/cgroup/cpu", False), ("/sys/fs/cgroup", True)):
            if usable(base, v2):
                self.path, self.v2 = os.path.join(base, name), v2
                os.makedirs(self.path, exist_ok=True)
                return
        sys.exit("scaling.py: no writable CPU cgroup (needs root and a cpu controller)")

    def set_cores(self, cores):
        quota = int(cores * PERIOD_US)
        if self.v2:
            self._write("cpu.max", "%d %d" % (quota, PERIOD_US))
        else:
            self._write("cpu.cfs_period_us", str(PERIOD_US))
            self._write("cpu.cfs_quota_us", str(quota))

    def add(self, pid):
        self._write("cgroup.procs", str(pid))

    def throttled(self):
        stat = dict(line.split() for line in open(os.path.join(self.path, "cpu.stat")))
        return int(stat.get("nr_throttled", 0))

    def close(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass

    def _write(self, f, value):
        with open(os.path.join(self.path, f), "w") as out:
            out.write(value)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics(port):
    """Commands committed, and seconds the processor spent from BEGIN to durable COMMIT."""
    # A server far past its capacity may take seconds to answer /metrics.
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        text = r.read()
    n = re.search(rb'^calderwood_commands_total\{outcome="processed"\} (\d+)', text, re.M)
    s = re.search(rb'^calderwood_commit_seconds_sum ([0-9.]+)', text, re.M)
    return int(n.group(1)) if n else 0, float(s.group(1)) if s else 0.0


def thread_cpu(pid):
    """ns on CPU of every thread, by role: gateway (the main thread is gateway 0),
    processor, workers (queries, password hashes) and other; and "processor-wait",
    the ns the processor thread was runnable but waiting for a core."""
    roles = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            comm = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            sched = open("/proc/%d/task/%s/schedstat" % (pid, tid)).read().split()
        except OSError:
            continue
        ns = int(sched[0])
        if tid == str(pid) or comm.startswith("cw-gateway"):
            role = "gateway"
        elif comm == "cw-processor":
            role = "processor"
            roles["processor-wait"] = int(sched[1])
        elif comm == "cw-worker":
            role = "workers"
        else:
            role = "other"
        roles[role] = roles.get(role, 0) + ns
    return roles


def wait_health(port, proc):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit("scaling.py: the server exited (%s)" % proc.returncode)
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("scaling.py: the server did not answer /health within 30 s")


def sample(port, pid, bench, window):
    """Once commands flow and a second has passed: CPU by thread role and commits over window s."""
    base = metrics(port)[0]
    deadline = time.time() + 60
    while metrics(port)[0] < base + 1000:
        if bench.poll() is not None or time.time() > deadline:
            return None
        time.sleep(0.05)
    time.sleep(1)
    (c0, s0), t0, w0 = metrics(port), thread_cpu(pid), time.monotonic()
    time.sleep(window)
    (c1, s1), t1, w1 = metrics(port), thread_cpu(pid), time.monotonic()
    n = max(c1 - c0, 1)
    wall = w1 - w0
    return {
        "committed_per_s": n / wall,
        "us_per_cmd": {r: (t1.get(r, 0) - t0.get(r, 0)) / 1000 / n for r in t1},
        "cores": {r: (t1.get(r, 0) - t0.get(r, 0)) / 1e9 / wall for r in t1},
        "in_commit": (s1 - s0) / wall,  # share of the wall clock inside a commit
    }


def run(args, cg, cores, threads, case, out):
    bench_args, figure = CASES[case]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cw-scaling-") as data:
        subprocess.run([SERVER, "user", "add", "--data", data, "--email", "bench@bench.test",
                        "--first", "Bench", "--last", "Bench"], input=b"bench-password\n",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        log = open(os.path.join(out, "server-%s-%s-%s.log" % (cores, threads, case)), "w")
        server = subprocess.Popen([SERVER, "serve", "--data", data, "--listen",
                                   "127.0.0.1:%d" % port, "--no-demo-user", "--login-rate",
                                   "100000", "--login-burst", "100000", "--gateway-threads",
                                   str(threads)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            cg.set_cores(cores)
            cg.add(server.pid)  # with every thread, and the ones it starts later
            wait_health(port, server)
            throttled0 = cg.throttled()
            bench = subprocess.Popen([BENCH, "rate"] + bench_args +
                                     ["--duration", str(args.duration), "--warmup", "1",
                                      "--server", "127.0.0.1:%d" % port, "--server-pid",
                                      str(server.pid), "--quiet"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            threads_cpu = sample(port, server.pid, bench, args.window)
            stdout, stderr = bench.communicate(timeout=args.duration + 300)
            lines = stdout.decode().strip().splitlines()
            if bench.returncode != 0 or not lines:
                print("# %s cores=%s threads=%s: the bench failed: %s" %
                      (case, cores, threads, stderr.decode().strip()[-300:]), flush=True)
                return None
            summary = json.loads(lines[-1])
            committed_per_s = (threads_cpu or {}).get("committed_per_s", 0)
            summary.update(cores=cores, gateway_threads=threads, case=case,
                           throughput=summary.get(figure, 0) if figure else committed_per_s,
                           committed_per_s=committed_per_s, threads_cpu=threads_cpu,
                           throttled=cg.throttled() - throttled0)
            with open(os.path.join(out, "runs.jsonl"), "a") as f:
                f.write(json.dumps(summary) + "\n")
            return summary
        finally:
            server.terminate()
            server.wait(timeout=60)
            log.close()


def describe(s):
    t = s["threads_cpu"] or {"us_per_cmd": {}, "cores": {}}
    u, c = t["us_per_cmd"], t["cores"]
    return ("cores=%-4s threads=%s case=%-8s throughput=%9.0f/s committed=%7.0f/s "
            "update_p99=%8.1fms lost=%-7d "
            "server=%.2f cores bench=%.2f cores | us/cmd gateway %.2f processor %.2f other %.2f | "
            "processor thread: on a core %.0f%%, waiting for one %.0f%%, in commits %.0f%%; "
            "gateway threads %.2f cores" % (
                s["cores"], s["gateway_threads"], s["case"], s["throughput"], s["committed_per_s"],
                s.get("update_us", {}).get("p99", 0) / 1000, s.get("lost", -1),
                s.get("server_cpu_pct", 0) / 100, s.get("bench_cpu_pct", 0) / 100,
                u.get("gateway", 0), u.get("processor", 0),
                u.get("workers", 0) + u.get("other", 0),
                100 * c.get("processor", 0), 100 * c.get("processor-wait", 0),
                100 * t.get("in_commit", 0), c.get("gateway", 0)))


def table(runs):
    print("\n| case | server cores | gateway threads | throughput (median) | µs/cmd gateway | "
          "µs/cmd processor | processor thread: on a core / waiting for one / in commits | runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted({(r["case"], r["cores"], r["gateway_threads"]) for r in runs},
                  key=lambda k: (list(CASES).index(k[0]), k[1], k[2]))
    for case, cores, threads in keys:
        rs = [r for r in runs if (r["case"], r["cores"], r["gateway_threads"]) ==
              (case, cores, threads)]
        med = lambda f: statistics.median(f(r) for r in rs)
        tc = lambda r, k, role: ((r["threads_cpu"] or {}).get(k, {})).get(role, 0)
        print("| %s | %s | %d | %s/s | %.2f | %.2f | %.0f / %.0f / %.0f %% | %d |" % (
            case, cores, threads, format(round(med(lambda r: r["throughput"])), ","),
            med(lambda r: tc(r, "us_per_cmd", "gateway")),
            med(lambda r: tc(r, "us_per_cmd", "processor")),
            100 * med(lambda r: tc(r, "cores", "processor")),
            100 * med(lambda r: tc(r, "cores", "processor-wait")),
            100 * med(lambda r: (r["threads_cpu"] or {}).get("in_commit", 0)), len(rs)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quotas", default="0.5,1,1.5")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--cases", default="1conn,50users,fanout")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=int, default=9)
    p.add_argument("--window", type=float, default=4)
    args = p.parse_args()
    out = os.environ.get("OUT", "/tmp/cw-scaling")
    os.makedirs(out, exist_ok=True)
    cg = Cgroup("calderwood-scaling-%d" % os.getpid())
    runs = []
    print("# load before: %s" % open("/proc/loadavg").read().strip(), flush=True)
    try:
        for _ in range(args.rounds):
            for case in args.cases.split(","):
                for cores in [float(q) for q in args.quotas.split(",")]:
                    for threads in [int(t) for t in args.threads.split(",")]:
                        s = run(args, cg, cores, threads, case, out)
                        if s:
                            runs.append(s)
                            print(describe(s), flush=True)
    finally:
        cg.close()
    print("# load after: %s" % open("/proc/loadavg").read().strip())
    table(runs)


if __name__ == "__main__":
    main()
