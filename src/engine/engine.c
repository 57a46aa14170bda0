/*
 * engine.c - store + queue + processor + bus for one process (see engine.h).
 */
#include "engine.h"
#include "bus.h"
#include "core/alloc.h"
#include "queue.h"
#include "store/store.h"

#include <stdlib.h>

struct cw_engine {
    struct cw_store *store;
    struct cw_queue *queue;
    struct cw_bus *bus;
    struct cw_processor *processor;
};

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
    e->queue = cw_queue_new(cfg->queue_capacity ? cfg->queue_capacity : 65536);
    e->bus = cw_bus_new(cfg->bus_capacity ? cfg->bus_capacity : 1024);
    struct cw_processor_config pc = {
        .max_batch = cfg->max_batch ? cfg->max_batch : 4096,
        .observer = cfg->observer,
        .observer_arg = cfg->observer_arg,
    };
    rc = cw_processor_start(e->store, d, e->queue, e->bus, &pc, &e->processor);
    if (rc) {
        cw_error_set(err, rc, NULL, "cannot start the processor thread");
        goto fail;
    }
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
    cw_bus_free(e->bus);
    cw_queue_free(e->queue);
    cw_store_close(e->store);
    free(e);
}

int cw_engine_submit(struct cw_engine *e, struct cw_envelope *env)
{
    return cw_queue_put(e->queue, env);
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
