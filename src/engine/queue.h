/*
 * queue.h - the command queue between the submitters (gateway, workers,
 * CLI) and the processor, behind one small interface with one file per
 * engine: queue.c (the local ring, one process) and queue_nats.c (NATS
 * JetStream, many processes). A Kafka adapter would be a third file
 * filling struct cw_queue_ops (docs/ARCHITECTURE.md says what it takes).
 *
 * Producers never block for long: put refuses with CW_ERR_OVERLOADED when
 * the queue is full and the caller answers `overloaded`. The one consumer
 * (the active processor) takes whatever is there, up to a batch, waits only
 * when the queue is empty, and reports each taken batch done with
 * cw_queue_done() once it committed (or abandons it), before taking the
 * next. Order is the order of successful puts.
 */
#ifndef CW_QUEUE_H
#define CW_QUEUE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct cw_envelope;
struct cw_queue;

/*
 * How an asynchronous put ends: rc is CW_OK once the command is durable in
 * the queue, CW_ERR_OVERLOADED when the queue refused it, CW_ERR_AGAIN when
 * it did not answer in time (the command may be in the queue all the same;
 * either way a resend is safe: the idempotency key dedupes it), or
 * CW_ERR_SHUTDOWN. Called once, on a thread of the queue's, never inside
 * cw_queue_put_async itself.
 */
typedef void (*cw_queue_put_cb)(void *arg, int rc);

/* One engine's functions; each has the contract of the cw_queue_ call of the same name. */
struct cw_queue_ops {
    int (*put)(struct cw_queue *q, struct cw_envelope *env);
    /* NULL when puts are synchronous anyway (the local ring). */
    int (*put_async)(struct cw_queue *q, struct cw_envelope *env, cw_queue_put_cb cb, void *arg);
    size_t (*take)(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us);
    void (*done)(struct cw_queue *q, bool committed);
    void (*close)(struct cw_queue *q);
    bool (*closed)(struct cw_queue *q);
    size_t (*depth)(struct cw_queue *q);
    size_t (*capacity)(struct cw_queue *q);
    void (*free)(struct cw_queue *q);
};

/* Every engine's queue begins with this, so the calls below can dispatch. */
struct cw_queue {
    const struct cw_queue_ops *ops;
};

struct cw_domain;
struct cw_error;

/* The local ring of at most capacity envelopes. */
struct cw_queue *cw_queue_new(size_t capacity);
/*
 * The JetStream queue (queue_nats.c): the stream CW_COMMANDS on subject
 * cw.commands, created or checked here, with file storage, work-queue
 * retention (an acked command leaves it), at most capacity commands
 * (DiscardNew: a full stream refuses, the client hears `overloaded`) and a
 * 2-minute duplicate window keyed by Nats-Msg-Id = the idempotency key.
 * put publishes and waits for the stream's ack (so CW_OK means durable);
 * put_async publishes and reports the stream's ack later, with at most
 * max_pending publishes unanswered at once (more are refused, overloaded).
 * With consume, take pulls from the durable consumer cw-processor (created
 * at the first take, so a standby holds no messages) and done acks the
 * batch, or naks it for redelivery.
 */
struct cw_queue_nats_config {
    const char *urls;          /* nats://HOST:PORT[,...] */
    const struct cw_domain *d; /* each command's definition, for take */
    uint64_t node;             /* written into each command: its outcome's way home */
    bool consume;              /* the processor's side */
    size_t capacity;           /* the stream's MaxMsgs */
    size_t max_pending;        /* asynchronous publishes unanswered at once (default 4096) */
};
int cw_queue_nats_open(const struct cw_queue_nats_config *cfg, struct cw_queue **out,
                       struct cw_error *err);

/* Frees the queue and any envelope still in it. Accepts NULL. */
void cw_queue_free(struct cw_queue *q);

/*
 * Takes ownership of env on CW_OK. CW_ERR_OVERLOADED when full and
 * CW_ERR_SHUTDOWN after close; env stays the caller's then. For a
 * distributed queue CW_OK means the command is durable in the queue.
 */
int cw_queue_put(struct cw_queue *q, struct cw_envelope *env);

/* Whether cw_queue_put_async is available: puts that wait on another machine. */
bool cw_queue_async(struct cw_queue *q);

/*
 * Sends env without waiting for the queue's answer, which comes to cb
 * later (see cw_queue_put_cb). On CW_OK env is taken and cb will be
 * called exactly once; otherwise (CW_ERR_OVERLOADED: too many unanswered
 * or the queue is unreachable, CW_ERR_SHUTDOWN) env stays the caller's
 * and cb is never called. Callbacks for one caller come in put order
 * only as far as the queue answers in order: order is the caller's job.
 */
int cw_queue_put_async(struct cw_queue *q, struct cw_envelope *env, cw_queue_put_cb cb, void *arg);

/*
 * Moves up to max envelopes into out, oldest first; the caller owns them.
 * Waits up to timeout_us (< 0: forever) while the queue is empty and open.
 * Returns how many it took: 0 on timeout or when closed and drained.
 */
size_t cw_queue_take(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us);

/*
 * The batch last taken is committed (the queue may forget it), or, when
 * committed is false, abandoned: a distributed queue delivers it again,
 * to whichever processor is active then. The local ring forgets either way.
 */
void cw_queue_done(struct cw_queue *q, bool committed);

/*
 * Refuses further puts and wakes the consumer; queued envelopes can still be
 * taken. Asynchronous puts still unanswered are waited for (a few seconds
 * at most), then answered CW_ERR_SHUTDOWN: every callback has run on return.
 */
void cw_queue_close(struct cw_queue *q);
bool cw_queue_closed(struct cw_queue *q);
size_t cw_queue_depth(struct cw_queue *q);
size_t cw_queue_capacity(struct cw_queue *q);

#endif
