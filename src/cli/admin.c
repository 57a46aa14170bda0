/*
 * admin.c - how the CLI's administration subcommands reach the data (see
 * src/admin/admin.h): a writing one goes to the running server's admin
 * socket when `calderwood serve` holds the data directory, and is run here,
 * under the directory's lock with an engine of this process, when nothing
 * does; a reading one (user list, session list) reads a snapshot of the
 * store directly, server or not. In a distributed deployment (--queue
 * nats://) a writing one goes through the queue instead (admin_queue.c).
 */
#include "admin/admin.h"
#include "cli.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/registry.h"
#include "engine/engine.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a writing subcommand waits for a starting server to open its socket. */
#define SERVER_WAIT_US (30 * 1000000LL)

/* Runs the command here: the directory is ours (locked). */
static int run_here(struct cw_cli_common *c, const char *command, json_t *data, json_t **answer,
                    struct cw_error *err)
{
    struct cw_domain *d = NULL;
    struct cw_engine *e = NULL;
    struct cw_store *lead = NULL; /* held while this process writes */
    int rc = cw_cli_hold_lead(c, &lead, err);
    if (!rc)
        rc = cw_cli_domain(c, &d, err);
    struct cw_engine_config cfg = {.db_path = c->store_url};
    if (!rc)
        rc = cw_engine_open(&cfg, d, &e, err);
    if (!rc) {
        json_t *meta = json_pack("{s:{s:i,s:i,s:s}}", "admin", "uid", (json_int_t)getuid(), "pid",
                                 (json_int_t)getpid(), "via", "local");
        *answer = cw_admin_run_take(e, d, command, data, meta, NULL);
        data = NULL;
    }
    json_decref(data);
    cw_engine_close(e);
    cw_domain_free(d);
    cw_store_close(lead);
    return rc;
}

int cw_cli_admin(struct cw_cli_common *c, const char *what, const char *command, json_t *data,
                 json_t **answer, struct cw_error *err)
{
    if (c->queue && strcmp(c->queue, "local"))
        return cw_cli_admin_queue(c, command, data, answer, err);
    int64_t deadline = cw_mono_us() + SERVER_WAIT_US;
    for (;;) {
        int rc = cw_cli_lock(c, what, err);
        if (!rc)
            return run_here(c, command, data, answer, err);
        if (rc != CW_ERR_EXISTS || !cw_cli_lock_held_by_serve(c)) {
            json_decref(data);
            return rc;
        }
        struct cw_error call_err = {0};
        rc = cw_admin_call(c->data_dir, command, data, answer, &call_err);
        if (rc != CW_ERR_NOT_FOUND || cw_mono_us() > deadline) {
            if (rc == CW_ERR_NOT_FOUND) /* a server that never opened its socket */
                cw_error_set(err, rc, NULL, "the server holding %s does not answer: %s",
                             c->data_dir, call_err.message);
            else if (rc)
                cw_error_copy(err, &call_err);
            cw_error_release(&call_err);
            json_decref(data);
            return rc;
        }
        /* The server is starting (migrating) or stopping: wait, then look again. */
        cw_error_release(&call_err);
        usleep(100 * 1000);
    }
}

int cw_cli_admin_refused(const json_t *answer)
{
    const json_t *detail = json_array_get(json_object_get(answer, "details"), 0);
    const char *code = json_string_value(json_object_get(answer, "code"));
    if (detail)
        fprintf(stderr, "calderwood: %s %s\n", json_string_value(json_object_get(detail, "field")),
                json_string_value(json_object_get(detail, "reason")));
    else
        fprintf(stderr, "calderwood: %s (%s)\n",
                json_string_value(json_object_get(answer, "message")), code ? code : "error");
    return 1;
}

size_t cw_cli_count_events(const json_t *answer, const char *name)
{
    size_t n = 0, i;
    json_t *ev;
    json_array_foreach(json_object_get(answer, "events"), i, ev)
    {
        const char *ev_name = json_string_value(json_object_get(ev, "name"));
        if (ev_name && !strcmp(ev_name, name))
            n++;
    }
    return n;
}

int cw_cli_open_reader(struct cw_cli_common *c, struct cw_domain **d, struct cw_store **s,
                       struct cw_error *err)
{
    struct cw_store_options so = {.read_only = true};
    int pending = 0;
    char first[128] = "";
    int rc = cw_cli_prepare(c, false, err);
    if (!rc)
        rc = cw_cli_domain(c, d, err);
    if (!rc)
        rc = cw_store_open(c->store_url, &so, s, err);
    if (!rc)
        rc = cw_store_check_migrations(*s, *d, &pending, first, sizeof(first), err);
    if (!rc && pending)
        rc = cw_error_set(err, CW_ERR_STORE, NULL,
                          "%s has %d migration%s pending (the first: %s): run calderwood migrate",
                          c->store_label, pending, pending == 1 ? "" : "s", first);
    if (!rc)
        cw_store_set_domain(*s, *d);
    return rc;
}

void cw_cli_format_time(int64_t us, char *out, size_t len)
{
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    if (!us || !gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, len, "-");
}
