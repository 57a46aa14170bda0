/*
 * rate.h - one open-loop run at a fixed command rate (the `rate` mode, and
 * each step of `find-max`).
 *
 * C sender connections (+ N receivers that only listen) are spread over T
 * threads. Sender g of C sends its k-th command at the intended time
 * t0 + (g + k*C) / R, so the total rate is R with the connections evenly
 * interleaved. A command that cannot be written at its intended time (the
 * thread was busy, the socket was full) is written as soon as possible, but
 * its latency still counts from the intended time: coordinated omission is
 * corrected. Each command is matched to its cmd-ack and to its own update
 * by (client id, seq): every sender connection has its own client id
 * "b<run nonce>-<index>". When other connections must receive the event too
 * (visit-page with receivers or several senders) the command carries
 * "meta":{"bt":T} with its intended time, so any connection can time a
 * delivery without looking the command up.
 */
#ifndef CW_BENCH_RATE_H
#define CW_BENCH_RATE_H

#include "bench.h"
#include "histogram.h"
#include "report.h"

struct rate_result {
    double rate_asked, duration;
    int connections, receivers, threads, users, source_addrs;
    bool broadcast, with_bt;
    uint64_t sent, acked, updated, rejected, errored, lost, lost_ack, lost_update, late;
    uint64_t deliveries, deliveries_expected, deliveries_lost;
    struct codes errors, rejects, closes;
    struct cw_hist ack, upd, deliv, lag;
    double rate_sent, rate_achieved, deliveries_per_s, wall_s;
    double bench_cpu_pct, bench_thread_cpu_max_pct, bench_cpu_us_per_cmd, bench_polls_per_s;
    double bench_max_stall_us; /* longest a bench thread came back late from a wait */
    double other_cpu_pct;      /* CPU used by other processes of the machine, % of one core */
    int attempts;              /* runs made (more than 1: earlier ones were disturbed) */
    double disturbed[8];       /* other_cpu_pct of the disturbed attempts */
    double server_cpu_pct, server_cpu_us_per_cmd, server_cpu_us_per_delivery; /* < 0: unknown */
};

/* Runs once at `rate` commands/s for `duration` s with the options of o.
 * Returns 0 with *r filled (r is large: allocate it), or -1 when the
 * connections could not be opened. */
int rate_run(const struct bench_opts *o, const struct sessions *s, double rate, double duration,
             struct rate_result *r);

/* rate_run, but first waits (--quiet-wait) for the machine to be quiet and
 * repeats a run that other processes disturbed (--max-other-cpu, --retries). */
int rate_run_calm(const struct bench_opts *o, const struct sessions *s, double rate,
                  double duration, struct rate_result *r);

/* Appends the fields of r (no braces) to b. */
void rate_json_fields(const struct rate_result *r, const char *command, struct bbuf *b);

/* Prints the distributions of r (ack, update, delivery if any) and writes
 * them to --hgrm files named PREFIX-ack.hgrm, ... */
void rate_print_dists(const struct bench_opts *o, const struct rate_result *r);

#endif
