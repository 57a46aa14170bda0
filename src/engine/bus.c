/*
 * bus.c - the local update bus (see bus.h): a bounded FIFO of committed
 * outcome batches with a wake hook for an event-loop subscriber.
 */
#include "bus.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "update.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

struct cw_bus {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct cw_outcome_batch **ring; /* {lock} */
    size_t cap, head, len;          /* {lock} */
    bool closed;                    /* {lock} */
    cw_wake_cb wake;
    void *wake_arg;
};

struct cw_bus *cw_bus_new(size_t max_batches)
{
    struct cw_bus *bus = cw_xcalloc(1, sizeof(*bus));
    bus->cap = max_batches ? max_batches : 1;
    bus->ring = cw_xcalloc(bus->cap, sizeof(*bus->ring));
    pthread_mutex_init(&bus->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->changed, &attr);
    pthread_condattr_destroy(&attr);
    return bus;
}

void cw_bus_free(struct cw_bus *bus)
{
    if (!bus)
        return;
    for (size_t i = 0; i < bus->len; i++)
        cw_outcome_batch_free(bus->ring[(bus->head + i) % bus->cap]);
    pthread_mutex_destroy(&bus->lock);
    pthread_cond_destroy(&bus->changed);
    free(bus->ring);
    free(bus);
}

void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg)
{
    bus->wake = fn;
    bus->wake_arg = arg;
}

void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b)
{
    pthread_mutex_lock(&bus->lock);
    while (bus->len == bus->cap && !bus->closed)
        pthread_cond_wait(&bus->changed, &bus->lock);
    if (bus->closed) {
        pthread_mutex_unlock(&bus->lock);
        cw_outcome_batch_free(b);
        return;
    }
    bus->ring[(bus->head + bus->len) % bus->cap] = b;
    bus->len++;
    pthread_cond_broadcast(&bus->changed);
    pthread_mutex_unlock(&bus->lock);
    if (bus->wake)
        bus->wake(bus->wake_arg);
}

struct cw_outcome_batch *cw_bus_take(struct cw_bus *bus, int64_t timeout_us)
{
    struct timespec deadline;
    if (timeout_us > 0)
        cw_deadline_after(&deadline, timeout_us);
    struct cw_outcome_batch *b = NULL;
    pthread_mutex_lock(&bus->lock);
    while (bus->len == 0 && !bus->closed && timeout_us != 0) {
        if (timeout_us < 0)
            pthread_cond_wait(&bus->changed, &bus->lock);
        else if (pthread_cond_timedwait(&bus->changed, &bus->lock, &deadline))
            break;
    }
    if (bus->len) {
        b = bus->ring[bus->head];
        bus->head = (bus->head + 1) % bus->cap;
        bus->len--;
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
    pthread_mutex_unlock(&bus->lock);
}
