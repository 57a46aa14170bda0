/*
 * queue.h - the local command queue: a bounded multi-producer,
 * single-consumer ring of envelopes.
 *
 * Producers (gateway, workers, CLI) never block: put reports a full ring and
 * the caller answers `overloaded`. The one consumer (the processor) takes
 * whatever is there, up to a batch, and waits only when the ring is empty.
 * Order is the order of successful puts.
 */
#ifndef CW_QUEUE_H
#define CW_QUEUE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

struct cw_envelope;
struct cw_queue;

struct cw_queue *cw_queue_new(size_t capacity);
/* Frees the queue and any envelope still in it. */
void cw_queue_free(struct cw_queue *q);

/*
 * Takes ownership of env on CW_OK. CW_ERR_OVERLOADED when full and
 * CW_ERR_SHUTDOWN after close; env stays the caller's then.
 */
int cw_queue_put(struct cw_queue *q, struct cw_envelope *env);

/*
 * Moves up to max envelopes into out, oldest first; the caller owns them.
 * Waits up to timeout_us (< 0: forever) while the ring is empty and open.
 * Returns how many it took: 0 on timeout or when closed and drained.
 */
size_t cw_queue_take(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us);

/* Refuses further puts and wakes the consumer; queued envelopes can still be taken. */
void cw_queue_close(struct cw_queue *q);
bool cw_queue_closed(struct cw_queue *q);
size_t cw_queue_depth(struct cw_queue *q);
size_t cw_queue_capacity(struct cw_queue *q);

#endif
