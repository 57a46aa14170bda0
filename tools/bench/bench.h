/*
 * bench.h - what the modes of calderwood-bench share: the options (parsed
 * once in main.c, read-only afterwards), the logged-in sessions, and the
 * entry point of each mode.
 *
 *   rate         rate.c      fixed command rate, open loop, ack/update/delivery latency
 *   find-max     findmax.c   the highest rate meeting a latency bound (runs rate steps)
 *   connections  conns.c     K idle connections: server RSS per connection, one fan-out
 *   query        query.c     keep-alive POST /query, at a rate or flat out
 *   fsync        fsync.c     the disk's own write + fdatasync latency (no server)
 */
#ifndef CW_BENCH_H
#define CW_BENCH_H

#include "net.h"

#include <stdbool.h>
#include <stdio.h>

struct bench_opts {
    const char *mode;
    struct net_target target;
    const char *email, *password, *user_pattern;
    int users;         /* sessions to spread connections over (1 = --email only) */
    bool create_users; /* register the extra users before logging them in */
    int threads;
    int server_pid;
    int source_addrs; /* 0: automatic (1 up to 15,000 connections, then one per 10,000) */
    const char *json_path, *hgrm_prefix;
    const char *unit; /* ms or us, for the printed distributions */
    double unit_scale;
    bool quiet;
    double connect_timeout;
    double quiet_pct;  /* < 0: off; else other processes' CPU (% of a core) that makes a run
                          "disturbed" */
    double quiet_wait; /* wait up to this for the machine to be quiet before a run */
    int retries;       /* repeat a disturbed run this many times at most */

    /* rate, find-max */
    double rate, duration, grace, warmup;
    double tick_us; /* shortest sleep between two sends */
    int connections, receivers;
    const char *command, *data;
    int meta_time; /* -1 auto, 0 never, 1 always: send "meta":{"bt":T} */

    /* find-max */
    double start_rate, step_duration, tolerance, bound_ms, bound_pct, max_rate, pause;
    const char *bound_metric; /* update, ack or delivery */
    int max_steps;

    /* connections */
    int events;
    double settle, timeout;

    /* query */
    const char *query;

    /* fsync */
    const char *fsync_dir;
    size_t fsync_size;         /* bytes written before each fdatasync */
    long long fsync_file_size; /* the preallocated file the writes go round */
};

/* The cookies ("cw_session=...") of the logged-in users, connection i uses
 * cookies[i % n]. */
struct sessions {
    int n;
    char **cookies;
};

/* users.c: logs in (creating the extra users first when asked). 0 or -1. */
int bench_sessions(const struct bench_opts *o, struct sessions *s);
void bench_sessions_free(struct sessions *s);

int bench_rate_main(const struct bench_opts *o);
int bench_findmax_main(const struct bench_opts *o);
int bench_conns_main(const struct bench_opts *o);
int bench_query_main(const struct bench_opts *o);
int bench_wait_quiet_main(const struct bench_opts *o);
int bench_fsync_main(const struct bench_opts *o);

/* The number of source addresses for n connections under o. */
int bench_source_addrs(const struct bench_opts *o, int n);

/* Appends one line to --json FILE when given (and always prints it on stdout). */
void bench_emit_json(const struct bench_opts *o, const char *json);

/* Writes h to PREFIX-<name>.hgrm when --hgrm PREFIX is given. */
struct cw_hist;
void bench_write_hgrm(const struct bench_opts *o, const char *name, const struct cw_hist *h);

#endif
