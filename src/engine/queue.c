/*
 * queue.c - the command queue (see queue.h): a cw_ring of envelopes whose
 * producers never wait. The consumer empties up to a whole batch per lock,
 * so the lock is cheap next to the work each command costs downstream.
 */
#include "queue.h"
#include "calderwood.h"
#include "core/alloc.h"
#include "core/ring.h"
#include "envelope.h"

#include <stdlib.h>

struct cw_queue {
    struct cw_ring ring;
};

struct cw_queue *cw_queue_new(size_t capacity)
{
    struct cw_queue *q = cw_xcalloc(1, sizeof(*q));
    cw_ring_init(&q->ring, capacity);
    return q;
}

static void free_envelope(void *p)
{
    cw_envelope_free(p);
}

void cw_queue_free(struct cw_queue *q)
{
    if (!q)
        return;
    cw_ring_release(&q->ring, free_envelope);
    free(q);
}

int cw_queue_put(struct cw_queue *q, struct cw_envelope *env)
{
    return cw_ring_put(&q->ring, env, false);
}

size_t cw_queue_take(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us)
{
    return cw_ring_take(&q->ring, (void **)out, max, timeout_us);
}

void cw_queue_close(struct cw_queue *q)
{
    cw_ring_close(&q->ring);
}

bool cw_queue_closed(struct cw_queue *q)
{
    return cw_ring_closed(&q->ring);
}

size_t cw_queue_depth(struct cw_queue *q)
{
    return cw_ring_len(&q->ring);
}

size_t cw_queue_capacity(struct cw_queue *q)
{
    return q->ring.cap;
}
