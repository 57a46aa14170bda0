/*
 * main.c - calderwood-bench: argv, defaults, help, and the dispatch to a
 * mode (rate.c, findmax.c, conns.c, query.c, fsync.c). The load generator for a
 * Calderwood server over loopback, speaking ../../shared PROTOCOL.md as any
 * client would: POST /login, GET /ws, POST /query.
 */
#include "bench.h"
#include "proc.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: calderwood-bench MODE [options]\n"
    "\n"
    "Load generator and benchmark for a Calderwood server (loopback only).\n"
    "\n"
    "Modes:\n"
    "  rate          send one command at a fixed total rate for a duration, open loop;\n"
    "                report ack, update and delivery latency (coordinated omission corrected)\n"
    "  find-max      the highest rate meeting a latency bound (default update p99.9 < 100 ms,\n"
    "                zero loss): doubling, then bisection to within 5 %\n"
    "  connections   K idle authenticated WebSockets: server RSS per connection, then one\n"
    "                page-view fanned out to all K (delivery latency)\n"
    "  query         POST /query over keep-alive connections, at a rate or flat out\n"
    "  fsync         this disk's own write + fdatasync latency in a directory (the server's\n"
    "                data directory), one at a time, as the server's commits do\n"
    "  wait-quiet    wait until other processes leave the CPU alone (for scripts on a\n"
    "                shared machine)\n"
    "\n"
    "`calderwood-bench MODE --help` lists the options of a mode. Output: the percentile\n"
    "distributions in HdrHistogram's text format, then one JSON summary line (last line).\n";

static const char COMMON[] =
    "Common options:\n"
    "  --server HOST:PORT       the server, an IPv4 address (default 127.0.0.1:8080)\n"
    "  --email EMAIL            the user to log in as (default bench@bench.test)\n"
    "  --password PASSWORD      its password, also the password of the extra users\n"
    "                           (default bench-password)\n"
    "  --users U                spread connections round-robin over U users: the one above and\n"
    "                           U-1 more named by --user-pattern (default 1)\n"
    "  --user-pattern PATTERN   emails of the extra users, %d = 1..U-1 (default "
    "bench-%d@bench.test)\n"
    "  --no-create-users        do not register the extra users first (they must exist); by\n"
    "                           default they are registered with `register-user` commands over\n"
    "                           a WebSocket of the first user (an existing one is fine)\n"
    "  --threads T              load generator threads, one epoll loop each (default 1)\n"
    "  --server-pid PID         read the server's CPU time (/proc/PID/stat) and RSS\n"
    "                           (/proc/PID/status) before and after\n"
    "  --source-addrs N         bind connections round-robin to 127.0.0.1 .. 127.0.0.N\n"
    "                           (default: 1 up to 15,000 connections, then one per 10,000)\n"
    "  --connect-timeout S      time allowed to open every connection (default 60)\n"
    "  --json FILE              also append the JSON summary line(s) to FILE\n"
    "  --hgrm PREFIX            write each distribution to PREFIX-<name>.hgrm\n"
    "  --unit ms|us             unit of the printed distributions (default ms)\n"
    "  --quiet                  print only the JSON summary\n"
    "  --max-other-cpu PCT      a rate run during which other processes (neither the bench nor\n"
    "                           --server-pid) used more than PCT % of one core is disturbed:\n"
    "                           it is repeated, up to --retries times (default: off)\n"
    "  --quiet-wait S           before each rate run, wait up to S s for the machine to be\n"
    "                           that quiet (needs --max-other-cpu; default 0)\n"
    "  --retries N              repeats of a disturbed run at most (default 2)\n"
    "  --help                   this text\n";

static const char RATE_HELP[] =
    "usage: calderwood-bench rate [options]\n"
    "\n"
    "Opens C sender connections (+ N receivers that only listen), then sends --command at a\n"
    "total of R commands/s for D seconds. Each command has an intended send time; its ack\n"
    "and its own update (matched by client id and seq) are timed from it. With receivers (or\n"
    "several senders) and visit-page, every connection gets every page-view: the delivery\n"
    "latency of all of them is measured too (fan-out). Commands with no ack or no update\n"
    "--grace s after the window are lost.\n"
    "\n"
    "Options:\n"
    "  --rate R                 commands per second, all connections together (default 10000)\n"
    "  --duration D             seconds of sending (default 10)\n"
    "  --connections C          sender connections (default 1)\n"
    "  --receivers N            extra connections that only receive (default 0)\n"
    "  --command NAME           visit-page (default), add-to-cart, remove-from-cart or any other\n"
    "  --data JSON              the command's data (default {\"url\":\"/bench\"} for visit-page,\n"
    "                           {\"sku\":\"bench-sku\",\"quantity\":1} for the cart commands)\n"
    "  --grace S                wait for missing acks and updates after the window (default 5)\n"
    "  --warmup S               leave the first S seconds out of the histograms (default 0)\n"
    "  --tick US                shortest sleep between two sends (default 50): commands due\n"
    "                           within it go out together (latency still counts from each\n"
    "                           one's intended time); 0 wakes for every command\n"
    "  --meta-time auto|always|never\n"
    "                           send \"meta\":{\"bt\":T} (intended time) so that any connection\n"
    "                           can time a delivery; auto: for visit-page with several\n"
    "                           connections\n"
    "\n";

static const char FINDMAX_HELP[] =
    "usage: calderwood-bench find-max [options]\n"
    "\n"
    "Runs `rate` steps: doubling from --start until a step misses the bound, then bisection\n"
    "between the best passing and the lowest failing rate until they are within --tolerance.\n"
    "A step passes when the bound metric's percentile is under the bound and nothing was\n"
    "lost, refused (error, rejected) or closed. Prints one line (and its JSON) per step,\n"
    "then the distributions of the best passing step and the result as JSON.\n"
    "\n"
    "Options (and those of `rate` except --rate and --duration):\n"
    "  --start R                first rate (default 10000)\n"
    "  --step-duration S        seconds per step (default 10)\n"
    "  --pause S                pause between steps (default 1)\n"
    "  --tolerance F            stop when (fail - pass) / pass <= F (default 0.05)\n"
    "  --bound-ms MS            latency bound (default 100)\n"
    "  --bound-percentile P     percentile held to the bound (default 99.9)\n"
    "  --bound-metric M         update (default), ack or delivery\n"
    "  --max-rate R             never ask for more (default 10000000)\n"
    "  --max-steps N            steps at most (default 30)\n"
    "\n";

static const char CONNS_HELP[] =
    "usage: calderwood-bench connections [options]\n"
    "\n"
    "Opens one sender and K idle authenticated WebSockets, reports the server's resident\n"
    "memory per connection ((VmRSS after - before) / K, needs --server-pid), then sends\n"
    "--events page-views one after another and measures each one's delivery to all K\n"
    "(send -> read on each connection).\n"
    "\n"
    "Options:\n"
    "  --connections K          idle connections (default 1000)\n"
    "  --events N               page-views sent, one at a time (default 1)\n"
    "  --settle S               wait before each RSS reading (default 2)\n"
    "  --timeout S              wait at most this for one event to reach all (default 10)\n"
    "\n";

static const char QUIET_HELP[] =
    "usage: calderwood-bench wait-quiet [--max-other-cpu PCT] [--timeout S] [--server-pid PID]\n"
    "\n"
    "Waits until processes other than the server (--server-pid) used less than PCT % of one\n"
    "core (default 25) over half a second, or S seconds (default 15) passed, and prints one\n"
    "JSON line saying which. Exit status 0 either way.\n"
    "\n";

static const char QUERY_HELP[] =
    "usage: calderwood-bench query [options]\n"
    "\n"
    "POST /query over N keep-alive HTTP/1.1 connections, one request in flight on each.\n"
    "With --rate R the requests have intended times (open loop, latency from the intended\n"
    "time); with --rate 0 each connection sends again as soon as it has the answer.\n"
    "\n"
    "Options:\n"
    "  --connections N          HTTP connections (default 1)\n"
    "  --rate R                 queries per second in total, 0 = flat out (default 0)\n"
    "  --duration D             seconds (default 10)\n"
    "  --query NAME             the query (default list-page-views)\n"
    "  --data JSON              its data (default {\"limit\":10})\n"
    "  --grace S                wait for answers after the window (default 5)\n"
    "\n";

static const char FSYNC_HELP[] =
    "usage: calderwood-bench fsync --dir DIR [options]\n"
    "\n"
    "The floor under the server's update latency: what one commit costs this disk. Makes a\n"
    "file in DIR (give the server's data directory: same filesystem, same device), writes it\n"
    "full once and syncs it (the server's WAL is reused, so its blocks are allocated), then\n"
    "writes --size bytes at the next offset and calls fdatasync, one after another, for\n"
    "--duration s. Prints the fdatasync and the write + fdatasync distributions, and the\n"
    "floor that group commit puts under the update latency at --rate on this disk with a\n"
    "server that costs nothing. The file is unlinked at once. Needs no server; the common\n"
    "options other than the output ones are accepted and ignored.\n"
    "\n"
    "Options:\n"
    "  --dir DIR                where to make the file (required)\n"
    "  --duration D             seconds of syncing (default 10)\n"
    "  --warmup S               leave the first S seconds out (default 0)\n"
    "  --size BYTES             written before each fdatasync (default 24648: three WAL frames\n"
    "                           of the server's 8 KiB pages, a commit of a few commands)\n"
    "  --file-size BYTES        the file the writes go round in (default 16777216)\n"
    "  --rate R                 commands/s of the group commit floor model: evenly spaced\n"
    "                           arrivals, each durable at the end of the sync after the one in\n"
    "                           flight when it came (default 10000; 0: no model)\n"
    "\n";

enum {
    O_SERVER = 256,
    O_EMAIL,
    O_PASSWORD,
    O_USERS,
    O_USER_PATTERN,
    O_NO_CREATE,
    O_THREADS,
    O_SERVER_PID,
    O_SOURCE_ADDRS,
    O_CONNECT_TIMEOUT,
    O_JSON,
    O_HGRM,
    O_UNIT,
    O_QUIET,
    O_HELP,
    O_RATE,
    O_DURATION,
    O_CONNECTIONS,
    O_RECEIVERS,
    O_COMMAND,
    O_DATA,
    O_GRACE,
    O_WARMUP,
    O_META_TIME,
    O_TICK,
    O_START,
    O_STEP_DURATION,
    O_PAUSE,
    O_TOLERANCE,
    O_BOUND_MS,
    O_BOUND_PCT,
    O_BOUND_METRIC,
    O_MAX_RATE,
    O_MAX_STEPS,
    O_EVENTS,
    O_SETTLE,
    O_TIMEOUT,
    O_QUERY,
    O_MAX_OTHER,
    O_QUIET_WAIT,
    O_RETRIES,
    O_DIR,
    O_SIZE,
    O_FILE_SIZE
};

static const struct option OPTIONS[] = {
    {"server", required_argument, 0, O_SERVER},
    {"email", required_argument, 0, O_EMAIL},
    {"password", required_argument, 0, O_PASSWORD},
    {"users", required_argument, 0, O_USERS},
    {"user-pattern", required_argument, 0, O_USER_PATTERN},
    {"no-create-users", no_argument, 0, O_NO_CREATE},
    {"threads", required_argument, 0, O_THREADS},
    {"server-pid", required_argument, 0, O_SERVER_PID},
    {"source-addrs", required_argument, 0, O_SOURCE_ADDRS},
    {"connect-timeout", required_argument, 0, O_CONNECT_TIMEOUT},
    {"json", required_argument, 0, O_JSON},
    {"hgrm", required_argument, 0, O_HGRM},
    {"unit", required_argument, 0, O_UNIT},
    {"quiet", no_argument, 0, O_QUIET},
    {"help", no_argument, 0, O_HELP},
    {"rate", required_argument, 0, O_RATE},
    {"duration", required_argument, 0, O_DURATION},
    {"connections", required_argument, 0, O_CONNECTIONS},
    {"receivers", required_argument, 0, O_RECEIVERS},
    {"command", required_argument, 0, O_COMMAND},
    {"data", required_argument, 0, O_DATA},
    {"grace", required_argument, 0, O_GRACE},
    {"warmup", required_argument, 0, O_WARMUP},
    {"meta-time", required_argument, 0, O_META_TIME},
    {"tick", required_argument, 0, O_TICK},
    {"start", required_argument, 0, O_START},
    {"step-duration", required_argument, 0, O_STEP_DURATION},
    {"pause", required_argument, 0, O_PAUSE},
    {"tolerance", required_argument, 0, O_TOLERANCE},
    {"bound-ms", required_argument, 0, O_BOUND_MS},
    {"bound-percentile", required_argument, 0, O_BOUND_PCT},
    {"bound-metric", required_argument, 0, O_BOUND_METRIC},
    {"max-rate", required_argument, 0, O_MAX_RATE},
    {"max-steps", required_argument, 0, O_MAX_STEPS},
    {"events", required_argument, 0, O_EVENTS},
    {"settle", required_argument, 0, O_SETTLE},
    {"timeout", required_argument, 0, O_TIMEOUT},
    {"query", required_argument, 0, O_QUERY},
    {"max-other-cpu", required_argument, 0, O_MAX_OTHER},
    {"quiet-wait", required_argument, 0, O_QUIET_WAIT},
    {"retries", required_argument, 0, O_RETRIES},
    {"dir", required_argument, 0, O_DIR},
    {"size", required_argument, 0, O_SIZE},
    {"file-size", required_argument, 0, O_FILE_SIZE},
    {0, 0, 0, 0},
};

static bool number(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "calderwood-bench: --%s must be a number in [%g, %g], not '%s'\n", name, lo,
                hi, s);
        return false;
    }
    *out = v;
    return true;
}

static bool integer(const char *name, const char *s, long lo, long hi, int *out)
{
    double v;
    if (!number(name, s, (double)lo, (double)hi, &v))
        return false;
    if (v != floor(v)) {
        fprintf(stderr, "calderwood-bench: --%s must be an integer, not '%s'\n", name, s);
        return false;
    }
    *out = (int)v;
    return true;
}

static void help(const char *mode)
{
    if (!mode) {
        fputs(USAGE, stdout);
        fputs("\n", stdout);
        fputs(COMMON, stdout);
        return;
    }
    if (!strcmp(mode, "rate"))
        fputs(RATE_HELP, stdout);
    else if (!strcmp(mode, "find-max"))
        fputs(FINDMAX_HELP, stdout);
    else if (!strcmp(mode, "connections"))
        fputs(CONNS_HELP, stdout);
    else if (!strcmp(mode, "query"))
        fputs(QUERY_HELP, stdout);
    else if (!strcmp(mode, "fsync"))
        fputs(FSYNC_HELP, stdout);
    else if (!strcmp(mode, "wait-quiet")) {
        fputs(QUIET_HELP, stdout);
        return;
    }
    fputs(COMMON, stdout);
}

int bench_wait_quiet_main(const struct bench_opts *o)
{
    double waited, other = wait_quiet(o->server_pid, o->quiet_pct, o->timeout, &waited);
    char json[256];
    snprintf(json, sizeof(json),
             "{\"mode\":\"wait-quiet\",\"quiet\":%s,\"waited_s\":%.1f,\"other_cpu_pct\":%.1f,"
             "\"max_other_cpu_pct\":%.0f}",
             other >= 0 && other < o->quiet_pct ? "true" : "false", waited, other, o->quiet_pct);
    bench_emit_json(o, json);
    return 0;
}

int bench_source_addrs(const struct bench_opts *o, int n)
{
    if (o->source_addrs > 0)
        return o->source_addrs;
    return n <= 15000 ? 1 : (n + 9999) / 10000;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        help(argc > 2 ? argv[2] : NULL);
        return argc < 2 ? 2 : 0;
    }
    struct bench_opts o = {
        .mode = argv[1],
        .email = "bench@bench.test",
        .password = "bench-password",
        .user_pattern = "bench-%d@bench.test",
        .users = 1,
        .create_users = true,
        .threads = 1,
        .unit = "ms",
        .unit_scale = 1e6,
        .connect_timeout = 60,
        .rate = -1,
        .duration = 10,
        .grace = 5,
        .tick_us = 50,
        .connections = -1,
        .command = "visit-page",
        .meta_time = -1,
        .start_rate = 10000,
        .step_duration = 10,
        .tolerance = 0.05,
        .bound_ms = 100,
        .bound_pct = 99.9,
        .bound_metric = "update",
        .max_rate = 1e7,
        .max_steps = 30,
        .pause = 1,
        .events = 1,
        .settle = 2,
        .timeout = 10,
        .query = "list-page-views",
        .quiet_pct = -1,
        .retries = 2,
        .fsync_size = 3 * (8192 + 24),
        .fsync_file_size = 16 << 20,
    };
    const char *mode = o.mode;
    if (strcmp(mode, "rate") && strcmp(mode, "find-max") && strcmp(mode, "connections") &&
        strcmp(mode, "query") && strcmp(mode, "wait-quiet") && strcmp(mode, "fsync")) {
        fprintf(stderr, "calderwood-bench: unknown mode '%s'\n\n", mode);
        fputs(USAGE, stderr);
        return 2;
    }
    const char *server = "127.0.0.1:8080";
    optind = 2;
    int c;
    bool ok = true, timeout_set = false;
    while (ok && (c = getopt_long(argc, argv, "", OPTIONS, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *op = OPTIONS; op->name; op++)
            if (op->val == c)
                name = op->name;
        switch (c) {
        case O_SERVER:
            server = optarg;
            break;
        case O_EMAIL:
            o.email = optarg;
            break;
        case O_PASSWORD:
            o.password = optarg;
            break;
        case O_USERS:
            ok = integer(name, optarg, 1, 100000, &o.users);
            break;
        case O_USER_PATTERN:
            o.user_pattern = optarg;
            break;
        case O_NO_CREATE:
            o.create_users = false;
            break;
        case O_THREADS:
            ok = integer(name, optarg, 1, 256, &o.threads);
            break;
        case O_SERVER_PID:
            ok = integer(name, optarg, 1, 1 << 30, &o.server_pid);
            break;
        case O_SOURCE_ADDRS:
            ok = integer(name, optarg, 1, 254, &o.source_addrs);
            break;
        case O_CONNECT_TIMEOUT:
            ok = number(name, optarg, 0.1, 3600, &o.connect_timeout);
            break;
        case O_JSON:
            o.json_path = optarg;
            break;
        case O_HGRM:
            o.hgrm_prefix = optarg;
            break;
        case O_UNIT:
            if (!strcmp(optarg, "ms") || !strcmp(optarg, "us")) {
                o.unit = optarg;
                o.unit_scale = !strcmp(optarg, "ms") ? 1e6 : 1e3;
            } else {
                fprintf(stderr, "calderwood-bench: --unit is ms or us\n");
                ok = false;
            }
            break;
        case O_QUIET:
            o.quiet = true;
            break;
        case O_HELP:
            help(mode);
            return 0;
        case O_RATE:
            ok = number(name, optarg, 0, 1e8, &o.rate);
            break;
        case O_DURATION:
            ok = number(name, optarg, 0.1, 86400, &o.duration);
            break;
        case O_CONNECTIONS:
            ok = integer(name, optarg, 1, 1000000, &o.connections);
            break;
        case O_RECEIVERS:
            ok = integer(name, optarg, 0, 1000000, &o.receivers);
            break;
        case O_COMMAND:
            o.command = optarg;
            break;
        case O_DATA:
            o.data = optarg;
            break;
        case O_GRACE:
            ok = number(name, optarg, 0, 3600, &o.grace);
            break;
        case O_WARMUP:
            ok = number(name, optarg, 0, 3600, &o.warmup);
            break;
        case O_META_TIME:
            o.meta_time = !strcmp(optarg, "always") ? 1 : !strcmp(optarg, "never") ? 0 : -1;
            if (o.meta_time < 0 && strcmp(optarg, "auto")) {
                fprintf(stderr, "calderwood-bench: --meta-time is auto, always or never\n");
                ok = false;
            }
            break;
        case O_TICK:
            ok = number(name, optarg, 0, 100000, &o.tick_us);
            break;
        case O_START:
            ok = number(name, optarg, 1, 1e8, &o.start_rate);
            break;
        case O_STEP_DURATION:
            ok = number(name, optarg, 0.5, 3600, &o.step_duration);
            break;
        case O_PAUSE:
            ok = number(name, optarg, 0, 3600, &o.pause);
            break;
        case O_TOLERANCE:
            ok = number(name, optarg, 0.001, 1, &o.tolerance);
            break;
        case O_BOUND_MS:
            ok = number(name, optarg, 0.001, 3.6e6, &o.bound_ms);
            break;
        case O_BOUND_PCT:
            ok = number(name, optarg, 0, 100, &o.bound_pct);
            break;
        case O_BOUND_METRIC:
            o.bound_metric = optarg;
            if (strcmp(optarg, "update") && strcmp(optarg, "ack") && strcmp(optarg, "delivery")) {
                fprintf(stderr, "calderwood-bench: --bound-metric is update, ack or delivery\n");
                ok = false;
            }
            break;
        case O_MAX_RATE:
            ok = number(name, optarg, 1, 1e8, &o.max_rate);
            break;
        case O_MAX_STEPS:
            ok = integer(name, optarg, 1, 1000, &o.max_steps);
            break;
        case O_EVENTS:
            ok = integer(name, optarg, 1, 100, &o.events);
            break;
        case O_SETTLE:
            ok = number(name, optarg, 0, 600, &o.settle);
            break;
        case O_TIMEOUT:
            ok = number(name, optarg, 0.1, 3600, &o.timeout);
            timeout_set = true;
            break;
        case O_QUERY:
            o.query = optarg;
            break;
        case O_MAX_OTHER:
            ok = number(name, optarg, 0, 10000, &o.quiet_pct);
            break;
        case O_QUIET_WAIT:
            ok = number(name, optarg, 0, 3600, &o.quiet_wait);
            break;
        case O_RETRIES:
            ok = integer(name, optarg, 0, 8, &o.retries);
            break;
        case O_DIR:
            o.fsync_dir = optarg;
            break;
        case O_SIZE: {
            double v;
            ok = number(name, optarg, 1, 64 << 20, &v);
            o.fsync_size = (size_t)v;
            break;
        }
        case O_FILE_SIZE: {
            double v;
            ok = number(name, optarg, 1, 1e12, &v);
            o.fsync_file_size = (long long)v;
            break;
        }
        default:
            ok = false;
            break;
        }
    }
    if (!ok || optind < argc) {
        if (ok)
            fprintf(stderr, "calderwood-bench: unexpected argument '%s'\n", argv[optind]);
        fprintf(stderr, "run `calderwood-bench %s --help` for the options\n", mode);
        return 2;
    }
    if (net_parse_target(server, &o.target))
        return 2;
    if (!strstr(o.user_pattern, "%d") || strchr(strstr(o.user_pattern, "%d") + 2, '%')) {
        fprintf(stderr, "calderwood-bench: --user-pattern needs exactly one %%d\n");
        return 2;
    }
    if (!o.data) {
        if (!strcmp(mode, "query"))
            o.data = "{\"limit\":10}";
        else if (!strcmp(o.command, "visit-page"))
            o.data = "{\"url\":\"/bench\"}";
        else if (!strcmp(o.command, "add-to-cart") || !strcmp(o.command, "remove-from-cart"))
            o.data = "{\"sku\":\"bench-sku\",\"quantity\":1}";
        else {
            fprintf(stderr, "calderwood-bench: --data is needed for command '%s'\n", o.command);
            return 2;
        }
    }
    if (o.connections < 0)
        o.connections = !strcmp(mode, "connections") ? 1000 : 1;
    if (o.rate < 0)
        o.rate = !strcmp(mode, "query") ? 0 : 10000;
    if (o.rate == 0 && !strcmp(mode, "rate")) {
        fprintf(stderr, "calderwood-bench: rate needs --rate > 0\n");
        return 2;
    }
    long nofile = net_raise_nofile();
    long need = (long)o.connections + o.receivers + 64;
    if (nofile > 0 && need > nofile) {
        fprintf(stderr,
                "calderwood-bench: %ld connections need more descriptors than the limit (%ld)\n",
                need - 64, nofile);
        return 2;
    }
    if (!strcmp(mode, "wait-quiet")) {
        if (o.quiet_pct < 0)
            o.quiet_pct = 25;
        if (!timeout_set)
            o.timeout = 15;
        return bench_wait_quiet_main(&o);
    }
    if (!strcmp(mode, "fsync")) {
        if (o.fsync_file_size < (long long)o.fsync_size) {
            fprintf(stderr, "calderwood-bench: --file-size must be at least --size\n");
            return 2;
        }
        return bench_fsync_main(&o);
    }
    if (!strcmp(mode, "rate"))
        return bench_rate_main(&o);
    if (!strcmp(mode, "find-max"))
        return bench_findmax_main(&o);
    if (!strcmp(mode, "connections"))
        return bench_conns_main(&o);
    return bench_query_main(&o);
}
