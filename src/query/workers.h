/*
 * workers.h - the worker pool: slow or disk-bound work off the event loop.
 *
 * Password checks, queries, slow command preparation, idempotency look-ups
 * and resume catch-up run here, each worker on its own read connection.
 * A job's run() runs on a worker; its done() runs later on the thread that
 * calls cw_workers_complete() (the gateway's loop), which the pool wakes
 * through the hook it was given after each finished job.
 *
 * Ownership: a submitted job belongs to the pool until done() is called;
 * done() takes it back (and usually frees it). Jobs left at stop get
 * done() with cancelled set, so nothing leaks.
 */
#ifndef CW_WORKERS_H
#define CW_WORKERS_H

#include "calderwood.h"

struct cw_store;
struct cw_workers;

struct cw_job {
    void (*run)(struct cw_job *job, struct cw_db *db); /* worker thread */
    void (*done)(struct cw_job *job, bool cancelled);  /* loop thread */
    struct cw_job *next;                               /* owned by the pool */
};

typedef void (*cw_workers_wake_cb)(void *arg);

/* Starts n workers, each with a reader of store. capacity bounds waiting jobs. */
int cw_workers_start(struct cw_store *store, int n, size_t capacity, cw_workers_wake_cb wake,
                     void *wake_arg, struct cw_workers **out, struct cw_error *err);
/* Queues job; CW_ERR_OVERLOADED when capacity jobs already wait (job stays the caller's). */
int cw_workers_submit(struct cw_workers *w, struct cw_job *job);
/* Calls done() of every finished job, in finishing order. Loop thread. */
void cw_workers_complete(struct cw_workers *w);
/* Jobs queued or running. */
size_t cw_workers_pending(struct cw_workers *w);
/* Stops the threads after the jobs they run; completes everything (cancelled for the unrun). */
void cw_workers_stop(struct cw_workers *w);

#endif
