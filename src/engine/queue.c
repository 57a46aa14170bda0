/*
 * queue.c - bounded MPSC ring of envelopes (see queue.h).
 *
 * A mutex and one condition variable: producers hold the lock for a few
 * stores, and the consumer empties up to a whole batch per acquisition, so
 * the lock is cheap next to the work each command costs downstream.
 */
#include "queue.h"
#include "calderwood.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "envelope.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct cw_queue {
    pthread_mutex_t lock;
    pthread_cond_t nonempty;
    struct cw_envelope **ring; /* {lock} */
    size_t cap, head, len;     /* {lock} */
    bool closed;               /* {lock} */
};

struct cw_queue *cw_queue_new(size_t capacity)
{
    struct cw_queue *q = cw_xcalloc(1, sizeof(*q));
    q->cap = capacity ? capacity : 1;
    q->ring = cw_xcalloc(q->cap, sizeof(*q->ring));
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->nonempty, &attr);
    pthread_condattr_destroy(&attr);
    return q;
}

void cw_queue_free(struct cw_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        cw_envelope_free(q->ring[(q->head + i) % q->cap]);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->nonempty);
    free(q->ring);
    free(q);
}

int cw_queue_put(struct cw_queue *q, struct cw_envelope *env)
{
    int rc = CW_OK;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        rc = CW_ERR_SHUTDOWN;
    } else if (q->len == q->cap) {
        rc = CW_ERR_OVERLOADED;
    } else {
        q->ring[(q->head + q->len) % q->cap] = env;
        if (q->len++ == 0)
            pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t cw_queue_take(struct cw_queue *q, struct cw_envelope **out, size_t max, int64_t timeout_us)
{
    struct timespec deadline;
    if (timeout_us >= 0)
        cw_deadline_after(&deadline, timeout_us);
    pthread_mutex_lock(&q->lock);
    while (q->len == 0 && !q->closed) {
        if (timeout_us < 0) {
            pthread_cond_wait(&q->nonempty, &q->lock);
        } else if (pthread_cond_timedwait(&q->nonempty, &q->lock, &deadline)) {
            break;
        }
    }
    size_t n = q->len < max ? q->len : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
    }
    q->len -= n;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void cw_queue_close(struct cw_queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->lock);
}

bool cw_queue_closed(struct cw_queue *q)
{
    pthread_mutex_lock(&q->lock);
    bool closed = q->closed;
    pthread_mutex_unlock(&q->lock);
    return closed;
}

size_t cw_queue_depth(struct cw_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->len;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t cw_queue_capacity(struct cw_queue *q)
{
    return q->cap;
}
