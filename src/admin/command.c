/*
 * command.c - one administration command through an engine (see admin.h).
 *
 * The command is checked, prepared and queued on the calling thread, like a
 * client's on the gateway's; its outcome comes back through the envelope's
 * done hook on the processor thread, which turns it into the answer and
 * wakes the caller. The ticket they share is counted, so neither side has
 * to outlive the other: a caller that stops waiting leaves the answer to
 * be freed by the hook.
 */
#include "admin.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/validate.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const allowed[] = {
    "register-user", "change-password",   "disable-user", "enable-user",
    "end-session",   "end-user-sessions", NULL,
};

bool cw_admin_allowed(const char *name)
{
    for (const char *const *a = allowed; name && *a; a++)
        if (!strcmp(*a, name))
            return true;
    return false;
}

json_t *cw_admin_refusal(const char *code, const char *message)
{
    return json_pack("{s:b,s:s,s:s}", "ok", 0, "code", code, "message", message);
}

static json_t *refusal_of(int rc, const struct cw_error *err)
{
    json_t *a = cw_admin_refusal(err->code[0] ? err->code : cw_result_code(rc),
                                 err->message[0] ? err->message : cw_result_name(rc));
    if (err->details)
        json_object_set(a, "details", err->details);
    return a;
}

/* ------------------------------------------------------------- ticket */

struct ticket {
    atomic_int refs; /* the caller's and the envelope's */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    json_t *answer; /* {lock}: set once, by the done hook */
};

static void ticket_unref(struct ticket *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    json_decref(t->answer);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* The answer to a committed or rejected command. */
static json_t *answer_of(const struct cw_outcome *o)
{
    if (o->rejected) {
        json_t *a = refusal_of(CW_ERR_REJECTED, &o->reject);
        json_object_set_new(a, "command_uuid", json_string(o->command_uuid));
        return a;
    }
    json_t *events = json_array();
    for (size_t i = 0; i < o->n_events; i++) {
        /* The update frame is ["update", CLIENT_ID, CLIENT_SEQ, EVENT], private fields out. */
        json_t *frame = json_loads(o->events[i]->frame, 0, NULL);
        json_array_append(events, json_array_get(frame, 3));
        json_decref(frame);
    }
    return json_pack("{s:b,s:s,s:o}", "ok", 1, "command_uuid", o->command_uuid, "events", events);
}

/* Processor thread (or whoever frees an unprocessed envelope). */
static void on_done(const struct cw_outcome *o, void *arg)
{
    struct ticket *t = arg;
    json_t *a =
        o ? answer_of(o)
          : cw_admin_refusal("not-processed", "the server stopped before it processed the command");
    pthread_mutex_lock(&t->lock);
    t->answer = a;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    ticket_unref(t);
}

/* Waits for t's answer, looking at *stop every 100 ms. */
static json_t *wait_answer(struct ticket *t, const atomic_bool *stop)
{
    pthread_mutex_lock(&t->lock);
    while (!t->answer && !(stop && atomic_load(stop))) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    json_t *a = t->answer;
    t->answer = NULL;
    pthread_mutex_unlock(&t->lock);
    return a ? a
             : cw_admin_refusal("stopping", "the server stopped before the command's outcome was "
                                            "known: see `calderwood events`");
}

/* ---------------------------------------------------------------- run */

json_t *cw_admin_envelope_take(const struct cw_domain *d, const char *name, json_t *data,
                               json_t *meta, struct cw_envelope **out)
{
    struct cw_error err = {0};
    const struct cw_command_def *def = NULL;
    int rc = CW_OK;
    *out = NULL;
    if (!cw_admin_allowed(name))
        rc = cw_error_set(&err, CW_ERR_NOT_FOUND, "unknown-command",
                          "not an administration command");
    if (!rc)
        rc = cw_coerce_command(d, name, data, true, &def, &err);
    if (!rc && def->prepare)
        rc = def->prepare(data, &err);
    if (rc) {
        json_t *a = refusal_of(rc, &err);
        cw_error_release(&err);
        json_decref(data);
        json_decref(meta);
        return a;
    }
    char client_id[CW_UUID_LEN + 8] = "admin:"; /* a fresh one each time: never a resend */
    cw_uuid_v7(client_id + 6);
    *out = cw_envelope_new(def, "", client_id, 0, data, meta, 0);
    return NULL;
}

json_t *cw_admin_run_take(struct cw_engine *e, const struct cw_domain *d, const char *name,
                          json_t *data, json_t *meta, const atomic_bool *stop)
{
    struct cw_envelope *env = NULL;
    json_t *refused = cw_admin_envelope_take(d, name, data, meta, &env);
    if (refused)
        return refused;
    struct ticket *t = cw_xcalloc(1, sizeof(*t));
    atomic_init(&t->refs, 2);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    env->done = on_done;
    env->done_arg = t;
    int rc = cw_engine_submit(e, env);
    json_t *a;
    if (rc) {
        env->done = NULL;
        cw_envelope_free(env);
        ticket_unref(t);
        a = rc == CW_ERR_OVERLOADED
                ? cw_admin_refusal("overloaded", "the command queue is full: try again")
                : cw_admin_refusal("stopping", "the server is stopping");
    } else {
        a = wait_answer(t, stop);
    }
    ticket_unref(t);
    return a;
}
