/*
 * hub.c - committed outcomes to connections.
 *
 * For each outcome batch from the update bus, in position order: every new
 * event goes to the connections its audience includes (the issuing
 * connection always), serialised once and shared; a duplicate's events and
 * a rejection go to the connections that sent that command. Session events
 * keep the gateway's table of open sessions current, so checking a cookie
 * never touches the store, and an ended session closes its connections.
 */
#include "core/alloc.h"
#include "core/log.h"
#include "core/registry.h"
#include "engine/bus.h"
#include "engine/engine.h"
#include "engine/envelope.h"
#include "engine/update.h"
#include "gw.h"
#include "store/store.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ user index */

void cw_hub_add_conn(struct cw_conn *c)
{
    struct cw_user *u = cw_strmap_get(&cw_gw->users, c->user_uuid);
    if (!u) {
        u = cw_xcalloc(1, sizeof(*u));
        memcpy(u->user_uuid, c->user_uuid, sizeof(u->user_uuid));
        cw_strmap_put(&cw_gw->users, u->user_uuid, u);
    }
    c->user_next = u->conns;
    u->conns = c;
    c->all_next = cw_gw->conns;
    if (cw_gw->conns)
        cw_gw->conns->all_prev = &c->all_next;
    c->all_prev = &cw_gw->conns;
    cw_gw->conns = c;
}

void cw_hub_remove_conn(struct cw_conn *c)
{
    struct cw_user *u = cw_strmap_get(&cw_gw->users, c->user_uuid);
    for (struct cw_conn **p = u ? &u->conns : NULL; p && *p; p = &(*p)->user_next) {
        if (*p == c) {
            *p = c->user_next;
            break;
        }
    }
    if (u && !u->conns) {
        cw_strmap_del(&cw_gw->users, u->user_uuid);
        free(u);
    }
    *c->all_prev = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
}

/* -------------------------------------------------------------- in flight */

static void inflight_key(char *out, size_t len, const char *user, const char *client_id,
                         int64_t seq)
{
    snprintf(out, len, "%s\n%s\n%lld", user, client_id, (long long)seq);
}

struct cw_inflight *cw_hub_inflight_find(const char *user, const char *client_id, int64_t seq)
{
    char key[256];
    inflight_key(key, sizeof(key), user, client_id, seq);
    return cw_strmap_get(&cw_gw->inflight, key);
}

void cw_hub_inflight_add(const char *user, const char *client_id, int64_t seq,
                         const char *command_uuid)
{
    char key[256];
    inflight_key(key, sizeof(key), user, client_id, seq);
    struct cw_inflight *f = cw_xcalloc(1, sizeof(*f));
    f->key = cw_xstrdup(key);
    memcpy(f->command_uuid, command_uuid, sizeof(f->command_uuid));
    if (cw_strmap_put(&cw_gw->inflight, f->key, f)) {
        free(f->key);
        free(f);
    }
}

/* Takes the in-flight entry of a committed command out (NULL when none). */
static struct cw_inflight *inflight_take(const struct cw_command *cmd)
{
    char key[256];
    inflight_key(key, sizeof(key), cmd->user_uuid, cmd->client_id, cmd->client_seq);
    return cw_strmap_del(&cw_gw->inflight, key);
}

/* --------------------------------------------------------------- sessions */

void cw_hub_session_open(const char *session_uuid, const char *user_uuid)
{
    if (!cw_uuid_valid(session_uuid) || !cw_uuid_valid(user_uuid) ||
        cw_strmap_get(&cw_gw->sessions, session_uuid))
        return;
    struct cw_session *s = cw_xmalloc(sizeof(*s));
    memcpy(s->session_uuid, session_uuid, sizeof(s->session_uuid));
    memcpy(s->user_uuid, user_uuid, sizeof(s->user_uuid));
    cw_strmap_put(&cw_gw->sessions, s->session_uuid, s);
}

/* Ends a session: its connections hear why, then close. */
static void session_end(const char *session_uuid)
{
    struct cw_session *s = session_uuid ? cw_strmap_del(&cw_gw->sessions, session_uuid) : NULL;
    if (!s)
        return;
    struct cw_user *u = cw_strmap_get(&cw_gw->users, s->user_uuid);
    for (struct cw_conn *c = u ? u->conns : NULL; c; c = c->user_next) {
        if (strcmp(c->session_uuid, session_uuid))
            continue;
        struct cw_error err = {0};
        cw_error_set(&err, CW_ERR_UNAUTHORIZED, "unauthorized", "the session has ended");
        cw_buf_reset(&cw_gw->out);
        cw_wire_error(&cw_gw->out, NULL, false, 0, &err);
        cw_ws_send_text(c, cw_gw->out.data, cw_gw->out.len);
        cw_ws_close(c, LWS_CLOSE_STATUS_NORMAL, "session ended");
    }
    free(s);
}

/* Keeps the session table current from the log's own events. */
static void track_session(const struct cw_update *u)
{
    bool started = !strcmp(u->ev.name, "session-started");
    if (!started && strcmp(u->ev.name, "session-ended"))
        return;
    json_t *frame = json_loads(u->frame, 0, NULL);
    json_t *data = json_object_get(json_array_get(frame, 3), "data");
    const char *session = json_string_value(json_object_get(data, "session_uuid"));
    if (session && started)
        cw_hub_session_open(session, json_string_value(json_object_get(data, "user_uuid")));
    else if (session)
        session_end(session);
    json_decref(frame);
}

int cw_hub_load_sessions(struct cw_db *db, struct cw_error *err)
{
    struct cw_stmt *st = cw_db_prepare(
        db, "SELECT session_uuid, user_uuid FROM sessions WHERE ended_at IS NULL", err);
    if (!st)
        return CW_ERR_STORE;
    int rc;
    while ((rc = cw_stmt_step(st, err)) == CW_ROW)
        cw_hub_session_open(cw_stmt_text(st, 0), cw_stmt_text(st, 1));
    return rc == CW_DONE ? CW_OK : rc;
}

/* ---------------------------------------------------------------- routing */

static struct cw_conn *conn_of(uint64_t id)
{
    struct cw_conn *c = cw_idmap_get(&cw_gw->endpoints, id);
    return c && c->kind == CW_EP_CONN ? c : NULL;
}

/* Live delivery: each connection gets each position at most once. */
static void deliver(struct cw_conn *c, struct cw_update *u)
{
    if (!c->resuming && u->ev.position <= c->last_sent)
        return;
    cw_ws_send_update(c, u, true);
}

static void route_event(struct cw_update *u, struct cw_conn *origin)
{
    enum cw_audience a = u->def ? u->def->audience : CW_AUDIENCE_USER;
    if (a == CW_AUDIENCE_USER) {
        struct cw_user *user = cw_strmap_get(&cw_gw->users, u->ev.user_uuid ? u->ev.user_uuid : "");
        for (struct cw_conn *c = user ? user->conns : NULL; c; c = c->user_next)
            deliver(c, u);
    } else {
        for (struct cw_conn *c = cw_gw->conns; c; c = c->all_next)
            if (a == CW_AUDIENCE_ALL || cw_domain_audience_allows(u->def, &u->ev, c->user_uuid))
                deliver(c, u);
    }
    if (origin) /* the issuer hears of its own command whatever the audience says */
        deliver(origin, u);
    track_session(u);
    if (u->ev.position > cw_gw->last_position)
        cw_gw->last_position = u->ev.position;
}

static void send_rejected(struct cw_conn *c, const struct cw_outcome *o)
{
    cw_buf_reset(&cw_gw->out);
    cw_wire_rejected(&cw_gw->out, o->env->cmd.client_id, o->env->cmd.client_seq, o->command_uuid,
                     o->reject.code, o->reject.message);
    cw_ws_send_text(c, cw_gw->out.data, cw_gw->out.len);
}

/* What a connection that sent this command hears, besides live routing. */
static void answer_sender(struct cw_conn *c, const struct cw_outcome *o)
{
    if (o->rejected) {
        send_rejected(c, o);
        return;
    }
    for (size_t i = 0; i < o->n_events; i++) {
        if (o->duplicate)
            cw_ws_send_update(c, o->events[i], false); /* a resend, asked for */
        else
            deliver(c, o->events[i]);
    }
}

static void route_outcome(struct cw_outcome *o)
{
    uint64_t origin_id = o->env->origin;
    struct cw_conn *origin = conn_of(origin_id);
    struct cw_inflight *f = inflight_take(&o->env->cmd);
    if (!o->duplicate) {
        for (size_t i = 0; i < o->n_events; i++)
            route_event(o->events[i], NULL);
        if (o->rejected)
            cw_count(cw_gw->metrics->cmd_rejected);
        else
            cw_count(cw_gw->metrics->cmd_processed);
    }
    if (origin)
        answer_sender(origin, o);
    for (size_t i = 0; f && i < sizeof(f->also) / sizeof(f->also[0]); i++) {
        struct cw_conn *c = f->also[i] ? conn_of(f->also[i]) : NULL;
        if (c && c != origin)
            answer_sender(c, o);
    }
    if (f) {
        free(f->key);
        free(f);
    }
    if (o->rejected && !o->duplicate && !strcmp(o->env->cmd.name, "start-session")) {
        /* The login was answered before the commit: its session goes now. */
        session_end(json_string_value(json_object_get(o->env->cmd.data, "session_uuid")));
    }
    struct cw_http *req = origin_id ? cw_idmap_get(&cw_gw->endpoints, origin_id) : NULL;
    if (req && req->kind == CW_EP_HTTP)
        cw_http_session_committed(origin_id, !o->rejected);
}

void cw_hub_drain_bus(void)
{
    struct cw_bus *bus = cw_engine_bus(cw_gw->engine);
    struct cw_outcome_batch *b;
    while ((b = cw_bus_take(bus, 0))) {
        cw_ws_defer_begin();
        for (size_t i = 0; i < b->n; i++)
            route_outcome(&b->items[i]);
        cw_ws_defer_end();
        cw_outcome_batch_free(b);
    }
}

void cw_hub_release(void)
{
    struct cw_strmap *maps[] = {&cw_gw->sessions, &cw_gw->users};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < maps[m]->cap; i++)
            if (maps[m]->keys[i])
                free(maps[m]->values[i]);
        cw_strmap_release(maps[m]);
    }
    for (size_t i = 0; i < cw_gw->inflight.cap; i++) {
        struct cw_inflight *f = cw_gw->inflight.values[i];
        if (f) {
            free(f->key);
            free(f);
        }
    }
    cw_strmap_release(&cw_gw->inflight);
}
