/*
 * harness.h - drives the engine through its public interfaces for unit and
 * integration tests: a fresh data directory, a real store, the real queue,
 * processor and update bus. Header-only so each test binary stays a single
 * file. CW_TEST_KEEP=1 keeps the directory (and database) of every run.
 *
 * The store is a SQLite file in the directory, unless CW_TEST_STORE holds
 * a postgres:// URL of a maintenance database (tests/pg/cluster.sh start):
 * each test then gets a database of its own, created here and dropped at
 * cleanup.
 */
#ifndef CW_TEST_HARNESS_H
#define CW_TEST_HARNESS_H

#include "calderwood.h"
#include "core/registry.h"
#include "core/validate.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "query/query.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct harness {
    char dir[256];
    char db_path[1024]; /* the store URL: the SQLite file, or a postgres:// URL */
    char pg_db[64];     /* the test's own PostgreSQL database, or "" */
    struct cw_domain *d;
    struct cw_engine *e;
    struct cw_db *reader;
    struct cw_engine_config cfg;
};

typedef int (*harness_register_cb)(struct cw_domain *d);

/* Is the test's store PostgreSQL (CW_TEST_STORE=postgres://...)? */
static inline bool harness_pg(void)
{
    const char *url = getenv("CW_TEST_STORE");
    return url && strncmp(url, "postgres", 8) == 0;
}

/* Runs sql on CW_TEST_STORE's maintenance database; aborts when it fails. */
static inline void harness_pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(getenv("CW_TEST_STORE"));
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* URL with its database name (the path) replaced by name. */
static inline void harness_pg_url(char *out, size_t n, const char *url, const char *name)
{
    const char *auth = strstr(url, "://") + 3;
    const char *path = auth + strcspn(auth, "/?");
    const char *rest = path + strcspn(path, "?");
    snprintf(out, n, "%.*s/%s%s", (int)(path - url), url, name, rest);
}

/* With CW_TEST_STORE=postgres://..., a fresh database for this test. */
static inline void harness_pg_create(struct harness *h)
{
    if (!harness_pg())
        return;
    static int serial;
    snprintf(h->pg_db, sizeof(h->pg_db), "cwt_%d_%d", (int)getpid(), ++serial);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", h->pg_db);
    harness_pg_admin(sql);
    harness_pg_url(h->db_path, sizeof(h->db_path), getenv("CW_TEST_STORE"), h->pg_db);
}

/* Removes the directory and drops the database, unless CW_TEST_KEEP is set. */
static inline void harness_cleanup(struct harness *h)
{
    if (getenv("CW_TEST_KEEP")) {
        fprintf(stderr, "harness: kept %s %s\n", h->dir, h->pg_db);
        return;
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "harness: could not remove %s\n", h->dir);
    if (h->pg_db[0]) {
        snprintf(cmd, sizeof(cmd), "DROP DATABASE %s WITH (FORCE)", h->pg_db);
        harness_pg_admin(cmd);
        h->pg_db[0] = '\0';
    }
}

/* Makes a fresh directory under $TMPDIR (or /tmp). */
static inline void harness_mkdir(struct harness *h)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(h->dir, sizeof(h->dir), "%s/cw-test-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(h->dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(h->db_path, sizeof(h->db_path), "%s/calderwood.db", h->dir);
    harness_pg_create(h);
}

/* Builds a domain: the built-in queries plus whatever reg registers (may be NULL). */
static inline struct cw_domain *harness_domain(harness_register_cb reg)
{
    struct cw_domain *d = cw_domain_new();
    if (cw_query_register_builtins(d) || (reg && reg(d))) {
        fprintf(stderr, "harness: domain registration failed\n");
        abort();
    }
    return d;
}

/* Starts the engine on h->db_path with h->cfg (zeroed fields take defaults). */
static inline int harness_start(struct harness *h, struct cw_error *err)
{
    h->cfg.db_path = h->db_path;
    int rc = cw_engine_open(&h->cfg, h->d, &h->e, err);
    if (rc)
        return rc;
    return cw_store_reader_open(cw_engine_store(h->e), &h->reader, err);
}

/* Fresh directory, domain and engine; aborts on failure. */
static inline void harness_open(struct harness *h, harness_register_cb reg)
{
    memset(h, 0, sizeof(*h));
    harness_mkdir(h);
    h->d = harness_domain(reg);
    struct cw_error err = {0};
    if (harness_start(h, &err)) {
        fprintf(stderr, "harness: engine start failed: %s\n", err.message);
        abort();
    }
}

/* Stops the engine, keeping the directory and domain (for a restart). */
static inline void harness_stop(struct harness *h)
{
    cw_db_close(h->reader);
    h->reader = NULL;
    cw_engine_close(h->e);
    h->e = NULL;
}

static inline void harness_close(struct harness *h)
{
    harness_stop(h);
    cw_domain_free(h->d);
    h->d = NULL;
    harness_cleanup(h);
}

/*
 * Coerces, prepares and submits one command as the gateway would. Takes
 * ownership of data. Returns the first failing result (err filled), or the
 * queue's answer.
 */
static inline int harness_submit(struct harness *h, const char *name, const char *user_uuid,
                                 const char *client_id, int64_t seq, json_t *data,
                                 struct cw_error *err)
{
    const struct cw_command_def *def = NULL;
    int rc = cw_coerce_command(h->d, name, data, true, &def, err);
    if (!rc && def->prepare)
        rc = def->prepare(data, err);
    if (rc) {
        json_decref(data);
        return rc;
    }
    struct cw_envelope *env =
        cw_envelope_new(def, user_uuid, client_id, seq, data, NULL, (uint64_t)seq);
    rc = cw_engine_submit(h->e, env);
    if (rc)
        cw_envelope_free(env);
    return rc;
}

/*
 * Collects outcomes from the bus until n have arrived (or 10 s pass); moves
 * them into out (caller releases each with cw_outcome_release). Returns how
 * many arrived.
 */
static inline size_t harness_collect(struct harness *h, struct cw_outcome *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct cw_outcome_batch *b = cw_bus_take(cw_engine_bus(h->e), 10 * 1000000);
        if (!b)
            break;
        for (size_t i = 0; i < b->n; i++) {
            if (got < n)
                out[got++] = b->items[i];
            else
                cw_outcome_release(&b->items[i]);
        }
        b->n = 0;
        cw_outcome_batch_free(b);
    }
    return got;
}

/* Runs a query as user_uuid; returns the result (caller frees) or NULL with err filled. */
static inline json_t *harness_query(struct harness *h, const char *name, json_t *data,
                                    const char *user_uuid, struct cw_error *err)
{
    json_t *result = NULL;
    int rc = cw_query_run(h->d, h->reader, name, data, user_uuid, &result, err);
    return rc ? NULL : result;
}

#endif
