/*
 * ring.c - bounded FIFO of pointers between threads (see ring.h).
 */
#include "ring.h"
#include "alloc.h"
#include "calderwood.h"
#include "clock.h"

#include <stdlib.h>
#include <time.h>

void cw_ring_init(struct cw_ring *r, size_t capacity)
{
    r->cap = capacity ? capacity : 1;
    r->slots = cw_xcalloc(r->cap, sizeof(*r->slots));
    r->head = r->len = 0;
    r->closed = false;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
}

void cw_ring_release(struct cw_ring *r, void (*free_fn)(void *))
{
    for (size_t i = 0; free_fn && i < r->len; i++)
        free_fn(r->slots[(r->head + i) % r->cap]);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
    free(r->slots);
    r->slots = NULL;
}

int cw_ring_put(struct cw_ring *r, void *p, bool wait)
{
    int rc = CW_OK;
    pthread_mutex_lock(&r->lock);
    while (wait && r->len == r->cap && !r->closed)
        pthread_cond_wait(&r->changed, &r->lock);
    if (r->closed) {
        rc = CW_ERR_SHUTDOWN;
    } else if (r->len == r->cap) {
        rc = CW_ERR_OVERLOADED;
    } else {
        r->slots[(r->head + r->len++) % r->cap] = p;
        pthread_cond_broadcast(&r->changed);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

size_t cw_ring_take(struct cw_ring *r, void **out, size_t max, int64_t timeout_us)
{
    struct timespec deadline;
    if (timeout_us > 0)
        cw_deadline_after(&deadline, timeout_us);
    pthread_mutex_lock(&r->lock);
    while (r->len == 0 && !r->closed && timeout_us != 0) {
        if (timeout_us < 0)
            pthread_cond_wait(&r->changed, &r->lock);
        else if (pthread_cond_timedwait(&r->changed, &r->lock, &deadline))
            break;
    }
    size_t n = r->len < max ? r->len : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = r->slots[r->head];
        r->head = (r->head + 1) % r->cap;
    }
    r->len -= n;
    if (n)
        pthread_cond_broadcast(&r->changed); /* a waiting put has room now */
    pthread_mutex_unlock(&r->lock);
    return n;
}

void cw_ring_close(struct cw_ring *r)
{
    pthread_mutex_lock(&r->lock);
    r->closed = true;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
}

bool cw_ring_closed(struct cw_ring *r)
{
    pthread_mutex_lock(&r->lock);
    bool closed = r->closed;
    pthread_mutex_unlock(&r->lock);
    return closed;
}

size_t cw_ring_len(struct cw_ring *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->len;
    pthread_mutex_unlock(&r->lock);
    return n;
}
