/*
 * metrics.h - counters for /metrics (Prometheus text exposition format).
 *
 * Plain atomics, so the gateway thread, the processor thread and the
 * workers all count without locks; relaxed ordering is enough for figures
 * that are only ever read as a snapshot.
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
    atomic_ullong messages_in, bytes_in, bytes_out, frames_out, updates_sent;
    atomic_ullong cmd_acked, cmd_duplicate, cmd_error, cmd_overloaded;
    atomic_ullong cmd_processed, cmd_rejected;
    atomic_ullong logins_ok, logins_failed, logins_limited, queries, query_errors;
    atomic_ullong batches, batch_commands;
    atomic_ullong commit_bucket[CW_COMMIT_BUCKETS + 1]; /* last: +Inf */
    atomic_ullong commit_us_sum;
};

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

/* Appends every metric in the text exposition format. queue_depth is sampled by the caller. */
void cw_metrics_render(struct cw_metrics *m, size_t queue_depth, size_t queue_capacity,
                       struct cw_buf *out);

#endif
