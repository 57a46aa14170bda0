/*
 * metrics.c - counters and their Prometheus text form (see metrics.h).
 */
#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Upper bounds of the commit latency buckets, in microseconds. */
static const int64_t commit_le_us[CW_COMMIT_BUCKETS] = {
    250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

void cw_metrics_observe_commit(void *arg, size_t batch_size, int64_t commit_us)
{
    struct cw_metrics *m = arg;
    cw_count(m->batches);
    cw_count_n(m->batch_commands, batch_size);
    cw_count_n(m->commit_us_sum, (unsigned long long)commit_us);
    int i = 0;
    while (i < CW_COMMIT_BUCKETS && commit_us > commit_le_us[i])
        i++;
    cw_count(m->commit_bucket[i]);
}

static unsigned long long get(atomic_ullong *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void metric(struct cw_buf *out, const char *name, const char *type, const char *help,
                   const char *labels, unsigned long long value)
{
    char line[512];
    if (type) {
        snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
        cw_buf_adds(out, line);
    }
    snprintf(line, sizeof(line), "%s%s %llu\n", name, labels ? labels : "", value);
    cw_buf_adds(out, line);
}

void cw_metrics_render_store(const struct cw_store_health *h, struct cw_buf *out)
{
    static const char *const conditions[] = {"ok", "stalled", "disk-full", "failing"};
    for (size_t i = 0; i < sizeof(conditions) / sizeof(conditions[0]); i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "{condition=\"%s\"}", conditions[i]);
        metric(out, "calderwood_store_condition", i ? NULL : "gauge",
               "1 for the store's current condition as the processor sees it, 0 for the others.",
               labels, strcmp(h->condition, conditions[i]) == 0);
    }
    metric(out, "calderwood_store_retries_total", "counter",
           "Write transactions retried after a transient store error (disk full, I/O, busy).", NULL,
           h->retries);
}

/* One counter of every thread, summed. */
static unsigned long long sum(struct cw_thread_metrics *const *t, size_t n, size_t offset)
{
    unsigned long long s = 0;
    for (size_t i = 0; i < n; i++)
        s += get((atomic_ullong *)((char *)t[i] + offset));
    return s;
}

#define SUM(field) sum(threads, n_threads, offsetof(struct cw_thread_metrics, field))

/* Each thread's value of one counter, labelled thread="I". */
static void per_thread(struct cw_buf *out, const char *name, const char *help,
                       struct cw_thread_metrics *const *t, size_t n, size_t offset)
{
    for (size_t i = 0; i < n; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "{thread=\"%zu\"}", i);
        metric(out, name, i ? NULL : "counter", help, labels,
               get((atomic_ullong *)((char *)t[i] + offset)));
    }
}

#define PER_THREAD(name, help, field)                                                              \
    per_thread(out, name, help, threads, n_threads, offsetof(struct cw_thread_metrics, field))

static void render_threads(struct cw_thread_metrics *const *threads, size_t n_threads,
                           struct cw_buf *out)
{
    PER_THREAD("calderwood_gateway_thread_batches_total",
               "Committed batches a gateway thread routed to its connections.", batches_routed);
    PER_THREAD("calderwood_gateway_thread_batches_skipped_total",
               "Committed batches that concerned none of a gateway thread's connections: it was "
               "not woken for them.",
               batches_skipped);
    PER_THREAD("calderwood_gateway_thread_updates_sent_total",
               "Update frames a gateway thread queued for its connections.", updates_sent);
    PER_THREAD("calderwood_gateway_thread_writes_total",
               "Socket writes (one writev per connection per turn) of a gateway thread.", writes);
    PER_THREAD("calderwood_gateway_thread_sent_bytes_total",
               "WebSocket bytes a gateway thread wrote.", bytes_out);
}

void cw_metrics_render(struct cw_metrics *m, struct cw_thread_metrics *const *threads,
                       size_t n_threads, size_t queue_depth, size_t queue_capacity,
                       struct cw_buf *out)
{
    metric(out, "calderwood_connections", "gauge", "Open WebSocket connections.", NULL,
           get(&m->connections));
    metric(out, "calderwood_connections_total", "counter", "WebSocket connections accepted.", NULL,
           get(&m->connections_total));
    metric(out, "calderwood_connections_closed_slow_total", "counter",
           "Connections closed because their unsent output passed the bound.", NULL,
           get(&m->connections_closed_slow));
    metric(out, "calderwood_http_requests_total", "counter", "HTTP requests.", NULL,
           get(&m->http_requests));
    metric(out, "calderwood_http_errors_total", "counter", "HTTP responses with status >= 400.",
           NULL, get(&m->http_errors));
    metric(out, "calderwood_commands_total", "counter", "Commands by outcome.",
           "{outcome=\"acked\"}", get(&m->cmd_acked));
    metric(out, "calderwood_commands_total", NULL, NULL, "{outcome=\"duplicate\"}",
           get(&m->cmd_duplicate));
    metric(out, "calderwood_commands_total", NULL, NULL, "{outcome=\"error\"}", get(&m->cmd_error));
    metric(out, "calderwood_commands_total", NULL, NULL, "{outcome=\"overloaded\"}",
           get(&m->cmd_overloaded));
    metric(out, "calderwood_commands_total", NULL, NULL, "{outcome=\"processed\"}",
           get(&m->cmd_processed));
    metric(out, "calderwood_commands_total", NULL, NULL, "{outcome=\"rejected\"}",
           get(&m->cmd_rejected));
    metric(out, "calderwood_commands_prepared_total", "counter",
           "Commands prepared on a worker (register-user's password hash).", NULL,
           get(&m->cmd_prepared));
    metric(out, "calderwood_command_queue_depth", "gauge", "Commands waiting for the processor.",
           NULL, queue_depth);
    metric(out, "calderwood_command_queue_capacity", "gauge", "Command queue capacity.", NULL,
           queue_capacity);
    metric(out, "calderwood_messages_received_total", "counter", "WebSocket messages received.",
           NULL, get(&m->messages_in));
    metric(out, "calderwood_updates_sent_total", "counter", "Update frames sent to clients.", NULL,
           SUM(updates_sent));
    metric(out, "calderwood_frames_sent_total", "counter", "WebSocket frames sent to clients.",
           NULL, SUM(frames_out));
    metric(out, "calderwood_received_bytes_total", "counter", "WebSocket payload bytes received.",
           NULL, get(&m->bytes_in));
    metric(out, "calderwood_sent_bytes_total", "counter", "WebSocket bytes sent.", NULL,
           SUM(bytes_out));
    metric(out, "calderwood_logins_total", "counter", "Login attempts by result.",
           "{result=\"ok\"}", get(&m->logins_ok));
    metric(out, "calderwood_logins_total", NULL, NULL, "{result=\"failed\"}",
           get(&m->logins_failed));
    metric(out, "calderwood_logins_total", NULL, NULL, "{result=\"limited\"}",
           get(&m->logins_limited));
    metric(out, "calderwood_queries_total", "counter", "Queries run.", NULL, get(&m->queries));
    metric(out, "calderwood_query_errors_total", "counter", "Queries answered with an error.", NULL,
           get(&m->query_errors));
    metric(out, "calderwood_batches_total", "counter", "Write transactions committed.", NULL,
           get(&m->batches));
    metric(out, "calderwood_batch_commands_total", "counter",
           "Commands in committed batches (divide by batches for the mean batch size).", NULL,
           get(&m->batch_commands));
    char le[64];
    unsigned long long cumulative = 0;
    cw_buf_adds(out, "# HELP calderwood_commit_seconds Write transaction latency, BEGIN to "
                     "durable COMMIT.\n# TYPE calderwood_commit_seconds histogram\n");
    for (int i = 0; i <= CW_COMMIT_BUCKETS; i++) {
        cumulative += get(&m->commit_bucket[i]);
        if (i < CW_COMMIT_BUCKETS)
            snprintf(le, sizeof(le), "{le=\"%g\"}", (double)commit_le_us[i] / 1e6);
        else
            snprintf(le, sizeof(le), "{le=\"+Inf\"}");
        metric(out, "calderwood_commit_seconds_bucket", NULL, NULL, le, cumulative);
    }
    char sum[128];
    snprintf(sum, sizeof(sum), "calderwood_commit_seconds_sum %.6f\n",
             (double)get(&m->commit_us_sum) / 1e6);
    cw_buf_adds(out, sum);
    metric(out, "calderwood_commit_seconds_count", NULL, NULL, NULL, cumulative);
    render_threads(threads, n_threads, out);
}
