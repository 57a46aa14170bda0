/*
 * serve.c - `calderwood serve`: opens the data directory, applies
 * migrations, starts the engine and runs until SIGINT or SIGTERM, then
 * drains the command queue and exits 0.
 */
#include "auth/secret.h"
#include "cli.h"
#include "core/log.h"
#include "core/registry.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/update.h"

#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct serve_options {
    struct cw_cli_common c;
    const char *secret_key_file;
    int64_t queue_capacity, max_batch;
};

/* Until the gateway subscribes, committed outcomes are consumed and dropped here. */
static void *consume(void *arg)
{
    struct cw_bus *bus = arg;
    struct cw_outcome_batch *b;
    while ((b = cw_bus_take(bus, -1)))
        cw_outcome_batch_free(b);
    return NULL;
}

static int serve(struct serve_options *o, struct cw_error *err)
{
    char key_path[4200];
    unsigned char key[CW_SECRET_LEN];
    bool created;
    struct cw_domain *d = NULL;
    struct cw_engine *e = NULL;
    int rc = cw_cli_prepare(&o->c, true, err);
    if (!rc) {
        snprintf(key_path, sizeof(key_path), "%s/secret.key", o->c.data_dir);
        rc = cw_secret_load(o->secret_key_file ? o->secret_key_file : key_path, key, &created,
                            err);
    }
    if (!rc)
        rc = cw_cli_domain(&o->c, &d, err);
    struct cw_engine_config cfg = {
        .db_path = o->c.db_path,
        .queue_capacity = (size_t)o->queue_capacity,
        .max_batch = (size_t)o->max_batch,
    };
    if (!rc)
        rc = cw_engine_open(&cfg, d, &e, err);
    if (rc) {
        cw_domain_free(d);
        return rc;
    }
    if (created)
        cw_info("secret.created", "path=%s", o->secret_key_file ? o->secret_key_file : key_path);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_t consumer;
    pthread_create(&consumer, NULL, consume, cw_engine_bus(e));
    cw_info("serve.started", "data=%s commands=%zu queries=%zu", o->c.data_dir, d->n_commands,
            d->n_queries);
    int sig = 0;
    sigwait(&stop, &sig);
    cw_info("serve.stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cw_engine_drain(e);
    cw_bus_close(cw_engine_bus(e));
    pthread_join(consumer, NULL);
    cw_engine_close(e);
    cw_domain_free(d);
    sodium_memzero(key, sizeof(key));
    cw_info("serve.stopped", "status=clean");
    return CW_OK;
}

int cw_cli_serve(int argc, char **argv)
{
    struct serve_options o = {0};
    const struct cw_option opts[] = {
        CW_CLI_COMMON_OPTIONS(&o.c),
        {"secret-key-file", CW_OPT_STRING, &o.secret_key_file, NULL, 0, 0, "FILE",
         "the 32-byte key sealing cookies (default DIR/secret.key, made on first start)"},
        {"queue-capacity", CW_OPT_INT, &o.queue_capacity, "65536", 1, 1 << 24, "N",
         "commands waiting for the processor at most; beyond, clients get `overloaded`"},
        {"max-batch", CW_OPT_INT, &o.max_batch, "4096", 1, 65536, "N",
         "commands per write transaction at most"},
        {0},
    };
    int code;
    if (!cw_cli_parse("usage: calderwood serve [options]", opts, argc, argv, NULL, &code))
        return code;
    /* Block the stop signals in every thread; serve() waits for them with sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct cw_error err = {0};
    return serve(&o, &err) ? cw_cli_fail(&err) : 0;
}
