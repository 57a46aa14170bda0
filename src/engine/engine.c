/*
 * engine.c - store + queue + processor + bus for one process (see engine.h).
 */
#include "engine.h"
#include "bus.h"
#include "core/alloc.h"
#include "feed.h"
#include "queue.h"
#include "store/store.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct cw_engine {
    struct cw_store *store;
    struct cw_queue *queue;
    struct cw_bus *bus;
    struct cw_processor *processor;
    struct cw_feed *feed_in, *feed_out; /* distributed mode */
};

static const char *const role_names[] = {"all", "gateway", "processor", "query"};

const char *cw_role_name(int role)
{
    return role >= 0 && role <= CW_ROLE_QUERY ? role_names[role] : "?";
}

int cw_role_parse(const char *name)
{
    for (int i = 0; i <= CW_ROLE_QUERY; i++)
        if (!strcmp(name, role_names[i]))
            return i;
    return -1;
}

static bool distributed(const struct cw_engine_config *cfg)
{
    return cfg->queue_url && strcmp(cfg->queue_url, "local");
}

/*
 * The queue, the feed and the processor a role needs. Distributed: every
 * role but query publishes or pulls commands on JetStream; a gateway
 * receives the feed; a processor publishes it and leads by the store's lock.
 */
static int open_parts(struct cw_engine *e, const struct cw_engine_config *cfg,
                      const struct cw_domain *d, struct cw_error *err)
{
    bool dist = distributed(cfg);
    bool processes = cfg->role == CW_ROLE_ALL || cfg->role == CW_ROLE_PROCESSOR;
    bool receives = cfg->role != CW_ROLE_PROCESSOR; /* sessions too, for a query node */
    size_t cap = cfg->queue_capacity ? cfg->queue_capacity : 65536;
    uint64_t node = 0;
    randombytes_buf(&node, sizeof(node));
    node |= 1; /* never 0, which means "this process" */
    int rc = CW_OK;
    if (!dist && cfg->role != CW_ROLE_ALL)
        return cw_error_set(err, CW_ERR_INVALID, NULL,
                            "--role %s needs a distributed queue (--queue nats://HOST:PORT)",
                            cw_role_name(cfg->role));
    if (!dist) {
        e->queue = cw_queue_new(cap);
    } else {
        struct cw_queue_nats_config qc = {
            .urls = cfg->queue_url,
            .d = d,
            .node = node,
            .consume = processes,
            .capacity = cap,
            .max_pending = cfg->queue_pending,
        };
        rc = cw_queue_nats_open(&qc, &e->queue, err);
    }
    struct cw_feed_config fc = {
        .urls = cfg->queue_url, .d = d, .node = node, .store = e->store, .bus = e->bus};
    if (!rc && dist && receives)
        rc = cw_feed_open(&fc, &e->feed_in, err);
    fc.bus = NULL;
    if (!rc && dist && processes)
        rc = cw_feed_open(&fc, &e->feed_out, err);
    if (rc || !processes)
        return rc;
    struct cw_processor_config pc = {
        .max_batch = cfg->max_batch ? cfg->max_batch : 4096,
        .observer = cfg->observer,
        .observer_arg = cfg->observer_arg,
        .sink = dist ? cw_feed_publish : NULL,
        .sink_arg = e->feed_out,
        .lead = dist,
        .lead_key = CW_LEAD_KEY,
        .heartbeat_us = dist ? 1000000 : 0,
    };
    rc = cw_processor_start(e->store, d, e->queue, e->bus, &pc, &e->processor);
    if (rc)
        cw_error_set(err, rc, NULL, "cannot start the processor thread");
    return rc;
}

static int refuse_pending(struct cw_store *s, const char *path, const struct cw_domain *d,
                          struct cw_error *err)
{
    char first[256];
    int pending;
    int rc = cw_store_check_migrations(s, d, &pending, first, sizeof(first), err);
    if (!rc && pending)
        rc = cw_error_set(err, CW_ERR_STORE, NULL,
                          "%s has %d migration%s pending (the first: %s) and --no-migrate was "
                          "given: run `calderwood migrate` first",
                          path, pending, pending == 1 ? "" : "s", first);
    return rc;
}

int cw_engine_open(const struct cw_engine_config *cfg, const struct cw_domain *d,
                   struct cw_engine **out, struct cw_error *err)
{
    struct cw_engine *e = cw_xcalloc(1, sizeof(*e));
    int rc = cw_store_open(cfg->db_path, NULL, &e->store, err);
    if (rc)
        goto fail;
    cw_store_set_domain(e->store, d);
    rc = cfg->no_migrate ? refuse_pending(e->store, cfg->db_path, d, err)
                         : cw_store_migrate(e->store, d, NULL, err);
    if (rc)
        goto fail;
    e->bus = cw_bus_new(cfg->bus_capacity ? cfg->bus_capacity : 1024);
    rc = open_parts(e, cfg, d, err);
    if (rc)
        goto fail;
    *out = e;
    return CW_OK;
fail:
    cw_engine_close(e);
    return rc;
}

void cw_engine_drain(struct cw_engine *e)
{
    if (e->queue)
        cw_queue_close(e->queue);
    cw_processor_stop(e->processor);
    e->processor = NULL;
}

void cw_engine_close(struct cw_engine *e)
{
    if (!e)
        return;
    cw_engine_drain(e);
    if (e->bus)
        cw_bus_close(e->bus); /* a feed blocked on a full bus lets go */
    cw_feed_free(e->feed_in);
    cw_feed_free(e->feed_out);
    cw_bus_free(e->bus);
    cw_queue_free(e->queue);
    cw_store_close(e->store);
    free(e);
}

int cw_engine_submit(struct cw_engine *e, struct cw_envelope *env)
{
    if (!e->queue)
        return CW_ERR_SHUTDOWN;
    return cw_queue_put(e->queue, env);
}

bool cw_engine_async(struct cw_engine *e)
{
    return e->queue && cw_queue_async(e->queue);
}

int cw_engine_submit_async(struct cw_engine *e, struct cw_envelope *env,
                           void (*cb)(void *arg, int rc), void *arg)
{
    if (!e->queue)
        return CW_ERR_SHUTDOWN;
    return cw_queue_put_async(e->queue, env, cb, arg);
}

struct cw_bus *cw_engine_bus(struct cw_engine *e)
{
    return e->bus;
}

struct cw_store *cw_engine_store(struct cw_engine *e)
{
    return e->store;
}

size_t cw_engine_queue_depth(struct cw_engine *e)
{
    return cw_queue_depth(e->queue);
}

size_t cw_engine_queue_capacity(struct cw_engine *e)
{
    return cw_queue_capacity(e->queue);
}

void cw_engine_stats(struct cw_engine *e, struct cw_processor_stats *out)
{
    if (e->processor)
        cw_processor_stats(e->processor, out);
    else
        *out = (struct cw_processor_stats){0};
}

int cw_engine_condition(struct cw_engine *e)
{
    return e->processor ? cw_processor_condition(e->processor) : CW_CONDITION_OK;
}
