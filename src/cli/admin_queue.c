/*
 * admin_queue.c - the CLI's writing subcommands in a distributed
 * deployment (see cli.h). There the active processor must stay the only
 * writer and every gateway must hear the events, so the command goes the
 * way a client's does: onto the JetStream queue. The CLI is no node the
 * feed routes outcomes to, so it learns the outcome where the processor
 * leaves it for good: the command log of the shared store, found by the
 * command's idempotency key ("", "admin:UUID", 0).
 *
 * The other half: a CLI that writes a PostgreSQL store itself first takes
 * the processors' lead lock, so it never writes beside an active processor.
 */
#include "admin/admin.h"
#include "cli.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/registry.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/queue.h"
#include "engine/update.h"
#include "store/store.h"

#include <sodium.h>
#include <string.h>
#include <unistd.h>

#define OUTCOME_WAIT_US (30 * 1000000LL)
#define POLL_US         (100 * 1000)

static bool is_postgres(const struct cw_cli_common *c)
{
    return !strncmp(c->store_url, "postgres", 8);
}

int cw_cli_hold_lead(struct cw_cli_common *c, struct cw_store **probe, struct cw_error *err)
{
    *probe = NULL;
    if (!is_postgres(c))
        return CW_OK;
    struct cw_store_options so = {.read_only = true};
    bool held = false;
    int rc = cw_store_open(c->store_url, &so, probe, err);
    if (!rc)
        rc = cw_db_try_lead(cw_store_writer(*probe), CW_LEAD_KEY, &held, err);
    if (!rc && !held)
        rc = cw_error_set(err, CW_ERR_EXISTS, NULL,
                          "an active processor leads %s: send the command through its queue "
                          "(--queue nats://HOST:PORT)",
                          c->store_label);
    if (rc) {
        cw_store_close(*probe);
        *probe = NULL;
    }
    return rc;
}

/* Publishes env (taken either way) on the JetStream queue at c->queue. */
static int publish(struct cw_cli_common *c, const struct cw_domain *d, struct cw_envelope *env,
                   struct cw_error *err)
{
    struct cw_queue *q = NULL;
    struct cw_queue_nats_config qc = {.urls = c->queue, .d = d, .consume = false};
    randombytes_buf(&qc.node, sizeof(qc.node));
    qc.node |= 1; /* a node no gateway is: the feed's copy of the outcome goes nowhere */
    int rc = cw_queue_nats_open(&qc, &q, err);
    if (!rc) {
        rc = cw_queue_put(q, env);
        if (rc)
            cw_error_set(err, rc, NULL, "the queue at %s refused the command (%s): try again",
                         c->queue, cw_result_name(rc));
    }
    if (rc)
        cw_envelope_free(env);
    cw_queue_free(q);
    return rc;
}

/* Only what the subcommands print from: each event's name and data. */
static int add_event(const struct cw_event *ev, void *arg)
{
    json_array_append_new(arg, json_pack("{s:s,s:O}", "name", ev->name, "data", ev->data));
    return CW_OK;
}

/* The answer cw_admin_run_take would have given for the logged outcome rec. */
static int answer_of(struct cw_db *db, const struct cw_command_record *rec, json_t **answer,
                     struct cw_error *err)
{
    if (rec->rejected) {
        *answer = json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "code", rec->reject_code, "message",
                            rec->reject_message, "command_uuid", rec->uuid);
        return CW_OK;
    }
    json_t *events = json_array();
    int rc = rec->first_position
                 ? cw_db_scan_events(db, rec->first_position - 1, rec->last_position, NULL, NULL,
                                     add_event, events, err)
                 : CW_OK;
    if (rc) {
        json_decref(events);
        return rc;
    }
    *answer = json_pack("{s:b,s:s,s:o}", "ok", 1, "command_uuid", rec->uuid, "events", events);
    return CW_OK;
}

/* Polls the command log until client_id's command has an outcome, or 30 s went by. */
static int await_outcome(struct cw_cli_common *c, const struct cw_domain *d, const char *client_id,
                         json_t **answer, struct cw_error *err)
{
    struct cw_store *s = NULL;
    struct cw_store_options so = {.read_only = true};
    int rc = cw_store_open(c->store_url, &so, &s, err);
    if (rc)
        return rc;
    cw_store_set_domain(s, d);
    struct cw_db *db = cw_store_writer(s);
    int64_t deadline = cw_mono_us() + OUTCOME_WAIT_US;
    struct cw_error last = {0};
    for (;;) {
        struct cw_command_record rec = {0};
        cw_error_release(&last);
        rc = cw_store_find_command(db, "", client_id, 0, &rec, &last);
        if (!rc) {
            rc = answer_of(db, &rec, answer, err);
            break;
        }
        /* Not there yet, or the store away for a moment (a restart): both may pass. */
        if (cw_mono_us() > deadline) {
            rc = cw_error_set(err, CW_ERR_AGAIN, NULL,
                              "queued, but no outcome within 30 s (%s): it runs once a "
                              "processor is active; its client id is %s",
                              rc == CW_ERR_NOT_FOUND ? "is a processor running?" : last.message,
                              client_id);
            break;
        }
        usleep(POLL_US);
    }
    cw_error_release(&last);
    cw_store_close(s);
    return rc;
}

int cw_cli_admin_queue(struct cw_cli_common *c, const char *command, json_t *data, json_t **answer,
                       struct cw_error *err)
{
    if (strncmp(c->queue, "nats://", 7)) {
        json_decref(data);
        return cw_error_set(err, CW_ERR_INVALID, NULL,
                            "--queue must be local or nats://HOST:PORT[,...], not %s", c->queue);
    }
    if (!is_postgres(c)) {
        json_decref(data);
        return cw_error_set(err, CW_ERR_INVALID, NULL,
                            "--queue %s needs the deployment's PostgreSQL store (--store "
                            "postgres://...), where the outcome is read",
                            c->queue);
    }
    struct cw_domain *d = NULL;
    int rc = cw_cli_domain(c, &d, err);
    if (rc) {
        json_decref(data);
        return rc;
    }
    json_t *meta = json_pack("{s:{s:i,s:i,s:s}}", "admin", "uid", (json_int_t)getuid(), "pid",
                             (json_int_t)getpid(), "via", "queue");
    struct cw_envelope *env = NULL;
    *answer = cw_admin_envelope_take(d, command, data, meta, &env);
    if (!*answer) {
        char client_id[CW_UUID_LEN + 8];
        snprintf(client_id, sizeof(client_id), "%s", env->cmd.client_id);
        rc = publish(c, d, env, err);
        if (!rc)
            rc = await_outcome(c, d, client_id, answer, err);
    }
    cw_domain_free(d);
    return rc;
}
