/*
 * queue.c - the command queue interface's dispatch (see queue.h), and its
 * local engine: a cw_ring of envelopes whose producers never wait. The
 * consumer empties up to a whole batch per lock, so the lock is cheap next
 * to the work each command costs downstream.
 */
#include "queue.h"
#include "calderwood.h"
#include "core/alloc.h"
#include "core/ring.h"
#include "envelope.h"

#include <stdlib.h>

struct local_queue {
    struct cw_queue base; /* first: a struct cw_queue * points here */
    struct cw_ring ring;
};

static struct cw_ring *ring_of(struct cw_queue *q)
{
    return &((struct local_queue *)q)->ring;
}

static void free_envelope(void *p)
{
    cw_envelope_free(p);
}

static void local_free(struct cw_queue *q)
{
    cw_ring_release(ring_of(q), free_envelope);
    free(q);
}

static int local_put(struct cw_queue *q, struct cw_envelope *env)
{
    return cw_ring_put(ring_of(q), env, false);
}

static size_t local_take(struct cw_queue *q, struct cw_envelope **out, size_t max,
                         int64_t timeout_us)
{
    return cw_ring_take(ring_of(q), (void **)out, max, timeout_us);
}

static void local_done(struct cw_queue *q, bool committed)
{
    (void)q;
    (void)committed; /* the ring gave the batch away when it was taken */
}

static void local_close(struct cw_queue *q)
{
    cw_ring_close(ring_of(q));
}

static bool local_closed(struct cw_queue *q)
{
    return cw_ring_closed(ring_of(q));
}

static size_t local_depth(struct cw_queue *q)
{
    return cw_ring_len(ring_of(q));
}

static size_t local_capacity(struct cw_queue *q)
{
    return ring_of(q)->cap;
}

static const struct cw_queue_ops local_ops = {
    .put = local_put,
    .take = local_take,
    .done = local_done,
    .close = local_close,
    .closed = local_closed,
    .depth = local_depth,
    .capacity = local_capacity,
    .free = local_free,
};

struct cw_queue *cw_queue_new(size_t capacity)
{
    struct local_queue *q = cw_xcalloc(1, sizeof(*q));
    q->base.ops = &local_ops;
    cw_ring_init(&q->ring, capacity);
    return &q->base;
}

void cw_queue_free(struct cw_queue *q)
{
    if (q)
        q->ops->free(q);
}

int cw_queue_put(struct cw_queue *q, struct cw_envelope *env)
{
    return q->ops->put(q, env);
}

bool cw_queue_async(struct cw_queue *q)
{
    return q->ops->put_async != NULL;
}

int cw_queue_put_async(struct cw_queue *q, struct cw_envelope *env, cw_queue_put_cb cb, void *arg)
{
    return q->ops->put_async(q, env, cb, arg);
}

size_t cw_queue_take(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us)
{
    return q->ops->take(q, out, max, timeout_us);
}

void cw_queue_done(struct cw_queue *q, bool committed)
{
    q->ops->done(q, committed);
}

void cw_queue_close(struct cw_queue *q)
{
    q->ops->close(q);
}

bool cw_queue_closed(struct cw_queue *q)
{
    return q->ops->closed(q);
}

size_t cw_queue_depth(struct cw_queue *q)
{
    return q->ops->depth(q);
}

size_t cw_queue_capacity(struct cw_queue *q)
{
    return q->ops->capacity(q);
}
