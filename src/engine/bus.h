/*
 * bus.h - the local update bus: committed outcome batches from the
 * processor, in commit order, to one consumer or to several readers that
 * each get every batch.
 *
 * Two ways to consume, chosen before the processor starts:
 *  - take: one consumer owns each batch it takes (the CLI, the tests, the
 *    benchmarks);
 *  - readers: each cw_bus_subscribe()d reader (a gateway thread) reads every
 *    batch, in order, borrowed; a batch is freed once every reader is done
 *    with it.
 *
 * Bounded: when the slowest consumer falls max_batches behind, publish
 * waits, so a slow gateway slows the processor instead of growing the heap.
 * The wake hooks run on the publisher's thread after each publish; a
 * gateway thread passes one that calls lws_cancel_service() on its context.
 */
#ifndef CW_BUS_H
#define CW_BUS_H

#include <stddef.h>
#include <stdint.h>

struct cw_outcome_batch;
struct cw_bus;
struct cw_bus_reader;

typedef void (*cw_wake_cb)(void *arg);

/* Readers a bus can have at most. */
#define CW_BUS_MAX_READERS 64

struct cw_bus *cw_bus_new(size_t max_batches);
/* Frees the bus, its readers and any batch not consumed. */
void cw_bus_free(struct cw_bus *bus);
/* Sets the wake hook of the take consumer. Call before the processor starts. */
void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg);

/* Takes ownership of b. Waits while the bus is full, unless closed (then b is freed). */
void cw_bus_publish(struct cw_bus *bus, struct cw_outcome_batch *b);
/*
 * The oldest batch, now the caller's, or NULL after waiting up to
 * timeout_us (0: do not wait; < 0: forever). Only on a bus without readers.
 */
struct cw_outcome_batch *cw_bus_take(struct cw_bus *bus, int64_t timeout_us);
/* Wakes waiters; publish frees what it is given from now on. */
void cw_bus_close(struct cw_bus *bus);

/*
 * Adds a reader that gets every batch published from now on; fn(arg) is
 * called after each publish (and on close). Call before the processor
 * starts; NULL when CW_BUS_MAX_READERS are there. The reader belongs to the
 * bus.
 */
struct cw_bus_reader *cw_bus_subscribe(struct cw_bus *bus, cw_wake_cb fn, void *arg);
/*
 * The next batch r has not read, or NULL (never waits). It is borrowed,
 * read-only (other readers read it at the same time), until cw_bus_done(r).
 * Reader's thread.
 */
const struct cw_outcome_batch *cw_bus_read(struct cw_bus_reader *r);
/* r is finished with the batch cw_bus_read gave it last. Reader's thread. */
void cw_bus_done(struct cw_bus_reader *r);
/*
 * r reads no more: what it had not finished is released, and its wake
 * callback is never called again once this returns (a gateway thread leaves
 * before it destroys what the callback wakes). Frees r. Reader's thread.
 */
void cw_bus_leave(struct cw_bus_reader *r);

#endif
