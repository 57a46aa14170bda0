/*
 * metrics.h - counters for /metrics (Prometheus text exposition format).
 *
 * Plain atomics, so the gateway threads, the processor thread and the
 * workers all count without locks; relaxed ordering is enough for figures
 * that are only ever read as a snapshot.
 *
 * What a gateway thread counts per delivery or per write (the fan-out's hot
 * path) is in a struct cw_thread_metrics of its own instead: one writer, so
 * a plain load and store rather than a locked add on a cache line every
 * thread fights over. /metrics shows their sums under the usual names and
 * each thread's figures with a thread label.
 */
#ifndef CW_METRICS_H
#define CW_METRICS_H

#include "buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CW_COMMIT_BUCKETS 12

struct cw_metrics {
    atomic_ullong connections, connections_total, connections_closed_slow;
    atomic_ullong http_requests, http_errors;
    atomic_ullong messages_in, bytes_in;
    atomic_ullong cmd_acked, cmd_duplicate, cmd_error, cmd_overloaded;
    atomic_ullong cmd_processed, cmd_rejected, cmd_prepared;
    atomic_ullong logins_ok, logins_failed, logins_limited, queries, query_errors;
    atomic_ullong batches, batch_commands;
    atomic_ullong commit_bucket[CW_COMMIT_BUCKETS + 1]; /* last: +Inf */
    atomic_ullong commit_us_sum;
};

/*
 * Counters of one gateway thread: only it writes them (cw_count_own), any
 * thread reads; except batches_skipped, which the bus's publisher counts
 * (cw_count), since the thread is not woken for those.
 */
struct cw_thread_metrics {
    _Alignas(64) atomic_ullong updates_sent; /* update frames queued */
    atomic_ullong frames_out, bytes_out;     /* written to sockets */
    atomic_ullong batches_routed;            /* bus batches this thread routed */
    atomic_ullong batches_skipped;           /* bus batches that did not concern it */
    atomic_ullong writes;                    /* writev (or TLS write) calls */
};

/* Counts n on a counter only the calling thread writes: no locked instruction. */
#define cw_count_own(field, n)                                                                     \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n),    \
                          memory_order_relaxed)

/* Counts one: relaxed, for figures read as snapshots. */
#define cw_count(field)      atomic_fetch_add_explicit(&(field), 1, memory_order_relaxed)
#define cw_count_n(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)

/* A struct cw_processor_config observer: arg is the struct cw_metrics. */
void cw_metrics_observe_commit(void *arg, size_t batch_size, int64_t commit_us);

/* The store's health as the processor sees it, sampled by the caller. */
struct cw_store_health {
    const char *condition; /* "ok", "stalled", "disk-full", "failing" */
    unsigned long long retries;
};

/*
 * Appends the store's gauges: calderwood_store_condition{condition=...} is 1
 * for the current condition and 0 for the others, and the counter of
 * retried write attempts.
 */
void cw_metrics_render_store(const struct cw_store_health *h, struct cw_buf *out);

/*
 * Appends every metric in the text exposition format: m's, and the n_threads
 * gateway threads' counters summed and per thread (threads may be NULL when
 * n_threads is 0). queue_depth is sampled by the caller.
 */
void cw_metrics_render(struct cw_metrics *m, struct cw_thread_metrics *const *threads,
                       size_t n_threads, size_t queue_depth, size_t queue_capacity,
                       struct cw_buf *out);

#endif
