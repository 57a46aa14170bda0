/*
 * engine.h - the write side wired together: store + command queue +
 * processor + update bus, for one process.
 *
 * The gateway, the CLI and the benchmarks all drive the engine through this
 * header: submit envelopes, read outcome batches from the bus.
 */
#ifndef CW_ENGINE_H
#define CW_ENGINE_H

#include "calderwood.h"
#include "processor.h"

struct cw_domain;
struct cw_engine;
struct cw_envelope;
struct cw_store;
struct cw_bus;

/* What one process runs (serve --role); see docs/ARCHITECTURE.md. */
enum cw_role {
    CW_ROLE_ALL,     /* everything, in one process (the default) */
    CW_ROLE_GATEWAY, /* sockets and sessions: commands out to the queue, updates in from the feed */
    CW_ROLE_PROCESSOR, /* the writer, active or standby: commands in, updates out */
    CW_ROLE_QUERY,     /* queries only */
};

/*
 * The PostgreSQL advisory lock processors compete for ("CWLEAD" in ASCII).
 * The CLI probes it too: a store a processor leads is written only through
 * the queue.
 */
#define CW_LEAD_KEY 0x43574C454144LL

/* "all", "gateway", "processor", "query". */
const char *cw_role_name(int role);
/* The role named name; -1 when none is. */
int cw_role_parse(const char *name);

struct cw_engine_config {
    const char *db_path;   /* the store URL (see cw_store_open) */
    size_t queue_capacity; /* commands waiting at most (default 65536) */
    size_t
        queue_pending; /* distributed: publishes awaiting JetStream's ack at most (default 4096) */
    size_t max_batch;  /* commands per transaction at most (default 4096) */
    size_t bus_capacity; /* committed batches waiting for the subscriber (default 1024) */
    cw_commit_observer_cb observer;
    void *observer_arg;
    bool no_migrate; /* refuse a database with migrations pending instead of applying them */
    int role;        /* enum cw_role */
    /*
     * NULL or "local": the in-process ring (role all only). nats://HOST:PORT[,...]:
     * the JetStream queue and the NATS update feed; the processor, in roles
     * all and processor, then leads only while it holds the store's lock.
     */
    const char *queue_url;
};

/*
 * Opens the store, applies migrations (or, with no_migrate, fails with
 * CW_ERR_STORE when any is pending), starts the processor. d is borrowed
 * and must outlive the engine. On failure nothing is left running.
 */
int cw_engine_open(const struct cw_engine_config *cfg, const struct cw_domain *d,
                   struct cw_engine **out, struct cw_error *err);

/*
 * Drains: refuses new commands, lets the processor commit what was queued
 * and publish the last outcomes, and stops it. The bus stays readable: the
 * subscriber must keep taking while this runs (a full bus blocks the
 * processor), and may take what is left afterwards. Idempotent.
 */
void cw_engine_drain(struct cw_engine *e);

/* Drains (if not done), then frees the bus and the queue and closes the store. */
void cw_engine_close(struct cw_engine *e);

/* cw_queue_put on the engine's queue: CW_OK (env taken), CW_ERR_OVERLOADED, CW_ERR_SHUTDOWN. */
int cw_engine_submit(struct cw_engine *e, struct cw_envelope *env);

/*
 * Whether cw_engine_submit_async is available (a distributed queue): the
 * gateway then streams a connection's commands without waiting for each.
 */
bool cw_engine_async(struct cw_engine *e);

/* cw_queue_put_async on the engine's queue (see queue.h for cb's contract). */
int cw_engine_submit_async(struct cw_engine *e, struct cw_envelope *env,
                           void (*cb)(void *arg, int rc), void *arg);

struct cw_bus *cw_engine_bus(struct cw_engine *e);
struct cw_store *cw_engine_store(struct cw_engine *e);
size_t cw_engine_queue_depth(struct cw_engine *e);
size_t cw_engine_queue_capacity(struct cw_engine *e);
void cw_engine_stats(struct cw_engine *e, struct cw_processor_stats *out);
/*
 * cw_processor_condition of the engine's processor (CW_CONDITION_OK once it
 * stopped). Like cw_engine_stats, not while another thread drains.
 */
int cw_engine_condition(struct cw_engine *e);

#endif
