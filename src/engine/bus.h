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
 * The wake hooks run on the publisher's thread; a gateway thread passes one
 * that calls lws_cancel_service() on its context.
 *
 * Readers that a batch does not concern are passed over: a filter (set by
 * the gateway) names, for each batch, the reader tags it concerns; another
 * reader is not woken for it and skips it when it reads next, taking only
 * its position. A reader is woken when a batch that concerns it arrives
 * while it has read everything (once, not once per batch: it reads on
 * until cw_bus_read says there is nothing more).
 */
#ifndef CW_BUS_H
#define CW_BUS_H

#include <stddef.h>
#include <stdint.h>

struct cw_outcome_batch;
struct cw_bus;
struct cw_bus_reader;

typedef void (*cw_wake_cb)(void *arg);
/*
 * The tags of the readers batch b concerns (a bit each; see
 * cw_bus_reader_tag). Called on the publisher's thread with the bus locked,
 * before any reader can see b: it must not call the bus, and may annotate
 * b for its readers.
 */
typedef uint64_t (*cw_bus_filter_cb)(void *arg, struct cw_outcome_batch *b);

/* Readers a bus can have at most. */
#define CW_BUS_MAX_READERS 64

struct cw_bus *cw_bus_new(size_t max_batches);
/* Frees the bus, its readers and any batch not consumed. */
void cw_bus_free(struct cw_bus *bus);
/* Sets the wake hook of the take consumer. Call before the processor starts. */
void cw_bus_set_wake(struct cw_bus *bus, cw_wake_cb fn, void *arg);

/* Sets (or, with NULL, removes) the filter; without one every batch concerns every reader. */
void cw_bus_set_filter(struct cw_bus *bus, cw_bus_filter_cb fn, void *arg);

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
/* r reads the batches whose filter mask has a bit of tag (default: all of them). */
void cw_bus_reader_tag(struct cw_bus_reader *r, uint64_t tag);
/*
 * The highest event position published so far (0 before the first batch
 * with one). A reader that takes this after it began to be concerned by
 * something (see the filter) has every later batch about it delivered, and
 * every earlier one is at or below it.
 */
int64_t cw_bus_position(struct cw_bus *bus);
/*
 * The highest position r has passed: skipped, or read and done. Reader's
 * thread. *skipped, when not NULL, gets how many batches r skipped so far.
 */
int64_t cw_bus_passed(struct cw_bus_reader *r, uint64_t *skipped);
/*
 * The next batch that concerns r, or NULL (never waits); the ones before it
 * that do not are skipped. It is borrowed,
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
