/*
 * bus.h - the local update bus: committed outcome batches from the
 * processor to one subscriber (the gateway), in commit order.
 *
 * Bounded: when the subscriber falls max_batches behind, publish waits, so
 * a slow gateway slows the processor instead of growing the heap. The wake
 * hook runs on the publisher's thread after each publish; the gateway
 * passes a function that calls lws_cancel_service().
 */
#ifndef CW_BUS_H
#define CW_BUS_H

#include <stddef.h>
#include <stdint.h>

struct cw_outcome_batch;
struct cw_bus;

typedef void (*cw_wake_cb)(void *arg);

struct cw_bus *cw_bus_new(size_t max_batches);
/* Frees the bus and any batch not taken. */
void cw_bus_free(struct cw_bus *bus);
/* Sets the wake hook. Call before the processor starts. */
void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg);

/* Takes ownership of b. Waits while the bus is full, unless closed (then b is freed). */
void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b);
/* The oldest batch, or NULL after waiting up to timeout_us (0: do not wait; < 0: forever). */
struct cw_outcome_batch *cw_bus_take(struct cw_bus *bus, int64_t timeout_us);
/* Wakes waiters; publish frees what it is given from now on. */
void cw_bus_close(struct cw_bus *bus);

#endif
