/*
 * processor.h - the processor thread: the only writer.
 *
 * It takes batches from the command queue and runs each in one write
 * transaction: per command, dedupe -> handle -> append events -> aggregate;
 * a command whose handler rejects it, or whose domain code fails
 * permanently, leaves nothing but its rejection in the command log; the
 * rest commits. (Savepoints make that so only where needed: see
 * processor.c.) One durable commit per batch; then the outcomes, with their
 * events in position order, go to the update bus.
 *
 * A transient store error rolls the whole batch back and retries it after
 * 1, 2, 4 ... ms plus 0-1000 ms of jitter, capped at 60 s (1 s for a full
 * disk), until it succeeds or the processor is stopped. Meanwhile the batch
 * stays taken and later commands wait in the queue, whose bound then
 * refuses more. The log says so once when it starts, once every 10 s while
 * it lasts and once when it ends. Application errors are never retried.
 */
#ifndef CW_PROCESSOR_H
#define CW_PROCESSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cw_store;
struct cw_domain;
struct cw_outcome_batch;
struct cw_queue;
struct cw_bus;
struct cw_processor;

/* What the store looks like from the processor: cw_processor_condition(). */
enum cw_condition {
    CW_CONDITION_OK,
    CW_CONDITION_STALLED,   /* one attempt at a batch has run longer than CW_STALL_US */
    CW_CONDITION_DISK_FULL, /* the last attempt failed for want of disk space; retrying */
    CW_CONDITION_FAILING,   /* the last attempt failed with another transient error; retrying */
};
#define CW_STALL_US 250000

/* "ok", "stalled", "disk-full", "failing": the names /health and the log use. */
const char *cw_condition_name(int condition);

struct cw_processor_stats {
    uint64_t batches, commands, events, rejected, duplicates, retries;
    uint64_t commit_us_total; /* sum of BEGIN..COMMIT durations */
    uint64_t cpu_us;          /* CPU time the processor thread used */
};

/*
 * Observer of each batch's size and commit latency in microseconds (BEGIN
 * to COMMIT returned), for benchmarks and metrics. Processor thread.
 */
typedef void (*cw_commit_observer_cb)(void *arg, size_t batch_size, int64_t commit_us);

/* Where committed batches go instead of the bus (the NATS feed); takes b. Processor thread. */
typedef void (*cw_batch_sink_cb)(void *arg, struct cw_outcome_batch *b);

struct cw_processor_config {
    size_t max_batch;               /* commands per transaction at most */
    cw_commit_observer_cb observer; /* optional */
    void *observer_arg;
    cw_batch_sink_cb sink; /* optional: committed batches go here, not to the bus */
    void *sink_arg;
    /*
     * Distributed mode: process only while holding the store's lead
     * (cw_db_try_lead with lead_key), checked inside each transaction;
     * wait as a standby, polling every 100 ms, until then; and when the
     * queue stays empty for heartbeat_us, send the sink an empty batch
     * carrying the last position, so receivers notice what they missed.
     */
    bool lead;
    int64_t lead_key;
    int64_t heartbeat_us;
};

/* Starts the thread. store, d, q and bus are borrowed and must outlive it. */
int cw_processor_start(struct cw_store *store, const struct cw_domain *d, struct cw_queue *q,
                       struct cw_bus *bus, const struct cw_processor_config *cfg,
                       struct cw_processor **out);

/*
 * Stops: closes nothing, but once q is closed and drained the thread commits
 * its last batch and exits; this joins it. Call cw_queue_close(q) first for
 * a drain; a retry in progress is abandoned (the batch is not committed).
 */
void cw_processor_stop(struct cw_processor *p);

/* A consistent copy of the counters. Any thread. */
void cw_processor_stats(struct cw_processor *p, struct cw_processor_stats *out);

/* The store's condition now (enum cw_condition). Any thread; two atomic loads. */
int cw_processor_condition(struct cw_processor *p);

#endif
