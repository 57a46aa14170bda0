/*
 * feed.h - the update feed across processes (distributed mode): every
 * committed outcome batch, published by the active processor on NATS
 * (subject cw.updates) and fed by every gateway into its local update bus,
 * so audience routing (gateway/hub.c) is the same as in one process.
 *
 * Receiving, a gateway keeps the newest position it passed on. A batch
 * that starts past it (a message lost, a reconnection, a processor that
 * died between commit and publish) is preceded by the missing events, read
 * from the store; events at or below it are not passed on again as new.
 * A duplicate's events past it are the ones a dead processor committed
 * and never published: they go out as new. The processor's empty batches
 * (a heartbeat each second when idle, one when it takes the lead) carry
 * the log's last position, so a gap is filled even when nothing else comes.
 *
 * Ownership: publish takes the batch. Threads: publish on the processor
 * thread; the received batches are put on the bus from libnats' thread.
 */
#ifndef CW_FEED_H
#define CW_FEED_H

#include "calderwood.h"

struct cw_bus;
struct cw_domain;
struct cw_outcome_batch;
struct cw_store;
struct cw_feed;

struct cw_feed_config {
    const char *urls;          /* nats://HOST:PORT[,...] */
    const struct cw_domain *d; /* borrowed */
    uint64_t node;             /* this process: outcomes of other nodes lose their origin */
    struct cw_store *store;    /* to fill gaps from (receiving) */
    struct cw_bus *bus;        /* where received batches go; NULL: publish only */
};

int cw_feed_open(const struct cw_feed_config *cfg, struct cw_feed **out, struct cw_error *err);
/* Serialises b once and publishes it; takes b. A cw_batch_sink_cb. */
void cw_feed_publish(void *feed, struct cw_outcome_batch *b);
/* Stops receiving, closes the connection. Accepts NULL. */
void cw_feed_free(struct cw_feed *f);

#endif
