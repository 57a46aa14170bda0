/*
 * bus.c - the local update bus (see bus.h): a ring of committed outcome
 * batches under one mutex. Sequence numbers count every batch published;
 * slot seq % cap holds it. `tail` is the oldest batch some consumer still
 * needs; each reader has its own cursor, and a batch leaves the ring when
 * its count of readers still to finish reaches zero. Since every reader
 * finishes batches in order, that happens in order too.
 */
#include "bus.h"
#include "calderwood.h"
#include "core/alloc.h"
#include "update.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct slot {
    struct cw_outcome_batch *batch;
    unsigned pending; /* readers that have not finished it */
};

struct cw_bus_reader {
    struct cw_bus *bus;
    uint64_t next; /* {bus->lock} the sequence it reads next */
    bool holding;  /* reader's thread: cw_bus_read gave it a batch not yet done */
    cw_wake_cb wake;
    void *wake_arg;
};

struct cw_bus {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* published, consumed or closed */
    struct slot *slots;     /* {lock} */
    size_t cap;
    uint64_t head, tail; /* {lock} next sequence to publish; oldest one held */
    bool closed;         /* {lock} */
    cw_wake_cb wake;     /* of the take consumer */
    void *wake_arg;
    struct cw_bus_reader *readers[CW_BUS_MAX_READERS]; /* set before the processor starts */
    size_t n_readers;
};

struct cw_bus *cw_bus_new(size_t max_batches)
{
    struct cw_bus *bus = cw_xcalloc(1, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->changed, &attr);
    pthread_condattr_destroy(&attr);
    bus->cap = max_batches ? max_batches : 1;
    bus->slots = cw_xcalloc(bus->cap, sizeof(*bus->slots));
    return bus;
}

void cw_bus_free(struct cw_bus *bus)
{
    if (!bus)
        return;
    for (uint64_t s = bus->tail; s < bus->head; s++)
        cw_outcome_batch_free(bus->slots[s % bus->cap].batch);
    for (size_t i = 0; i < bus->n_readers; i++)
        free(bus->readers[i]);
    free(bus->slots);
    pthread_cond_destroy(&bus->changed);
    pthread_mutex_destroy(&bus->lock);
    free(bus);
}

void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg)
{
    bus->wake = fn;
    bus->wake_arg = arg;
}

/* {bus->lock}: so that once cw_bus_leave() returns, nothing wakes its reader's thread. */
static void wake_all(struct cw_bus *bus)
{
    if (bus->wake)
        bus->wake(bus->wake_arg);
    for (size_t i = 0; i < bus->n_readers; i++)
        bus->readers[i]->wake(bus->readers[i]->wake_arg);
}

void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b)
{
    pthread_mutex_lock(&bus->lock);
    while (!bus->closed && bus->head - bus->tail >= bus->cap)
        pthread_cond_wait(&bus->changed, &bus->lock);
    bool closed = bus->closed;
    if (!closed) {
        struct slot *s = &bus->slots[bus->head % bus->cap];
        s->batch = b;
        s->pending = (unsigned)bus->n_readers;
        bus->head++;
        pthread_cond_broadcast(&bus->changed);
    }
    if (!closed)
        wake_all(bus);
    pthread_mutex_unlock(&bus->lock);
    if (closed)
        cw_outcome_batch_free(b); /* nobody will take it */
}

/* Deadline for pthread_cond_timedwait, timeout_us from now on the monotonic clock. */
static struct timespec deadline(int64_t timeout_us)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ns = t.tv_nsec + (timeout_us % 1000000) * 1000;
    t.tv_sec += (time_t)(timeout_us / 1000000 + ns / 1000000000);
    t.tv_nsec = (long)(ns % 1000000000);
    return t;
}

struct cw_outcome_batch *cw_bus_take(struct cw_bus *bus, int64_t timeout_us)
{
    struct cw_outcome_batch *b = NULL;
    struct timespec until = deadline(timeout_us > 0 ? timeout_us : 0);
    pthread_mutex_lock(&bus->lock);
    while (bus->tail == bus->head && !bus->closed && timeout_us) {
        if (timeout_us < 0)
            pthread_cond_wait(&bus->changed, &bus->lock);
        else if (pthread_cond_timedwait(&bus->changed, &bus->lock, &until) == ETIMEDOUT)
            break;
    }
    if (bus->tail < bus->head) {
        b = bus->slots[bus->tail % bus->cap].batch;
        bus->tail++;
        pthread_cond_broadcast(&bus->changed);
    }
    pthread_mutex_unlock(&bus->lock);
    return b;
}

void cw_bus_close(struct cw_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    bus->closed = true;
    pthread_cond_broadcast(&bus->changed);
    wake_all(bus);
    pthread_mutex_unlock(&bus->lock);
}

struct cw_bus_reader *cw_bus_subscribe(struct cw_bus *bus, cw_wake_cb fn, void *arg)
{
    if (bus->n_readers == CW_BUS_MAX_READERS)
        return NULL;
    struct cw_bus_reader *r = cw_xcalloc(1, sizeof(*r));
    r->bus = bus;
    r->wake = fn;
    r->wake_arg = arg;
    pthread_mutex_lock(&bus->lock);
    r->next = bus->head;
    bus->readers[bus->n_readers++] = r;
    pthread_mutex_unlock(&bus->lock);
    return r;
}

const struct cw_outcome_batch *cw_bus_read(struct cw_bus_reader *r)
{
    struct cw_bus *bus = r->bus;
    struct cw_outcome_batch *b = NULL;
    pthread_mutex_lock(&bus->lock);
    if (r->next < bus->head)
        b = bus->slots[r->next % bus->cap].batch;
    pthread_mutex_unlock(&bus->lock);
    r->holding = b != NULL;
    return b;
}

void cw_bus_done(struct cw_bus_reader *r)
{
    if (!r->holding)
        return;
    r->holding = false;
    struct cw_bus *bus = r->bus;
    struct cw_outcome_batch *gone[16];
    size_t n = 0;
    pthread_mutex_lock(&bus->lock);
    bus->slots[r->next % bus->cap].pending--;
    r->next++;
    /* Free outside the lock what every reader has finished, oldest first. */
    while (bus->tail < bus->head && !bus->slots[bus->tail % bus->cap].pending && n < 16)
        gone[n++] = bus->slots[bus->tail++ % bus->cap].batch;
    if (n)
        pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
    for (size_t i = 0; i < n; i++)
        cw_outcome_batch_free(gone[i]);
}

void cw_bus_leave(struct cw_bus_reader *r)
{
    if (!r)
        return;
    struct cw_bus *bus = r->bus;
    pthread_mutex_lock(&bus->lock);
    for (uint64_t i = r->next; i < bus->head; i++) /* unread, or read and not done */
        bus->slots[i % bus->cap].pending--;
    for (size_t i = 0; i < bus->n_readers; i++)
        if (bus->readers[i] == r)
            bus->readers[i] = bus->readers[--bus->n_readers];
    while (bus->tail < bus->head && !bus->slots[bus->tail % bus->cap].pending)
        cw_outcome_batch_free(bus->slots[bus->tail++ % bus->cap].batch);
    pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
    free(r);
}
