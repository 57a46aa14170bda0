/*
 * bus.c - the local update bus (see bus.h): a cw_ring of committed outcome
 * batches whose publisher waits when it is full, with a wake hook for an
 * event-loop subscriber.
 */
#include "bus.h"
#include "calderwood.h"
#include "core/alloc.h"
#include "core/ring.h"
#include "update.h"

#include <stdlib.h>

struct cw_bus {
    struct cw_ring ring;
    cw_wake_cb wake;
    void *wake_arg;
};

struct cw_bus *cw_bus_new(size_t max_batches)
{
    struct cw_bus *bus = cw_xcalloc(1, sizeof(*bus));
    cw_ring_init(&bus->ring, max_batches);
    return bus;
}

static void free_batch(void *p)
{
    cw_outcome_batch_free(p);
}

void cw_bus_free(struct cw_bus *bus)
{
    if (!bus)
        return;
    cw_ring_release(&bus->ring, free_batch);
    free(bus);
}

void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg)
{
    bus->wake = fn;
    bus->wake_arg = arg;
}

void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b)
{
    if (cw_ring_put(&bus->ring, b, true)) {
        cw_outcome_batch_free(b); /* closed: nobody will take it */
        return;
    }
    if (bus->wake)
        bus->wake(bus->wake_arg);
}

struct cw_outcome_batch *cw_bus_take(struct cw_bus *bus, int64_t timeout_us)
{
    void *b = NULL;
    cw_ring_take(&bus->ring, &b, 1, timeout_us);
    return b;
}

void cw_bus_close(struct cw_bus *bus)
{
    cw_ring_close(&bus->ring);
}
