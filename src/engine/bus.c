/*
 * bus.c - the local update bus (see bus.h): a ring of committed outcome
 * batches under one mutex. Sequence numbers count every batch published;
 * slot seq % cap holds it. `tail` is the oldest batch some consumer still
 * needs; each reader has its own cursor, and a batch leaves the ring when
 * its count of readers still to finish reaches zero. Since every reader
 * finishes batches in order, that happens in order too.
 *
 * A batch counts only the readers its filter mask concerns, so one no
 * reader wants leaves at once, and a reader's cursor may fall behind tail:
 * everything it missed there was not for it, and freed_position says how
 * far that went.
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
    uint64_t want;    /* the tags of the readers it concerns */
    int64_t position; /* its highest event position, or the log's when it has none */
};

struct cw_bus_reader {
    struct cw_bus *bus;
    uint64_t next;    /* {bus->lock} the sequence it reads next */
    bool holding;     /* reader's thread: cw_bus_read gave it a batch not yet done */
    bool asleep;      /* {bus->lock} it found nothing to read: the next batch for it wakes it */
    uint64_t tag;     /* {bus->lock} */
    int64_t passed;   /* {bus->lock} the highest position skipped or done */
    uint64_t skipped; /* {bus->lock} batches skipped */
    cw_wake_cb wake;
    void *wake_arg;
};

struct cw_bus {
    pthread_mutex_t lock;
    /* Held to wake readers after a publish, and by readers joining or leaving:
     * the wake goes outside lock, so that a woken reader does not block at once
     * on the lock its publisher still holds, and yet once cw_bus_leave()
     * returns nothing wakes its reader's thread. Taken before lock, never after. */
    pthread_mutex_t wake_lock;
    pthread_cond_t changed; /* published, consumed or closed */
    struct slot *slots;     /* {lock} */
    size_t cap;
    uint64_t head, tail;     /* {lock} next sequence to publish; oldest one held */
    int64_t position;        /* {lock} the highest position published */
    int64_t freed_position;  /* {lock} the position of the last batch freed */
    bool closed;             /* {lock} */
    cw_bus_filter_cb filter; /* {lock} */
    void *filter_arg;
    cw_wake_cb wake; /* of the take consumer */
    void *wake_arg;
    struct cw_bus_reader *readers[CW_BUS_MAX_READERS]; /* set before the processor starts */
    size_t n_readers;
};

struct cw_bus *cw_bus_new(size_t max_batches)
{
    struct cw_bus *bus = cw_xcalloc(1, sizeof(*bus));
    pthread_mutex_init(&bus->lock, NULL);
    pthread_mutex_init(&bus->wake_lock, NULL);
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
    pthread_mutex_destroy(&bus->wake_lock);
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

void cw_bus_set_filter(struct cw_bus *bus, cw_bus_filter_cb fn, void *arg)
{
    pthread_mutex_lock(&bus->lock);
    bus->filter = fn;
    bus->filter_arg = arg;
    pthread_mutex_unlock(&bus->lock);
}

/* The position a batch brings its readers to, skipped or read. */
static int64_t batch_position(const struct cw_outcome_batch *b)
{
    int64_t p = b->last_position;
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < b->items[i].n_events; k++)
            if (b->items[i].events[k]->ev.position > p)
                p = b->items[i].events[k]->ev.position;
    return p;
}

#define RECLAIM_MAX 16

/*
 * {bus->lock} Takes off the ring, oldest first, what no reader still needs
 * (up to RECLAIM_MAX, into gone, to be freed outside the lock). Only with
 * readers: without them, cw_bus_take does this.
 */
static size_t reclaim(struct cw_bus *bus, struct cw_outcome_batch **gone)
{
    size_t n = 0;
    while (bus->n_readers && bus->tail < bus->head && n < RECLAIM_MAX) {
        struct slot *s = &bus->slots[bus->tail % bus->cap];
        if (s->pending)
            break;
        bus->freed_position = s->position;
        gone[n++] = s->batch;
        bus->tail++;
    }
    if (n)
        pthread_cond_broadcast(&bus->changed);
    return n;
}

static void free_all(struct cw_outcome_batch **gone, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cw_outcome_batch_free(gone[i]);
}

/* {bus->lock} The readers a new batch concerns that have nothing else to
 * read: they are to be woken, once the lock is let go (wake_outside). */
static size_t to_wake(struct cw_bus *bus, uint64_t want, struct cw_bus_reader **out)
{
    size_t n = 0;
    for (size_t i = 0; i < bus->n_readers; i++) {
        struct cw_bus_reader *r = bus->readers[i];
        if ((r->tag & want) && r->asleep) {
            r->asleep = false;
            out[n++] = r;
        }
    }
    return n;
}

/* {bus->wake_lock} Whether r is still subscribed (it may have left since the publish). */
static bool joined(struct cw_bus *bus, const struct cw_bus_reader *r)
{
    for (size_t i = 0; i < bus->n_readers; i++)
        if (bus->readers[i] == r)
            return true;
    return false;
}

static void wake_outside(struct cw_bus *bus, struct cw_bus_reader **woken, size_t n)
{
    pthread_mutex_lock(&bus->wake_lock);
    if (bus->wake)
        bus->wake(bus->wake_arg);
    for (size_t i = 0; i < n; i++)
        if (joined(bus, woken[i]))
            woken[i]->wake(woken[i]->wake_arg);
    pthread_mutex_unlock(&bus->wake_lock);
}

void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b)
{
    struct cw_outcome_batch *gone[RECLAIM_MAX];
    struct cw_bus_reader *woken[CW_BUS_MAX_READERS];
    size_t n_gone = 0, n_woken = 0;
    pthread_mutex_lock(&bus->lock);
    while (!bus->closed && bus->head - bus->tail >= bus->cap)
        pthread_cond_wait(&bus->changed, &bus->lock);
    bool closed = bus->closed;
    if (!closed) {
        struct slot *s = &bus->slots[bus->head % bus->cap];
        s->batch = b;
        s->want = bus->filter ? bus->filter(bus->filter_arg, b) : ~(uint64_t)0;
        s->position = batch_position(b);
        s->pending = 0;
        for (size_t i = 0; i < bus->n_readers; i++)
            s->pending += (bus->readers[i]->tag & s->want) != 0;
        if (s->position > bus->position)
            bus->position = s->position;
        bus->head++;
        pthread_cond_broadcast(&bus->changed);
        n_woken = to_wake(bus, s->want, woken);
        n_gone = reclaim(bus, gone); /* a batch no reader wants goes at once */
    }
    pthread_mutex_unlock(&bus->lock);
    if (closed)
        cw_outcome_batch_free(b); /* nobody will take it */
    else
        wake_outside(bus, woken, n_woken);
    free_all(gone, n_gone);
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
    r->tag = ~(uint64_t)0;
    r->asleep = true;
    pthread_mutex_lock(&bus->wake_lock);
    pthread_mutex_lock(&bus->lock);
    r->next = bus->head;
    bus->readers[bus->n_readers++] = r;
    pthread_mutex_unlock(&bus->lock);
    pthread_mutex_unlock(&bus->wake_lock);
    return r;
}

void cw_bus_reader_tag(struct cw_bus_reader *r, uint64_t tag)
{
    pthread_mutex_lock(&r->bus->lock);
    r->tag = tag;
    pthread_mutex_unlock(&r->bus->lock);
}

int64_t cw_bus_position(struct cw_bus *bus)
{
    pthread_mutex_lock(&bus->lock);
    int64_t p = bus->position;
    pthread_mutex_unlock(&bus->lock);
    return p;
}

int64_t cw_bus_passed(struct cw_bus_reader *r, uint64_t *skipped)
{
    pthread_mutex_lock(&r->bus->lock);
    int64_t p = r->passed;
    if (skipped)
        *skipped = r->skipped;
    pthread_mutex_unlock(&r->bus->lock);
    return p;
}

static void pass(struct cw_bus_reader *r, int64_t position)
{
    if (position > r->passed)
        r->passed = position;
}

const struct cw_outcome_batch *cw_bus_read(struct cw_bus_reader *r)
{
    struct cw_bus *bus = r->bus;
    struct cw_outcome_batch *b = NULL;
    pthread_mutex_lock(&bus->lock);
    if (!r->holding && r->next < bus->tail) { /* freed meanwhile: none of them was for r */
        pass(r, bus->freed_position);
        r->skipped += bus->tail - r->next;
        r->next = bus->tail;
    }
    for (; !r->holding && r->next < bus->head; r->next++, r->skipped++) {
        struct slot *s = &bus->slots[r->next % bus->cap];
        if (s->want & r->tag) {
            b = s->batch;
            break;
        }
        pass(r, s->position);
    }
    if (r->holding) /* read again before done: the same batch */
        b = bus->slots[r->next % bus->cap].batch;
    r->asleep = b == NULL;
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
    struct cw_outcome_batch *gone[RECLAIM_MAX];
    pthread_mutex_lock(&bus->lock);
    struct slot *s = &bus->slots[r->next % bus->cap];
    s->pending--;
    pass(r, s->position);
    r->next++;
    size_t n = reclaim(bus, gone); /* freed outside the lock */
    pthread_mutex_unlock(&bus->lock);
    free_all(gone, n);
}

void cw_bus_leave(struct cw_bus_reader *r)
{
    if (!r)
        return;
    struct cw_bus *bus = r->bus;
    pthread_mutex_lock(&bus->wake_lock); /* no wake of it is under way, nor will be */
    pthread_mutex_lock(&bus->lock);
    /* What it counts in: unread, or read and not done, and for it. */
    for (uint64_t i = r->next > bus->tail ? r->next : bus->tail; i < bus->head; i++)
        if (bus->slots[i % bus->cap].want & r->tag)
            bus->slots[i % bus->cap].pending--;
    for (size_t i = 0; i < bus->n_readers; i++)
        if (bus->readers[i] == r)
            bus->readers[i] = bus->readers[--bus->n_readers];
    while (bus->tail < bus->head && !bus->slots[bus->tail % bus->cap].pending) {
        bus->freed_position = bus->slots[bus->tail % bus->cap].position;
        cw_outcome_batch_free(bus->slots[bus->tail++ % bus->cap].batch);
    }
    pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
    pthread_mutex_unlock(&bus->wake_lock);
    free(r);
}
